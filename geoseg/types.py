"""Frozen value objects shared between stages.

>>> from affine import Affine
>>> info = SceneInfo(height=10, width=20, bands=(1, 2), dtype="uint16",
...                  transform=Affine.identity(), crs=None, nodata=0)
>>> info.count, info.shape
(2, (2, 10, 20))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from affine import Affine
from rasterio.crs import CRS

from geoseg.errors import InputError

__all__ = ["Progress", "SceneInfo", "StageProgress", "area_order", "class_name"]

Progress = Callable[[int, int], None]
"""The one progress callback: ``progress(step, value)``. Tiles and vector blocks call
``progress(done, total)``; training calls ``progress(iteration, labels left)``."""

StageProgress = Callable[[str, int, int], None]
"""A whole run's progress: ``progress(stage, done, total)`` with the stage named
(``train``: iterations, ``predict``: tiles, ``vote`` and ``vectorize``: blocks,
``report``)."""


def class_name(k: int, names: Sequence[str]) -> str | None:
    """The name of class ``k`` of a label raster whose classes ``1..len(names)`` the
    user named (scribbles), ``None`` for any other id.

    >>> class_name(2, ["water", "forest"]), class_name(3, ["water", "forest"])
    ('forest', None)
    """
    return names[k - 1] if 0 < k <= len(names) else None


def area_order(counts: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
    """Class ids ``1..`` with pixels, by decreasing ``counts[id]`` (ties: the lower id
    first): the order in which label rasters number their classes ``1..K``. Id 0
    (nodata) is left out.

    >>> area_order(np.array([9, 5, 0, 7, 5])).tolist()
    [3, 1, 4]
    """
    counts = np.asarray(counts)
    order = np.argsort(-counts[1:], kind="stable") + 1
    return order[counts[order] > 0].astype(np.int64)


@dataclass(frozen=True, slots=True)
class SceneInfo:
    """What a scene is, without its pixels: size, the bands used, grid and nodata.

    ``bands`` are the file's 1-based band numbers that are read, in that order;
    ``nodata`` is the value that marks nodata (from the file or the configuration), or
    ``None`` when only the file's mask (and NaN) marks it.
    """

    height: int
    width: int
    bands: tuple[int, ...]
    dtype: str
    transform: Affine
    crs: CRS | None
    nodata: float | None

    def __post_init__(self) -> None:
        if self.height < 1 or self.width < 1:
            raise InputError(f"scene of {self.height}x{self.width} pixels has no pixel")
        if not self.bands or min(self.bands) < 1:
            raise InputError(f"scene bands {self.bands} must be 1-based band numbers")

    @property
    def count(self) -> int:
        """Number of bands read."""
        return len(self.bands)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(bands, rows, cols)`` of the whole scene as read."""
        return self.count, self.height, self.width
