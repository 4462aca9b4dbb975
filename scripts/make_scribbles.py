"""Make user-like scribbles (strokes) from a label raster, for guided-segmentation benchmarks.

Scribbles as in Kim, Kanezaki & Tanaka (IEEE TIP 2020): a few short strokes per class, each
inside one region of that class. Input is a single-band integer label GeoTIFF: 0 (and the
raster's nodata value) = unlabelled, any other value = a class. Output is a GeoPackage,
layer ``scribbles``, of LineString features in the raster's CRS (none if the raster has
none), with the class value (column ``--field``, default ``class``) and ``n_pixels``.

Rule, per class present (ascending class value):

1. Split the class into 4-connected regions (``scipy.ndimage.label``) and visit them from
   the largest down (ties: lowest region id) until ``--lines`` strokes are made.
2. Erode the region by one pixel (cross), so strokes keep off its edge, and skeletonize it
   (``skimage.morphology.skeletonize``); if that leaves fewer than 2 pixels, skeletonize the
   region itself. On the largest 8-connected piece of the skeleton take a long path by a
   double breadth-first sweep: from a random skeleton pixel to the farthest pixel A, then
   from A to the farthest pixel B; the stroke follows the A-B path.
3. Diagonal steps get a pixel of the region put between them, so the stroke is a 4-connected
   chain of pixels; the polyline runs through their centres (x, y = transform * (col + 0.5,
   row + 0.5)), keeping only the corner vertices. Burnt with ``all_touched=True`` it covers
   exactly its own pixels, all of the class. If no skeleton path of 2 pixels exists, the
   stroke is the longest straight row or column run of the region.
4. A stroke longer than its budget is cut to a window of that many pixels at a random offset.

Budget: the strokes cover at most ``--share`` (default 0.005 = 0.5 %) of the labelled
pixels, floor(share * labelled). Each class gets floor(budget / n_classes) pixels, spread
over min(``--lines``, class budget // 2, its regions of 2+ pixels) strokes: each stroke
takes at most the class pixels left divided by the strokes left, so a short stroke leaves
its rest to the next.
A class that cannot get a stroke of at least 2 pixels (regions of 1 pixel only, or a class
budget under 2: raise ``--share``) is skipped with a warning on stderr. ``n_pixels`` is
counted by rasterizing each stroke (rasterio, ``all_touched=True``).

Seeding: all randomness (the sweep's start pixel, the window offset) comes from
``numpy.random.default_rng(--seed)``, used in a fixed order, so the same raster, options
and seed give byte-identical geometries.

The GeoPackage is written to a temporary name in the output folder and renamed into place
at the end. A raster that cannot be read, has more than one band, is not integer or has no
labelled pixel: one line on stderr and exit status 2, nothing written. At the end one JSON
line goes to stdout: labels, classes (present), strokes, pixels, labelled_pixels and share
(pixels / labelled_pixels).

    python scripts/make_scribbles.py LABELS.tif OUT.gpkg [--share 0.005] [--lines 3] \
        [--seed 0] [--field class]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.features import rasterize
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order
from shapely.geometry import LineString
from skimage.morphology import skeletonize

CROSS = ndimage.generate_binary_structure(2, 1)
SQUARE = ndimage.generate_binary_structure(2, 2)
PROG = "make_scribbles"


class InputError(Exception):
    """Bad input: reported as one line on stderr, exit status 2."""


@dataclass
class Stroke:
    cls: int
    rows: np.ndarray
    cols: np.ndarray
    line: LineString
    n_pixels: int


def warn(msg: str) -> None:
    print(f"{PROG}: warning: {msg}", file=sys.stderr)


def read_labels(path: Path) -> tuple[np.ndarray, Affine, CRS | None]:
    """Band 1 as int64 with nodata set to 0, its transform and CRS (None if none)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # no CRS is allowed
            src = rasterio.open(path)
        with src:
            if src.count != 1:
                raise InputError(
                    f"{path}: has {src.count} bands, a label raster needs exactly 1; "
                    "fix: pass the labels band alone (e.g. gdal_translate -b 1)"
                )
            if not np.issubdtype(np.dtype(src.dtypes[0]), np.integer):
                raise InputError(
                    f"{path}: band type {src.dtypes[0]} is not integer; "
                    "fix: convert the labels to an integer type (e.g. gdal_translate -ot Byte)"
                )
            band = src.read(1, masked=True)
            transform, crs = src.transform, src.crs
    except RasterioError as exc:
        raise InputError(
            f"{path}: not a readable raster ({exc}); fix: pass a single-band label GeoTIFF"
        ) from exc
    labels = np.ma.filled(band.astype(np.int64), 0)
    if not np.any(labels):
        raise InputError(
            f"{path}: no labelled pixel (all 0 or nodata); "
            "fix: pass a raster whose classes are non-zero values"
        )
    return labels, transform, crs


def longest_skeleton_path(skel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) row/col path between the ends of a double BFS sweep on the largest piece."""
    pieces, n_pieces = ndimage.label(skel, structure=SQUARE)
    if n_pieces == 0:
        return np.empty((0, 2), dtype=np.int64)
    biggest = int(np.argmax(np.bincount(pieces.ravel())[1:])) + 1
    coords = np.argwhere(pieces == biggest)
    n = len(coords)
    if n == 1:
        return coords
    index = np.full(skel.shape, -1, dtype=np.int64)
    index[coords[:, 0], coords[:, 1]] = np.arange(n)
    src, dst = [], []
    for dr, dc in ((0, 1), (1, -1), (1, 0), (1, 1)):  # skel has a zero border: no wrap
        nb = index[coords[:, 0] + dr, coords[:, 1] + dc]
        src.append(np.flatnonzero(nb >= 0))
        dst.append(nb[nb >= 0])
    a, b = np.concatenate(src), np.concatenate(dst)
    graph = csr_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    start = int(rng.integers(n))
    end_a = int(breadth_first_order(graph, start, directed=False, return_predecessors=False)[-1])
    order, pred = breadth_first_order(graph, end_a, directed=False, return_predecessors=True)
    node, path = int(order[-1]), []
    while node >= 0:
        path.append(node)
        node = int(pred[node])
    return coords[path]


def to_4_connected(path: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Put a pixel of ``inside`` between diagonal steps; keep the longest unbroken piece."""
    if len(path) < 2:
        return path
    pieces: list[list[tuple[int, int]]] = [[(int(path[0, 0]), int(path[0, 1]))]]
    for (r0, c0), (r1, c1) in zip(path[:-1].tolist(), path[1:].tolist(), strict=True):
        if r0 != r1 and c0 != c1:
            fills = [(r, c) for r, c in ((r1, c0), (r0, c1)) if inside[r, c]]
            if fills:
                pieces[-1].append(fills[0])
            else:
                pieces.append([])
        pieces[-1].append((r1, c1))
    return np.array(max(pieces, key=len), dtype=np.int64)


def longest_run(region: np.ndarray) -> np.ndarray:
    """Longest straight row or column run of ``region`` as an (n, 2) path."""
    best = np.empty((0, 2), dtype=np.int64)
    for axis in (1, 0):
        grid = region if axis == 1 else region.T
        for i, line in enumerate(grid):
            edges = np.flatnonzero(np.diff(np.concatenate(([0], line.astype(np.int8), [0]))))
            if len(edges) == 0:
                continue
            lengths = edges[1::2] - edges[::2]
            k = int(np.argmax(lengths))
            if lengths[k] > len(best):
                js = np.arange(edges[2 * k], edges[2 * k + 1])
                ii = np.full_like(js, i)
                best = np.stack((ii, js) if axis == 1 else (js, ii), axis=1)
    return best


def region_path(region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """4-connected path inside ``region`` (bool array with a zero border)."""
    core = ndimage.binary_erosion(region, structure=CROSS)
    bases = [core, region] if core.sum() >= 2 else [region]
    for base in bases:
        path = to_4_connected(longest_skeleton_path(skeletonize(base), rng), region)
        if len(path) >= 2:
            return path
    return longest_run(region)


def simplify(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Indices of the vertices that start, end or turn the chain."""
    steps = np.stack((np.diff(rows), np.diff(cols)), axis=1)
    turns = np.flatnonzero(np.any(steps[1:] != steps[:-1], axis=1)) + 1
    return np.concatenate(([0], turns, [len(rows) - 1]))


def make_stroke(
    cls: int, rows: np.ndarray, cols: np.ndarray, labels: np.ndarray, transform: Affine
) -> Stroke:
    """LineString through pixel centres; n_pixels counted by rasterizing it back."""
    keep = simplify(rows, cols)
    xs, ys = transform * (cols[keep] + 0.5, rows[keep] + 0.5)
    line = LineString(np.stack((xs, ys), axis=1))
    r0, c0 = max(int(rows.min()) - 1, 0), max(int(cols.min()) - 1, 0)
    r1 = min(int(rows.max()) + 2, labels.shape[0])
    c1 = min(int(cols.max()) + 2, labels.shape[1])
    burnt = rasterize(
        [(line, 1)],
        out_shape=(r1 - r0, c1 - c0),
        transform=transform * Affine.translation(c0, r0),
        all_touched=True,
        dtype="uint8",
    ).astype(bool)
    n_pixels = int(burnt.sum())
    if n_pixels != len(rows) or np.any(labels[r0:r1, c0:c1][burnt] != cls):
        warn(f"class {cls}: stroke burns {n_pixels} pixels, expected {len(rows)} of the class")
    return Stroke(cls, rows, cols, line, n_pixels)


def class_strokes(
    labels: np.ndarray,
    cls: int,
    budget: int,
    lines: int,
    transform: Affine,
    rng: np.random.Generator,
) -> list[Stroke]:
    """Up to ``lines`` strokes in the largest regions of ``cls``, ``budget`` pixels in all."""
    if budget < 2:
        warn(f"class {cls}: pixel budget {budget} < 2, skipped; raise --share")
        return []
    regions, _ = ndimage.label(labels == cls, structure=CROSS)
    sizes = np.bincount(regions.ravel())
    sizes[0] = 0
    n_lines = min(lines, budget // 2, int(np.count_nonzero(sizes >= 2)))
    order = np.argsort(-sizes, kind="stable")
    boxes = ndimage.find_objects(regions)
    strokes: list[Stroke] = []
    left = budget
    for rid in order:
        if len(strokes) == n_lines or sizes[rid] < 2:
            break
        box = boxes[rid - 1]
        assert box is not None
        region = np.pad(regions[box] == rid, 1)
        path = region_path(region, rng)
        allot = left // (n_lines - len(strokes))
        if len(path) > allot:
            start = int(rng.integers(len(path) - allot + 1))
            path = path[start : start + allot]
        rows = path[:, 0] + box[0].start - 1
        cols = path[:, 1] + box[1].start - 1
        stroke = make_stroke(cls, rows, cols, labels, transform)
        strokes.append(stroke)
        left -= stroke.n_pixels
    if not strokes:
        warn(f"class {cls}: no region of 2 or more 4-connected pixels, skipped")
    return strokes


def write_gpkg(strokes: list[Stroke], out: Path, field: str, crs: CRS | None) -> None:
    """Write layer 'scribbles' to a temporary name beside ``out``, then rename into place."""
    frame = gpd.GeoDataFrame(
        {
            field: np.array([s.cls for s in strokes], dtype=np.int64),
            "n_pixels": np.array([s.n_pixels for s in strokes], dtype=np.int64),
        },
        geometry=[s.line for s in strokes],
        crs=crs,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.gpkg")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "'crs' was not provided", UserWarning)
            frame.to_file(tmp, layer="scribbles", driver="GPKG", engine="pyogrio")
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)


def make_scribbles(
    labels: np.ndarray, transform: Affine, share: float, lines: int, seed: int
) -> list[Stroke]:
    """All strokes, classes in ascending order, within floor(share * labelled) pixels."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels[labels != 0])
    budget = int(share * np.count_nonzero(labels))
    per_class = budget // len(classes)
    strokes: list[Stroke] = []
    for cls in classes.tolist():
        strokes += class_strokes(labels, cls, per_class, lines, transform, rng)
    return strokes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("labels", type=Path, help="single-band integer label GeoTIFF")
    parser.add_argument("out", type=Path, help="output GeoPackage (layer 'scribbles')")
    parser.add_argument("--share", type=float, default=0.005, help="max stroke pixel share")
    parser.add_argument("--lines", type=int, default=3, help="max strokes per class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--field", default="class", help="name of the class column")
    args = parser.parse_args(argv)
    if not 0 < args.share <= 1:
        parser.error("--share must be in (0, 1]")
    if args.lines < 1:
        parser.error("--lines must be >= 1")
    if args.field in ("n_pixels", "geometry", "fid", ""):
        parser.error(f"--field {args.field!r} clashes with another column; pick another name")
    try:
        labels, transform, crs = read_labels(args.labels)
    except InputError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    strokes = make_scribbles(labels, transform, args.share, args.lines, args.seed)
    if not strokes:
        print(
            f"{PROG}: error: {args.labels}: no class can hold a stroke of 2 pixels; "
            "fix: raise --share or pass a larger label raster",
            file=sys.stderr,
        )
        return 2
    write_gpkg(strokes, args.out, args.field, crs)
    labelled = int(np.count_nonzero(labels))
    pixels = sum(s.n_pixels for s in strokes)
    summary = {
        "labels": str(args.labels),
        "classes": len(np.unique(labels[labels != 0])),
        "strokes": len(strokes),
        "pixels": pixels,
        "labelled_pixels": labelled,
        "share": round(pixels / labelled, 6),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
