from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from geoseg.errors import ConfigError, RasterReadError
from geoseg.io.raster_read import SceneReader
from geoseg.io.raster_write import write_image
from geoseg.normalize import percentile_bounds
from tests.helpers import shared

GRID = Affine(10.0, 0.0, 300000.0, 0.0, -10.0, 5000000.0)
UTM = CRS.from_epsg(32619)


@pytest.fixture
def scene(tmp_path: Path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(0)
    data = rng.integers(1, 5000, (3, 300, 280)).astype(np.uint16)
    data[:, :40, :] = 0  # nodata strip
    path = tmp_path / "scene.tif"
    write_image(path, data, transform=GRID, crs=UTM, nodata=0)
    return path, data


def test_window_read_matches_the_array(scene: tuple[Path, np.ndarray]) -> None:
    path, data = scene
    with SceneReader(path) as reader:
        assert reader.info.shape == (3, 300, 280)
        assert reader.info.crs == UTM
        assert reader.info.transform == GRID
        assert reader.info.nodata == 0
        got, valid = reader.read(Window(30, 20, 100, 50))
    np.testing.assert_array_equal(got, data[:, 20:70, 30:130])
    assert not valid[:20].any()
    assert valid[20:].all()


def test_band_selection_keeps_order(scene: tuple[Path, np.ndarray]) -> None:
    path, data = scene
    with SceneReader(path, bands=[3, 1]) as reader:
        got, _ = reader.read(Window(0, 100, 10, 10))
        assert reader.info.bands == (3, 1)
    np.testing.assert_array_equal(got, data[[2, 0], 100:110, 0:10])


def test_missing_band_says_which_exist(scene: tuple[Path, np.ndarray]) -> None:
    with pytest.raises(ConfigError, match=r"input.bands=\[4, 3, 2\]: .* has bands 1..3; \[4\]"):
        SceneReader(scene[0], bands=[4, 3, 2])


def test_nodata_from_config_overrides_file(scene: tuple[Path, np.ndarray]) -> None:
    path, data = scene
    value = int(data[0, 100, 100])
    with SceneReader(path, nodata=value) as reader:
        _, valid = reader.read(Window(0, 0, 280, 300))
    expected = (data != value).any(axis=0)  # nodata only where every band has it
    np.testing.assert_array_equal(valid, expected)
    assert valid[:40].all()  # 0 is data now


def test_internal_mask_and_nan(tmp_path: Path) -> None:
    data = np.ones((2, 8, 8), np.float32)
    data[1, 0, 0] = np.nan
    path = tmp_path / "masked.tif"
    profile = {
        "driver": "GTiff",
        "width": 8,
        "height": 8,
        "count": 2,
        "dtype": "float32",
        "transform": GRID,
        "crs": UTM,
    }
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        mask = np.full((8, 8), 255, np.uint8)
        mask[7, :] = 0
        dst.write_mask(mask)
    with SceneReader(path) as reader:
        _, valid = reader.read(Window(0, 0, 8, 8))
    assert not valid[7].any()
    assert not valid[0, 0]
    assert valid.sum() == 64 - 8 - 1


def test_decimated_read_is_small_and_representative(scene: tuple[Path, np.ndarray]) -> None:
    path, data = scene
    with SceneReader(path) as reader:
        small, valid = reader.read_decimated(max_pixels=5000)
    assert small.shape[1] * small.shape[2] <= 5000
    assert valid.mean() == pytest.approx(260 / 300, abs=0.03)
    low, high = percentile_bounds(small, valid)
    full_low, full_high = percentile_bounds(data, (data > 0).all(axis=0))
    # within 1 % of the data range (values are uniform on 1..5000)
    np.testing.assert_allclose(low, full_low, atol=50)
    np.testing.assert_allclose(high, full_high, atol=50)


def test_truncated_file_is_a_read_error(scene: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    broken = tmp_path / "broken.tif"
    broken.write_bytes(scene[0].read_bytes()[: scene[0].stat().st_size // 2])
    with pytest.raises(RasterReadError, match=r"broken\.tif"), SceneReader(broken) as reader:
        reader.read(Window(0, 0, 280, 300))


def test_sentinel2_13_bands_nodata_fraction() -> None:
    path = shared("sentinel2_l1c_19UDP_160m_nodata/S2_19UDP_20170729_13band_160m_uint16.tif")
    with SceneReader(path) as reader:
        assert reader.info.count == 13
        _, valid = reader.read_decimated(max_pixels=100_000)
        _, full = reader.read(Window(0, 0, reader.info.width, reader.info.height))
    assert full.mean() == pytest.approx(0.63, abs=0.02)  # 37 % outside the swath
    assert valid.mean() == pytest.approx(full.mean(), abs=0.02)


def test_landsat7_collar_from_nodata() -> None:
    with SceneReader(shared("landsat7_rasterio_rgb/RGB.byte.tif")) as reader:
        _, valid = reader.read_decimated(max_pixels=200_000)
    assert 1 - valid.mean() == pytest.approx(0.32, abs=0.03)


def test_label_writer_makes_a_cog_with_classes_numbered_by_area(tmp_path: Path) -> None:
    from geoseg.io.labels import LabelWriter
    from geoseg.types import SceneInfo

    info = SceneInfo(
        height=1100, width=900, bands=(1,), dtype="uint16", transform=GRID, crs=UTM, nodata=0
    )
    target = tmp_path / "labels.tif"
    with LabelWriter(target, info) as writer:
        writer.write(Window(0, 0, 500, 400), np.full((400, 500), 9))
        writer.write(Window(0, 500, 10, 10), np.full((10, 10), 3))
    assert writer.classes == [9, 3]
    assert [p.name for p in tmp_path.iterdir()] == ["labels.tif"]
    with rasterio.open(target) as got:
        assert got.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert got.overviews(1)[0] == 2
        assert got.dtypes[0] == "uint8"
        assert got.nodata == 0
        assert got.crs == UTM
        data = got.read(1)
    assert (data[:400, :500] == 1).all()
    assert (data[500:510, :10] == 2).all()
    assert (data == 0).sum() == data.size - 400 * 500 - 100  # never written: nodata


def test_label_writer_uses_uint16_past_255_classes(tmp_path: Path) -> None:
    from geoseg.io.labels import LabelWriter
    from geoseg.types import SceneInfo

    info = SceneInfo(
        height=20, width=20, bands=(1,), dtype="uint8", transform=GRID, crs=UTM, nodata=0
    )
    ids = np.arange(1000, 1400).reshape(20, 20)
    with LabelWriter(tmp_path / "labels.tif", info) as writer:
        writer.write(Window(0, 0, 20, 20), ids)
    with rasterio.open(tmp_path / "labels.tif") as got:
        assert got.dtypes[0] == "uint16"
        data = got.read(1)
    assert sorted(data.ravel().tolist()) == list(range(1, 401))
    assert (np.array(writer.classes)[data - 1] == ids).all()


def test_label_writer_leaves_nothing_on_error(tmp_path: Path) -> None:
    from geoseg.io.labels import LabelWriter
    from geoseg.types import SceneInfo

    info = SceneInfo(
        height=10, width=10, bands=(1,), dtype="uint8", transform=GRID, crs=UTM, nodata=0
    )

    def interrupted() -> None:
        with LabelWriter(tmp_path / "labels.tif", info) as writer:
            writer.write(Window(0, 0, 5, 5), np.ones((5, 5), np.int32))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("landsat7_rasterio_rgb/RGB.byte.tif", (1, 2, 3)),  # colour interpretation
        ("sentinel2_l1c_18SVG_10m/S2_18SVG_20160112_B02-B03-B04-B08_10m_uint16.tif", (3, 2, 1)),
        ("landsat8_gulfcoast_30m/LC80200392015216_B1-B7_30m_uint16.tif", (4, 3, 2)),
        ("sentinel2_l1c_19UDP_160m_nodata/S2_19UDP_20170729_13band_160m_uint16.tif", None),
    ],
)
def test_colour_bands_from_interpretation_or_descriptions(relative: str, expected) -> None:
    with SceneReader(shared(relative)) as reader:
        assert reader.colour_bands() == expected
