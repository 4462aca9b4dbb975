"""Scene benchmark: the whole `geoseg run` pipeline on mosaics of a real scene.

Builds mosaics of mirrored copies of the Sentinel-2 10 m scene (valid transform, tiled
GeoTIFF) at the requested sizes, runs each in a fresh process and prints one JSON line
per size: the device that predicts (``cpu`` or the GPU's name with ``--set
runtime.device=cuda``), per-stage seconds, Mpx/s, the prediction's compute-bound limit
(the default network's FLOPs a pixel at that device's fp32 matmul GFLOP/s, probed before
and after the run and the faster taken, both printed), the predict stage's parts (read,
network, classify, write, close), user and system seconds, minor page faults a pixel and peak
RSS. Then, in another fresh process, the vectorization alone of that run's labels.tif
(with the scene's band statistics): seconds, polygons, polygons/s, its parts (polygons:
both passes over the labels; write; close) and its own peak RSS (``vectorize``).
Seconds are in-process, after start-up.

    python scripts/bench_scene.py --mpx 25,100,400 --workdir /tmp/geoseg-bench
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import rasterio
import yaml
from rasterio.windows import Window

DEFAULT_SOURCE = (
    Path(__file__).resolve().parents[2]
    / "shared/data/sentinel2_l1c_18SVG_10m/S2_18SVG_20160112_B02-B03-B04-B08_10m_uint16.tif"
)


def build_mosaic(source: Path, target: Path, mpx: float) -> None:
    """Write a ``mpx``-megapixel mosaic of mirrored copies of ``source``."""
    if target.exists():
        return
    with rasterio.open(source) as src:
        data = src.read()
        profile = src.profile
    side = math.ceil(math.sqrt(mpx * 1e6))
    h, w = data.shape[1:]
    profile.update(
        width=side,
        height=side,
        tiled=True,
        blockxsize=512,
        blockysize=512,
        compress=None,
        BIGTIFF="IF_SAFER",
    )
    tmp = target.with_suffix(".part.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        for i in range(math.ceil(side / h)):
            for j in range(math.ceil(side / w)):
                block = data[:, :: -1 if i % 2 else 1, :: -1 if j % 2 else 1]
                rows, cols = min(h, side - i * h), min(w, side - j * w)
                dst.write(block[:, :rows, :cols], window=Window(j * w, i * h, cols, rows))
    tmp.rename(target)


def run_one(scene: Path, outdir: Path, overrides: list[str]) -> dict:
    import torch

    from geoseg.config import resolve_config
    from geoseg.run import run_scene
    from geoseg.segment.model import build_model, conv_flops, matmul_gflops
    from geoseg.segment.train import resolve_device

    config = resolve_config(overrides=overrides)
    device = resolve_device(config.runtime.device)  # the limit is the device's that predicts
    probes = [matmul_gflops(device=device)]
    start = time.perf_counter()
    result = run_scene(scene, outdir, config)
    total = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    probes.append(matmul_gflops(device=device))  # the speed moves: probed before and after
    gflops = max(probes)
    with rasterio.open(scene) as src:
        mpx = src.width * src.height / 1e6
        bands = len(config.input.bands or []) or src.count
    # the prediction's compute-bound limit: the network's FLOPs a pixel at the machine's
    # measured matmul speed (the network the run used: texture bands only on fine pixels)
    used = yaml.safe_load(result.record.read_text())["training"].get("texture_radius", 0)
    params = config.segment.params().replace(texture_radius=used)
    flops_per_px = conv_flops(build_model(bands, params), 1000, 1000) / 1e6
    return {
        "scene": scene.name,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "mpx": round(mpx, 1),
        "set": overrides,
        "tiles": result.n_tiles,
        "classes": result.n_classes,
        "stage_s": {k: round(v, 2) for k, v in result.timings.items()},
        "total_s": round(total, 1),
        "mpx_per_s": round(mpx / total, 3),
        "predict_mpx_per_s": round(mpx / result.timings["predict"], 3),
        "predict_limit_mpx_per_s": round(gflops * 1e9 / flops_per_px / 1e6, 3),
        "network_flops_per_px": round(flops_per_px),
        "matmul_gflops": round(gflops, 1),
        "matmul_gflops_probes": [round(g, 1) for g in probes],
        "predict_parts_s": {k.split(".", 1)[1]: v for k, v in result.profile.items()},
        "user_s": round(usage.ru_utime, 1),
        "system_s": round(usage.ru_stime, 1),
        "minor_faults_per_px": round(usage.ru_minflt / (mpx * 1e6), 4),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def vectorize_one(scene: Path, overrides: list[str]) -> dict:
    from geoseg.config import resolve_config
    from geoseg.run import vectorize_labels

    labels = scene.with_suffix(".out") / "labels.tif"
    target = scene.with_suffix(".out") / "bench_segments.gpkg"
    start = time.perf_counter()
    summary = vectorize_labels(labels, target, resolve_config(overrides=overrides), scene=scene)
    seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 1),
        "polygons": summary.features,
        "polygons_per_s": round(summary.features / seconds, 1),
        "parts_s": summary.seconds,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def child(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mpx", default="25,100,400", help="mosaic sizes in megapixels")
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/geoseg-bench"))
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--vectorize", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # child process: one run, one JSON line
        print(json.dumps(run_one(args.one, args.one.with_suffix(".out"), args.overrides)))
        return
    if args.vectorize:  # child process: vectorize one run's labels
        print(json.dumps(vectorize_one(args.vectorize, args.overrides)))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    for mpx in (float(v) for v in args.mpx.split(",")):
        scene = args.workdir / f"s2_mosaic_{mpx:g}mpx.tif"
        t0 = time.perf_counter()
        build_mosaic(args.source, scene, mpx)
        built = time.perf_counter() - t0
        sets = [f"--set={text}" for text in args.overrides]
        row = child("--one", str(scene), *sets)
        row["vectorize"] = child("--vectorize", str(scene), *sets)
        row["mosaic_build_s"] = round(built, 1)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
