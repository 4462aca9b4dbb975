"""The other commands: segment a picture, the sample scene, superpixel sheets, scores, configs."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from geoseg.cli._common import (
    ClassesOption,
    ConfigOption,
    DeviceOption,
    MaxIterationsOption,
    PresetOption,
    QuietOption,
    ScaleOption,
    SetOption,
    SnapshotsOption,
    VerboseOption,
    _cli_errors,
    _err,
    _int_list,
    _params,
    _progress_bar,
    app,
    command,
)
from geoseg.errors import PATH_CHARS, ConfigError, plain
from geoseg.segment.params import SEED_MAX, get_preset


@command("segment")
def segment_command(
    image: Annotated[Path, typer.Argument(help="Picture or raster (PNG, JPEG, TIFF, ...).")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Mean-colour rendering to write (.png/.jpg).")
    ],
    preset: PresetOption = "default",
    seed: Annotated[
        int, typer.Option(min=0, max=SEED_MAX, help="Random seed; same seed, same result.")
    ] = 0,
    labels: Annotated[
        Path | None,
        typer.Option(help="Also write the labels (1..K, 0 = nodata) as .tif or .png."),
    ] = None,
    max_iterations: MaxIterationsOption = None,
    classes: ClassesOption = None,
    scale: ScaleOption = None,
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
    from geoseg.picture import segment_picture

    with _cli_errors():
        params = _params(preset, max_iterations, classes, scale)
        with _progress_bar(params.max_iterations, quiet) as progress:
            result = segment_picture(
                image,
                output,
                params,
                labels=labels,
                snapshots=_int_list(snapshots, "iterations"),
                gif=gif,
                seed=seed,
                device=device,
                progress=progress,
            )
    if not quiet:
        _err.print(
            f"{result.n_labels} labels after {result.n_iterations} iterations -> {output}",
            highlight=False,
        )


@command("sample")
def sample_command(
    output: Annotated[Path, typer.Argument(help="GeoTIFF to write (uint16, 10 m, UTM 18N).")],
    truth: Annotated[
        Path | None, typer.Option(help="Also write the true classes (1..n) as a GeoTIFF.")
    ] = None,
    rows: Annotated[int, typer.Option(min=8)] = 512,
    cols: Annotated[int, typer.Option(min=8)] = 512,
    bands: Annotated[int, typer.Option(min=1)] = 4,
    classes: Annotated[int, typer.Option(min=1)] = 5,
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX)] = 0,
) -> None:
    """Write a synthetic multi-band scene with known regions (the bundled default)."""
    from geoseg.picture import write_sample

    with _cli_errors():
        write_sample(
            output, truth=truth, rows=rows, cols=cols, bands=bands, n_classes=classes, seed=seed
        )
    typer.echo(f"wrote {output} ({bands} bands, {rows}x{cols}, {classes} classes)")


@command("preseg")
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
    from geoseg.picture import contact_sheet

    target = output if output is not None else scene.with_name(f"{scene.stem}_preseg.png")
    with _cli_errors():
        counts = contact_sheet(
            scene,
            target,
            get_preset(preset),
            vary or (),
            method=method,
            window=window,
            bands=_int_list(bands),
            nodata=nodata,
        )
    low_count, high_count = min(counts), max(counts)
    shown = f"{low_count}" if low_count == high_count else f"{low_count}-{high_count}"
    _err.print(f"{len(counts)} cells, {shown} superpixels -> {target}", highlight=False)


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


@command("evaluate")
def evaluate_command(
    labels: Annotated[str, typer.Argument(help="Label raster to score (a path or URL).")],
    truth: Annotated[str, typer.Argument(help="Reference label raster (a path or URL).")],
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
    max_classes: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="More classes in either map is an error, as a scene given by mistake "
            "would have (default: geoseg.evaluate.MAX_CLASSES).",
        ),
    ] = None,
    quiet: QuietOption = False,
    verbose: VerboseOption = 0,
) -> None:
    """Score a label raster against a reference: ARI, NMI, Hungarian mIoU, boundary F1.

    Grids must match (see --resample). Nodata and TRUTH's --ignore class are left out.
    """
    from geoseg.evaluate import evaluate_file_maps
    from geoseg.io.labels import read_label_pair
    from geoseg.io.source import source_name

    with _cli_errors():
        pred, ref, _ = read_label_pair(labels, truth, resample=resample is not None)
        limit = {} if max_classes is None else {"max_classes": max_classes}
        report = evaluate_file_maps(pred, ref, ignore=ignore, tolerance=tolerance, **limit)
    if json_output:
        typer.echo(json.dumps({"labels": str(labels), "truth": str(truth), **report}))
        return
    title = f"{source_name(labels)} vs {source_name(truth)}"
    Console(soft_wrap=True).print(*_evaluate_tables(report, title))


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


@command("show", config_app)
def config_show(config_file: ConfigOption = None, overrides: SetOption = None) -> None:
    """Print the resolved configuration as YAML (defaults, file, --set)."""
    from geoseg.config import config_yaml, resolve_config

    with _cli_errors():
        typer.echo(config_yaml(resolve_config(config_file, overrides=overrides or ())), nl=False)


@command("validate", config_app)
def config_validate(
    config_file: Annotated[Path, typer.Argument(help="YAML run configuration.")],
) -> None:
    """Check a run configuration or a batch file; exit 1 with the first problems."""
    from geoseg.batch import load_batch
    from geoseg.config import load_yaml, resolve_config

    with _cli_errors():
        data = load_yaml(config_file)  # read once: a large file takes seconds
        if "scenes" in data:
            _, items = load_batch(config_file, data=data)
            bad = [item.error for item in items if item.error]
            if bad:
                raise ConfigError(bad[0])
            typer.echo(f"{config_file}: valid batch of {len(items)} scenes")
            return
        try:
            resolve_config(data=data)
        except ConfigError as err:
            raise ConfigError(f"{err} ({plain(config_file, PATH_CHARS)})") from None
    typer.echo(f"{config_file}: valid")
