"""Label rasters: write class ids (whole, or window by window as a COG renumbered by
area), read two label maps onto one grid for scoring, count pixels per class."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
from affine import Affine
from PIL import Image
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import CRSError, NotGeoreferencedWarning, RasterioError
from rasterio.shutil import copy as rio_copy
from rasterio.warp import reproject
from rasterio.windows import Window

from geoseg.errors import InputError
from geoseg.io.output import atomic_path, check_output
from geoseg.io.raster_read import SceneReader, open_raster, read_error
from geoseg.io.raster_write import LABEL_SUFFIXES, write_gtiff
from geoseg.render import palette
from geoseg.types import SceneInfo, area_order

__all__ = [
    "LabelWriter",
    "class_counts",
    "class_id_reader",
    "colour_table",
    "read_label_pair",
    "write_labels",
]

logger = logging.getLogger(__name__)

MANY_CLASSES = 65_535
"""Beyond this many class ids a label raster is more likely a scene than labels."""


def class_id_reader(labels: SceneReader) -> Callable[[Window], npt.NDArray[np.integer]]:
    """``read(window)``: a label raster's class ids, ``0`` at nodata, for stages that
    stream it block by block (vectorize).

    The header is checked at once: one band of whole numbers (what ``evaluate``
    accepts, minus floats, which a streaming reader cannot check cheaply). Each block
    read is checked too: a negative id fails, ids beyond 65,535 are warned about once.
    """
    path = labels.path
    if labels.band_count != 1:
        raise InputError(
            f"{path}: {labels.band_count} bands; a label raster has one band of class ids "
            "(e.g. a run's labels.tif), not a scene"
        )
    dtype = np.dtype(labels.info.dtype)
    if not np.issubdtype(dtype, np.integer):
        raise InputError(
            f"{path}: {dtype} values; a label raster holds whole class ids "
            "(convert it, e.g. gdal_translate -ot UInt16)"
        )
    warned: list[bool] = []

    def read(window: Window) -> npt.NDArray[np.integer]:
        data, valid = labels.read(window)
        ids = np.where(valid, data[0], 0)
        if ids.size and ids.min() < 0:
            raise InputError(
                f"{path}: negative class id {int(ids.min())}; class ids must be >= 0 "
                "(mark nodata with the file's nodata value)"
            )
        if not warned and ids.size and ids.max() > MANY_CLASSES:
            warned.append(True)
            logger.warning(
                "%s: class id %d beyond %d: is this a label raster?",
                path,
                int(ids.max()),
                MANY_CLASSES,
            )
        return ids

    return read


def write_labels(
    path: str | os.PathLike[str],
    labels: npt.NDArray[np.integer],
    *,
    transform: Affine | None = None,
    crs: CRS | None = None,
    nodata: int | None = None,
) -> None:
    """Write a ``(rows, cols)`` label map as uint8 or uint16 (the smallest that fits).

    ``.tif``/``.tiff`` gives a DEFLATE GeoTIFF carrying ``transform``, ``crs``,
    ``nodata`` and a colour table (:func:`colour_table`); ``.png`` a single-band PNG (no
    georeferencing).
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
        write_gtiff(path, out[None], transform=transform, crs=crs, nodata=nodata,
                    colormap=colour_table(top))  # fmt: skip


def colour_table(n_classes: int) -> dict[int, tuple[int, int, int, int]]:
    """GDAL colour table of class ids ``0..n_classes``: :func:`geoseg.render.palette`'s
    colours, nodata (0) transparent.

    >>> colour_table(2)[0], colour_table(2)[1] == colour_table(5)[1]
    ((0, 0, 0, 0), True)
    """
    colours = palette(n_classes + 1)
    table = {k: (int(r), int(g), int(b), 255) for k, (r, g, b) in enumerate(colours.tolist())}
    table[0] = (0, 0, 0, 0)
    return table


class LabelWriter:
    """Write class ids window by window, then publish them as a Cloud-Optimized GeoTIFF.

    Windows of raw class ids (``0`` = nodata, ``1..65535``) go into a tiled scratch
    GeoTIFF beside ``path`` (unwritten blocks read as 0) while their pixels are counted.
    :meth:`close` renumbers the classes ``1..K`` by decreasing pixel count (``classes``
    then lists the raw id of each), in uint8 when ``K < 256`` and uint16 otherwise, and
    GDAL's COG driver (DEFLATE, internal overviews by mode resampling) writes a
    temporary name that is renamed to ``path``, with a colour table (:func:`colour_table`)
    so that GIS software shows the classes in the quicklook's and the vector layer's
    colours. Leaving the context on an error removes every temporary file. With
    ``renumber=False`` the ids are kept as written; with ``keep`` the ids ``1..keep``
    are (a run's scribbled classes, named by the user) and the others follow them by
    area. ``names[k - 1]`` becomes the band's ``CLASS_<k>`` tag (class ``k``'s name).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        info: SceneInfo,
        *,
        renumber: bool = True,
        keep: int = 0,
        names: Sequence[str] = (),
    ) -> None:
        self.path = Path(path)
        self.renumber, self.keep, self.names = renumber, keep, tuple(names)
        check_output(self.path, (".tif", ".tiff"))
        self.classes: list[int] = []
        self._counts = np.zeros(1, np.int64)
        self._scratch = {
            name: self.path.with_name(f".{self.path.stem}.{name}-{os.getpid()}.tif")
            for name in ("raw", "final")
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
            "zlevel": 1,  # scratch only: the fastest level, the COG keeps the default
            "num_threads": "all_cpus",  # compress blocks in parallel
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

    def close(self, *, merge: npt.NDArray[np.integer] | None = None) -> None:
        """Renumber the classes by area, convert to a COG under ``path`` and remove the
        scratch files. ``merge[raw id]`` (raw ids it does not cover stay) maps raw ids
        onto others before renumbering, e.g. to join classes."""
        if self._dst.closed:
            return
        self._dst.close()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self._renumber(self._scratch["raw"], merge)
                with atomic_path(self.path) as tmp:
                    rio_copy(
                        self._scratch["final"],
                        tmp,
                        driver="COG",
                        COMPRESS="DEFLATE",
                        OVERVIEW_RESAMPLING="MODE",
                        BLOCKSIZE=512,
                        NUM_THREADS="ALL_CPUS",  # the same bytes, 2x faster on 2 cores
                    )
        finally:
            self._cleanup()

    def _renumber(self, source: Path, merge: npt.NDArray[np.integer] | None) -> None:
        lut = np.arange(max(self._counts.size, 0 if merge is None else len(merge)))
        if merge is not None:
            lut[: len(merge)] = merge
        counts = np.bincount(lut[: self._counts.size], self._counts, lut.size).astype(np.int64)
        if self.renumber:
            fixed = np.arange(1, min(self.keep + 1, counts.size))
            others = counts.copy()
            others[: fixed.size + 1] = 0  # nodata and the kept ids: not ordered by area
            order = np.concatenate([fixed, area_order(others)]).astype(np.int64)
            renumber = np.zeros(counts.size, np.uint16)
            renumber[order] = np.arange(1, order.size + 1)
        else:
            order = np.flatnonzero(counts[1:]) + 1
            renumber = np.arange(counts.size).astype(np.uint16)
        self.classes = order.tolist()
        renumber = renumber[lut]
        dtype = "uint8" if renumber.max(initial=0) < 256 else "uint16"
        with rasterio.open(source) as src, self._open("final", dtype=dtype) as dst:
            dst.write_colormap(1, colour_table(int(renumber.max(initial=0))))
            if self.names:
                dst.update_tags(1, **{f"CLASS_{k}": n for k, n in enumerate(self.names, 1)})
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
    with open_raster(path) as src:
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
                raise read_error(path, err, window) from err
            if values.size and values.min() < 0:
                raise InputError(f"{path}: negative values in band {band}; class ids are >= 0")
            block = np.bincount(values.ravel(), minlength=counts.size)
            block[: counts.size] += counts
            counts = block
    return counts
