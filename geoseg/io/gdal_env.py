"""GDAL's configuration for a run: the options for rasters read over the network and
their limits, the block cache's size, and GDAL's count of the bytes it fetched."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.env import get_gdal_config, set_gdal_config

from geoseg.errors import ConfigError

__all__ = [
    "REMOTE_OPTIONS",
    "NetworkLimits",
    "drop_block_cache",
    "gdal_cache",
    "network_bytes",
    "network_limits",
    "remote_options",
    "window_cache_mb",
]


REMOTE_OPTIONS = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF,.vrt,.jp2,.img,{noext}",
    "GDAL_HTTP_CONNECTTIMEOUT": "10",
    "GDAL_HTTP_LOW_SPEED_TIME": "30",
    "GDAL_HTTP_LOW_SPEED_LIMIT": "1",
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "1",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "VSI_CACHE": "TRUE",
    "CPL_VSIL_NETWORK_STATS_ENABLED": "YES",
}
"""GDAL settings for rasters read over the network (they change nothing for local
files): no listing of the remote folder for sidecar files, only raster extensions (and
names without one, as object stores and APIs serve them) probed, a connection given up
after 10 s and a request once it has received nothing for 30 s (curl's speed below 1
byte/s, averaged over its last few seconds: a read timeout that does not cut a long
transfer that keeps arriving, as ``GDAL_HTTP_TIMEOUT``, unset, would cap a whole
request), three retries of a failed connection or a busy server from a second apart
(GDAL doubles the wait each time; a server that stops sending is not retried), adjacent
ranges fetched in one request, a cache of what was fetched, and GDAL's count of the
bytes (:func:`network_bytes`). An environment variable of the same name, then
``runtime.gdal_options``, overrides them (:func:`remote_options`)."""

_SECONDS_OPTIONS = (
    "GDAL_HTTP_CONNECTTIMEOUT",
    "GDAL_HTTP_LOW_SPEED_TIME",
    "GDAL_HTTP_TIMEOUT",
    "GDAL_HTTP_RETRY_DELAY",
)
_COUNT_OPTIONS = ("GDAL_HTTP_LOW_SPEED_LIMIT", "GDAL_HTTP_MAX_RETRY")


def remote_options(options: Mapping[str, str] | None = None) -> dict[str, str]:
    """The GDAL configuration options of a run: :data:`REMOTE_OPTIONS`, less those the
    environment sets (GDAL reads environment variables itself), with ``options``
    (``runtime.gdal_options``) over them.

    Raises
    ------
    ConfigError
        A timeout, delay or count that is not a number ``>= 0``: GDAL would read it as
        0, no timeout at all.
    """
    merged = {k: v for k, v in REMOTE_OPTIONS.items() if k not in os.environ}
    merged.update(options or {})
    for key in (*_SECONDS_OPTIONS, *_COUNT_OPTIONS):
        _number(key, merged.get(key, os.environ.get(key)), merged)
    return merged


def _number(key: str, value: str | None, options: Mapping[str, str]) -> float | None:
    """``value`` of the option ``key`` as a number ``>= 0`` (``None`` when unset)."""
    if value is None:
        return None
    try:
        number = float(value) if key in _SECONDS_OPTIONS else int(value)
    except ValueError:
        number = -1
    if not number >= 0:  # also NaN
        where = "runtime.gdal_options" if key in options else "the environment variable"
        kind = "seconds" if key in _SECONDS_OPTIONS else "a whole number"
        raise ConfigError(
            f"{where} {key}={value!r}: must be {kind} >= 0 (0: none), e.g. "
            f"{REMOTE_OPTIONS.get(key, '60')}"
        )
    return number


@dataclass(frozen=True, slots=True)
class NetworkLimits:
    """How long a network read may wait, in seconds, and how often it is retried: the
    same settings GDAL follows (:data:`REMOTE_OPTIONS`), for the reads made without
    GDAL (a STAC item). ``None``: no limit."""

    connect_s: float | None
    read_s: float | None
    """Longest wait for the next bytes (``GDAL_HTTP_LOW_SPEED_TIME``)."""
    total_s: float | None
    """Longest request (``GDAL_HTTP_TIMEOUT``, unset by default)."""
    retries: int
    retry_delay_s: float


def network_limits(options: Mapping[str, str] | None = None) -> NetworkLimits:
    """:class:`NetworkLimits` of :func:`remote_options` ``(options)``.

    >>> network_limits({"GDAL_HTTP_TIMEOUT": "5"})
    NetworkLimits(connect_s=10.0, read_s=30.0, total_s=5.0, retries=3, retry_delay_s=1.0)
    """
    merged = remote_options(options)

    def value(key: str) -> float | None:
        number = _number(key, merged.get(key, os.environ.get(key)), merged)
        return number or None  # 0: no limit, as in GDAL

    return NetworkLimits(
        connect_s=value("GDAL_HTTP_CONNECTTIMEOUT"),
        read_s=value("GDAL_HTTP_LOW_SPEED_TIME"),
        total_s=value("GDAL_HTTP_TIMEOUT"),
        retries=int(value("GDAL_HTTP_MAX_RETRY") or 0),
        retry_delay_s=value("GDAL_HTTP_RETRY_DELAY") or 0.0,
    )


def network_bytes() -> dict[str, int] | None:
    """``{"requests": n, "downloaded_bytes": n}``: what GDAL fetched over the network in
    this process (``CPL_VSIL_NETWORK_STATS_ENABLED``, on in :data:`REMOTE_OPTIONS`);
    ``None`` where GDAL's library cannot be reached.

    rasterio does not expose GDAL's ``VSINetworkStatsGetAsSerializedJSON`` (GDAL >=
    3.2), so it is called here through ctypes, in the libgdal rasterio loaded.
    """
    import ctypes
    import ctypes.util
    import json

    found = sorted((Path(rasterio.__file__).parent.parent / "rasterio.libs").glob("libgdal*"))
    name = str(found[0]) if found else ctypes.util.find_library("gdal")
    try:
        lib = ctypes.CDLL(name)
        stats = lib.VSINetworkStatsGetAsSerializedJSON
    except (OSError, AttributeError, TypeError):
        return None
    stats.restype, stats.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    lib.VSIFree.argtypes = [ctypes.c_void_p]
    pointer = stats(None)
    if not pointer:
        return None
    try:
        data = json.loads(ctypes.string_at(pointer).decode())
    finally:
        lib.VSIFree(pointer)
    methods = data.get("methods", {})
    return {
        "requests": sum(int(m.get("count", 0)) for m in methods.values()),
        "downloaded_bytes": sum(int(m.get("downloaded_bytes", 0)) for m in methods.values()),
    }


def gdal_cache(megabytes: int, options: Mapping[str, str] | None = None) -> Any:
    """A ``rasterio.Env`` whose GDAL block cache holds ``megabytes``, with
    :func:`remote_options` ``(options)`` (``runtime.gdal_options``) set.

    rasterio reads an integer ``GDAL_CACHEMAX`` as bytes: 256 would be 256 bytes and
    make every read repeat, so the value is converted here, once.
    """
    return rasterio.Env(GDAL_CACHEMAX=megabytes * 2**20, **remote_options(options))


def drop_block_cache() -> None:
    """Empty GDAL's block cache and keep its limit.

    A decimated read of a scene without overviews (the statistics') passes over every
    block once and leaves up to the cache's limit of them behind (256 MB in a run),
    resident through training. Lowering the limit makes GDAL drop blocks
    (``GDALSetCacheMax``); the limit is then set back.
    """
    limit = get_gdal_config("GDAL_CACHEMAX")
    set_gdal_config("GDAL_CACHEMAX", 1)
    set_gdal_config("GDAL_CACHEMAX", limit)


def window_cache_mb(paths: Sequence[str | os.PathLike[str]], window: int) -> int:
    """GDAL block cache (MB) that holds, twice over, every block of ``paths`` that one
    row of ``window x window`` reads touches: a few tiles for a tiled file, full-width
    strips for a striped one. Reading each block once, as vectorizing does, needs no
    more; a bigger cache only holds memory.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "striped.tif"
    >>> striped = dict(driver="GTiff", width=20000, height=4000, count=1, dtype="uint16")
    >>> rasterio.open(path, "w", **striped).close()  # one row per strip
    >>> window_cache_mb([path], 1024)  # 2 x 1025 rows of 20000 uint16
    79
    """
    total = 0
    for path in paths:
        with rasterio.open(path) as src:
            rows, cols = src.block_shapes[0]
            itemsize = max(np.dtype(dtype).itemsize for dtype in src.dtypes)
            total += (window + rows) * min(src.width, window + cols) * src.count * itemsize
    return max(16, math.ceil(2 * total / 2**20))
