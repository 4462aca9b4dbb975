"""Fixtures and hooks shared by every test; the helpers they import are in
:mod:`tests.helpers`."""

from __future__ import annotations

import signal

import numpy as np
import pytest

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
