"""A STAC item as one scene: its band assets stacked on one grid, in a VRT in memory.

``input.assets`` names the assets to read, in order: asset keys (``B04``) or common
band names (``red``, from the ``eo:bands`` or ``bands`` fields). Each asset must be a
single-band raster; all must share one CRS. The grid is the finest of the assets'
resolutions (``input.resolution`` chooses another) over the union of their extents;
coarser assets are resampled onto it by nearest neighbour (values stay real values).
pystac reads the item, GDAL the assets (through ``/vsicurl/`` for URLs: windowed, only
the blocks a read touches).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import rasterio
from rasterio.errors import RasterioError

from geoseg.errors import ConfigError, RasterReadError

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
) -> StacScene:
    """Stack ``assets`` of the item at ``item_path`` on one grid (see the module)."""
    import pystac

    where = os.fspath(item_path)
    try:
        item = pystac.Item.from_file(where)
    except Exception as err:  # pystac raises many kinds: JSON, HTTP, schema
        raise RasterReadError(f"{where}: cannot be read as a STAC item ({err})") from err
    if not assets:
        raise ConfigError(
            f"{where}: a STAC item needs input.assets, the band assets to read in order; "
            f"it has {', '.join(sorted(item.assets))}"
        )
    chosen = {name: _find(item, name, where) for name in assets}
    hrefs = {name: asset.get_absolute_href() or asset.href for name, asset in chosen.items()}
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


def _grid(href: str) -> dict[str, Any]:
    """An asset's grid, read from its header (one small ranged read for a URL)."""
    remote = href.startswith(("http://", "https://"))
    gdal_path = f"/vsicurl/{href}" if remote else href
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
