"""Reading a STAC item: its JSON fetched with bounded waits and retries, its hrefs
resolved (relative, ``file://``), and one clear error per way it goes wrong."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from geoseg.errors import RasterReadError
from geoseg.io.gdal_env import NetworkLimits
from geoseg.io.stac import _fetch, _local_path, _read_item
from tests.range_server import RangeServer, serve

QUICK = NetworkLimits(connect_s=2, read_s=1, total_s=None, retries=2, retry_delay_s=0.05)

ITEM = {"type": "Feature", "stac_version": "1.0.0", "id": "a", "geometry": None,
        "properties": {"datetime": "2020-01-01T00:00:00Z"}, "links": [],
        "assets": {"B04": {"href": "./B04.tif"},
                   "B08": {"href": "file:///data/my%20B08.tif"}}}  # fmt: skip


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RangeServer]:
    (tmp_path / "item.json").write_text(json.dumps(ITEM))
    with serve(tmp_path) as running:
        yield running


def test_an_item_over_http_resolves_relative_hrefs_against_its_url(server: RangeServer) -> None:
    item = _read_item(f"{server.url}/item.json", QUICK)
    assert item.assets["B04"].get_absolute_href() == f"{server.url}/B04.tif"


def test_a_local_item_and_file_urls(tmp_path: Path) -> None:
    (tmp_path / "item.json").write_text(json.dumps(ITEM))
    for where in (str(tmp_path / "item.json"), (tmp_path / "item.json").as_uri()):
        item = _read_item(where, QUICK)
        assert item.assets["B04"].get_absolute_href() == str(tmp_path / "B04.tif")
    assert _local_path("file:///data/my%20B08.tif") == "/data/my B08.tif"
    assert _local_path("file://localhost/data/a.tif") == "/data/a.tif"
    with pytest.raises(RasterReadError, match="another host"):
        _local_path("file://server/share/a.tif")


def test_not_an_item_is_said(tmp_path: Path) -> None:
    (tmp_path / "collection.json").write_text(json.dumps({"type": "Collection"}))
    with pytest.raises(RasterReadError, match="its type is 'Collection'"):
        _read_item(str(tmp_path / "collection.json"), QUICK)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(RasterReadError, match="not JSON"):
        _read_item(str(tmp_path / "bad.json"), QUICK)
    with pytest.raises(RasterReadError, match="no such file"):
        _read_item(str(tmp_path / "gone.json"), QUICK)


def test_a_server_that_never_answers_is_given_up_after_the_read_timeout(
    server: RangeServer,
) -> None:
    """Not retried: GDAL does not retry a server that stops sending either."""
    start = time.monotonic()
    with pytest.raises(
        RasterReadError, match=r"did not answer in time \(nothing received in 1 s; 1 try\)"
    ):
        _fetch(f"{server.url}/hang/item.json", QUICK)
    assert time.monotonic() - start < 3


def test_http_errors(server: RangeServer) -> None:
    with pytest.raises(RasterReadError, match=r"not found \(HTTP 404\)"):
        _fetch(f"{server.url}/nope.json", QUICK)
    with pytest.raises(RasterReadError, match=r"access denied \(HTTP 403\)"):
        _fetch(f"{server.url}/403/item.json", QUICK)


class _Busy(http.server.BaseHTTPRequestHandler):
    """HTTP 503 to the first two requests, then the item."""

    calls = 0

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        type(self).calls += 1
        if type(self).calls <= 2:
            self.send_error(503)
            return
        body = json.dumps(ITEM).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_busy_server_is_tried_again_a_bounded_number_of_times() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Busy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/item.json"
    try:
        assert json.loads(_fetch(url, QUICK))["id"] == "a"  # third try
        _Busy.calls = 0
        once = NetworkLimits(connect_s=2, read_s=1, total_s=None, retries=1, retry_delay_s=0)
        with pytest.raises(RasterReadError, match="HTTP 503"):
            _fetch(url, once)
        assert _Busy.calls == 2
    finally:
        server.shutdown()
        server.server_close()
