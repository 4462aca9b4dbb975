"""Unsupervised segmentation of one in-memory image (Kanezaki 2018, TIP 2020).

See :func:`segment` for the entry point and :data:`PRESETS` for the named parameter sets.
"""

from __future__ import annotations

from geoseg.segment.params import PRESETS, SegmentParams, get_preset
from geoseg.segment.train import FitResult, Segmentation, fit, predict, segment

__all__ = [
    "PRESETS",
    "FitResult",
    "SegmentParams",
    "Segmentation",
    "fit",
    "get_preset",
    "predict",
    "segment",
]
