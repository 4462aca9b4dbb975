"""Pure tiling: a scene's shape and tiling parameters give overlapping read windows whose
cores partition the scene exactly.

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

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise

from rasterio.windows import Window

from geoseg.errors import ConfigError, InputError

__all__ = ["Tile", "axis_tiles", "tile_grid"]


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
    _check(tile_size, overlap)
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


def _check(tile_size: int, overlap: int) -> None:
    if tile_size < 1:
        raise ConfigError(f"tiling.tile_size={tile_size} must be >= 1")
    if not 0 <= overlap < tile_size:
        raise ConfigError(
            f"tiling.overlap={overlap} must be >= 0 and smaller than tiling.tile_size={tile_size}"
        )
