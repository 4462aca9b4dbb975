"""Unsupervised segmentation of one in-memory image (Kanezaki 2018, TIP 2020).

See :func:`segment` for the entry point and :data:`PRESETS` for the named parameter sets.
The names that need PyTorch (everything from :mod:`geoseg.segment.train`) are imported
on first use, so ``geoseg.segment.params`` and the parameter presets load without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from geoseg.segment.params import PRESETS, SegmentParams, get_preset

if TYPE_CHECKING:
    from geoseg.segment.train import (
        FitResult,
        Segmentation,
        fill_nodata,
        fit,
        predict,
        segment,
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
    "segment",
    "training_views",
]

_FROM_TRAIN = frozenset(set(__all__) - {"PRESETS", "SegmentParams", "get_preset"})


def __getattr__(name: str) -> Any:
    if name in _FROM_TRAIN:
        return getattr(importlib.import_module("geoseg.segment.train"), name)
    raise AttributeError(f"module 'geoseg.segment' has no attribute {name!r}")
