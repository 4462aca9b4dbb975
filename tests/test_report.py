from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.windows import Window
from scipy.ndimage import gaussian_filter

from geoseg.errors import InputError
from geoseg.io.labels import class_counts, write_labels
from geoseg.io.raster_write import write_image
from geoseg.report import REPORT, SEAM_CONTROL, write_report
from geoseg.run import RunRecord, RunResult
from geoseg.sample import sample_transform
from geoseg.seams import seam_boundary_ratio, seam_boundary_ratio_windowed
from geoseg.tiling import seam_cuts
from tests.helpers import ci_tool

HEIGHT, WIDTH, TILE, OVERLAP = 200, 260, 64, 16  # scene_run's scene and FAST tiles


@dataclass(frozen=True)
class Run:
    outdir: Path
    record: RunRecord
    labels: np.ndarray
    row_cuts: np.ndarray
    col_cuts: np.ndarray
    page: str


@pytest.fixture(scope="module")
def run(scene_run: RunResult, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The tests' fast multi-tile run (four classes, a nodata corner), copied into a folder
    of this module's, and its report."""
    outdir = shutil.copytree(scene_run.labels.parent, tmp_path_factory.mktemp("report") / "out")
    record = RunRecord.read(outdir / "run.yaml")
    rows, cols = seam_cuts(HEIGHT, WIDTH, tile_size=TILE, overlap=OVERLAP)
    page = write_report(outdir, record, row_cuts=rows, col_cuts=cols)
    with rasterio.open(outdir / "labels.tif") as src:
        labels = src.read(1)
    return Run(outdir, record, labels, rows, cols, page.read_text(encoding="utf-8"))


def test_report_is_written_whole_beside_the_outputs(run: Run) -> None:
    assert (run.outdir / REPORT).is_file()
    assert not [p.name for p in run.outdir.iterdir() if ".part" in p.name]
    assert run.page.startswith("<!DOCTYPE html>")
    assert run.page.rstrip().endswith("</html>")


def test_report_loads_nothing_from_elsewhere(run: Run) -> None:
    assert not re.search(r"https?://", run.page)
    assert not re.search(r"<(script|link|iframe)\b|@import|url\(", run.page)
    links = re.findall(r"\b(?:src|href)\s*=\s*[\"']?([^\"'\s>]+)", run.page)
    assert links  # the quicklook
    assert all(link.startswith("data:") for link in links), links


def test_legend_lists_every_class_with_its_share(run: Run) -> None:
    rows = re.findall(
        r'<tr class=cls data-class="(\d+)">.*?<td class=share>([\d.]+) %</td>', run.page
    )
    ids = [int(k) for k, _ in rows]
    assert ids == np.unique(run.labels[run.labels > 0]).tolist()
    assert len(ids) == run.record.classes.count >= 2
    assert sum(float(share) for _, share in rows) == pytest.approx(100.0, abs=0.1)
    assert "<h2>Classes</h2>" in run.page
    assert "nodata" in run.page  # the nodata corner has its own row
    assert "km²" in run.page or "m²" in run.page


def test_class_counts_equal_the_bincount_of_the_labels(run: Run, tmp_path: Path) -> None:
    np.testing.assert_array_equal(
        class_counts(run.outdir / "labels.tif"), np.bincount(run.labels.ravel())
    )
    # many 256 px blocks, uint16 ids
    labels = np.random.default_rng(1).integers(0, 400, (600, 700))
    write_labels(tmp_path / "big.tif", labels)
    with rasterio.open(tmp_path / "big.tif") as src:
        assert len(list(src.block_windows(1))) > 1
    np.testing.assert_array_equal(class_counts(tmp_path / "big.tif"), np.bincount(labels.ravel()))


def test_class_counts_refuse_float_rasters(tmp_path: Path) -> None:
    path = tmp_path / "float.tif"
    write_image(path, np.zeros((1, 4, 4), np.float32), transform=sample_transform(), crs=None)
    with pytest.raises(InputError, match="integer ids"):
        class_counts(path)


def blobs(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Smooth irregular classes 0..3, nodata (-1) in a corner and a stripe."""
    rng = np.random.default_rng(seed)
    field = gaussian_filter(rng.normal(size=shape), 3)
    labels = np.digitize(field, np.quantile(field, [0.25, 0.5, 0.75]))
    labels[: shape[0] // 5, : shape[1] // 4] = -1
    labels[:, shape[1] // 2] = -1
    return labels


def reader(labels: np.ndarray, reads: list[Window] | None = None) -> Any:
    def read(window: Window) -> np.ndarray:
        if reads is not None:
            reads.append(window)
        r, c = int(window.row_off), int(window.col_off)
        return labels[r : r + int(window.height), c : c + int(window.width)]

    return read


@pytest.mark.parametrize(
    ("shape", "row_cuts", "col_cuts", "block_size", "seed"),
    [
        ((200, 260), [56, 112, 168], [56, 112, 168, 224], 2048, 0),
        ((200, 260), [56, 112, 168], [56, 112, 168, 224], 37, 1),  # blocks along seams
        ((150, 90), [20, 30], [], 64, 2),  # control zones overlap and hit the edges
        ((120, 300), [], [5, 295], 1000, 3),
        ((60, 60), [], [], 16, 4),
    ],
)
def test_windowed_seam_ratio_equals_the_in_memory_one(
    shape: tuple[int, int], row_cuts: list[int], col_cuts: list[int], block_size: int, seed: int
) -> None:
    labels = blobs(shape, seed)
    rows, cols = np.array(row_cuts, int), np.array(col_cuts, int)
    expected = seam_boundary_ratio(labels, row_cuts=rows, col_cuts=cols, control=(8, 40))
    got = seam_boundary_ratio_windowed(
        reader(labels), shape, row_cuts=rows, col_cuts=cols, control=(8, 40), block_size=block_size
    )
    assert got == expected


def test_windowed_seam_ratio_reads_only_around_the_cuts() -> None:
    labels = blobs((400, 400), 5)
    reads: list[Window] = []
    seam_boundary_ratio_windowed(reader(labels, reads), labels.shape, row_cuts=[200], col_cuts=[])
    assert reads
    assert all(int(w.height) <= 2 * 40 + 2 for w in reads)
    assert sum(int(w.height) * int(w.width) for w in reads) < labels.size / 4


def test_windowed_seam_ratio_refuses_cuts_outside_the_map() -> None:
    labels = blobs((50, 50), 6)
    with pytest.raises(InputError, match=r"row_cuts=\[50\] must lie in 1..49"):
        seam_boundary_ratio_windowed(reader(labels), labels.shape, row_cuts=[50], col_cuts=[])


def test_report_seam_figures_match_the_whole_map(run: Run) -> None:
    assert run.row_cuts.size
    assert run.col_cuts.size
    ratio, seam, near = seam_boundary_ratio(
        run.labels.astype(np.int32) - 1,
        row_cuts=run.row_cuts,
        col_cuts=run.col_cuts,
        control=SEAM_CONTROL,
    )
    assert f"<td>{ratio:.3f}</td>" in run.page
    assert f"<td>{seam:.4f}</td>" in run.page
    assert f"<td>{near:.4f}</td>" in run.page


def test_one_tile_and_no_vector_layer_are_said(run: Run, tmp_path: Path) -> None:
    outdir = shutil.copytree(run.outdir, tmp_path / "out")
    record = dataclasses.replace(run.record, vector=None)
    page = write_report(outdir, record, row_cuts=[], col_cuts=[]).read_text(encoding="utf-8")
    assert "one tile: no seams" in page
    assert "no vector layer" in page
    assert "<h2>Segment sizes</h2>" in page


def test_segment_size_histogram_is_inline_svg(run: Run) -> None:
    assert run.record.vector.features > 0
    assert "<svg" in run.page
    assert "pixels per polygon (log scale)" in run.page
    assert f"{run.record.vector.features:,} polygons" in run.page


@pytest.mark.slow
def test_report_renders_in_a_browser(run: Run, tmp_path: Path) -> None:
    browser = ci_tool("chromium", "chromium")
    shot = tmp_path / "report.png"
    common = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    url = (run.outdir / REPORT).resolve().as_uri()
    subprocess.run(
        [*common, f"--screenshot={shot}", "--window-size=1200,1600", url],
        capture_output=True,
        timeout=180,
        check=True,
    )
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (1600, 1200)
    not_white = (pixels < 240).any(axis=2).mean()
    colours = np.unique(pixels.reshape(-1, 3), axis=0).shape[0]
    assert not_white > 0.05, not_white  # the quicklook, tables, charts on a pale page
    assert colours > 500, colours  # the quicklook, not a blank or error page
    dom = subprocess.run(
        [*common, "--dump-dom", url], capture_output=True, timeout=180, check=True, text=True
    ).stdout
    assert "<h2>Classes</h2>" in dom
    assert "class 1" in dom
    assert "Tile seams" in dom
