"""The ground scale (``segment.scale``): land covers made of two textures stay one class.

The synthetic scene has three covers with known extent: a forest of light crowns over
dark shade (blobs of 2-3 m, half of each), a flat field and flat water. Per pixel, the
forest is two colours; at a ground scale of 10 m it is one cover.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import rasterio
import yaml
from scipy import ndimage
from sklearn.cluster import KMeans
from typer.testing import CliRunner

from geoseg.cli import app
from geoseg.config import resolve_config
from geoseg.errors import ConfigError
from geoseg.evaluate import adjusted_rand_index
from geoseg.io.raster_write import write_image
from geoseg.run import run_scene
from geoseg.sample import SAMPLE_CRS, sample_transform
from geoseg.segment import PRESETS, segment_image
from geoseg.segment.spatial_merge import mix_merge_table

SCALED = PRESETS["default"].replace(scale=10.0)
SHADE, CROWN = (0.10, 0.18, 0.08), (0.35, 0.55, 0.25)
FIELD, WATER = (0.55, 0.50, 0.35), (0.05, 0.10, 0.20)


def covers(
    side: int, pixel: float, seed: int = 0
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """``(3, side, side)`` image of ``pixel`` metres and its covers (0 forest, 1 field, 2 water)."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((side, side), np.int64)
    truth[:, side // 2 :] = 1
    truth[int(side * 0.8) :] = 2
    lit = ndimage.gaussian_filter(rng.normal(size=(side, side)), 1.0 / pixel) > 0
    image = np.where(lit, np.array(CROWN)[:, None, None], np.array(SHADE)[:, None, None])
    for cover, colour in ((1, FIELD), (2, WATER)):
        image[:, truth == cover] = np.array(colour)[:, None]
    image = image + rng.normal(0, 0.02, image.shape)
    return np.clip(image, 0, 1).astype(np.float32), truth


def coarser(image: npt.NDArray[np.float32], truth: npt.NDArray[np.int64], f: int):
    """The same ground, ``f`` times coarser pixels: ``f x f`` blocks averaged."""
    b, h, w = image.shape
    small = image.reshape(b, h // f, f, w // f, f).mean(axis=(2, 4))
    return small.astype(np.float32), truth[f // 2 :: f, f // 2 :: f]


def _ari(labels: npt.NDArray[np.integer], truth: npt.NDArray[np.int64]) -> float:
    return adjusted_rand_index(labels.ravel(), truth.ravel() + 1)  # covers 0..2 -> 1..3


def test_per_pixel_methods_split_the_forest() -> None:
    """The scene is a fair test: the forest's two colours are further apart than a
    per-pixel clustering can ignore, and without the ground scale `default` splits it."""
    image, truth = covers(240, 0.3)
    pixels = image.reshape(3, -1).T
    kmeans = KMeans(n_clusters=3, n_init=3, random_state=0).fit_predict(pixels)
    assert _ari(kmeans + 1, truth) < 0.9
    plain = segment_image(image, PRESETS["default"].for_pixel_size(0.3), seed=0)
    assert _ari(plain.labels, truth) < 0.9


@pytest.mark.parametrize(("pixel", "factor"), [(0.3, 1), (3.0, 10)])
def test_a_ground_scale_gives_one_class_per_cover(pixel: float, factor: int) -> None:
    """`default` with a scale of 10 m: at 0.3 m the crowns and their shade are one
    class; with pixels 10x coarser (the crowns below a pixel) the covers still come out."""
    image, truth = covers(240 * factor, pixel / factor)
    if factor > 1:
        image, truth = coarser(image, truth, factor)
    params = SCALED.for_pixel_size(pixel)
    result = segment_image(image, params, seed=0)
    assert _ari(result.labels, truth) >= 0.9
    assert np.unique(result.labels).size == 3


def test_scale_in_pixels_follows_the_pixel_size() -> None:
    params = SCALED
    assert params.for_pixel_size(0.25).mix_radius == 20
    assert params.for_pixel_size(1.0).mix_radius == 5
    assert params.for_pixel_size(30.0).mix_radius == 0  # coarser than the scale: off
    assert params.for_pixel_size(None) == params  # no CRS: pixels as set
    assert PRESETS["default"].for_pixel_size(0.1).mix_radius == 0  # off by default


@pytest.mark.parametrize("bad", [-1.0, float("nan"), 1e6])
def test_scale_out_of_bounds_is_one_line(bad: float) -> None:
    with pytest.raises(ConfigError, match=r"segment\.scale=") as err:
        PRESETS["default"].replace(scale=bad)
    assert "\n" not in str(err.value)


def test_mixed_class_joins_the_cover_it_is_part_of() -> None:
    labels = np.zeros((1, 60, 60), np.int64)
    labels[0, :, 30:] = 1
    dots = np.zeros((60, 30), bool)
    dots[::3, ::3] = True  # class 2: single pixels inside class 1
    labels[0, :, 30:][dots] = 2
    assert mix_merge_table(labels, 4).tolist() == [0, 1, 1]
    assert mix_merge_table(labels, 0).tolist() == [0, 1, 2]  # off
    wide = labels.copy()
    wide[0, 40:, 30:] = 2  # now class 2 is also a patch wider than the window
    assert mix_merge_table(wide, 4).tolist() == [0, 1, 2]


@pytest.mark.slow
def test_a_run_at_a_ground_scale_is_the_same_at_any_tile_size(tmp_path: Path) -> None:
    """`geoseg run` on a georeferenced 0.3 m scene with `--scale 10` (segment.scale):
    one class per cover, labels identical at tile sizes 256 and 1024, and run.yaml
    records the scale in pixels it used."""
    image, truth = covers(400, 0.3)
    path = tmp_path / "forest.tif"
    write_image(path, (image * 10000 + 1).astype(np.uint16), transform=sample_transform(
        pixel_size=0.3), crs=SAMPLE_CRS, nodata=0)  # fmt: skip
    runs = []
    for tile in (256, 1024):
        config = resolve_config(overrides=["segment.scale=10", f"tiling.tile_size={tile}"])
        runs.append(run_scene(path, tmp_path / f"t{tile}", config))
    labels = [rasterio.open(run.labels).read(1) for run in runs]
    np.testing.assert_array_equal(*labels)
    assert _ari(labels[0], truth) >= 0.9
    assert yaml.safe_load(runs[0].record.read_text())["training"]["mix_radius"] == 17


@pytest.mark.parametrize("bad", ["-5", "nan", "20000"])
def test_cli_scale_out_of_bounds_is_one_line(bad: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["run", str(tmp_path / "scene.tif"), "--scale", bad])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "segment.scale" in lines[0]
    assert not any(tmp_path.iterdir())  # nothing written
