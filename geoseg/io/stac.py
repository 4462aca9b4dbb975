"""A STAC item as one scene: its band assets stacked on one grid, in a VRT in memory.

``input.assets`` names the assets to read, in order: asset keys (``B04``) or common
band names (``red``, from the ``eo:bands`` or ``bands`` fields). Each asset must be a
single-band raster; all must share one CRS. The grid is the finest of the assets'
resolutions (``input.resolution`` chooses another) over the union of their extents;
coarser assets are resampled onto it by nearest neighbour (values stay real values).
The item's JSON is fetched here, with the timeouts and retries GDAL follows
(:func:`geoseg.io.gdal_env.network_limits`), and parsed by pystac; GDAL reads the assets
(through ``/vsicurl/`` for URLs: windowed, only the blocks a read touches).
"""

from __future__ import annotations

import http.client
import json
import math
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

import numpy as np
import rasterio
from rasterio.errors import RasterioError

from geoseg.errors import ConfigError, RasterReadError
from geoseg.io.gdal_env import NetworkLimits, network_limits

__all__ = ["StacScene", "is_stac_item", "stac_scene"]

_GDAL_TYPES = {
    "uint8": "Byte",
    "int8": "Int8",
    "uint16": "UInt16",
    "int16": "Int16",
    "uint32": "UInt32",
    "int32": "Int32",
    "float32": "Float32",
    "float64": "Float64",
}


def is_stac_item(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a STAC item: a ``.json`` file or URL, or a STAC API item
    URL (``.../collections/<id>/items/<id>``, no extension).

    >>> is_stac_item("https://host/v1/collections/s2/items/S2A_1"), is_stac_item("a.tif")
    (True, False)
    """
    text = os.fspath(path).split("?", 1)[0].lower()
    if text.endswith(".json"):
        return True
    api = text.startswith(("http://", "https://")) and "/items/" in text
    return api and "." not in text.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class StacScene:
    """The VRT (XML, openable by GDAL as it is) of an item's assets, and provenance."""

    vrt: str
    item_id: str
    hrefs: dict[str, str] = field(default_factory=dict)


def stac_scene(
    item_path: str | os.PathLike[str],
    assets: Sequence[str],
    *,
    resolution: float | None = None,
    options: Mapping[str, str] | None = None,
) -> StacScene:
    """Stack ``assets`` of the item at ``item_path`` on one grid (see the module).

    ``options``: GDAL configuration options (``runtime.gdal_options``); their timeouts
    and retries also bound the fetch of the item itself.
    """
    where = os.fspath(item_path)
    item = _read_item(where, network_limits(options))
    if not item.assets:
        raise RasterReadError(
            f"{where}: the STAC item has no assets, so no bands to read; check the item "
            "(its 'assets' field) or choose another"
        )
    if not assets:
        raise ConfigError(
            f"{where}: a STAC item needs input.assets, the band assets to read in order; "
            f"it has {', '.join(sorted(item.assets))}"
        )
    chosen = {name: _find(item, name, where) for name in assets}
    hrefs = {name: asset.get_absolute_href() or asset.href for name, asset in chosen.items()}
    if any(not href for href in hrefs.values()):
        empty = [name for name, href in hrefs.items() if not href]
        raise RasterReadError(f"{where}: asset {empty[0]!r} has no href; check the item")
    grids = {name: _grid(href) for name, href in hrefs.items()}
    crss = {grid["crs"] for grid in grids.values()}
    if len(crss) > 1:
        listed = ", ".join(f"{name} {grid['crs']}" for name, grid in grids.items())
        raise RasterReadError(f"{where}: the assets are in different CRSs ({listed}); "
                              "choose assets of one CRS")  # fmt: skip
    sizes = [min(abs(g["transform"].a), abs(g["transform"].e)) for g in grids.values()]
    res = resolution or min(sizes)
    left = min(g["bounds"][0] for g in grids.values())
    bottom = min(g["bounds"][1] for g in grids.values())
    right = max(g["bounds"][2] for g in grids.values())
    top = max(g["bounds"][3] for g in grids.values())
    width = math.ceil(round((right - left) / res, 6))
    height = math.ceil(round((top - bottom) / res, 6))
    dtype = np.result_type(*(g["dtype"] for g in grids.values())).name
    bands = []
    for number, (name, grid) in enumerate(grids.items(), start=1):
        g_left, g_bottom, g_right, g_top = grid["bounds"]
        nodata = grid["nodata"]
        nodata_xml = "" if nodata is None else f"<NoDataValue>{nodata!r}</NoDataValue>"
        src_nodata = "" if nodata is None else f"<NODATA>{nodata!r}</NODATA>"
        bands.append(
            f'<VRTRasterBand dataType="{_GDAL_TYPES[dtype]}" band="{number}">'
            f"{nodata_xml}<Description>{escape(name)}</Description>"
            f'<ComplexSource resampling="nearest">'
            f'<SourceFilename relativeToVRT="0">{escape(grid["gdal_path"])}</SourceFilename>'
            f"<SourceBand>1</SourceBand>"
            f'<SrcRect xOff="0" yOff="0" xSize="{grid["width"]}" ySize="{grid["height"]}"/>'
            f'<DstRect xOff="{(g_left - left) / res!r}" yOff="{(top - g_top) / res!r}" '
            f'xSize="{(g_right - g_left) / res!r}" ySize="{(g_top - g_bottom) / res!r}"/>'
            f"{src_nodata}</ComplexSource></VRTRasterBand>"
        )
    crs_wkt = next(iter(grids.values()))["wkt"]
    vrt = (
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">'
        f"<SRS>{escape(crs_wkt)}</SRS>"
        f"<GeoTransform>{left!r}, {res!r}, 0, {top!r}, 0, {-res!r}</GeoTransform>"
        + "".join(bands)
        + "</VRTDataset>"
    )
    return StacScene(vrt=vrt, item_id=item.id, hrefs=hrefs)


def _find(item: Any, name: str, where: str) -> Any:
    """The asset called ``name`` by key or by a band's common name (case-insensitive)."""
    wanted = name.lower()
    for key, asset in item.assets.items():
        if key.lower() == wanted:
            return asset
    for asset in item.assets.values():
        bands = asset.extra_fields.get("eo:bands") or asset.extra_fields.get("bands") or []
        names = {str(b.get("common_name") or b.get("eo:common_name") or "").lower() for b in bands}
        if wanted in names:
            return asset
    raise ConfigError(
        f"{where}: no asset {name!r} (by key or common band name); the item has "
        f"{', '.join(sorted(item.assets))} (input.assets)"
    )


def _read_item(where: str, limits: NetworkLimits) -> Any:
    """The item at ``where`` (a path, a ``file://`` URL or an http(s) URL), its relative
    asset hrefs resolved against it."""
    import pystac

    remote = where.startswith(("http://", "https://"))
    href = where if remote else str(Path(_local_path(where)).absolute())
    try:
        text = _fetch(where, limits) if remote else Path(href).read_bytes()
    except RasterReadError:
        raise
    except FileNotFoundError as err:
        raise RasterReadError(f"{where}: no such file; check the path") from err
    except OSError as err:
        raise RasterReadError(f"{where}: cannot be read ({err.strerror or err})") from err
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as err:
        raise RasterReadError(f"{where}: not a STAC item: not JSON ({err})") from err
    if not isinstance(data, dict) or data.get("type") != "Feature":
        kind = data.get("type") if isinstance(data, dict) else type(data).__name__
        raise RasterReadError(
            f"{where}: not a STAC item (its type is {kind!r}, an item's is 'Feature'); "
            "give the URL or path of one item"
        )
    try:
        return pystac.Item.from_dict(data, href=href, migrate=True, preserve_dict=False)
    except Exception as err:  # pystac raises many kinds: schema, missing fields
        raise RasterReadError(f"{where}: cannot be read as a STAC item ({err})") from err


def _local_path(href: str) -> str:
    """A ``file://`` URL as the local path it names; any other href as it is."""
    if not href.lower().startswith("file://"):
        return href
    parts = urlsplit(href)
    if parts.netloc not in ("", "localhost"):
        raise RasterReadError(
            f"{href}: a file:// URL on another host ({parts.netloc}); give a local path or "
            "an http(s) URL"
        )
    return urllib.request.url2pathname(parts.path)  # which unquotes %20 and the like


_ITEM_MAX_BYTES = 64 * 2**20
"""The largest STAC item read (items are kilobytes; this bounds a wrong URL)."""
_RETRY_CODES = (429, 500, 502, 503, 504)
"""HTTP statuses retried, as GDAL retries them."""


def _fetch(url: str, limits: NetworkLimits) -> bytes:
    """The body at ``url``, each try bounded by ``limits`` (connect, wait for bytes,
    whole request). A refused, dropped or timed-out connection, a request over
    ``GDAL_HTTP_TIMEOUT`` and a busy server (HTTP 429, 5xx) are tried again,
    ``limits.retries`` times, the wait doubling from ``limits.retry_delay_s``; a server
    that stops sending is not (GDAL does not retry it either)."""
    delay = limits.retry_delay_s
    for attempt in range(limits.retries + 1):
        last = attempt == limits.retries
        try:
            return _fetch_once(url, limits)
        except RasterReadError:
            raise
        except urllib.error.HTTPError as err:
            err.close()
            if last or err.code not in _RETRY_CODES:
                raise _http_error(url, err) from err
        except urllib.error.URLError as err:
            if last or not _retried(err.reason):
                raise _network_error(url, err.reason, limits) from err
        except (OSError, http.client.HTTPException) as err:
            if last or not _retried(err):
                raise _network_error(url, err, limits) from err
        time.sleep(delay)
        delay *= 2
    raise AssertionError("unreachable")  # pragma: no cover


class _ConnectTimeout(TimeoutError):
    """No connection within ``GDAL_HTTP_CONNECTTIMEOUT``."""


class _TotalTimeout(TimeoutError):
    """No whole answer within ``GDAL_HTTP_TIMEOUT``."""


def _retried(err: object) -> bool:
    if isinstance(err, TimeoutError):  # a read that waited too long for bytes: not
        return isinstance(err, (_ConnectTimeout, _TotalTimeout))
    return isinstance(err, (ConnectionError, http.client.HTTPException))


def _fetch_once(url: str, limits: NetworkLimits) -> bytes:
    from geoseg import __version__

    start = time.monotonic()
    opener = urllib.request.build_opener(_Handler(limits), _HTTPSHandler(limits))
    headers = {"Accept": "application/geo+json, */*", "User-Agent": f"geoseg/{__version__}"}
    request = urllib.request.Request(url, headers=headers)
    chunks, size = [], 0
    with opener.open(request) as response:
        while chunk := response.read(2**16):
            chunks.append(chunk)
            size += len(chunk)
            if size > _ITEM_MAX_BYTES:
                raise RasterReadError(
                    f"{url}: over {_ITEM_MAX_BYTES // 2**20} MB, too large for a STAC item; "
                    "give the URL of one item"
                )
            if limits.total_s is not None and time.monotonic() - start > limits.total_s:
                raise _TotalTimeout(f"no whole answer in {limits.total_s:g} s")
    return b"".join(chunks)


def _http_error(url: str, err: urllib.error.HTTPError) -> RasterReadError:
    if err.code == 404:
        return RasterReadError(f"{url}: not found (HTTP 404); check the URL")
    if err.code in (401, 403):
        return RasterReadError(
            f"{url}: access denied (HTTP {err.code}); check the URL or its credentials"
        )
    return RasterReadError(f"{url}: the server answered HTTP {err.code}; try again later")


def _network_error(url: str, reason: object, limits: NetworkLimits) -> RasterReadError:
    tries = f"{limits.retries + 1} tries" if _retried(reason) and limits.retries else "1 try"
    if isinstance(reason, TimeoutError):
        if limits.read_s and not isinstance(reason, (_ConnectTimeout, _TotalTimeout)):
            reason = f"nothing received in {limits.read_s:g} s"
        return RasterReadError(
            f"{url}: the server did not answer in time ({reason}; {tries}); try again "
            "later, or allow longer in runtime.gdal_options (GDAL_HTTP_CONNECTTIMEOUT, "
            "GDAL_HTTP_LOW_SPEED_TIME, GDAL_HTTP_TIMEOUT)"
        )
    return RasterReadError(
        f"{url}: cannot reach the host ({reason}; {tries}); check the URL and network"
    )


class _Timeouts:
    """An ``http.client`` connection that connects within ``limits.connect_s`` and
    then waits at most ``limits.read_s`` for each read."""

    limits: NetworkLimits
    sock: Any
    timeout: float | None

    def connect(self) -> None:
        self.timeout = self.limits.connect_s
        try:
            super().connect()  # type: ignore[misc]
        except TimeoutError as err:
            raise _ConnectTimeout(f"no connection in {self.limits.connect_s:g} s") from err
        self.sock.settimeout(self.limits.read_s)


class _HTTP(_Timeouts, http.client.HTTPConnection):
    pass


class _HTTPS(_Timeouts, http.client.HTTPSConnection):
    pass


class _Handler(urllib.request.HTTPHandler):
    def __init__(self, limits: NetworkLimits) -> None:
        super().__init__()
        self.limits = limits

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self._connection, req)

    def _connection(self, host: str, **kwargs: Any) -> http.client.HTTPConnection:
        connection = _HTTP(host, **kwargs)
        connection.limits = self.limits
        return connection


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, limits: NetworkLimits) -> None:
        super().__init__()
        self.limits = limits

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self._connection, req, context=self._context)  # type: ignore[attr-defined]

    def _connection(self, host: str, **kwargs: Any) -> http.client.HTTPSConnection:
        connection = _HTTPS(host, **kwargs)
        connection.limits = self.limits
        return connection


def _grid(href: str) -> dict[str, Any]:
    """An asset's grid, read from its header (one small ranged read for a URL)."""
    remote = href.startswith(("http://", "https://"))
    gdal_path = f"/vsicurl/{href}" if remote else _local_path(href)
    try:
        with rasterio.open(gdal_path) as src:
            if src.count != 1:
                raise RasterReadError(f"{href}: {src.count} bands; assets must be single-band")
            if src.crs is None:
                raise RasterReadError(f"{href}: no CRS; assets must be georeferenced")
            return {
                "gdal_path": gdal_path,
                "crs": src.crs.to_string(),
                "wkt": src.crs.to_wkt(),
                "transform": src.transform,
                "bounds": tuple(src.bounds),
                "width": src.width,
                "height": src.height,
                "dtype": src.dtypes[0],
                "nodata": src.nodata,
            }
    except RasterioError as err:
        raise RasterReadError(f"{href}: cannot be read as a raster ({err})") from err
