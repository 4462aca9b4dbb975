"""geoseg: unsupervised segmentation of satellite scenes into georeferenced polygons.

The segmentation core follows Kanezaki (ICASSP 2018) and Kim, Kanezaki & Tanaka
(IEEE TIP 2020). Every public function speaks one label convention: classes ``1..K``,
``0`` = nodata::

    >>> import numpy as np
    >>> from geoseg import segment_image, PRESETS
    >>> image = np.zeros((3, 32, 32), np.float32); image[:, :, 16:] = 1.0
    >>> result = segment_image(image, PRESETS["default"].replace(max_iterations=2), seed=0)
    >>> result.labels.shape, int(result.labels.min()) >= 1
    ((32, 32), True)

The main job, a whole scene from file to ``labels.tif`` and polygons, is
:func:`run_scene`; :func:`vectorize_labels` and :func:`evaluate_maps` are the steps on
their own. ``geoseg.segment``, ``geoseg.vectorize`` and ``geoseg.evaluate`` are the
modules; the functions carry other names so that importing a module never rebinds them.
The functions that need PyTorch or GDAL's heavier parts load them on first use.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from geoseg.errors import (
    ConfigError,
    GeosegError,
    InputError,
    OutputError,
    RasterReadError,
)
from geoseg.segment.params import PRESETS, SegmentParams

if TYPE_CHECKING:
    from geoseg.evaluate import evaluate_maps
    from geoseg.run.products import vectorize_labels
    from geoseg.run.scene import RunResult, run_scene
    from geoseg.segment.image import Segmentation, segment_image

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "ConfigError",
    "GeosegError",
    "InputError",
    "OutputError",
    "RasterReadError",
    "RunResult",
    "SegmentParams",
    "Segmentation",
    "__version__",
    "evaluate_maps",
    "run_scene",
    "segment_image",
    "vectorize_labels",
]

_LAZY = {
    "run_scene": "geoseg.run.scene",
    "RunResult": "geoseg.run.scene",
    "segment_image": "geoseg.segment.image",
    "Segmentation": "geoseg.segment.image",
    "vectorize_labels": "geoseg.run.products",
    "evaluate_maps": "geoseg.evaluate",
}

logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    """The functions in ``_LAZY`` import their module (PyTorch, GDAL) on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'geoseg' has no attribute {name!r}")
