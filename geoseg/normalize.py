"""Nodata-aware per-band percentile stretch to ``[0, 1]``.

>>> import numpy as np
>>> image = np.arange(100, dtype=np.uint16).reshape(1, 10, 10)
>>> low, high = percentile_bounds(image, low=0, high=100)
>>> stretch(image, low, high)[0, 0, :3]
array([0.        , 0.01010101, 0.02020202], dtype=float32)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from geoseg.errors import InputError

__all__ = ["auto_scale", "fill_nodata", "percentile_bounds", "stretch"]


def percentile_bounds(
    image: npt.NDArray[np.number],
    valid: npt.NDArray[np.bool_] | None = None,
    *,
    low: float = 2.0,
    high: float = 98.0,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per-band ``low`` and ``high`` percentiles of ``image (B, H, W)`` over valid pixels."""
    if image.ndim != 3:
        raise InputError(f"image must be (bands, rows, cols); got shape {image.shape}")
    if not 0 <= low < high <= 100:
        raise InputError(f"percentiles must satisfy 0 <= low < high <= 100; got {low}, {high}")
    if valid is None:
        valid = np.ones(image.shape[1:], bool)
    values = image[:, valid].astype(np.float64)
    if values.shape[1] == 0:
        raise InputError("no valid pixel to compute the stretch from")
    bounds = np.percentile(values, [low, high], axis=1)
    return bounds[0], bounds[1]


def stretch(
    image: npt.NDArray[np.number],
    low: npt.NDArray[np.float64],
    high: npt.NDArray[np.float64],
) -> npt.NDArray[np.float32]:
    """Map each band linearly so ``low -> 0`` and ``high -> 1``, clipped to ``[0, 1]``.

    A band with ``high == low`` maps to 0.
    """
    span = np.where(high > low, high - low, 1.0)
    out = (image.astype(np.float32) - low[:, None, None]) / span[:, None, None]
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def auto_scale(
    image: npt.NDArray[np.number],
    valid: npt.NDArray[np.bool_] | None = None,
    *,
    low: float = 2.0,
    high: float = 98.0,
) -> npt.NDArray[np.float32]:
    """Scale a picture to ``[0, 1]``: 8-bit divides by 255 (as the paper does), any other
    dtype gets the per-band ``low``-``high`` percentile stretch over valid pixels."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    return stretch(image, *percentile_bounds(image, valid, low=low, high=high))


def fill_nodata(
    image: npt.NDArray[np.float32],
    valid: npt.NDArray[np.bool_],
    *,
    values: npt.NDArray[np.floating] | None = None,
) -> npt.NDArray[np.float32]:
    """Copy of ``image (B, H, W)`` with nodata pixels set to ``values`` (one per band).

    Without ``values`` each band's mean over valid pixels is used. A scene passes its
    scene-wide means so that every tile is filled alike.
    """
    if valid.all():
        return image
    if values is None:
        values = image[:, valid].mean(axis=1) if valid.any() else np.zeros(image.shape[0])
    return np.where(valid[None], image, values[:, None, None]).astype(np.float32)
