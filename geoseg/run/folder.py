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

OUTDIR is the only place a run removes or replaces anything. The previous record's
``outputs`` are read back as untrusted text: each is resolved (symlinks too) and removed
only when it lies inside OUTDIR; a vector layer written elsewhere is replaced only when
the new run writes it again. The work folder is never followed through a symbolic link.
One run at a time writes into OUTDIR: :class:`RunFolder` holds an exclusive lock on
``OUTDIR/.geoseg-lock`` (``fcntl.flock``, released by the system when the holder dies,
so a killed run's lock is taken over) and a second run fails at once, naming the holder's
process and host written in the file.

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
import socket
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from geoseg.config import Config
from geoseg.errors import ConfigError, OutputError
from geoseg.io.output import no_link
from geoseg.io.vector import DRIVERS, layer_files
from geoseg.run.record import RECORD, read_record_data
from geoseg.types import SceneInfo

__all__ = [
    "LOCK",
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

LOCK = ".geoseg-lock"
"""The lock file inside OUTDIR, held while a run works there."""


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
    """Disk of a remote scene's local copy (:class:`geoseg.io.raster_write.LocalCopy`): its
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
        self.lock: OutdirLock | None = None

    @classmethod
    def open(cls, outdir: Path) -> RunFolder:
        """Create OUTDIR when needed (its parent must exist), check that it takes files,
        take its lock (:class:`OutdirLock`) and start an empty stage (what an
        interrupted run staged is dropped)."""
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
            folder.lock = OutdirLock.acquire(outdir)
        except BaseException:
            if created:
                with contextlib.suppress(OSError):
                    outdir.rmdir()
            raise
        try:
            for path in (folder.work, folder.stage, folder.scratch):
                no_link(path)  # never written or emptied elsewhere
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
        self.release()

    def discard(self) -> None:
        """After a failed run: the work folder goes, and OUTDIR when this run made it
        and nothing else is in it."""
        shutil.rmtree(self.work, ignore_errors=True)
        self.release()
        if self.created:
            with contextlib.suppress(OSError):
                self.outdir.rmdir()

    def release(self) -> None:
        """Let another run into OUTDIR (also after an interruption; idempotent)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def _previous_outputs(self) -> list[Path]:
        """The outputs the folder's current record lists that lie inside OUTDIR
        (resolved, symlinks too); none without a record. The record is untrusted text:
        an entry that is absolute or climbs out of OUTDIR is never removed (a vector
        layer written elsewhere is replaced only when a run writes it again)."""
        try:
            data = read_record_data(self.outdir / RECORD)
            listed = data.get("outputs") or [] if isinstance(data, dict) else []
        except (OSError, ValueError, yaml.YAMLError):
            return []
        if not isinstance(listed, list):
            return []
        return [path for entry in listed if (path := inside(self.outdir, entry)) is not None]


def inside(outdir: Path, entry: object) -> Path | None:
    """``OUTDIR/entry`` when it names a file that lies inside ``outdir`` once both are
    resolved (``..`` and symbolic links followed), else ``None``; the record's own name,
    the work folder and the lock are never an output.

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp())
    >>> inside(out, "labels.tif") == out / "labels.tif"
    True
    >>> [inside(out, e) for e in ("../x.txt", "/etc/passwd", "a/../../x", 5, ".geoseg-run/x")]
    [None, None, None, None, None]
    """
    if not isinstance(entry, str) or not entry or "\0" in entry:
        return None
    root = outdir.resolve()
    try:
        path = (outdir / entry).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return None
    if path == root or not path.is_relative_to(root):
        return None
    first = path.relative_to(root).parts[0]
    if first in (RECORD, WORK, LOCK):
        return None
    return outdir / path.relative_to(root)


class OutdirLock:
    """An exclusive lock on ``OUTDIR/.geoseg-lock``, holding ``pid host`` of its
    holder. ``fcntl.flock`` (a system lock, dropped when the holder's process ends in
    any way) decides who holds it; the text only names the holder in the message.

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp())
    >>> lock = OutdirLock.acquire(out)
    >>> OutdirLock.acquire(out)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    geoseg.errors.OutputError: ...: another geoseg run (pid ...) is writing into this folder; ...
    >>> lock.release(); (out / LOCK).exists()
    False
    """

    def __init__(self, path: Path, handle: int) -> None:
        self.path, self._handle = path, handle

    @classmethod
    def acquire(cls, outdir: Path) -> OutdirLock:
        """Take the lock, or fail at once when another live process holds it."""
        path = outdir / LOCK
        for _ in range(10):  # the file was replaced between open and lock: again
            handle = _open_lock(path)
            try:
                if not _try_lock(handle):
                    raise OutputError(
                        f"{outdir}: another geoseg run ({_holder(handle)}) is writing into "
                        "this folder; wait for it to end or choose another -o"
                    )
                if _same_file(handle, path):
                    os.ftruncate(handle, 0)
                    os.write(handle, f"{os.getpid()} {socket.gethostname()}\n".encode())
                    return cls(path, handle)
            except BaseException:
                os.close(handle)
                raise
            os.close(handle)
        raise OutputError(f"{path}: cannot take the folder's lock; choose another -o")

    def release(self) -> None:
        """Remove the file, then let go of the lock (a run waiting on the old file
        sees it is gone and takes a new one)."""
        with contextlib.suppress(OSError):
            if _same_file(self._handle, self.path):
                self.path.unlink()
        os.close(self._handle)


def _open_lock(path: Path) -> int:
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, flags, 0o644)
    except OSError as err:
        if err.errno == errno.ELOOP:  # a symbolic link: not followed, replaced
            path.unlink()
            return os.open(path, flags, 0o644)
        raise OutputError(f"{path}: cannot create the folder's lock ({_reason(err)}); "
                          "choose another -o") from err  # fmt: skip


def _try_lock(handle: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows: msvcrt's lock of the first byte
        import msvcrt

        try:
            msvcrt.locking(handle, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _same_file(handle: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(handle), path.stat(follow_symlinks=False))
    except OSError:
        return False


def _holder(handle: int) -> str:
    try:
        words = os.pread(handle, 200, 0).decode(errors="replace").split()
    except OSError:
        words = []
    if len(words) >= 2 and words[0].isdigit():
        return f"pid {words[0]} on {words[1][:64]}"
    return "its process is starting"


def _move(source: Path, target: Path) -> None:
    try:
        source.replace(target)
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise
        shutil.move(source, target)  # another file system: copied, then removed
