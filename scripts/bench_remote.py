"""A STAC item over HTTP against the same bands on local disk.

Splits the Sentinel-2 10 m scene (4 bands) into single-band COGs, writes a static STAC
item for them, serves the folder on 127.0.0.1 with byte ranges (the tests' server,
``tests/range_server.py``) and runs, from the shell, ``geoseg run`` on the item's URL
and on the same bands as one local 4-band COG. Prints one JSON line: wall seconds of
both commands (start-up included), their ratio (the issue's target: within 1.5x), the
bytes the server sent against the COGs' total size, and whether the two label rasters
are identical.

    python scripts/bench_remote.py --workdir /tmp/geoseg-remote
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import rasterio
from rasterio.shutil import copy as rio_copy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.range_server import serve

SOURCE = (
    Path(__file__).resolve().parents[2]
    / "shared/data/sentinel2_l1c_18SVG_10m/S2_18SVG_20160112_B02-B03-B04-B08_10m_uint16.tif"
)
NAMES = ["B02", "B03", "B04", "B08"]


def build(root: Path) -> None:
    """Single-band COGs of ``SOURCE``, a STAC item listing them, and the same four bands
    as one local 4-band COG (same overviews, so the same statistics)."""
    rio_copy(SOURCE, root.parent / "local.tif", driver="COG", compress="deflate")
    with rasterio.open(SOURCE) as src:
        profile = {"driver": "GTiff", "count": 1, "dtype": src.dtypes[0], "crs": src.crs,
                   "transform": src.transform, "width": src.width, "height": src.height,
                   "nodata": src.nodata}  # fmt: skip
        for band, name in enumerate(NAMES, start=1):
            with rasterio.MemoryFile() as memory, memory.open(**profile) as tmp:
                tmp.write(src.read(band), 1)
                rio_copy(tmp, root / f"{name}.tif", driver="COG", compress="deflate")
        left, bottom, right, top = src.bounds
    item = {
        "type": "Feature", "stac_version": "1.0.0", "id": "bench_remote",
        "geometry": {"type": "Polygon", "coordinates": [[[left, bottom], [right, bottom],
                     [right, top], [left, top], [left, bottom]]]},
        "bbox": [left, bottom, right, top], "properties": {"datetime": "2016-01-12T00:00:00Z"},
        "links": [],
        "assets": {name: {"href": f"./{name}.tif", "type": "image/tiff", "roles": ["data"]}
                   for name in NAMES},
    }  # fmt: skip
    (root / "item.json").write_text(json.dumps(item))


def timed(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run(["geoseg", *args, "-q"], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/geoseg-remote"))
    args = parser.parse_args()
    root = args.workdir / "served"
    if not (root / "item.json").exists():
        root.mkdir(parents=True, exist_ok=True)
        build(root)
    for out in ("local", "remote"):
        shutil.rmtree(args.workdir / out, ignore_errors=True)
    local_s = timed("run", str(args.workdir / "local.tif"), "-o", str(args.workdir / "local"))
    with serve(root) as server:
        assets = f"input.assets=[{', '.join(NAMES)}]"
        remote_s = timed("run", f"{server.url}/item.json", "-o", str(args.workdir / "remote"),
                         "--set", assets)  # fmt: skip
        sent = server.bytes_sent
    size = sum((root / f"{name}.tif").stat().st_size for name in NAMES)
    same = (args.workdir / "local" / "labels.tif").read_bytes() == (
        args.workdir / "remote" / "labels.tif"
    ).read_bytes()
    print(json.dumps({
        "scene": SOURCE.name,
        "local_s": round(local_s, 2),
        "stac_over_http_s": round(remote_s, 2),
        "ratio": round(remote_s / local_s, 3),
        "bytes_sent": sent,
        "cog_bytes": size,
        "sent_over_size": round(sent / size, 3),
        "labels_identical": same,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }))  # fmt: skip


if __name__ == "__main__":
    main()
