"""Label raster -> segment polygons with attributes, block by block (never writes).

A *segment* is one 4-connected region of one class. Memory follows the block size and
the scene's width, not the raster or its number of segments:

1. Pass 1 labels each block's regions (``skimage.measure.label``, 4-connectivity) one
   row of blocks at a time and joins them with the segments still open from the row
   above (pairs of equal class facing each other across a block edge, resolved by
   ``scipy.sparse.csgraph.connected_components``). A segment that does not reach the
   row's last line is complete: its pixel count, band sums and squares and first pixel
   go to an unnamed temporary file, in order of completion.
2. With ``min_pixels``, segments smaller than that are merged into their most similar
   neighbour (nearest band means, in units of each band's scene-wide standard
   deviation), in rounds until none is left that has a neighbour, as Orfeo ToolBox's
   small-region merging does; a merged segment takes its group's class (that of its
   largest member). This step holds every segment's sums and neighbours in memory
   (about 150 bytes per segment).
3. Pass 2 labels the blocks again, polygonizes them (``rasterio.features.shapes`` in
   pixel coordinates, so pieces share exact integer edges) and, once a segment's last
   row of blocks is done, joins its pieces (``shapely.union_all``), maps it to
   the raster's coordinates, optionally simplifies the batch as a coverage
   (``shapely.coverage_simplify`` keeping edges shared with other batches) and yields
   it as a GeoDataFrame with its sums read back from the file.

The result equals whole-raster polygonization, whatever the block size. Hand-written
here: the row-by-row joins (a representative per segment, chains followed at the end)
and the merge rounds (numpy over edge lists).

``segment_id`` is ``1 +`` the raster index (``row * width + col``) of the segment's
first pixel in raster order: stable across block sizes and reruns, and it says where
the segment starts.

>>> import numpy as np
>>> from affine import Affine
>>> labels = np.array([[1, 1, 2], [1, 2, 2], [0, 0, 2]], np.uint8)
>>> gdf = vectorize_array(labels, Affine(10, 0, 0, 0, -10, 30), None, block_size=2)
>>> gdf[["segment_id", "class_id", "n_pixels", "area"]].values.tolist()
[[1.0, 1.0, 3.0, 300.0], [3.0, 2.0, 4.0, 400.0]]
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyproj
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.features import shapes
from rasterio.windows import Window
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from skimage.measure import label as label_regions

from geoseg import tiling
from geoseg.errors import InputError
from geoseg.types import Progress, area_order

__all__ = ["area_factor", "pixel_area_m2", "vectorize", "vectorize_array"]

logger = logging.getLogger(__name__)

BATCH = 20_000
"""Most segments per yielded GeoDataFrame."""
BATCH_VERTICES = 1_000_000
"""About the most vertices per yielded GeoDataFrame (a bigger segment comes alone)."""

ReadLabels = Callable[[Window], npt.NDArray[np.integer]]
"""``read_labels(window)``: class ids ``(rows, cols)`` of a window, 0 = nodata."""
ReadBands = Callable[[Window], npt.NDArray[np.number]]
"""``read_bands(window)``: band values ``(bands, rows, cols)`` in source units."""
WriteClasses = Callable[[Window, npt.NDArray[np.integer]], None]
"""``write_classes(window, classes)``: class ids after small-region merging."""


def vectorize(
    read_labels: ReadLabels,
    shape_: tuple[int, int],
    transform: Affine,
    crs: CRS | None,
    *,
    read_bands: ReadBands | None = None,
    band_names: Sequence[str] = (),
    min_pixels: int = 0,
    simplify: float = 0.0,
    block_size: int = 1024,
    write_classes: WriteClasses | None = None,
    on_renumber: Callable[[npt.NDArray[np.int64]], None] | None = None,
    progress: Progress | None = None,
) -> Iterator[gpd.GeoDataFrame]:
    """Polygons of a label raster, one per 4-connected region of one class, in batches.

    Parameters
    ----------
    read_labels
        Class ids of a window (``0`` = nodata, which gets no polygon).
    shape_
        ``(rows, cols)`` of the raster.
    transform, crs
        The raster's grid; polygons are in its coordinates.
    read_bands
        Band values of a window in source units, for the ``{name}_mean`` and
        ``{name}_std`` attributes and for the similarity of small-region merging
        (without bands a small region joins its largest neighbour).
    band_names
        One name per band read, e.g. ``["b4", "b3"]``.
    min_pixels
        Regions with fewer pixels are merged into a neighbour first (0: none). A region
        with no neighbour (an island in nodata) stays.
    simplify
        Douglas-Peucker tolerance in pixels (0: exact pixel edges). Neighbours keep
        shared edges: each batch (at most :data:`BATCH` segments and about
        :data:`BATCH_VERTICES` vertices) is simplified as a coverage and edges shared
        with other batches stay exact.
    block_size
        Side of the blocks read at a time.
    write_classes
        Called with every block's class ids when merging changed any (to rewrite the
        label raster so it matches the polygons).
    on_renumber
        Called once, when merging changed any class, with the table ``old class id ->
        new id``: classes that lost or gained pixels are numbered ``1..K`` by decreasing
        area again (``0``: a class that vanished).
    progress
        ``progress(done, total)`` over both passes' blocks.

    Yields
    ------
    GeoDataFrame
        Columns ``segment_id, class_id, n_pixels, area, perimeter`` then the band
        statistics; ``area`` in m² and ``perimeter`` in m (geodesic on the CRS's
        ellipsoid for a geographic CRS; map units without a CRS).
    """
    rows, cols = shape_
    if block_size < 1:
        raise InputError(f"block_size={block_size} must be at least 1")
    if min_pixels < 0 or simplify < 0:
        raise InputError(f"min_pixels={min_pixels} and simplify={simplify} must be >= 0")
    cores = [core for core, _ in tiling.blocks(rows, cols, block_size)]
    per_row = math.ceil(cols / block_size)
    blocks = [cores[i : i + per_row] for i in range(0, len(cores), per_row)]
    total = 2 * sum(len(row) for row in blocks)
    done = [0]

    def tick() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total)

    n_bands = len(band_names) if read_bands is not None else 0
    if read_bands is not None and not band_names:
        raise InputError("band_names must name every band that read_bands returns")
    first = _pass_one(
        read_labels, read_bands, blocks, cols, tick, n_bands=n_bands, want_edges=min_pixels > 0
    )
    spills = [first.spill]
    try:
        spill, to_seg, row_end, classes, renumber = _merge_small(
            first, min_pixels, has_bands=read_bands is not None
        )
        spills.append(spill)
        if renumber is not None and on_renumber is not None:
            on_renumber(renumber)
        area, perimeter = _measures(crs)
        pieces: dict[int, list[shapely.Geometry]] = {}
        vertices = np.zeros(spill.size, np.int64)  # of each segment's pieces so far
        block_index = 0
        start = 0
        for block_row, windows in enumerate(blocks):
            for window in windows:
                local, _ = _label(read_labels(window))
                ids = np.where(local > 0, to_seg[local + first.offsets[block_index]] + 1, 0)
                block_index += 1
                if classes is not None and write_classes is not None:
                    write_classes(window, np.where(ids > 0, classes[ids - 1], 0))
                offset = Affine.translation(window.col_off, window.row_off)
                polygons, values = _polygonize(ids.astype(np.int32), offset)
                np.add.at(vertices, values - 1, shapely.get_num_coordinates(polygons))
                for polygon, value in zip(polygons, values.tolist(), strict=True):
                    pieces.setdefault(int(value) - 1, []).append(polygon)
                tick()
            stop = int(row_end[block_row])  # segments start..stop-1 end in this row
            for low, high in _batches(vertices[start:stop], start):
                parts = [pieces.pop(s) for s in range(low, high)]
                geoms = np.array([_join(part) for part in parts], dtype=object)
                joined = np.array([len(part) > 1 for part in parts], bool)
                geoms[joined] = _drop_straight_vertices(geoms[joined])
                rows_ = _attributes(spill.read(low, high), band_names, first.shift)
                yield _frame(geoms, rows_, transform, crs, simplify, area, perimeter)
            start = stop
        if pieces:  # cannot happen: every segment ends in some row of blocks
            raise AssertionError(f"{len(pieces)} segments were never completed")
    finally:
        for spill in spills:
            spill.close()


def vectorize_array(
    labels: npt.NDArray[np.integer],
    transform: Affine,
    crs: CRS | None,
    *,
    bands: npt.NDArray[np.number] | None = None,
    band_names: Sequence[str] | None = None,
    min_pixels: int = 0,
    simplify: float = 0.0,
    block_size: int = 1024,
) -> gpd.GeoDataFrame:
    """:func:`vectorize` of in-memory arrays, as one GeoDataFrame sorted by segment_id.

    ``bands`` is ``(B, rows, cols)``; ``band_names`` default to ``b1 .. bB``.
    """
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"labels must be a 2-D integer array; got {labels.dtype} {labels.shape}")
    if bands is not None and bands.shape[1:] != labels.shape:
        raise InputError(f"bands {bands.shape} and labels {labels.shape} differ in size")
    names = list(band_names or ([] if bands is None else [f"b{i + 1}" for i in range(len(bands))]))

    def read_bands(window: Window) -> npt.NDArray[np.number]:
        assert bands is not None
        return bands[(slice(None), *window.toslices())]

    batches = list(
        vectorize(
            lambda window: labels[window.toslices()],
            labels.shape,
            transform,
            crs,
            read_bands=read_bands if bands is not None else None,
            band_names=names,
            min_pixels=min_pixels,
            simplify=simplify,
            block_size=block_size,
        )
    )
    if not batches:
        empty = _attributes(_Spill(len(names)).read(0, 0), names, np.zeros(len(names)))
        return _frame([], empty, transform, crs, 0.0, *_measures(crs))
    frame = pd.concat(batches, ignore_index=True).sort_values("segment_id", ignore_index=True)
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=batches[0].crs)


def pixel_area_m2(transform: Affine, crs: CRS | None, shape_: tuple[int, int]) -> float:
    """Area of one pixel in m² (at the raster's centre for a geographic CRS)."""
    rows, cols = shape_
    centre = shapely.box(cols // 2, rows // 2, cols // 2 + 1, rows // 2 + 1)
    pixel = shapely.transform(centre, _affine(transform))
    return float(_measures(crs)[0]([pixel])[0])


def area_factor(crs: CRS | None) -> float:
    """Metres per unit of a projected CRS's axes (1 without a CRS)."""
    if crs is None:
        return 1.0
    axis = pyproj.CRS.from_user_input(crs.to_wkt()).axis_info
    return float(axis[0].unit_conversion_factor) if axis else 1.0


def _batches(vertices: npt.NDArray[np.int64], offset: int) -> list[tuple[int, int]]:
    """Consecutive ranges ``[low, high)`` (shifted by ``offset``) of at most
    :data:`BATCH` segments and about :data:`BATCH_VERTICES` vertices, so a batch's
    geometries and their copies stay bounded however the segments are shaped.

    >>> _batches(np.array([400_000, 400_000, 400_000, 3_000_000, 5]), 10)
    [(10, 12), (12, 13), (13, 14), (14, 15)]
    """
    cumulative = np.concatenate([[0], np.cumsum(vertices)])
    bounds, low = [], 0
    while low < vertices.size:
        high = int(np.searchsorted(cumulative, cumulative[low] + BATCH_VERTICES, "right")) - 1
        high = min(max(high, low + 1), low + BATCH, vertices.size)
        bounds.append((low + offset, high + offset))
        low = high
    return bounds


def _polygonize(
    ids: npt.NDArray[np.int32], transform: Affine
) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.int64]]:
    """Polygons of the 4-connected regions of equal id (``0`` = none) and their ids.

    ``rasterio.features.shapes`` traces them (GDAL's polygonize); the GeoJSON-like rings
    become shapely polygons in one vectorized call (``shapely.from_ragged_array``) rather
    than one ``shape()`` call each, which was 60 % of the time.
    """
    coords: list[tuple[float, float]] = []
    ring_sizes: list[int] = []
    geom_sizes: list[int] = []
    values: list[float] = []
    for geometry, value in shapes(ids, mask=ids > 0, connectivity=4, transform=transform):
        rings = geometry["coordinates"]
        geom_sizes.append(len(rings))
        for ring in rings:
            ring_sizes.append(len(ring))
            coords.extend(ring)
        values.append(value)
    if not values:
        return np.empty(0, object), np.empty(0, np.int64)
    offsets = (
        np.concatenate([[0], np.cumsum(ring_sizes)]),
        np.concatenate([[0], np.cumsum(geom_sizes)]),
    )
    xy = np.asarray(coords, np.float64)
    polygons = shapely.from_ragged_array(shapely.GeometryType.POLYGON, xy, offsets)
    return polygons, np.asarray(values, np.int64)


def _label(classes: npt.NDArray[np.integer]) -> tuple[npt.NDArray[np.int64], int]:
    """Block-local ids (1..n, 0 = nodata) of the 4-connected regions of one class."""
    ids, n = label_regions(classes, background=0, connectivity=1, return_num=True)
    return ids.astype(np.int64), int(n)


class _Spill:
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
class _Pass1:
    """What pass 1 leaves for pass 2."""

    spill: _Spill  # segment sums, segments ordered by the block row that completes them
    to_seg: npt.NDArray[np.int64]  # global id (1-based) -> segment index (index 0: -1)
    row_end: npt.NDArray[np.int64]  # segments completed up to each block row, cumulative
    offsets: list[int]  # first global id - 1 of each block, in block order
    shift: npt.NDArray[np.float64]  # (B,) keeps the sums of squares well conditioned
    edges: npt.NDArray[np.int64]  # (E, 2) neighbouring segments (only when merging)


def _pass_one(
    read_labels: ReadLabels,
    read_bands: ReadBands | None,
    blocks: list[list[Window]],
    width: int,
    tick: Callable[[], None],
    *,
    n_bands: int,
    want_edges: bool,
) -> _Pass1:
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
    spill = _Spill(n_bands)
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
            local, n = _label(cls)
            offsets.append(next_id - 1)
            ids = np.where(local > 0, local + next_id - 1, 0)
            node = np.where(ids > 0, ids - row_first + carried, -1)  # this row's nodes
            flat = local.ravel()
            table = np.zeros(n + 1, spill.dtype)
            table["count"] = np.bincount(flat, minlength=n + 1)
            table["cls"][flat] = cls.ravel()
            present, at = np.unique(flat, return_index=True)
            table["first"][present] = (window.row_off + at // window.width) * width + (
                window.col_off + at % window.width
            )
            if read_bands is not None:
                values = np.asarray(read_bands(window), np.float64)
                if values.shape[0] != n_bands:
                    raise InputError(f"{n_bands} band names for {values.shape[0]} bands")
                if shift is None and (local > 0).any():
                    shift = values[:, local > 0].mean(axis=1)
                centred = values - (0.0 if shift is None else shift[:, None, None])
                for b, band in enumerate(centred):
                    table["sums"][:, b] = np.bincount(flat, band.ravel(), n + 1)
                    table["squares"][:, b] = np.bincount(flat, (band * band).ravel(), n + 1)
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
    return _Pass1(
        spill=spill,
        to_seg=to_seg,
        row_end=np.asarray(row_end, np.int64),
        offsets=offsets,
        shift=np.zeros(n_bands) if shift is None else shift,
        edges=edges,
    )


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


def _merge_small(
    first: _Pass1, min_pixels: int, *, has_bands: bool
) -> tuple[
    _Spill,
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64] | None,
    npt.NDArray[np.int64] | None,
]:
    """``(spill, to_seg, row_end, classes, renumber)`` after merging segments below
    ``min_pixels`` into their most similar neighbour; ``classes`` (class of each
    segment) and ``renumber`` (old class id -> new id: the classes again ``1..K`` by
    decreasing area) are ``None`` when no pixel changed class.

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
    if changed:
        logger.info("small-region merging changed the class of some pixels")
        renumber = _by_area(merged["cls"], merged["count"])
        merged["cls"] = renumber[merged["cls"]]
    spill = _Spill(sums.shape[1])
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


def _attributes(
    rows: npt.NDArray[np.void], names: Sequence[str], shift: npt.NDArray[np.float64]
) -> pd.DataFrame:
    """Attribute rows of a batch of segments from their spilled sums."""
    counts = np.maximum(rows["count"], 1)
    frame = pd.DataFrame(
        {
            "segment_id": rows["first"] + 1,
            "class_id": rows["cls"].astype(np.int32),
            "n_pixels": rows["count"],
        }
    )
    for b, name in enumerate(names):
        centred = rows["sums"][:, b] / counts
        frame[f"{name}_mean"] = centred + shift[b]
        spread = rows["squares"][:, b] / counts - centred**2
        frame[f"{name}_std"] = np.sqrt(np.maximum(spread, 0))
    return frame


def _join(pieces: list[shapely.Geometry]) -> shapely.Geometry:
    """One polygon from the pieces of a segment (they share exact integer edges).

    Only the pieces' outer rings are unioned (a full overlay, exact on integers); their
    holes lie strictly inside their block, away from every edge the union changes, and
    are put back as they are. A scene-wide segment with tens of thousands of holes thus
    costs a fifth of the time and memory of unioning the whole pieces.
    """
    if len(pieces) == 1:
        return pieces[0]
    joined = shapely.union_all(shapely.polygons(shapely.get_exterior_ring(pieces)))
    if joined.geom_type != "Polygon":
        raise AssertionError(f"pieces of one segment joined into a {joined.geom_type}")
    holes = [*joined.interiors, *(ring for piece in pieces for ring in piece.interiors)]
    return shapely.Polygon(joined.exterior, holes)


def _drop_straight_vertices(
    polygons: npt.NDArray[np.object_],
) -> npt.NDArray[np.object_]:
    """The polygons without vertices in the middle of a straight edge (those the union
    leaves on block edges), all at once over their coordinate arrays.

    ``shapely.simplify(g, 0)`` does the same one polygon at a time, in quadratic time
    and with a spatial index that took 500 MB for a segment of 840,000 vertices.

    >>> square = shapely.Polygon([(0, 0), (1, 0), (2, 0), (2, 2), (0, 2), (0, 1)])
    >>> _drop_straight_vertices(np.array([square]))[0].wkt
    'POLYGON ((0 0, 2 0, 2 2, 0 2, 0 0))'
    """
    if not len(polygons):
        return polygons
    _, xy, (ring_at, geom_at) = shapely.to_ragged_array(polygons)
    ring_of = np.repeat(np.arange(ring_at.size - 1), np.diff(ring_at))
    is_open = np.ones(len(xy), bool)
    is_open[ring_at[1:] - 1] = False  # the closing vertex repeats the first
    index = np.flatnonzero(is_open)
    ring = ring_of[index]
    start, size = ring_at[:-1][ring], np.diff(ring_at)[ring] - 1
    step = index - start
    before = xy[start + (step - 1) % size]
    after = xy[start + (step + 1) % size]
    here = xy[index]
    incoming, outgoing = here - before, after - here
    cross = incoming[:, 0] * outgoing[:, 1] - incoming[:, 1] * outgoing[:, 0]
    dot = (incoming * outgoing).sum(axis=1)
    kept = index[(cross != 0) | (dot < 0)]  # corners (and reversals) stay
    kept_ring = ring_of[kept]
    first = kept[np.r_[True, kept_ring[1:] != kept_ring[:-1]]]
    order = np.lexsort(
        (np.r_[np.zeros(kept.size), np.ones(first.size)], np.r_[kept_ring, ring_of[first]])
    )
    coords = xy[np.r_[kept, first][order]]
    sizes = np.bincount(kept_ring, minlength=ring_at.size - 1) + 1
    offsets = (np.r_[0, np.cumsum(sizes)], geom_at)
    return shapely.from_ragged_array(shapely.GeometryType.POLYGON, coords, offsets)


def _affine(transform: Affine) -> Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]:
    a, b, c, d, e, f = list(transform)[:6]

    def apply(xy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        x, y = xy[:, 0], xy[:, 1]
        return np.stack([a * x + b * y + c, d * x + e * y + f], axis=1)

    return apply


Measure = Callable[[Sequence[shapely.Geometry]], npt.NDArray[np.float64]]


def _measures(crs: CRS | None) -> tuple[Measure, Measure]:
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


def _frame(
    pixel_geoms: Sequence[shapely.Geometry] | npt.NDArray[np.object_],
    stats: pd.DataFrame,
    transform: Affine,
    crs: CRS | None,
    simplify: float,
    area: Measure,
    perimeter: Measure,
) -> gpd.GeoDataFrame:
    geoms = np.asarray(pixel_geoms, dtype=object)
    if simplify > 0:  # a vertex at every pixel corner: neighbours then share their nodes
        geoms = shapely.segmentize(geoms, 1.0)
    geoms = shapely.transform(geoms, _affine(transform))
    if simplify > 0 and len(geoms):
        tolerance = simplify * math.sqrt(abs(transform.determinant))
        geoms = shapely.coverage_simplify(geoms, tolerance, simplify_boundary=False)
    frame = stats
    frame.insert(3, "area", area(geoms))
    frame.insert(4, "perimeter", perimeter(geoms))
    return gpd.GeoDataFrame(frame, geometry=list(geoms), crs=crs).sort_values(
        "segment_id", ignore_index=True
    )
