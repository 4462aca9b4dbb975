"""geoseg: unsupervised segmentation of satellite scenes into georeferenced polygons.

The segmentation core follows Kanezaki (ICASSP 2018) and Kim, Kanezaki & Tanaka
(IEEE TIP 2020)::

    >>> import numpy as np
    >>> from geoseg import segment, PRESETS
    >>> image = np.zeros((3, 32, 32), np.float32); image[:, :, 16:] = 1.0
    >>> result = segment(image, PRESETS["default"].replace(max_iterations=2), seed=0)
    >>> result.labels.shape
    (32, 32)
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

# Importing the subpackage bound its module to the name ``segment``; unbind it so that
# ``geoseg.segment`` is the function (module ``__getattr__`` below), as the docs say.
del globals()["segment"]

if TYPE_CHECKING:
    from geoseg.segment.train import Segmentation, segment

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "ConfigError",
    "GeosegError",
    "InputError",
    "OutputError",
    "RasterReadError",
    "SegmentParams",
    "Segmentation",
    "__version__",
    "segment",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    """``segment`` and ``Segmentation`` import PyTorch on first use, not with geoseg."""
    if name in ("segment", "Segmentation"):
        return getattr(importlib.import_module("geoseg.segment.train"), name)
    raise AttributeError(f"module 'geoseg' has no attribute {name!r}")
