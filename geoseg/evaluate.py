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
    control: tuple[int, int] | None = None,
) -> tuple[float, float, float]:
    """Density of class boundaries on tile seams against elsewhere.

    A boundary is a pair of 4-adjacent valid pixels (``labels >= 0``) of different
    classes. Seam pairs straddle a cut: rows ``r-1 | r`` for ``r`` in ``row_cuts`` and
    columns ``c-1 | c`` for ``c`` in ``col_cuts``. The control is every other pair, or
    with ``control=(near, far)`` only the pairs on lines parallel to a seam at
    ``near..far`` pixels from it, which compares each seam with the same ground.
    Returns ``(ratio, seam_density, control_density)``; a seamless mosaic has a ratio
    near 1.

    >>> labels = np.zeros((4, 4), int); labels[:, 2:] = 1
    >>> seam_boundary_ratio(labels, row_cuts=np.array([]), col_cuts=np.array([2]))
    (inf, 1.0, 0.0)
    """
    vertical_ok = (labels[1:] >= 0) & (labels[:-1] >= 0)
    vertical_bound = (labels[1:] != labels[:-1]) & vertical_ok
    horizontal_ok = (labels[:, 1:] >= 0) & (labels[:, :-1] >= 0)
    horizontal_bound = (labels[:, 1:] != labels[:, :-1]) & horizontal_ok
    row_seam, row_control = _seam_lines(vertical_ok.shape[0], row_cuts, control)
    col_seam, col_control = _seam_lines(horizontal_ok.shape[1], col_cuts, control)

    def density(rows: npt.NDArray[np.bool_], cols: npt.NDArray[np.bool_]) -> float:
        bounds = vertical_bound[rows].sum() + horizontal_bound[:, cols].sum()
        pairs = vertical_ok[rows].sum() + horizontal_ok[:, cols].sum()
        return float(bounds) / max(int(pairs), 1)

    seam = density(row_seam, col_seam)
    other = density(row_control, col_control)
    ratio = seam / other if other > 0 else (float("inf") if seam > 0 else 1.0)
    return ratio, seam, other


def _seam_lines(
    n_lines: int, cuts: npt.NDArray[np.integer], control: tuple[int, int] | None
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Which of ``n_lines`` pixel-pair lines are seams, and which are control lines."""
    seam = np.zeros(n_lines, bool)
    seam[np.asarray(cuts, int) - 1] = True
    if control is None:
        return seam, ~seam
    near, far = control
    lines = np.zeros(n_lines, bool)
    for cut in np.asarray(cuts, int) - 1:
        for offset in range(near, far + 1):
            for line in (cut - offset, cut + offset):
                if 0 <= line < n_lines:
                    lines[line] = True
    return seam, lines & ~seam
