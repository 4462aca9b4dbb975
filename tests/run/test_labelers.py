"""How tiles get their classes (:mod:`geoseg.run.labelers`): tile mode aligned across
tiles, classes merged to exactly k, a constant scene as one class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from geoseg.evaluate import adjusted_rand_index
from geoseg.io.raster_write import write_image
from geoseg.run import run_scene
from geoseg.sample import SAMPLE_CRS, sample_transform
from tests.helpers import agreeing_classes, read_labels
from tests.helpers import fast_config as config


def test_tile_mode_aligns_classes_across_tiles(scene, tmp_path: Path) -> None:
    path, truth = scene
    settings = ("segment.mode=tile", "tiling.tile_size=128", "tiling.overlap=32")
    result = run_scene(path, tmp_path / "out", config(*settings))
    labels = read_labels(result.labels)
    np.testing.assert_array_equal(labels == 0, truth == 0)
    assert adjusted_rand_index(labels, truth, ignore=0) >= 0.9
    record = yaml.safe_load(result.record.read_text())
    assert len(record["training"]["tiles_trained"]) == result.n_tiles == 2 * 3


@pytest.mark.parametrize("k", [3, 1])
def test_classes_merges_to_exactly_k_at_any_tile_size(scene, tmp_path: Path, k: int) -> None:
    path, truth = scene
    merged = config(f"segment.n_classes={k}", "vectorize.min_area=30")
    result = run_scene(path, tmp_path / "a", merged)
    assert result.n_classes == k
    labels = agreeing_classes(result)
    big = run_scene(path, tmp_path / "b", config(f"segment.n_classes={k}", "tiling.tile_size=256"))
    assert big.n_classes == k
    plain = run_scene(path, tmp_path / "c", config(f"segment.n_classes={k}"))
    assert (read_labels(big.labels) == read_labels(plain.labels)).mean() > 0.9999
    record = yaml.safe_load(result.record.read_text())
    table = record["training"]["merge"]  # network channel -> merged channel
    assert all(table[raw - 1] == raw - 1 for raw in record["classes"]["source_ids"])
    if k == 3:  # two of the four true classes joined: the others are still found
        assert adjusted_rand_index(labels, truth, ignore=0) >= 0.6


def test_more_classes_asked_than_found_keeps_the_network_classes(scene, tmp_path: Path) -> None:
    path, _ = scene
    # --classes trains without the decorrelation and joins no classes by their edges
    plain = ("segment.decorrelate=0", "segment.merge_edge_sigma=0")
    free = run_scene(path, tmp_path / "a", config(*plain))
    many = run_scene(path, tmp_path / "b", config("segment.n_classes=32"))
    np.testing.assert_array_equal(read_labels(free.labels), read_labels(many.labels))


def test_tile_mode_merges_scene_classes_to_k(scene, tmp_path: Path) -> None:
    path, _ = scene
    settings = ("segment.mode=tile", "tiling.tile_size=128", "tiling.overlap=32")
    result = run_scene(path, tmp_path / "out", config(*settings, "segment.n_classes=2"))
    assert result.n_classes == 2
    agreeing_classes(result)


def test_constant_scene_is_one_class(tmp_path: Path) -> None:
    """Nothing to segment: one class, not the frame and corners of the zero padding."""
    path = tmp_path / "flat.tif"
    write_image(
        path, np.full((3, 80, 100), 77, np.uint16), transform=sample_transform(), crs=SAMPLE_CRS
    )
    result = run_scene(path, tmp_path / "out", config())
    assert result.n_classes == 1
    assert np.unique(read_labels(result.labels)).tolist() == [1]
    assert yaml.safe_load(result.record.read_text())["training"]["uniform"] is True
