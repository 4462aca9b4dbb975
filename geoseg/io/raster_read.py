"""Reading rasters: a scene window by window, or a whole image, nodata-aware.

A scene is never read whole: :class:`SceneReader` reads windows and decimated copies.
A file that cannot be read fails with one :class:`~geoseg.errors.RasterReadError` that
names the path and the cause GDAL gives (a missing file, an HTTP error, a truncated
file).
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from geoseg.errors import ConfigError, InputError, RasterReadError
from geoseg.io.source import Source, as_source, is_remote
from geoseg.types import SceneInfo

__all__ = ["ImageData", "SceneReader", "open_raster", "read_error", "read_image"]


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
                raise read_error(Path(path), err) from err
    return ImageData(data=data, valid=valid, transform=info.transform, crs=info.crs)


@contextlib.contextmanager
def open_raster(path: Source) -> Iterator[Any]:
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
        raise read_error(path, err) from err
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


def read_error(
    path: Source, err: Exception, window: Window | None = None, *, remote: bool = False
) -> RasterReadError:
    """The one-line error for a raster that opened but could not be read: GDAL's own
    message, the window when given, and what to check (a truncated local file, or with
    ``remote`` a server that timed out or stopped sending)."""
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
        src = self._src = self._stack.enter_context(open_raster(self.path))
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
            raise read_error(self.name, err, window, remote=self._remote) from err
        if np.issubdtype(data.dtype, np.floating):
            valid &= np.isfinite(data).all(axis=0)
        return data, valid


def _expand_palette(
    index: npt.NDArray[np.integer], colormap: dict[int, tuple[int, ...]]
) -> npt.NDArray[np.uint8]:
    lut = np.zeros((256, 3), np.uint8)
    for value, rgba in colormap.items():
        lut[value] = rgba[:3]
    return np.moveaxis(lut[index], -1, 0)
