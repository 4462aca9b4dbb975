"""Seam report: do the tile size and the tile seams show in the labels?

Runs ``geoseg run`` on one scene with two tile sizes (same seed) and prints one JSON
line: the ARI between the two label rasters and, for each run, the density of class
boundaries on its tile seam lines against elsewhere (target: ratio <= 1.1), both
against all other lines (``seam_ratio``) and against lines 8-40 px from the seams
(``seam_ratio_local``) and, as a control, on the other run's labels where those lines
are not seams (``seam_ratio_on_other_run``), plus seconds; with ``stitch.refine`` the
same two ratios on the superpixel vote's block edges (``vote_seam_ratio``,
``vote_seam_ratio_local``); with ``--truth``, ARI and mIoU against a reference map on
the same grid (0 = no reference).

    python scripts/seam_report.py \
        ../shared/data/sentinel2_l1c_18SVG_10m/S2_18SVG_20160112_B02-B03-B04-B08_10m_uint16.tif
    python scripts/seam_report.py SCENE --set segment.mode=tile
    python scripts/seam_report.py SCENE --set stitch.refine=true --set stitch.refine_block=256
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio

from geoseg.config import resolve_config
from geoseg.evaluate import adjusted_rand_index, hungarian_miou
from geoseg.report import SEAM_CONTROL
from geoseg.run import run_scene
from geoseg.seams import seam_boundary_ratio
from geoseg.tiling import seam_cuts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scene")
    parser.add_argument("--tile-sizes", default="256,1024", help="exactly two")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--truth", type=Path, help="reference classes on the scene's grid")
    args = parser.parse_args()

    sizes = [int(v) for v in args.tile_sizes.split(",")]
    if len(sizes) != 2:
        parser.error("--tile-sizes takes exactly two sizes, e.g. 256,1024")
    report: dict = {"scene": Path(args.scene).name, "set": args.overrides, "runs": []}
    truth = None
    if args.truth:
        with rasterio.open(args.truth) as src:
            truth = src.read(1).astype(np.int64)
    labels, cuts = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            config = resolve_config(overrides=[*args.overrides, f"tiling.tile_size={size}"])
            start = time.perf_counter()
            result = run_scene(args.scene, Path(tmp) / str(size), config)
            seconds = time.perf_counter() - start
            with rasterio.open(result.labels) as src:
                classes = src.read(1).astype(np.int32) - 1  # -1 = nodata
            rows, cols = seam_cuts(*classes.shape, tile_size=size, overlap=config.tiling.overlap)
            ratio, seam, other = seam_boundary_ratio(classes, row_cuts=rows, col_cuts=cols)
            local, _, near = seam_boundary_ratio(
                classes, row_cuts=rows, col_cuts=cols, control=SEAM_CONTROL
            )
            run: dict = {
                "tile_size": size,
                "tiles": result.n_tiles,
                "classes": result.n_classes,
                "seconds": round(seconds, 1),
                "stage_s": {k: round(v, 1) for k, v in result.timings.items()},
                "seam_boundary_density": round(seam, 5),
                "other_boundary_density": round(other, 5),
                "near_boundary_density": round(near, 5),
                "seam_ratio": round(ratio, 3),
                "seam_ratio_local": round(local, 3),
            }
            if config.stitch.refine:  # the vote's own block edges are seams too
                block = config.stitch.refine_block
                vote_rows, vote_cols = (np.arange(block, n, block) for n in classes.shape)
                ratio, _, _ = seam_boundary_ratio(classes, row_cuts=vote_rows, col_cuts=vote_cols)
                local, _, _ = seam_boundary_ratio(
                    classes, row_cuts=vote_rows, col_cuts=vote_cols, control=SEAM_CONTROL
                )
                run["vote_seam_ratio"] = round(ratio, 3)
                run["vote_seam_ratio_local"] = round(local, 3)
            if truth is not None:
                # classes 1..K again (0 = nodata) for the scores; the truth's 0 is nodata
                run["ari_vs_truth"] = round(adjusted_rand_index(classes + 1, truth), 4)
                run["miou_vs_truth"] = round(hungarian_miou(classes + 1, truth), 4)
            report["runs"].append(run)
            labels.append(classes)
            cuts.append((rows, cols))
    # Control: each run's seam lines measured on the other run's labels, where they are
    # not seams. A ratio above 1 there belongs to the map, not to the tiling.
    for run, (rows, cols), other_labels in zip(report["runs"], cuts, labels[::-1], strict=True):
        ratio, _, _ = seam_boundary_ratio(other_labels, row_cuts=rows, col_cuts=cols)
        run["seam_ratio_on_other_run"] = round(ratio, 3)
    report["ari_between_tile_sizes"] = round(
        adjusted_rand_index(labels[0] + 1, np.where(labels[0] >= 0, labels[1] + 1, 0)), 5
    )
    report["identical_fraction"] = round(float((labels[0] == labels[1]).mean()), 6)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
