"""Tiles labelled on a Dask cluster (:mod:`geoseg.run.distribute`): the same labels as
the local loop, stitched from the workers' tiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.helpers import read_labels, write_scene


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["scene", "tile"])
def test_run_labels_tiles_on_a_dask_cluster_identically(tmp_path: Path, mode: str) -> None:
    pytest.importorskip("distributed")
    from geoseg.config import resolve_config
    from geoseg.run import run_scene

    scene, _ = write_scene(tmp_path / "scene.tif", rows=150, cols=200, seed=7)
    settings = [
        "segment.n_crops=3",
        "segment.crop_size=48",
        "segment.max_iterations=6",
        "tiling.tile_size=64",
        "tiling.overlap=32",
        f"segment.mode={mode}",
    ]
    local = run_scene(scene, tmp_path / "local", resolve_config(overrides=settings))
    config = resolve_config(overrides=[*settings, "runtime.executor=dask", "runtime.workers=2"])
    spread = run_scene(scene, tmp_path / "dask", config)
    record = yaml.safe_load(spread.record.read_text())
    with_data = local.n_tiles - record["tiles"]["skipped_nodata"]
    assert record["distributed_tiles"] == with_data - (1 if mode == "tile" else 0)
    assert record["tiles"]["resumed"] == record["distributed_tiles"]  # stitched from workers
    np.testing.assert_array_equal(read_labels(local.labels), read_labels(spread.labels))
