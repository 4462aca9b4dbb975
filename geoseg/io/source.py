"""A raster's location: a local path, or a URL or GDAL virtual path read over the
network, and the file name either one gives."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["REMOTE_PREFIXES", "Source", "as_source", "is_remote", "source_name", "source_stem"]


REMOTE_PREFIXES = ("http://", "https://", "s3://", "gs://", "az://", "/vsi")
"""Locations GDAL reads through its virtual file systems (range requests, windowed)."""

Source = str | Path
"""A raster's location: a local :class:`~pathlib.Path`, or the text of a URL or GDAL
``/vsi...`` path (a ``Path`` would fold the ``//`` of a URL)."""


def is_remote(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a URL or GDAL virtual path rather than a local file.

    >>> is_remote("https://example.com/a.tif"), is_remote("data/a.tif")
    (True, False)
    """
    return os.fspath(path).startswith(REMOTE_PREFIXES)


def as_source(path: str | os.PathLike[str]) -> Source:
    """``path`` as a :data:`Source`: the text of a remote location, else a ``Path``."""
    text = os.fspath(path)
    return text if is_remote(text) or text.startswith("<VRTDataset") else Path(text)


def source_name(path: str | os.PathLike[str]) -> str:
    """The file name of a local path or URL (query string dropped).

    >>> source_name("https://host/b/T18_B04.tif?sig=x"), source_name("data/a.tif")
    ('T18_B04.tif', 'a.tif')
    """
    text = os.fspath(path)
    if is_remote(text):
        return text.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return Path(text).name


def source_stem(path: str | os.PathLike[str]) -> str:
    """The file name's stem of a local path or URL (query string dropped).

    >>> source_stem("https://host/b/T18_B04.tif?sig=x"), source_stem("data/a.tif")
    ('T18_B04', 'a')
    """
    return Path(source_name(path)).stem
