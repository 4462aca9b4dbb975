"""A loopback HTTP server with byte ranges, as COG hosts serve them: the tests' stand-in
for a remote archive. It counts the bytes it sends; paths under ``/403/`` are refused.

Written here rather than taken from a package: the standard library's server has no
Range support, and the handler is the few lines below.
"""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["RangeServer", "serve"]


class RangeServer(http.server.ThreadingHTTPServer):
    root: Path
    bytes_sent: int
    requests: int
    lock: threading.Lock

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
        if body:
            self.wfile.write(data[start:stop])
            with self.server.lock:
                self.server.bytes_sent += stop - start
                self.server.requests += 1


@contextmanager
def serve(root: Path) -> Iterator[RangeServer]:
    """Serve ``root`` on 127.0.0.1 (a free port) for the duration of the block."""
    server = RangeServer(("127.0.0.1", 0), _Handler)
    server.root, server.bytes_sent, server.requests = root, 0, 0
    server.lock = threading.Lock()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
