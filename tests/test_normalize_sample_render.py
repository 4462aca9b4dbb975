from __future__ import annotations

import numpy as np
import pytest

from geoseg.errors import InputError
from geoseg.normalize import auto_scale, percentile_bounds, stretch
from geoseg.render import display_rgb, mean_colour
from geoseg.sample import make_scene


def test_percentiles_ignore_nodata() -> None:
    image = np.zeros((1, 10, 10), np.uint16)
    image[0, :5] = 1000
    image[0, 5:] = np.arange(50).reshape(5, 10) + 2000
    valid = np.zeros((10, 10), bool)
    valid[5:] = True
    low, high = percentile_bounds(image, valid, low=0, high=100)
    assert (low[0], high[0]) == (2000, 2049)


def test_stretch_clips_and_handles_flat_bands() -> None:
    image = np.array([[[0, 50, 100]], [[7, 7, 7]]], np.float32)
    out = stretch(image, np.array([25.0, 7.0]), np.array([75.0, 7.0]))
    np.testing.assert_allclose(out[0, 0], [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(out[1], 0.0)


def test_auto_scale_uint8_divides_by_255() -> None:
    image = np.array([[[0, 255]]], np.uint8)
    np.testing.assert_allclose(auto_scale(image), [[[0.0, 1.0]]])


def test_bad_percentiles() -> None:
    with pytest.raises(InputError, match="0 <= low < high <= 100"):
        percentile_bounds(np.zeros((1, 2, 2)), low=50, high=10)


def test_sample_scene_has_every_class_and_is_reproducible() -> None:
    a, truth = make_scene(rows=40, cols=50, bands=7, n_classes=6, seed=4)
    b, _ = make_scene(rows=40, cols=50, bands=7, n_classes=6, seed=4)
    np.testing.assert_array_equal(a, b)
    assert sorted(np.unique(truth)) == [1, 2, 3, 4, 5, 6]
    assert a.shape == (7, 40, 50)
    assert a.min() >= 0.0
    assert a.max() <= 1.0
    # band 1 separates classes: class means are ordered by class id
    means = [a[0][truth == k].mean() for k in range(1, 7)]
    assert means == sorted(means)


def test_display_and_mean_colour() -> None:
    grey = display_rgb(np.ones((1, 2, 2), np.float32))
    assert grey.shape == (3, 2, 2)
    labels = np.array([[0, -1], [0, 1]])
    display = np.stack([np.array([[0.0, 1.0], [1.0, 0.5]])] * 3)
    out = mean_colour(display, labels)
    assert out[:, 0, 1].tolist() == [0, 0, 0]  # nodata is black
    assert out[0, 0, 0] == out[0, 1, 0] == 128  # mean of 0 and 1
    assert out[0, 1, 1] == 128
