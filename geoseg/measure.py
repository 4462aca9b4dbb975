"""Measures on the ground of a raster's grid, in metres: a pixel's area and size, and
the areas and perimeters of polygons mapped from pixel to scene coordinates (geodesic on
the ellipsoid of a geographic CRS; map units without a CRS)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import pyproj
import shapely
from affine import Affine
from rasterio.crs import CRS

__all__ = [
    "Measure",
    "affine_points",
    "area_factor",
    "pixel_area_m2",
    "pixel_size_m",
    "polygon_measures",
]


def pixel_area_m2(transform: Affine, crs: CRS | None, shape_: tuple[int, int]) -> float:
    """Area of one pixel in m² (at the raster's centre for a geographic CRS)."""
    rows, cols = shape_
    centre = shapely.box(cols // 2, rows // 2, cols // 2 + 1, rows // 2 + 1)
    pixel = shapely.transform(centre, affine_points(transform))
    return float(polygon_measures(crs)[0]([pixel])[0])


def pixel_size_m(transform: Affine, crs: CRS | None, shape_: tuple[int, int]) -> float | None:
    """Side in metres of a square of one pixel's area (``None`` without a CRS)."""
    return None if crs is None else math.sqrt(pixel_area_m2(transform, crs, shape_))


def area_factor(crs: CRS | None) -> float:
    """Metres per unit of a projected CRS's axes (1 without a CRS)."""
    if crs is None:
        return 1.0
    axis = pyproj.CRS.from_user_input(crs.to_wkt()).axis_info
    return float(axis[0].unit_conversion_factor) if axis else 1.0


def affine_points(
    transform: Affine,
) -> Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]:
    """``transform`` as a function of ``(n, 2)`` coordinates, for ``shapely.transform``
    (pixel -> scene coordinates; ``~transform`` the other way)."""
    a, b, c, d, e, f = list(transform)[:6]

    def apply(xy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        x, y = xy[:, 0], xy[:, 1]
        return np.stack([a * x + b * y + c, d * x + e * y + f], axis=1)

    return apply


Measure = Callable[[Sequence[shapely.Geometry]], npt.NDArray[np.float64]]


def polygon_measures(crs: CRS | None) -> tuple[Measure, Measure]:
    """Area (m²) and perimeter (m) functions for polygons in ``crs``'s coordinates."""
    if crs is not None and crs.is_geographic:
        geod = pyproj.CRS.from_user_input(crs.to_wkt()).get_geod()
        assert geod is not None

        def geodesic(index: int) -> Measure:
            return lambda geoms: np.array(
                [abs(geod.geometry_area_perimeter(g)[index]) for g in geoms], np.float64
            )

        return geodesic(0), geodesic(1)
    factor = area_factor(crs)
    return (
        lambda geoms: shapely.area(np.asarray(geoms)) * factor**2,
        lambda geoms: shapely.length(np.asarray(geoms)) * factor,
    )
