"""The only module that opens rasters: image and scene reads, label / picture writes.

A scene is never read whole: :class:`SceneReader` reads windows and decimated copies.

Every write goes to a temporary name beside the target and is renamed at the end, so
an interrupted run never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
from affine import Affine
from PIL import Image
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, Resampling
from rasterio.env import get_gdal_config, set_gdal_config
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from geoseg.errors import ConfigError, InputError, OutputError, RasterReadError
from geoseg.types import SceneInfo

__all__ = [
    "LABEL_SUFFIXES",
    "PICTURE_SUFFIXES",
    "REMOTE_OPTIONS",
    "ImageData",
    "LocalCopy",
    "NetworkLimits",
    "SceneReader",
    "Source",
    "as_source",
    "atomic_path",
    "check_not_input",
    "check_output",
    "drop_block_cache",
    "gdal_cache",
    "is_remote",
    "network_bytes",
    "network_limits",
    "no_link",
    "read_image",
    "remote_options",
    "source_name",
    "source_stem",
    "window_cache_mb",
    "write_gif",
    "write_image",
    "write_png",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ImageData:
    """A whole image in memory with its validity mask and georeferencing.

    ``data`` is ``(bands, rows, cols)`` in the file's own dtype; ``valid`` is ``False``
    at nodata (nodata value, mask band, alpha 0, NaN); ``crs`` is ``None`` for plain
    pictures.
    """

    data: npt.NDArray[Any]
    valid: npt.NDArray[np.bool_]
    transform: Affine
    crs: CRS | None

    def __post_init__(self) -> None:
        if self.data.ndim != 3 or self.valid.shape != self.data.shape[1:]:
            raise InputError(
                f"image data {self.data.shape} and mask {self.valid.shape} do not match"
            )


def read_image(path: str | os.PathLike[str]) -> ImageData:
    """Read a whole image (PNG, JPEG, TIFF, GeoTIFF or any GDAL raster).

    An alpha band becomes the validity mask instead of a band; a palette image is
    expanded to RGB.

    Raises
    ------
    RasterReadError
        Missing, unreadable, truncated or not a raster, with the path and the cause.
    """
    with SceneReader(path) as scene:
        info = scene.info
        data, valid = scene.read()
        src = scene._src
        if src.count == 1 and src.colorinterp[0] == ColorInterp.palette:
            try:
                data = _expand_palette(data[0], src.colormap(1))
            except RasterioError as err:
                raise _read_error(Path(path), err) from err
    return ImageData(data=data, valid=valid, transform=info.transform, crs=info.crs)


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


@contextlib.contextmanager
def _open(path: Source) -> Iterator[Any]:
    """``rasterio.open`` for reading, with one clear error for a missing file, an HTTP
    error or an unreachable host."""
    if isinstance(path, Path):
        if not path.exists():
            raise RasterReadError(f"{path}: no such file; check the path")
        if path.is_dir():
            raise RasterReadError(f"{path}: is a directory, not an image file")
        if not os.access(path, os.R_OK):
            raise RasterReadError(f"{path}: cannot be read (permission denied); fix its mode")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = rasterio.open(path)
    except RasterioError as err:
        if isinstance(path, str):
            raise _remote_error(path, err) from err
        raise _read_error(path, err) from err
    with src:
        yield src


def _remote_error(url: str, err: Exception) -> RasterReadError:
    """One line for a remote raster that cannot be opened, by the cause GDAL reports."""
    text = str(err)
    code = re.search(r"HTTP response code: (\d+)", text)
    if code and code.group(1) == "404":
        return RasterReadError(f"{url}: not found (HTTP 404); check the URL")
    if code and code.group(1) in ("401", "403"):
        return RasterReadError(
            f"{url}: access denied (HTTP {code.group(1)}); check the URL, or give "
            "credentials in runtime.gdal_options (e.g. GDAL_HTTP_HEADERS, AWS_* keys)"
        )
    if code:
        return RasterReadError(f"{url}: the server answered HTTP {code.group(1)}; try again later")
    if _TIMED_OUT.search(text):
        return RasterReadError(f"{url}: {_timed_out(text)}")
    if "CURL error" in text:
        return RasterReadError(f"{url}: cannot reach the host ({text}); check the URL and network")
    return RasterReadError(f"{url}: cannot be read as a raster ({text}); is it a GeoTIFF/COG?")


_TIMED_OUT = re.compile(r"timed out|too slow|Timeout was reached", re.IGNORECASE)
"""curl's words for a connect or read timeout (``GDAL_HTTP_CONNECTTIMEOUT``,
``GDAL_HTTP_LOW_SPEED_TIME``, ``GDAL_HTTP_TIMEOUT``)."""


def _timed_out(cause: str) -> str:
    """The end of a message for a network read that timed out, with its remedy."""
    return (
        f"the server did not answer in time ({cause}); try again later, or allow longer "
        "in runtime.gdal_options (GDAL_HTTP_CONNECTTIMEOUT, GDAL_HTTP_LOW_SPEED_TIME)"
    )


def _gdal_message(err: BaseException) -> str:
    """What GDAL said about a failed read: rasterio's "Read failed. See previous
    exception for details." names none, its chained causes (``CPLE_*``) do. The
    deepest is the first error GDAL raised, the specific one (libtiff's "got 6368
    bytes, expected 196608"); libtiff's placeholder position for a tile is dropped."""
    messages = []
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if type(cause).__name__.startswith("CPLE_") and len(cause.args) >= 3:
            messages.append(str(cause.args[2]))
        elif not messages:
            messages.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    text = messages[-1] if messages else str(err)
    return text.replace(" at row 4294967295, col 4294967295", "")


def _read_error(
    path: Source, err: Exception, window: Window | None = None, *, remote: bool = False
) -> RasterReadError:
    where = "" if window is None else f" (window {window})"
    cause = _gdal_message(err)
    if remote and _TIMED_OUT.search(cause):
        return RasterReadError(f"{path}{where}: {_timed_out(cause)}")
    if remote:
        return RasterReadError(
            f"{path}{where}: the read stopped short ({cause}): the remote file is "
            "truncated or the server stopped sending; try again, and if it fails the "
            "same way check the file on the server"
        )
    return RasterReadError(
        f"{path}{where}: cannot be read as an image ({cause}); is it a complete PNG, JPEG "
        "or GeoTIFF? (truncated files fail here)"
    )


class SceneReader:
    """Windowed, nodata-aware reads of a scene that stays on disk.

    Parameters
    ----------
    path
        Any GDAL raster.
    bands
        1-based band numbers to read, in order (default: every band but alpha).
    nodata
        Value marking nodata, overriding the file's. Without it the file's nodata value,
        internal mask or alpha band marks nodata. As in GDAL's dataset mask, a pixel is
        nodata only where every band read is nodata; NaN in any band is always nodata.

    Examples
    --------
    ::

        with SceneReader("scene.tif", bands=[4, 3, 2]) as scene:
            data, valid = scene.read(Window(0, 0, 256, 256))
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        bands: Sequence[int] | None = None,
        nodata: float | None = None,
        name: str | None = None,
        provenance: dict[str, Any] | None = None,
    ) -> None:
        self.path = as_source(path)
        self.name = name or str(path)
        """What messages call the scene (a STAC item's path rather than its VRT)."""
        self.provenance = dict(provenance or {})
        """Where the scene comes from when it is assembled (a STAC item, its assets)."""
        self._stack = contextlib.ExitStack()
        src = self._src = self._stack.enter_context(_open(self.path))
        alpha = {i + 1 for i, ci in enumerate(src.colorinterp) if ci == ColorInterp.alpha}
        everything = (b for b in range(1, src.count + 1) if b not in alpha)
        chosen = tuple(bands) if bands else tuple(everything)
        bad = [b for b in chosen if not 1 <= b <= src.count]
        if bad:
            self.close()
            raise ConfigError(
                f"input.bands={list(chosen)}: {self.path} has bands 1..{src.count}; "
                f"{bad} do not exist"
            )
        twice = sorted({b for b in chosen if chosen.count(b) > 1})
        if twice:
            self.close()
            raise ConfigError(
                f"input.bands={list(chosen)}: band {twice[0]} is listed twice; list each "
                "band once (--bands)"
            )
        kinds = {np.dtype(src.dtypes[b - 1]).kind for b in chosen}
        if "c" in kinds:
            self.close()
            raise RasterReadError(
                f"{self.path}: complex bands ({src.dtypes[chosen[0] - 1]}) are not supported; "
                "segment their amplitude (e.g. gdal_calc.py --calc 'absolute(A)') or pick "
                "real bands with --bands"
            )
        self.band_count = src.count
        hrefs = self.provenance.get("stac_assets") or {}
        self._remote = is_remote(self.path) or any(is_remote(h) for h in hrefs.values())
        self._override = nodata is not None
        self.info = SceneInfo(
            height=src.height,
            width=src.width,
            bands=chosen,
            dtype=src.dtypes[chosen[0] - 1],
            transform=src.transform,
            crs=src.crs,
            nodata=nodata if nodata is not None else src.nodata,
        )

    def __enter__(self) -> SceneReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (idempotent)."""
        self._stack.close()

    def colour_bands(self) -> tuple[int, int, int] | None:
        """File bands (1-based) that are red, green and blue, as QGIS would show them.

        From the colour interpretation, else from band descriptions naming the colour
        (``"B04 red"``); ``None`` when the file does not say.
        """
        found: dict[str, int] = {}
        for i, interp in enumerate(self._src.colorinterp, start=1):
            if interp.name in ("red", "green", "blue"):
                found.setdefault(interp.name, i)
        if len(found) < 3:
            found = {}
            for i, text in enumerate(self._src.descriptions, start=1):
                for colour in re.findall(r"\b(red|green|blue)\b", (text or "").lower()):
                    found.setdefault(colour, i)
        if len(found) < 3:
            return None
        return found["red"], found["green"], found["blue"]

    def display_bands(self, preferred: Sequence[int] = ()) -> list[int]:
        """File bands shown as red, green and blue: ``preferred`` when given, else
        :meth:`colour_bands`, else the first three bands read (the one rule of the
        quicklook and the contact sheet)."""
        return list(preferred) or list(self.colour_bands() or ()) or list(self.info.bands[:3])

    def read(self, window: Window | None = None) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_]]:
        """``(data (B, h, w), valid (h, w))`` of one window (default: the whole scene),
        data in the file's dtype."""
        return self._read(window=window)

    def read_decimated(
        self, *, max_pixels: int = 1_000_000, shape: tuple[int, int] | None = None
    ) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_]]:
        """The whole scene at reduced resolution: at most ``max_pixels`` pixels, or
        exactly ``shape`` ``(rows, cols)`` when given (e.g. to match an earlier read).

        Nearest-neighbour decimation, so values stay real pixel values; GDAL reads from
        overviews when the file has them.
        """
        if shape is None:
            factor = max(1.0, (self.info.height * self.info.width / max_pixels) ** 0.5)
            shape = (
                max(1, int(self.info.height / factor)),
                max(1, int(self.info.width / factor)),
            )
        return self._read(out_shape=shape)

    def _read(
        self, *, window: Window | None = None, out_shape: tuple[int, int] | None = None
    ) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_]]:
        bands = list(self.info.bands)
        shape = None if out_shape is None else (len(bands), *out_shape)
        try:
            data = self._src.read(
                bands, window=window, out_shape=shape, resampling=Resampling.nearest
            )
            # As GDAL's dataset mask: nodata only where every band is nodata.
            if self._override:
                valid = (data != self.info.nodata).any(axis=0)
            else:
                masks = self._src.read_masks(
                    bands, window=window, out_shape=shape, resampling=Resampling.nearest
                )
                valid = (masks > 0).any(axis=0)
        except RasterioError as err:
            raise _read_error(self.name, err, window, remote=self._remote) from err
        if np.issubdtype(data.dtype, np.floating):
            valid &= np.isfinite(data).all(axis=0)
        return data, valid


class LocalCopy:
    """A local GeoTIFF of what a run reads from a remote scene: the bands as read and
    the valid mask as its dataset mask, window by window, so that the later passes
    (the superpixel vote, the polygons' band statistics) read the disk instead of the
    network. Uncompressed and tiled, so windows may land at any offset; the file is
    the work folder's and goes with it.

    ``LocalCopy(path, info)``; ``write(window, data, valid)``; ``close()``. A
    :class:`SceneReader` of ``path`` then reads the same values and valid mask (bands
    ``1..n``: the scene's chosen bands in order).
    """

    def __init__(self, path: str | os.PathLike[str], info: SceneInfo) -> None:
        self.path = Path(path)
        self.info = info
        self._dst: Any = None

    def write(self, window: Window, data: npt.NDArray[Any], valid: npt.NDArray[np.bool_]) -> None:
        if self._dst is None:  # bands and dtype as read
            info = self.info
            profile = {"driver": "GTiff", "width": info.width, "height": info.height,
                       "count": data.shape[0], "dtype": data.dtype.name, "tiled": True,
                       "blockxsize": 256, "blockysize": 256, "bigtiff": "IF_SAFER",
                       "transform": info.transform, "crs": info.crs}  # fmt: skip
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self._dst = rasterio.open(self.path, "w", **profile)
        try:
            self._dst.write(data, window=window)
            self._dst.write_mask(np.where(valid, np.uint8(255), np.uint8(0)), window=window)
        except RasterioError as err:
            raise OutputError(f"{self.path}: cannot write the scene's local copy ({err})") from err

    def close(self) -> None:
        """Finish the file (idempotent)."""
        if self._dst is not None:
            self._dst.close()
            self._dst = None

    def __enter__(self) -> LocalCopy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _expand_palette(
    index: npt.NDArray[np.integer], colormap: dict[int, tuple[int, ...]]
) -> npt.NDArray[np.uint8]:
    lut = np.zeros((256, 3), np.uint8)
    for value, rgba in colormap.items():
        lut[value] = rgba[:3]
    return np.moveaxis(lut[index], -1, 0)


PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
LABEL_SUFFIXES = (".tif", ".tiff", ".png")


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


def write_png(path: str | os.PathLike[str], rgb: npt.NDArray[np.uint8]) -> None:
    """Write a ``(3, rows, cols) uint8`` picture; the format follows the extension."""
    if rgb.ndim != 3 or rgb.shape[0] != 3 or rgb.dtype != np.uint8:
        raise InputError(f"picture must be (3, rows, cols) uint8; got {rgb.dtype} {rgb.shape}")
    check_output(path, PICTURE_SUFFIXES)
    pil_format = Image.registered_extensions()[Path(path).suffix.lower()]
    with atomic_path(path) as tmp:
        Image.fromarray(np.moveaxis(rgb, 0, -1)).save(tmp, format=pil_format)


def write_gif(
    path: str | os.PathLike[str], frames: Sequence[npt.NDArray[np.uint8]], *, ms: int = 700
) -> None:
    """Write ``(3, rows, cols) uint8`` frames as a looping GIF, ``ms`` per frame."""
    if not frames:
        raise InputError("an animation needs at least one frame")
    check_output(path, (".gif",))
    pictures = [Image.fromarray(np.moveaxis(frame, 0, -1)) for frame in frames]
    with atomic_path(path) as tmp:
        pictures[0].save(
            tmp, format="GIF", save_all=True, append_images=pictures[1:], duration=ms, loop=0
        )


def write_image(
    path: str | os.PathLike[str],
    data: npt.NDArray[np.number],
    *,
    transform: Affine,
    crs: CRS | None,
    nodata: float | None = None,
) -> None:
    """Write ``data (bands, rows, cols)`` as a tiled, DEFLATE-compressed GeoTIFF."""
    if data.ndim != 3:
        raise InputError(f"data must be (bands, rows, cols); got shape {data.shape}")
    _write_gtiff(path, data, transform=transform, crs=crs, nodata=nodata)


def _write_gtiff(
    path: str | os.PathLike[str],
    data: npt.NDArray[Any],
    *,
    transform: Affine | None,
    crs: CRS | None,
    nodata: float | None,
    colormap: Mapping[int, tuple[int, int, int, int]] | None = None,
) -> None:
    bands, rows, cols = data.shape
    profile = {
        "driver": "GTiff",
        "width": cols,
        "height": rows,
        "count": bands,
        "dtype": data.dtype.name,
        "compress": "deflate",
        "transform": transform if transform is not None else Affine.identity(),
        "crs": crs,
        "nodata": nodata,
    }
    if rows >= 256 and cols >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(tmp, "w", **profile) as dst:
            if colormap is not None:
                dst.write_colormap(1, colormap)
            dst.write(data)
