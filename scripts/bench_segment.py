"""Benchmark the segmentation presets on images, optionally against reference labels.

Prints one JSON line per (image, preset) and a last line comparing each preset's time
and scores with the ``fork`` preset's, plus the machine's fp32 matmul GFLOP/s.

    python scripts/bench_segment.py ../shared/data/landsat7_rasterio_rgb/RGB.byte.tif \
        --window 150,200,481,321 --synthetic 3
    python scripts/bench_segment.py \
        ../shared/data/nc_landsat7_landclass96/lsat7_2000_B1-B5_28m5_uint8.tif \
        --truth ../shared/data/nc_landsat7_landclass96/landclass96_on_lsat7_grid_labels.tif
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from geoseg.evaluate import adjusted_rand_index, hungarian_miou
from geoseg.io.raster_read import read_image
from geoseg.normalize import auto_scale
from geoseg.sample import make_scene
from geoseg.segment import get_preset, segment_image
from geoseg.segment.model import build_model, conv_flops, matmul_gflops


def run_one(name: str, image, valid, truth, preset: str, args) -> dict:
    params = get_preset(preset)
    if args.max_iterations:
        params = params.replace(max_iterations=args.max_iterations)
    start = time.perf_counter()
    seg = segment_image(image, params, valid=valid, seed=args.seed, device=args.device)
    total = time.perf_counter() - start
    t = seg.timings
    rows, cols = image.shape[1:]
    tr = max(2, round(rows * params.train_scale)), max(2, round(cols * params.train_scale))
    model = build_model(image.shape[0], params)
    # forward + backward (about twice the forward) per iteration, one BN pass, one prediction
    flops = (3 * seg.n_iterations + 1) * conv_flops(model, *tr) + conv_flops(model, rows, cols)
    row = {
        "image": name,
        "preset": preset,
        "shape": list(image.shape),
        "iterations": seg.n_iterations,
        "sec_per_iter": round(t["train"] / seg.n_iterations, 4),
        "refine_share": round(t["refine"] / t["train"], 4),
        "superpixel_s": round(t["superpixels"], 3),
        "train_s": round(t["train"], 3),
        "predict_s": round(t["predict"], 3),
        "total_s": round(total, 3),
        "labels": seg.n_labels,
        "conv_gflops": round(flops / (t["train"] + t["predict"]) / 1e9, 1),
    }
    if truth is not None:
        # the reference's ids shifted so that its class 0 counts (0 = nodata to the scores)
        scored = np.where(truth == args.ignore, 0, truth + 1)
        row["ari"] = round(adjusted_rand_index(seg.labels, scored), 4)
        row["miou"] = round(hungarian_miou(seg.labels, scored), 4)
    return row


def load(path: str, window) -> tuple:
    data = read_image(path)
    image, valid = data.data, data.valid
    if window:
        c, r, w, h = window
        image, valid = image[:, r : r + h, c : c + w], valid[r : r + h, c : c + w]
    return image, valid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="*", help="images to segment")
    parser.add_argument(
        "--truth",
        action="append",
        default=[],
        help="reference labels for the i-th image (repeatable, in order)",
    )
    parser.add_argument("--ignore", type=int, default=0, help="reference value left out")
    parser.add_argument("--presets", default="default,fork")
    parser.add_argument(
        "--window",
        type=lambda s: [int(v) for v in s.split(",")],
        help="col,row,width,height cut from every image",
    )
    parser.add_argument(
        "--bands",
        type=lambda s: [int(v) for v in s.split(",")],
        help="1-based bands to keep, e.g. 1,2,3",
    )
    parser.add_argument(
        "--synthetic",
        type=int,
        default=0,
        metavar="N",
        help="also N synthetic 481x321 3-band scenes with known regions (seeds 0..N-1)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-iterations", type=int, default=0)
    args = parser.parse_args()

    cases = []
    for i, path in enumerate(args.images):
        image, valid = load(path, args.window)
        if args.bands:
            image = image[[b - 1 for b in args.bands]]
        truth = None
        if i < len(args.truth):
            truth = load(args.truth[i], args.window)[0][0].astype(np.int64)
        cases.append((Path(path).name, auto_scale(image, valid), valid, truth))
    for seed in range(args.synthetic):
        image, truth = make_scene(rows=321, cols=481, bands=3, n_classes=5, seed=seed)
        cases.append((f"synthetic_481x321_seed{seed}", image, None, truth))

    gflops = matmul_gflops()
    # warm-up: the first run pays for oneDNN kernel selection and lazy imports
    warm = make_scene(rows=64, cols=64, bands=3, seed=0)[0]
    for preset in args.presets.split(","):
        segment_image(warm, get_preset(preset).replace(max_iterations=2), device=args.device)
    presets = args.presets.split(",")
    results = []
    for name, image, valid, truth in cases:
        for preset in presets:
            row = run_one(name, image, valid, truth, preset, args)
            row["matmul_gflops"] = round(gflops, 1)
            results.append(row)
            print(json.dumps(row), flush=True)
    if "fork" in presets:
        summary = {"summary": "vs fork", "matmul_gflops": round(gflops, 1), "cases": []}
        for name, *_ in cases:
            fork = next(r for r in results if r["image"] == name and r["preset"] == "fork")
            for r in results:
                if r["image"] == name and r["preset"] != "fork":
                    case = {
                        "image": name,
                        "preset": r["preset"],
                        "speedup": round(fork["total_s"] / r["total_s"], 2),
                    }
                    for key in ("ari", "miou"):
                        if key in r:
                            case[f"{key}_minus_fork"] = round(r[key] - fork[key], 4)
                    summary["cases"].append(case)
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
