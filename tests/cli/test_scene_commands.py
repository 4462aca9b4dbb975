"""``geoseg run`` and ``geoseg vectorize`` through the command line
(:mod:`geoseg.cli.scene_commands`), in process with typer's runner."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from geoseg.cli import app
from geoseg.io.raster_write import write_image
from geoseg.sample import SAMPLE_CRS, sample_transform


def test_cli_run_default_outdir_and_errors(scene, tmp_path: Path) -> None:
    path, _ = scene
    runner = CliRunner()
    copy = tmp_path / "mine.tif"
    copy.write_bytes(path.read_bytes())
    ok = runner.invoke(app, ["run", str(copy), "--tile-size", "128", "--max-iterations", "4", "-q"])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "mine_geoseg" / "labels.tif").exists()
    missing = runner.invoke(app, ["run", str(tmp_path / "nope.tif")])
    assert missing.exit_code == 1
    assert "nope.tif: no such file" in missing.output
    bad_bands = runner.invoke(app, ["run", str(copy), "--bands", "5,1", "-o", str(tmp_path / "x")])
    assert bad_bands.exit_code == 1
    assert "input.bands=[5, 1]" in bad_bands.output
    truncated = tmp_path / "cut.tif"
    truncated.write_bytes(path.read_bytes()[:3000])
    cut = runner.invoke(app, ["run", str(truncated), "-o", str(tmp_path / "cut_out")])
    assert cut.exit_code == 1
    assert "cut.tif" in cut.output
    assert not any(p.name.startswith(".") for p in tmp_path.rglob("*"))


def test_cli_run_takes_a_config_and_set(scene, tmp_path: Path) -> None:
    path, _ = scene
    settings = tmp_path / "c.yaml"
    settings.write_text("segment:\n  max_iterations: 3\n  n_crops: 2\ntiling:\n  tile_size: 64\n")
    runner = CliRunner()
    args = ["run", str(path), "-o", str(tmp_path / "out"), "-c", str(settings), "-q"]
    ok = runner.invoke(app, [*args, "--set", "tiling.tile_size=128", "--max-iterations", "2"])
    assert ok.exit_code == 0, ok.output
    used = yaml.safe_load((tmp_path / "out" / "run.yaml").read_text())["config"]
    assert used["tiling"]["tile_size"] == 128  # --set over the file
    assert used["segment"]["max_iterations"] == 2  # a shortcut option over the file
    assert used["segment"]["n_crops"] == 2  # the file over the defaults
    unknown = runner.invoke(app, [*args, "--set", "tiling.tilesize=128"])
    assert unknown.exit_code == 1
    assert "tiling.tilesize: unknown key; did you mean tiling.tile_size?" in unknown.output


def test_cli_vector_format_and_crs(scene, tmp_path: Path) -> None:
    path, _ = scene
    target = tmp_path / "polys.shp"
    args = ["run", str(path), "-o", str(tmp_path / "out"), "-q", "--set", "segment.n_crops=2"]
    done = CliRunner().invoke(app, [*args, "--vector", str(target), "--to-crs", "EPSG:4326"])
    assert done.exit_code == 0, done.output
    back = gpd.read_file(target, engine="pyogrio")
    assert back.crs.to_epsg() == 4326
    assert not (tmp_path / "out" / "segments.gpkg").exists()
    bad = CliRunner().invoke(app, [*args, "--vector", str(tmp_path / "x.kml")])
    assert bad.exit_code == 1
    assert "output.vector=" in bad.output
    assert "unknown format" in bad.output


def test_cli_vectorize_a_label_raster(scene, tmp_path: Path) -> None:
    path, truth = scene
    labels = tmp_path / "truth.tif"
    write_image(
        labels, truth[None].astype(np.uint8), transform=sample_transform(), crs=SAMPLE_CRS, nodata=0
    )
    target = tmp_path / "truth.fgb"
    done = CliRunner().invoke(
        app, ["vectorize", str(labels), "-o", str(target), "--scene", str(path), "-q"]
    )
    assert done.exit_code == 0, done.output
    back = gpd.read_file(target, engine="pyogrio")
    assert sorted(back.class_id.unique()) == [1, 2, 3, 4]
    assert back.n_pixels.sum() == np.count_nonzero(truth)
    assert "b4_mean" in back.columns
    other = tmp_path / "small.tif"
    write_image(
        other, truth[None, :50].astype(np.uint8), transform=sample_transform(), crs=SAMPLE_CRS
    )
    bad = CliRunner().invoke(
        app, ["vectorize", str(other), "--scene", str(path), "-o", str(target)]
    )
    assert bad.exit_code == 1
    assert "different grids" in bad.output


@pytest.mark.parametrize("k", ["0", "-1", "33"])
def test_cli_invalid_class_count_is_one_line(scene, tmp_path: Path, k: str) -> None:
    path, _ = scene
    out = CliRunner().invoke(app, ["run", str(path), "--classes", k, "-o", str(tmp_path / "o")])
    assert out.exit_code == 1
    assert f"segment.n_classes={k} must lie in 1..n_channels (32)" in out.output
    assert len(out.output.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
