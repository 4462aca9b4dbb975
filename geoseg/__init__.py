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

import logging

from geoseg.errors import (
    ConfigError,
    GeosegError,
    InputError,
    OutputError,
    RasterReadError,
)
from geoseg.segment import PRESETS, Segmentation, SegmentParams, segment

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
