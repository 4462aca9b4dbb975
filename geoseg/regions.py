"""The segments of a label raster, found block by block (pass 1 of
:mod:`geoseg.vectorize`), and the merging of small segments into their most similar
neighbour. See :mod:`geoseg.vectorize` for the whole procedure.

Hand-written here: the row-by-row joins (a representative per segment, chains followed
at the end) and the merge rounds (numpy over edge lists).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from rasterio.windows import Window
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from skimage.measure import label as label_regions

from geoseg.errors import InputError
from geoseg.types import area_order

__all__ = [
    "ReadBands",
    "ReadLabels",
    "Segments",
    "Spill",
    "find_segments",
    "label_blocks",
    "merge_small",
]

logger = logging.getLogger(__name__)

ReadLabels = Callable[[Window], npt.NDArray[np.integer]]
"""``read_labels(window)``: class ids ``(rows, cols)`` of a window, 0 = nodata."""
ReadBands = Callable[[Window], npt.NDArray[np.number]]
"""``read_bands(window)``: band values ``(bands, rows, cols)`` in source units."""


def label_blocks(classes: npt.NDArray[np.integer]) -> tuple[npt.NDArray[np.int64], int]:
    """Block-local ids (1..n, 0 = nodata) of the 4-connected regions of one class."""
    ids, n = label_regions(classes, background=0, connectivity=1, return_num=True)
    return ids.astype(np.int64), int(n)


class Spill:
    """Per-segment sums (a structured array, one row per segment, in segment order) in
    an unnamed temporary file, which the system removes however the process ends."""

    def __init__(self, n_bands: int) -> None:
        self.dtype = np.dtype(
            [
                ("first", "i8"),
                ("cls", "i8"),
                ("count", "i8"),
                ("sums", "f8", (n_bands,)),  # band values minus the shift
                ("squares", "f8", (n_bands,)),
            ]
        )
        self.size = 0
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())

    def append(self, rows: npt.NDArray[np.void]) -> None:
        self._file.seek(0, os.SEEK_END)
        self._file.write(rows.astype(self.dtype, copy=False).tobytes())
        self.size += len(rows)

    def read(self, start: int, stop: int) -> npt.NDArray[np.void]:
        self._file.seek(start * self.dtype.itemsize)
        data = self._file.read((stop - start) * self.dtype.itemsize)
        return np.frombuffer(data, self.dtype)

    def close(self) -> None:
        self._file.close()


@dataclass
class Segments:
    """What pass 1 leaves for pass 2."""

    spill: Spill  # segment sums, segments ordered by the block row that completes them
    to_seg: npt.NDArray[np.int64]  # global id (1-based) -> segment index (index 0: -1)
    row_end: npt.NDArray[np.int64]  # segments completed up to each block row, cumulative
    offsets: list[int]  # first global id - 1 of each block, in block order
    shift: npt.NDArray[np.float64]  # (B,) keeps the sums of squares well conditioned
    edges: npt.NDArray[np.int64]  # (E, 2) neighbouring segments (only when merging)


def find_segments(
    read_labels: ReadLabels,
    read_bands: ReadBands | None,
    blocks: list[list[Window]],
    width: int,
    tick: Callable[[], None],
    *,
    n_bands: int,
    want_edges: bool,
) -> Segments:
    """Label every block, join pieces across block edges and sum per segment, one row
    of blocks at a time.

    Components are formed row by row over the components still *open* (touching the
    row of blocks above) and the new row's pieces (``connected_components`` over the
    pairs of equal class facing each other across a block edge). A component that does
    not reach the row's bottom line is complete: its sums go to the spill file and only
    its representative (lowest global id) is kept, so memory follows the scene's width,
    not its number of segments. Global ids point to their component's representative
    (``link``); representatives of open components that meet later are re-pointed, and
    the chains are followed once at the end.
    """
    spill = Spill(n_bands)
    open_rows = np.zeros(0, spill.dtype)  # sums of the open components
    open_rep = np.zeros(0, np.int64)  # their representatives
    above = np.full(width, -1, np.int64)  # open component of each pixel on the line above
    above_ids = np.zeros(width, np.int64)  # global ids on that line (for edges)
    links: list[npt.NDArray[np.int64]] = [np.zeros(1, np.int64)]  # id 0: nodata
    moves: list[npt.NDArray[np.int64]] = []  # (old rep, new rep) of components that met
    reps: list[npt.NDArray[np.int64]] = []  # representative of each segment, in order
    touches: list[npt.NDArray[np.int64]] = []
    row_end: list[int] = []
    offsets: list[int] = []
    next_id = 1  # global ids are 1-based: 0 is nodata
    shift: npt.NDArray[np.float64] | None = None
    for block_row, windows in enumerate(blocks):
        row_first, carried = next_id, open_rows.size
        tables = [open_rows]
        joins: list[npt.NDArray[np.int64]] = [np.zeros((0, 2), np.int64)]
        bottom = np.full(width, -1, np.int64)  # node of each pixel on the row's last line
        bottom_ids = np.zeros(width, np.int64)
        left_ids = left_cls = None
        for window in windows:
            cls = np.asarray(read_labels(window)).astype(np.int64)
            local, n = label_blocks(cls)
            offsets.append(next_id - 1)
            ids = np.where(local > 0, local + next_id - 1, 0)
            node = np.where(ids > 0, ids - row_first + carried, -1)  # this row's nodes
            flat = local.ravel()
            table = np.zeros(n + 1, spill.dtype)
            table["count"] = np.bincount(flat, minlength=n + 1)
            table["cls"][flat] = cls.ravel()
            at = _first_pixels(flat, n)
            table["first"][1:] = (window.row_off + at // window.width) * width + (
                window.col_off + at % window.width
            )
            if read_bands is not None:
                values = np.asarray(read_bands(window))
                if values.shape[0] != n_bands:
                    raise InputError(f"{n_bands} band names for {values.shape[0]} bands")
                if shift is None and (local > 0).any():
                    shift = values[:, local > 0].astype(np.float64).mean(axis=1)
                for b in range(n_bands):  # one band in float64 at a time, squared in place
                    band = values[b].astype(np.float64).ravel()
                    band -= 0.0 if shift is None else shift[b]
                    table["sums"][:, b] = np.bincount(flat, band, n + 1)
                    table["squares"][:, b] = np.bincount(flat, np.square(band, out=band), n + 1)
            tables.append(table[1:])
            c0, c1 = int(window.col_off), int(window.col_off + window.width)
            top = above[c0:c1]
            top_cls = np.append(open_rows["cls"], -1)[top]  # -1: no open component
            same = (top >= 0) & (node[0] >= 0) & (top_cls == cls[0])
            joins.append(np.stack([top[same], node[0][same]], axis=1))
            if left_ids is not None and left_cls is not None:
                left = np.where(left_ids > 0, left_ids - row_first + carried, -1)
                same = (left >= 0) & (node[:, 0] >= 0) & (left_cls == cls[:, 0])
                joins.append(np.stack([left[same], node[:, 0][same]], axis=1))
            if want_edges:
                touches.append(_touching(ids, above_ids[c0:c1], left_ids))
            left_ids, left_cls = ids[:, -1], cls[:, -1]
            bottom[c0:c1], bottom_ids[c0:c1] = node[-1], ids[-1]
            next_id += n
            tick()
        table = np.concatenate(tables)
        comp, n_comp = _components(np.concatenate(joins), table.size)
        merged = _sum_rows(table, comp, n_comp)
        node_ids = np.concatenate([open_rep, np.arange(row_first, next_id)])
        rep = np.full(n_comp, np.iinfo(np.int64).max)
        np.minimum.at(rep, comp, node_ids)
        links.append(rep[comp[carried:]])
        moved = rep[comp[:carried]] != open_rep
        moves.append(np.stack([open_rep[moved], rep[comp[:carried]][moved]], axis=1))
        still_open = np.zeros(n_comp, bool)
        if block_row < len(blocks) - 1:
            still_open[comp[bottom[bottom >= 0]]] = True
        done = np.flatnonzero(~still_open)
        spill.append(merged[done])
        reps.append(rep[done])
        row_end.append(spill.size)
        keep = np.flatnonzero(still_open)
        renumber = np.full(n_comp + 1, -1, np.int64)  # last entry: no component
        renumber[keep] = np.arange(keep.size)
        open_rows, open_rep = merged[keep], rep[keep]
        above = renumber[np.append(comp, n_comp)[bottom]]  # bottom -1: none
        above_ids = bottom_ids
    link = np.concatenate(links)
    moved_pairs = np.concatenate([np.zeros((0, 2), np.int64), *moves])
    link[moved_pairs[:, 0]] = moved_pairs[:, 1]
    while True:  # follow the chains of representatives (pointer jumping)
        further = link[link]
        if np.array_equal(further, link):
            break
        link = further
    to_seg = np.full(link.size, -1, np.int64)
    to_seg[np.concatenate([np.zeros(0, np.int64), *reps])] = np.arange(spill.size)
    to_seg = to_seg[link]
    to_seg[0] = -1
    edges = np.zeros((0, 2), np.int64)
    if touches:
        edges = to_seg[np.concatenate(touches)]
        edges = edges[edges[:, 0] != edges[:, 1]]
        edges = _pairs(edges[:, 0], edges[:, 1])
    return Segments(
        spill=spill,
        to_seg=to_seg,
        row_end=np.asarray(row_end, np.int64),
        offsets=offsets,
        shift=np.zeros(n_bands) if shift is None else shift,
        edges=edges,
    )


def _first_pixels(flat: npt.NDArray[np.int64], n: int) -> npt.NDArray[np.int64]:
    """Index of the first pixel of each id ``1..n`` in a block's flattened ids.

    skimage numbers regions in raster-scan order, so each id first appears where the
    running maximum grows: one pass instead of a sort. Checked, with the sort as the
    fallback should the numbering ever differ.
    """
    grows = np.flatnonzero(np.diff(np.maximum.accumulate(flat), prepend=0) > 0)
    if grows.size == n and np.array_equal(flat[grows], np.arange(1, n + 1)):
        return grows
    present, at = np.unique(flat, return_index=True)
    first = np.zeros(n + 1, np.int64)
    first[present] = at
    return first[1:]


def _sum_rows(
    rows: npt.NDArray[np.void], group: npt.NDArray[np.int64], n: int
) -> npt.NDArray[np.void]:
    """Spill rows summed per group ``0..n-1``: counts, band sums and squares added, the
    first pixel the lowest, the class that of any member (one class per group)."""
    out = np.zeros(n, rows.dtype)
    out["count"] = np.bincount(group, rows["count"], n)
    out["cls"][group] = rows["cls"]
    out["first"] = np.iinfo(np.int64).max
    np.minimum.at(out["first"], group, rows["first"])
    for b in range(rows["sums"].shape[1]):
        out["sums"][:, b] = np.bincount(group, rows["sums"][:, b], n)
        out["squares"][:, b] = np.bincount(group, rows["squares"][:, b], n)
    return out


def _touching(
    ids: npt.NDArray[np.int64],
    above_ids: npt.NDArray[np.int64],
    left_ids: npt.NDArray[np.int64] | None,
) -> npt.NDArray[np.int64]:
    """Distinct pairs of different global ids that touch in a block (then they differ
    in class) or across its top and left edges (the line above, the column to the
    left). Pairs of one class across an edge end up in one segment and are dropped."""
    pairs = [(ids[:, :-1], ids[:, 1:]), (ids[:-1], ids[1:]), (above_ids, ids[0])]
    if left_ids is not None:
        pairs.append((left_ids, ids[:, 0]))
    near_a, near_b = [], []
    for a, b in pairs:
        touch = (a != b) & (a > 0) & (b > 0)
        near_a.append(a[touch])
        near_b.append(b[touch])
    return _pairs(np.concatenate(near_a), np.concatenate(near_b))


def _pairs(a: npt.NDArray[np.int64], b: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Distinct pairs ``(min, max)`` of neighbouring ids (one per pair, not per pixel).

    Each pair is packed into one int64 (ids stay below 2**31), which ``np.unique`` sorts
    far faster than rows.

    >>> _pairs(np.array([3, 1, 2, 3]), np.array([1, 3, 2, 5])).tolist()
    [[1, 3], [2, 2], [3, 5]]
    """
    low, high = np.minimum(a, b).astype(np.int64), np.maximum(a, b).astype(np.int64)
    keys = np.unique((low << 32) | high)
    return np.stack([keys >> 32, keys & 0xFFFFFFFF], axis=1)


def merge_small(
    first: Segments, min_pixels: int, *, has_bands: bool, renumber_classes: bool = True
) -> tuple[
    Spill,
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64] | None,
    npt.NDArray[np.int64] | None,
]:
    """``(spill, to_seg, row_end, classes, renumber)`` after merging segments below
    ``min_pixels`` into their most similar neighbour; ``classes`` (class of each
    segment) and ``renumber`` (old class id -> new id: the classes again ``1..K`` by
    decreasing area; ``None`` with ``renumber_classes=False``, the ids kept) are
    ``None`` when no pixel changed class.

    Each round, every segment below ``min_pixels`` with a neighbour picks its most
    similar neighbour; the chosen pairs are joined (a group takes the class of its
    largest member), then neighbours that now share a class are joined too, so a final
    segment is again one connected region of one class. Merged segments are renumbered
    by the row of blocks that completes them, into a new spill.
    """
    if min_pixels <= 0 or not first.edges.size:
        return first.spill, first.to_seg, first.row_end, None, None
    table = first.spill.read(0, first.spill.size)
    n = table.size
    group = np.arange(n)  # current segment of each original one
    counts = table["count"].copy()
    sums, classes, edges = table["sums"].copy(), table["cls"].copy(), first.edges
    scale = np.ones(sums.shape[1])
    if has_bands and n:
        total = counts.sum()
        mean = sums.sum(axis=0) / total
        std = np.sqrt(np.maximum(table["squares"].sum(axis=0) / total - mean**2, 0.0))
        scale = np.where(std > 0, std, 1.0)
    while edges.size:
        small = counts < min_pixels
        src = np.concatenate([edges[:, 0], edges[:, 1]])
        dst = np.concatenate([edges[:, 1], edges[:, 0]])
        keep = small[src]
        src, dst = src[keep], dst[keep]
        if not src.size:
            break
        if has_bands:
            means = sums / counts[:, None] / scale
            distance = np.linalg.norm(means[src] - means[dst], axis=1)
        else:
            distance = -counts[dst].astype(np.float64)
        order = np.lexsort((dst, distance, src))
        src, dst = src[order], dst[order]
        best = np.flatnonzero(np.r_[True, src[1:] != src[:-1]])
        new, n_new = _components(np.stack([src[best], dst[best]], axis=1), counts.size)
        # the group's class is that of its largest member (ties: lowest id)
        order = np.lexsort((np.arange(counts.size), -counts, new))
        leader = order[np.flatnonzero(np.r_[True, new[order][1:] != new[order][:-1]])]
        merged_classes = np.zeros(n_new, np.int64)
        merged_classes[new[leader]] = classes[leader]
        counts, sums, edges, group = _regroup(new, n_new, counts, sums, edges, group)
        classes = merged_classes
        same = classes[edges[:, 0]] == classes[edges[:, 1]]
        if same.any():
            new, n_new = _components(edges[same], counts.size)
            joined_classes = np.zeros(n_new, np.int64)
            joined_classes[new] = classes
            counts, sums, edges, group = _regroup(new, n_new, counts, sums, edges, group)
            classes = joined_classes
    n_groups = counts.size
    if n_groups == n:
        return first.spill, first.to_seg, first.row_end, None, None
    # a group ends in the last row of blocks of any of its members
    seg_row = np.searchsorted(first.row_end, np.arange(n), side="right")
    group_row = np.zeros(n_groups, np.int64)
    np.maximum.at(group_row, group, seg_row)
    order = np.lexsort((np.arange(n_groups), group_row))
    rank = np.empty(n_groups, np.int64)
    rank[order] = np.arange(n_groups)
    merged = _sum_rows(table, rank[group], n_groups)
    merged["cls"][rank] = classes  # the class of each group's largest member
    changed = bool(np.any(classes[group] != table["cls"]))
    renumber = None
    if changed and renumber_classes:
        logger.info("small-region merging changed the class of some pixels")
        renumber = _by_area(merged["cls"], merged["count"])
        merged["cls"] = renumber[merged["cls"]]
    spill = Spill(sums.shape[1])
    spill.append(merged)
    to_seg = np.where(first.to_seg >= 0, rank[group][np.maximum(first.to_seg, 0)], -1)
    row_end = np.cumsum(np.bincount(group_row, minlength=first.row_end.size))
    return spill, to_seg, row_end, merged["cls"] if changed else None, renumber


def _by_area(
    classes: npt.NDArray[np.integer], counts: npt.NDArray[np.integer]
) -> npt.NDArray[np.int64]:
    """Table ``old class id -> new id`` numbering the classes of segments ``1..K`` by
    decreasing pixel count (ties: the lower id first), as the label raster numbers them,
    after merging changed the counts; absent ids map to 0.

    >>> _by_area(np.array([3, 5, 3, 9]), np.array([1, 10, 1, 2])).tolist()
    [0, 0, 0, 2, 0, 1, 0, 0, 0, 3]
    """
    area = np.bincount(classes, counts)
    order = area_order(area)
    renumber = np.zeros(area.size, np.int64)
    renumber[order] = np.arange(1, order.size + 1)
    return renumber


def _components(pairs: npt.NDArray[np.int64], n: int) -> tuple[npt.NDArray[np.int64], int]:
    """Connected components of ``n`` nodes joined by ``pairs (k, 2)``."""
    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    count, component = connected_components(graph, directed=False)
    return component.astype(np.int64), int(count)


def _regroup(
    new: npt.NDArray[np.int64],
    n_new: int,
    counts: npt.NDArray[np.int64],
    sums: npt.NDArray[np.float64],
    edges: npt.NDArray[np.int64],
    group: npt.NDArray[np.int64],
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.int64]
]:
    """Counts, sums, edges and region groups after mapping segments through ``new``."""
    new_sums = np.zeros((n_new, sums.shape[1]))
    np.add.at(new_sums, new, sums)
    edges = new[edges]
    edges = edges[edges[:, 0] != edges[:, 1]]
    edges = _pairs(edges[:, 0], edges[:, 1])
    return np.bincount(new, counts, n_new).astype(np.int64), new_sums, edges, new[group]
