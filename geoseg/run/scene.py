"""``run_scene``: one scene from GeoTIFF to label raster, products and run record.

prepare (statistics, stretched reader) -> labeler (scene mode: train once; tile mode:
per tile) -> label writer (:mod:`geoseg.run.predict`: tiles' cores, renumbered 1..K by
area, optional superpixel vote) -> products (vector layer, quicklook) -> report and
record, written last.

Scene mode: one network is trained on crops sampled across the whole valid area (with
their superpixel priors), then applied tile by tile with fixed batch-norm statistics.
Tiles overlap by at least the network's receptive field and only their cores are
kept, so every pixel gets exactly the scores a whole-scene pass would give: no seams.
Tile mode: every tile is segmented on its own as in the paper; :mod:`geoseg.stitch`
aligns the tiles' labels to scene classes. The optional superpixel vote on the stitched
labels (``stitch.refine``, either mode) is :func:`geoseg.stitch.superpixel_vote`, a pass
of its own over the written label raster: blocks of its own, each read with a wide
margin so that Felzenszwalb superpixels crossing a block edge come out alike on both
sides; the classes are numbered by area again after it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from geoseg.config import Config, config_yaml
from geoseg.errors import GeosegError, OutputError
from geoseg.io.gdal_env import network_bytes
from geoseg.io.output import check_not_input
from geoseg.io.raster_read import SceneReader
from geoseg.io.raster_write import LocalCopy
from geoseg.io.source import Source, as_source
from geoseg.report import REPORT, write_report
from geoseg.run.distribute import distribute_tiles as label_on_dask
from geoseg.run.folder import RunFolder, check_disk, disk_needed_mb, preflight, vector_target
from geoseg.run.labelers import ANIMATION, labeler_for
from geoseg.run.predict import label_tiles
from geoseg.run.prepare import (
    Prepared,
    for_pixel_size,
    gdal_env,
    keeps_local_copy,
    open_scene,
    prepare,
    reads_network,
)
from geoseg.run.products import vectorize_labels, write_quicklook
from geoseg.run.reclass import labels_tree
from geoseg.run.record import (
    RECORD,
    ClassSummary,
    RunRecord,
    TileCounts,
    VectorSummary,
    versions,
)
from geoseg.run.scratch import Scratch
from geoseg.runtime import hold_freed_memory, release_memory
from geoseg.sections import TilingSection
from geoseg.segment.params import SegmentParams
from geoseg.tiling import seam_cuts, tile_grid
from geoseg.types import Progress, SceneInfo, StageProgress

if TYPE_CHECKING:
    from geoseg.io.scribbles import Scribbles

__all__ = ["RunResult", "run_scene"]

logger = logging.getLogger(__name__)

LABELS = "labels.tif"
QUICKLOOK = "quicklook.png"


@dataclass(frozen=True, slots=True)
class RunResult:
    """Where a run wrote its outputs and what it found."""

    labels: Path
    quicklook: Path
    record: Path
    vector: Path | None
    n_features: int
    n_classes: int
    n_tiles: int
    timings: dict[str, float] = field(default_factory=dict)
    profile: dict[str, float] = field(default_factory=dict)
    """Seconds of the predict stage's parts (``predict.read``: read, stretch and fill;
    ``predict.network`` and ``predict.classify`` in scene mode, else
    ``predict.label``; ``predict.write``; ``predict.close``: the COG)."""


def run_scene(
    scene: str | Path,
    outdir: str | Path,
    config: Config | None = None,
    *,
    progress: StageProgress | None = None,
    distribute_tiles: bool | None = None,
) -> RunResult:
    """Segment ``scene`` and write ``labels.tif`` (COG), the vector layer,
    ``quicklook.png``, ``report.html`` and, last, ``run.yaml``.

    Class ids in ``labels.tif`` run ``1..K`` by decreasing area (``0`` is nodata), in
    uint8 when they fit, else uint16. A scene without CRS is processed in pixel
    coordinates with a warning. ``progress(stage, done, total)`` follows every long
    stage (:data:`geoseg.types.StageProgress`).
    """
    config = config if config is not None else Config()
    scene, outdir = as_source(scene), Path(outdir)
    use_dask = config.runtime.executor == "dask" if distribute_tiles is None else distribute_tiles
    hold_freed_memory()
    with gdal_env(config), open_scene(scene, config) as reader:
        preflight(reader.info, outdir, config)
        names = (LABELS, QUICKLOOK, REPORT, RECORD, ANIMATION)
        for target in [outdir / name for name in names] + [vector_target(outdir, config)]:
            if target is not None:  # a scene named labels.tif in OUTDIR: never replaced
                check_not_input(target, [scene])
        folder = RunFolder.open(outdir)
        try:
            result = _run(scene, folder, reader, config, progress, use_dask=use_dask)
        except (GeosegError, OSError) as err:
            folder.discard()
            if isinstance(err, GeosegError):
                raise
            raise OutputError(f"{outdir}: {err}") from err
        finally:  # also on Ctrl-C: the work folder stays for a resume, the lock goes
            folder.release()
    return result


def _pixel_settings(params: SegmentParams) -> dict[str, int]:
    """run.yaml's record of the settings the scene's pixel size decided."""
    return {"texture_radius": params.texture_radius, "mix_radius": params.mix_radius}


def _run(
    scene: Source,
    folder: RunFolder,
    reader: SceneReader,
    config: Config,
    progress: StageProgress | None,
    *,
    use_dask: bool,
) -> RunResult:
    """The run itself, its outputs staged in ``folder`` and published at the end."""
    timings: dict[str, float] = {}
    clock = _Clock(timings)
    outdir, stage = folder.outdir, folder.stage
    networked = reads_network(scene, reader)
    copies = keeps_local_copy(networked, config)
    check_disk(outdir, disk_needed_mb(reader.info, config, local_copy=copies))
    prepared = prepare(reader, config)
    requested, config = config, for_pixel_size(config, prepared.info)
    if prepared.info.crs is None:
        logger.warning("%s has no CRS: labels are written in pixel coordinates", scene)
    clock.lap("statistics")
    scribbles = _scribbles(config, prepared)
    scratch = Scratch(folder.scratch, scene, config)
    iterations = config.segment.params().max_iterations
    training = _stage(progress, "train", iterations) if config.segment.mode == "scene" else None
    labeler = labeler_for(
        config,
        prepared=prepared,
        scratch=scratch,
        outdir=stage,
        progress=training,
        scribbles=scribbles,
    )
    names = list(labeler.summary.get("scribbled") or [])
    clock.lap("train")
    release_memory()  # training's activations and gradients, before the tiles'
    info, tiling = prepared.info, config.tiling
    tiles = list(tile_grid(info.height, info.width, tile_size=tiling.tile_size,
                           overlap=tiling.overlap))  # fmt: skip
    distributed = None
    # tile mode keeps the first tile here: its animation is drawn locally
    if use_dask and not prepared.uniform:
        remote = tiles[1:] if config.segment.mode == "tile" else tiles
        distributed = label_on_dask(scene, scratch.root, config, prepared.stretch_values, remote)
    labels_path = folder.staged(outdir / LABELS)
    profile: dict[str, float] = {}
    copy = LocalCopy(folder.work / "scene.tif", info) if copies else None
    skipped, source_ids = label_tiles(
        labels_path,
        tiles,
        prepared,
        labeler,
        scratch,
        config,
        progress,
        profile,
        copy,
        names,
        vote_progress=_stage(progress, "vote"),
    )
    clock.lap("predict")
    vector, source_ids = _vector(
        labels_path, scene, folder, config, source_ids, clock, _stage(progress, "vectorize"),
        reader.provenance, None if copy is None else copy.path, names,
    )  # fmt: skip
    display = reader.display_bands(config.output.display_bands)
    write_quicklook(stage / QUICKLOOK, scene, labels_path, display, config, prepared)
    clock.lap("quicklook")
    timings["total"] = clock.total()
    record = _record(
        scene,
        outdir,
        requested,  # run.yaml names the configuration asked for (a rerun skips on it)
        prepared,
        {**labeler.summary, **_pixel_settings(config.segment.params())},
        vector=vector,
        distributed=distributed,
        tiles=TileCounts(len(tiles), skipped, scratch.resumed),
        source_ids=source_ids,
        timings=timings,
        names=names,
    )
    if progress is not None:
        progress("report", 0, 1)
    if networked:
        record = replace(record, network=network_bytes())
    _finish(folder, record, info, tiling)
    if progress is not None:
        progress("report", 1, 1)
    vector_path = None if vector is None else Path(vector.path)
    folder.publish([outdir / p for p in record.outputs])  # absolute ones stay
    return RunResult(
        labels=outdir / LABELS,
        quicklook=outdir / QUICKLOOK,
        record=outdir / RECORD,
        vector=vector_path,
        n_features=0 if vector is None else vector.features,
        n_classes=len(source_ids),
        n_tiles=len(tiles),
        timings=timings,
        profile={k: round(v, 3) for k, v in profile.items()},
    )


def _scribbles(config: Config, prepared: Prepared) -> Scribbles | None:
    """The scene's scribbles (``segment.scribbles``), read onto its grid, without the
    pixels on its nodata; or ``None``."""
    segment = config.segment
    if segment.scribbles is None:
        return None
    from geoseg.io.scribbles import on_data, read_scribbles

    scribbles = read_scribbles(
        segment.scribbles, segment.scribble_field, prepared.info, width=segment.scribble_width
    )
    return on_data(scribbles, prepared.reader.read, segment.scribbles)


def _finish(folder: RunFolder, record: RunRecord, info: SceneInfo, tiling: TilingSection) -> None:
    """The report, then the record (staged: published last, the completion mark)."""
    rows, cols = seam_cuts(
        info.height, info.width, tile_size=tiling.tile_size, overlap=tiling.overlap
    )
    t0 = time.perf_counter()
    vector = None if record.vector is None else folder.staged(Path(record.vector.path))
    write_report(folder.stage, record, row_cuts=rows, col_cuts=cols, vector_path=vector)
    report_s = round(time.perf_counter() - t0, 3)
    record = replace(record, timings_s={**record.timings_s, "report": report_s})
    record.write(folder.stage / RECORD)


def _stage(progress: StageProgress | None, name: str, total: int = 0) -> Progress | None:
    """One stage's ``progress(done, total)``; with ``total`` given the callback's second
    value is ignored (training calls ``progress(iteration, labels left)``)."""
    if progress is None:
        return None
    if total:
        return lambda done, _: progress(name, done, total)
    return lambda done, n: progress(name, done, n)


class _Clock:
    """Stage timings: ``lap(name)`` records the seconds since the last lap."""

    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings
        self.start = self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = now - self.last
        self.last = now

    def skip(self) -> None:
        self.last = time.perf_counter()

    def total(self) -> float:
        return time.perf_counter() - self.start


def _vector(
    labels_path: Path,
    scene: Source,
    folder: RunFolder,
    config: Config,
    source_ids: list[int],
    clock: _Clock,
    progress: Progress | None,
    source: dict[str, Any],
    copy: Path | None,
    names: Sequence[str] = (),
) -> tuple[VectorSummary | None, list[int]]:
    """The vector layer (``output.vector``) and the classes' raw ids after small-region
    merging renumbered them; band values from the scene's local ``copy`` when given.
    With scribbled classes (``names``) the ids stay, and polygons carry the names."""
    if config.output.vector is None:
        return None, source_ids
    release_memory()  # the network and tile buffers are done with
    clock.skip()
    provenance = {
        "geoseg_scene": str(scene),
        "geoseg_seed": str(config.runtime.seed),
        "geoseg_config": config_yaml(config),
        "geoseg_versions": yaml.safe_dump(versions(), sort_keys=False),
        **{f"geoseg_{key}": yaml.safe_dump(value, sort_keys=False).strip()
           for key, value in source.items()},
    }  # fmt: skip
    target = vector_target(folder.outdir, config)
    assert target is not None
    product = vectorize_labels(
        labels_path,
        folder.staged(target),
        config,
        scene=scene,
        scene_copy=copy,
        labels_out=labels_path,  # the run's own staged labels, merged in place
        metadata=provenance,
        progress=progress,
        class_names=names,
    )
    if product.renumber is not None and product.classes is not None:  # merging renumbered
        moved = dict(zip(product.renumber[1:], source_ids, strict=False))
        source_ids = [moved[k] for k in range(1, product.classes + 1)]
    clock.lap("vectorize")
    return VectorSummary(str(target), product.features), source_ids


def _record(
    scene: Source,
    outdir: Path,
    config: Config,
    prepared: Prepared,
    training: dict[str, Any],
    *,
    vector: VectorSummary | None,
    distributed: int | None,
    tiles: TileCounts,
    source_ids: list[int],
    timings: dict[str, float],
    names: Sequence[str] = (),
) -> RunRecord:
    """The record of a run (the report's time is added when the report is written)."""
    info = prepared.info
    training = dict(training)
    tree = labels_tree(training.pop("tree", None) or [], source_ids)  # channel ids + 1
    training.pop("scribbled", None)  # classes.names
    low, high, fill = prepared.stretch_values
    outputs = [outdir / LABELS, outdir / QUICKLOOK]
    if vector is not None:
        outputs.append(Path(vector.path))
    if config.output.snapshots:
        outputs.append(outdir / ANIMATION)
    outputs.append(outdir / REPORT)
    source = (
        "network output channel + 1"
        if config.segment.mode == "scene"
        else "scene class of the tile aligner"
    )
    return RunRecord(
        scene=str(scene),
        grid={
            "width": info.width,
            "height": info.height,
            "bands": list(info.bands),
            "crs": info.crs.to_string() if info.crs else None,
            "transform": list(info.transform)[:6],
            "nodata": info.nodata,
            **prepared.reader.provenance,  # a STAC item: its id and asset hrefs
        },
        normalize={"low": low.tolist(), "high": high.tolist(), "fill": fill.tolist()},
        training=training,
        distributed_tiles=distributed,
        vector=vector,
        config=config.model_dump(mode="json"),
        tiles=tiles,
        classes=ClassSummary(len(source_ids), source_ids, source, tree, list(names)),
        timings_s={k: round(v, 3) for k, v in timings.items()},
        versions=versions(),
        outputs=[str(p.relative_to(outdir) if p.is_relative_to(outdir) else p) for p in outputs],
    )
