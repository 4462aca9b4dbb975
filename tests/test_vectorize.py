"""Polygons from hand-made label rasters with known answers, whole and block by block."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage as ndi
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.features import rasterize
from rasterio.windows import Window
from skimage.measure import label as label_regions

from geoseg.errors import InputError
from geoseg.measure import pixel_area_m2
from geoseg.vectorize import vectorize, vectorize_array

UTM = CRS.from_epsg(32618)
GRID = Affine(30, 0, 500_000, 0, -30, 4_000_000)  # 30 m pixels


def random_labels(
    rows: int, cols: int, *, nodata: bool, seed: int = 0, speckle: float = 0.05
) -> np.ndarray:
    """Blobs of 4 classes (smoothed noise); with ``nodata`` a 0 corner and speckle."""
    rng = np.random.default_rng(seed)
    noise = ndi.gaussian_filter(rng.normal(size=(rows, cols)), 1.5)
    classes = np.digitize(noise, np.quantile(noise, [0.25, 0.5, 0.75])) + 1
    if nodata:
        classes[rng.random((rows, cols)) < speckle] = 0
        classes[: rows // 5, : cols // 4] = 0
    return classes.astype(np.uint8)


def test_ring_with_hole_keeps_the_hole() -> None:
    labels = np.ones((9, 9), np.uint8)
    labels[3:6, 3:6] = 2
    for block_size in (1024, 4):  # the hole crosses block edges at 4
        gdf = vectorize_array(labels, GRID, UTM, block_size=block_size)
        ring = gdf[gdf.class_id == 1].geometry.iloc[0]
        assert len(gdf) == 2
        assert len(ring.interiors) == 1
        assert ring.area == pytest.approx(72 * 900)
        assert shapely.Polygon(ring.interiors[0]).area == pytest.approx(9 * 900)


def test_region_crossing_three_block_edges_is_one_polygon() -> None:
    labels = np.full((6, 12), 2, np.uint8)
    labels[2:4, :] = 1  # a band through blocks at columns 3, 6, 9
    whole = vectorize_array(labels, GRID, UTM)
    blocks = vectorize_array(labels, GRID, UTM, block_size=3)
    assert len(blocks) == len(whole) == 3
    band = blocks[blocks.class_id == 1]
    assert len(band) == 1
    assert band.geometry.iloc[0].equals(shapely.box(500_000, 4e6 - 120, 500_000 + 360, 4e6 - 60))
    assert len(band.geometry.iloc[0].exterior.coords) == 5  # block-edge vertices removed


def test_diagonal_touching_pixels_are_two_segments() -> None:
    labels = np.array([[1, 2], [2, 1]], np.uint8)
    gdf = vectorize_array(labels, GRID, UTM, block_size=1)
    assert len(gdf) == 4
    assert gdf.n_pixels.tolist() == [1, 1, 1, 1]
    assert gdf.geometry.is_valid.all()


def test_block_size_does_not_change_the_result() -> None:
    labels = random_labels(90, 130, nodata=True)
    bands = np.random.default_rng(1).normal(1000, 50, (2, 90, 130))
    whole = vectorize_array(labels, GRID, UTM, bands=bands)
    split = vectorize_array(labels, GRID, UTM, bands=bands, block_size=17)
    assert len(whole) == len(split) > 50
    np.testing.assert_array_equal(whole.segment_id, split.segment_id)
    np.testing.assert_array_equal(whole.class_id, split.class_id)
    np.testing.assert_allclose(whole["area"], split["area"])
    np.testing.assert_allclose(whole.b2_std, split.b2_std, rtol=1e-9, atol=1e-9)
    assert whole.geometry.geom_equals(split.geometry).all()


def comb(rows: int, cols: int) -> np.ndarray:
    """Class 1: teeth hanging from a bar at the bottom and a spiral-like hook; class 2
    fills the rest. Pieces of one segment meet only blocks later."""
    labels = np.full((rows, cols), 2, np.uint8)
    labels[:, 1::4] = 1  # teeth, one segment only through the bottom bar
    labels[-2:, :] = 1
    labels[2, 3:] = 1  # a hook joining a tooth from the right, far above the bar
    labels[2:6, -1] = 1
    return labels


@pytest.mark.parametrize("block_size", [1, 2, 3, 5, 16])
@pytest.mark.parametrize("min_pixels", [0, 6])
def test_streamed_blocks_equal_the_whole_raster(block_size: int, min_pixels: int) -> None:
    cases = [comb(23, 29), random_labels(41, 37, nodata=True, seed=8, speckle=0.1)]
    for labels in cases:
        bands = np.random.default_rng(9).normal(100, 10, (1, *labels.shape))
        whole = vectorize_array(labels, GRID, UTM, bands=bands, min_pixels=min_pixels)
        split = vectorize_array(
            labels, GRID, UTM, bands=bands, min_pixels=min_pixels, block_size=block_size
        )
        assert len(whole) == len(split)
        for column in ("segment_id", "class_id", "n_pixels"):
            np.testing.assert_array_equal(whole[column], split[column])
        np.testing.assert_allclose(whole.b1_mean, split.b1_mean)
        assert whole.geometry.geom_equals(split.geometry).all()
        np.testing.assert_array_equal(  # no vertex left in the middle of a block edge
            shapely.get_num_coordinates(whole.geometry.values),
            shapely.get_num_coordinates(split.geometry.values),
        )
    teeth = vectorize_array(cases[0], GRID, UTM, block_size=block_size)
    assert (teeth.class_id == 1).sum() == 1  # every tooth is one segment with the bar


def test_attributes_against_an_independent_computation() -> None:
    labels = random_labels(60, 70, nodata=True, seed=2)
    bands = np.random.default_rng(3).normal(500, 40, (3, 60, 70))
    gdf = vectorize_array(
        labels, GRID, UTM, bands=bands, band_names=["b4", "b3", "b2"], block_size=16
    )
    regions = label_regions(labels, background=0, connectivity=1)
    assert len(gdf) == regions.max()
    assert gdf.crs == UTM
    assert list(gdf.columns[:5]) == ["segment_id", "class_id", "n_pixels", "area", "perimeter"]
    for _, row in gdf.sample(10, random_state=0).iterrows():
        r, c = divmod(int(row.segment_id) - 1, labels.shape[1])
        mask = regions == regions[r, c]
        assert not mask.reshape(-1)[: int(row.segment_id) - 1].any()  # first pixel
        assert row.class_id == labels[r, c]
        assert row.n_pixels == mask.sum()
        assert row.area == pytest.approx(mask.sum() * 900)
        assert row.b3_mean == pytest.approx(bands[1][mask].mean())
        assert row.b2_std == pytest.approx(bands[2][mask].std(), abs=1e-6)
        # perimeter: pixel edges on the region's border, 30 m each
        padded = np.pad(mask, 1)
        edges = sum(np.count_nonzero(np.diff(padded, axis=a)) for a in (0, 1))
        assert row.perimeter == pytest.approx(edges * 30)


def test_polygons_cover_the_valid_area_and_nothing_else() -> None:
    labels = random_labels(80, 100, nodata=True, seed=4)
    gdf = vectorize_array(labels, GRID, UTM, block_size=32)
    valid_area = np.count_nonzero(labels) * 900
    union = shapely.union_all(gdf.geometry.values)
    assert gdf.geometry.is_valid.all()
    assert gdf["area"].sum() == pytest.approx(valid_area, rel=1e-6)
    assert union.area == pytest.approx(valid_area, rel=1e-6)  # no overlaps
    burnt = rasterize(
        zip(gdf.geometry, gdf.class_id, strict=True), out_shape=labels.shape, transform=GRID
    )
    np.testing.assert_array_equal(burnt, labels)  # nodata stays uncovered


def test_simplified_polygons_stay_a_coverage() -> None:
    labels = random_labels(80, 100, nodata=True, seed=5, speckle=0)
    exact = vectorize_array(labels, GRID, UTM, block_size=32)
    simple = vectorize_array(labels, GRID, UTM, block_size=32, simplify=1.5)
    assert len(simple) == len(exact)
    geoms = simple.geometry.values
    assert shapely.is_valid(geoms).all()
    assert shapely.coverage_is_valid(geoms)  # shared edges match: no gaps, no overlaps
    assert shapely.union_all(geoms).area == pytest.approx(shapely.area(geoms).sum(), rel=1e-9)
    assert sum(shapely.get_num_coordinates(geoms)) < 0.9 * sum(
        shapely.get_num_coordinates(exact.geometry.values)
    )
    assert simple["area"].sum() == pytest.approx(exact["area"].sum(), rel=0.02)


def test_small_regions_merge_into_their_most_similar_neighbour() -> None:
    labels = np.ones((6, 9), np.uint8)
    labels[:, 5:] = 2
    labels[2:4, 4:6] = 3  # 4 px between the two halves, straddling the edge
    bands = np.zeros((1, 6, 9))
    bands[0][:, 5:] = 100
    bands[0][labels == 3] = 90  # close to class 2
    gdf = vectorize_array(labels, GRID, UTM, bands=bands, min_pixels=5)
    assert sorted(gdf.class_id) == [1, 2]
    assert gdf.set_index("class_id").n_pixels.to_dict() == {1: 28, 2: 26}
    bands[0][labels == 3] = 10  # now close to class 1
    gdf = vectorize_array(labels, GRID, UTM, bands=bands, min_pixels=5)
    assert gdf.set_index("class_id").n_pixels.to_dict() == {1: 32, 2: 22}


def test_small_region_merging_leaves_no_small_region_and_rewrites_classes() -> None:
    labels = random_labels(70, 90, nodata=False, seed=6)
    bands = np.random.default_rng(7).normal(0, 1, (2, 70, 90))
    rewritten = np.zeros_like(labels)

    def write(window: Window, classes: np.ndarray) -> None:
        r, c = int(window.row_off), int(window.col_off)
        rewritten[r : r + classes.shape[0], c : c + classes.shape[1]] = classes

    batches = vectorize(
        lambda w: labels[w.toslices()],
        labels.shape,
        GRID,
        UTM,
        read_bands=lambda w: bands[(slice(None), *w.toslices())],
        band_names=["b1", "b2"],
        min_pixels=12,
        block_size=25,
        write_classes=write,
    )
    gdf = __import__("pandas").concat(list(batches))
    before = label_regions(labels, background=0, connectivity=1).max()
    assert (np.bincount(label_regions(labels, connectivity=1).ravel()) < 12).any()
    assert gdf.n_pixels.min() >= 12
    assert len(gdf) < before
    assert gdf.n_pixels.sum() == labels.size
    burnt = rasterize(
        zip(gdf.geometry, gdf.class_id, strict=True), out_shape=labels.shape, transform=GRID
    )
    np.testing.assert_array_equal(burnt, rewritten)  # labels.tif follows the polygons
    again = vectorize_array(rewritten, GRID, UTM)
    assert len(again) == len(gdf)


def test_geographic_areas_are_geodesic() -> None:
    # one 1 x 1 degree pixel at the equator; authalic-sphere area as the reference
    labels = np.ones((1, 1), np.uint8)
    gdf = vectorize_array(labels, Affine(1, 0, 10, 0, -1, 1), CRS.from_epsg(4326))
    radius = 6_371_007.2
    expected = radius**2 * math.radians(1) * math.sin(math.radians(1))
    assert gdf["area"].iloc[0] == pytest.approx(expected, rel=5e-3)  # ~12,364 km2
    assert gdf.perimeter.iloc[0] == pytest.approx(4 * 111_000, rel=0.01)
    assert pixel_area_m2(Affine(1, 0, 10, 0, -1, 1), CRS.from_epsg(4326), (1, 1)) == (
        pytest.approx(expected, rel=5e-3)
    )


def test_bad_input_is_refused() -> None:
    with pytest.raises(InputError, match="2-D integer"):
        vectorize_array(np.zeros((3, 3)), GRID, UTM)
    with pytest.raises(InputError, match="differ in size"):
        vectorize_array(np.zeros((3, 3), np.uint8), GRID, UTM, bands=np.zeros((1, 2, 2)))


def test_all_nodata_gives_an_empty_frame() -> None:
    gdf = vectorize_array(np.zeros((5, 5), np.uint8), GRID, UTM)
    assert len(gdf) == 0
    assert "segment_id" in gdf.columns


def test_merging_keeps_class_ids_ordered_by_area() -> None:
    # class 1 leads by area only through 30 one-pixel specks inside class 2's region
    labels = np.full((20, 20), 2, np.uint8)
    labels[:, 11:] = 1  # 180 px
    labels[0::2, 0:6:2] = 1  # 30 isolated specks: class 1 has 210 px, class 2 190
    rewritten = np.zeros_like(labels)

    def write(window: Window, classes: np.ndarray) -> None:
        r, c = int(window.row_off), int(window.col_off)
        rewritten[r : r + classes.shape[0], c : c + classes.shape[1]] = classes

    batches = vectorize(
        lambda w: labels[w.toslices()], labels.shape, GRID, UTM, min_pixels=2, write_classes=write
    )
    gdf = __import__("pandas").concat(list(batches))
    # after the specks join class 2 it holds 220 px against 180: it becomes class 1
    assert (rewritten[:, :11] == 1).all()
    assert (rewritten[:, 11:] == 2).all()
    assert sorted(zip(gdf.class_id, gdf.n_pixels, strict=True)) == [(1, 220), (2, 180)]


def test_first_pixels_in_one_pass_match_the_sort() -> None:
    """The first pixel of each region, from skimage's scan-order numbering, equals what
    a sort finds; a numbering out of scan order falls back to the sort."""
    from geoseg.regions import _first_pixels, label_blocks

    rng = np.random.default_rng(0)
    for _ in range(50):
        classes = rng.integers(0, 4, (int(rng.integers(1, 40)), int(rng.integers(1, 40))))
        ids, n = label_blocks(classes)
        flat = ids.ravel()
        present, at = np.unique(flat, return_index=True)
        expected = np.zeros(n + 1, np.int64)
        expected[present] = at
        np.testing.assert_array_equal(_first_pixels(flat, n), expected[1:])
    swapped = np.array([2, 2, 1, 0, 1])  # id 2 first: not scan order
    np.testing.assert_array_equal(_first_pixels(swapped, 2), [2, 0])


def test_profile_splits_the_time_by_step() -> None:
    """Every step is timed once it has run, and the steps add up to no more than the
    generator's own time (the consumer's time between batches is left out)."""
    import time

    labels = np.random.default_rng(0).integers(1, 4, (120, 150))
    bands = np.random.default_rng(1).random((2, 120, 150))
    profile: dict[str, float] = {}
    start = time.perf_counter()
    batches = vectorize(
        lambda w: labels[w.toslices()],
        labels.shape,
        Affine.identity(),
        None,
        read_bands=lambda w: bands[(slice(None), *w.toslices())],
        band_names=["a", "b"],
        min_pixels=3,
        block_size=50,
        profile=profile,
    )
    polygons = 0
    for batch in batches:
        polygons += len(batch)
        time.sleep(0.05)  # a slow writer
    wall = time.perf_counter() - start
    assert polygons > 0
    assert set(profile) == {"segments", "merge", "label", "trace", "join", "attributes"}
    assert all(seconds >= 0 for seconds in profile.values())
    assert sum(profile.values()) <= wall - 0.05
