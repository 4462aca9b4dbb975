"""Quality benchmark: geoseg against the fork preset and per-pixel k-means on real labels.

Every image/label pair in ``../shared/data/labelled_dev/`` plus the NC Landsat scene
against landclass96 is segmented by ``geoseg run`` (a subprocess: the seconds are the
wall time of the command from the shell, start-up included) with

* ``default``: the defaults;
* ``classes``: the defaults with ``--classes K`` (K = classes present in the labels);
* ``fork``: ``--preset fork``;
* ``kmeans``: scikit-learn's KMeans (k = K, ``random_state=0``) on the valid pixels'
  band values (in-process; its seconds are the fit alone);
* ``scribbles`` (not run unless asked for): strokes made from the labels by
  ``scripts/make_scribbles.py`` (seeded by the run's seed, at most 0.5 % of the labelled
  pixels), then ``geoseg run --scribbles``; besides the usual scores, ``named_miou`` and
  ``accuracy`` match classes by name (the stroke's label value), not by Hungarian
  matching, and ``rf_named_miou`` / ``rf_accuracy`` are those of a per-pixel
  scikit-learn random forest (100 trees, seeded) trained on the band values of the same
  stroke pixels.

Each labels.tif is scored against the hand labels (label 0 ignored) with ARI, NMI,
Hungarian mIoU and boundary F1 (2 px). Prints one JSON line per (image, method), then
a speed line (default against fork on a 481x321 window of the Landsat 7 scene, wall time
of both commands in the same run) and a summary line: per method the means, and the
issue's checks (default >= fork and k-means on every image, ``--classes K`` ahead of
both by >= 0.05 mean ARI, default >= 5x faster than fork).

    python scripts/bench_quality.py                       # everything (about 30 min)
    python scripts/bench_quality.py --methods default,kmeans --images dubai_coast
    python scripts/bench_quality.py --methods default,default_min_area_0 --no-speed
    python scripts/bench_quality.py --methods fork,kmeans --no-speed > a.jsonl  # in parts
    python scripts/bench_quality.py --methods default,classes > b.jsonl
    python scripts/bench_quality.py --summarize a.jsonl b.jsonl
    python scripts/bench_quality.py --methods default --no-speed \
        --run-args "--set segment.max_iterations=18" > v.jsonl    # a variant
    python scripts/bench_quality.py --compare b.jsonl v.jsonl     # v against b, run by run
    python scripts/bench_quality.py --methods default --keep runs/ --no-speed

``--compare`` pairs the runs of two outputs by (image, method, seed), so a variant stopped
part way is compared on the runs it finished; ``--keep`` leaves every run's output folder
(``DIR/<image>/<method>_<seed>``) for looking at the label maps afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window
from sklearn.cluster import KMeans

from geoseg.evaluate import evaluate_maps

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
METHODS = ("default", "classes", "fork", "kmeans")
RUN_ARGS = {
    "default": [],
    "classes": ["--classes", "{K}"],
    "fork": ["--preset", "fork"],
    # not run unless asked for: the defaults without small-region merging
    "default_min_area_0": ["--min-area", "0"],
    "scribbles": ["--scribbles", "{STROKES}"],
}
MAKE_SCRIBBLES = Path(__file__).with_name("make_scribbles.py")


def pairs(data: Path) -> list[tuple[str, Path, Path]]:
    """(name, image, labels) of every labelled_dev pair plus the NC Landsat scene."""
    found = [
        (d.name, d / "image.tif", d / "labels.tif")
        for d in sorted((data / "labelled_dev").iterdir())
        if (d / "labels.tif").exists()
    ]
    nc = data / "nc_landsat7_landclass96"
    found.append(
        (
            "nc_landsat7",
            nc / "lsat7_2000_B1-B5_28m5_uint8.tif",
            nc / "landclass96_on_lsat7_grid_labels.tif",
        )
    )
    return found


def geoseg_run(image: Path, outdir: Path, extra: list[str]) -> tuple[np.ndarray, float, dict]:
    """Labels (1..K, 0 = nodata), wall seconds and run.yaml of one ``geoseg run`` command."""
    import yaml

    outdir.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "geoseg", "run", str(image), "-o", str(outdir), "-q"]
    start = time.perf_counter()
    subprocess.run([*command, *extra], check=True)
    seconds = time.perf_counter() - start
    with rasterio.open(outdir / "labels.tif") as src:
        labels = src.read(1).astype(np.int64)
    record = yaml.safe_load((outdir / "run.yaml").read_text())
    return labels, seconds, record


def kmeans_labels(image: Path, k: int) -> tuple[np.ndarray, float]:
    with rasterio.open(image) as src:
        data = src.read().astype(np.float32)
        valid = src.dataset_mask() > 0
    start = time.perf_counter()
    fitted = KMeans(n_clusters=k, n_init=3, random_state=0).fit(data[:, valid].T)
    seconds = time.perf_counter() - start
    labels = np.zeros(valid.shape, np.int64)  # 0 = nodata, classes 1..k
    labels[valid] = fitted.labels_ + 1
    return labels, seconds


def strokes_for(labels: Path, out: Path, seed: int) -> Path:
    """``make_scribbles.py`` strokes of ``labels`` (seeded) into ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    command = [sys.executable, str(MAKE_SCRIBBLES), str(labels), str(out), "--seed", str(seed)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return out


def named_scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    """mIoU over the true classes and pixel accuracy, a predicted class counting as the
    true class of its name (``pred`` holds label values, -1 or 0 for none)."""
    scored = truth > 0
    p, t = pred[scored], truth[scored]
    ious = [
        np.count_nonzero((p == c) & (t == c)) / np.count_nonzero((p == c) | (t == c))
        for c in np.unique(t)
    ]
    return {"named_miou": round(float(np.mean(ious)), 4),
            "accuracy": round(float(np.mean(p == t)), 4)}  # fmt: skip


def forest_labels(image: Path, strokes: Path, seed: int) -> tuple[np.ndarray, float]:
    """A random forest on the band values of the stroke pixels, applied to every pixel."""
    from sklearn.ensemble import RandomForestClassifier

    from geoseg.io.raster_read import SceneReader
    from geoseg.io.scribbles import read_scribbles

    with SceneReader(image) as reader:
        info = reader.info
    drawn = read_scribbles(strokes, "class", info)
    with rasterio.open(image) as src:
        data = src.read().astype(np.float32)
        valid = src.dataset_mask() > 0
    start = time.perf_counter()
    forest = RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=-1)
    forest.fit(data[:, drawn.rows, drawn.cols].T, drawn.classes)
    values = np.array([int(n) for n in drawn.names])
    labels = np.full(valid.shape, -1, np.int64)
    labels[valid] = values[forest.predict(data[:, valid].T)]
    return labels, time.perf_counter() - start


def by_name(pred: np.ndarray, record: dict) -> np.ndarray:
    """labels.tif ids -> the label values their names give (-1: unnamed or nodata)."""
    names = record["classes"].get("names") or []
    values = np.array([-1] + [int(n) for n in names] + [-1] * (int(pred.max()) + 1), np.int64)
    return values[np.maximum(pred, 0)]


def score(pred: np.ndarray, truth: np.ndarray) -> dict:
    report = evaluate_maps(pred, truth)  # 0 = nodata in both; truth's 0 is unlabelled
    keys = ("ari", "nmi", "miou", "boundary_f1")
    return {k: round(report[k], 4) for k in keys} | {"classes": report["pred_classes"]}


def speed(work: Path, data: Path) -> dict:
    """Wall time of default and fork on the same 481x321 picture, in this run."""
    source = data / "landsat7_rasterio_rgb" / "RGB.byte.tif"
    picture = work / "picture_481x321.tif"
    with rasterio.open(source) as src:
        window = Window(150, 200, 481, 321)
        profile = src.profile | {
            "width": 481,
            "height": 321,
            "transform": src.window_transform(window),
        }
        data = src.read(window=window)
    with rasterio.open(picture, "w", **profile) as dst:
        dst.write(data)
    seconds = {}
    for method in ("default", "fork"):
        _, seconds[method], _ = geoseg_run(picture, work / f"speed_{method}", RUN_ARGS[method])
    return {
        "speed": "481x321 RGB.byte.tif window (150, 200), geoseg run wall time",
        "default_s": round(seconds["default"], 2),
        "fork_s": round(seconds["fork"], 2),
        "fork_over_default": round(seconds["fork"] / seconds["default"], 2),
    }


def _seed_means(rows: list[dict]) -> dict[tuple[str, str], dict[str, float]]:
    """Per (image, method), ARI and mIoU averaged over the seeds that ran."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["image"], row["method"]), []).append(row)
    return {
        key: {k: float(np.mean([r[k] for r in group])) for k in ("ari", "miou")}
        for key, group in groups.items()
    }


def summary(rows: list[dict], speed_row: dict | None) -> dict:
    by: dict[str, list[dict]] = {}
    for row in rows:
        by.setdefault(row["method"], []).append(row)
    out: dict = {"summary": {}}
    for method, group in by.items():
        out["summary"][method] = {
            k: round(float(np.mean([r[k] for r in group])), 4)
            for k in ("ari", "nmi", "miou", "boundary_f1", "classes", "seconds")
        } | {"images": len(group)}
    table = _seed_means(rows)  # (image, method) -> metrics averaged over the seeds run
    images = sorted({r["image"] for r in rows})
    checks: dict = {}
    if {"default", "fork", "kmeans"} <= set(by):
        losses = [
            f"{image}: {metric} {table[image, 'default'][metric]:.4f} < {other} "
            f"{table[image, other][metric]:.4f}"
            for image in images
            for other in ("fork", "kmeans")
            for metric in ("ari", "miou")
            if table[image, "default"][metric] < table[image, other][metric]
        ]
        checks["default_never_below_fork_and_kmeans"] = not losses
        checks["default_losses"] = losses
    if {"classes", "fork", "kmeans"} <= set(by):
        s = out["summary"]
        margin = s["classes"]["ari"] - max(s["fork"]["ari"], s["kmeans"]["ari"])
        checks["classes_mean_ari_margin"] = round(margin, 4)
        checks["classes_margin_at_least_0.05"] = margin >= 0.05
    if "scribbles" in by:
        group = by["scribbles"]
        means = {k: round(float(np.mean([r[k] for r in group])), 4)
                 for k in ("named_miou", "accuracy", "rf_named_miou", "rf_accuracy")}  # fmt: skip
        out["summary"]["scribbles"] |= means
        checks["scribbles_accuracy_above_forest"] = means["accuracy"] > means["rf_accuracy"]
        if "default" in by:
            gain = means["named_miou"] - out["summary"]["default"]["miou"]
            checks["scribbles_named_miou_over_default_miou"] = round(gain, 4)
            checks["scribbles_gain_at_least_0.25"] = gain >= 0.25
            seconds = out["summary"]["scribbles"]["seconds"] / out["summary"]["default"]["seconds"]
            checks["scribbles_time_over_default"] = round(seconds, 2)
    if speed_row is not None:
        checks["default_5x_faster_than_fork"] = speed_row["fork_over_default"] >= 5
    out["checks"] = checks
    out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return out


def compare(base: list[dict], new: list[dict]) -> dict:
    """``new`` against ``base`` on the runs both hold, paired by (image, method, seed):
    each pair's scores and the mean change."""
    keys = ("ari", "miou", "boundary_f1")
    before = {(r["image"], r["method"], r["seed"]): r for r in base if "method" in r}
    pairs = [
        (before[key], r)
        for r in new
        if "method" in r and (key := (r["image"], r["method"], r["seed"])) in before
    ]
    rows = [
        {"image": n["image"], "method": n["method"], "seed": n["seed"]}
        | {k: [b[k], n[k]] for k in (*keys, "classes")}
        for b, n in pairs
    ]
    change = {
        k: round(float(np.mean([n[k] - b[k] for b, n in pairs])), 4) if pairs else None
        for k in keys
    }
    return {"compare": {"runs": len(pairs), "mean_change": change, "pairs": rows}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--images", default="", help="comma-separated names (default: all)")
    parser.add_argument("--no-speed", action="store_true", help="skip the 481x321 timing")
    parser.add_argument(
        "--seeds",
        default="0",
        help="comma-separated seeds for the geoseg methods (k-means keeps seed 0); "
        "means and checks average over them, e.g. 0,1,2",
    )
    parser.add_argument(
        "--run-args",
        default="",
        help="extra geoseg run options for every geoseg method (a variant to compare), "
        "e.g. '--set segment.max_iterations=18'",
    )
    parser.add_argument(
        "--summarize",
        nargs="+",
        type=Path,
        metavar="JSONL",
        help="only print the summary of the lines these earlier outputs hold",
    )
    parser.add_argument(
        "--compare",
        nargs=2,
        type=Path,
        metavar=("BASE", "NEW"),
        help="only compare two earlier outputs run by run (NEW against BASE)",
    )
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="keep every run's output folder under DIR"
    )
    args = parser.parse_args()
    if args.compare:
        base, new = ([json.loads(x) for x in f.read_text().splitlines() if x] for f in args.compare)
        print(json.dumps(compare(base, new)))
        return
    if args.summarize:
        lines = [json.loads(x) for f in args.summarize for x in f.read_text().splitlines() if x]
        speed_rows = [x for x in lines if "speed" in x]
        rows = [x for x in lines if "method" in x]
        print(json.dumps(summary(rows, speed_rows[-1] if speed_rows else None)))
        return
    methods = [m for m in args.methods.split(",") if m]
    known = {*METHODS, *RUN_ARGS}
    unknown = set(methods) - known
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; choose from {', '.join(sorted(known))}")
    wanted = {n for n in args.images.split(",") if n}
    seeds = [int(x) for x in args.seeds.split(",") if x]
    rows = []
    with contextlib.ExitStack() as stack:
        work = args.keep or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_quality_"))
        )
        for name, image, labels in pairs(args.data):
            if wanted and name not in wanted:
                continue
            with rasterio.open(labels) as src:
                truth = src.read(1).astype(np.int64)
            k = int(np.unique(truth[truth > 0]).size)
            for method, seed in [
                (m, sd) for m in methods for sd in ([0] if m == "kmeans" else seeds)
            ]:
                extra: dict = {}
                if method == "kmeans":
                    pred, seconds = kmeans_labels(image, k)
                else:
                    strokes = work / name / f"strokes_{seed}.gpkg"
                    if method == "scribbles":
                        strokes_for(labels, strokes, seed)
                    argv = [
                        a.replace("{K}", str(k)).replace("{STROKES}", str(strokes))
                        for a in RUN_ARGS[method]
                    ]
                    argv += ["--seed", str(seed), *shlex.split(args.run_args)]
                    pred, seconds, record = geoseg_run(
                        image, work / name / f"{method}_{seed}", argv
                    )
                    extra = {
                        "iterations": record["training"]["iterations"],
                        "polygons": record.get("vector", {}).get("features"),
                    }
                    if method == "scribbles":
                        forest, forest_s = forest_labels(image, strokes, seed)
                        extra |= named_scores(by_name(pred, record), truth)
                        extra |= {
                            f"rf_{key}": value for key, value in named_scores(forest, truth).items()
                        }
                        extra["rf_seconds"] = round(forest_s, 2)  # fmt: skip
                row = {"image": name, "method": method, "K": k, "seed": seed}
                if args.run_args and method != "kmeans":
                    row["run_args"] = args.run_args
                row |= score(pred, truth) | {"seconds": round(seconds, 2)} | extra
                rows.append(row)
                print(json.dumps(row), flush=True)
        speed_row = None
        if not args.no_speed:
            speed_row = speed(work, args.data)
            print(json.dumps(speed_row), flush=True)
    print(json.dumps(summary(rows, speed_row)), flush=True)


if __name__ == "__main__":
    main()
