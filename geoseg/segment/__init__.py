"""Unsupervised segmentation of one in-memory image (Kanezaki 2018, TIP 2020).

See :func:`segment` for the entry point and :data:`PRESETS` for the named parameter sets.
"""

from __future__ import annotations

from geoseg.segment.params import PRESETS, SegmentParams, get_preset
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
