"""Tile mode's stitcher: tile-local labels -> scene classes that mean the same everywhere.

In tile mode every tile is segmented on its own, so its label ids are arbitrary. Tiles
are aligned in raster order. A tile label takes the scene class that most of its pixels
carry in the overlap with tiles already placed (overlap voting), when that class holds
at least ``min_vote_share`` of them and its mean stretched band values lie within
``max_vote_distance`` of that class's (the codebook): votes propose, colours confirm, so
one tile's merge of two classes does not spread to its neighbours. A label without
such a vote (an object inside the tile) takes the scene class whose codebook mean is
nearest, when within ``max_feature_distance``, or else starts a new scene class. The
codebook is the pixel-weighted mean of every core pixel written to a class so far.

Only the previous row of tiles is kept, so memory is bounded by one row of tiles.

>>> from geoseg.tiling import tile_grid
>>> left, right = tile_grid(4, 6, tile_size=4, overlap=2)
>>> image = np.zeros((1, 4, 4), np.float32)
>>> aligner = TileAligner()
>>> aligner.align(left, np.zeros((4, 4), np.int32), image)[0].tolist()
[1, 1, 1, 1]
>>> aligner.align(right, np.full((4, 4), 7, np.int32), image)[0].tolist()
[1, 1, 1, 1]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from geoseg.errors import InputError
from geoseg.tiling import Tile

__all__ = ["SeamlessVote", "TileAligner"]

Placed = dict[tuple[int, int], tuple[Tile, npt.NDArray[np.int64] | npt.NDArray[np.int32]]]

MIN_VOTES = 16
"""Overlap pixels a label needs before its vote counts (fewer: the codebook decides)."""


class TileAligner:
    """Turns each tile's own labels into scene class ids (1, 2, ...; 0 is nodata).

    Parameters
    ----------
    min_vote_share
        Share of a label's voting overlap pixels its winning scene class must hold.
    max_vote_distance
        Largest RMS distance (over bands, in stretched 0-1 units) between a label's mean
        and the codebook entry of the class it voted for.
    max_feature_distance
        Largest such distance for a label without a vote to join the nearest class.
    """

    def __init__(
        self,
        *,
        min_vote_share: float = 0.5,
        max_vote_distance: float = 0.25,
        max_feature_distance: float = 0.1,
    ) -> None:
        if not 0 < min_vote_share <= 1 or max_vote_distance <= 0 or max_feature_distance <= 0:
            raise InputError(
                f"min_vote_share={min_vote_share} must lie in (0, 1], "
                f"max_vote_distance={max_vote_distance} and "
                f"max_feature_distance={max_feature_distance} be > 0"
            )
        self.min_vote_share = min_vote_share
        self.max_vote_distance = max_vote_distance
        self.max_feature_distance = max_feature_distance
        self._placed: Placed = {}
        self._sums = np.zeros((0, 0))
        self._counts = np.zeros(0)

    @property
    def n_classes(self) -> int:
        """Scene classes created so far."""
        return int(self._counts.size)

    def align(
        self,
        tile: Tile,
        labels: npt.NDArray[np.integer],
        image: npt.NDArray[np.floating],
    ) -> npt.NDArray[np.int32]:
        """Scene classes ``(rows, cols)`` of a tile's read window (0 where ``labels < 0``).

        ``labels`` are the tile's own ids over its read window (``-1`` at nodata) and
        ``image`` the stretched bands ``(B, rows, cols)`` they were computed from.
        """
        if labels.shape != image.shape[1:] or labels.shape != (tile.read.height, tile.read.width):
            raise InputError(
                f"labels {labels.shape} and image {image.shape} must match the tile's read "
                f"window {tile.read.height}x{tile.read.width}"
            )
        if self._sums.shape[1:] != (image.shape[0],):
            if self._counts.size:
                raise InputError("every tile must have the same band count")
            self._sums = np.zeros((0, image.shape[0]))
        inside = labels >= 0
        ids, local = np.unique(labels[inside], return_inverse=True)
        n_local = ids.size
        counts = np.bincount(local, minlength=n_local).astype(float)
        means = (
            np.stack(
                [np.bincount(local, weights=band[inside], minlength=n_local) for band in image],
                axis=1,
            )
            / np.maximum(counts, 1)[:, None]
        )
        local_map = np.full(labels.shape, -1, np.int64)
        local_map[inside] = local

        mapping = np.zeros(n_local, np.int32)
        votes = self._votes(tile, local_map, n_local)
        for k in np.argsort(-counts, kind="stable"):
            total, best = votes[k].sum(), int(votes[k].argmax())
            if (
                total >= MIN_VOTES
                and votes[k, best] >= self.min_vote_share * total
                and self._distance(means[k])[best - 1] <= self.max_vote_distance
            ):
                mapping[k] = best
            else:
                mapping[k] = self._nearest_or_new(means[k])

        scene = np.zeros(labels.shape, np.int32)
        scene[inside] = mapping[local]
        self._learn(tile, scene, image)
        _place(self._placed, tile, scene)
        return scene

    def _votes(
        self, tile: Tile, local_map: npt.NDArray[np.int64], n_local: int
    ) -> npt.NDArray[np.int64]:
        """``votes[label, scene class]``: overlap pixels shared with placed tiles."""
        votes = np.zeros((n_local, self.n_classes + 1), np.int64)
        for mine_at, theirs in _shared(tile, self._placed):
            mine = local_map[mine_at]
            both = (mine >= 0) & (theirs > 0)
            np.add.at(votes, (mine[both], theirs[both]), 1)
        votes[:, 0] = 0
        return votes

    def _distance(self, mean: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """RMS distance of ``mean`` to every codebook entry (class id - 1)."""
        centres = self._sums / np.maximum(self._counts, 1)[:, None]
        return np.sqrt(((centres - mean) ** 2).mean(axis=1))

    def _nearest_or_new(self, mean: npt.NDArray[np.float64]) -> int:
        if self._counts.size:
            distance = self._distance(mean)
            best = int(distance.argmin())
            if distance[best] <= self.max_feature_distance:
                return best + 1
        self._sums = np.vstack([self._sums, np.zeros((1, mean.size))])
        self._counts = np.append(self._counts, 0.0)
        self._sums[-1] = mean  # provisional centre until the core's pixels are counted
        self._counts[-1] = 1.0
        return self.n_classes

    def _learn(
        self, tile: Tile, scene: npt.NDArray[np.int32], image: npt.NDArray[np.floating]
    ) -> None:
        rows, cols = tile.core_in_read
        core = scene[rows, cols]
        placed = core > 0
        counts = np.bincount(core[placed], minlength=self.n_classes + 1)[1:]
        for b, band in enumerate(image[:, rows, cols]):
            self._sums[:, b] += np.bincount(
                core[placed], weights=band[placed], minlength=self.n_classes + 1
            )[1:]
        self._counts += counts


class SeamlessVote:
    """Superpixel majority vote over a tiled scene that leaves no seam (two passes).

    Superpixels are computed per tile on its read window, so one that crosses a core's
    edge comes out a little different in each tile that sees it; voting in each tile
    separately would then disagree at the cut. Here, pass 1 (:meth:`vote`, tiles in
    raster order) paints a superpixel with its majority label at once only when it lies
    inside its tile's core, ``margin`` pixels away from any core edge that is not the
    scene's edge. Every other superpixel with pixels in the core is *pending*: it gets a
    scene-wide id, the label counts of its core pixels are kept, and it is joined
    (union-find) with each pending superpixel of an overlapping tile that shares at
    least ``min_shared`` of the smaller one's pixels in the overlap. Pass 2
    (:meth:`resolve`) gives every joined set the majority over all its core pixels, so
    both sides of a cut read the same label.

    Memory: the label counts of pending superpixels (a few per superpixel) and the
    pending ids of the tiles that can still overlap later ones.
    """

    def __init__(self, *, margin: int, min_shared: float = 0.5) -> None:
        self.margin = margin
        self.min_shared = min_shared
        self._placed: Placed = {}
        self._parent = np.zeros(0, np.int64)
        self._counts: list[npt.NDArray[np.int64]] = []  # rows of (id, label, count)
        self._scene_shape: tuple[int, int] | None = None

    def vote(
        self,
        tile: Tile,
        classes: npt.NDArray[np.integer],
        superpixels: npt.NDArray[np.integer],
        *,
        scene_shape: tuple[int, int],
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
        """``(labels, pending)`` of the tile's core.

        ``classes`` (``0`` = nodata) and ``superpixels`` (``-1`` = none) cover the read
        window. ``labels`` holds final labels where ``pending`` is 0 and the unvoted class
        elsewhere; ``pending`` holds ids (``1, 2, ...``) to look up in :meth:`resolve`.
        """
        rows, cols = tile.core_in_read
        sp = np.where(classes > 0, superpixels, -1).astype(np.int64)
        n_sp = int(sp.max()) + 1 if sp.size else 0
        inside = sp >= 0
        n_classes = int(classes.max()) + 1
        pairs = np.bincount(
            sp[inside] * n_classes + classes[inside], minlength=n_sp * n_classes
        ).reshape(n_sp, n_classes)
        majority = pairs.argmax(axis=1).astype(np.int32)

        safe = np.zeros(sp.shape, bool)
        safe[self._safe_slices(tile, scene_shape)] = True
        in_core = np.zeros(sp.shape, bool)
        in_core[rows, cols] = True
        has_core = np.bincount(sp[inside & in_core], minlength=n_sp) > 0
        leaves_safe = np.bincount(sp[inside & ~safe], minlength=n_sp) > 0
        pending_sp = has_core & leaves_safe

        first = self._parent.size + 1
        ids = np.zeros(n_sp, np.int64)
        ids[pending_sp] = np.arange(first, first + int(pending_sp.sum()))
        self._parent = np.concatenate([self._parent, ids[pending_sp]])
        pending = np.where(inside, ids[np.maximum(sp, 0)], 0)

        core_sp, core_classes = sp[rows, cols], classes[rows, cols]
        keep = (core_sp >= 0) & pending_sp[np.maximum(core_sp, 0)]
        key, count = np.unique(
            ids[core_sp[keep]] * n_classes + core_classes[keep], return_counts=True
        )
        self._counts.append(np.stack([key // n_classes, key % n_classes, count], axis=1))

        for mine_at, theirs in _shared(tile, self._placed):
            self._join(pending[mine_at], theirs)
        _place(self._placed, tile, pending)

        labels = np.where(inside, majority[np.maximum(sp, 0)], 0)[rows, cols]
        labels = np.where(pending[rows, cols] > 0, classes[rows, cols], labels)
        return labels.astype(np.int32), pending[rows, cols]

    def resolve(self) -> npt.NDArray[np.int32]:
        """``lookup[pending id]``: the majority label of the id's joined set (0 unused)."""
        roots = np.array([self._find(i) for i in range(1, self._parent.size + 1)], np.int64)
        lookup = np.zeros(self._parent.size + 1, np.int32)
        if not self._counts or roots.size == 0:
            return lookup
        table = np.concatenate(self._counts)
        root = roots[table[:, 0] - 1]
        n_classes = int(table[:, 1].max()) + 1
        key, inverse = np.unique(root * n_classes + table[:, 1], return_inverse=True)
        totals = np.bincount(inverse, weights=table[:, 2])
        order = np.lexsort((-totals, key // n_classes))  # per root, most pixels first
        best_root, first = np.unique(key[order] // n_classes, return_index=True)
        winner = np.zeros(self._parent.size + 1, np.int32)
        winner[best_root] = (key[order][first] % n_classes).astype(np.int32)
        lookup[1:] = winner[roots]
        return lookup

    def _safe_slices(self, tile: Tile, scene_shape: tuple[int, int]) -> tuple[slice, slice]:
        """The core, shrunk by ``margin`` except along the scene's edges, in read coords."""
        rows, cols = tile.core_in_read
        height, width = scene_shape
        r0, c0 = int(tile.core.row_off), int(tile.core.col_off)
        r1, c1 = r0 + int(tile.core.height), c0 + int(tile.core.width)
        m = self.margin
        return (
            slice(rows.start + (m if r0 > 0 else 0), rows.stop - (m if r1 < height else 0)),
            slice(cols.start + (m if c0 > 0 else 0), cols.stop - (m if c1 < width else 0)),
        )

    def _join(self, mine: npt.NDArray[np.int64], theirs: npt.NDArray[np.int64]) -> None:
        both = (mine > 0) & (theirs > 0)
        if not both.any():
            return
        pair, shared = np.unique(np.stack([mine[both], theirs[both]]), axis=1, return_counts=True)
        # Each superpixel joins the one of the other tile that holds most of its overlap
        # pixels, when that is at least min_shared of them (both directions).
        for side in (0, 1):
            ids, first = np.unique(pair[side], return_index=True)
            size = dict(
                zip(*np.unique((mine, theirs)[side][both], return_counts=True), strict=True)
            )
            order = np.lexsort((-shared, pair[side]))
            ids, first = np.unique(pair[side][order], return_index=True)
            for i, at in zip(ids.tolist(), first.tolist(), strict=True):
                k = order[at]
                if shared[k] >= self.min_shared * size[i]:
                    self._union(int(pair[0, k]), int(pair[1, k]))

    def _union(self, a: int, b: int) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra != rb:
            self._parent[max(ra, rb) - 1] = min(ra, rb)

    def _find(self, i: int) -> int:
        parent = self._parent
        root = i
        while parent[root - 1] != root:
            root = int(parent[root - 1])
        while parent[i - 1] != root:  # path compression
            parent[i - 1], i = root, int(parent[i - 1])
        return root


def _shared(tile: Tile, placed: Placed) -> Iterator[tuple[tuple[slice, slice], npt.NDArray[Any]]]:
    """For each placed tile overlapping ``tile``: the overlap in ``tile``'s read
    coordinates and the placed tile's array over the overlap."""
    r0, c0 = int(tile.read.row_off), int(tile.read.col_off)
    for other, array in placed.values():
        o0, p0 = int(other.read.row_off), int(other.read.col_off)
        top, left = max(r0, o0), max(c0, p0)
        bottom = min(r0 + int(tile.read.height), o0 + int(other.read.height))
        right = min(c0 + int(tile.read.width), p0 + int(other.read.width))
        if bottom > top and right > left:
            mine = (slice(top - r0, bottom - r0), slice(left - c0, right - c0))
            yield mine, array[top - o0 : bottom - o0, left - p0 : right - p0]


def _place(placed: Placed, tile: Tile, array: npt.NDArray[Any]) -> None:
    """Keep ``tile``'s array; drop tiles that no later tile (raster order) can overlap."""
    top = int(tile.read.row_off)
    for key in [k for k, (t, _) in placed.items() if t.read.row_off + t.read.height <= top]:
        del placed[key]
    placed[(tile.row, tile.col)] = (tile, array)
