"""Pure tiling: a scene's shape and tiling parameters give overlapping read windows whose
cores partition the scene exactly; :func:`sample_crops` picks training crops.

Tiles start every ``tile_size - overlap`` pixels; the last row and column of tiles are
shifted back to end on the scene's edge, so every tile has the same size (except when the
scene is smaller than one tile: then the tile is the scene). Where two tiles overlap, the
cut between their cores is the middle of the overlap, so every core pixel has at least
``overlap // 2`` pixels of context on each side that is not a scene edge.

    >>> tiles = list(tile_grid(5, 7, tile_size=4, overlap=2))
    >>> [(t.read.col_off, t.read.width, t.core.col_off, t.core.width) for t in tiles if t.row == 0]
    [(0, 4, 0, 3), (2, 4, 3, 1), (3, 4, 4, 3)]
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import numpy.typing as npt
from rasterio.windows import Window

from geoseg.errors import ConfigError, InputError

__all__ = [
    "Tile",
    "axis_tiles",
    "blocks",
    "check_tiling",
    "sample_crops",
    "seam_cuts",
    "stroke_crops",
    "tile_grid",
]


@dataclass(frozen=True, slots=True)
class Tile:
    """One tile: where to read (with context) and which pixels it owns (its core).

    ``row`` and ``col`` index the tile in the grid; ``read`` and ``core`` are in scene
    pixel coordinates, ``core`` lies inside ``read``.
    """

    row: int
    col: int
    read: Window
    core: Window

    def __post_init__(self) -> None:
        r, c = self.read, self.core
        inside = (
            r.row_off <= c.row_off
            and r.col_off <= c.col_off
            and c.row_off + c.height <= r.row_off + r.height
            and c.col_off + c.width <= r.col_off + r.width
        )
        if not inside or c.width <= 0 or c.height <= 0:
            raise InputError(f"tile core {c} must be a non-empty part of its read window {r}")

    @property
    def core_in_read(self) -> tuple[slice, slice]:
        """Row and column slices of the core inside an array read with ``read``."""
        r0 = int(self.core.row_off - self.read.row_off)
        c0 = int(self.core.col_off - self.read.col_off)
        return slice(r0, r0 + int(self.core.height)), slice(c0, c0 + int(self.core.width))


def axis_tiles(size: int, *, tile_size: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Tiles along one axis as ``(read_start, read_length, core_start, core_length)``.

    >>> axis_tiles(10, tile_size=4, overlap=2)
    [(0, 4, 0, 3), (2, 4, 3, 2), (4, 4, 5, 2), (6, 4, 7, 3)]
    """
    check_tiling(tile_size, overlap)
    if size < 1:
        raise InputError(f"scene axis of {size} pixels; a scene needs at least one pixel")
    length = min(tile_size, size)
    step = tile_size - overlap
    starts = [*range(0, size - length, step), size - length]
    cuts = [0, *((a + b + length) // 2 for a, b in pairwise(starts)), size]
    return [(start, length, cuts[i], cuts[i + 1] - cuts[i]) for i, start in enumerate(starts)]


def tile_grid(height: int, width: int, *, tile_size: int, overlap: int) -> Iterator[Tile]:
    """All tiles of a ``height x width`` scene, row by row.

    Parameters
    ----------
    height, width
        Scene size in pixels.
    tile_size
        Side of a read window in pixels.
    overlap
        Pixels shared by neighbouring read windows; must be smaller than ``tile_size``.
    """
    rows = axis_tiles(height, tile_size=tile_size, overlap=overlap)
    cols = axis_tiles(width, tile_size=tile_size, overlap=overlap)
    for i, (r0, rn, cr0, crn) in enumerate(rows):
        for j, (c0, cn, cc0, ccn) in enumerate(cols):
            yield Tile(
                row=i,
                col=j,
                read=Window(c0, r0, cn, rn),
                core=Window(cc0, cr0, ccn, crn),
            )


def blocks(
    height: int, width: int, size: int, *, margin: int = 0
) -> Iterator[tuple[Window, Window]]:
    """Non-overlapping ``size x size`` blocks of a ``height x width`` raster, row by row:
    ``(core, read)``, where ``read`` is the core grown by ``margin`` on every side and
    clipped to the raster. The one block grid of the stages that walk a raster on disk
    (vectorizing, the superpixel vote); tiles for the network are :func:`tile_grid`.

    >>> [(c.col_off, c.row_off, c.width, c.height) for c, _ in blocks(3, 5, 2)][:3]
    [(0, 0, 2, 2), (2, 0, 2, 2), (4, 0, 1, 2)]
    >>> next(blocks(10, 10, 4, margin=2))[1]
    Window(col_off=0, row_off=0, width=6, height=6)
    """
    if size < 1 or margin < 0:
        raise InputError(f"block size={size} must be >= 1 and margin={margin} >= 0")
    for r in range(0, height, size):
        for c in range(0, width, size):
            core = Window(c, r, min(size, width - c), min(size, height - r))
            r0, c0 = max(0, r - margin), max(0, c - margin)
            r1 = min(height, r + int(core.height) + margin)
            c1 = min(width, c + int(core.width) + margin)
            yield core, Window(c0, r0, c1 - c0, r1 - r0)


def check_tiling(tile_size: int, overlap: int) -> None:
    """Refuse a tile size below 1 or an overlap outside ``0 .. tile_size - 1``."""
    if tile_size < 1:
        raise ConfigError(f"tiling.tile_size={tile_size} must be >= 1")
    if not 0 <= overlap < tile_size:
        raise ConfigError(
            f"tiling.overlap={overlap} must be >= 0 and smaller than tiling.tile_size={tile_size}"
        )


def seam_cuts(
    height: int, width: int, *, tile_size: int, overlap: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Tile seams of a scene: ``(row_cuts, col_cuts)``, the first row (column) of each
    tile core after the first, as :func:`tile_grid` lays the tiles.

    >>> seam_cuts(10, 4, tile_size=4, overlap=2)
    (array([3, 5, 7]), array([], dtype=int64))
    """
    rows, cols = (
        np.array(
            [core for _, _, core, _ in axis_tiles(n, tile_size=tile_size, overlap=overlap)][1:],
            np.int64,
        )
        for n in (height, width)
    )
    return rows, cols


def sample_crops(
    valid: npt.NDArray[np.bool_],
    *,
    height: int,
    width: int,
    crop_size: int,
    n_crops: int,
    seed: int = 0,
    min_valid: float = 0.5,
) -> list[Window]:
    """Training crops spread evenly over the valid area of a scene.

    The scene is split into a ``g x g`` grid of cells (``g = ceil(sqrt(n_crops))``).
    Cells are visited in random order; each proposes a crop centred on a random valid
    pixel inside it, kept when at least ``min_valid`` of the crop is valid. Rounds over
    the cells repeat until ``n_crops`` are found or no cell yields one, so mostly
    nodata cells give nothing and valid ones give more.

    Parameters
    ----------
    valid
        Validity mask of the whole scene at any resolution (e.g. a decimated read).
    height, width
        Scene size in full-resolution pixels; windows are returned in that grid.
    crop_size
        Side of a crop (clipped to the scene).
    n_crops
        Number of crops wanted.
    seed
        Same seed, same crops.
    min_valid
        Smallest valid fraction of a kept crop.

    >>> mask = np.ones((10, 10), bool)
    >>> crops = sample_crops(mask, height=100, width=100, crop_size=20, n_crops=4)
    >>> len(crops), (crops[0].width, crops[0].height)
    (4, (20, 20))
    """
    if n_crops < 1 or crop_size < 1:
        raise ConfigError(f"need n_crops >= 1 and crop_size >= 1; got {n_crops}, {crop_size}")
    if not valid.any():
        raise InputError("scene has no valid pixel to sample training crops from")
    rng = np.random.default_rng(seed)
    ch, cw = min(crop_size, height), min(crop_size, width)
    fy, fx = valid.shape[0] / height, valid.shape[1] / width
    integral = np.pad(valid.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))

    def valid_fraction(r0: int, c0: int) -> float:
        a0, a1 = int(r0 * fy), max(int(r0 * fy) + 1, round((r0 + ch) * fy))
        b0, b1 = int(c0 * fx), max(int(c0 * fx) + 1, round((c0 + cw) * fx))
        a1, b1 = min(a1, valid.shape[0]), min(b1, valid.shape[1])
        total = integral[a1, b1] - integral[a0, b1] - integral[a1, b0] + integral[a0, b0]
        return float(total) / ((a1 - a0) * (b1 - b0))

    g = math.ceil(math.sqrt(n_crops))
    rows, cols = np.nonzero(valid)
    cell = (rows * g // valid.shape[0]) * g + cols * g // valid.shape[1]
    members = [np.flatnonzero(cell == k) for k in range(g * g)]
    crops: list[Window] = []
    while len(crops) < n_crops:
        found = False
        for k in rng.permutation(g * g):
            if len(crops) == n_crops:
                break
            if members[k].size == 0:
                continue
            for _ in range(3):  # a few tries per cell and round
                i = members[k][rng.integers(members[k].size)]
                cy = (rows[i] + rng.random()) / fy
                cx = (cols[i] + rng.random()) / fx
                r0 = int(min(max(cy - ch / 2, 0), height - ch))
                c0 = int(min(max(cx - cw / 2, 0), width - cw))
                if valid_fraction(r0, c0) >= min_valid:
                    crops.append(Window(c0, r0, cw, ch))
                    found = True
                    break
        if not found:
            break
    if not crops:
        raise InputError(
            f"no {ch}x{cw} crop is at least {min_valid:.0%} valid; lower the crop size"
        )
    return crops


def stroke_crops(
    rows: npt.NDArray[np.integer],
    cols: npt.NDArray[np.integer],
    classes: npt.NDArray[np.integer],
    *,
    height: int,
    width: int,
    crop_size: int,
    n_crops: int,
    seed: int = 0,
) -> list[Window]:
    """At most ``n_crops`` crops that hold scribbled pixels (``classes`` at ``rows,
    cols``), so training sees the strokes wherever they lie in the scene: classes take
    turns, each placing a crop centred on one of its pixels that no crop holds yet
    (seeded), until every pixel is held or ``n_crops`` are placed.

    >>> crops = stroke_crops(np.array([5, 90]), np.array([5, 90]), np.array([0, 1]),
    ...                      height=100, width=100, crop_size=20, n_crops=4)
    >>> [(c.col_off, c.row_off) for c in crops]
    [(0, 0), (80, 80)]
    """
    rng = np.random.default_rng(seed)
    ch, cw = min(crop_size, height), min(crop_size, width)
    left = np.ones(rows.size, bool)
    crops: list[Window] = []
    while left.any() and len(crops) < n_crops:
        for k in np.unique(classes[left]):
            if len(crops) == n_crops:
                break
            mine = np.flatnonzero(left & (classes == k))
            if mine.size == 0:
                continue
            i = mine[rng.integers(mine.size)]
            r0 = int(min(max(rows[i] - ch // 2, 0), height - ch))
            c0 = int(min(max(cols[i] - cw // 2, 0), width - cw))
            crops.append(Window(c0, r0, cw, ch))
            left &= ~((rows >= r0) & (rows < r0 + ch) & (cols >= c0) & (cols < c0 + cw))
    return crops
