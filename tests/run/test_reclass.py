"""A run's class tree: kept in run.yaml, cut to fewer classes without training again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from geoseg.errors import InputError
from geoseg.run import run_scene
from geoseg.run.reclass import cut_tree, reclass_run
from geoseg.run.record import RunRecord
from tests.helpers import fast_config, write_scene


def _labels(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """One scene run with tiles of 64 and of 128 px (the same labels, by design)."""
    root = tmp_path_factory.mktemp("reclass")
    scene, _ = write_scene(root / "scene.tif", rows=200, cols=260, bands=4, n_classes=5)
    done = {}
    for size in (64, 128):
        config = fast_config(f"tiling.tile_size={size}", "segment.max_iterations=6")
        run_scene(scene, root / f"tiles_{size}", config)
        done[size] = root / f"tiles_{size}"
    return done


def test_the_record_keeps_a_tree_that_joins_every_class(runs: dict[int, Path]) -> None:
    classes = RunRecord.read(runs[64] / "run.yaml").classes
    assert classes.count >= 3
    assert len(classes.tree) == classes.count - 1
    assert cut_tree(classes.tree, classes.count, 1)[1:].tolist() == [1] * classes.count
    assert classes.tree == RunRecord.read(runs[128] / "run.yaml").classes.tree


def test_every_cut_gives_k_classes_each_a_union_of_the_runs(
    runs: dict[int, Path], tmp_path: Path
) -> None:
    """K classes for every K, numbered 1..K; each of the run's classes lies wholly in
    one new class; the same bytes of labels whatever the run's tile size."""
    original = _labels(runs[64] / "labels.tif")
    count = RunRecord.read(runs[64] / "run.yaml").classes.count
    for k in range(1, count + 1):
        cuts = [reclass_run(runs[size], k, tmp_path / f"{size}_{k}") for size in (64, 128)]
        new = _labels(cuts[0].labels)
        assert cuts[0].n_classes == k
        assert sorted(np.unique(new[original > 0]).tolist()) == list(range(1, k + 1))
        assert (new[original == 0] == 0).all()
        for old in range(1, count + 1):
            assert np.unique(new[original == old]).size == 1
        np.testing.assert_array_equal(new, _labels(cuts[1].labels))
        assert cuts[0].vector is not None
        assert cuts[0].n_features > 0
    np.testing.assert_array_equal(_labels(runs[64] / "labels.tif"), original)  # only read


def test_a_cut_beyond_the_runs_classes_is_one_error(runs: dict[int, Path], tmp_path: Path) -> None:
    count = RunRecord.read(runs[64] / "run.yaml").classes.count
    for k in (0, count + 1):
        with pytest.raises(InputError, match=rf"--classes {k} must lie in 1\.\.{count}"):
            reclass_run(runs[64], k, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_a_run_without_a_tree_says_so(tmp_path: Path) -> None:
    scene, _ = write_scene(tmp_path / "scene.tif", rows=64, cols=64, bands=3)
    config = fast_config("segment.preset=fork", "segment.max_iterations=4")
    run_scene(scene, tmp_path / "fork", config)
    if RunRecord.read(tmp_path / "fork" / "run.yaml").classes.count > 1:
        with pytest.raises(InputError, match="no class tree"):
            reclass_run(tmp_path / "fork", 1)
    with pytest.raises(InputError, match="not a finished geoseg run"):
        reclass_run(tmp_path, 1)


def test_the_report_shows_the_tree_cut_by_cut(runs: dict[int, Path]) -> None:
    count = RunRecord.read(runs[64] / "run.yaml").classes.count
    page = (runs[64] / "report.html").read_text()
    section = page[page.index("<h2>Class tree</h2>") :].split("</section>", 1)[0]
    assert section.count("<tr><td class=r>") == count - 1
    assert " + ".join(str(k) for k in range(1, count + 1)) in section  # one class at last
