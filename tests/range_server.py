"""A loopback HTTP server with byte ranges, as COG hosts serve them: the tests' stand-in
for a remote archive. It counts the bytes it sends; paths under ``/403/`` are refused.

It misbehaves on request, as servers do: under ``/hang/`` it takes the request and
never answers; under ``/stall/`` it serves the file's first :data:`HEADER_BYTES` (what
GDAL reads to open it) and, for any later range, the headers and half the body, then
nothing more. A stalled answer ends when the client hangs up or the server stops, or
after :data:`HANG_S`.

Written here rather than taken from a package: the standard library's server has no
Range support, and the handler is the few lines below.
"""

from __future__ import annotations

import http.server
import re
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["HANG_S", "HEADER_BYTES", "RangeServer", "serve"]

HANG_S = 120.0
"""The longest a hanging or stalled answer waits (the server's stop ends it sooner)."""
HEADER_BYTES = 16384
"""Under ``/stall/``: ranges starting below this are served whole (GDAL's first read)."""


class RangeServer(http.server.ThreadingHTTPServer):
    root: Path
    bytes_sent: int
    requests: int
    stalls: int
    """Answers that have hung or stalled so far (under ``/hang/``, ``/stall/``): a test
    waits for this to grow, as a count of those hanging now would also drop while an
    earlier test's answer ends."""
    lock: threading.Lock
    stopping: threading.Event

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: RangeServer

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, *, body: bool) -> None:
        relative = unquote(urlsplit(self.path).path).lstrip("/")
        if relative.startswith("403/"):
            self.send_error(403)
            return
        if relative.startswith("hang/"):
            self._stall()
            return
        stall = relative.startswith("stall/")
        relative = relative.removeprefix("stall/")
        path = self.server.root / relative
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        size = len(data)
        start, stop = 0, size  # stop exclusive
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        if match:
            first, last = match.groups()
            if first:
                start, stop = int(first), min(size, int(last) + 1) if last else size
            else:
                start, stop = max(0, size - int(last)), size
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
        else:
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "image/tiff")
        self.send_header("Content-Length", str(stop - start))
        self.end_headers()
        if body and stall and start >= HEADER_BYTES:
            self.wfile.write(data[start : start + (stop - start) // 2])
            self.wfile.flush()
            self._stall()
            return
        if body:
            self.wfile.write(data[start:stop])
            with self.server.lock:
                self.server.bytes_sent += stop - start
                self.server.requests += 1

    def _stall(self) -> None:
        """Send nothing more until the client hangs up or the server stops (at most
        :data:`HANG_S`), then close the connection."""
        with self.server.lock:
            self.server.stalls += 1
        deadline = time.monotonic() + HANG_S
        while not self.server.stopping.wait(0.05) and time.monotonic() < deadline:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if readable and not self.connection.recv(1, socket.MSG_PEEK):
                break  # the client hung up
        self.close_connection = True


@contextmanager
def serve(root: Path) -> Iterator[RangeServer]:
    """Serve ``root`` on 127.0.0.1 (a free port) for the duration of the block."""
    server = RangeServer(("127.0.0.1", 0), _Handler)
    server.root, server.bytes_sent, server.requests, server.stalls = root, 0, 0, 0
    server.lock, server.stopping = threading.Lock(), threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()  # the stalled answers end
        server.shutdown()
        server.server_close()
