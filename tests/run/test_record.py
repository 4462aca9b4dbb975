"""The run record (:mod:`geoseg.run.record`): ``run.yaml`` read back as written, a
finished run of one configuration recognised, anything else refused as no record."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from geoseg.config import YAML_MAX_BYTES
from geoseg.run import RunResult
from geoseg.run.record import RunRecord, completed
from tests.helpers import fast_config


def test_the_record_reads_back_as_written(scene_run: RunResult) -> None:
    record = RunRecord.read(scene_run.record)
    assert record.to_dict() == yaml.safe_load(scene_run.record.read_text())
    assert record.classes.count == scene_run.n_classes
    assert "labels.tif" in record.outputs


def test_completed_is_a_finished_run_of_this_configuration_only(
    scene_run: RunResult, tmp_path: Path
) -> None:
    outdir = scene_run.record.parent
    assert completed(outdir, fast_config()) == RunRecord.read(scene_run.record)
    assert completed(outdir, fast_config("segment.max_iterations=5")) is None
    assert completed(tmp_path / "nothing", fast_config()) is None
    copy = tmp_path / "copy"
    shutil.copytree(outdir, copy)
    (copy / "quicklook.png").unlink()  # an output the record lists is gone
    assert completed(copy, fast_config()) is None


@pytest.mark.parametrize(
    "text",
    ["scene: [unclosed\n", "just text\n", "scene: a.tif\noutputs: [labels.tif]\n",
     "x" * (YAML_MAX_BYTES + 1)],
    ids=["bad YAML", "not a mapping", "parts missing", "too large"],
)  # fmt: skip
def test_what_is_no_record_is_one_value_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"run.yaml: not a geoseg run record \("):
        RunRecord.read(path)
    assert completed(tmp_path, fast_config()) is None
