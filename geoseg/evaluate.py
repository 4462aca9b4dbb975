"""Agreement between a label map and a reference: ARI and mIoU after Hungarian matching.

>>> import numpy as np
>>> truth = np.array([[1, 1, 2, 2]]); pred = np.array([[7, 7, 3, 3]])
>>> adjusted_rand_index(pred, truth), hungarian_miou(pred, truth)
(1.0, 1.0)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score

from geoseg.errors import InputError

__all__ = ["adjusted_rand_index", "hungarian_miou", "scored_pixels"]


def scored_pixels(
    pred: npt.NDArray[np.integer],
    truth: npt.NDArray[np.integer],
    *,
    ignore: int | None = None,
) -> npt.NDArray[np.bool_]:
    """Pixels that count: same-shaped maps, ``pred >= 0`` (not nodata), ``truth != ignore``."""
    if pred.shape != truth.shape:
        raise InputError(f"label maps differ in shape: {pred.shape} vs {truth.shape}")
    keep = pred >= 0
    if ignore is not None:
        keep &= truth != ignore
    if not keep.any():
        raise InputError("no pixel left to compare after removing nodata and ignored labels")
    return keep


def adjusted_rand_index(
    pred: npt.NDArray[np.integer], truth: npt.NDArray[np.integer], *, ignore: int | None = None
) -> float:
    """Adjusted Rand index (1 = same partition, ~0 = chance), invariant to label names."""
    keep = scored_pixels(pred, truth, ignore=ignore)
    return float(adjusted_rand_score(truth[keep], pred[keep]))


def hungarian_miou(
    pred: npt.NDArray[np.integer], truth: npt.NDArray[np.integer], *, ignore: int | None = None
) -> float:
    """Mean IoU over reference classes after a one-to-one matching that maximizes total IoU.

    A reference class left without a predicted partner (fewer predicted than reference
    classes) scores 0.
    """
    keep = scored_pixels(pred, truth, ignore=ignore)
    t_ids, t = np.unique(truth[keep], return_inverse=True)
    p_ids, p = np.unique(pred[keep], return_inverse=True)
    inter = np.bincount(t * p_ids.size + p, minlength=t_ids.size * p_ids.size).reshape(
        t_ids.size, p_ids.size
    )
    union = inter.sum(1)[:, None] + inter.sum(0)[None, :] - inter
    iou = inter / np.maximum(union, 1)
    rows, cols = linear_sum_assignment(iou, maximize=True)
    return float(iou[rows, cols].sum() / t_ids.size)
