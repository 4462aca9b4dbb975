from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geoseg.errors import ConfigError, InputError
from geoseg.tiling import axis_tiles, sample_crops, tile_grid


@st.composite
def grids(draw: st.DrawFn) -> tuple[int, int, int, int]:
    tile = draw(st.integers(1, 64))
    overlap = draw(st.integers(0, tile - 1))
    return draw(st.integers(1, 300)), draw(st.integers(1, 300)), tile, overlap


@settings(max_examples=200, deadline=None)
@given(grids())
def test_every_pixel_in_exactly_one_core(grid: tuple[int, int, int, int]) -> None:
    height, width, tile, overlap = grid
    count = np.zeros((height, width), int)
    for t in tile_grid(height, width, tile_size=tile, overlap=overlap):
        count[t.core.toslices()] += 1
    assert (count == 1).all()


@settings(max_examples=200, deadline=None)
@given(grids())
def test_reads_are_tile_sized_inside_the_scene_with_context(
    grid: tuple[int, int, int, int],
) -> None:
    height, width, tile, overlap = grid
    for t in tile_grid(height, width, tile_size=tile, overlap=overlap):
        r, c = t.read, t.core
        assert (r.height, r.width) == (min(tile, height), min(tile, width))
        assert r.row_off >= 0
        assert r.col_off >= 0
        assert r.row_off + r.height <= height
        assert r.col_off + r.width <= width
        # context around the core: at least overlap // 2, except on scene edges
        margin = overlap // 2
        if c.row_off > 0:
            assert c.row_off - r.row_off >= margin
        if c.col_off > 0:
            assert c.col_off - r.col_off >= margin
        if c.row_off + c.height < height:
            assert r.row_off + r.height - (c.row_off + c.height) >= margin
        if c.col_off + c.width < width:
            assert r.col_off + r.width - (c.col_off + c.width) >= margin


def test_core_in_read_slices_the_core() -> None:
    scene = np.arange(12 * 9).reshape(12, 9)
    for t in tile_grid(12, 9, tile_size=5, overlap=2):
        read = scene[t.read.toslices()]
        np.testing.assert_array_equal(read[t.core_in_read], scene[t.core.toslices()])


def test_scene_smaller_than_a_tile_is_one_tile() -> None:
    tiles = list(tile_grid(30, 20, tile_size=256, overlap=16))
    assert len(tiles) == 1
    assert (tiles[0].read.height, tiles[0].read.width) == (30, 20)


def test_known_grid() -> None:
    assert axis_tiles(10, tile_size=4, overlap=0) == [(0, 4, 0, 4), (4, 4, 4, 3), (6, 4, 7, 3)]
    assert len(list(tile_grid(1000, 600, tile_size=256, overlap=32))) == 5 * 3


@pytest.mark.parametrize(
    ("tile", "overlap", "match"),
    [
        (512, 600, "tiling.overlap=600 must be >= 0 and smaller than tiling.tile_size=512"),
        (0, 0, "tiling.tile_size=0 must be >= 1"),
        (64, -1, "tiling.overlap=-1"),
    ],
)
def test_bad_parameters(tile: int, overlap: int, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        list(tile_grid(100, 100, tile_size=tile, overlap=overlap))


def crop_valid_fraction(mask: np.ndarray, window) -> float:
    return float(mask[window.toslices()].mean())


def test_crops_one_per_cell_on_a_valid_scene() -> None:
    mask = np.ones((200, 200), bool)
    crops = sample_crops(mask, height=200, width=200, crop_size=30, n_crops=16, seed=1)
    assert len(crops) == 16
    centres = {(int((w.row_off + 15) // 50), int((w.col_off + 15) // 50)) for w in crops}
    assert len(centres) >= 14  # about one crop per 50x50 cell (clamping shifts a few)


def test_crops_stay_in_the_valid_area_and_scene() -> None:
    mask = np.zeros((120, 160), bool)
    mask[:, 80:] = True  # left half nodata
    crops = sample_crops(mask, height=120, width=160, crop_size=32, n_crops=9, seed=0)
    assert len(crops) == 9
    for w in crops:
        assert (w.width, w.height) == (32, 32)
        assert 0 <= w.col_off <= 160 - 32
        assert 0 <= w.row_off <= 120 - 32
        assert crop_valid_fraction(mask, w) >= 0.5


def test_crops_from_a_decimated_mask_map_to_full_resolution() -> None:
    small = np.zeros((30, 40), bool)
    small[15:, :] = True  # bottom half valid
    crops = sample_crops(small, height=300, width=400, crop_size=50, n_crops=6, seed=2)
    full = np.repeat(np.repeat(small, 10, 0), 10, 1)
    assert all(crop_valid_fraction(full, w) >= 0.5 for w in crops)
    assert all(w.row_off + 25 >= 125 for w in crops)


def test_crops_are_deterministic_and_clip_to_small_scenes() -> None:
    mask = np.ones((20, 30), bool)
    a = sample_crops(mask, height=20, width=30, crop_size=64, n_crops=3, seed=5)
    b = sample_crops(mask, height=20, width=30, crop_size=64, n_crops=3, seed=5)
    assert a == b
    assert (a[0].height, a[0].width) == (20, 30)


def test_no_valid_crop_is_an_error() -> None:
    with pytest.raises(InputError, match="no valid pixel"):
        sample_crops(np.zeros((5, 5), bool), height=5, width=5, crop_size=2, n_crops=1)
    sparse = np.zeros((100, 100), bool)
    sparse[::10, ::10] = True
    with pytest.raises(InputError, match="lower the crop size"):
        sample_crops(sparse, height=100, width=100, crop_size=40, n_crops=2)
