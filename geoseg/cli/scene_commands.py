"""The commands on scenes: run, vectorize, batch, plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from geoseg.cli._common import (
    _PRESET_HELP,
    ClassesOption,
    ConfigOption,
    MaxIterationsOption,
    QuietOption,
    ScaleOption,
    SetOption,
    SnapshotsOption,
    VerboseOption,
    _batch_bars,
    _cli_errors,
    _err,
    _int_list,
    _stage_bar,
    command,
)


@command("run")
def run_command(
    scene: Annotated[
        str,
        typer.Argument(
            help="GeoTIFF (or any GDAL raster) to segment: a path, an http(s)://, s3://, "
            "gs:// or az:// URL, or a GDAL /vsi... path."
        ),
    ],
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
    scale: ScaleOption = None,
    scribbles: Annotated[
        Path | None,
        typer.Option(
            help="Vector file of strokes naming the classes: points, lines or polygons, any "
            "CRS and OGR format (segment.scribbles).",
        ),
    ] = None,
    scribble_field: Annotated[
        str | None,
        typer.Option(help="The strokes' field holding class names (segment.scribble_field)."),
    ] = None,
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

    shortcuts: dict[str, dict[str, object]] = {
        "segment": {
            "preset": preset,
            "mode": mode,
            "max_iterations": max_iterations,
            "n_classes": classes,
            "scale": scale,
            "scribbles": str(scribbles.absolute()) if scribbles is not None else None,
            "scribble_field": scribble_field,
        },
        "input": {"bands": _int_list(bands), "nodata": nodata},
        "tiling": {"tile_size": tile_size, "overlap": overlap},
        "runtime": {"seed": seed, "device": device},
        "vectorize": {"to_crs": to_crs, "min_area": min_area},
        "output": {
            "vector": str(vector.absolute()) if vector is not None else None,
            "snapshots": _int_list(snapshots, "iterations"),
        },
    }
    given = {
        section: {key: value for key, value in entries.items() if value is not None}
        for section, entries in shortcuts.items()
    }
    with _cli_errors():
        config = resolve_config(config_file, values=given, overrides=overrides or ())
        target = outdir if outdir is not None else output_dir(scene, config)
        with _stage_bar(quiet) as progress:
            result = run_scene(scene, target, config, progress=progress)
    if not quiet:
        polygons = f", {result.n_features} polygons -> {result.vector}" if result.vector else ""
        _err.print(
            f"{result.n_classes} classes over {result.n_tiles} tiles -> {result.labels}" + polygons,
            highlight=False,
        )


@command("vectorize")
def vectorize_command(
    labels: Annotated[Path, typer.Argument(help="Label raster (class ids, 0 = nodata).")],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Vector file: .gpkg .shp .geojson .fgb or .parquet."),
    ] = Path("segments.gpkg"),
    scene: Annotated[
        str | None,
        typer.Option(
            help="The scene on the same grid (a path or URL): band statistics and similarity."
        ),
    ] = None,
    config_file: ConfigOption = None,
    overrides: SetOption = None,
    to_crs: Annotated[
        str | None, typer.Option(help="Reproject the vector layer, e.g. EPSG:4326.")
    ] = None,
    min_area: Annotated[
        float | None,
        typer.Option(help="Merge segments smaller than this many pixels into a neighbour."),
    ] = None,
    labels_out: Annotated[
        Path | None,
        typer.Option(
            help="Also write the labels after small-region merging here (a new .tif; "
            "LABELS itself is never written), renumbered 1..K by area like the polygons."
        ),
    ] = None,
    quiet: QuietOption = False,
    verbose: VerboseOption = 0,
) -> None:
    """Polygons of a label raster: one per connected region of one class.

    LABELS is only read. Without --labels-out the polygons keep its class ids."""
    from geoseg.config import resolve_config
    from geoseg.io.output import check_not_input
    from geoseg.run.products import vectorize_labels

    given = {
        "vectorize": {
            key: value
            for key, value in {"to_crs": to_crs, "min_area": min_area}.items()
            if value is not None
        }
    }
    with _cli_errors(), _stage_bar(quiet) as progress:
        config = resolve_config(config_file, values=given, overrides=overrides or ())
        if labels_out is not None:
            check_not_input(labels_out, [labels, scene], option="--labels-out")
        summary = vectorize_labels(
            labels,
            output,
            config,
            scene=scene,
            labels_out=labels_out,
            progress=lambda done, total: progress("vectorize", done, total),
        )
    if not quiet:
        _err.print(f"{summary.features} polygons -> {output}", highlight=False)


@command("batch")
def batch_command(
    batch_file: Annotated[Path, typer.Argument(help="YAML: a run config plus 'scenes'.")],
    workers: Annotated[
        int, typer.Option("--workers", "-w", help="Worker processes: scenes at a time.")
    ] = 1,
    overrides: SetOption = None,
    summary: Annotated[
        Path | None,
        typer.Option(help="Summary CSV (default: <batch file stem>_summary.csv beside it)."),
    ] = None,
    quiet: QuietOption = False,
    verbose: VerboseOption = 0,
) -> None:
    """Run every scene of a batch file; completed scenes are skipped, failures reported.

    Exit status 1 when any scene failed. With runtime.executor: dask the scenes run on
    a Dask cluster (runtime.address, or a LocalCluster of --workers processes).
    """
    from geoseg.batch import SUMMARY_FIELDS, load_batch, run_batch, write_summary

    with _cli_errors():
        shared, items = load_batch(batch_file, overrides=overrides or ())
        with _batch_bars(quiet, tiles=workers == 1 and shared.runtime.executor == "local") as (
            scenes_bar,
            tiles_bar,
        ):
            outcomes = run_batch(
                items,
                workers=workers,
                executor=shared.runtime.executor,
                address=shared.runtime.address,
                progress=scenes_bar,
                tile_progress=tiles_bar,
            )
        default = batch_file.with_name(f"{batch_file.stem}_summary.csv")
        target = summary if summary is not None else default
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


@command("reclass")
def reclass_command(
    run_dir: Annotated[Path, typer.Argument(help="The folder of a finished scene-mode run.")],
    classes: Annotated[
        int, typer.Option("--classes", help="How many classes to keep (1..the run's).")
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Folder to write into (default RUN/classes_K)."),
    ] = None,
    quiet: QuietOption = False,
    verbose: VerboseOption = 0,
) -> None:
    """Fewer, coarser classes of a finished run, from its class tree, without training:
    labels.tif and the vector layer, each class a union of the run's classes."""
    from geoseg.run.reclass import reclass_run

    with _cli_errors():
        result = reclass_run(run_dir, classes, output)
    if not quiet:
        layer = f", {result.n_features} polygons -> {result.vector}" if result.vector else ""
        _err.print(f"{result.n_classes} classes -> {result.labels}{layer}", highlight=False)


@command("plan")
def plan_command(
    scene: Annotated[
        str, typer.Argument(help="GeoTIFF (or any GDAL raster) to plan: a path or URL.")
    ],
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
    from geoseg.io.source import source_name
    from geoseg.plan import plan_scene

    with _cli_errors():
        config = resolve_config(config_file, overrides=overrides or ())
        plan = plan_scene(scene, config)
    if as_json:
        typer.echo(json.dumps(plan.as_dict()))
        return
    table = Table("", "", title=f"geoseg plan {source_name(scene)}", show_header=False)
    for key, value in plan.as_dict().items():
        text = (
            ", ".join(f"{k} {v} s" for k, v in value.items()) if isinstance(value, dict) else value
        )
        table.add_row(key.replace("_", " "), str(text))
    Console(soft_wrap=True).print(table)
