"""Many scenes from one YAML file: resume, failure isolation, local or Dask executors.

A batch file is a run configuration (any section, as for ``geoseg run --config``) plus
``scenes``, a list of paths or globs relative to the batch file, each optionally with
its own ``set`` overrides::

    scenes:
      - data/*.tif
      - path: data/odd.tif
        set: ["input.bands=[4, 3, 2]"]
    output:
      dir: out/{stem}            # relative to the batch file
    runtime:
      executor: local            # or dask, with address: tcp://host:8786

Paths written in the batch file (``scenes``, ``output.dir``, ``segment.scribbles``, also
in a scene's ``set``, e.g. ``set: ["segment.scribbles=strokes/odd.gpkg"]``: each scene
its own strokes) are relative to the batch file's folder; ``--set output.dir=...`` on
the command line is relative to the current folder, as any path typed there. No two scenes may write
into the same folder, compared once ``..`` and symbolic links are resolved.

Every scene runs :func:`geoseg.run.run_scene` in its own output directory. A scene
whose directory already holds a complete run with the same configuration (its
``run.yaml``, written last, and every output it lists) is skipped; an interrupted scene
resumes from its finished tiles. A failing scene is reported and the others still run.
"""

from __future__ import annotations

import csv
import glob
import logging
import os
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geoseg.config import Config, load_yaml, output_dir, parse_override, resolve_config
from geoseg.errors import PATH_CHARS, ConfigError, GeosegError, OutputError, plain, quote
from geoseg.io.output import atomic_path
from geoseg.io.source import Source, as_source, is_remote, source_stem
from geoseg.runtime import share_cores, use_threads

if TYPE_CHECKING:
    from geoseg.run.record import RunRecord
    from geoseg.types import Progress, StageProgress

__all__ = ["BatchItem", "Outcome", "load_batch", "run_batch", "write_summary"]

logger = logging.getLogger(__name__)

SUMMARY_FIELDS = ("scene", "status", "seconds", "classes", "polygons", "error")


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One scene of a batch: where its outputs go and its resolved configuration, or
    why it cannot run (``error``)."""

    scene: Source
    outdir: Path
    config: Config | None
    error: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one scene: ``done``, ``skipped`` (already complete) or
    ``failed`` (with a one-line error)."""

    scene: str
    status: str
    seconds: float = 0.0
    classes: int | None = None
    polygons: int | None = None
    error: str = ""
    outdir: str = ""


ScenesProgress = Callable[[int, int, str], None]
"""``progress(done, total, scene)`` after each scene."""


def load_batch(
    path: str | Path,
    *,
    overrides: Sequence[str] = (),
    data: Mapping[str, Any] | None = None,
) -> tuple[Config, list[BatchItem]]:
    """The batch file's shared configuration and its scenes, globs expanded.

    ``data`` is the file's content when it has been read already (``load_yaml``). A bad
    shared setting raises :class:`~geoseg.errors.ConfigError`; a pattern that matches
    nothing or a scene's bad override becomes a failing item instead.
    """
    path = Path(path)
    data = load_yaml(path) if data is None else dict(data)
    entries = data.pop("scenes", None)
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{_shown(path)}: needs a non-empty list 'scenes' of paths or globs")
    base_dir = path.parent
    for (section, key), beside in BESIDE.items():
        settings = data.get(section)
        if isinstance(settings, dict) and isinstance(settings.get(key), str):
            data[section] = {**settings, key: beside(settings[key], base_dir)}
    try:
        shared = resolve_config(data=data, overrides=overrides)
    except ConfigError as err:
        raise ConfigError(f"{err} ({_shown(path)})") from None
    items: list[BatchItem] = []
    for number, entry in enumerate(entries, start=1):
        pattern, extra = _entry(entry, number, path)
        if "\0" in pattern:
            error = f"{_shown(pattern)}: a NUL character, which no path holds (scenes[{number}])"
            items.append(BatchItem(Path(_shown(pattern)), Path(), None, error))
            continue
        remote = is_remote(pattern)  # a URL is taken as it is: no glob, no folder
        full = pattern if remote or Path(pattern).is_absolute() else str(base_dir / pattern)
        globbed = not remote and glob.has_magic(full)
        matches = sorted(glob.glob(full)) if globbed else [full]  # noqa: PTH207
        if not matches:
            error = f"{_shown(full)}: no file matches this pattern"
            items.append(BatchItem(Path(full), Path(), None, error))
        for scene in map(as_source, matches):
            try:
                config = shared
                if extra:  # the scene's own settings win, even over --set
                    config = _beside_config(
                        resolve_config(data=data, overrides=[*overrides, *extra]), extra, base_dir
                    )
                outdir = output_dir(scene, config)
                if remote and config.output.dir is None:  # beside the batch file
                    outdir = base_dir / outdir
                items.append(BatchItem(scene, outdir, config))
            except ConfigError as err:
                items.append(BatchItem(scene, Path(), None, f"{err} (scenes[{number}])"))
    _check_distinct(items, path)
    return shared, items


def _entry(entry: object, number: int, path: Path) -> tuple[str, list[str]]:
    """A ``scenes`` entry as its pattern and its ``set`` lines."""
    if isinstance(entry, str) and entry.strip():
        return entry, []
    if isinstance(entry, dict) and isinstance(entry.get("path"), str) and entry["path"].strip():
        extra = entry.get("set", [])
        if set(entry) <= {"path", "set"} and isinstance(extra, list):
            bad = [line for line in extra if not isinstance(line, str)]
            if not bad:
                return entry["path"], extra
            raise ConfigError(
                f"{_shown(path)}: scenes[{number}]: set: {quote(bad[0])} is not a line "
                'section.key=value; quote it, e.g. "input.bands=[4, 3, 2]"'
            )
        keys = sorted(map(str, entry))
        raise ConfigError(
            f"{_shown(path)}: scenes[{number}]: expected path and an optional list 'set' of "
            f"section.key=value; got keys {quote(keys)}"
        )
    raise ConfigError(
        f"{_shown(path)}: scenes[{number}]={quote(entry)}: expected a path, a glob or "
        "{path: ..., set: [...]}"
    )


def _shown(path: str | os.PathLike[str]) -> str:
    """A path as a message shows it: whole, unless no real path could be that."""
    return plain(os.fspath(path), PATH_CHARS)


def _beside(folder: str, base_dir: Path) -> str:
    """An ``output.dir`` template written in the batch file, relative to its folder
    (the folder's own braces escaped, so that only ``{stem}`` is filled in)."""
    if Path(folder).is_absolute():
        return folder
    base = str(base_dir).replace("{", "{{").replace("}", "}}")
    return str(Path(base) / folder)


def _beside_path(path: str, base_dir: Path) -> str:
    """A file path written in the batch file, relative to its folder."""
    return str(base_dir / path)


BESIDE = {("output", "dir"): _beside, ("segment", "scribbles"): _beside_path}
"""(section, key) of the settings that are paths relative to the batch file's folder,
and how each is made so (``output.dir`` is a template: its folder's braces escaped)."""


def _beside_config(config: Config, extra: Sequence[str], base_dir: Path) -> Config:
    """``config`` with the paths of :data:`BESIDE` a scene's ``set`` gave (the last one
    wins) taken relative to the batch file's folder."""
    parsed = list(map(parse_override, extra))
    for (section, key), beside in BESIDE.items():
        given = [value for name, value in parsed if name == [section, key]]
        settings = getattr(config, section)
        if given and isinstance(given[-1], str) and getattr(settings, key) == given[-1]:
            settings = settings.model_copy(update={key: beside(given[-1], base_dir)})
            config = config.model_copy(update={section: settings})
    return config


def _check_distinct(items: Sequence[BatchItem], path: Path) -> None:
    """No two scenes write into one folder, whatever the spelling (``out/x`` and
    ``out/../out/x``, a symbolic link to it)."""
    seen: dict[str, BatchItem] = {}
    for item in items:
        if item.config is None:
            continue
        real = os.path.realpath(item.outdir)
        other = seen.setdefault(real, item)
        if other is not item:
            raise ConfigError(
                f"{_shown(path)}: several scenes write into {_shown(real)} ({_shown(other.scene)} "
                f"and {_shown(item.scene)}); put {{stem}} in output.dir"
            )


def run_batch(
    items: Sequence[BatchItem],
    *,
    workers: int = 1,
    executor: str = "local",
    address: str | None = None,
    progress: ScenesProgress | None = None,
    tile_progress: Progress | None = None,
) -> list[Outcome]:
    """Run every item, ``workers`` at a time; outcomes in the order of ``items``.

    ``executor="local"`` runs in this process (``workers=1``, with ``tile_progress``) or in
    ``workers`` worker processes; ``"dask"`` submits one task per scene to the scheduler at
    ``address``, or to a LocalCluster of ``workers`` worker processes started here.
    """
    from geoseg.run.record import completed

    if workers < 1:
        raise ConfigError(f"--workers={workers} must be at least 1")
    outcomes: dict[int, Outcome] = {}
    todo: list[int] = []
    for i, item in enumerate(items):
        if item.config is None:
            outcomes[i] = Outcome(str(item.scene), "failed", error=item.error)
        elif (record := completed(item.outdir, item.config)) is not None:
            outcomes[i] = _skipped(item, record)
        else:
            todo.append(i)
    done = len(outcomes)
    if progress is not None:
        progress(done, len(items), "")
    for i, outcome in _execute(items, todo, workers, executor, address, tile_progress):
        outcomes[i] = outcome
        done += 1
        logger.info("%s: %s %s", outcome.scene, outcome.status, outcome.error)
        if progress is not None:
            progress(done, len(items), Path(outcome.scene).name)
    return [outcomes[i] for i in range(len(items))]


def write_summary(outcomes: Sequence[Outcome], path: str | Path) -> None:
    """``batch_summary.csv``: one row per scene (scene, status, seconds, classes,
    polygons, error), written under a temporary name and renamed."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=SUMMARY_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for outcome in outcomes:
            writer.writerow(asdict(outcome))


def _execute(
    items: Sequence[BatchItem],
    todo: list[int],
    workers: int,
    executor: str,
    address: str | None,
    tile_progress: Progress | None,
) -> Iterator[tuple[int, Outcome]]:
    if not todo:
        return
    if executor == "dask":
        yield from _execute_dask(items, todo, workers, address)
    elif workers == 1:
        for i in todo:
            item = items[i]
            yield i, run_item(item.scene, item.outdir, item.config, tile_progress)
    else:
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=get_context("spawn"),
            initializer=use_threads,
            initargs=(share_cores(workers),),
        ) as pool:
            futures: dict[Future[Outcome], int] = {
                pool.submit(run_item, items[i].scene, items[i].outdir, items[i].config): i
                for i in todo
            }
            for future in as_completed(futures):
                yield futures[future], _result(future, items[futures[future]])


def _execute_dask(
    items: Sequence[BatchItem], todo: list[int], workers: int, address: str | None
) -> Iterator[tuple[int, Outcome]]:
    from distributed import as_completed as dask_completed

    from geoseg.run.distribute import dask_client

    with dask_client(address, workers=workers) as client:
        futures = {
            client.submit(
                run_item,
                items[i].scene,
                items[i].outdir,
                items[i].config,
                key=f"geoseg-{i}-{source_stem(items[i].scene)}",
                pure=False,
            ): i
            for i in todo
        }
        for future in dask_completed(futures):
            yield futures[future], _result(future, items[futures[future]])


def _result(future: Any, item: BatchItem) -> Outcome:
    """A worker's outcome, or a failed one when the worker itself died."""
    try:
        outcome: Outcome = future.result()
    except Exception as err:  # the worker process crashed or was lost
        return Outcome(str(item.scene), "failed", error=f"worker lost: {err}")
    return outcome


def run_item(
    scene: Source,
    outdir: Path,
    config: Config | None,
    tile_progress: Progress | None = None,
) -> Outcome:
    """Run one scene, turning any error into a failed outcome (one line)."""
    from geoseg.run.scene import run_scene

    start = time.perf_counter()
    try:
        if config is None:
            raise ConfigError(f"{scene}: no configuration")
        try:  # the output.dir template may name folders that do not exist yet
            outdir.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(f"{outdir.parent}: cannot be created ({err})") from err
        # a batch distributes scenes; their tiles stay in the scene's own process
        result = run_scene(
            scene, outdir, config, progress=_tiles_only(tile_progress), distribute_tiles=False
        )
    except GeosegError as err:
        return Outcome(str(scene), "failed", _since(start), error=str(err))
    except Exception as err:  # isolation: one scene's bug must not stop the batch
        logger.debug("%s", traceback.format_exc())
        message = f"{type(err).__name__}: {err}".splitlines()[0]
        return Outcome(str(scene), "failed", _since(start), error=message)
    return Outcome(
        str(scene),
        "done",
        _since(start),
        result.n_classes,
        result.n_features if result.vector is not None else None,
        outdir=str(outdir),
    )


def _since(start: float) -> float:
    return round(time.perf_counter() - start, 1)


def _skipped(item: BatchItem, record: RunRecord) -> Outcome:
    return Outcome(
        str(item.scene),
        "skipped",
        0.0,
        record.classes.count,
        None if record.vector is None else record.vector.features,
        outdir=str(item.outdir),
    )


def _tiles_only(progress: Progress | None) -> StageProgress | None:
    """A run's stage progress reduced to its tiles (the batch's tile bar)."""
    if progress is None:
        return None
    return lambda stage, done, total: progress(done, total) if stage == "predict" else None
