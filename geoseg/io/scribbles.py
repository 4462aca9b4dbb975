"""User scribbles (TIP 2020): strokes of a vector layer, burnt onto a scene's grid.

A scribble layer is any vector file OGR reads (GeoPackage, Shapefile, GeoJSON, ...) of
points, lines or polygons in any CRS, with a field naming each stroke's class (a name or
a number). Its features are reprojected to the scene's CRS and burnt onto the scene's
pixel grid (:func:`rasterio.features.rasterize`): polygons cover the pixels whose
centre they hold, lines and points every pixel they touch, widened to ``width`` metres
when that is more than a pixel. Where strokes of two classes meet, the later feature
wins. Classes are numbered ``0..S-1`` in the order in which their values first appear
in the field; a feature without a value is left out with a warning.

Only the scribbled pixels are kept (their rows, columns and classes): a few strokes on a
100 Mpx scene take kilobytes, not a scene-sized raster.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from affine import Affine
from rasterio.features import rasterize
from rasterio.windows import Window

from geoseg.errors import InputError
from geoseg.types import SceneInfo

__all__ = ["Scribbles", "on_data", "read_scribbles"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Scribbles:
    """The scribbled pixels of a scene: ``classes[i]`` (``0..S-1``, named ``names``) at
    ``rows[i], cols[i]`` of the scene's full-resolution grid."""

    names: tuple[str, ...]
    rows: npt.NDArray[np.int64]
    cols: npt.NDArray[np.int64]
    classes: npt.NDArray[np.int64]

    def window(self, window: Window) -> npt.NDArray[np.int64]:
        """The classes of ``window``'s pixels, ``-1`` where nothing is scribbled.

        >>> s = Scribbles(("a", "b"), np.array([0, 5]), np.array([1, 5]), np.array([0, 1]))
        >>> s.window(Window(4, 4, 3, 2)).tolist()
        [[-1, -1, -1], [-1, 1, -1]]
        """
        row0, col0 = int(window.row_off), int(window.col_off)
        out = np.full((int(window.height), int(window.width)), -1, np.int64)
        inside = (
            (self.rows >= row0)
            & (self.rows < row0 + out.shape[0])
            & (self.cols >= col0)
            & (self.cols < col0 + out.shape[1])
        )
        out[self.rows[inside] - row0, self.cols[inside] - col0] = self.classes[inside]
        return out


def read_scribbles(
    path: str | os.PathLike[str], field: str, info: SceneInfo, *, width: float = 0.0
) -> Scribbles:
    """The strokes of the vector file ``path`` (its first layer), class by ``field``,
    burnt onto the grid of the scene ``info``; lines and points ``width`` metres wide
    (0: the pixels they touch). Raises :class:`~geoseg.errors.InputError` (one line) for
    a file that is not a vector layer, an empty layer, a missing field, strokes that miss
    the scene and fewer than two classes on it."""
    import pyogrio  # here, not at import (as geoseg.io.vector)

    from geoseg.measure import affine_points

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such scribble file; check the path (--scribbles)")
    try:
        frame = pyogrio.read_dataframe(path)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError) as err:
        raise InputError(
            f"{path}: not a vector layer OGR can read ({err}); give strokes as a GeoPackage, "
            "Shapefile, GeoJSON or other OGR format (--scribbles)"
        ) from err
    if len(frame) == 0 or "geometry" not in frame:
        raise InputError(f"{path}: the layer has no features; draw strokes first (--scribbles)")
    if field not in frame.columns:
        fields = [c for c in frame.columns if c != frame.geometry.name]
        raise InputError(
            f"{path}: no field {field!r}; its fields are {fields or 'none'} "
            "(--scribble-field, segment.scribble_field)"
        )
    names, ids, geoms = _classes(frame, field, path)
    geoms = _onto_scene_crs(geoms, frame.crs, info, path)
    pixels = shapely.transform(geoms, affine_points(~info.transform))  # (col, row)
    rows, cols, classes = _burn(pixels, ids, info, _width_px(width, info))
    if rows.size == 0:
        raise InputError(
            f"{path}: no stroke lies on the scene's {info.width} x {info.height} px grid; "
            "check that the layer covers the scene (and its CRS)"
        )
    present = np.unique(classes)
    if present.size < 2:
        only = names[int(present[0])]
        raise InputError(
            f"{path}: only class {only!r} is scribbled on the scene; scribble at least two "
            "classes (a single class would label every pixel alike)"
        )
    return Scribbles(tuple(names), rows, cols, classes)


CHECK_BLOCK = 512
"""The scene is read in blocks of at most this many pixels a side, around the strokes,
when :func:`on_data` looks for their nodata."""


def on_data(
    scribbles: Scribbles,
    read: Callable[[Window], tuple[Any, npt.NDArray[np.bool_]]],
    path: str | os.PathLike[str],
) -> Scribbles:
    """``scribbles`` without the pixels that ``read(window) -> (data, valid)`` marks
    nodata (a stroke across the scene's edge, a cloud mask, the black collar of a
    scene), read block by block around the strokes. Raises
    :class:`~geoseg.errors.InputError` (one line) when no stroke or only one class is
    left on data; a class left without a pixel is reported with a warning (it cannot
    appear in the labels; the other classes keep their ids)."""
    rows, cols = scribbles.rows, scribbles.cols
    key = (rows // CHECK_BLOCK) * (int(cols.max()) // CHECK_BLOCK + 1) + cols // CHECK_BLOCK
    order = np.argsort(key, kind="stable")
    keep = np.zeros(rows.size, bool)
    for block in np.split(order, np.flatnonzero(np.diff(key[order])) + 1):
        r0, c0 = int(rows[block].min()), int(cols[block].min())
        height, width = int(rows[block].max()) - r0 + 1, int(cols[block].max()) - c0 + 1
        _, valid = read(Window(c0, r0, width, height))
        keep[block] = valid[rows[block] - r0, cols[block] - c0]
    if keep.all():
        return scribbles
    path = Path(path)
    if not keep.any():
        raise InputError(
            f"{path}: every scribbled pixel lies on the scene's nodata; draw the strokes "
            "over the image's data"
        )
    present = np.unique(scribbles.classes[keep])
    if present.size < 2:
        only = scribbles.names[int(present[0])]
        raise InputError(
            f"{path}: only class {only!r} is scribbled on the scene's data (the other "
            "strokes lie on nodata); scribble at least two classes over the data"
        )
    for lost in sorted(set(np.unique(scribbles.classes).tolist()) - set(present.tolist())):
        logger.warning(
            "%s: the strokes of class %r lie on the scene's nodata; it cannot appear in "
            "the labels", path, scribbles.names[lost]
        )  # fmt: skip
    return Scribbles(scribbles.names, rows[keep], cols[keep], scribbles.classes[keep])


def _classes(frame: Any, field: str, path: Path) -> tuple[list[str], npt.NDArray[np.int64], Any]:
    """Class names in order of first appearance, each feature's class id and geometry
    (features without a value or a geometry left out, with a warning)."""
    values = frame[field].tolist()
    geoms = np.asarray(frame.geometry.values, dtype=object)
    names: list[str] = []
    index: dict[str, int] = {}
    ids, kept = [], []
    skipped = 0
    for i, value in enumerate(values):
        name = _name(value)
        if name is None or geoms[i] is None or shapely.is_empty(geoms[i]):
            skipped += 1
            continue
        if name not in index:
            index[name] = len(names)
            names.append(name)
        ids.append(index[name])
        kept.append(i)
    if skipped:
        logger.warning("%s: %d feature(s) without %s or geometry left out", path, skipped, field)
    if not ids:
        raise InputError(f"{path}: no feature has a value in {field!r}; fill the field")
    return names, np.asarray(ids, np.int64), geoms[kept]


def _name(value: Any) -> str | None:
    """A field value as a class name: ``None`` for no value; ``3.0`` as ``"3"``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _onto_scene_crs(geoms: Any, crs: Any, info: SceneInfo, path: Path) -> Any:
    """The geometries in the scene's CRS."""
    if info.crs is None:
        if crs is not None:
            raise InputError(
                f"{path}: the strokes have a CRS but the scene has none; give strokes in the "
                "scene's pixel coordinates without a CRS"
            )
        return geoms
    if crs is None:
        logger.warning("%s: no CRS; the strokes are taken to be in the scene's CRS", path)
        return geoms
    import geopandas as gpd

    return np.asarray(gpd.GeoSeries(geoms, crs=crs).to_crs(info.crs.to_wkt()).values, object)


def _width_px(width: float, info: SceneInfo) -> float:
    """``width`` metres in pixels (in the transform's units without a CRS)."""
    if width <= 0:
        return 0.0
    from geoseg.measure import pixel_size_m

    metres = pixel_size_m(info.transform, info.crs, (info.height, info.width))
    return width / (metres if metres else abs(info.transform.a))


def _burn(
    pixels: Any, ids: npt.NDArray[np.int64], info: SceneInfo, width_px: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Rows, columns and classes of the scene pixels the strokes (in pixel coordinates)
    cover, burnt within the strokes' bounding box clipped to the scene."""
    if width_px > 1:
        kinds = shapely.get_type_id(pixels)
        lines = np.isin(kinds, [0, 1, 2, 4, 5])  # points and lines, single or multi
        pixels = np.where(lines, shapely.buffer(pixels, width_px / 2), pixels)
    left, top, right, bottom = shapely.total_bounds(pixels)
    col0, row0 = max(math.floor(left) - 1, 0), max(math.floor(top) - 1, 0)
    col1, row1 = min(math.ceil(right) + 1, info.width), min(math.ceil(bottom) + 1, info.height)
    empty = np.zeros(0, np.int64)
    if col1 <= col0 or row1 <= row0:
        return empty, empty, empty
    shape = (row1 - row0, col1 - col0)
    transform = Affine.translation(col0, row0)
    areas = np.isin(shapely.get_type_id(pixels), [3, 6])  # polygons: pixels they hold
    burnt = np.zeros(shape, np.int32)  # class + 1, 0: none
    for polygons in (True, False):  # lines and points over polygons
        chosen = areas == polygons
        if chosen.any():
            rasterize(
                zip(pixels[chosen], ids[chosen] + 1, strict=True),
                out=burnt,
                transform=transform,
                all_touched=not polygons,
            )
    rows, cols = np.nonzero(burnt)
    return rows + row0, cols + col0, burnt[rows, cols].astype(np.int64) - 1
