"""The ``geoseg`` command line: each command parses options and calls one library function.

Errors that a user can fix end the command with one line on standard error and exit
status 1; usage errors (unknown option) exit with status 2.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from geoseg import __version__
from geoseg.errors import ConfigError, GeosegError, InputError
from geoseg.segment.params import PRESETS, SegmentParams, get_preset

# The commands import the stages they call (PyTorch, geopandas, scikit-learn, ...) when
# they run, so that `geoseg --version` and `geoseg config validate` start in well under a
# second.

__all__ = ["app"]

app = typer.Typer(
    name="geoseg",
    help="Unsupervised segmentation of satellite scenes and pictures.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"geoseg {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
) -> None:
    """Unsupervised segmentation of satellite scenes and pictures."""


@contextmanager
def _cli_errors() -> Iterator[None]:
    """Turn a GeosegError into one line on stderr and exit status 1."""
    try:
        yield
    except GeosegError as err:
        _err.print(f"geoseg: error: {err}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from err


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pyogrio").setLevel(max(level, logging.WARNING))  # one line per write


@contextmanager
def _progress_bar(total: int, quiet: bool) -> Iterator[Callable[[int, int], None]]:
    """A rich bar for ``progress(iteration, n_labels)`` callbacks (silent with -q)."""
    if quiet:
        yield lambda iteration, n_labels: None
        return
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[labels]} labels"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=_err, transient=True) as bar:
        task = bar.add_task("training", total=total, labels="-")

        def update(iteration: int, n_labels: int) -> None:
            bar.update(task, completed=iteration, labels=n_labels)

        yield update


@contextmanager
def _tile_bar(quiet: bool) -> Iterator[Callable[[int, int], None]]:
    """A rich bar for ``progress(done, total)`` tile callbacks (silent with -q)."""
    if quiet:
        yield lambda done, total: None
        return
    columns = (
        TextColumn("tiles"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=_err, transient=True) as bar:
        task = bar.add_task("tiles", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


_PRESET_HELP = f"Parameter preset: {', '.join(sorted(PRESETS))}."
PresetOption = Annotated[str, typer.Option(help=_PRESET_HELP)]
MaxIterationsOption = Annotated[
    int | None, typer.Option(help="Override the preset's iteration limit.")
]
DeviceOption = Annotated[str, typer.Option(help="auto, cpu or cuda.")]
ClassesOption = Annotated[
    int | None,
    typer.Option(
        "--classes",
        help="End with exactly this many classes (segment.n_classes; default: automatic).",
    ),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
VerboseOption = Annotated[int, typer.Option("--verbose", "-v", count=True)]
SnapshotsOption = Annotated[
    str | None,
    typer.Option(
        help="Write training.gif: the label map at these iterations, e.g. 1,2,4,8,16,32,64."
    ),
]


def _params(preset: str, max_iterations: int | None, classes: int | None) -> SegmentParams:
    """The named preset, with the iteration limit and class count overridden when given."""
    params = get_preset(preset)
    if max_iterations is not None:
        params = params.replace(max_iterations=max_iterations)
    if classes is not None:
        params = params.replace(n_classes=classes)
    return params


@app.command("segment")
def segment_command(
    image: Annotated[Path, typer.Argument(help="Picture or raster (PNG, JPEG, TIFF, ...).")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Mean-colour rendering to write (.png/.jpg).")
    ],
    preset: PresetOption = "default",
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same result.")] = 0,
    labels: Annotated[
        Path | None,
        typer.Option(help="Also write the labels (1..K, 0 = nodata) as .tif or .png."),
    ] = None,
    max_iterations: MaxIterationsOption = None,
    classes: ClassesOption = None,
    device: DeviceOption = "auto",
    snapshots: SnapshotsOption = None,
    gif: Annotated[
        Path | None,
        typer.Option(help="Where --snapshots writes its animation (default training.gif)."),
    ] = None,
    quiet: QuietOption = False,
    verbose: VerboseOption = 0,
) -> None:
    """Segment a plain picture and write its mean-colour rendering (and labels)."""
    import numpy as np

    from geoseg.io.raster import (
        LABEL_SUFFIXES,
        PICTURE_SUFFIXES,
        check_output,
        read_image,
        write_gif,
        write_labels,
        write_png,
    )
    from geoseg.normalize import auto_scale
    from geoseg.render import TrainingAnimation, display_rgb, mean_colour
    from geoseg.segment.train import segment

    _setup_logging(verbose, quiet)
    with _cli_errors():
        params = _params(preset, max_iterations, classes)
        check_output(output, PICTURE_SUFFIXES)
        if labels is not None:
            check_output(labels, LABEL_SUFFIXES)
        steps = _int_list(snapshots)
        animation = TrainingAnimation(steps) if steps else None
        gif_path = gif if gif is not None else output.with_name("training.gif")
        if animation is not None:
            check_output(gif_path, (".gif",))
        data = read_image(image)
        scaled = auto_scale(data.data, data.valid)
        with _progress_bar(params.max_iterations, quiet) as progress:
            result = segment(
                scaled,
                params,
                valid=data.valid,
                seed=seed,
                device=device,
                progress=progress,
                snapshot_at=animation.iterations if animation is not None else (),
                on_snapshot=animation,
            )
        write_png(output, mean_colour(display_rgb(scaled), result.labels))
        if animation is not None:
            write_gif(gif_path, animation.frames(stopped_at=result.n_iterations))
        if labels is not None:
            inside = result.labels >= 0
            numbered = np.zeros(result.labels.shape, np.int32)  # 0 = nodata
            numbered[inside] = np.unique(result.labels[inside], return_inverse=True)[1] + 1
            write_labels(labels, numbered, transform=data.transform, crs=data.crs, nodata=0)
    if not quiet:
        _err.print(
            f"{result.n_labels} labels after {result.n_iterations} iterations -> {output}",
            highlight=False,
        )


@app.command("sample")
def sample_command(
    output: Annotated[Path, typer.Argument(help="GeoTIFF to write (uint16, 10 m, UTM 18N).")],
    truth: Annotated[
        Path | None, typer.Option(help="Also write the true classes (1..n) as a GeoTIFF.")
    ] = None,
    rows: Annotated[int, typer.Option(min=8)] = 512,
    cols: Annotated[int, typer.Option(min=8)] = 512,
    bands: Annotated[int, typer.Option(min=1)] = 4,
    classes: Annotated[int, typer.Option(min=1)] = 5,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Write a synthetic multi-band scene with known regions (the bundled default)."""
    import numpy as np

    from geoseg.io.raster import write_image, write_labels
    from geoseg.sample import SAMPLE_CRS, make_scene, sample_transform

    with _cli_errors():
        image, classes_map = make_scene(
            rows=rows, cols=cols, bands=bands, n_classes=classes, seed=seed
        )
        transform = sample_transform()
        dn = np.round(image * 10000).astype(np.uint16)
        write_image(output, dn, transform=transform, crs=SAMPLE_CRS)
        if truth is not None:
            write_labels(truth, classes_map, transform=transform, crs=SAMPLE_CRS, nodata=0)
    typer.echo(f"wrote {output} ({bands} bands, {rows}x{cols}, {classes} classes)")


def _int_list(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a comma-separated list of band numbers"
        ) from None


ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML run configuration (see configs/).")
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        help="Override one setting, e.g. --set segment.max_iterations=32 (repeatable; "
        "wins over --config and the shortcut options).",
    ),
]


@app.command("run")
def run_command(
    scene: Annotated[Path, typer.Argument(help="GeoTIFF (or any GDAL raster) to segment.")],
    outdir: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Output directory (default: output.dir, else <stem>_geoseg/ beside the scene).",
        ),
    ] = None,
    config_file: ConfigOption = None,
    overrides: SetOption = None,
    preset: Annotated[str | None, typer.Option(help=_PRESET_HELP)] = None,
    mode: Annotated[str | None, typer.Option(help="scene or tile (segment.mode).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seeds crops and network.")] = None,
    bands: Annotated[
        str | None, typer.Option(help="Bands to read, 1-based, e.g. 4,3,2 (default: all).")
    ] = None,
    nodata: Annotated[
        float | None, typer.Option(help="Nodata value, overriding the file's.")
    ] = None,
    tile_size: Annotated[int | None, typer.Option(help="Tile side in pixels.")] = None,
    overlap: Annotated[int | None, typer.Option(help="Tile overlap in pixels.")] = None,
    max_iterations: MaxIterationsOption = None,
    classes: ClassesOption = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N.")] = None,
    vector: Annotated[
        Path | None,
        typer.Option(
            help="Vector layer file (default OUTDIR/segments.gpkg); the extension picks "
            "the format: .gpkg .shp .geojson .fgb .parquet (output.vector)."
        ),
    ] = None,
    to_crs: Annotated[
        str | None, typer.Option(help="Reproject the vector layer, e.g. EPSG:4326.")
    ] = None,
    min_area: Annotated[
        float | None,
        typer.Option(help="Merge segments smaller than this many pixels (vectorize.min_area)."),
    ] = None,
    snapshots: SnapshotsOption = None,
    quiet: QuietOption = False,
    verbose: VerboseOption = 0,
) -> None:
    """Segment a scene: labels.tif, segments.gpkg, quicklook.png, report.html, run.yaml.

    Settings: defaults < the preset < --config < shortcut options < --set.
    """
    from geoseg.config import output_dir, resolve_config
    from geoseg.run.scene import run_scene

    _setup_logging(verbose, quiet)
    shortcuts: dict[str, dict[str, object]] = {
        "segment": {
            "preset": preset,
            "mode": mode,
            "max_iterations": max_iterations,
            "n_classes": classes,
        },
        "input": {"bands": _int_list(bands), "nodata": nodata},
        "tiling": {"tile_size": tile_size, "overlap": overlap},
        "runtime": {"seed": seed, "device": device},
        "vectorize": {"to_crs": to_crs, "min_area": min_area},
        "output": {
            "vector": str(vector.absolute()) if vector is not None else None,
            "snapshots": _int_list(snapshots),
        },
    }
    given = {
        section: {key: value for key, value in entries.items() if value is not None}
        for section, entries in shortcuts.items()
    }
    with _cli_errors():
        config = resolve_config(config_file, values=given, overrides=overrides or ())
        target = outdir if outdir is not None else output_dir(scene, config)
        with _tile_bar(quiet) as progress:
            result = run_scene(scene, target, config, progress=progress)
    if not quiet:
        polygons = f", {result.n_features} polygons -> {result.vector}" if result.vector else ""
        _err.print(
            f"{result.n_classes} classes over {result.n_tiles} tiles -> {result.labels}" + polygons,
            highlight=False,
        )


@app.command("vectorize")
def vectorize_command(
    labels: Annotated[Path, typer.Argument(help="Label raster (class ids, 0 = nodata).")],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Vector file: .gpkg .shp .geojson .fgb or .parquet."),
    ] = Path("segments.gpkg"),
    scene: Annotated[
        Path | None,
        typer.Option(help="The scene on the same grid: band statistics and similarity."),
    ] = None,
    config_file: ConfigOption = None,
    overrides: SetOption = None,
    to_crs: Annotated[
        str | None, typer.Option(help="Reproject the vector layer, e.g. EPSG:4326.")
    ] = None,
    min_area: Annotated[
        float | None,
        typer.Option(help="Merge segments smaller than this many pixels (rewrites LABELS)."),
    ] = None,
    quiet: QuietOption = False,
    verbose: VerboseOption = 0,
) -> None:
    """Polygons of a label raster: one per connected region of one class."""
    from geoseg.config import resolve_config
    from geoseg.run.products import vectorize_labels

    _setup_logging(verbose, quiet)
    given = {
        "vectorize": {
            key: value
            for key, value in {"to_crs": to_crs, "min_area": min_area}.items()
            if value is not None
        }
    }
    with _cli_errors():
        config = resolve_config(config_file, values=given, overrides=overrides or ())
        summary = vectorize_labels(labels, output, config, scene=scene)
    if not quiet:
        _err.print(f"{summary.features} polygons -> {output}", highlight=False)


@app.command("batch")
def batch_command(
    batch_file: Annotated[Path, typer.Argument(help="YAML: a run config plus 'scenes'.")],
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", help="Scenes at a time (worker processes).")
    ] = 1,
    overrides: SetOption = None,
    summary: Annotated[
        Path | None,
        typer.Option(help="Summary CSV (default: batch_summary.csv beside the batch file)."),
    ] = None,
    quiet: QuietOption = False,
    verbose: VerboseOption = 0,
) -> None:
    """Run every scene of a batch file; completed scenes are skipped, failures reported.

    Exit status 1 when any scene failed. With runtime.executor: dask the scenes run on
    a Dask cluster (runtime.address, or a LocalCluster of --jobs workers).
    """
    from geoseg.batch import SUMMARY_FIELDS, load_batch, run_batch, write_summary

    _setup_logging(verbose, quiet)
    with _cli_errors():
        shared, items = load_batch(batch_file, overrides=overrides or ())
        with _batch_bars(quiet, tiles=jobs == 1 and shared.runtime.executor == "local") as (
            scenes_bar,
            tiles_bar,
        ):
            outcomes = run_batch(
                items,
                jobs=jobs,
                executor=shared.runtime.executor,
                address=shared.runtime.address,
                progress=scenes_bar,
                tile_progress=tiles_bar,
            )
        target = summary if summary is not None else batch_file.parent / "batch_summary.csv"
        write_summary(outcomes, target)
    table = Table(*SUMMARY_FIELDS, title=f"geoseg batch {batch_file.name}")
    for outcome in outcomes:
        row = [getattr(outcome, name) for name in SUMMARY_FIELDS]
        row[0] = Path(outcome.scene).name  # the CSV has the whole path
        table.add_row(*("" if value is None else str(value) for value in row))
    Console(soft_wrap=True).print(table)
    failed = sum(outcome.status == "failed" for outcome in outcomes)
    if not quiet:
        _err.print(f"{len(outcomes) - failed} of {len(outcomes)} scenes ok -> {target}")
    if failed:
        raise typer.Exit(1)


@contextmanager
def _batch_bars(
    quiet: bool, *, tiles: bool
) -> Iterator[tuple[Callable[[int, int, str], None] | None, Callable[[int, int], None] | None]]:
    """Two rich bars: scenes, and tiles of the current scene (silent with -q)."""
    if quiet:
        yield None, None
        return
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=_err, transient=True) as bar:
        scenes = bar.add_task("scenes", total=None)
        tile_task = bar.add_task("tiles", total=None, visible=tiles)

        def on_scene(done: int, total: int, name: str) -> None:
            bar.update(scenes, completed=done, total=total)
            bar.reset(tile_task, total=None, visible=tiles)

        def on_tile(done: int, total: int) -> None:
            bar.update(tile_task, completed=done, total=total)

        yield on_scene, (on_tile if tiles else None)


@app.command("plan")
def plan_command(
    scene: Annotated[Path, typer.Argument(help="GeoTIFF (or any GDAL raster) to plan.")],
    config_file: ConfigOption = None,
    overrides: SetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    verbose: VerboseOption = 0,
) -> None:
    """Pre-flight plan of a run: tiles, valid fraction, peak memory, disk and time.

    Times a short calibration on this machine (a few training iterations and one tile)
    and suggests a tile size for the memory available now.
    """
    from geoseg.config import resolve_config
    from geoseg.plan import plan_scene

    _setup_logging(verbose, quiet=False)
    with _cli_errors():
        config = resolve_config(config_file, overrides=overrides or ())
        plan = plan_scene(scene, config)
    if as_json:
        typer.echo(json.dumps(plan.as_dict()))
        return
    table = Table("", "", title=f"geoseg plan {scene.name}", show_header=False)
    for key, value in plan.as_dict().items():
        text = (
            ", ".join(f"{k} {v} s" for k, v in value.items()) if isinstance(value, dict) else value
        )
        table.add_row(key.replace("_", " "), str(text))
    Console(soft_wrap=True).print(table)


@app.command("preseg")
def preseg_command(
    scene: Annotated[Path, typer.Argument(help="GeoTIFF (or any GDAL raster) to look at.")],
    method: Annotated[str, typer.Option(help="Superpixel method: slic or felzenszwalb.")] = (
        "felzenszwalb"
    ),
    vary: Annotated[
        list[str] | None,
        typer.Option(
            help="A parameter and its values, e.g. compactness=100,1000,10000 (slic: "
            "n_segments, compactness; felzenszwalb: scale, sigma, min_size). Twice for a grid."
        ),
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(help="col,row,width,height to look at (default: centred, at most 512x512)."),
    ] = None,
    bands: Annotated[
        str | None,
        typer.Option(help="Bands to read, e.g. 4,3,2; the first three are shown (default: all)."),
    ] = None,
    nodata: Annotated[
        float | None, typer.Option(help="Nodata value, overriding the file's.")
    ] = None,
    preset: Annotated[str, typer.Option(help="Preset giving the parameters not varied.")] = (
        "default"
    ),
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Contact sheet PNG (default: <stem>_preseg.png)."),
    ] = None,
) -> None:
    """Contact sheet of superpixels: one cell per parameter value, boundaries drawn."""
    from rasterio.windows import Window

    from geoseg.explore import (
        centred_window,
        parse_vary,
        parse_window,
        superpixel_sheet,
        vary_names,
    )
    from geoseg.io.raster import PICTURE_SUFFIXES, SceneReader, check_output, write_png
    from geoseg.normalize import percentile_bounds, stretch
    from geoseg.render import display_rgb

    target = output if output is not None else scene.with_name(f"{scene.stem}_preseg.png")
    with _cli_errors():
        vary_names(method)
        base = get_preset(preset).replace(superpixels=method)
        sweeps = [parse_vary(text, method=method) for text in vary or ()]
        check_output(target, PICTURE_SUFFIXES)
        with SceneReader(scene, bands=_int_list(bands), nodata=nodata) as reader:
            info = reader.info
            if window is None:
                col, row, width, height = centred_window(info.height, info.width)
            else:
                col, row, width, height = parse_window(window, height=info.height, width=info.width)
            small, small_valid = reader.read_decimated()
            low, high = percentile_bounds(small, small_valid)  # scene-wide 2-98 %
            data, valid = reader.read(Window(col, row, width, height))
            colour = info.bands[:3] if bands else reader.colour_bands() or info.bands[:3]
            if not set(colour) <= set(info.bands):  # a colour band that is not read
                colour = info.bands[:3]
            colour = colour if len(colour) == 3 else colour[:1]  # fewer show as grey
        if not valid.any():
            raise InputError(
                f"{scene}: window {col},{row},{width},{height} is all nodata; "
                "choose another --window"
            )
        image = stretch(data, low, high)
        shown = image[[info.bands.index(b) for b in colour]]
        sheet = superpixel_sheet(image, sweeps, base=base, valid=valid, display=display_rgb(shown))
        write_png(target, sheet.image)
    low_count, high_count = min(sheet.counts), max(sheet.counts)
    counts = f"{low_count}" if low_count == high_count else f"{low_count}-{high_count}"
    _err.print(f"{len(sheet.counts)} cells, {counts} superpixels -> {target}", highlight=False)


def _ignore_id(value: str | int | None) -> int | None:
    """``--ignore``: a class id, or ``none`` to score every class."""
    if value is None or isinstance(value, int):
        return value
    if value.strip().lower() == "none":
        return None
    try:
        return int(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is neither a class id nor 'none'") from None


class _Resample(str, Enum):
    nearest = "nearest"


@app.command("evaluate")
def evaluate_command(
    labels: Annotated[Path, typer.Argument(help="Label raster to score (class ids).")],
    truth: Annotated[Path, typer.Argument(help="Reference label raster (class ids).")],
    ignore: Annotated[
        int | None,
        typer.Option(
            parser=_ignore_id,
            metavar="ID|none",
            help="Reference class left out (e.g. 0 = unlabelled); none scores every class.",
        ),
    ] = 0,
    tolerance: Annotated[
        float, typer.Option(min=0, help="Boundary F1: match distance in pixels.")
    ] = 2.0,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of tables.")
    ] = False,
    resample: Annotated[
        _Resample | None,
        typer.Option(help="First reproject LABELS onto TRUTH's grid (nearest neighbour)."),
    ] = None,
    quiet: QuietOption = False,
    verbose: VerboseOption = 0,
) -> None:
    """Score a label raster against a reference: ARI, NMI, Hungarian mIoU, boundary F1.

    Grids must match (see --resample). Nodata and TRUTH's --ignore class are left out.
    """
    from geoseg.evaluate import evaluate_maps
    from geoseg.io.raster import read_label_pair

    _setup_logging(verbose, quiet)
    with _cli_errors():
        pred, ref, _ = read_label_pair(labels, truth, resample=resample is not None)
        report = evaluate_maps(pred, ref, ignore=ignore, tolerance=tolerance)
    if json_output:
        typer.echo(json.dumps({"labels": str(labels), "truth": str(truth), **report}))
        return
    Console(soft_wrap=True).print(*_evaluate_tables(report, f"{labels.name} vs {truth.name}"))


def _evaluate_tables(report: dict[str, Any], title: str) -> tuple[Table, Table]:
    """The metrics, then the IoU of each reference class with its matched class."""
    metrics = Table("metric", "value", "meaning", title=title)
    for key, name, meaning in (
        ("ari", "ARI", "1 same partition, ~0 chance"),
        ("nmi", "NMI", "1 same partition, 0 independent"),
        ("miou", "mIoU", "mean IoU, classes matched 1:1"),
        ("boundary_f1", "boundary F1", f"boundaries within {report['tolerance']:g} px"),
        ("boundary_precision", "boundary precision", "LABELS boundaries near TRUTH's"),
        ("boundary_recall", "boundary recall", "TRUTH boundaries near LABELS'"),
    ):
        metrics.add_row(name, f"{report[key]:.4f}", meaning)
    metrics.add_row("pixels", str(report["pixels"]), "scored: not nodata, not ignored")
    metrics.add_row(
        "classes", f"{report['pred_classes']} / {report['truth_classes']}", "LABELS / TRUTH"
    )
    classes = Table("truth class", "matched class", "IoU", "pixels", title="per-class IoU")
    for row in report["per_class"]:
        matched = "-" if row["pred"] is None else str(row["pred"])
        classes.add_row(str(row["truth"]), matched, f"{row['iou']:.4f}", str(row["pixels"]))
    return metrics, classes


config_app = typer.Typer(help="Show or check run configurations.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(config_file: ConfigOption = None, overrides: SetOption = None) -> None:
    """Print the resolved configuration as YAML (defaults, file, --set)."""
    from geoseg.config import config_yaml, resolve_config

    with _cli_errors():
        typer.echo(config_yaml(resolve_config(config_file, overrides=overrides or ())), nl=False)


@config_app.command("validate")
def config_validate(
    config_file: Annotated[Path, typer.Argument(help="YAML run configuration.")],
) -> None:
    """Check a run configuration or a batch file; exit 1 with the first problems."""
    from geoseg.batch import load_batch
    from geoseg.config import load_yaml, resolve_config

    with _cli_errors():
        if "scenes" in load_yaml(config_file):
            _, items = load_batch(config_file)
            bad = [item.error for item in items if item.error]
            if bad:
                raise ConfigError(bad[0])
            typer.echo(f"{config_file}: valid batch of {len(items)} scenes")
            return
        resolve_config(config_file)
    typer.echo(f"{config_file}: valid")
