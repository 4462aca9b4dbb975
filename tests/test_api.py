"""The top-level API: every public name resolves, ``import geoseg`` stays light, and the
subpackages keep their names (no function bound over a module)."""

from __future__ import annotations

import subprocess
import sys

import geoseg


def test_every_public_name_resolves() -> None:
    for name in geoseg.__all__:
        assert getattr(geoseg, name) is not None, name


def test_import_geoseg_loads_no_torch_and_modules_keep_their_names() -> None:
    code = (
        "import sys, geoseg\n"
        "heavy = [m for m in ('torch', 'rasterio', 'sklearn', 'geopandas') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "import geoseg.segment.merge, geoseg.vectorize, geoseg.evaluate\n"
        "assert geoseg.segment.merge.__name__ == 'geoseg.segment.merge'\n"
        "assert callable(geoseg.segment.fit) and callable(geoseg.segment.segment_image)\n"
        "assert geoseg.vectorize.__name__ == 'geoseg.vectorize'\n"
        "assert geoseg.evaluate.__name__ == 'geoseg.evaluate'\n"
        "assert geoseg.evaluate_maps is geoseg.evaluate.evaluate_maps\n"
        "assert geoseg.segment_image is geoseg.segment.segment_image\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_segment_params_defaults_are_the_default_preset() -> None:
    assert geoseg.SegmentParams() == geoseg.PRESETS["default"]
