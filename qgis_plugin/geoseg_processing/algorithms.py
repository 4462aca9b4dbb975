"""geoseg's commands as Processing algorithms. Each one builds the command line from
its parameters (one parameter, one config key: ``--set key=value``), runs it through
:func:`command.run` and returns the outputs; geoseg does all the work."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any, ClassVar

import yaml
from qgis.core import (
    QgsPalettedRasterRenderer,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingOutputNumber,
    QgsProcessingOutputRasterLayer,
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterCrs,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
    QgsProcessingParameterVectorLayer,
)

from . import command


class GeosegAlgorithm(QgsProcessingAlgorithm):
    """What every geoseg algorithm shares: running the command, its errors."""

    stages: ClassVar[dict[str, tuple[int, int]] | None] = None

    def createInstance(self) -> GeosegAlgorithm:
        return type(self)()

    def helpUrl(self) -> str:
        return ""

    def _geoseg(self, args: list[str], feedback: Any) -> command.Outcome:
        from .provider import configured_command

        configured = configured_command()
        executable = command.find_geoseg(configured)
        if executable is None:
            where = f"{configured} is not an executable" if configured else "not on PATH"
            raise QgsProcessingException(
                f"geoseg: error: the geoseg command is {where}; install geoseg "
                "(pip install geoseg) or set its path in Settings > Options > "
                "Processing > Providers > geoseg"
            )
        full = [executable, *args]
        feedback.pushCommandInfo(" ".join(shlex.quote(a) for a in full))
        outcome = command.run(
            full,
            on_progress=feedback.setProgress,
            on_line=feedback.pushConsoleInfo,
            cancelled=feedback.isCanceled,
            stages=self.stages,
        )
        if outcome.cancelled:
            return outcome
        if outcome.returncode != 0:
            message = outcome.error or f"geoseg exited with status {outcome.returncode}"
            feedback.reportError(message, True)
            raise QgsProcessingException(message)
        feedback.setProgress(100)
        return outcome


def _advanced(parameter: QgsProcessingParameterDefinition) -> QgsProcessingParameterDefinition:
    parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    return parameter


def _settings_parameter() -> QgsProcessingParameterDefinition:
    return _advanced(
        QgsProcessingParameterString(
            "SETTINGS",
            "Other settings (one --set line each, e.g. segment.max_iterations=32)",
            optional=True,
            multiLine=True,
        )
    )


def _optional_int(alg: QgsProcessingAlgorithm, parameters: dict, name: str, context: Any) -> Any:
    if parameters.get(name) is None:
        return None
    return alg.parameterAsInt(parameters, name, context)


def _scribbles(alg: QgsProcessingAlgorithm, parameters: dict, context: Any, feedback: Any) -> Any:
    """The scribble layer as a file geoseg reads (a layer drawn in memory, or one layer
    of a GeoPackage, is written to a temporary GeoPackage first), or ``None``."""
    if not parameters.get("SCRIBBLES"):
        return None
    return alg.parameterAsCompatibleSourceLayerPath(
        parameters, "SCRIBBLES", context, ["gpkg", "shp", "geojson"], "gpkg", feedback
    )


def _source(layer: Any, name: str) -> str:
    if layer is None:
        raise QgsProcessingException(f"geoseg: error: {name}: no raster layer given")
    return layer.source()


class RunAlgorithm(GeosegAlgorithm):
    """``geoseg run``: a scene into labels.tif, segments.gpkg, the report and run.yaml."""

    KEYS: ClassVar[dict[str, str]] = {
        "PRESET": "segment.preset",
        "CLASSES": "segment.n_classes",
        "SCALE": "segment.scale",
        "SCRIBBLES": "segment.scribbles",
        "SCRIBBLE_FIELD": "segment.scribble_field",
        "TILE_SIZE": "tiling.tile_size",
        "MIN_AREA": "vectorize.min_area",
        "BANDS": "input.bands",
        "SEED": "runtime.seed",
        "DEVICE": "runtime.device",
    }
    """Each parameter's geoseg config key."""

    def name(self) -> str:
        return "run"

    def displayName(self) -> str:
        return "Segment a scene (run)"

    def shortHelpString(self) -> str:
        return (
            "Unsupervised segmentation of a raster scene with geoseg: a label raster "
            "(labels.tif, one class id a pixel, coloured) and a segments layer "
            "(segments.gpkg, one polygon a connected region, with its class, area and "
            "band statistics, styled by class) in the output folder, with quicklook.png, "
            "report.html and run.yaml. Unset parameters take geoseg's defaults; each "
            "parameter is the geoseg setting named in its tooltip. Cancel stops geoseg "
            "and removes what it started; a previous complete run in the folder stays."
        )

    def initAlgorithm(self, config: Any = None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Scene"))
        preset = QgsProcessingParameterEnum("PRESET", "Preset", options=list(command.PRESETS),
                                            defaultValue=0)  # fmt: skip
        self.addParameter(preset)
        integers = (
            ("CLASSES", "Number of classes (empty: automatic)", 1),
            ("TILE_SIZE", "Tile size in pixels (empty: geoseg's default)", 64),
        )
        for name, label, minimum in integers:
            self.addParameter(QgsProcessingParameterNumber(
                name, label, QgsProcessingParameterNumber.Integer, optional=True,
                minValue=minimum))  # fmt: skip
        self.addParameter(QgsProcessingParameterNumber(
            "SCALE", "Ground scale: smallest land-cover patch, metres (empty: geoseg's default)",
            QgsProcessingParameterNumber.Double, optional=True, minValue=0))  # fmt: skip
        self.addParameter(QgsProcessingParameterNumber(
            "MIN_AREA", "Merge segments smaller than (pixels; empty: geoseg's default)",
            QgsProcessingParameterNumber.Double, optional=True, minValue=0))  # fmt: skip
        self.addParameter(QgsProcessingParameterString(
            "BANDS", "Bands, 1-based, e.g. 4,3,2 (empty: all)", optional=True))  # fmt: skip
        self.addParameter(QgsProcessingParameterVectorLayer(
            "SCRIBBLES", "Scribbles: strokes that name the classes (optional)",
            [QgsProcessing.TypeVectorAnyGeometry], optional=True))  # fmt: skip
        self.addParameter(QgsProcessingParameterField(
            "SCRIBBLE_FIELD", "Scribbles' class field (empty: class)",
            parentLayerParameterName="SCRIBBLES", optional=True))  # fmt: skip
        self.addParameter(_advanced(QgsProcessingParameterNumber(
            "SEED", "Random seed", QgsProcessingParameterNumber.Integer, optional=True,
            minValue=0)))  # fmt: skip
        self.addParameter(_advanced(QgsProcessingParameterEnum(
            "DEVICE", "Device", options=list(command.DEVICES), defaultValue=0)))  # fmt: skip
        self.addParameter(_settings_parameter())
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Output folder"))
        self.addOutput(QgsProcessingOutputRasterLayer("LABELS", "Labels"))
        self.addOutput(QgsProcessingOutputVectorLayer(
            "SEGMENTS", "Segments", QgsProcessing.TypeVectorPolygon))  # fmt: skip
        self.addOutput(QgsProcessingOutputNumber("N_CLASSES", "Classes"))
        self.addOutput(QgsProcessingOutputNumber("N_SEGMENTS", "Segments (features)"))
        for name in self.KEYS:
            parameter = self.parameterDefinition(name)
            parameter.setHelp(f"geoseg setting {self.KEYS[name]}")

    def processAlgorithm(self, parameters: dict, context: Any, feedback: Any) -> dict:
        scene = _source(self.parameterAsRasterLayer(parameters, "INPUT", context), "Scene")
        outdir = Path(self.parameterAsString(parameters, "OUTPUT", context))
        created = not outdir.exists()
        bands = self.parameterAsString(parameters, "BANDS", context).strip()
        given: dict[str, object] = {  # None: not set, geoseg's default
            "PRESET": command.PRESETS[self.parameterAsEnum(parameters, "PRESET", context)],
            "CLASSES": _optional_int(self, parameters, "CLASSES", context),
            "TILE_SIZE": _optional_int(self, parameters, "TILE_SIZE", context),
            "SCALE": None
            if parameters.get("SCALE") is None
            else self.parameterAsDouble(parameters, "SCALE", context),
            "MIN_AREA": None
            if parameters.get("MIN_AREA") is None
            else self.parameterAsDouble(parameters, "MIN_AREA", context),
            "BANDS": f"[{bands}]" if bands else None,
            "SCRIBBLES": _scribbles(self, parameters, context, feedback),
            "SCRIBBLE_FIELD": self.parameterAsString(parameters, "SCRIBBLE_FIELD", context) or None,
            "SEED": _optional_int(self, parameters, "SEED", context),
            "DEVICE": command.DEVICES[self.parameterAsEnum(parameters, "DEVICE", context)],
        }
        values = {self.KEYS[name]: value for name, value in given.items()}
        extra = self.parameterAsString(parameters, "SETTINGS", context)
        args = ["run", scene, "-o", str(outdir), *command.settings_args(values, extra)]
        outcome = self._geoseg(args, feedback)
        if outcome.cancelled:
            command.discard(outdir, created=created)
            feedback.reportError("geoseg: cancelled; the run's work folder was removed")
            return {}
        record = yaml.safe_load((outdir / "run.yaml").read_text())
        labels = str(outdir / "labels.tif")
        n_classes = int(record["classes"]["count"])
        names = list(record["classes"].get("names") or [])
        results: dict[str, Any] = {"OUTPUT": str(outdir), "LABELS": labels,
                                   "N_CLASSES": n_classes}  # fmt: skip
        shown = _ShowClasses(n_classes, names)
        _load_on_completion(context, labels, "geoseg labels", "LABELS", shown)
        vector = record.get("vector")
        if vector:
            path = Path(vector["path"])
            path = path if path.is_absolute() else outdir / path
            results.update(SEGMENTS=str(path), N_SEGMENTS=vector["features"])
            _load_on_completion(context, str(path), "geoseg segments", "SEGMENTS")
        return results


class VectorizeAlgorithm(GeosegAlgorithm):
    """``geoseg vectorize``: polygons of a label raster."""

    stages: ClassVar[dict[str, tuple[int, int]] | None] = {"vectorize": (0, 100)}

    def name(self) -> str:
        return "vectorize"

    def displayName(self) -> str:
        return "Polygons of a label raster (vectorize)"

    def shortHelpString(self) -> str:
        return (
            "One polygon per connected region of one class (0 = nodata gets none), with "
            "class, area, perimeter and, with the scene, its bands' mean and standard "
            "deviation. With a minimum area, smaller regions merge into a neighbour and "
            "the label raster is rewritten to match (as geoseg vectorize does)."
        )

    def initAlgorithm(self, config: Any = None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Label raster"))
        self.addParameter(QgsProcessingParameterRasterLayer(
            "SCENE", "Scene on the same grid (band statistics)", optional=True))  # fmt: skip
        self.addParameter(QgsProcessingParameterNumber(
            "MIN_AREA", "Merge regions smaller than (pixels; rewrites the label raster)",
            QgsProcessingParameterNumber.Double, optional=True, minValue=0))  # fmt: skip
        self.addParameter(QgsProcessingParameterCrs("TO_CRS", "Reproject to", optional=True))
        self.addParameter(_settings_parameter())
        self.addParameter(QgsProcessingParameterVectorDestination(
            "OUTPUT", "Segments", QgsProcessing.TypeVectorPolygon))  # fmt: skip

    def processAlgorithm(self, parameters: dict, context: Any, feedback: Any) -> dict:
        labels = _source(self.parameterAsRasterLayer(parameters, "INPUT", context), "Label raster")
        output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        args = ["vectorize", labels, "-o", output]
        scene = self.parameterAsRasterLayer(parameters, "SCENE", context)
        if scene is not None:
            args += ["--scene", scene.source()]
        values: dict[str, object] = {}
        if parameters.get("MIN_AREA") is not None:
            values["vectorize.min_area"] = self.parameterAsDouble(parameters, "MIN_AREA", context)
        crs = self.parameterAsCrs(parameters, "TO_CRS", context)
        if crs.isValid():
            values["vectorize.to_crs"] = crs.authid() or crs.toWkt()
        extra = self.parameterAsString(parameters, "SETTINGS", context)
        outcome = self._geoseg([*args, *command.settings_args(values, extra)], feedback)
        if outcome.cancelled:
            return {}
        return {"OUTPUT": output}


class EvaluateAlgorithm(GeosegAlgorithm):
    """``geoseg evaluate --json``: scores of a label raster against a reference."""

    SCORES = ("ari", "nmi", "miou", "boundary_f1")

    def name(self) -> str:
        return "evaluate"

    def displayName(self) -> str:
        return "Score labels against a reference (evaluate)"

    def shortHelpString(self) -> str:
        return (
            "Adjusted Rand index, normalized mutual information, Hungarian-matched mean "
            "IoU and boundary F1 of a label raster against reference labels on the same "
            "grid (or reprojected onto it). Nodata and the ignored reference class are "
            "left out."
        )

    def initAlgorithm(self, config: Any = None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Label raster"))
        self.addParameter(QgsProcessingParameterRasterLayer("TRUTH", "Reference labels"))
        self.addParameter(QgsProcessingParameterNumber(
            "IGNORE", "Reference class to leave out (empty: none)",
            QgsProcessingParameterNumber.Integer, defaultValue=0, optional=True))  # fmt: skip
        self.addParameter(QgsProcessingParameterNumber(
            "TOLERANCE", "Boundary match distance (pixels)",
            QgsProcessingParameterNumber.Double, defaultValue=2.0, minValue=0))  # fmt: skip
        self.addParameter(QgsProcessingParameterBoolean(
            "RESAMPLE", "Reproject the labels onto the reference's grid",
            defaultValue=False))  # fmt: skip
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT", "Scores (JSON)", "JSON files (*.json)", optional=True))  # fmt: skip
        for score in self.SCORES:
            self.addOutput(QgsProcessingOutputNumber(score.upper(), score))

    def processAlgorithm(self, parameters: dict, context: Any, feedback: Any) -> dict:
        labels = _source(self.parameterAsRasterLayer(parameters, "INPUT", context), "Label raster")
        truth = _source(self.parameterAsRasterLayer(parameters, "TRUTH", context), "Reference")
        ignore = _optional_int(self, parameters, "IGNORE", context)
        tolerance = self.parameterAsDouble(parameters, "TOLERANCE", context)
        args = ["evaluate", labels, truth, "--json", "--tolerance", str(tolerance),
                "--ignore", "none" if ignore is None else str(ignore)]  # fmt: skip
        if self.parameterAsBoolean(parameters, "RESAMPLE", context):
            args += ["--resample", "nearest"]
        outcome = self._geoseg(args, feedback)
        if outcome.cancelled:
            return {}
        scores = json.loads(outcome.stdout)
        feedback.pushInfo(json.dumps(scores, indent=2))
        results: dict[str, Any] = {s.upper(): scores.get(s) for s in self.SCORES}
        output = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        if output:
            Path(output).write_text(json.dumps(scores, indent=2) + "\n")
            results["OUTPUT"] = output
        return results


class PlanAlgorithm(GeosegAlgorithm):
    """``geoseg plan --json``: what a run of a scene will take."""

    NUMBERS = ("tiles", "peak_memory_mb", "scratch_disk_mb", "output_disk_mb")

    def name(self) -> str:
        return "plan"

    def displayName(self) -> str:
        return "Plan a run (tiles, memory, disk, time)"

    def shortHelpString(self) -> str:
        return (
            "Before a long run: the tiles, valid fraction, peak memory, disk and time a "
            "run of the scene with these settings will take, timed by a short "
            "calibration on this machine, and a tile size that fits the memory."
        )

    def initAlgorithm(self, config: Any = None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Scene"))
        self.addParameter(_settings_parameter())
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT", "Plan (JSON)", "JSON files (*.json)", optional=True))  # fmt: skip
        for name in (*self.NUMBERS, "seconds"):
            self.addOutput(QgsProcessingOutputNumber(name.upper(), name))

    def processAlgorithm(self, parameters: dict, context: Any, feedback: Any) -> dict:
        scene = _source(self.parameterAsRasterLayer(parameters, "INPUT", context), "Scene")
        extra = self.parameterAsString(parameters, "SETTINGS", context)
        outcome = self._geoseg(["plan", scene, "--json", *command.settings_args({}, extra)],
                               feedback)  # fmt: skip
        if outcome.cancelled:
            return {}
        plan = json.loads(outcome.stdout)
        feedback.pushInfo(json.dumps(plan, indent=2))
        results: dict[str, Any] = {name.upper(): plan[name] for name in self.NUMBERS}
        results["SECONDS"] = plan["estimated_seconds"]["total"]
        output = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        if output:
            Path(output).write_text(json.dumps(plan, indent=2) + "\n")
            results["OUTPUT"] = output
        return results


def _load_on_completion(context: Any, path: str, name: str, output: str, post: Any = None) -> None:
    """Have QGIS load ``path`` when the algorithm ends (the GeoPackage with its own
    default style, the label raster with its colour table), then ``post`` it."""
    details = QgsProcessingContext.LayerDetails(name, context.project(), output)
    if post is not None:
        _POSTS.append(post)
        details.setPostProcessor(post)
    context.addLayerToLoadOnCompletion(path, details)


def show_classes(layer: Any, n_classes: int, names: list[str] | None = None) -> None:
    """A label raster's legend: classes ``1..n_classes`` of its colour table (GeoTIFF
    pads the table to 256 entries), named "class k" as in the segments layer's style,
    or by the scribbles' ``names`` (class ``k``: ``names[k - 1]``)."""
    names = names or []
    renderer = layer.renderer()
    if not isinstance(renderer, QgsPalettedRasterRenderer):
        return
    classes = [c for c in renderer.classes() if 1 <= c.value <= n_classes]
    for entry in classes:
        k = int(entry.value)
        entry.label = names[k - 1] if k <= len(names) else f"class {k}"
    layer.setRenderer(QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes))
    layer.triggerRepaint()


class _ShowClasses(QgsProcessingLayerPostProcessorInterface):
    def __init__(self, n_classes: int, names: list[str] | None = None) -> None:
        super().__init__()
        self.n_classes, self.names = n_classes, names

    def postProcessLayer(self, layer: Any, context: Any, feedback: Any) -> None:
        show_classes(layer, self.n_classes, self.names)


_POSTS: list[Any] = []
"""Post-processors QGIS calls after the algorithm returned: Python must keep them."""
