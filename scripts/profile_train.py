"""Where the training time of ``geoseg run`` goes: ``torch.profiler`` over the real
:func:`geoseg.segment.fit` on a scene's training crops, prepared as a run prepares them.

Prints one JSON line: the machine (CPU model, bfloat16 support, threads, load), the
seconds of the training views (superpixels) and of ``fit`` with and without the
profiler, per-iteration milliseconds, the process's peak resident memory after
training, the time of each group of operators (convolutions, batch norms, the texture
bands' pooling, the superpixel refinement, the losses, the optimizer, the rest) and the
top operators by own time. In-process time after imports, not a command's wall time.
Freed memory is held as a run holds it (:func:`geoseg.runtime.hold_freed_memory`):
without that, every step's large activations are mapped and faulted in afresh, and
``fit`` takes about twice as long as in ``geoseg run``.

    python scripts/profile_train.py ../shared/data/landsat7_rasterio_rgb/RGB.byte.tif
    python scripts/profile_train.py ../shared/data/labelled_dev/geonrw_hamm_428_5727/image.tif \
        --set segment.max_iterations=12 --top 15
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from geoseg.config import resolve_config
from geoseg.run.prepare import for_pixel_size, open_scene, prepare, training_crops
from geoseg.runtime import hold_freed_memory
from geoseg.segment import fit, training_views
from geoseg.segment.train import cpu_bfloat16

GROUPS = {
    "convolution": ("conv", "mkldnn"),
    "batch_norm": ("batch_norm",),
    "texture_pooling": ("avg_pool",),
    "refine_superpixels": ("bincount", "argmax", "max", "index", "scatter"),
    "losses": ("log_softmax", "nll_loss", "abs", "l1", "sub", "mean", "sum", "div"),
    "optimizer": ("_foreach", "addcdiv", "lerp", "sqrt", "adam"),
}
"""Operator-name fragments of each group; an operator goes to the first group it fits."""


def _group(name: str) -> str:
    lowered = name.lower()
    for group, fragments in GROUPS.items():
        if any(fragment in lowered for fragment in fragments):
            return group
    return "other"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scene", type=Path)
    parser.add_argument("--set", action="append", default=[], help="a run setting, repeatable")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top", type=int, default=10, help="operators listed")
    args = parser.parse_args()
    hold_freed_memory()  # as geoseg run does

    config = resolve_config(overrides=args.set)
    reader = open_scene(args.scene, config)
    prepared = prepare(reader, config)
    config = for_pixel_size(config, prepared.info)
    params = config.segment.params()
    crops = training_crops(config, prepared)
    images, valids = zip(*(prepared.read(window) for window in crops), strict=True)

    start = time.perf_counter()
    views = training_views(list(images), list(valids), params)
    views_s = time.perf_counter() - start

    start = time.perf_counter()
    plain = fit(*views, params, seed=args.seed, device="cpu")
    fit_s = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fit(*views, params, seed=args.seed, device="cpu")
    events = prof.key_averages()
    total_us = sum(e.self_cpu_time_total for e in events) or 1.0
    groups: dict[str, float] = {}
    for event in events:
        key = _group(event.key)
        groups[key] = groups.get(key, 0.0) + event.self_cpu_time_total
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[: args.top]
    print(
        json.dumps(
            {
                "scene": str(args.scene),
                "cpu": _cpu_model(),
                "bfloat16_native": cpu_bfloat16(),
                "threads": torch.get_num_threads(),
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "views": [int(x) for x in views[0].shape],
                "views_seconds": round(views_s, 3),
                "fit_seconds": round(fit_s, 3),
                "iterations": plain.n_iterations,
                "ms_per_iteration": round(1000 * fit_s / plain.n_iterations, 1),
                "peak_rss_mb_after_fit": round(peak_mb),
                "profiled_share": {
                    k: round(v / total_us, 3)
                    for k, v in sorted(groups.items(), key=lambda x: -x[1])
                },
                "top_ops": [
                    {
                        "op": e.key,
                        "self_ms": round(e.self_cpu_time_total / 1000, 1),
                        "calls": e.count,
                    }
                    for e in top
                ],
            }
        )
    )


if __name__ == "__main__":
    main()
