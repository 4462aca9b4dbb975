"""Unsupervised segmentation of one in-memory image (Kanezaki 2018, TIP 2020).

See :func:`segment_image` for the entry point and :data:`PRESETS` for the named
parameter sets. The names that need PyTorch (from :mod:`geoseg.segment.train` and
:mod:`geoseg.segment.image`) are imported on first use, so ``geoseg.segment.params``
and the parameter presets load without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from geoseg.segment.params import PRESETS, SegmentParams, get_preset

if TYPE_CHECKING:
    from geoseg.segment.image import Segmentation, segment_image
    from geoseg.segment.train import (
        FitResult,
        fill_nodata,
        fit,
        predict,
        training_views,
    )

__all__ = [
    "PRESETS",
    "FitResult",
    "SegmentParams",
    "Segmentation",
    "fill_nodata",
    "fit",
    "get_preset",
    "predict",
    "segment_image",
    "training_views",
]

_LAZY = {
    "FitResult": "geoseg.segment.train",
    "fill_nodata": "geoseg.segment.train",
    "fit": "geoseg.segment.train",
    "predict": "geoseg.segment.train",
    "training_views": "geoseg.segment.train",
    "Segmentation": "geoseg.segment.image",
    "segment_image": "geoseg.segment.image",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'geoseg.segment' has no attribute {name!r}")
