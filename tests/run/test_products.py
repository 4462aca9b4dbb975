"""A run's products (:mod:`geoseg.run.products`): the vector layer agrees with the label
raster, small segments merge, the quicklook shows the colour bands."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import yaml
from PIL import Image

from geoseg.run import RunResult, run_scene
from geoseg.sample import SAMPLE_CRS
from tests.helpers import agreeing_classes, burn
from tests.helpers import fast_config as config


def test_quicklook_shows_the_colour_bands_whichever_bands_are_segmented(
    scene, tmp_path: Path
) -> None:
    """The quicklook's scene half: drawn from the statistics' decimated read when the
    colour bands are segmented, read again when they are not; the same picture."""
    path, _ = scene
    halves = []
    for name, bands in (("all", [1, 2, 3, 4]), ("other", [4, 1])):
        cfg = config("output.display_bands=[1, 2, 3]", f"input.bands={bands}")
        result = run_scene(path, tmp_path / name, cfg)
        picture = np.asarray(Image.open(result.quicklook))
        halves.append(picture[:, : (picture.shape[1] - 8) // 2])
    assert halves[0].std() > 20  # a picture, not a blank
    np.testing.assert_array_equal(halves[0], halves[1])


def test_polygons_match_the_label_raster(scene_run: RunResult) -> None:
    result = scene_run
    assert result.vector == result.labels.parent / "segments.gpkg"
    burnt, labels = burn(result.vector, result.labels)
    np.testing.assert_array_equal(burnt, labels)  # same classes, nodata uncovered
    segments = gpd.read_file(result.vector, layer="segments", engine="pyogrio")
    assert len(segments) == result.n_features > 0
    assert segments.crs == SAMPLE_CRS
    assert segments.n_pixels.sum() == np.count_nonzero(labels)
    assert {"b1_mean", "b4_std"} <= set(segments.columns)
    record = yaml.safe_load(result.record.read_text())
    assert record["vector"]["features"] == len(segments)


def test_min_area_merges_small_segments_and_labels_follow(scene, tmp_path: Path) -> None:
    path, _ = scene
    result = run_scene(path, tmp_path / "out", config("vectorize.min_area=40"))
    segments = gpd.read_file(result.vector, layer="segments", engine="pyogrio")
    assert segments.n_pixels.min() >= 40
    burnt, labels = burn(result.vector, result.labels)
    np.testing.assert_array_equal(burnt, labels)  # labels.tif was rewritten to agree
    assert not list((tmp_path / "out").glob(".*"))  # no scratch left


def test_min_area_merging_keeps_classes_ordered_by_area(scene, tmp_path: Path) -> None:
    path, _ = scene
    agreeing_classes(run_scene(path, tmp_path / "out", config("vectorize.min_area=200")))
