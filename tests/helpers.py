"""Helpers the tests import: tiny synthetic scenes with known answers, the fast run
configuration, the shared data folder, the Debian tools CI installs, and the ``geoseg``
command run as a user runs it (a process per call, or :class:`InProcess`).

Fixtures and pytest hooks live in ``tests/conftest.py``; this is a plain module, imported
as ``from tests.helpers import ...``.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import yaml
from rasterio.features import rasterize

from geoseg.config import Config, parse_override, resolve_config
from geoseg.io.raster_write import write_image
from geoseg.sample import SAMPLE_CRS, make_scene, sample_transform

if TYPE_CHECKING:
    from geoseg.run import RunResult

ROOT = Path(__file__).resolve().parents[1]
"""The checkout: the folder holding ``geoseg/`` and ``tests/``."""

SHARED_DATA = ROOT.parent / "shared" / "data"

FAST = (
    "segment.n_crops=6",
    "segment.crop_size=64",
    "tiling.tile_size=64",
    "tiling.overlap=32",
)
"""The one fast run configuration of the tests (``--set`` lines): small crops and tiles,
so that a 200x260 scene spans many tiles."""


def fast_config(*overrides: str) -> Config:
    """:data:`FAST` with ``overrides`` on top."""
    return resolve_config(overrides=[*FAST, *overrides])


def sections(*lines: str) -> dict[str, Any]:
    """``section.key=value`` lines (as :data:`FAST`) as the nested mapping of a config or
    batch file, each value read as ``--set`` reads it (:func:`~geoseg.config.parse_override`)."""
    out: dict[str, Any] = {}
    for line in lines:
        (section, *keys, name), value = parse_override(line)
        node = out.setdefault(section, {})
        for key in keys:
            node = node.setdefault(key, {})
        node[name] = value
    return out


def write_scene(
    path: Path,
    *,
    rows: int,
    cols: int,
    bands: int = 3,
    n_classes: int = 3,
    seed: int = 0,
    nodata_box: tuple[slice, slice] | None = None,
    **scene: float,
) -> tuple[Path, np.ndarray]:
    """A small synthetic GeoTIFF with a known answer, and that answer.

    :func:`geoseg.sample.make_scene` as uint16 DN (reflectance x 10000 + 1, so 0 is free
    for nodata), nodata 0, 10 m pixels in UTM 18N; ``nodata_box`` (rows, cols) is set to
    nodata, and the true classes (1..n) are 0 there. ``scene`` passes ``noise`` or
    ``texture`` on to ``make_scene``.
    """
    image, truth = make_scene(
        rows=rows, cols=cols, bands=bands, n_classes=n_classes, seed=seed, **scene
    )
    dn = np.round(image * 10000).astype(np.uint16) + 1
    if nodata_box is not None:
        dn[(slice(None), *nodata_box)] = 0
        truth[nodata_box] = 0
    write_image(path, dn, transform=sample_transform(), crs=SAMPLE_CRS, nodata=0)
    return path, truth


def write_four_classes(path: Path) -> tuple[Path, np.ndarray]:
    """The run tests' scene: four classes over 200x260 px (many FAST tiles), a nodata
    corner; truth 0 there."""
    return write_scene(
        path,
        rows=200,
        cols=260,
        bands=4,
        n_classes=4,
        seed=3,
        nodata_box=(slice(0, 30), slice(0, 60)),
        noise=0.01,
        texture=0.01,
    )


def ci_tool(command: str, package: str) -> str:
    """The path of a Debian tool that ``.ci/run`` installs: skipped where it is missing,
    but a failure under CI (where its absence is a broken install step)."""
    found = shutil.which(command)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{command} missing: .ci/run installs Debian's {package}")
        pytest.skip(f"{command} (Debian {package}) not installed")
    return found


def shared(relative: str) -> Path:
    """A file under ../shared/data, skipping the test where the folder is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"{path} not present (../shared/data beside the checkout)")
    return path


def read_labels(path: Path) -> np.ndarray:
    """The first band of a label raster."""
    with rasterio.open(path) as src:
        return src.read(1)


def burn(vector: Path, like: Path) -> tuple[np.ndarray, np.ndarray]:
    """The polygons' class ids burnt on the label raster's grid, and the labels."""
    segments = gpd.read_file(vector, layer="segments", engine="pyogrio")
    with rasterio.open(like) as src:
        labels = src.read(1)
        burnt = rasterize(
            zip(segments.geometry, segments.class_id, strict=True),
            out_shape=labels.shape,
            transform=src.transform,
            dtype=labels.dtype,
        )
    return burnt, labels


def agreeing_classes(result: RunResult) -> np.ndarray:
    """labels.tif, the vector layer and run.yaml name the same classes, 1..K by
    decreasing area; returns the labels."""
    burnt, labels = burn(result.vector, result.labels)
    np.testing.assert_array_equal(burnt, labels)
    counts = np.bincount(labels.ravel())[1:]
    assert counts.size == result.n_classes
    assert (counts > 0).all()
    assert (np.diff(counts) <= 0).all()
    record = yaml.safe_load(result.record.read_text())
    assert record["classes"]["count"] == result.n_classes
    assert len(record["classes"]["source_ids"]) == result.n_classes
    assert len(set(record["classes"]["source_ids"])) == result.n_classes
    return labels


# --- the geoseg command, as a user runs it ---

SET_FAST = [arg for line in FAST for arg in ("--set", line)] + ["--max-iterations", "2"]
"""The command line's options for :data:`FAST` and two iterations."""


DROP_CAPS = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]
"""The prefix that drops the capabilities letting root ignore file permissions."""


def as_user(command: list[str]) -> list[str]:
    """``command`` as a user runs it: as root, without the capability to ignore file
    permissions."""
    if os.geteuid() == 0 and shutil.which("setpriv"):
        return [*DROP_CAPS, *command]
    return command


def user_env() -> dict[str, str]:
    """The commands' environment: this one with a wide terminal, so no line is wrapped."""
    return {**os.environ, "COLUMNS": "200"}


def geoseg(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``geoseg ARGS`` as a user runs it (:func:`as_user`)."""
    command = as_user([sys.executable, "-m", "geoseg", *args])
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, env=user_env(), timeout=300
    )


class InProcess:
    """``geoseg ARGS`` in one child process for many calls (``python -m
    tests.cli_sandbox --real``), without the capability to ignore file permissions as
    :func:`geoseg`: its exit status and everything written to stderr (Python's streams
    and file descriptor 2), at a start-up's cost once instead of each call."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        command = as_user([sys.executable, "-m", "tests.cli_sandbox", "--real", str(self.root)])
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True, env=user_env(), cwd=ROOT)  # fmt: skip
        assert json.loads(self._line(proc)) == {"ready": True}
        return proc

    @staticmethod
    def _line(proc: subprocess.Popen[str], timeout: float = 300) -> str:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline() if ready else ""
        if not line:
            proc.kill()
            raise AssertionError("the in-process geoseg child ended or hung")
        return line

    def __call__(self, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cwd": str(cwd), "args": args}) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self._line(self.proc))
        status = answer["status"]
        return subprocess.CompletedProcess(
            args, -1 if status == "traceback" else status, "", answer["stderr"]
        )

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root``: its path and, for a file, its content hash."""
    tree = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        tree[key] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return tree


def one_error(result: subprocess.CompletedProcess[str], status: int, says: str) -> None:
    """Exit ``status`` and exactly one ``geoseg: error:`` line that contains ``says``."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == status, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("geoseg: error: ")
    assert says in lines[0]
