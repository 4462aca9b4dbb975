from __future__ import annotations

import numpy as np
import pytest
import torch

from geoseg.errors import ConfigError, InputError
from geoseg.evaluate import adjusted_rand_index
from geoseg.sample import make_scene
from geoseg.segment import PRESETS, segment_image
from geoseg.segment.classify import classify
from geoseg.segment.merge import class_prototypes, merge_for, merge_table
from geoseg.segment.params import smooth_radius
from geoseg.segment.split import split_classes

FAST = PRESETS["default"].replace(max_iterations=12)


def test_ward_merges_the_cheapest_pairs_first() -> None:
    # two tight pairs and one far class: 5 -> 3 joins within the pairs
    counts = np.array([10, 10, 10, 10, 10])
    means = np.array([[0.0], [0.05], [0.5], [0.52], [1.0]])
    table = merge_table(counts, means, n_classes=3)
    assert table.tolist() == [0, 0, 2, 2, 4]
    assert merge_table(counts, means, n_classes=1).tolist() == [0] * 5


def test_merged_class_takes_the_id_of_its_largest_member() -> None:
    table = merge_table(np.array([1, 50, 0]), np.array([[0.0], [0.1], [9.0]]), n_classes=1)
    assert table.tolist() == [1, 1, 2]  # the absent class 2 maps to itself


def test_ward_weighs_by_pixel_count() -> None:
    # class 1 lies midway; the small class 2 is cheaper to move than the big class 0
    counts = np.array([1000, 10, 10])
    means = np.array([[0.0], [0.5], [1.0]])
    assert merge_table(counts, means, n_classes=2).tolist() == [0, 1, 1]


def test_more_classes_asked_than_present_changes_nothing() -> None:
    counts = np.array([5, 0, 7])
    table = merge_table(counts, np.array([[0.0], [0.0], [1.0]]), n_classes=10)
    assert table.tolist() == [0, 1, 2]


def test_automatic_merge_stops_at_the_share_of_variance() -> None:
    labels = np.repeat(np.array([0, 1, 2, 3]), 25).reshape(1, 10, 10)
    values = np.array([0.0, 0.02, 1.0, 1.02])[labels][:, None]  # (1, 1, 10, 10)
    counts, means, total = class_prototypes(labels, values, 4)
    assert counts.tolist() == [25, 25, 25, 25]
    np.testing.assert_allclose(total, 25.01)
    # joining 0+1 or 2+3 costs 0.0002 of the total, joining the halves almost all of it
    assert merge_table(counts, means, total_ss=total, max_share=0.01).tolist() == [0, 0, 2, 2]
    assert merge_table(counts, means, total_ss=total, max_share=0.9).tolist() == [0, 0, 2, 2]
    assert merge_table(counts, means, total_ss=total, max_share=1e-4).tolist() == [0, 1, 2, 3]


def test_merging_keeps_a_textured_class_apart_from_a_smooth_one_of_the_same_colour() -> None:
    """Smooth A and checkered B have the same mean; smooth C is a little brighter. The
    texture in the prototypes joins A with C, where the means alone would join A with B."""
    image = np.full((1, 1, 30, 90), 0.5, np.float32)
    image[0, 0, :, 30:60] = np.where(np.indices((30, 30)).sum(axis=0) % 2 == 0, 0.3, 0.7)
    image[0, 0, :, 60:] = 0.6
    logits = torch.full((1, 3, 30, 90), -5.0)
    for k in range(3):
        logits[0, k, :, 30 * k : 30 * (k + 1)] = 5.0  # a confident network: A, B, C
    valid = np.ones((1, 30, 90), bool)
    classes = merge_for(logits, image, valid, PRESETS["default"].replace(n_classes=2))
    assert classes is not None
    assert classes.table[:3].tolist() in ([0, 1, 0], [2, 1, 2])
    counts, means, _ = class_prototypes(logits.argmax(1).numpy(), image, 3)
    assert merge_table(counts, means, n_classes=2).tolist() in ([0, 0, 2], [1, 1, 2])


def test_invalid_class_counts_are_refused() -> None:
    with pytest.raises(InputError, match="n_classes=0 must be >= 1"):
        merge_table(np.ones(3), np.zeros((3, 1)), n_classes=0)
    for bad in (0, -2, 33):
        with pytest.raises(
            ConfigError, match=rf"segment.n_classes={bad} must lie in 1..n_channels"
        ):
            PRESETS["default"].replace(n_classes=bad)


def test_classify_maps_the_argmax_through_the_table() -> None:
    logits = torch.log(torch.tensor([[0.4, 0.9], [0.3, 0.05], [0.3, 0.05]]))[:, None, :]
    assert classify(logits).tolist() == [[0, 0]]
    assert classify(logits, table=np.array([1, 1, 2])).tolist() == [[1, 1]]


def test_a_class_the_views_never_showed_does_not_come_back() -> None:
    """Channel 2 wins no pixel of the views the merge is decided on; where it wins in a
    tile, its pixels take the best of the other channels, so no extra class appears."""
    image = np.zeros((1, 1, 4, 8), np.float32)
    image[..., 4:] = 1.0
    logits = torch.full((1, 3, 4, 8), -5.0)
    logits[0, 0, :, :4] = logits[0, 1, :, 4:] = 5.0
    classes = merge_for(logits, image, np.ones((1, 4, 8), bool), FAST.replace(n_classes=2))
    assert classes is not None
    assert classes.table[:2].tolist() == [0, 1]
    assert (classes.table[2:] == -1).all()
    assert classes.splits == ()
    tile = torch.tensor([[[3.0, 0.0, 1.0]], [[0.0, 1.0, 2.0]], [[9.0, 9.0, 9.0]]])
    assert classify(tile, table=classes.table).tolist() == [[0, 1, 1]]  # channel 2 never wins


def test_smoothing_removes_an_isolated_pixel_and_keeps_edges() -> None:
    logits = torch.zeros(2, 21, 21)
    logits[0, :, :11] = 5.0  # left part is class 0
    logits[1, :, 11:] = 5.0  # right part is class 1
    logits[1, 5, 5] = 10.0  # one stray pixel of class 1 inside class 0
    plain = classify(logits)
    smooth = classify(logits, sigma=1.0)
    assert plain[5, 5] == 1
    assert smooth[5, 5] == 0
    assert (smooth[:, 11:] == 1).all()
    assert (smooth[:, :10] == 0).all()
    assert smooth_radius(1.0) == 3


def test_edge_aware_smoothing_keeps_a_thin_feature_of_its_own_colour() -> None:
    """A 3 px stripe of its own colour survives the bilateral vote, which a plain Gaussian
    of the same sigma wipes out; speckle that looks like its surroundings still goes."""
    image = np.zeros((3, 41, 41), np.float32)
    image[:, :, 19:22] = 1.0  # a road three pixels wide
    truth = np.zeros((41, 41), np.int64)
    truth[:, 19:22] = 1
    logits = torch.zeros(2, 41, 41)
    logits[0][truth == 0] = 5.0
    logits[1][truth == 1] = 5.0
    logits[1, 5, 5] = logits[1, 30, 35] = 10.0  # stray pixels the image does not show
    plain = classify(logits, sigma=5.0)
    edge = classify(logits, sigma=5.0, range_sigma=0.17, image=image)
    assert (plain[:, 19:22] == 0).all()  # the plain filter erases the road
    assert torch.equal(edge, torch.from_numpy(truth))  # road kept, both strays gone
    with pytest.raises(InputError, match="needs the image"):
        classify(logits, sigma=5.0, range_sigma=0.17)


def test_segment_ends_with_exactly_k_classes_matching_the_truth() -> None:
    image, truth = make_scene(rows=96, cols=96, bands=4, n_classes=4, noise=0.08, seed=3)
    colour = FAST.replace(min_labels=1, texture_radius=0)  # with texture it finds just 4
    # as with n_classes: no decorrelation (with it this noisy scene ends with 4 classes)
    plain = segment_image(image, colour.replace(decorrelate=0.0, merge_edge_sigma=0.0), seed=0)
    assert plain.n_labels > 4  # the network alone splits a class
    merged = segment_image(image, colour.replace(n_classes=4), seed=0)
    assert merged.n_labels == 4
    assert adjusted_rand_index(merged.labels, truth) >= 0.9
    one = segment_image(image, FAST.replace(n_classes=1), seed=0)
    assert one.n_labels == 1


def joined_scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels of a four-class scene (image, truth) and a partition that joins true
    classes 3 and 4 into one, as a network that found too few classes would."""
    image, truth = make_scene(rows=120, cols=160, bands=4, n_classes=4, noise=0.02, seed=5)
    joined = np.where(truth == 4, 3, truth)
    return image, truth, joined


def test_a_split_finds_the_class_the_network_joined() -> None:
    image, truth, joined = joined_scene()
    values = np.moveaxis(image, 0, -1).reshape(-1, 4)
    (split,) = split_classes(joined.ravel(), values, 4, [9, 10])
    assert split.source == 3
    assert split.target == 9
    logits = torch.from_numpy(np.stack([joined == k for k in range(4)]).astype(np.float32))
    labels = classify(logits, splits=[split], image=image).numpy()
    assert set(np.unique(labels).tolist()) == {1, 2, 3, 9}
    assert adjusted_rand_index(labels, truth) >= 0.99


def test_no_split_where_the_image_has_no_more_classes() -> None:
    """Asked for ten classes, the four true ones stay: cutting pixel noise or a class's
    shading explains far less than SPLIT_SHARE of the scene's variance."""
    image, truth, _ = joined_scene()
    values = np.moveaxis(image, 0, -1).reshape(-1, 4)
    assert split_classes(truth.ravel(), values, 10, list(range(10, 20))) == ()
    assert split_classes(np.zeros(5, int), np.ones((5, 4)), 3, [1, 2]) == ()  # all alike
    assert split_classes(np.zeros(5, int), np.zeros((5, 4)), 3, []) == ()  # no free id


def test_splits_apply_pixel_by_pixel_in_any_window() -> None:
    """A split is a plane in band space: a window of a tile gets the labels of the same
    pixels in the whole tile, so tiles of any size agree."""
    image, _, joined = joined_scene()
    values = np.moveaxis(image, 0, -1).reshape(-1, 4)
    splits = split_classes(joined.ravel(), values, 4, [9])
    logits = torch.from_numpy(np.stack([joined == k for k in range(4)]).astype(np.float32))
    whole = classify(logits, splits=splits, image=image)
    part = classify(logits[:, 30:77, 41:150], splits=splits, image=image[:, 30:77, 41:150])
    assert torch.equal(part, whole[30:77, 41:150])
    with pytest.raises(InputError, match="splits need the image"):
        classify(logits, splits=splits)


def test_merge_for_splits_up_to_k_with_free_channel_ids() -> None:
    """A confident network with two live channels over three colours: asked for three
    classes, the map keeps both channels and splits one with the first unused id."""
    image = np.zeros((1, 1, 30, 90), np.float32)
    image[..., 30:60] = 0.5
    image[..., 60:] = 1.0
    image += np.random.default_rng(0).normal(0, 0.02, image.shape).astype(np.float32)
    logits = torch.full((1, 4, 30, 90), -5.0)
    logits[0, 1, :, :30] = logits[0, 3, :, 30:] = 5.0  # channel 3 holds two colours
    classes = merge_for(logits, image, np.ones((1, 30, 90), bool), FAST.replace(n_classes=3))
    assert classes is not None
    assert classes.table[:4].tolist() == [-1, 1, -1, 3]
    assert (classes.table[4:] == -1).all()
    assert [(s.source, s.target) for s in classes.splits] == [(3, 0)]
    labels = classify(logits[0], table=classes.table, splits=classes.splits, image=image[0])
    assert labels[:, :30].unique().tolist() == [1]
    assert {labels[:, 30:60].unique().tolist()[0], labels[:, 60:].unique().tolist()[0]} == {0, 3}


def _ramp_over_stripes(step: float) -> tuple[np.ndarray, torch.Tensor]:
    """A confident network's three classes: the two halves of a smooth left-to-right
    ramp (with ``step`` added to the right half) above a striped third class."""
    image = np.tile(np.linspace(0.0, 0.3, 64, dtype=np.float32), (48, 1))
    image[:, 32:] += step
    image[16:] = np.where(np.arange(64) // 8 % 2, 0.2, 0.8)  # stripes 8 px wide
    logits = torch.full((1, 3, 48, 64), -5.0)
    logits[0, 0, :16, :32] = logits[0, 1, :16, 32:] = logits[0, 2, 16:] = 5.0
    return image[None, None], logits


def test_edge_merge_joins_classes_along_a_ramp_but_not_along_an_edge() -> None:
    valid = np.ones((1, 48, 64), bool)
    joining = PRESETS["default"]  # sigma 3 px since 2026-12-03
    assert joining.merge_edge_sigma == 3.0
    image, logits = _ramp_over_stripes(step=0.0)
    classes = merge_for(logits, image, valid, joining)
    assert classes is not None
    a, b, c = classes.table[:3].tolist()
    assert a == b != c  # the ramp's halves: one class
    assert c == 2
    assert (classes.table[3:] == -1).all()  # channels that won no pixel
    image, logits = _ramp_over_stripes(step=0.5)
    classes = merge_for(logits, image, valid, joining)
    assert classes is not None
    assert classes.table[:3].tolist() == [0, 1, 2]  # a step is an edge: kept apart
    # with --classes K the edge merge stops at K classes
    image, logits = _ramp_over_stripes(step=0.0)
    classes = merge_for(logits, image, valid, joining.replace(n_classes=3))
    assert classes is not None
    assert classes.table[:3].tolist() == [0, 1, 2]
    assert merge_for(logits, image, valid, PRESETS["fork"]) is None  # off in the papers' presets


def test_with_k_classes_a_ramp_joins_before_two_alike_classes_across_an_edge() -> None:
    """Asked for K, classes are first joined along weak boundaries (down to K at most),
    then by Ward: a ramp split in two is one class, two striped classes of the same
    colour either side of a sharp edge stay apart. Ward alone joins the two alike ones."""
    image = np.zeros((1, 1, 64, 96), np.float32)
    image[..., :48] = np.linspace(0.0, 0.3, 48, dtype=np.float32)  # a smooth ramp
    stripes = np.where(np.arange(48) // 8 % 2, 0.2, 0.8).astype(np.float32)
    image[..., 48:] = stripes  # textured, the same colours above and below
    image[..., 32:, 48:] = np.roll(stripes, 8)  # its two halves meet at a sharp edge
    logits = torch.full((1, 4, 64, 96), -5.0)
    logits[0, 0, :, :24] = logits[0, 1, :, 24:48] = 5.0  # the ramp's halves
    logits[0, 2, :32, 48:] = logits[0, 3, 32:, 48:] = 5.0  # the stripes' halves
    valid = np.ones((1, 64, 96), bool)
    params = PRESETS["default"].replace(n_classes=3)
    classes = merge_for(logits, image, valid, params)
    assert classes is not None
    assert classes.table[:4].tolist() in ([0, 0, 2, 3], [1, 1, 2, 3])
    ward_only = merge_for(logits, image, valid, params.replace(merge_edge_sigma=0.0))
    assert ward_only is not None
    assert ward_only.table[:4].tolist() in ([0, 1, 2, 2], [0, 1, 3, 3])
