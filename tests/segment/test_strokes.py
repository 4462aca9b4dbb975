"""The stroke classifier of scribble mode: land covers told apart by their surroundings."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
import torch

from geoseg.evaluate import adjusted_rand_index
from geoseg.run.scene import run_scene
from geoseg.sample import SAMPLE_CRS, sample_transform
from geoseg.segment.strokes import (
    MAX_SAMPLES,
    StrokeClassifier,
    fit_strokes,
    stroke_features,
    window_radii,
)
from tests.helpers import fast_config, write_image


def crowns_scene(path: Path, seed: int = 0) -> tuple[Path, np.ndarray]:
    """200 x 260 px, 3 bands: a forest of bright crowns on dark shade (6 px blocks) on
    the left, dark water as dark as the shade top right, a flat field bottom right.
    Truth 1 forest, 2 water, 3 field."""
    rng = np.random.default_rng(seed)
    rows, cols = 200, 260
    truth = np.full((rows, cols), 1, np.uint8)
    truth[:100, 130:] = 2
    truth[100:, 130:] = 3
    r, c = np.indices((rows, cols))
    crowns = ((r // 6 + c // 6) % 2 == 0).astype(float)
    value = np.where(truth == 1, 0.15 + 0.55 * crowns, np.where(truth == 2, 0.15, 0.45))
    image = np.stack([value, value * 0.9, value * 1.1]) + rng.normal(0, 0.01, (3, rows, cols))
    dn = np.round(np.clip(image, 0, 1) * 10000).astype(np.uint16) + 1
    write_image(path, dn, transform=sample_transform(), crs=SAMPLE_CRS, nodata=0)
    return path, truth


def crowns_strokes(path: Path) -> Path:
    """One 30 px line in each cover: forest, water, field."""
    t = sample_transform()
    lines = [((40, 30), (40, 60)), ((50, 190), (50, 220)), ((150, 190), (150, 220))]
    geoms = [shapely.LineString([t @ (c + 0.5, r + 0.5) for r, c in line]) for line in lines]
    frame = gpd.GeoDataFrame({"class": ["forest", "water", "field"]}, geometry=geoms)
    frame.set_crs(SAMPLE_CRS).to_file(path)
    return path


@pytest.fixture(scope="module")
def crowns(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, np.ndarray]:
    """The crowns scene's truth and its labels with and without the stroke classifier."""
    root = tmp_path_factory.mktemp("crowns")
    scene, truth = crowns_scene(root / "scene.tif")
    strokes = crowns_strokes(root / "strokes.gpkg")
    out = {}
    for context in (True, False):
        config = fast_config(
            f"segment.scribbles={strokes}", f"segment.scribble_context={str(context).lower()}"
        )
        run_scene(scene, root / f"run_{context}", config)
        with rasterio.open(root / f"run_{context}" / "labels.tif") as src:
            out[context] = src.read(1).astype(np.int64)
    return {"truth": truth.astype(np.int64), **out}


def test_dark_crowns_join_the_forest_not_the_water(crowns: dict) -> None:
    """Shade between crowns is as dark as the water: its class comes from around it.
    Joining the network's classes whole gives the shade to the water."""
    truth, context, whole = crowns["truth"], crowns[True], crowns[False]
    assert adjusted_rand_index(context, truth) >= 0.9
    forest = truth == 1
    assert np.mean(context[forest] == 1) >= 0.95  # ids in the strokes' order: forest 1
    assert adjusted_rand_index(whole, truth) < adjusted_rand_index(context, truth) - 0.1


def test_features_of_a_pixel_do_not_depend_on_the_window() -> None:
    """Within ``reach`` of nothing but its own tile, a pixel's features are the same
    bits in a small tile as in the whole image (what makes labels tile-invariant)."""
    rng = np.random.default_rng(1)
    image = rng.random((3, 90, 120)).astype(np.float32)
    logits = torch.from_numpy(rng.normal(size=(5, 90, 120)).astype(np.float32))
    whole = stroke_features(logits, image, [0, 2, 4], 9)
    part = stroke_features(logits[:, 20:70, 30:100], image[:, 20:70, 30:100], [0, 2, 4], 9)
    assert whole.shape[0] == 3 + 2 * (2 * 3 + 3)  # bands; per radius means, spreads, shares
    assert torch.equal(whole[:, 29:61, 39:91], part[:, 9:41, 9:61])
    assert window_radii(9) == (4, 9)


def test_a_fit_separates_classes_and_leaves_missing_ones_out() -> None:
    """Two separable classes of three: each pixel its class, the third never."""
    rng = np.random.default_rng(0)
    features = np.concatenate([rng.normal(0.2, 0.05, (40, 4)), rng.normal(0.8, 0.05, (40, 4))])
    classes = np.repeat([0, 2], 40)
    fitted = fit_strokes(features, classes, 3, (1,), 0)
    scores = fitted.weights @ features.T + fitted.bias[:, None]
    np.testing.assert_array_equal(scores.argmax(axis=0), classes)
    assert fitted.weights.shape == (3, 4)
    one = fit_strokes(features[:40], classes[:40], 3, (), 0)  # one class: it everywhere
    assert ((one.weights @ features.T + one.bias[:, None]).argmax(axis=0) == 0).all()


def test_many_strokes_are_sampled_by_seed() -> None:
    """Over :data:`MAX_SAMPLES` pixels a seeded sample trains it: same seed, same fit."""
    rng = np.random.default_rng(0)
    n = MAX_SAMPLES + 500
    features = rng.random((n, 2))
    classes = (features[:, 0] > 0.5).astype(np.int64)
    a, b = (fit_strokes(features, classes, 2, (), 0, seed=3) for _ in range(2))
    np.testing.assert_array_equal(a.weights, b.weights)


def test_a_saved_classifier_must_fit_the_bands() -> None:
    """A saved classifier of another band count is refused (the scratch then trains
    again); one that fits loads back the same."""
    fitted = StrokeClassifier(np.ones((2, 3 + 2 * (6 + 1))), np.zeros(2), (4,), 9)
    again = StrokeClassifier.from_dict(fitted.to_dict(), 3)
    np.testing.assert_array_equal(again.weights, fitted.weights)
    assert again.channels == (4,)
    assert again.reach == 9
    with pytest.raises(ValueError, match="stroke classifier of shape"):
        StrokeClassifier.from_dict(fitted.to_dict(), 4)
