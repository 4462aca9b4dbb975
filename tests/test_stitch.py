from __future__ import annotations

import numpy as np
import pytest

from geoseg.evaluate import adjusted_rand_index
from geoseg.segment.params import PRESETS
from geoseg.stitch import TileAligner, superpixel_vote
from geoseg.tiling import tile_grid


def scene() -> tuple[np.ndarray, np.ndarray]:
    """60x90: two halves, a mid-grey square in two far-apart tiles, one bright square."""
    truth = np.ones((60, 90), np.int64)
    truth[:, 45:] = 2
    truth[5:15, 5:15] = 3  # inside tile (0, 0)
    truth[45:55, 70:80] = 3  # inside tile (1, 2), away from every overlap
    truth[45:55, 5:15] = 4  # inside tile (1, 0): a colour seen nowhere else
    values = np.array([0.0, 0.2, 0.8, 0.5, 0.97])
    rng = np.random.default_rng(0)
    image = (values[truth] + rng.normal(0, 0.01, truth.shape))[None].astype(np.float32)
    return truth, image


def stitch(truth: np.ndarray, image: np.ndarray, aligner: TileAligner) -> np.ndarray:
    """Each tile renames the truth at random (its own ids), the aligner puts it back."""
    rng = np.random.default_rng(1)
    out = np.zeros(truth.shape, np.int32)
    for tile in tile_grid(60, 90, tile_size=40, overlap=10):
        read = tile.read.toslices()
        own = rng.permutation(50)[truth[read]]  # arbitrary tile-local ids
        own[image[0][read] < 0] = -1
        scene = aligner.align(tile, own, image[(slice(None), *read)])
        rows, cols = tile.core_in_read
        out[tile.core.toslices()] = scene[rows, cols]
    return out


def test_tiles_with_their_own_ids_become_one_consistent_map() -> None:
    truth, image = scene()
    aligner = TileAligner(min_vote_share=0.5, max_feature_distance=0.1)
    out = stitch(truth, image, aligner)
    assert adjusted_rand_index(out, truth) == pytest.approx(1.0)
    assert aligner.n_classes == 4
    # the two mid-grey squares never share an overlap: the codebook joins them
    assert out[10, 10] == out[50, 75]
    assert out[50, 10] not in {out[10, 10], out[0, 0], out[0, 89]}


def test_a_tight_codebook_splits_interior_objects() -> None:
    truth, image = scene()
    aligner = TileAligner(max_feature_distance=1e-6)
    out = stitch(truth, image, aligner)
    assert out[10, 10] != out[50, 75]  # same colour, but beyond the distance allowed
    assert out[0, 0] == out[59, 0]  # the halves still join through the overlaps


def test_nodata_stays_zero_and_bad_input_is_refused() -> None:
    truth, image = scene()
    image[:, :, :20] = -1.0
    out = stitch(truth, image, TileAligner())
    assert (out[:, :20] == 0).all()
    assert (out[:, 20:] > 0).all()
    tile = next(iter(tile_grid(60, 90, tile_size=40, overlap=10)))
    with pytest.raises(ValueError, match="must match the tile's read window"):
        TileAligner().align(tile, np.zeros((5, 5), np.int32), image[:, :5, :5])
    with pytest.raises(ValueError, match="min_vote_share=0"):
        TileAligner(min_vote_share=0)


def test_a_merge_in_one_tile_does_not_spread_to_its_neighbour() -> None:
    left, right = tile_grid(20, 60, tile_size=40, overlap=20)
    image = np.zeros((1, 20, 60), np.float32)
    image[:, 10:] = 0.9  # bottom half bright: two colours
    aligner = TileAligner(max_vote_distance=0.25)
    merged = aligner.align(left, np.zeros((20, 40), np.int32), image[:, :, :40])
    assert np.unique(merged).tolist() == [1]  # the left tile saw one class
    split = np.zeros((20, 40), np.int32)
    split[10:] = 1
    out = aligner.align(right, split, image[:, :, 20:])
    # Both halves vote for class 1, but their colours (0.0 and 0.9) lie 0.45 from its
    # mean (0.45), beyond max_vote_distance: each starts a class of its own.
    assert out[0, 0] != out[19, 0]
    assert 1 not in np.unique(out)


def vote(classes: np.ndarray, image: np.ndarray, *, block: int, margin: int) -> np.ndarray:
    """:func:`superpixel_vote` over in-memory arrays, assembled."""
    out = np.zeros(classes.shape, np.int64)
    valid = np.ones(classes.shape, bool)
    for window, labels in superpixel_vote(
        lambda w: classes[w.toslices()],
        lambda w: (image[(slice(None), *w.toslices())], valid[w.toslices()]),
        classes.shape,
        PRESETS["default"].replace(fz_min_size=4),
        block=block,
        margin=margin,
    ):
        out[window.toslices()] = labels
    return out


def test_superpixel_vote_reads_past_the_block_so_no_seam_appears() -> None:
    image = np.full((1, 10, 40), 0.1, np.float32)
    image[:, :, 10:36] = 0.6  # one flat superpixel across the block edge at column 20
    image[:, :, 36:] = 0.9
    classes = np.ones((10, 40), np.int64)
    classes[:, 10:20] = 2  # the left block alone sees the stripe as 2, the right as 1;
    # over all its pixels (10 columns of 2, 16 of 1) the majority is 1
    seam = vote(classes, image, block=20, margin=0)
    assert (seam[:, 12:20] == 2).all()  # a seam at 20
    assert (seam[:, 20:34] == 1).all()
    joined = vote(classes, image, block=20, margin=16)
    assert (joined[:, 12:34] == 1).all()  # (the smoothed edge columns vote on their own)
    np.testing.assert_array_equal(joined, vote(classes, image, block=64, margin=0))


def test_superpixel_vote_removes_speckle_block_by_block() -> None:
    truth, image = scene()
    rng = np.random.default_rng(2)
    speckle = rng.random(truth.shape) < 0.15
    noisy = np.where(speckle, rng.integers(1, 5, truth.shape), truth)
    whole = vote(noisy, image, block=128, margin=0)
    np.testing.assert_array_equal(whole, truth)
    for block in (16, 25):
        np.testing.assert_array_equal(vote(noisy, image, block=block, margin=24), whole)
