"""The only module that opens rasters: image and scene reads, label / picture writes.

A scene is never read whole: :class:`SceneReader` reads windows and decimated copies.

Every write goes to a temporary name beside the target and is renamed at the end, so
an interrupted run never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
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
from rasterio.errors import CRSError, NotGeoreferencedWarning, RasterioError
from rasterio.shutil import copy as rio_copy
from rasterio.warp import reproject
from rasterio.windows import Window

from geoseg.errors import ConfigError, InputError, OutputError, RasterReadError
from geoseg.types import SceneInfo, area_order

Refine = Callable[
    [Callable[[Window], npt.NDArray[np.integer]]],
    Iterator[tuple[Window, npt.NDArray[np.integer]]],
]
"""``refine(read)``: a whole-raster step over raw class ids (see ``LabelWriter.close``)."""

__all__ = [
    "LABEL_SUFFIXES",
    "PICTURE_SUFFIXES",
    "ImageData",
    "LabelWriter",
    "SceneReader",
    "atomic_path",
    "check_output",
    "class_counts",
    "gdal_cache",
    "read_image",
    "read_label_pair",
    "window_cache_mb",
    "write_gif",
    "write_image",
    "write_labels",
    "write_png",
]


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


@contextlib.contextmanager
def _open(path: Path) -> Iterator[Any]:
    """``rasterio.open`` for reading, with one clear error for a missing file."""
    if not path.exists():
        raise RasterReadError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise RasterReadError(f"{path}: is a directory, not an image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = rasterio.open(path)
    except RasterioError as err:
        raise _read_error(path, err) from err
    with src:
        yield src


def _read_error(path: Path, err: Exception, window: Window | None = None) -> RasterReadError:
    where = "" if window is None else f" (window {window})"
    return RasterReadError(
        f"{path}{where}: cannot be read as an image ({err}); is it a complete PNG, JPEG or "
        "GeoTIFF? (truncated files fail here)"
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
    ) -> None:
        self.path = Path(path)
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
            raise _read_error(self.path, err, window) from err
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


PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
LABEL_SUFFIXES = (".tif", ".tiff", ".png")


def gdal_cache(megabytes: int) -> Any:
    """A ``rasterio.Env`` whose GDAL block cache holds ``megabytes``.

    rasterio reads an integer ``GDAL_CACHEMAX`` as bytes: 256 would be 256 bytes and
    make every read repeat, so the value is converted here, once.
    """
    return rasterio.Env(GDAL_CACHEMAX=megabytes * 2**20)


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


def check_output(path: str | os.PathLike[str], suffixes: tuple[str, ...] = ()) -> None:
    """Fail before any work if ``path`` cannot be written: its directory is missing or
    not writable, or (when ``suffixes`` are given) its extension is not among them."""
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise OutputError(
            f"{path}: unsupported extension {path.suffix!r}; use one of {', '.join(suffixes)}"
        )
    if not path.parent.is_dir():
        raise OutputError(f"{path.parent}: output directory does not exist; create it first")
    if not os.access(path.parent, os.W_OK):
        raise OutputError(f"{path.parent}: output directory is not writable")


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
            dst.write(data)


def write_labels(
    path: str | os.PathLike[str],
    labels: npt.NDArray[np.integer],
    *,
    transform: Affine | None = None,
    crs: CRS | None = None,
    nodata: int | None = None,
) -> None:
    """Write a ``(rows, cols)`` label map as uint8 or uint16 (the smallest that fits).

    ``.tif``/``.tiff`` gives a DEFLATE GeoTIFF carrying ``transform``, ``crs`` and
    ``nodata``; ``.png`` a single-band PNG (no georeferencing).
    """
    if labels.ndim != 2:
        raise InputError(f"labels must be (rows, cols); got shape {labels.shape}")
    top = int(labels.max()) if labels.size else 0
    if labels.size and int(labels.min()) < 0:
        raise InputError("labels must be >= 0 to be written; map nodata to a value first")
    dtype = np.uint8 if top <= 255 else np.uint16
    if top > 65535:
        raise InputError(f"{top + 1} labels do not fit in uint16")
    out = labels.astype(dtype)
    check_output(path, LABEL_SUFFIXES)
    if Path(path).suffix.lower() == ".png":
        with atomic_path(path) as tmp:
            Image.fromarray(out).save(tmp, format="PNG")
    else:
        _write_gtiff(path, out[None], transform=transform, crs=crs, nodata=nodata)


class LabelWriter:
    """Write class ids window by window, then publish them as a Cloud-Optimized GeoTIFF.

    Windows of raw class ids (``0`` = nodata, ``1..65535``) go into a tiled scratch
    GeoTIFF beside ``path`` (unwritten blocks read as 0) while their pixels are counted.
    :meth:`close` may first pass them through a whole-raster step (``refine``, e.g. the
    superpixel vote, which reads windows of the raw ids and yields new ones), then it
    renumbers the classes ``1..K`` by decreasing pixel count (``classes``
    then lists the raw id of each), in uint8 when ``K < 256`` and uint16 otherwise, and
    GDAL's COG driver (DEFLATE, internal overviews by mode resampling) writes a
    temporary name that is renamed to ``path``. Leaving the context on an error removes
    every temporary file. With ``renumber=False`` the ids are kept as written.
    """

    def __init__(
        self, path: str | os.PathLike[str], info: SceneInfo, *, renumber: bool = True
    ) -> None:
        self.path = Path(path)
        self.renumber = renumber
        check_output(self.path, (".tif", ".tiff"))
        self.classes: list[int] = []
        self._counts = np.zeros(1, np.int64)
        self._scratch = {
            name: self.path.with_name(f".{self.path.stem}.{name}-{os.getpid()}.tif")
            for name in ("raw", "refined", "final")
        }
        self._profile = {
            "driver": "GTiff",
            "width": info.width,
            "height": info.height,
            "count": 1,
            "dtype": "uint16",
            "nodata": 0,
            "transform": info.transform,
            "crs": info.crs,
            "tiled": True,
            "blockxsize": 256,
            "blockysize": 256,
            "compress": "deflate",
            "sparse_ok": True,
        }
        self._dst = self._open("raw")

    def __enter__(self) -> LabelWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._dst.close()
            self._cleanup()

    def write(self, window: Window, labels: npt.NDArray[np.integer]) -> None:
        """Write raw class ids ``labels (rows, cols)`` (0 = nodata) into ``window``."""
        if not np.issubdtype(labels.dtype, np.integer):
            raise InputError(f"class ids must be integers; got {labels.dtype}")
        if labels.size and (labels.min() < 0 or labels.max() > 65535):
            raise InputError(f"class ids must lie in 0..65535; got {labels.min()}..{labels.max()}")
        self._count(labels)
        self._dst.write(labels.astype(np.uint16), 1, window=window)

    def close(
        self, refine: Refine | None = None, *, merge: npt.NDArray[np.integer] | None = None
    ) -> None:
        """Pass the raw ids through ``refine`` (if given), renumber by area, convert to
        a COG under ``path`` and remove the scratch files.

        ``refine(read)`` gets ``read(window) -> raw ids`` and yields ``(window, ids)``
        covering every labelled pixel; the counts are taken again from what it yields.
        ``merge[raw id]`` (raw ids it does not cover stay) maps raw ids onto others
        before renumbering, e.g. to join classes.
        """
        if self._dst.closed:
            return
        self._dst.close()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                source = self._scratch["raw"]
                if refine is not None:
                    self._counts = np.zeros(1, np.int64)
                    with (
                        rasterio.open(self._scratch["raw"]) as raw,
                        self._open("refined") as dst,
                    ):
                        for window, labels in refine(lambda w: raw.read(1, window=w)):
                            self._count(labels)
                            dst.write(labels.astype(np.uint16), 1, window=window)
                    source = self._scratch["refined"]
                self._renumber(source, merge)
                with atomic_path(self.path) as tmp:
                    rio_copy(
                        self._scratch["final"],
                        tmp,
                        driver="COG",
                        COMPRESS="DEFLATE",
                        OVERVIEW_RESAMPLING="MODE",
                        BLOCKSIZE=512,
                    )
        finally:
            self._cleanup()

    def _renumber(self, source: Path, merge: npt.NDArray[np.integer] | None) -> None:
        lut = np.arange(max(self._counts.size, 0 if merge is None else len(merge)))
        if merge is not None:
            lut[: len(merge)] = merge
        counts = np.bincount(lut[: self._counts.size], self._counts, lut.size).astype(np.int64)
        if self.renumber:
            order = area_order(counts)
            renumber = np.zeros(counts.size, np.uint16)
            renumber[order] = np.arange(1, order.size + 1)
        else:
            order = np.flatnonzero(counts[1:]) + 1
            renumber = np.arange(counts.size).astype(np.uint16)
        self.classes = order.tolist()
        renumber = renumber[lut]
        dtype = "uint8" if renumber.max(initial=0) < 256 else "uint16"
        with rasterio.open(source) as src, self._open("final", dtype=dtype) as dst:
            for _, window in src.block_windows(1):
                dst.write(renumber[src.read(1, window=window)].astype(dtype), 1, window=window)

    def _count(self, labels: npt.NDArray[np.integer]) -> None:
        counts = np.bincount(labels.ravel(), minlength=self._counts.size)
        counts[: self._counts.size] += self._counts
        self._counts = counts

    def _open(self, name: str, dtype: str = "uint16") -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(self._scratch[name], "w", **{**self._profile, "dtype": dtype})

    def _cleanup(self) -> None:
        for scratch in self._scratch.values():
            scratch.unlink(missing_ok=True)


def read_label_pair(
    labels: str | os.PathLike[str],
    truth: str | os.PathLike[str],
    *,
    resample: bool = False,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], SceneInfo]:
    """Two single-band label rasters on one grid: ``(labels, truth, grid)``.

    Class ids come back as ``(rows, cols) int64``, ``-1`` at nodata (the file's nodata
    value, mask or NaN); ``grid`` is ``truth``'s :class:`SceneInfo`. Both rasters must
    share width, height, transform and CRS; with ``resample=True`` ``labels`` is instead
    reprojected onto ``truth``'s grid by nearest neighbour (pixels outside ``labels``
    become nodata).

    Raises
    ------
    InputError
        The grids or CRSs differ (without ``resample``), a raster has several bands,
        fractional or negative class ids.
    RasterReadError
        A file is missing or unreadable.
    """
    pred, pred_info = _read_label_map(labels)
    ref, ref_info = _read_label_map(truth)
    differ = []
    if not _same_crs(pred_info.crs, ref_info.crs):
        differ.append(f"CRS ({_crs_text(pred_info.crs)} vs {_crs_text(ref_info.crs)})")
    if not _same_grid(pred_info, ref_info):
        differ.append(f"grid ({_grid_text(pred_info)} vs {_grid_text(ref_info)})")
    if not differ:
        return pred, ref, ref_info
    if not resample:
        raise InputError(
            f"{labels} and {truth} differ in {' and '.join(differ)}; pass --resample nearest "
            f"to align {labels} onto {truth}'s grid"
        )
    if (pred_info.crs is None) != (ref_info.crs is None):
        raise InputError(
            f"{labels} and {truth}: only one has a CRS, so they cannot be aligned; assign "
            "the missing one first (e.g. gdal_edit.py -a_srs EPSG:...)"
        )
    try:
        aligned = _nearest_onto(pred, pred_info, ref_info)
    except (RasterioError, CRSError) as err:
        raise InputError(f"{labels} cannot be aligned onto {truth}'s grid ({err})") from err
    return aligned, ref, ref_info


def _read_label_map(path: str | os.PathLike[str]) -> tuple[npt.NDArray[np.int64], SceneInfo]:
    """Class ids of a one-band label raster, ``-1`` at nodata."""
    with SceneReader(path) as scene:
        info = scene.info
        if info.count != 1:
            raise InputError(
                f"{path}: {info.count} bands; a label raster has one band of class ids"
            )
        data, valid = scene.read()
    ids = data[0][valid]
    fractional = not np.issubdtype(ids.dtype, np.integer) and (
        not np.issubdtype(ids.dtype, np.floating) or bool((ids != np.round(ids)).any())
    )
    if fractional:
        raise InputError(f"{path}: {ids.dtype} values are not class ids (whole numbers)")
    if ids.size and ids.min() < 0:
        raise InputError(
            f"{path}: negative class id {ids.min():g}; class ids must be >= 0 (mark "
            "nodata with the file's nodata value)"
        )
    out = np.full(valid.shape, -1, np.int64)
    out[valid] = ids.astype(np.int64)
    return out, info


def _same_crs(a: CRS | None, b: CRS | None) -> bool:
    return a is None and b is None if a is None or b is None else bool(a == b)


def _same_grid(a: SceneInfo, b: SceneInfo) -> bool:
    """Same size, and transforms equal to a millionth of a pixel."""
    if (a.width, a.height) != (b.width, b.height):
        return False
    pixel = abs(b.transform.determinant) ** 0.5 or 1.0
    return all(
        abs(x - y) <= 1e-6 * pixel for x, y in zip(a.transform[:6], b.transform[:6], strict=True)
    )


def _crs_text(crs: CRS | None) -> str:
    return "no CRS" if crs is None else crs.to_string()


def _grid_text(info: SceneInfo) -> str:
    t = info.transform
    return (
        f"{info.width}x{info.height} px of {t.a:.10g} x {-t.e:.10g} from ({t.c:.10g}, {t.f:.10g})"
    )


def _nearest_onto(
    ids: npt.NDArray[np.int64], src: SceneInfo, dst: SceneInfo
) -> npt.NDArray[np.int64]:
    """Nearest-neighbour reprojection of class ids (``-1`` = nodata) onto ``dst``'s grid."""
    valid = ids >= 0
    classes, index = np.unique(ids[valid], return_inverse=True)
    compact = np.full(ids.shape, -1, np.int32)  # 0..K-1 fits any GDAL build
    compact[valid] = index
    out = np.full((dst.height, dst.width), -1, np.int32)
    # Two rasters without CRS share pixel space: any one CRS for both resamples by transform.
    src_crs = src.crs if src.crs is not None else CRS.from_epsg(3857)
    dst_crs = dst.crs if dst.crs is not None else src_crs
    reproject(
        source=compact,
        destination=out,
        src_transform=src.transform,
        src_crs=src_crs,
        src_nodata=-1,
        dst_transform=dst.transform,
        dst_crs=dst_crs,
        dst_nodata=-1,
        resampling=Resampling.nearest,
    )
    inside = out >= 0
    result = np.full(out.shape, -1, np.int64)
    result[inside] = classes[out[inside]]
    return result


def class_counts(path: str | os.PathLike[str], *, band: int = 1) -> npt.NDArray[np.int64]:
    """Pixels per value of an integer raster band: ``counts[v]`` pixels equal ``v``
    (``counts[0]``: nodata in a label raster), read block by block, never whole.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "labels.tif"
    >>> write_labels(path, np.array([[0, 1, 1], [2, 1, 0]]))
    >>> class_counts(path).tolist()
    [2, 3, 1]
    """
    path = Path(path)
    with _open(path) as src:
        if not 1 <= band <= src.count:
            raise InputError(f"band={band}: {path} has bands 1..{src.count}")
        dtype = np.dtype(src.dtypes[band - 1])
        if not np.issubdtype(dtype, np.integer):
            raise InputError(f"{path}: band {band} is {dtype}; class counts need integer ids")
        counts = np.zeros(1, np.int64)
        for _, window in src.block_windows(band):
            try:
                values = src.read(band, window=window).astype(np.int64, copy=False)
            except RasterioError as err:
                raise _read_error(path, err, window) from err
            if values.size and values.min() < 0:
                raise InputError(f"{path}: negative values in band {band}; class ids are >= 0")
            block = np.bincount(values.ravel(), minlength=counts.size)
            block[: counts.size] += counts
            counts = block
    return counts
