"""The resume store reads back data only: a network as tensors, checked against its key."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from geoseg.run.scratch import Scratch
from geoseg.segment.model import build_model, decorrelation
from tests.helpers import SET_FAST, fast_config, geoseg, write_scene


@pytest.fixture
def scratch(tmp_path: Path) -> Scratch:
    write_scene(tmp_path / "c.tif", rows=32, cols=32, bands=3)
    return Scratch(tmp_path / "scratch", tmp_path / "c.tif", fast_config())


def _saved(decorrelated: bool) -> dict[str, object]:
    params = fast_config().segment.params()
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    decorrelate = decorrelation(x, torch.ones(2, 16, 16, dtype=torch.bool), 0.5)
    model = build_model(3, params, decorrelate=decorrelate if decorrelated else None)
    model.train()
    model(x)  # batch-norm statistics that differ from a new network's
    split = {"source": 1, "target": 4, "normal": [0.5, 0.5], "offset": 0.1}
    return {"model": model.eval(), "in_bands": 3, "crops": [[0, 0, 16, 16]], "iterations": 2,
            "labels_at_stop": 5, "merge": [0, 1, 1, 2], "splits": [split]}  # fmt: skip


@pytest.mark.parametrize("decorrelated", [True, False])
def test_a_saved_network_comes_back_the_same(scratch: Scratch, decorrelated: bool) -> None:
    saved = _saved(decorrelated)
    scratch.save_model(saved)
    loaded = scratch.load_model()
    assert loaded is not None
    x = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        np.testing.assert_array_equal(loaded["model"](x).numpy(), saved["model"](x).numpy())
    assert {k: v for k, v in loaded.items() if k != "model"} == {
        k: v for k, v in saved.items() if k != "model"
    }


def test_a_network_saved_under_another_key_is_discarded(
    scratch: Scratch, caplog: pytest.LogCaptureFixture
) -> None:
    scratch.save_model(_saved(True))
    other = Scratch(scratch.root, Path(scratch.dir.parent.parent / "c.tif"),
                    fast_config("runtime.seed=5"))  # fmt: skip
    (other.dir).mkdir(parents=True)
    (scratch.dir / "model.pt").replace(other.dir / "model.pt")
    with caplog.at_level(logging.WARNING):
        assert other.load_model() is None
    assert "saved for another scene or configuration" in caplog.text
    assert not (other.dir / "model.pt").exists()


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


def test_a_pickle_in_the_store_is_never_run(scratch: Scratch, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    scratch.dir.mkdir(parents=True)
    torch.save({"model": _Payload(marker), "key": scratch.key}, scratch.dir / "model.pt")
    assert scratch.load_model() is None
    assert not marker.exists()


def test_plain_values_of_the_wrong_shape_are_discarded(scratch: Scratch) -> None:
    saved = _saved(False)
    scratch.save_model({**saved, "merge": "rm -rf"})
    assert scratch.load_model() is None
    scratch.save_model({**saved, "in_bands": 4})  # weights for 3 bands
    assert scratch.load_model() is None


class _Payload:
    """Unpickled, it creates the file named: what a planted scratch file could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


@pytest.mark.slow  # two runs; the tests above check the store in-process
def test_a_planted_scratch_model_runs_no_code(tmp_path: Path) -> None:
    """A pickle planted where the resume store keeps the network (the path depends on
    the scene and settings only) is not executed: it is discarded with a warning, the
    network trained again, and the run ends as a clean run does."""
    torch = pytest.importorskip("torch")
    write_scene(tmp_path / "c.tif", rows=64, cols=96, bands=4)
    args = ["run", "c.tif", "-o", "out", "-v", *SET_FAST]
    first = geoseg(args, tmp_path)
    assert first.returncode == 0, first.stderr
    store = next(line.split("resume store: ", 1)[1].strip()
                 for line in first.stderr.splitlines() if "resume store: " in line)  # fmt: skip
    marker = tmp_path / "pwned"
    model = tmp_path / store / "model.pt"
    model.parent.mkdir(parents=True)
    torch.save({"model": _Payload(marker), "crops": []}, model)
    second = geoseg(args, tmp_path)
    assert second.returncode == 0, second.stderr
    assert not marker.exists()
    assert "not a network this run saved" in second.stderr
    first_labels = rasterio.open(tmp_path / "out" / "labels.tif").read()
    assert first_labels.max() >= 1
