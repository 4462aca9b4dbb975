"""Pictures of images and label maps (pure array functions, no I/O).

>>> import numpy as np
>>> display = np.zeros((3, 2, 2), np.float32); display[:, :, 1] = 1.0
>>> labels = np.array([[0, 1], [0, 1]])
>>> mean_colour(display, labels)[0].tolist()
[[0, 255], [0, 255]]
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from geoseg.errors import InputError

__all__ = ["display_rgb", "mean_colour"]


def display_rgb(image: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """``(3, H, W)`` display bands from a ``[0, 1]`` image: bands 1-3, or band 1 as grey."""
    if image.ndim != 3:
        raise InputError(f"image must be (bands, rows, cols); got shape {image.shape}")
    bands = image[:3] if image.shape[0] >= 3 else np.repeat(image[:1], 3, axis=0)
    return bands.astype(np.float32)


def mean_colour(
    display: npt.NDArray[np.floating], labels: npt.NDArray[np.integer]
) -> npt.NDArray[np.uint8]:
    """Paint every label with its mean display colour; nodata (``labels < 0``) black."""
    if display.shape[1:] != labels.shape:
        raise InputError(f"display {display.shape} and labels {labels.shape} differ in size")
    inside = labels >= 0
    _, index = np.unique(labels[inside], return_inverse=True)
    counts = np.bincount(index)
    out = np.zeros(display.shape, np.uint8)
    for band in range(display.shape[0]):
        sums = np.bincount(index, weights=display[band][inside], minlength=counts.size)
        means = np.clip(sums / np.maximum(counts, 1), 0.0, 1.0)
        out[band][inside] = np.round(means[index] * 255).astype(np.uint8)
    return out
