"""How good is ``geoseg plan``'s time estimate on a sparse scene?

Writes a mostly-nodata scene (``--side`` px square, tiled, sparse: unwritten blocks
are nodata) with a window of the Sentinel-2 10 m scene in its middle, then runs
``geoseg plan --json`` and ``geoseg run`` from the shell and prints one JSON line: the
plan's estimated seconds per stage, the run's measured seconds (``run.yaml``'s stage
timings, in-process, and the command's wall time from the shell, start-up included)
and their ratios. The issue's target: the estimate within 2x of the run.

    python scripts/bench_plan.py --side 20000 --workdir /tmp/geoseg-plan
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import rasterio
import yaml
from rasterio.windows import Window

SOURCE = (
    Path(__file__).resolve().parents[2]
    / "shared/data/sentinel2_l1c_18SVG_10m/S2_18SVG_20160112_B02-B03-B04-B08_10m_uint16.tif"
)


def sparse_scene(path: Path, side: int, data_side: int) -> None:
    """``side`` x ``side`` px of nodata around ``data_side`` px of real data."""
    with rasterio.open(SOURCE) as src:
        data = src.read(window=Window(0, 0, data_side, data_side))
        profile = src.profile
    profile.update(width=side, height=side, tiled=True, blockxsize=512, blockysize=512,
                   compress="deflate", nodata=0, sparse_ok=True)  # fmt: skip
    data[data == 0] = 1
    with rasterio.open(path, "w", **profile) as out:
        middle = (side - data_side) // 2
        out.write(data, window=Window(middle, middle, data_side, data_side))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=20000)
    parser.add_argument("--data", type=int, default=600, help="side of the data window")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/geoseg-plan"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    scene = args.workdir / f"sparse_{args.side}.tif"
    if not scene.exists():
        sparse_scene(scene, args.side, args.data)
    command = ["geoseg", "plan", str(scene), "--json"]
    plan = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    out = args.workdir / "out"
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run(["geoseg", "run", str(scene), "-o", str(out), "-q"], check=True)
    wall = time.perf_counter() - start
    measured = yaml.safe_load((out / "run.yaml").read_text())["timings_s"]
    estimated = plan["estimated_seconds"]
    print(json.dumps({
        "side": args.side,
        "tiles": plan["tiles"],
        "tiles_with_data": plan["tiles_with_data"],
        "estimated_s": estimated,
        "measured_s": measured,
        "wall_s": round(wall, 2),
        "estimate_over_total": round(estimated["total"] / measured["total"], 3),
        "estimate_over_wall": round(estimated["total"] / wall, 3),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }))  # fmt: skip


if __name__ == "__main__":
    main()
