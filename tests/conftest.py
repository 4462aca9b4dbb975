"""Shared fixtures: tiny synthetic images with known answers."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

from geoseg.config import Config, resolve_config
from geoseg.io.raster_write import write_image
from geoseg.sample import SAMPLE_CRS, make_scene, sample_transform

if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    # pytest started in the background by a shell without job control ignores SIGINT,
    # and every command it starts would inherit that: the Ctrl-C tests then time out.
    signal.signal(signal.SIGINT, signal.default_int_handler)

collect_ignore = ["qgis_headless.py"]
"""Run by Debian's PyQGIS (python3), not collected: the venv has no qgis module."""

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

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
