"""Fixtures and hooks shared by every test; the helpers they import are in
:mod:`tests.helpers`."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from tests.helpers import InProcess, fast_config, write_four_classes

if TYPE_CHECKING:
    from geoseg.run import RunResult

if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    # pytest started in the background by a shell without job control ignores SIGINT,
    # and every command it starts would inherit that: the Ctrl-C tests then time out.
    signal.signal(signal.SIGINT, signal.default_int_handler)

collect_ignore = ["qgis_headless.py"]
"""Run by Debian's PyQGIS (python3), not collected: the venv has no qgis module."""


@pytest.fixture
def two_halves() -> np.ndarray:
    """(3, 24, 32) image: left half dark, right half bright, light noise."""
    rng = np.random.default_rng(0)
    image = np.full((3, 24, 32), 0.2, np.float32)
    image[:, :, 16:] = 0.8
    return image + rng.normal(0, 0.02, image.shape).astype(np.float32)


@pytest.fixture(scope="session")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """Four classes over 200x260 px with a nodata corner (:func:`~tests.helpers.
    write_four_classes`), and its truth: 0 there. Tests only read it."""
    return write_four_classes(tmp_path_factory.mktemp("scene") / "scene.tif")


@pytest.fixture(scope="session")
def scene_run(
    scene: tuple[Path, np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> RunResult:
    """One run of :func:`scene` with the FAST settings (``fast_config()``), into a folder
    of its own: shared by the tests that only read its outputs."""
    from geoseg.run import run_scene

    return run_scene(scene[0], tmp_path_factory.mktemp("scene_run") / "out", fast_config())


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    """One :class:`~tests.helpers.InProcess` child for a test module's commands."""
    runner = InProcess(tmp_path_factory.mktemp("in_process"))
    yield runner
    runner.close()
