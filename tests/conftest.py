"""Shared fixtures: tiny synthetic images with known answers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def two_halves() -> np.ndarray:
    """(3, 24, 32) image: left half dark, right half bright, light noise."""
    rng = np.random.default_rng(0)
    image = np.full((3, 24, 32), 0.2, np.float32)
    image[:, :, 16:] = 0.8
    return image + rng.normal(0, 0.02, image.shape).astype(np.float32)


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
