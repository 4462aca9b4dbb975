"""``run_scene`` (:mod:`geoseg.run.scene`): one scene from GeoTIFF to label raster,
products and record, on a four-class scene of many FAST tiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from PIL import Image

from geoseg.config import Config, resolve_config
from geoseg.errors import ConfigError, InputError
from geoseg.evaluate import adjusted_rand_index
from geoseg.io.raster_write import write_image
from geoseg.render import palette
from geoseg.run import RunResult, run_scene
from geoseg.sample import SAMPLE_CRS, make_scene, sample_transform
from tests.helpers import fast_config as config
from tests.helpers import read_labels, shared


def test_classes_match_truth_across_many_tiles(scene, scene_run: RunResult) -> None:
    _, truth = scene
    result = scene_run
    assert result.n_tiles == 6 * 8  # read windows of 64 px, cores of 64 - 32
    labels = read_labels(result.labels)
    np.testing.assert_array_equal(labels == 0, truth == 0)
    assert adjusted_rand_index(labels, truth, ignore=0) >= 0.9


def test_tile_size_does_not_change_labels(scene, scene_run: RunResult, tmp_path: Path) -> None:
    path, _ = scene
    small = scene_run
    big = run_scene(path, tmp_path / "b", config("tiling.tile_size=256"))
    a, b = read_labels(small.labels), read_labels(big.labels)
    assert (a == b).mean() > 0.9999


def test_superpixel_vote_is_the_same_whatever_the_tile_or_block_size(scene, tmp_path: Path) -> None:
    path, truth = scene
    # without the label smoothing, which leaves the vote little to do on this scene
    vote = (
        "segment.smooth_sigma=0",
        "stitch.refine=true",
        "stitch.refine_block=64",
        "stitch.refine_margin=48",
    )
    plain = read_labels(run_scene(path, tmp_path / "plain", config(vote[0])).labels)
    small = read_labels(run_scene(path, tmp_path / "a", config(*vote)).labels)
    big = read_labels(run_scene(path, tmp_path / "b", config(*vote, "tiling.tile_size=256")).labels)
    other = read_labels(
        run_scene(path, tmp_path / "c", config(*vote, "stitch.refine_block=96")).labels
    )
    assert (small == big).mean() > 0.9999
    assert (small == other).mean() > 0.9999  # where the vote's blocks end does not show
    # the vote only cleans the labels it is given: as close to the truth as them or closer
    # (how close they are is the network's draw: 0.83-0.98 ARI on seed 0 of this scene
    # without smoothing, by the decorrelation's version)
    assert adjusted_rand_index(small, truth, ignore=0) >= adjusted_rand_index(
        plain, truth, ignore=0
    )
    np.testing.assert_array_equal(small == 0, truth == 0)
    boundaries = [np.count_nonzero(np.diff(a.astype(int), axis=1)) for a in (plain, small)]
    assert boundaries[1] < boundaries[0]  # the vote smooths boundaries


def test_outputs_are_a_cog_a_quicklook_and_a_record(scene, scene_run: RunResult) -> None:
    path, _ = scene
    result = scene_run
    parts = {"read", "network", "classify", "write", "close"}
    assert set(result.profile) == {f"predict.{part}" for part in parts}
    assert sum(result.profile.values()) <= result.timings["predict"]
    with rasterio.open(result.labels) as got, rasterio.open(path) as src:
        assert got.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert got.crs == src.crs
        assert got.transform == src.transform
        assert got.dtypes[0] == "uint8"
        assert got.nodata == 0
        colours = got.colormap(1)  # the quicklook's colours, nodata transparent
        assert colours[0] == (0, 0, 0, 0)
        assert [colours[k][:3] for k in (1, 2)] == [tuple(palette(3)[k]) for k in (1, 2)]
    with rasterio.open(result.quicklook) as ql:
        assert ql.count == 3
    record = yaml.safe_load(result.record.read_text())
    assert Config.model_validate(record["config"]) == config()  # the resolved config
    assert record["config"]["segment"]["max_iterations"] == 24
    assert record["config"]["runtime"]["seed"] == 0
    assert len(record["normalize"]["low"]) == 4
    assert record["classes"]["count"] == result.n_classes
    assert len(record["classes"]["source_ids"]) == result.n_classes
    counts = np.bincount(read_labels(result.labels).ravel())[1:]
    assert counts.size == result.n_classes
    assert (np.diff(counts) <= 0).all()  # ids 1..K by decreasing area
    assert record["tiles"]["skipped_nodata"] == 0
    assert {"torch", "rasterio", "gdal", "geoseg"} <= set(record["versions"])
    assert sorted(p.name for p in result.labels.parent.iterdir()) == [
        "labels.tif",
        "quicklook.png",
        "report.html",
        "run.yaml",
        "segments.gpkg",
    ]


def test_overlap_below_receptive_field_is_refused(scene, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tiling.overlap=2 must be at least .* \(31 px\)"):
        config("tiling.overlap=2")


def test_texture_bands_keep_labels_identical_at_any_tile_size(
    scene, scene_run: RunResult, tmp_path: Path
) -> None:
    """At 10 m the texture bands are off by default; with them on (a limit of 20 m) the
    tiles still join without a seam, and run.yaml's training section says what was used."""
    path, truth = scene
    textured = config("segment.texture_max_pixel=20")
    small = run_scene(path, tmp_path / "a", textured)
    big = run_scene(
        path, tmp_path / "b", config("segment.texture_max_pixel=20", "tiling.tile_size=256")
    )
    np.testing.assert_array_equal(read_labels(small.labels), read_labels(big.labels))
    assert adjusted_rand_index(read_labels(small.labels), truth, ignore=0) >= 0.9
    used = yaml.safe_load(small.record.read_text())["training"]["texture_radius"]
    plain = scene_run
    off = yaml.safe_load(plain.record.read_text())["training"]["texture_radius"]
    assert (used, off) == (4, 0)


def test_all_nodata_scene_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.tif"
    write_image(
        path,
        np.zeros((2, 40, 40), np.uint16),
        transform=sample_transform(),
        crs=SAMPLE_CRS,
        nodata=0,
    )
    with pytest.raises(InputError, match="every pixel is nodata"):
        run_scene(path, tmp_path / "out", config())
    assert not (tmp_path / "out").exists()


def test_scene_smaller_than_a_tile(tmp_path: Path) -> None:
    image, _ = make_scene(rows=40, cols=50, bands=3, seed=1)
    path = tmp_path / "tiny.tif"
    write_image(
        path, np.round(image * 255).astype(np.uint8), transform=sample_transform(), crs=SAMPLE_CRS
    )
    result = run_scene(path, tmp_path / "out", Config())
    assert result.n_tiles == 1
    assert read_labels(result.labels).shape == (40, 50)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("relative", "bands"),
    [
        ("landsat7_rasterio_rgb/RGB.byte.tif", ()),
        ("sentinel2_l1c_19UDP_160m_nodata/S2_19UDP_20170729_13band_160m_uint16.tif", ()),
        ("landsat8_gulfcoast_30m/LC80200392015216_B1-B7_30m_uint16.tif", (4, 3, 2)),
    ],
)
def test_real_scenes_keep_grid_and_nodata(relative: str, bands: tuple, tmp_path: Path) -> None:
    source = shared(relative)
    settings = {
        "segment": {"max_iterations": 6, "n_crops": 4, "crop_size": 128},
        "input": {"bands": list(bands)},
        "tiling": {"tile_size": 256},
    }
    result = run_scene(source, tmp_path / "out", resolve_config(values=settings))
    with rasterio.open(source) as src, rasterio.open(result.labels) as got:
        assert (got.width, got.height, got.crs, got.transform) == (
            src.width,
            src.height,
            src.crs,
            src.transform,
        )
        nodata = src.dataset_mask() == 0
        labels = got.read(1)
    np.testing.assert_array_equal(labels == 0, nodata)
    assert result.n_classes >= 2


@pytest.mark.parametrize("mode", ["scene", "tile"])
def test_snapshots_write_a_training_animation(scene, tmp_path: Path, mode: str) -> None:
    path, _ = scene
    steps = [1, 2, 4, 8, 16, 32, 64]  # beyond the 24 iterations: "stopped at"
    settings = [f"segment.mode={mode}", f"output.snapshots={steps}", "tiling.overlap=32"]
    result = run_scene(path, tmp_path / "out", config(*settings))
    with Image.open(tmp_path / "out" / "training.gif") as gif:
        assert gif.n_frames == len(steps)
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB")))
    assert not np.array_equal(frames[0], frames[3])  # the labels change while training
    assert "training.gif" in yaml.safe_load(result.record.read_text())["outputs"]
