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

__all__ = ["adjusted_rand_index", "hungarian_miou", "scored_pixels", "seam_boundary_ratio"]


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


def seam_boundary_ratio(
    labels: npt.NDArray[np.integer],
    *,
    row_cuts: npt.NDArray[np.integer],
    col_cuts: npt.NDArray[np.integer],
) -> tuple[float, float, float]:
    """Density of class boundaries on tile seams against elsewhere.

    A boundary is a pair of 4-adjacent valid pixels (``labels >= 0``) of different
    classes. Seam pairs straddle a cut: rows ``r-1 | r`` for ``r`` in ``row_cuts`` and
    columns ``c-1 | c`` for ``c`` in ``col_cuts``. Returns ``(ratio, seam_density,
    other_density)``; a seamless mosaic has a ratio near 1.

    >>> labels = np.zeros((4, 4), int); labels[:, 2:] = 1
    >>> seam_boundary_ratio(labels, row_cuts=np.array([]), col_cuts=np.array([2]))
    (inf, 1.0, 0.0)
    """
    vertical_diff = labels[1:] != labels[:-1]
    vertical_ok = (labels[1:] >= 0) & (labels[:-1] >= 0)
    horizontal_diff = labels[:, 1:] != labels[:, :-1]
    horizontal_ok = (labels[:, 1:] >= 0) & (labels[:, :-1] >= 0)
    on_row_seam = np.zeros(vertical_ok.shape[0], bool)
    on_row_seam[np.asarray(row_cuts, int) - 1] = True
    on_col_seam = np.zeros(horizontal_ok.shape[1], bool)
    on_col_seam[np.asarray(col_cuts, int) - 1] = True
    seam_pairs = vertical_ok[on_row_seam].sum() + horizontal_ok[:, on_col_seam].sum()
    seam_bounds = (vertical_diff & vertical_ok)[on_row_seam].sum() + (
        horizontal_diff & horizontal_ok
    )[:, on_col_seam].sum()
    other_pairs = vertical_ok[~on_row_seam].sum() + horizontal_ok[:, ~on_col_seam].sum()
    other_bounds = (vertical_diff & vertical_ok)[~on_row_seam].sum() + (
        horizontal_diff & horizontal_ok
    )[:, ~on_col_seam].sum()
    seam = float(seam_bounds) / max(int(seam_pairs), 1)
    other = float(other_bounds) / max(int(other_pairs), 1)
    ratio = seam / other if other > 0 else (float("inf") if seam > 0 else 1.0)
    return ratio, seam, other
