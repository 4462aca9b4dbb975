"""The views the network trains on: nodata filled, optionally downscaled, each with its
superpixels, stacked into one batch.

    >>> import numpy as np
    >>> from geoseg.segment.params import PRESETS
    >>> images, sp, valid = training_views([np.zeros((3, 32, 32), np.float32)] * 2,
    ...                                    [np.ones((32, 32), bool)] * 2, PRESETS["default"])
    >>> images.shape, sp.shape, bool(sp[1].min() > sp[0].max())
    ((2, 3, 32, 32), (2, 32, 32), True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from geoseg.errors import InputError
from geoseg.segment.params import SegmentParams
from geoseg.segment.superpixels import compute_superpixels

__all__ = ["training_views", "upsample_nearest"]


def training_views(
    images: Sequence[npt.NDArray[np.float32]],
    valids: Sequence[npt.NDArray[np.bool_]],
    params: SegmentParams,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int32], npt.NDArray[np.bool_]]:
    """Stack same-sized, nodata-filled views into the batch :func:`fit` trains on.

    Each view is resampled by ``params.train_scale`` and gets its superpixels; ids are
    offset so they are unique across the batch.

    Returns
    -------
    images (N, B, h, w), superpixels (N, h, w), valid (N, h, w)
    """
    if not images or len(images) != len(valids):
        raise InputError(f"need as many masks as views (>= 1); got {len(images)}, {len(valids)}")
    if len({im.shape for im in images}) != 1:
        raise InputError(f"training views differ in shape: {sorted({im.shape for im in images})}")
    out_images, out_sp, out_valid = [], [], []
    offset = 0
    for image, valid in zip(images, valids, strict=True):
        if params.train_scale < 1.0:
            image, valid = _downscale(image, valid, params.train_scale)
        sp = compute_superpixels(image, params, valid=valid, scale=params.train_scale)
        sp[sp >= 0] += offset
        offset = int(sp.max()) + 1 if (sp >= 0).any() else offset
        out_images.append(image)
        out_sp.append(sp)
        out_valid.append(valid)
    return np.stack(out_images), np.stack(out_sp), np.stack(out_valid)


def _downscale(
    image: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_], scale: float
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Area-average resampling by ``scale``; a pixel is valid if most of it was."""
    rows, cols = image.shape[1:]
    size = (max(2, round(rows * scale)), max(2, round(cols * scale)))
    small = F.interpolate(torch.from_numpy(image)[None], size=size, mode="area")[0].numpy()
    frac = F.interpolate(
        torch.from_numpy(valid.astype(np.float32))[None, None], size=size, mode="area"
    )[0, 0].numpy()
    small_valid = frac >= 0.5
    if not small_valid.any():
        small_valid = frac > 0
    return np.ascontiguousarray(small), small_valid


def upsample_nearest(labels: npt.NDArray[np.int32], rows: int, cols: int) -> npt.NDArray[np.int32]:
    r = np.minimum((np.arange(rows) + 0.5) * labels.shape[0] / rows, labels.shape[0] - 1)
    c = np.minimum((np.arange(cols) + 0.5) * labels.shape[1] / cols, labels.shape[1] - 1)
    return labels[r.astype(int)[:, None], c.astype(int)[None, :]]
