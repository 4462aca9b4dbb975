"""Scenes read over HTTP: a real server on loopback (``tests/range_server.py``, byte
ranges as COG hosts serve them) and GDAL's ``/vsicurl/`` reads through ``geoseg``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.shutil import copy as rio_copy

from tests.conftest import FAST, shared
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


def test_labels_from_a_url_equal_the_local_file(served, tmp_path: Path) -> None:
    """Byte for byte, and the run streams: each block fetched about once."""
    server, root = served
    local = geoseg("run", str(root / "rgb.tif"), "-o", str(tmp_path / "local"), "-q", *SET_FAST)
    assert local.returncode == 0, local.stderr
    before = server.bytes_sent
    url = f"{server.url}/rgb.tif"
    remote = geoseg("run", url, "-o", str(tmp_path / "remote"), "-q", *SET_FAST)
    assert remote.returncode == 0, remote.stderr
    sent = server.bytes_sent - before
    assert sent <= 1.5 * (root / "rgb.tif").stat().st_size
    labels = [(tmp_path / out / "labels.tif").read_bytes() for out in ("local", "remote")]
    assert labels[0] == labels[1]
    assert (tmp_path / "remote" / "run.yaml").read_text().count(url) >= 1


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
