"""Output paths: checked before any work is done, then written under a temporary name
and renamed on success, so an interrupted run never leaves a half-written file under
the final name."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from geoseg.errors import OutputError
from geoseg.io.source import Source, is_remote

__all__ = ["atomic_path", "check_not_input", "check_output", "no_link"]

logger = logging.getLogger(__name__)


def check_output(
    path: str | os.PathLike[str],
    suffixes: tuple[str, ...] = (),
    *,
    inputs: Sequence[Source | None] = (),
    option: str = "-o",
) -> None:
    """Fail before any work if ``path`` cannot be written: it is one of the command's
    ``inputs`` (never written), its directory is missing or not writable, or (when
    ``suffixes`` are given) its extension is not among them."""
    path = Path(path)
    check_not_input(path, inputs, option=option)
    if suffixes and path.suffix.lower() not in suffixes:
        raise OutputError(
            f"{path}: unsupported extension {path.suffix!r}; use one of {', '.join(suffixes)}"
        )
    if not path.parent.is_dir():
        raise OutputError(f"{path.parent}: output directory does not exist; create it first")
    if not os.access(path.parent, os.W_OK):
        raise OutputError(f"{path.parent}: output directory is not writable")


def check_not_input(
    path: str | os.PathLike[str], inputs: Sequence[Source | None], *, option: str = "-o"
) -> None:
    """Fail when ``path`` is the same file as one of the local ``inputs`` (symbolic
    links and ``..`` resolved): a command never writes what it reads.

    >>> check_not_input("a/../scene.tif", ["scene.tif"], option="--labels")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    geoseg.errors.OutputError: a/../scene.tif: is an input of this command, ...
    """
    target = Path(path).resolve()
    for source in inputs:
        if source is None or is_remote(source):
            continue
        if Path(source).resolve() == target:
            raise OutputError(
                f"{path}: is an input of this command, which is never written; "
                f"choose another {option}"
            )


def no_link(path: Path) -> None:
    """Remove ``path`` when it is a symbolic link (the link, not what it points to),
    with a warning: where geoseg keeps its own work, a link would send its writes and
    removals elsewhere."""
    if path.is_symlink():
        logger.warning("%s: a symbolic link where geoseg keeps its work; removed", path)
        path.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only on success.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    path = Path(path)
    check_output(path)
    tmp = path.with_name(f".{path.stem}.part-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        tmp.replace(path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OutputError):
            raise
        raise OutputError(f"{path}: cannot be written ({err})") from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
