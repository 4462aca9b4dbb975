"""Writing rasters: pictures (PNG, JPEG, GIF) and tiled, compressed GeoTIFFs, and a
remote scene's local copy.

Every picture and GeoTIFF goes to a temporary name beside the target and is renamed at
the end (:func:`~geoseg.io.output.atomic_path`), so an interrupted run never leaves a
half-written file under the final name.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
from affine import Affine
from PIL import Image
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from geoseg.errors import InputError, OutputError
from geoseg.io.output import atomic_path, check_output
from geoseg.types import SceneInfo

__all__ = [
    "LABEL_SUFFIXES",
    "PICTURE_SUFFIXES",
    "LocalCopy",
    "write_gif",
    "write_gtiff",
    "write_image",
    "write_png",
]


PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
LABEL_SUFFIXES = (".tif", ".tiff", ".png")


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
    write_gtiff(path, data, transform=transform, crs=crs, nodata=nodata)


def write_gtiff(
    path: str | os.PathLike[str],
    data: npt.NDArray[Any],
    *,
    transform: Affine | None,
    crs: CRS | None,
    nodata: float | None,
    colormap: Mapping[int, tuple[int, int, int, int]] | None = None,
) -> None:
    """Write ``data (bands, rows, cols)`` as a DEFLATE-compressed GeoTIFF (256 px tiles
    from 256 x 256 px up) through a temporary name, with band 1's ``colormap`` when given
    (:func:`write_image` without its shape check; labels use the colour table)."""
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


class LocalCopy:
    """A local GeoTIFF of what a run reads from a remote scene: the bands as read and
    the valid mask as its dataset mask, window by window, so that the later passes
    (the superpixel vote, the polygons' band statistics) read the disk instead of the
    network. Uncompressed and tiled, so windows may land at any offset; the file is
    the work folder's and goes with it.

    ``LocalCopy(path, info)``; ``write(window, data, valid)``; ``close()``. A
    :class:`~geoseg.io.raster_read.SceneReader` of ``path`` then reads the same values
    and valid mask (bands ``1..n``: the scene's chosen bands in order).
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
