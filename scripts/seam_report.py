"""Seam report: do the tile size and the tile seams show in the labels?

Runs ``geoseg run`` on one scene with two tile sizes (same seed) and prints one JSON
line: the ARI between the two label rasters, and for each run the density of class
boundaries on its tile seam lines against elsewhere (target: ratio <= 1.1).

    python scripts/seam_report.py \
        ../shared/data/sentinel2_l1c_18SVG_10m/S2_18SVG_20160112_B02-B03-B04-B08_10m_uint16.tif
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio

from geoseg.evaluate import adjusted_rand_index, seam_boundary_ratio
from geoseg.pipeline import RunOptions, run_scene
from geoseg.segment import get_preset
from geoseg.tiling import axis_tiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scene")
    parser.add_argument("--tile-sizes", default="256,1024")
    parser.add_argument("--overlap", type=int, default=16)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    sizes = [int(v) for v in args.tile_sizes.split(",")]
    report: dict = {"scene": Path(args.scene).name, "tile_sizes": sizes, "runs": []}
    labels = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            options = RunOptions(tile_size=size, overlap=args.overlap, seed=args.seed)
            start = time.perf_counter()
            result = run_scene(args.scene, Path(tmp) / str(size), get_preset(args.preset), options)
            seconds = time.perf_counter() - start
            with rasterio.open(result.labels) as src:
                classes = src.read(1).astype(np.int32) - 1  # -1 = nodata
            cuts = {
                axis: np.array(
                    [core for _, _, core, _ in axis_tiles(n, tile_size=size, overlap=args.overlap)][
                        1:
                    ],
                    int,
                )
                for axis, n in (("rows", classes.shape[0]), ("cols", classes.shape[1]))
            }
            ratio, seam, other = seam_boundary_ratio(
                classes, row_cuts=cuts["rows"], col_cuts=cuts["cols"]
            )
            report["runs"].append(
                {
                    "tile_size": size,
                    "tiles": result.n_tiles,
                    "classes": result.n_classes,
                    "seconds": round(seconds, 1),
                    "seam_boundary_density": round(seam, 5),
                    "other_boundary_density": round(other, 5),
                    "seam_ratio": round(ratio, 3),
                }
            )
            labels.append(classes)
    report["ari_between_tile_sizes"] = round(
        adjusted_rand_index(labels[0], np.where(labels[0] >= 0, labels[1], -1)), 5
    )
    report["identical_fraction"] = round(float((labels[0] == labels[1]).mean()), 6)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
