from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image
from rasterio.crs import CRS

from geoseg.errors import OutputError, RasterReadError
from geoseg.io.labels import write_labels
from geoseg.io.output import atomic_path
from geoseg.io.raster_read import read_image
from geoseg.io.raster_write import write_image

UTM = CRS.from_epsg(32618)
GRID = Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4000000.0)


def test_geotiff_nodata_becomes_mask(tmp_path: Path) -> None:
    data = np.arange(2 * 6 * 5, dtype=np.uint16).reshape(2, 6, 5) + 1
    data[:, 0, :] = 0
    path = tmp_path / "scene.tif"
    write_image(path, data, transform=GRID, crs=UTM, nodata=0)
    image = read_image(path)
    np.testing.assert_array_equal(image.data, data)
    assert not image.valid[0].any()
    assert image.valid[1:].all()
    assert image.crs == UTM
    assert image.transform == GRID


def test_float_nan_is_nodata(tmp_path: Path) -> None:
    data = np.ones((1, 4, 4), np.float32)
    data[0, 2, 2] = np.nan
    path = tmp_path / "f.tif"
    write_image(path, data, transform=GRID, crs=UTM)
    assert read_image(path).valid.sum() == 15


def test_alpha_band_is_mask_not_band(tmp_path: Path) -> None:
    rgba = np.full((4, 5, 4), 100, np.uint8)
    rgba[:2, :, 3] = 0
    rgba[2:, :, 3] = 255
    path = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(path)
    image = read_image(path)
    assert image.data.shape == (3, 4, 5)
    assert image.valid.sum() == 10
    assert image.crs is None


def test_palette_png_is_expanded(tmp_path: Path) -> None:
    picture = Image.new("P", (3, 2))
    picture.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    picture.putpixel((1, 0), 1)
    path = tmp_path / "p.png"
    picture.save(path)
    image = read_image(path)
    assert image.data.shape == (3, 2, 3)
    assert image.data[:, 0, 0].tolist() == [255, 0, 0]
    assert image.data[:, 0, 1].tolist() == [0, 0, 255]


def test_labels_pick_smallest_dtype(tmp_path: Path) -> None:
    small, big = tmp_path / "small.tif", tmp_path / "big.tif"
    write_labels(small, np.array([[0, 255]]), transform=GRID, crs=UTM, nodata=0)
    write_labels(big, np.array([[0, 256]]), transform=GRID, crs=UTM, nodata=0)
    with rasterio.open(small) as a, rasterio.open(big) as b:
        assert (a.dtypes[0], b.dtypes[0]) == ("uint8", "uint16")
        assert a.nodata == 0
        assert a.crs == UTM
        assert a.transform == GRID


def test_read_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(RasterReadError, match=r"gone\.tif: no such file"):
        read_image(tmp_path / "gone.tif")
    with pytest.raises(RasterReadError, match="is a directory"):
        read_image(tmp_path)


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.tif"

    def interrupted_write() -> None:
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        interrupted_write()
    assert list(tmp_path.iterdir()) == []


def test_unwritable_directory(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        probe = locked / "probe"
        try:
            probe.write_text("x")
        except PermissionError:
            pass
        else:  # root ignores permissions: nothing to test
            pytest.skip("running with permission override (root)")
        with pytest.raises(OutputError, match="not writable"):
            write_labels(locked / "l.tif", np.zeros((2, 2), int))
    finally:
        locked.chmod(0o700)


def test_dropping_the_block_cache_keeps_its_limit(tmp_path: Path) -> None:
    from rasterio.env import get_gdal_config

    from geoseg.io.gdal_env import drop_block_cache, gdal_cache

    path = tmp_path / "scene.tif"
    data = np.arange(3 * 64 * 64, dtype=np.uint16).reshape(3, 64, 64)
    write_image(path, data, transform=GRID, crs=UTM)
    outside = get_gdal_config("GDAL_CACHEMAX")
    with gdal_cache(64), rasterio.open(path) as src:
        src.read(out_shape=(3, 16, 16))
        drop_block_cache()
        assert get_gdal_config("GDAL_CACHEMAX") == 64 * 2**20
        np.testing.assert_array_equal(src.read(), data)  # reads still work
    drop_block_cache()  # outside any Env: GDAL's own limit is kept too
    assert get_gdal_config("GDAL_CACHEMAX") == outside > 1


def test_network_limits_come_from_the_options_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """geoseg's defaults, an environment variable over them, runtime.gdal_options over
    both; a value GDAL would read as 0 (no timeout) is refused."""
    from geoseg.errors import ConfigError
    from geoseg.io.gdal_env import REMOTE_OPTIONS, network_limits, remote_options

    for key in ("GDAL_HTTP_LOW_SPEED_TIME", "GDAL_HTTP_TIMEOUT", "GDAL_HTTP_MAX_RETRY"):
        monkeypatch.delenv(key, raising=False)
    limits = network_limits()
    assert (limits.connect_s, limits.read_s, limits.total_s, limits.retries) == (10, 30, None, 3)
    monkeypatch.setenv("GDAL_HTTP_LOW_SPEED_TIME", "90")
    monkeypatch.setenv("GDAL_HTTP_TIMEOUT", "600")
    assert "GDAL_HTTP_LOW_SPEED_TIME" not in remote_options()  # GDAL reads the variable
    assert network_limits().read_s == 90
    assert network_limits().total_s == 600
    limits = network_limits({"GDAL_HTTP_LOW_SPEED_TIME": "5", "GDAL_HTTP_MAX_RETRY": "0"})
    assert (limits.read_s, limits.retries) == (5, 0)
    assert network_limits({"GDAL_HTTP_LOW_SPEED_TIME": "0"}).read_s is None  # 0: none
    with pytest.raises(ConfigError, match=r"runtime.gdal_options GDAL_HTTP_TIMEOUT='soon'"):
        remote_options({"GDAL_HTTP_TIMEOUT": "soon"})
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "-1")
    with pytest.raises(ConfigError, match=r"environment variable GDAL_HTTP_MAX_RETRY='-1'"):
        remote_options()
    assert REMOTE_OPTIONS["GDAL_HTTP_CONNECTTIMEOUT"] == "10"


def test_a_truncated_file_names_gdals_error(tmp_path: Path) -> None:
    """rasterio says "Read failed. See previous exception for details."; the message
    gives the exception it means."""
    from rasterio.windows import Window

    from geoseg.io.raster_read import SceneReader

    path = tmp_path / "scene.tif"
    data = np.random.default_rng(0).integers(0, 255, (3, 512, 512)).astype(np.uint8)
    profile = {"driver": "GTiff", "width": 512, "height": 512, "count": 3, "dtype": "uint8",
               "tiled": True, "blockxsize": 256, "blockysize": 256}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    broken = tmp_path / "broken.tif"
    broken.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(RasterReadError) as caught, SceneReader(broken) as reader:
        reader.read(Window(0, 0, 512, 512))
    message = str(caught.value)
    assert "got " in message
    assert "expected" in message
    assert "previous exception" not in message
    assert "4294967295" not in message
