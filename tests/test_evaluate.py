from __future__ import annotations

import numpy as np
import pytest

from geoseg.errors import InputError
from geoseg.evaluate import adjusted_rand_index, hungarian_miou


@pytest.fixture
def truth() -> np.ndarray:
    t = np.zeros((20, 20), int)
    t[:, 10:] = 1
    t[10:, :10] = 2
    return t


def test_perfect_and_permuted(truth: np.ndarray) -> None:
    assert adjusted_rand_index(truth, truth) == 1.0
    assert hungarian_miou(truth, truth) == 1.0
    permuted = np.array([5, 9, 7])[truth]
    assert adjusted_rand_index(permuted, truth) == 1.0
    assert hungarian_miou(permuted, truth) == 1.0


def test_random_is_near_zero(truth: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    big = np.repeat(np.repeat(truth, 10, 0), 10, 1)
    assert abs(adjusted_rand_index(rng.integers(0, 3, big.shape), big)) < 0.01


def test_miou_known_value() -> None:
    truth = np.array([[0, 0, 1, 1]])
    pred = np.array([[0, 0, 0, 1]])
    # class 0 <-> 0: IoU 2/3; class 1 <-> 1: IoU 1/2
    assert hungarian_miou(pred, truth) == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_missing_predicted_class_scores_zero() -> None:
    truth = np.array([[0, 1, 2, 2]])
    pred = np.array([[0, 0, 1, 1]])
    # best matching: 2<->1 (IoU 1), 0<->0 (IoU 1/2), class 1 unmatched (0)
    assert hungarian_miou(pred, truth) == pytest.approx((1 + 0.5 + 0) / 3)


def test_ignore_and_nodata(truth: np.ndarray) -> None:
    pred = truth.copy()
    pred[0, 0] = -1  # nodata in the prediction is left out
    noisy_truth = truth.copy()
    noisy_truth[:2] = 9  # 'none' in the reference, ignored
    pred[:2] = 4
    assert adjusted_rand_index(pred, noisy_truth, ignore=9) == 1.0


def test_shape_mismatch() -> None:
    with pytest.raises(InputError, match="differ in shape"):
        adjusted_rand_index(np.zeros((2, 2)), np.zeros((3, 3)))


def test_seam_ratio_flags_tile_seams_and_passes_seamless_maps() -> None:
    from geoseg.evaluate import seam_boundary_ratio

    rng = np.random.default_rng(0)
    from scipy.ndimage import gaussian_filter

    field = gaussian_filter(rng.normal(size=(120, 120)), 4)  # irregular smooth regions
    seamless = np.digitize(field, np.quantile(field, [1 / 3, 2 / 3]))
    cuts = np.array([40, 80])
    ratio, _, _ = seam_boundary_ratio(seamless, row_cuts=cuts, col_cuts=cuts)
    assert 0.5 < ratio < 1.5
    # every 40x40 tile relabels its classes: boundaries appear along the seams
    seamy = seamless.copy()
    for r in range(3):
        for c in range(3):
            block = (slice(40 * r, 40 * r + 40), slice(40 * c, 40 * c + 40))
            seamy[block] = rng.permutation(3)[seamless[block]]
    ratio, seam, other = seam_boundary_ratio(seamy, row_cuts=cuts, col_cuts=cuts)
    assert ratio > 2
    assert seam > other
    local, _, _ = seam_boundary_ratio(seamy, row_cuts=cuts, col_cuts=cuts, control=(4, 12))
    assert local > 2
    local, _, _ = seam_boundary_ratio(seamless, row_cuts=cuts, col_cuts=cuts, control=(4, 12))
    assert 0.5 < local < 1.5


def test_seam_ratio_local_control_uses_lines_near_the_seams() -> None:
    from geoseg.evaluate import seam_boundary_ratio

    labels = np.zeros((20, 20), int)
    labels[:, 1::2] = 1  # boundaries between every pair of columns ...
    labels[:, 12:] = 0  # ... but none right of column 12
    cut = np.array([6])
    _, seam, control = seam_boundary_ratio(labels, row_cuts=np.array([]), col_cuts=cut)
    assert seam == 1.0
    assert 0 < control < 1.0  # the whole image: the plain right part dilutes it
    _, _, near = seam_boundary_ratio(labels, row_cuts=np.array([]), col_cuts=cut, control=(1, 4))
    assert near == 1.0  # columns 1..9 only: boundaries everywhere


def test_seam_ratio_ignores_nodata_pairs() -> None:
    from geoseg.evaluate import seam_boundary_ratio

    labels = np.zeros((10, 10), int)
    labels[:, 5:] = -1  # nodata right of the seam
    ratio, seam, _ = seam_boundary_ratio(labels, row_cuts=np.array([]), col_cuts=np.array([5]))
    assert seam == 0.0
    assert ratio == 1.0
