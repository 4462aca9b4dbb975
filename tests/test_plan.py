"""Pre-flight plans: the tile count is the run's, the estimates are sane."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geoseg.cli import app
from geoseg.config import resolve_config
from geoseg.plan import TILE_SIZES, plan_scene
from geoseg.run import run_scene
from tests import helpers
from tests.helpers import write_scene

FAST = [*helpers.FAST[:2], "segment.max_iterations=6"]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plan") / "scene.tif"
    # a nodata band on the left: some tiles hold no data
    return write_scene(path, rows=150, cols=230, seed=2, nodata_box=(slice(None), slice(0, 70)))[0]


@pytest.mark.parametrize("mode", ["scene", "tile"])
def test_plan_counts_the_runs_tiles(scene: Path, tmp_path: Path, mode: str) -> None:
    config = resolve_config(
        overrides=[*FAST, f"segment.mode={mode}", "tiling.tile_size=64", "tiling.overlap=32"]
    )
    plan = plan_scene(scene, config)
    result = run_scene(scene, tmp_path / "out", config)
    assert plan.tiles == result.n_tiles
    record = __import__("yaml").safe_load(result.record.read_text())
    assert plan.tiles_with_data == plan.tiles - record["tiles"]["skipped_nodata"]
    assert plan.valid_fraction == pytest.approx(160 / 230, abs=0.02)
    assert plan.peak_memory_mb > config.runtime.gdal_cache_mb
    assert plan.scratch_disk_mb > 0
    assert plan.estimated_seconds["predict"] > 0
    assert plan.estimated_seconds["total"] == pytest.approx(
        sum(v for k, v in plan.estimated_seconds.items() if k != "total"), abs=0.2
    )
    assert plan.suggested_tile_size in TILE_SIZES
    assert plan.gpu_free_mb is None or plan.gpu_free_mb > 0


def test_cli_plan_json_and_errors(scene: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(app, ["plan", str(scene), "--json", *(f"--set={s}" for s in FAST)])
    assert done.exit_code == 0, done.output
    plan = json.loads(done.output)
    assert {"tiles", "peak_memory_mb", "estimated_seconds", "suggested_tile_size"} <= set(plan)
    missing = runner.invoke(app, ["plan", str(tmp_path / "none.tif")])
    assert missing.exit_code == 1
    assert "none.tif" in missing.output
