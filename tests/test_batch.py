"""Batch runs: failure isolation, summary, resume of scenes and tiles, Dask executor."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
import yaml
from typer.testing import CliRunner

from geoseg.batch import load_batch, run_batch
from geoseg.cli import app
from geoseg.errors import ConfigError
from tests import helpers
from tests.helpers import sections, write_scene

FAST = sections(*helpers.FAST, "segment.max_iterations=6") | {"output": {"dir": "out/{stem}"}}


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    """Three scenes, the last one truncated (corrupt)."""
    data = tmp_path / "data"
    data.mkdir()
    write_scene(data / "a.tif", rows=120, cols=150, seed=1)
    write_scene(data / "b.tif", rows=120, cols=150, seed=2)
    good = (data / "a.tif").read_bytes()
    (data / "c.tif").write_bytes(good[: len(good) // 3])
    path = tmp_path / "batch.yaml"
    path.write_text(yaml.safe_dump({"scenes": ["data/*.tif"], **FAST}))
    return path


def read_summary(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def labels_of(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def test_failure_is_isolated_and_summarized_then_resumed(batch: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["batch", str(batch), "-q"])
    assert first.exit_code == 1  # one scene failed
    rows = read_summary(batch.parent / "batch_summary.csv")
    assert [(Path(r["scene"]).name, r["status"]) for r in rows] == [
        ("a.tif", "done"),
        ("b.tif", "done"),
        ("c.tif", "failed"),
    ]
    assert "c.tif" in rows[2]["error"]
    assert "truncated" in rows[2]["error"] or "cannot be read" in rows[2]["error"]
    assert int(rows[0]["classes"]) >= 2
    assert int(rows[0]["polygons"]) > 0
    assert float(rows[0]["seconds"]) > 0
    assert "c.tif" in first.output  # the printed table
    out = batch.parent / "out"
    assert sorted(p.name for p in out.iterdir()) == ["a", "b"]  # nothing for c
    assert not list(out.glob("*/.*"))  # no scratch or temporary files
    stamp = (out / "a" / "labels.tif").stat().st_mtime_ns

    again = runner.invoke(app, ["batch", str(batch), "-q"])
    assert again.exit_code == 1
    rows = read_summary(batch.parent / "batch_summary.csv")
    assert [r["status"] for r in rows] == ["skipped", "skipped", "failed"]
    assert rows[0]["polygons"] != ""
    assert (out / "a" / "labels.tif").stat().st_mtime_ns == stamp  # not rewritten

    changed = runner.invoke(app, ["batch", str(batch), "-q", "--set", "segment.max_iterations=5"])
    assert [r["status"] for r in read_summary(batch.parent / "batch_summary.csv")] == [
        "done",
        "done",
        "failed",
    ]  # another config: the scenes run again
    assert changed.exit_code == 1


def test_per_scene_overrides_and_bad_entries(tmp_path: Path) -> None:
    write_scene(tmp_path / "a.tif", rows=120, cols=150, seed=1)
    path = tmp_path / "batch.yaml"
    scenes = [
        {"path": "a.tif", "set": ["input.bands=[3, 2, 1]"]},
        "missing/*.tif",
        {"path": "a.tif", "set": ["segment.iteratons=3"]},
    ]
    data = {"scenes": [scenes[0], "a.tif"], **FAST, "output": {"dir": "out/{stem}"}}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="several scenes write into"):
        load_batch(path)
    data["scenes"] = [*scenes[1:], scenes[0]]
    path.write_text(yaml.safe_dump(data))
    shared, items = load_batch(path)
    assert shared.runtime.executor == "local"
    assert "no file matches" in items[0].error
    assert "did you mean segment.max_iterations?" in items[1].error
    assert items[2].config is not None
    assert items[2].config.input.bands == [3, 2, 1]
    assert items[2].outdir == tmp_path / "out" / "a"
    path.write_text(yaml.safe_dump({"scenes": "a.tif"}))
    with pytest.raises(ConfigError, match="needs a non-empty list 'scenes'"):
        load_batch(path)
    path.write_text(yaml.safe_dump({"scenes": ["a.tif"], "tiling": {"tile_sise": 3}}))
    with pytest.raises(ConfigError, match=r"tiling.tile_sise: unknown key.*batch.yaml"):
        load_batch(path)


@pytest.mark.slow
def test_kill_9_then_resume_gives_the_uninterrupted_outputs(tmp_path: Path) -> None:
    # tile mode: every tile trains on its own, so the run is slow enough to kill midway
    scene, _ = write_scene(tmp_path / "scene.tif", rows=192, cols=256, seed=4)
    settings = [
        "segment.mode=tile",
        "segment.max_iterations=8",
        "tiling.tile_size=64",
        "tiling.overlap=32",
    ]
    sets = [f"--set={s}" for s in settings]
    command = [sys.executable, "-m", "geoseg", "run", str(scene), "-q", *sets]
    whole = tmp_path / "whole"
    subprocess.run([*command, "-o", str(whole)], check=True, timeout=600)

    resumed = tmp_path / "resumed"
    proc = subprocess.Popen([*command, "-o", str(resumed)])
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(resumed.glob(".geoseg-run/scratch/*/tile_*.npz"))) >= 4:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(list(resumed.glob(".geoseg-run/scratch/*/tile_*.npz")))
    assert 4 <= finished < 12
    assert not (resumed / "run.yaml").exists()  # not complete

    subprocess.run([*command, "-o", str(resumed)], check=True, timeout=600)
    record = yaml.safe_load((resumed / "run.yaml").read_text())
    assert record["tiles"]["resumed"] >= finished
    np.testing.assert_array_equal(
        labels_of(resumed / "labels.tif"), labels_of(whole / "labels.tif")
    )
    a = pyogrio.read_dataframe(whole / "segments.gpkg", layer="segments")
    b = pyogrio.read_dataframe(resumed / "segments.gpkg", layer="segments")
    assert a.drop(columns="geometry").equals(b.drop(columns="geometry"))
    assert a.geometry.geom_equals(b.geometry).all()
    assert not (resumed / ".geoseg-run").exists()  # removed once complete


@pytest.mark.slow
def test_dask_cluster_gives_the_local_outputs(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    write_scene(tmp_path / "a.tif", rows=120, cols=150, seed=5)
    write_scene(tmp_path / "b.tif", rows=120, cols=150, seed=6)
    outputs = {}
    for executor in ("local", "dask"):
        path = tmp_path / f"{executor}.yaml"
        data = {
            "scenes": ["*.tif"],
            **FAST,
            "output": {"dir": f"{executor}/{{stem}}"},
            "runtime": {"executor": executor},
        }
        path.write_text(yaml.safe_dump(data))
        shared, items = load_batch(path)
        outcomes = run_batch(items, workers=2, executor=shared.runtime.executor)
        assert [o.status for o in outcomes] == ["done", "done"], outcomes
        outputs[executor] = [Path(o.outdir) for o in outcomes]
    for local, dask in zip(outputs["local"], outputs["dask"], strict=True):
        np.testing.assert_array_equal(
            labels_of(local / "labels.tif"), labels_of(dask / "labels.tif")
        )
        a = pyogrio.read_dataframe(local / "segments.gpkg", layer="segments")
        b = pyogrio.read_dataframe(dask / "segments.gpkg", layer="segments")
        assert a.drop(columns="geometry").equals(b.drop(columns="geometry"))


def test_each_scene_takes_its_own_scribbles_beside_the_batch_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``segment.scribbles``, shared or in a scene's ``set``, is relative to the batch
    file's folder; a scene's own strokes win."""
    folder = tmp_path / "jobs"
    (folder / "data").mkdir(parents=True)
    for name in ("a", "b"):
        (folder / "data" / f"{name}.tif").write_bytes(b"")
    scenes = [{"path": "data/a.tif", "set": ["segment.scribbles=strokes/a.gpkg"]}, "data/b.tif"]
    batch = {"scenes": scenes, "segment": {"scribbles": "strokes/all.gpkg"}}
    (folder / "batch.yaml").write_text(yaml.safe_dump(batch))
    monkeypatch.chdir(tmp_path)
    _, items = load_batch(folder / "batch.yaml")
    assert [item.config.segment.scribbles for item in items if item.config] == [
        str(folder / "strokes" / "a.gpkg"),
        str(folder / "strokes" / "all.gpkg"),
    ]


def test_output_folders_resolve_beside_the_batch_file_and_clash_when_equal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paths written in the batch file (also in a scene's ``set``) are relative to its
    folder, whatever the current folder; ``--set`` is relative to the current folder.
    Two spellings of one folder (``..``, a symbolic link) are one folder."""
    folder = tmp_path / "jobs{1}"  # braces in the folder are not a template's
    (folder / "data").mkdir(parents=True)
    for name in ("a", "b", "c"):
        (folder / "data" / f"{name}.tif").write_bytes(b"")
    path = folder / "batch.yaml"
    scenes = [
        {"path": "data/a.tif", "set": ["output.dir=res/{stem}"]},
        "data/b.tif",
        {"path": "data/c.tif", "set": ["output.dir=/abs/{stem}"]},
    ]
    path.write_text(yaml.safe_dump({"scenes": scenes, "output": {"dir": "out/{stem}"}}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    _, items = load_batch(path)
    assert [item.outdir for item in items] == [
        folder / "res" / "a",
        folder / "out" / "b",
        Path("/abs/c"),
    ]
    _, items = load_batch(path, overrides=["output.dir=cli/{stem}"])
    assert [item.outdir for item in items] == [
        folder / "res" / "a",  # the scene's own setting wins, beside the batch file
        Path("cli/b"),
        Path("/abs/c"),
    ]
    scenes = [
        {"path": "data/a.tif", "set": ["output.dir=out/x"]},
        {"path": "data/b.tif", "set": ["output.dir=out/../out/x"]},
    ]
    path.write_text(yaml.safe_dump({"scenes": scenes}))
    with pytest.raises(ConfigError, match=r"several scenes write into .*out/x \(.*a.tif and"):
        load_batch(path)
    (folder / "link").symlink_to(folder / "out")
    scenes[1]["set"] = ["output.dir=link/x"]
    path.write_text(yaml.safe_dump({"scenes": scenes}))
    with pytest.raises(ConfigError, match="several scenes write into"):
        load_batch(path)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("scenes: [a.tif]\noutput: {dir: 5}\n", "output.dir=5: Input should be a valid string"),
        ("scenes: [{path: a.tif, 1: 2}]\n", "got keys ['1', 'path']"),
        ("scenes: [{path: a.tif, set: [{input.bands: [1]}]}]\n",
         "set: {'input.bands': [1]} is not a line section.key=value; quote it"),
        ("scenes: [[" + ", ".join(["x" * 100] * 100) + "]]\n", "(100 items): expected a path"),
        ('scenes: ["a\\0.tif"]\n', "'a\\x00.tif': a NUL character, which no path holds"),
        ("scenes: ['']\n", "scenes[1]='': expected a path"),
        ("scenes: [{path: ' '}]\n", "scenes[1]={'path': ' '}: expected a path"),
    ],
)  # fmt: skip
def test_bad_batch_entries_are_one_short_line(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "batch.yaml"
    path.write_text(text)
    result = CliRunner().invoke(app, ["config", "validate", str(path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert says in lines[0]
    assert len(lines[0]) < 400
