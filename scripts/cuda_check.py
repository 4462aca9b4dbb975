"""GPU check: is a run on ``--device cuda`` repeatable, and the same at any tile size?

Writes the bundled sample scene (1024 x 1024 px, 4 bands), runs ``geoseg run`` on it
twice at the default tile size and once each at tile sizes 256 and 1024 (no vector
layer), each in a fresh process, and prints one JSON line: the device's name, each run's
wall time and stage seconds, the md5 of each label array, the share of equal pixels
and the ARI of each pair against the first run, and the ARI of the first run against
the sample's truth. With ``--deterministic`` the runs use
``torch.use_deterministic_algorithms(True, warn_only=True)`` and the warnings name the
operators that have no deterministic CUDA version. The CPU path is the reference: on a
CPU every pair is identical (``tests/run/test_scene.py``).

    python scripts/cuda_check.py --workdir /tmp/cuda-check [--deterministic]
    python scripts/cuda_check.py --device cpu   # the same check on the CPU
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import rasterio
import yaml

RUNS = {"a": [], "b": [], "tile256": ["--tile-size", "256"], "tile1024": ["--tile-size", "1024"]}


def geoseg(*args: str, deterministic: bool = False) -> subprocess.CompletedProcess[str]:
    """``geoseg ARGS`` in a fresh process, optionally in deterministic mode."""
    code = (
        "import sys, warnings, torch\n"
        + (
            "torch.use_deterministic_algorithms(True, warn_only=True)\n"
            "warnings.simplefilter('always')\n"
            if deterministic
            else ""
        )
        + "from geoseg.cli import main\nsys.argv = ['geoseg', *sys.argv[1:]]\nmain()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/geoseg-cuda-check"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--deterministic", action="store_true")
    args = parser.parse_args()
    import torch

    from geoseg.evaluate import adjusted_rand_index

    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    scene, truth = work / "sample.tif", work / "truth.tif"
    if not scene.exists():
        made = geoseg("sample", str(scene), "--truth", str(truth), "--rows", "1024", "--cols",
                      "1024")  # fmt: skip
        if made.returncode:
            sys.exit(made.stderr)
    runs: dict[str, dict] = {}
    labels: dict[str, np.ndarray] = {}
    warned: set[str] = set()
    for name, extra in RUNS.items():
        out = work / f"run_{name}"
        start = time.perf_counter()
        done = geoseg("run", str(scene), "-o", str(out), "--device", args.device, "-q",
                      "--set", "output.vector=null", *extra,
                      deterministic=args.deterministic)  # fmt: skip
        wall = time.perf_counter() - start
        if done.returncode:
            sys.exit(f"run {name} failed:\n{done.stderr[-3000:]}")
        warned |= {line.strip() for line in done.stderr.splitlines() if "Warning" in line}
        with rasterio.open(out / "labels.tif") as src:
            labels[name] = src.read(1)
        record = yaml.safe_load((out / "run.yaml").read_text())
        runs[name] = {
            "wall_s": round(wall, 2),
            "stage_s": record["timings_s"],
            "md5": hashlib.md5(labels[name].tobytes()).hexdigest()[:12],
            "classes": len(np.unique(labels[name])),
        }
    first = labels["a"]
    for name, other in labels.items():
        runs[name]["equal_share_vs_a"] = round(float((other == first).mean()), 6)
        runs[name]["ari_vs_a"] = round(adjusted_rand_index(other, first), 6)
    with rasterio.open(truth) as src:
        truth_ari = adjusted_rand_index(first, src.read(1))
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(
        json.dumps(
            {
                "device": device,
                "torch": torch.__version__,
                "deterministic": args.deterministic,
                "runs": runs,
                "ari_vs_truth": round(truth_ari, 4),
                "warnings": sorted(warned)[:20],
            }
        )
    )


if __name__ == "__main__":
    main()
