"""The output folder of a run: checked before any work, written as one set.

:func:`preflight` checks everything about the outputs that can be known before training:
the device, the vector path and format, ``--to-crs`` against the scene's CRS, and (once
the folder exists) the free disk against :func:`disk_needed_mb`.

:class:`RunFolder` stages a run: ``OUTDIR/.geoseg-run/`` holds the resume store
(``scratch/``) and the new outputs (``stage/``) while the run works. A complete run is
published as a set: the previous ``run.yaml`` goes first (the folder is no longer a
complete run), the staged files replace their targets, the previous run's outputs that
the new run does not write again are removed, and the new ``run.yaml`` comes last. A run
that fails with an error leaves the folder as it found it: the work folder is removed,
and so is the output folder when the run created it. A run that is interrupted (Ctrl-C,
``kill``) leaves the work folder, so that the next run resumes from its scratch.

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "out"
    >>> folder = RunFolder.open(out)
    >>> _ = folder.staged(out / "labels.tif").write_text("new")
    >>> _ = (folder.stage / RECORD).write_text("record")
    >>> folder.publish([out / "labels.tif"])
    >>> sorted(p.name for p in out.iterdir())
    ['labels.tif', 'run.yaml']
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from geoseg.config import Config
from geoseg.errors import ConfigError, OutputError
from geoseg.io.vector import DRIVERS, layer_files
from geoseg.run.record import RECORD
from geoseg.types import SceneInfo

__all__ = [
    "WORK",
    "RunFolder",
    "disk_needed_mb",
    "local_copy_mb",
    "preflight",
    "vector_target",
]

logger = logging.getLogger(__name__)

WORK = ".geoseg-run"
"""The work folder inside OUTDIR: the resume store and the staged outputs."""


def vector_target(outdir: Path, config: Config) -> Path | None:
    """Where the vector layer goes: ``output.vector`` in OUTDIR, or an absolute path."""
    if config.output.vector is None:
        return None
    return outdir / config.output.vector  # an absolute path stays


def preflight(info: SceneInfo, outdir: Path, config: Config) -> None:
    """Fail with one line before any work when an output cannot be written: the device,
    the vector layer's format and folder, ``vectorize.to_crs`` against the scene."""
    from geoseg.segment.train import resolve_device

    resolve_device(config.runtime.device)
    vector = vector_target(outdir, config)
    if vector is not None:
        if vector.suffix.lower() not in DRIVERS:
            raise OutputError(
                f"{vector}: unknown vector format {vector.suffix or '(no extension)'!r}; "
                f"use one of {', '.join(DRIVERS)} (output.vector / --vector)"
            )
        if not vector.is_relative_to(outdir):
            check_folder(vector.parent, what="vector layer folder", option="--vector")
    if config.vectorize.to_crs is not None and info.crs is None and vector is not None:
        raise ConfigError(
            f"vectorize.to_crs={config.vectorize.to_crs}: the scene has no CRS to reproject "
            "from; drop --to-crs or give the scene a CRS (gdal_edit.py -a_srs)"
        )


def check_folder(folder: Path, *, what: str = "output folder", option: str = "-o") -> None:
    """``folder`` exists, is a folder and takes a new file (tried, not guessed)."""
    if not folder.exists():
        _check_ancestors(folder, option)
        raise OutputError(
            f"{folder}: {what} does not exist; create it first or choose another {option}"
        )
    if not folder.is_dir():
        raise OutputError(f"{folder}: is a file, not a folder; choose another {option}")
    try:
        handle, name = tempfile.mkstemp(dir=folder, prefix=".geoseg-probe-")
    except OSError as err:
        raise OutputError(f"{folder}: {what} is not writable ({_reason(err)}); "
                          f"fix its permissions or choose another {option}") from err  # fmt: skip
    os.close(handle)
    Path(name).unlink()


def _check_ancestors(path: Path, option: str) -> None:
    """A file where a folder of ``path`` should be is named as such."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{parent}: is a file, not a folder; choose another {option}")
            return


def _reason(err: OSError) -> str:
    return err.strerror.lower() if err.strerror else str(err)


def scratch_mb(tiles: int, read_px: int) -> float:
    """Disk of the resume store: the raw labels (at most int16) of every tile with data,
    over its read window (with overlap), uncompressed; 1 MB for the network."""
    return tiles * read_px * 2 / 2**20 + 1.0


def outputs_mb(n_px: int, valid_px: int, *, vector: bool) -> float:
    """Disk of the outputs: the label COG with overviews (uint8 before compression where
    valid; nodata, all zeros, compresses about a hundredfold), the vector layer (about
    0.5 B a valid pixel after the default speckle removal) and 1 MB for the quicklook,
    report and record."""
    overviews = 1.34 if n_px >= 256**2 else 1.0
    labels = (valid_px + 0.01 * (n_px - valid_px)) * overviews
    return (labels + (0.5 * valid_px if vector else 0)) / 2**20 + 1.0


def disk_needed_mb(info: SceneInfo, config: Config, *, local_copy: bool = False) -> float:
    """A run's disk before its valid area is known, every pixel counted as valid:
    resume store and outputs (:func:`scratch_mb`, :func:`outputs_mb`), and with
    ``local_copy`` a remote scene's bands kept on disk (uncompressed, with a mask)."""
    from geoseg.tiling import tile_grid

    tiling = config.tiling
    n_px = info.height * info.width
    grid = tile_grid(info.height, info.width, tile_size=tiling.tile_size, overlap=tiling.overlap)
    tiles = sum(1 for _ in grid)
    read_px = (tiling.tile_size + 2 * tiling.overlap) ** 2
    vector = config.output.vector is not None
    copy = local_copy_mb(info) if local_copy else 0.0
    return scratch_mb(tiles, read_px) + outputs_mb(n_px, n_px, vector=vector) + copy


def local_copy_mb(info: SceneInfo) -> float:
    """Disk of a remote scene's local copy (:class:`geoseg.io.raster.LocalCopy`): its
    bands uncompressed and a byte of mask a pixel."""
    return info.height * info.width * (info.count * np.dtype(info.dtype).itemsize + 1) / 2**20


def check_disk(folder: Path, needed_mb: float) -> None:
    """Fail when ``folder``'s file system has clearly too little room (under half of
    ``needed_mb``); warn when it has less than ``needed_mb``."""
    free_mb = shutil.disk_usage(folder).free / 2**20
    if free_mb < needed_mb / 2:
        raise OutputError(
            f"{folder}: no space left for this run: it needs about {needed_mb:.1f} MB, "
            f"{free_mb:.1f} MB free; free some space or choose another -o"
        )
    if free_mb < needed_mb:
        logger.warning(
            "%s: %.1f MB free, this run may need about %.1f MB", folder, free_mb, needed_mb
        )


class RunFolder:
    """OUTDIR while a run works in it: see the module's docstring."""

    def __init__(self, outdir: Path, *, created: bool) -> None:
        self.outdir = outdir
        self.created = created
        self.work = outdir / WORK
        self.stage = self.work / "stage"
        self.scratch = self.work / "scratch"

    @classmethod
    def open(cls, outdir: Path) -> RunFolder:
        """Create OUTDIR when needed (its parent must exist), check that it takes files,
        and start an empty stage (what an interrupted run staged is dropped)."""
        outdir = Path(outdir)
        if outdir.exists() and not outdir.is_dir():
            raise OutputError(f"{outdir}: exists and is not a folder; choose another -o")
        created = not outdir.exists()
        if created:
            parent = outdir.parent
            if not parent.is_dir():
                _check_ancestors(outdir, "-o")
                raise OutputError(
                    f"{parent}: output folder's parent does not exist; create it first "
                    "or choose another -o"
                )
            try:
                outdir.mkdir()
            except OSError as err:
                raise OutputError(
                    f"{outdir}: cannot create the output folder ({_reason(err)}); choose another -o"
                ) from err
        folder = cls(outdir, created=created)
        try:
            check_folder(outdir)
            shutil.rmtree(folder.stage, ignore_errors=True)
            folder.stage.mkdir(parents=True)
        except BaseException:
            folder.discard()
            raise
        return folder

    def staged(self, target: Path) -> Path:
        """Where a run writes the output that is to end at ``target``."""
        target = Path(target)
        if target.is_relative_to(self.outdir):
            path = self.stage / target.relative_to(self.outdir)
        else:  # a vector layer elsewhere: its files have a folder of their own
            path = self.stage / "_elsewhere" / target.name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def publish(self, outputs: Sequence[Path]) -> None:
        """Move the staged ``outputs`` (their final paths) into place as a set, remove
        the previous run's outputs that are not written again, then the record (staged
        as ``stage/run.yaml``) last; the work folder goes."""
        record = self.outdir / RECORD
        previous = self._previous_outputs()
        try:
            record.unlink(missing_ok=True)  # from here the folder is not a complete run
            for target in outputs:
                for part in layer_files(self.staged(target)):
                    _move(part, target.parent / part.name)
            kept = {Path(p) for p in outputs}
            for old in previous:
                if old not in kept:
                    for part in layer_files(old):
                        part.unlink(missing_ok=True)
            _move(self.stage / RECORD, record)
        except OSError as err:
            raise OutputError(f"{self.outdir}: outputs cannot be moved into place ({err})") from err
        shutil.rmtree(self.work, ignore_errors=True)

    def discard(self) -> None:
        """After a failed run: the work folder goes, and OUTDIR when this run made it
        and nothing else is in it."""
        shutil.rmtree(self.work, ignore_errors=True)
        if self.created:
            with contextlib.suppress(OSError):
                self.outdir.rmdir()

    def _previous_outputs(self) -> list[Path]:
        """The outputs the folder's current record lists (none without a record)."""
        try:
            data = yaml.safe_load((self.outdir / RECORD).read_text())
            listed = data.get("outputs") or [] if isinstance(data, dict) else []
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            return []
        return [self.outdir / str(p) for p in listed]


def _move(source: Path, target: Path) -> None:
    try:
        source.replace(target)
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise
        shutil.move(source, target)  # another file system: copied, then removed
