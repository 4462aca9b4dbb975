"""Scenes read over HTTP: a real server on loopback (``tests/range_server.py``, byte
ranges as COG hosts serve them) and GDAL's ``/vsicurl/`` reads through ``geoseg``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
import yaml
from rasterio.shutil import copy as rio_copy

from tests.helpers import FAST, shared
from tests.range_server import RangeServer, serve

SET_FAST = [arg for line in FAST for arg in ("--set", line)] + ["--max-iterations", "3"]


def geoseg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "geoseg", *args], capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RangeServer, Path]]:
    """A COG (with overviews) made from ``../shared/data``, served on 127.0.0.1."""
    root = tmp_path_factory.mktemp("served")
    source = shared("landsat7_rasterio_rgb/RGB.byte.tif")
    rio_copy(source, root / "rgb.tif", driver="COG", compress="deflate", blocksize=256)
    (root / "notes.tif").write_text("not a raster")
    with serve(root) as server:
        yield server, root


@pytest.mark.slow  # geoseg in a process of its own, over the network
@pytest.mark.parametrize("refine", [False, True])
def test_labels_from_a_url_equal_the_local_file(served, tmp_path: Path, refine: bool) -> None:
    """Byte for byte, polygons and their band statistics too, and the run streams:
    each block fetched about once (the vote and the polygons' statistics read the
    run's local copy of what the prediction fetched)."""
    server, root = served
    # GDAL's cache of fetched ranges (16 MB by default) would hold this small file
    small_cache = "runtime.gdal_options={CPL_VSIL_CURL_CACHE_SIZE: '131072'}"
    fast = [*SET_FAST, "--set", f"stitch.refine={str(refine).lower()}", "--set", small_cache]
    local = geoseg("run", str(root / "rgb.tif"), "-o", str(tmp_path / "local"), "-q", *fast)
    assert local.returncode == 0, local.stderr
    before = server.bytes_sent
    url = f"{server.url}/rgb.tif"
    remote = geoseg("run", url, "-o", str(tmp_path / "remote"), "-q", *fast)
    assert remote.returncode == 0, remote.stderr
    sent = server.bytes_sent - before
    assert sent <= 1.2 * (root / "rgb.tif").stat().st_size
    labels = [(tmp_path / out / "labels.tif").read_bytes() for out in ("local", "remote")]
    assert labels[0] == labels[1]
    layers = [
        pyogrio.read_dataframe(tmp_path / out / "segments.gpkg", layer="segments")
        for out in ("local", "remote")
    ]
    assert len(layers[0]) > 10
    assert "b1_mean" in layers[0]
    assert layers[0].equals(layers[1])
    assert not (tmp_path / "remote" / ".geoseg-run").exists()  # the copy went with it
    record = yaml.safe_load((tmp_path / "remote" / "run.yaml").read_text())
    assert record["scene"] == url
    assert record["network"]["downloaded_bytes"] == sent  # GDAL's count, the server's


@pytest.mark.slow  # geoseg in a process of its own, over the network
def test_url_without_an_extension_is_read(served) -> None:
    """Object stores and APIs serve rasters under names without an extension."""
    server, root = served
    (root / "rgb_noext").write_bytes((root / "rgb.tif").read_bytes())
    done = geoseg("plan", f"{server.url}/rgb_noext", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["width"] == 791


@pytest.mark.slow
def test_plan_of_a_url_reads_a_small_share(served) -> None:
    """A 6000x6000 px COG (a mosaic of the Landsat scene): the plan reads the overviews,
    the training crops and a tile, a small share of the file."""
    server, root = served
    mosaic = root / "mosaic.tif"
    if not mosaic.exists():
        with rasterio.open(root / "rgb.tif") as src:
            data = src.read()
        tiles = np.tile(data, (1, 9, 8))[:, :6000, :6000]
        with rasterio.MemoryFile() as memory:
            profile = {"driver": "GTiff", "count": 3, "dtype": "uint8", "width": 6000,
                       "height": 6000, "crs": src.crs, "transform": src.transform}  # fmt: skip
            with memory.open(**profile) as tmp:
                tmp.write(tiles)
                rio_copy(tmp, mosaic, driver="COG", compress="deflate", blocksize=256)
    before = server.bytes_sent
    done = geoseg("plan", f"{server.url}/mosaic.tif", "--json")
    assert done.returncode == 0, done.stderr
    assert server.bytes_sent - before < 0.25 * mosaic.stat().st_size


@pytest.mark.slow  # geoseg in a process of its own, over the network
@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("nope.tif", "not found (HTTP 404)"),
        ("403/rgb.tif", "access denied (HTTP 403)"),
        ("notes.tif", "cannot be read as a raster"),
    ],
)
def test_remote_errors_are_one_line(served, tmp_path: Path, path: str, says: str) -> None:
    server, _ = served
    done = geoseg("run", f"{server.url}/{path}", "-o", str(tmp_path / "out"))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1
    assert len(lines) == 1, done.stderr
    assert says in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # geoseg in a process of its own, over the network
def test_unreachable_host_is_one_line(tmp_path: Path) -> None:
    with serve(tmp_path) as server:
        url = f"{server.url}/gone.tif"  # the port is free again once the server stops
    no_retry = "runtime.gdal_options={GDAL_HTTP_MAX_RETRY: '0'}"
    done = geoseg("run", url, "-o", str(tmp_path / "out"), "--set", no_retry)
    assert done.returncode == 1
    assert "cannot reach the host" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_default_output_folder_of_a_url_is_here(served, tmp_path: Path) -> None:
    from geoseg.config import Config, output_dir

    server, root = served
    assert output_dir(f"{server.url}/rgb.tif?x=1", Config()) == Path("rgb_geoseg")
    # (not opened here: GDAL would wait on this process's own server, holding the GIL)
    with rasterio.open(root / "rgb.tif") as src:
        assert src.overviews(1)  # the run's statistics come from the COG's overviews


def _stac_item(root: Path) -> Path:
    """A static STAC item over single-band COGs of the Sentinel-2 10 m scene (a 512 px
    window): B02-B04 at 10 m, B08 resampled to 20 m, with eo:bands common names."""
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    source = shared("sentinel2_l1c_18SVG_10m/S2_18SVG_20160112_B02-B03-B04-B08_10m_uint16.tif")
    with rasterio.open(source) as src:
        window = Window(700, 700, 512, 512)
        transform = src.window_transform(window)
        profile = {"driver": "GTiff", "count": 1, "dtype": "uint16", "crs": src.crs, "nodata": 0}
        bands = {}
        for band, (name, common) in enumerate(
            [("B02", "blue"), ("B03", "green"), ("B04", "red"), ("B08", "nir")], start=1
        ):
            coarse = name == "B08"
            size = 256 if coarse else 512
            data = src.read(band, window=window, out_shape=(size, size),
                            resampling=Resampling.average)  # fmt: skip
            scale = 2 if coarse else 1
            grid = transform * transform.scale(scale) if coarse else transform
            with (
                rasterio.MemoryFile() as memory,
                memory.open(**profile, width=size, height=size, transform=grid) as tmp,
            ):
                tmp.write(data, 1)
                rio_copy(tmp, root / f"{name}.tif", driver="COG", compress="deflate")
            bands[name] = common
    assets = {
        name: {"href": f"./{name}.tif", "type": "image/tiff; application=geotiff; "
               "profile=cloud-optimized", "roles": ["data"],
               "eo:bands": [{"name": name, "common_name": common}]}
        for name, common in bands.items()
    }  # fmt: skip
    left, top = transform.c, transform.f
    bbox = [left, top - 5120, left + 5120, top]
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": ["https://stac-extensions.github.io/eo/v1.1.0/schema.json"],
        "id": "S2_18SVG_20160112_test",
        "geometry": {"type": "Polygon", "coordinates": [[[bbox[0], bbox[1]], [bbox[2], bbox[1]],
                     [bbox[2], bbox[3]], [bbox[0], bbox[3]], [bbox[0], bbox[1]]]]},
        "bbox": bbox,
        "properties": {"datetime": "2016-01-12T00:00:00Z"},
        "links": [],
        "assets": assets,
    }  # fmt: skip
    path = root / "item.json"
    path.write_text(json.dumps(item))
    return path


@pytest.fixture(scope="module")
def stac(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RangeServer, Path]]:
    root = tmp_path_factory.mktemp("stac")
    _stac_item(root)
    with serve(root) as server:
        yield server, root


@pytest.mark.slow  # geoseg in a process of its own, over the network
def test_stac_item_over_http_stacks_assets_on_the_finest_grid(stac, tmp_path: Path) -> None:
    server, _ = stac
    url = f"{server.url}/item.json"
    assets = "input.assets=[red, green, blue, B08]"
    done = geoseg("run", url, "-o", str(tmp_path / "out"), "-q", "--set", assets, *SET_FAST)
    assert done.returncode == 0, done.stderr
    with rasterio.open(tmp_path / "out" / "labels.tif") as labels:
        assert (labels.width, labels.height, labels.transform.a) == (512, 512, 10.0)
    record = yaml.safe_load((tmp_path / "out" / "run.yaml").read_text())
    assert record["grid"]["stac_item"] == "S2_18SVG_20160112_test"
    assert record["grid"]["stac_assets"]["B08"] == f"{server.url}/B08.tif"
    assert list(record["grid"]["stac_assets"]) == ["red", "green", "blue", "B08"]


@pytest.mark.slow  # geoseg in a process of its own, over the network
def test_stac_item_errors_name_the_assets(stac, tmp_path: Path) -> None:
    _, root = stac
    missing = geoseg("run", str(root / "item.json"), "-o", str(tmp_path / "a"),
                     "--set", "input.assets=[swir16]")  # fmt: skip
    assert missing.returncode == 1
    assert "no asset 'swir16'" in missing.stderr
    assert "B02, B03, B04, B08" in missing.stderr
    unnamed = geoseg("run", str(root / "item.json"), "-o", str(tmp_path / "b"))
    assert unnamed.returncode == 1
    assert "needs input.assets" in unnamed.stderr
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()


@pytest.mark.slow  # geoseg in a process of its own, over the network
def test_stac_assets_in_mixed_crs_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "item"
    root.mkdir()
    item_path = _stac_item(root)
    with rasterio.open(root / "B03.tif") as src:
        data, profile = src.read(), src.profile
    profile.update(crs="EPSG:32617")  # another UTM zone
    with rasterio.open(root / "B03.tif", "w", **profile) as out:
        out.write(data)
    done = geoseg("run", str(item_path), "-o", str(tmp_path / "out"),
                  "--set", "input.assets=[B02, B03]")  # fmt: skip
    assert done.returncode == 1
    assert "different CRSs" in done.stderr
    assert "EPSG:32617" in done.stderr


@pytest.mark.slow  # geoseg in a process of its own, over the network
def test_batch_of_urls_isolates_a_failing_scene(served, tmp_path: Path) -> None:
    """URL entries are taken as they are (no glob), outputs go beside the batch file, a
    missing object fails alone and the run of the other resumes as complete."""
    server, _ = served
    batch = tmp_path / "batch.yaml"
    scenes = [f"{server.url}/rgb.tif", f"{server.url}/gone.tif"]
    config = {"scenes": scenes, "segment": {"max_iterations": 3}}
    config["tiling"] = {"tile_size": 256, "overlap": 32}
    batch.write_text(yaml.safe_dump(config))
    first = geoseg("batch", str(batch), "-q")
    assert first.returncode == 1  # one scene failed
    rows = (tmp_path / "batch_summary.csv").read_text().splitlines()
    assert rows[1].split(",")[:2] == [scenes[0], "done"]
    assert rows[2].split(",")[1] == "failed"
    assert "HTTP 404" in rows[2]
    assert (tmp_path / "rgb_geoseg" / "labels.tif").exists()
    again = geoseg("batch", str(batch), "-q")
    rows = (tmp_path / "batch_summary.csv").read_text().splitlines()
    assert again.returncode == 1
    assert rows[1].split(",")[1] == "skipped"
