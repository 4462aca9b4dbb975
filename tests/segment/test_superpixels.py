from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from geoseg.errors import InputError
from geoseg.segment.params import PRESETS
from geoseg.segment.superpixels import compute_superpixels, refine_labels

METHODS = [
    PRESETS["kanezaki2018"].replace(slic_n_segments=40),
    PRESETS["fork"].replace(fz_min_size=8),
    PRESETS["tip2020"],
]


def reference_refine(labels: np.ndarray, superpixels: np.ndarray) -> np.ndarray:
    """The paper's loop: in each superpixel, the most frequent label (smallest on ties)."""
    out = labels.copy()
    for sp in np.unique(superpixels[superpixels >= 0]):
        inside = superpixels == sp
        values, counts = np.unique(labels[inside], return_counts=True)
        out[inside] = values[np.argmax(counts)]
    return out


@settings(max_examples=60, deadline=None)
@given(
    labels=arrays(np.int64, st.integers(1, 300), elements=st.integers(0, 6)),
    data=st.data(),
)
def test_refine_equals_reference_loop(labels: np.ndarray, data: st.DataObject) -> None:
    sp = data.draw(arrays(np.int64, labels.shape, elements=st.integers(-1, 9)))
    got = refine_labels(torch.from_numpy(labels), torch.from_numpy(sp), 7).numpy()
    np.testing.assert_array_equal(got, reference_refine(labels, sp))


def test_refine_paints_majority() -> None:
    labels = torch.tensor([3, 3, 1, 0, 0, 2])
    sp = torch.tensor([0, 0, 0, 1, 1, 1])
    assert refine_labels(labels, sp, 4).tolist() == [3, 3, 3, 0, 0, 0]


@pytest.mark.parametrize("bands", [1, 3, 4, 7, 13])
@pytest.mark.parametrize("params", METHODS, ids=["slic", "felzenszwalb", "none"])
def test_every_band_count_and_method(bands: int, params) -> None:
    rng = np.random.default_rng(bands)
    image = rng.uniform(0.1, 0.2, (bands, 20, 30)).astype(np.float32)
    image[:, :, 15:] += 0.7
    sp = compute_superpixels(image, params)
    assert sp.shape == (20, 30)
    assert sp.dtype == np.int32
    ids = np.unique(sp)
    np.testing.assert_array_equal(ids, np.arange(ids.size))  # 0..M-1, no gaps
    if params.superpixels != "none":
        # no superpixel straddles the sharp vertical edge at column 15
        assert not set(np.unique(sp[:, :15])) & set(np.unique(sp[:, 15:]))


@pytest.mark.parametrize("params", METHODS, ids=["slic", "felzenszwalb", "none"])
def test_nodata_gets_minus_one(params) -> None:
    image = np.random.default_rng(0).uniform(0, 1, (4, 16, 16)).astype(np.float32)
    valid = np.ones((16, 16), bool)
    valid[:4] = False
    sp = compute_superpixels(image, params, valid=valid)
    assert (sp[:4] == -1).all()
    assert (sp[4:] >= 0).all()


def test_scale_shrinks_pixel_sizes() -> None:
    image = np.random.default_rng(1).uniform(0, 1, (3, 60, 60)).astype(np.float32)
    params = PRESETS["kanezaki2018"].replace(slic_n_segments=400)
    full = np.unique(compute_superpixels(image, params)).size
    quarter = np.unique(compute_superpixels(image, params, scale=0.5)).size
    assert quarter < full / 2


def test_rejects_2d_image() -> None:
    with pytest.raises(InputError, match=r"\(bands, rows, cols\)"):
        compute_superpixels(np.zeros((8, 8), np.float32), PRESETS["fork"])
