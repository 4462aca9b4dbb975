"""Tile mode's stitcher: tile-local labels -> scene classes that mean the same everywhere;
and the optional superpixel vote on the stitched labels (:func:`superpixel_vote`).

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

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from rasterio.windows import Window

from geoseg.errors import InputError
from geoseg.segment.merge import merge_table
from geoseg.segment.params import SegmentParams
from geoseg.segment.superpixels import compute_superpixels, refine_labels
from geoseg.tiling import Tile, blocks

__all__ = ["TileAligner", "superpixel_vote"]

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

    def merge_to(self, n_classes: int) -> npt.NDArray[np.int64]:
        """Table ``scene class -> scene class`` joining the classes seen so far into
        ``n_classes`` by Ward's criterion on their codebook means (index 0, nodata,
        stays 0)."""
        counts = np.rint(self._counts).astype(np.int64)
        means = self._sums / np.maximum(self._counts, 1)[:, None]
        table = merge_table(counts, means, n_classes=n_classes)
        return np.concatenate([[0], table + 1])

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


def superpixel_vote(
    read_labels: Callable[[Window], npt.NDArray[np.integer]],
    read_image: Callable[[Window], tuple[npt.NDArray[np.floating], npt.NDArray[np.bool_]]],
    shape: tuple[int, int],
    params: SegmentParams,
    *,
    block: int,
    margin: int,
) -> Iterator[tuple[Window, npt.NDArray[np.int64]]]:
    """Superpixel majority vote over a stitched label raster, block by block, without seams.

    Each ``block x block`` core is read with ``margin`` pixels of context (clipped to
    the scene) from the stitched labels (``0`` = nodata) and the stretched image;
    Felzenszwalb superpixels (``params.fz_*``) are computed on that window and each
    is painted with its majority label; the core is yielded. Felzenszwalb's segments
    depend only on nearby pixels, so a superpixel that crosses a core's edge comes out
    the same in both windows once the margin exceeds its reach, and both sides of the
    cut get the same vote. SLIC is not used here even when it is the training prior:
    its seed grid follows the window, so its superpixels change from window to window.
    The cores do not depend on the tile size, so neither does the vote.

    Yields ``(core window, refined labels)``; cores without labelled pixels are skipped.
    """
    height, width = shape
    felzenszwalb = params.replace(superpixels="felzenszwalb")
    for core, window in blocks(height, width, block, margin=margin):
        r, c = int(core.row_off), int(core.col_off)
        r0, c0 = int(window.row_off), int(window.col_off)
        labels = np.asarray(read_labels(window), np.int64)
        inner = (
            slice(r - r0, r - r0 + int(core.height)),
            slice(c - c0, c - c0 + int(core.width)),
        )
        if not (labels[inner] > 0).any():
            continue
        image, valid = read_image(window)
        superpixels = compute_superpixels(image, felzenszwalb, valid=valid & (labels > 0))
        refined = refine_labels(
            torch.from_numpy(labels),
            torch.from_numpy(superpixels.astype(np.int64)),
            int(labels.max()) + 1,
        )
        yield core, refined.numpy()[inner]


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
