"""Scene mode at the array level: train once on crops, predict tile by tile."""

from __future__ import annotations

import numpy as np
import torch

from geoseg.sample import make_scene
from geoseg.segment import PRESETS, fill_nodata, fit, predict, training_views
from geoseg.tiling import sample_crops, tile_grid

PARAMS = PRESETS["default"].replace(train_scale=0.5)  # views downscaled too


def train_on_crops(image: np.ndarray, valid: np.ndarray, seed: int = 0):
    crops = sample_crops(
        valid, height=image.shape[1], width=image.shape[2], crop_size=128, n_crops=8, seed=seed
    )
    views = training_views(
        [image[(slice(None), *w.toslices())] for w in crops],
        [valid[w.toslices()] for w in crops],
        PARAMS,
    )
    return fit(*views, PARAMS, seed=seed, device="cpu")


def test_views_get_unique_superpixels() -> None:
    image, _ = make_scene(rows=64, cols=64, bands=3, seed=0)
    valid = np.ones((64, 64), bool)
    images, sp, ok = training_views([image, image[:, ::-1].copy()], [valid, valid], PARAMS)
    assert images.shape == (2, 3, 32, 32)  # train_scale 0.5
    assert ok.shape == sp.shape == (2, 32, 32)
    assert not set(np.unique(sp[0])) & set(np.unique(sp[1]))


def test_tiles_with_cores_kept_equal_the_whole_scene() -> None:
    """Overlap >= receptive field: every core pixel sees what it sees in the whole scene."""
    image, truth = make_scene(rows=180, cols=230, bands=4, n_classes=4, seed=2)
    valid = np.ones(truth.shape, bool)
    valid[:20, :50] = False
    image = fill_nodata(image, valid, values=np.full(4, 0.5))
    fitted = train_on_crops(image, valid)
    whole = predict(fitted.model, image, device=fitted.device)
    labels = np.full(truth.shape, -1)
    scores = torch.zeros_like(whole)
    overlap = PARAMS.receptive_field + 1
    for tile in tile_grid(180, 230, tile_size=64, overlap=overlap):
        out = predict(fitted.model, image[(slice(None), *tile.read.toslices())], device="cpu")
        rows, cols = tile.core_in_read
        core = tile.core.toslices()
        scores[(slice(None), *core)] = out[:, rows, cols]
        labels[core] = out[:, rows, cols].argmax(0).numpy()
    torch.testing.assert_close(scores, whole, atol=1e-4, rtol=1e-4)
    assert (labels == whole.argmax(0).numpy()).mean() > 0.9999
