from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from geoseg.errors import InputError
from geoseg.evaluate import adjusted_rand_index, hungarian_miou


@pytest.fixture
def truth() -> np.ndarray:
    t = np.ones((20, 20), int)  # classes 1..3, 0 would be nodata
    t[:, 10:] = 2
    t[10:, :10] = 3
    return t


def test_perfect_and_permuted(truth: np.ndarray) -> None:
    assert adjusted_rand_index(truth, truth) == 1.0
    assert hungarian_miou(truth, truth) == 1.0
    permuted = np.array([0, 5, 9, 7])[truth]
    assert adjusted_rand_index(permuted, truth) == 1.0
    assert hungarian_miou(permuted, truth) == 1.0


def test_random_is_near_zero(truth: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    big = np.repeat(np.repeat(truth, 10, 0), 10, 1)
    assert abs(adjusted_rand_index(rng.integers(1, 4, big.shape), big)) < 0.01


def test_miou_known_value() -> None:
    truth = np.array([[1, 1, 2, 2]])
    pred = np.array([[1, 1, 1, 2]])
    # class 1 <-> 1: IoU 2/3; class 2 <-> 2: IoU 1/2
    assert hungarian_miou(pred, truth) == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_missing_predicted_class_scores_zero() -> None:
    truth = np.array([[1, 2, 3, 3]])
    pred = np.array([[1, 1, 2, 2]])
    # best matching: 3<->2 (IoU 1), 1<->1 (IoU 1/2), class 2 unmatched (0)
    assert hungarian_miou(pred, truth) == pytest.approx((1 + 0.5 + 0) / 3)


def test_ignore_and_nodata(truth: np.ndarray) -> None:
    pred = truth.copy()
    pred[0, 0] = -1  # nodata in the prediction is left out
    noisy_truth = truth.copy()
    noisy_truth[:2] = 9  # 'none' in the reference, ignored
    pred[:2] = 4
    assert adjusted_rand_index(pred, noisy_truth, ignore=9) == 1.0


def test_shape_mismatch() -> None:
    with pytest.raises(InputError, match="differ in shape"):
        adjusted_rand_index(np.zeros((2, 2)), np.zeros((3, 3)))


def test_report_perfect_and_permuted(truth: np.ndarray) -> None:
    from geoseg.evaluate import evaluate_maps

    for pred in (truth, np.array([0, 5, 9, 7])[truth]):
        report = evaluate_maps(pred, truth, ignore=None)
        for key in ("ari", "nmi", "miou", "boundary_f1", "boundary_precision", "boundary_recall"):
            assert report[key] == pytest.approx(1.0), key
        assert report["pixels"] == truth.size
        assert all(row["iou"] == pytest.approx(1.0) for row in report["per_class"])


def test_report_random_labels_score_near_zero() -> None:
    from geoseg.evaluate import evaluate_maps

    rng = np.random.default_rng(1)
    truth = np.repeat(np.repeat(rng.integers(1, 5, (20, 20)), 10, 0), 10, 1)  # 40k pixels
    report = evaluate_maps(rng.integers(0, 4, truth.shape), truth, tolerance=0)
    assert abs(report["ari"]) < 0.02
    assert report["nmi"] < 0.02
    # noise has boundaries everywhere; about a third of the pixels are truth boundaries
    assert report["boundary_precision"] < 0.5
    assert report["boundary_recall"] > 0.9


def test_report_agrees_with_sklearn_and_brute_force_matching() -> None:
    from itertools import permutations

    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from geoseg.evaluate import evaluate_maps

    rng = np.random.default_rng(2)
    truth = rng.integers(0, 4, (30, 40))  # 0 = ignored
    pred = np.where(rng.random(truth.shape) < 0.7, truth + 10, rng.integers(10, 14, truth.shape))
    pred[:3] = -1  # nodata in the prediction
    truth[-2:, :5] = -1  # nodata in the reference
    report = evaluate_maps(pred, truth, ignore=0)
    keep = (pred >= 0) & (truth >= 0) & (truth != 0)
    assert report["pixels"] == keep.sum()
    assert report["ari"] == pytest.approx(adjusted_rand_score(truth[keep], pred[keep]))
    assert report["nmi"] == pytest.approx(normalized_mutual_info_score(truth[keep], pred[keep]))

    def iou(t: int, p: int) -> float:
        a, b = truth[keep] == t, pred[keep] == p
        return (a & b).sum() / (a | b).sum()

    best = max(
        sum(iou(t, p) for t, p in zip((1, 2, 3), chosen, strict=True))
        for chosen in permutations(np.unique(pred[keep]).tolist(), 3)
    )
    assert report["miou"] == pytest.approx(best / 3)
    assert [row["truth"] for row in report["per_class"]] == [1, 2, 3]
    assert [row["pred"] for row in report["per_class"]] == [11, 12, 13]


def test_per_class_iou_and_unmatched_class() -> None:
    import json

    from geoseg.evaluate import evaluate_maps

    report = evaluate_maps(np.array([[1, 1, 2, 2]]), np.array([[1, 2, 3, 3]]))
    assert report["per_class"] == [
        {"truth": 1, "pred": 1, "iou": 0.5, "pixels": 1},
        {"truth": 2, "pred": None, "iou": 0.0, "pixels": 1},  # fewer predicted classes
        {"truth": 3, "pred": 2, "iou": 1.0, "pixels": 2},
    ]
    assert report["miou"] == pytest.approx(0.5)
    assert json.loads(json.dumps(report)) == report  # JSON-ready values


def test_scored_pixels_drops_nodata_of_either_map() -> None:
    from geoseg.evaluate import scored_pixels

    keep = scored_pixels(np.array([[0, 1, 1, 1, 1]]), np.array([[1, 0, -1, 9, 1]]), ignore=9)
    assert keep.tolist() == [[False, False, False, False, True]]


def test_file_maps_keep_their_class_zero_and_ids() -> None:
    from geoseg.evaluate import evaluate_file_maps

    truth = np.array([[0, 0, 1, 1, -1, 2]])  # as read from a file: -1 at its nodata
    pred = np.array([[0, 0, 0, 2, 2, 2]])
    report = evaluate_file_maps(pred, truth, ignore=None)
    assert report["pixels"] == 5
    assert report["ignore"] is None
    assert [row["truth"] for row in report["per_class"]] == [0, 1, 2]
    assert evaluate_file_maps(pred, truth)["truth_classes"] == 2  # 0 = unlabelled


# --- boundary F1: hand-made maps -------------------------------------------------------------


def test_boundary_shifted_by_one_pixel() -> None:
    from geoseg.evaluate import boundary_f1, boundary_pixels

    truth = np.ones((4, 6), int)
    truth[:, 3:] = 2  # edge between columns 2 | 3: boundary pixels in columns 2 and 3
    pred = np.ones((4, 6), int)
    pred[:, 4:] = 2  # edge between columns 3 | 4: boundary pixels in columns 3 and 4
    assert np.flatnonzero(boundary_pixels(pred, np.ones(pred.shape, bool)).any(0)).tolist() == [
        3,
        4,
    ]
    # tolerance 0: only column 3 is shared -> precision 4/8, recall 4/8
    assert boundary_f1(pred, truth, tolerance=0) == pytest.approx((0.5, 0.5, 0.5))
    assert boundary_f1(pred, truth, tolerance=0.9) == pytest.approx((0.5, 0.5, 0.5))
    # tolerance 1: column 4 is 1 px from column 3 and column 2 from column 3
    assert boundary_f1(pred, truth, tolerance=1) == pytest.approx((1.0, 1.0, 1.0))


def test_boundary_extra_predicted_edge() -> None:
    from geoseg.evaluate import boundary_f1

    truth = np.ones((4, 6), int)
    truth[:, 3:] = 2  # 8 boundary pixels: columns 2 and 3
    pred = truth.copy()
    pred[2:, 3:] = 3  # adds an edge between rows 1 | 2 in columns 3..5
    # pred boundary: the 8 of truth + (1, 4), (1, 5), (2, 4), (2, 5) = 12 pixels
    # tolerance 0: precision 8/12, recall 1, F1 = 2 * (2/3) / (5/3) = 0.8
    assert boundary_f1(pred, truth, tolerance=0) == pytest.approx((2 / 3, 1.0, 0.8))
    # tolerance 1: (1, 4) and (2, 4) are 1 px from column 3; column 5 is 2 px away
    assert boundary_f1(pred, truth, tolerance=1) == pytest.approx((10 / 12, 1.0, 10 / 11))
    assert boundary_f1(pred, truth, tolerance=2) == pytest.approx((1.0, 1.0, 1.0))


def test_boundary_conventions_without_edges_and_at_ignored_pixels() -> None:
    from geoseg.evaluate import boundary_f1

    flat = np.ones((5, 5), int)
    assert boundary_f1(flat * 3, flat) == (1.0, 1.0, 1.0)  # neither map has a boundary
    split = flat.copy()
    split[:, 2:] = 2
    assert boundary_f1(flat, split)[2] == 0.0  # only the reference has one
    assert boundary_f1(split, flat)[2] == 0.0  # only the prediction has one
    # an edge against ignored (or nodata) pixels is no boundary
    truth = split.copy()
    truth[:, 2:] = 0
    assert boundary_f1(flat, truth) == (1.0, 1.0, 1.0)
    truth[:, 2:] = 7
    assert boundary_f1(flat, truth, ignore=7) == (1.0, 1.0, 1.0)


def test_bad_inputs() -> None:
    from geoseg.errors import ConfigError
    from geoseg.evaluate import evaluate_maps

    with pytest.raises(ConfigError, match="tolerance=-1 must be >= 0"):
        evaluate_maps(np.ones((2, 2), int), np.ones((2, 2), int), tolerance=-1)
    with pytest.raises(InputError, match="integer class ids"):
        evaluate_maps(np.ones((2, 2)), np.ones((2, 2), int))
    with pytest.raises(InputError, match="no pixel left"):
        evaluate_maps(np.ones((2, 2), int), np.zeros((2, 2), int))  # all ignored


# --- geoseg evaluate ---------------------------------------------------------------------------


def _write(path: Path, labels: np.ndarray, *, pixel: float = 10, **kwargs: Any) -> Path:
    from affine import Affine
    from rasterio.crs import CRS

    from geoseg.io.raster_write import write_image

    write_image(
        path,
        labels[None].astype(np.uint8),
        transform=kwargs.pop("transform", Affine(pixel, 0, 500000, 0, -pixel, 4600000)),
        crs=kwargs.pop("crs", CRS.from_epsg(32618)),
        **kwargs,
    )
    return path


@pytest.fixture
def truth_tif(tmp_path: Path, truth: np.ndarray) -> Path:
    reference = truth + 1
    reference[:2] = 0  # unlabelled, ignored by default
    return _write(tmp_path / "truth.tif", reference)


def test_cli_json(tmp_path: Path, truth: np.ndarray, truth_tif: Path) -> None:
    import json

    from typer.testing import CliRunner

    from geoseg.cli import app

    pred = np.array([0, 4, 8, 6])[truth]
    pred[5, 5] = 255
    labels = _write(tmp_path / "labels.tif", pred, nodata=255)
    result = CliRunner().invoke(app, ["evaluate", str(labels), str(truth_tif), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {"ari", "nmi", "miou", "boundary_f1", "per_class", "pixels", "labels"} <= set(report)
    assert report["ari"] == report["miou"] == report["boundary_f1"] == 1.0
    assert report["pixels"] == truth.size - 2 * 20 - 1  # rows 0-1 ignored, one nodata pixel
    assert report["ignore"] == 0
    assert report["tolerance"] == 2

    result = CliRunner().invoke(
        app, ["evaluate", str(labels), str(truth_tif), "--json", "--ignore", "none"]
    )
    assert json.loads(result.stdout)["pixels"] == truth.size - 1
    bad = CliRunner().invoke(app, ["evaluate", str(labels), str(truth_tif), "--ignore", "x"])
    assert bad.exit_code == 2
    assert "neither a class id nor 'none'" in bad.output


def test_cli_tables(tmp_path: Path, truth: np.ndarray, truth_tif: Path) -> None:
    from typer.testing import CliRunner

    from geoseg.cli import app

    labels = _write(tmp_path / "labels.tif", truth)
    result = CliRunner().invoke(app, ["evaluate", str(labels), str(truth_tif)])
    assert result.exit_code == 0, result.output
    for text in ("labels.tif vs truth.tif", "ARI", "NMI", "mIoU", "boundary F1", "per-class IoU"):
        assert text in result.stdout


def test_cli_grids_must_match(tmp_path: Path, truth: np.ndarray, truth_tif: Path) -> None:
    from rasterio.crs import CRS
    from typer.testing import CliRunner

    from geoseg.cli import app

    coarse = _write(tmp_path / "coarse.tif", (truth + 1)[::2, ::2], pixel=20)
    result = CliRunner().invoke(app, ["evaluate", str(coarse), str(truth_tif)])
    assert result.exit_code == 1
    assert f"{coarse} and {truth_tif} differ in grid (10x10 px of 20 x 20" in result.output
    assert f"pass --resample nearest to align {coarse} onto {truth_tif}'s grid" in result.output
    other_crs = _write(tmp_path / "utm19.tif", truth + 1, crs=CRS.from_epsg(32619))
    result = CliRunner().invoke(app, ["evaluate", str(other_crs), str(truth_tif)])
    assert result.exit_code == 1
    assert "differ in CRS (EPSG:32619 vs EPSG:32618)" in result.output


def test_cli_resample_half_resolution(tmp_path: Path, truth: np.ndarray, truth_tif: Path) -> None:
    import json

    from typer.testing import CliRunner

    from geoseg.cli import app

    # truth's classes are 10x10 px blocks: a 20 m copy upsampled by nearest is exact
    coarse = _write(tmp_path / "coarse.tif", np.array([0, 3, 1, 2])[truth][::2, ::2], pixel=20)
    result = CliRunner().invoke(
        app, ["evaluate", str(coarse), str(truth_tif), "--resample", "nearest", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["pixels"] == truth.size - 2 * 20
    assert report["ari"] == report["miou"] == report["boundary_f1"] == 1.0


def test_read_label_pair_leaves_outside_pixels_nodata(tmp_path: Path, truth_tif: Path) -> None:
    from geoseg.io.labels import read_label_pair

    half = _write(tmp_path / "half.tif", np.ones((20, 10), np.uint8))  # left half only
    pred, ref, grid = read_label_pair(half, truth_tif, resample=True)
    assert (grid.height, grid.width) == ref.shape == pred.shape == (20, 20)
    assert (pred[:, :10] == 1).all()
    assert (pred[:, 10:] == -1).all()
