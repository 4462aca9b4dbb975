"""The output folder of a run (:mod:`geoseg.run.folder`): written as one set, a rerun
replaces it, a vector layer outside it is published with it; the folder is untrusted: a
run deletes nothing outside it, and one writer at a time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest
import yaml

from geoseg.run import run_scene
from tests.helpers import SET_FAST, InProcess, geoseg, snapshot, write_scene
from tests.helpers import fast_config as config


def test_rerun_replaces_the_outputs_as_a_set(scene, tmp_path: Path) -> None:
    """A rerun with other outputs removes what the earlier run wrote and this one does
    not (its animation and GeoJSON); no work folder stays."""
    out = tmp_path / "out"
    first = config("output.vector=segments.geojson", "output.snapshots=[1,2]")
    run_scene(scene[0], out, first)
    assert {"training.gif", "segments.geojson"} <= {p.name for p in out.iterdir()}
    run_scene(scene[0], out, config())
    assert sorted(p.name for p in out.iterdir()) == [
        "labels.tif",
        "quicklook.png",
        "report.html",
        "run.yaml",
        "segments.gpkg",
    ]
    listed = yaml.safe_load((out / "run.yaml").read_text())["outputs"]
    assert sorted(listed) == ["labels.tif", "quicklook.png", "report.html", "segments.gpkg"]


def test_vector_elsewhere_is_published_with_the_run(scene, tmp_path: Path) -> None:
    """A Shapefile outside OUTDIR: staged with the run, all its parts moved at the end."""
    layer = tmp_path / "layers" / "seg.shp"
    layer.parent.mkdir()
    result = run_scene(scene[0], tmp_path / "out", config(f"output.vector={layer}"))
    assert result.vector == layer
    assert {".shp", ".shx", ".dbf", ".prj", ".cpg"} <= {p.suffix for p in layer.parent.iterdir()}
    assert not (tmp_path / "out" / ".geoseg-run").exists()
    assert gpd.read_file(layer).shape[0] == result.n_features


def test_a_planted_record_deletes_nothing_outside_the_folder(
    in_process: InProcess, tmp_path: Path
) -> None:
    """The issue's case: ``run.yaml`` in OUTDIR lists files outside it, absolute and
    with ``..``; a run there replaces the folder's outputs and leaves those files."""
    write_scene(tmp_path / "c.tif", rows=64, cols=96, bands=4)
    victim, evil = tmp_path / "victim", tmp_path / "evil"
    victim.mkdir()
    evil.mkdir()
    for name in ("precious.txt", "precious.shp", "precious.dbf", "inside.txt"):
        (victim / name).write_text("x")
    (evil / "mine.txt").write_text("mine")  # inside, not an output: stays too
    listed = [
        str(victim / "precious.txt"),
        "../victim/precious.shp",
        "mine/../../victim/inside.txt",
    ]
    (evil / "run.yaml").write_text("outputs:\n" + "".join(f"- {p}\n" for p in listed))
    (evil / "link").symlink_to(victim)  # inside by name, outside once resolved
    (evil / "run.yaml").write_text((evil / "run.yaml").read_text() + "- link/inside.txt\n")
    before = snapshot(victim)
    done = in_process(["run", "c.tif", "-o", "evil", "-q", *SET_FAST], tmp_path)
    assert done.returncode == 0, done.stderr
    assert snapshot(victim) == before
    assert (evil / "mine.txt").read_text() == "mine"
    assert (evil / "labels.tif").exists()


@pytest.mark.slow  # two runs
def test_a_vector_layer_elsewhere_survives_a_rerun_without_it(tmp_path: Path) -> None:
    """``--vector /elsewhere/seg.shp``, then a plain rerun: the shapefile (every part)
    is the user's now and stays; the folder's own outputs are replaced."""
    write_scene(tmp_path / "c.tif", rows=64, cols=96, bands=4)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    first = geoseg(
        ["run", "c.tif", "-o", "out", "-q", "--vector", str(elsewhere / "seg.shp"), *SET_FAST],
        tmp_path,
    )
    assert first.returncode == 0, first.stderr
    before = snapshot(elsewhere)
    assert {Path(name).suffix for name in before} >= {".shp", ".shx", ".dbf", ".prj"}
    again = geoseg(["run", "c.tif", "-o", "out", "-q", "--max-iterations", "3", *SET_FAST],
                   tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert snapshot(elsewhere) == before
    assert (tmp_path / "out" / "segments.gpkg").exists()


def test_the_scratch_folder_is_not_followed_through_a_link(
    in_process: InProcess, tmp_path: Path
) -> None:
    """OUTDIR/.geoseg-run as a symbolic link to another folder: the run neither writes
    nor empties that folder."""
    write_scene(tmp_path / "c.tif", rows=64, cols=96, bands=4)
    victim = tmp_path / "victim"
    (victim / "stage").mkdir(parents=True)
    (victim / "stage" / "precious.txt").write_text("x")
    (victim / "scratch").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / ".geoseg-run").symlink_to(victim)
    before = snapshot(victim)
    done = in_process(["run", "c.tif", "-o", "out", "-q", *SET_FAST], tmp_path)
    assert done.returncode == 0, done.stderr
    assert snapshot(victim) == before
    assert not (tmp_path / "out" / ".geoseg-run").exists()


@pytest.mark.slow
def test_two_runs_at_once_into_one_folder_one_fails(tmp_path: Path) -> None:
    """Two ``geoseg run`` started together into one folder: one completes, the other
    ends with one line, and the folder holds a complete run."""
    write_scene(tmp_path / "c.tif", rows=256, cols=256, bands=4)
    args = ["run", "c.tif", "-o", "out", "-q", *SET_FAST, "--max-iterations", "20"]
    command = [sys.executable, "-m", "geoseg", *args]
    runs = [subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]  # fmt: skip
    results = [(run.wait(timeout=300), run.stderr.read() if run.stderr else "") for run in runs]
    statuses = sorted(status for status, _ in results)
    assert statuses == [0, 1], results
    failed = next(err for status, err in results if status == 1)
    assert "another geoseg run" in failed
    assert (tmp_path / "out" / "run.yaml").exists()
