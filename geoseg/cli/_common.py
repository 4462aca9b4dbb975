"""What every geoseg command shares: the app, error handling, logging, bars, options."""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from geoseg import __version__
from geoseg.errors import GeosegError
from geoseg.segment.params import PRESETS, SegmentParams, get_preset

__all__ = ["app"]  # the commands: geoseg.cli.scene_commands, geoseg.cli.tool_commands

app = typer.Typer(
    name="geoseg",
    help="Unsupervised segmentation of satellite scenes and pictures.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_err = Console(stderr=True, soft_wrap=True)  # a log line stays one line


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
        line = " ".join(str(err).splitlines())  # whatever text a message quotes, one line
        _err.print(f"geoseg: error: {line}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from err


def command(name: str, group: typer.Typer = app) -> Callable[[Callable[..., None]], Any]:
    """Register a command on ``group``. Logging is set up here, once for every command
    with ``--verbose`` / ``--quiet`` options, before the command body runs."""

    def register(function: Callable[..., None]) -> Any:
        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> None:
            if "verbose" in kwargs or "quiet" in kwargs:
                _setup_logging(kwargs.get("verbose", 0), kwargs.get("quiet", False))
            function(*args, **kwargs)

        return group.command(name)(run)

    return register


def _setup_logging(verbose: int, quiet: bool) -> None:
    """geoseg's own messages at INFO (ERROR with -q); Python warnings and the messages
    of GDAL and the libraries only with -v, as log lines, never raw."""
    level = logging.ERROR if quiet else logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)  # NotGeoreferencedWarning, numpy's RuntimeWarning ...
    libraries = logging.DEBUG if verbose else logging.CRITICAL
    for name in ("py.warnings", "rasterio", "pyogrio", "fiona", "distributed", "numba"):
        logging.getLogger(name).setLevel(libraries)


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


HEARTBEAT_S = 10.0
"""Seconds between the plain progress lines written when stderr is not a terminal;
the environment variable ``GEOSEG_HEARTBEAT_S`` sets another (a program that shows
geoseg's progress, such as the QGIS plugin, asks for 0.5)."""


def _heartbeat_s() -> float:
    try:
        seconds = float(os.environ.get("GEOSEG_HEARTBEAT_S", HEARTBEAT_S))
    except ValueError:
        return HEARTBEAT_S
    return seconds if seconds >= 0 else HEARTBEAT_S


@contextmanager
def _stage_bar(quiet: bool) -> Iterator[Callable[[str, int, int], None]]:
    """``progress(stage, done, total)`` of a run: a rich bar that follows the stages on
    a terminal; elsewhere (a log file, a pipe) one plain line every
    :data:`HEARTBEAT_S` seconds (or ``GEOSEG_HEARTBEAT_S``), the first after as long;
    silent with -q."""
    if quiet:
        yield lambda stage, done, total: None
        return
    if not _err.is_terminal:
        start = last = time.monotonic()
        every = _heartbeat_s()

        def heartbeat(stage: str, done: int, total: int) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= every:
                last = now
                of = f"/{total}" if total else ""
                _err.print(f"geoseg: {stage} {done}{of} ({now - start:.0f} s)",
                           markup=False, highlight=False)  # fmt: skip

        yield heartbeat
        return
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=_err, transient=True) as bar:
        task = bar.add_task("statistics", total=None)
        shown = [""]

        def update(stage: str, done: int, total: int) -> None:
            if stage != shown[0]:
                shown[0] = stage
                bar.reset(task, total=total or None, description=stage)
            bar.update(task, completed=done, total=total or None)

        yield update


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
ScaleOption = Annotated[
    float | None,
    typer.Option(
        "--scale",
        help="Ground scale in metres: the smallest land-cover patch that is its own "
        "class; classes whose patches are narrower join the cover they are part of "
        "(segment.scale; 0: off).",
    ),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
VerboseOption = Annotated[
    int,
    typer.Option(
        "--verbose",
        "-v",
        count=True,
        help="Debug messages, with Python's warnings and GDAL's and the libraries' messages.",
    ),
]
SnapshotsOption = Annotated[
    str | None,
    typer.Option(
        help="Write training.gif: the label map at these iterations, e.g. 1,2,4,8,16,32,64."
    ),
]


def _params(
    preset: str, max_iterations: int | None, classes: int | None, scale: float | None = None
) -> SegmentParams:
    """The named preset, with the iteration limit, class count and ground scale overridden
    when given."""
    params = get_preset(preset)
    if scale is not None:
        params = params.replace(scale=scale)
    if max_iterations is not None:
        params = params.replace(max_iterations=max_iterations)
    if classes is not None:
        params = params.replace(n_classes=classes)
    return params


def _int_list(text: str | None, what: str = "band numbers") -> list[int] | None:
    if not text:
        return None
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of {what}") from None


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
