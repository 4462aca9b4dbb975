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

The result equals whole-raster polygonization, whatever the block size. Steps 1 and 2
(the segments and their merging) are :mod:`geoseg.regions`, where the row-by-row joins
and the merge rounds are written by hand; step 3's tracing and joining of pieces is
:mod:`geoseg.polygons`.

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
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from geoseg import tiling
from geoseg.errors import InputError
from geoseg.measure import Measure, affine_points, polygon_measures
from geoseg.polygons import drop_straight_vertices, join_pieces, polygonize
from geoseg.regions import (
    ReadBands,
    ReadLabels,
    Spill,
    find_segments,
    label_blocks,
    merge_small,
)
from geoseg.types import Progress

if TYPE_CHECKING:  # imported where used: pandas is ~90 MB of RSS that training need not hold
    import geopandas as gpd
    import pandas as pd

__all__ = ["vectorize", "vectorize_array"]

logger = logging.getLogger(__name__)

BATCH = 20_000
"""Most segments per yielded GeoDataFrame."""
BATCH_VERTICES = 1_000_000
"""About the most vertices per yielded GeoDataFrame (a bigger segment comes alone)."""

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
    renumber_classes: bool = True,
    progress: Progress | None = None,
    profile: dict[str, float] | None = None,
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
    renumber_classes
        ``False``: merged regions take their neighbour's class id as it is in the
        raster, no renumbering (a raster that is not rewritten still matches).
    progress
        ``progress(done, total)`` over both passes' blocks.
    profile
        Seconds spent are added to it by step: ``segments`` (pass 1), ``merge``
        (small-region merging), ``label`` (pass 2's reads and labelling), ``rewrite``
        (``write_classes``), ``trace`` (polygonizing), ``join`` (the pieces of segments
        that cross blocks), ``attributes`` (areas, perimeters, statistics, the frames);
        the time the caller spends between batches is not counted.

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
    spent = profile if profile is not None else {}

    def lap(step: str, since: float) -> float:
        now = time.perf_counter()
        spent[step] = spent.get(step, 0.0) + now - since
        return now

    mark = time.perf_counter()
    first = find_segments(
        read_labels, read_bands, blocks, cols, tick, n_bands=n_bands, want_edges=min_pixels > 0
    )
    mark = lap("segments", mark)
    spills = [first.spill]
    try:
        spill, to_seg, row_end, classes, renumber = merge_small(
            first, min_pixels, has_bands=read_bands is not None, renumber_classes=renumber_classes
        )
        spills.append(spill)
        if renumber is not None and on_renumber is not None:
            on_renumber(renumber)
        mark = lap("merge", mark)
        area, perimeter = polygon_measures(crs)
        pieces: dict[int, list[shapely.Geometry]] = {}
        vertices = np.zeros(spill.size, np.int64)  # of each segment's pieces so far
        block_index = 0
        start = 0
        for block_row, windows in enumerate(blocks):
            for window in windows:
                local, _ = label_blocks(read_labels(window))
                ids = np.where(local > 0, to_seg[local + first.offsets[block_index]] + 1, 0)
                block_index += 1
                mark = lap("label", mark)
                if classes is not None and write_classes is not None:
                    write_classes(window, np.where(ids > 0, classes[ids - 1], 0))
                    mark = lap("rewrite", mark)
                offset = Affine.translation(window.col_off, window.row_off)
                polygons, values = polygonize(ids.astype(np.int32), offset)
                np.add.at(vertices, values - 1, shapely.get_num_coordinates(polygons))
                for polygon, value in zip(polygons, values.tolist(), strict=True):
                    pieces.setdefault(int(value) - 1, []).append(polygon)
                tick()
                mark = lap("trace", mark)
            stop = int(row_end[block_row])  # segments start..stop-1 end in this row
            for low, high in _batches(vertices[start:stop], start):
                parts = [pieces.pop(s) for s in range(low, high)]
                geoms = np.array([join_pieces(part) for part in parts], dtype=object)
                joined = np.array([len(part) > 1 for part in parts], bool)
                geoms[joined] = drop_straight_vertices(geoms[joined])
                mark = lap("join", mark)
                rows_ = _attributes(spill.read(low, high), band_names, first.shift)
                frame = _frame(geoms, rows_, transform, crs, simplify, area, perimeter)
                lap("attributes", mark)
                yield frame
                mark = time.perf_counter()  # the caller's time between batches is its own
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
        empty = _attributes(Spill(len(names)).read(0, 0), names, np.zeros(len(names)))
        return _frame([], empty, transform, crs, 0.0, *polygon_measures(crs))
    import geopandas as gpd
    import pandas as pd

    frame = pd.concat(batches, ignore_index=True).sort_values("segment_id", ignore_index=True)
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=batches[0].crs)


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


def _attributes(
    rows: npt.NDArray[np.void], names: Sequence[str], shift: npt.NDArray[np.float64]
) -> pd.DataFrame:
    """Attribute rows of a batch of segments from their spilled sums."""
    import pandas as pd

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


def _frame(
    pixel_geoms: Sequence[shapely.Geometry] | npt.NDArray[np.object_],
    stats: pd.DataFrame,
    transform: Affine,
    crs: CRS | None,
    simplify: float,
    area: Measure,
    perimeter: Measure,
) -> gpd.GeoDataFrame:
    import geopandas as gpd

    geoms = np.asarray(pixel_geoms, dtype=object)
    if simplify > 0:  # a vertex at every pixel corner: neighbours then share their nodes
        geoms = shapely.segmentize(geoms, 1.0)
    geoms = shapely.transform(geoms, affine_points(transform))
    if simplify > 0 and len(geoms):
        tolerance = simplify * math.sqrt(abs(transform.determinant))
        geoms = shapely.coverage_simplify(geoms, tolerance, simplify_boundary=False)
    frame = stats
    frame.insert(3, "area", area(geoms))
    frame.insert(4, "perimeter", perimeter(geoms))
    return gpd.GeoDataFrame(frame, geometry=list(geoms), crs=crs).sort_values(
        "segment_id", ignore_index=True
    )
