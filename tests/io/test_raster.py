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
from geoseg.io.raster import atomic_path, read_image, write_image

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

    from geoseg.io.raster import drop_block_cache, gdal_cache

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
