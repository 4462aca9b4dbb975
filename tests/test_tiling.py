from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geoseg.errors import ConfigError
from geoseg.tiling import axis_tiles, tile_grid


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
