"""Agreement between a label map and a reference: ARI, NMI, mIoU after Hungarian
matching, boundary F1, all in one report by :func:`evaluate_maps`.

Maps are ``(rows, cols)`` integer class ids ``1..K`` with ``0`` at nodata (a negative id
is nodata too), as every public function of geoseg numbers them; ``ignore`` leaves one
more reference class out. :func:`evaluate_file_maps` scores maps as label files hold them
(a class 0 of their own). The seam metric of a run is :mod:`geoseg.seams`.

>>> import numpy as np
>>> truth = np.array([[1, 1, 2, 2]]); pred = np.array([[7, 7, 3, 3]])
>>> adjusted_rand_index(pred, truth), hungarian_miou(pred, truth)
(1.0, 1.0)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

# scikit-learn (0.5 s to import) and scipy's optimize and ndimage are imported by the
# functions that score, so that importing geoseg does not load them.
from geoseg.errors import ConfigError, InputError

__all__ = [
    "adjusted_rand_index",
    "boundary_f1",
    "boundary_pixels",
    "evaluate_file_maps",
    "evaluate_maps",
    "hungarian_miou",
    "normalized_mutual_info",
    "scored_pixels",
]


def scored_pixels(
    pred: npt.NDArray[np.integer],
    truth: npt.NDArray[np.integer],
    *,
    ignore: int | None = None,
) -> npt.NDArray[np.bool_]:
    """Pixels that count: same-shaped maps, ``pred > 0`` and ``truth > 0`` (neither is
    nodata), ``truth != ignore``."""
    if pred.shape != truth.shape:
        raise InputError(f"label maps differ in shape: {pred.shape} vs {truth.shape}")
    keep = (pred > 0) & (truth > 0)
    if ignore is not None:
        keep &= truth != ignore
    if not keep.any():
        raise InputError("no pixel left to compare after removing nodata and ignored labels")
    return keep


def adjusted_rand_index(
    pred: npt.NDArray[np.integer], truth: npt.NDArray[np.integer], *, ignore: int | None = None
) -> float:
    """Adjusted Rand index (1 = same partition, ~0 = chance), invariant to label names."""
    from sklearn.metrics import adjusted_rand_score

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
    _, _, iou, rows, cols = _hungarian(pred[keep], truth[keep])
    return float(iou[rows, cols].sum() / iou.shape[0])


def _hungarian(
    pred: npt.NDArray[np.integer], truth: npt.NDArray[np.integer]
) -> tuple[
    npt.NDArray[np.integer],
    npt.NDArray[np.integer],
    npt.NDArray[np.float64],
    npt.NDArray[np.intp],
    npt.NDArray[np.intp],
]:
    """Truth ids, predicted ids, their IoU matrix and the one-to-one matching
    ``(rows, cols)`` that maximizes total IoU, for the scored pixels (1-D) only."""
    t_ids, t = np.unique(truth, return_inverse=True)
    p_ids, p = np.unique(pred, return_inverse=True)
    inter = np.bincount(t * p_ids.size + p, minlength=t_ids.size * p_ids.size).reshape(
        t_ids.size, p_ids.size
    )
    union = inter.sum(1)[:, None] + inter.sum(0)[None, :] - inter
    iou = inter / np.maximum(union, 1)
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(iou, maximize=True)
    return t_ids, p_ids, iou, rows, cols


def normalized_mutual_info(
    pred: npt.NDArray[np.integer], truth: npt.NDArray[np.integer], *, ignore: int | None = None
) -> float:
    """Normalized mutual information (arithmetic mean normalization; 1 = same partition,
    0 = independent), invariant to label names.

    >>> normalized_mutual_info(np.array([[5, 5, 3, 3]]), np.array([[1, 1, 2, 2]]))
    1.0
    """
    from sklearn.metrics import normalized_mutual_info_score

    keep = scored_pixels(pred, truth, ignore=ignore)
    return float(normalized_mutual_info_score(truth[keep], pred[keep]))


def boundary_pixels(
    labels: npt.NDArray[np.integer], valid: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """Valid pixels with a valid 4-neighbour of another class (both sides of an edge).

    >>> boundary_pixels(np.array([[1, 1, 2, 2]]), np.ones((1, 4), bool)).astype(int)
    array([[0, 1, 1, 0]])
    """
    if labels.ndim != 2 or valid.shape != labels.shape:
        raise InputError(
            f"boundaries need a (rows, cols) map and a mask of its shape; got {labels.shape} "
            f"and {valid.shape}"
        )
    edge = np.zeros(labels.shape, bool)
    vertical = (labels[1:] != labels[:-1]) & valid[1:] & valid[:-1]
    horizontal = (labels[:, 1:] != labels[:, :-1]) & valid[:, 1:] & valid[:, :-1]
    edge[1:] |= vertical
    edge[:-1] |= vertical
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    return edge


def boundary_f1(
    pred: npt.NDArray[np.integer],
    truth: npt.NDArray[np.integer],
    *,
    ignore: int | None = None,
    tolerance: float = 2,
) -> tuple[float, float, float]:
    """Boundary ``(precision, recall, f1)`` with a tolerance of ``tolerance`` pixels.

    Boundaries are :func:`boundary_pixels` within the scored pixels. Precision is the
    share of predicted boundary pixels at most ``tolerance`` pixels (Euclidean) from a
    reference boundary pixel, recall the share of reference boundary pixels that near a
    predicted one, F1 their harmonic mean. A map without boundary pixels has precision
    (or recall) 1 by convention, so F1 is 1 when neither map has a boundary and 0 when
    only one has.

    >>> truth = np.array([[1, 1, 1, 2, 2, 2]]); pred = np.array([[1, 1, 1, 1, 2, 2]])
    >>> boundary_f1(pred, truth, tolerance=0), boundary_f1(pred, truth, tolerance=1)
    ((0.5, 0.5, 0.5), (1.0, 1.0, 1.0))
    """
    if tolerance < 0:
        raise ConfigError(f"tolerance={tolerance} must be >= 0 (pixels)")
    keep = scored_pixels(pred, truth, ignore=ignore)
    pred_edge = boundary_pixels(pred, keep)
    truth_edge = boundary_pixels(truth, keep)
    precision = _share_near(pred_edge, truth_edge, tolerance)
    recall = _share_near(truth_edge, pred_edge, tolerance)
    total = precision + recall
    f1 = 2 * precision * recall / total if total > 0 else 0.0
    return precision, recall, f1


def _share_near(
    edge: npt.NDArray[np.bool_], other: npt.NDArray[np.bool_], tolerance: float
) -> float:
    """Share of ``edge`` pixels within ``tolerance`` px of an ``other`` pixel (1 if none)."""
    n = int(edge.sum())
    if n == 0:
        return 1.0
    if not other.any():
        return 0.0
    from scipy.ndimage import distance_transform_edt

    distance = distance_transform_edt(~other)
    return float((distance[edge] <= tolerance).sum() / n)


MIN_COMPARED = 0.01
"""Smallest share of the reference's labelled pixels that a comparison must cover."""

MAX_CLASSES = 1000
"""Most classes a map may have in :func:`evaluate_maps` unless asked otherwise: land-cover
maps and geoseg's labels have tens; a scene's digital numbers, thousands."""


def evaluate_maps(
    pred: npt.NDArray[np.integer],
    truth: npt.NDArray[np.integer],
    *,
    ignore: int | None = None,
    tolerance: float = 2,
    max_classes: int | None = MAX_CLASSES,
) -> dict[str, Any]:
    """Every agreement metric of a label map against a reference, JSON-ready.

    Parameters
    ----------
    pred, truth
        ``(rows, cols)`` integer class ids ``1..K`` of the same shape, ``0`` = nodata
        (negative ids too), as :func:`geoseg.segment_image` and ``labels.tif`` number
        them. For maps with a class 0 of their own, see :func:`evaluate_file_maps`.
    ignore
        One more reference class left out beside nodata (e.g. 9 = unclassified);
        ``None``: none.
    tolerance
        Boundary match distance in pixels (see :func:`boundary_f1`).
    max_classes
        More classes than this in either map is an error (``None``: no limit): a
        scene's digital numbers, given by mistake, would score a class per value.

    Returns
    -------
    dict
        ``pixels`` (scored), ``truth_classes``, ``pred_classes``, ``ari``, ``nmi``,
        ``miou``, ``boundary_precision``, ``boundary_recall``, ``boundary_f1``,
        ``ignore``, ``tolerance`` and ``per_class``: for each reference class
        ``{"truth": id, "pred": matched id or None, "iou": ..., "pixels": ...}``.

    Examples
    --------
    >>> truth = np.array([[0, 1, 1, 2, 2]]); pred = np.array([[9, 4, 4, 6, 6]])
    >>> report = evaluate_maps(pred, truth)
    >>> report["ari"], report["miou"], report["per_class"][0]
    (1.0, 1.0, {'truth': 1, 'pred': 4, 'iou': 1.0, 'pixels': 2})
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    for name, array in (("pred", pred), ("truth", truth)):
        if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer):
            raise InputError(
                f"{name} must be a (rows, cols) map of integer class ids; got {array.dtype} "
                f"{array.shape}"
            )
    keep = scored_pixels(pred, truth, ignore=ignore)
    labelled = int(((truth > 0) & (truth != ignore if ignore is not None else True)).sum())
    if keep.sum() < MIN_COMPARED * labelled:
        raise InputError(
            f"only {int(keep.sum())} of the reference's {labelled} labelled pixels "
            f"({keep.sum() / labelled:.2%}) have a class to compare with; the maps barely "
            "overlap (check their extents: resampling aligns grids, it adds no coverage)"
        )
    scored_pred, scored_truth = pred[keep], truth[keep]
    for what, ids in (("the label map", scored_pred), ("the reference", scored_truth)):
        count = np.unique(ids).size
        if max_classes is not None and count > max_classes:
            raise InputError(
                f"{what} has {count:,} classes (more than {max_classes:,}): is it a label "
                "raster? A scene's digital numbers make a class of every value; give class "
                "ids, or raise --max-classes to score it anyway"
            )
    t_ids, p_ids, iou, rows, cols = _hungarian(scored_pred, scored_truth)
    matched = dict(zip(rows.tolist(), cols.tolist(), strict=True))
    t_counts = np.bincount(np.searchsorted(t_ids, scored_truth), minlength=t_ids.size)
    per_class = [
        {
            "truth": int(t_ids[i]),
            "pred": int(p_ids[matched[i]]) if i in matched else None,
            "iou": float(iou[i, matched[i]]) if i in matched else 0.0,
            "pixels": int(t_counts[i]),
        }
        for i in range(t_ids.size)
    ]
    precision, recall, f1 = boundary_f1(pred, truth, ignore=ignore, tolerance=tolerance)
    return {
        "pixels": int(keep.sum()),
        "truth_classes": int(t_ids.size),
        "pred_classes": int(p_ids.size),
        "ari": float(adjusted_rand_score(scored_truth, scored_pred)),
        "nmi": float(normalized_mutual_info_score(scored_truth, scored_pred)),
        "miou": float(iou[rows, cols].sum() / t_ids.size),
        "boundary_precision": precision,
        "boundary_recall": recall,
        "boundary_f1": f1,
        "ignore": ignore,
        "tolerance": tolerance,
        "per_class": per_class,
    }


def evaluate_file_maps(
    pred: npt.NDArray[np.integer],
    truth: npt.NDArray[np.integer],
    *,
    ignore: int | None = 0,
    tolerance: float = 2,
    max_classes: int | None = MAX_CLASSES,
) -> dict[str, Any]:
    """:func:`evaluate_maps` of maps as label files hold them
    (:func:`geoseg.io.labels.read_label_pair`): negative at the file's nodata and ``0``
    a class like any other, except the reference's ``ignore`` class (``0`` by default:
    unlabelled). The ids are shifted by one to score them (every metric ignores how
    classes are named) and the report gives the files' own ids, so ``geoseg evaluate``
    reads a truth file whose class 0 is valid (``--ignore none``) as it always has.

    >>> truth = np.array([[0, 0, 1, 1, -1]]); pred = np.array([[0, 0, 0, 2, 2]])
    >>> report = evaluate_file_maps(pred, truth, ignore=None)
    >>> report["pixels"], [(row["truth"], row["pred"]) for row in report["per_class"]]
    (4, [(0, 0), (1, 2)])
    """
    shifted = {  # int64 first: uint8 255 + 1 would wrap to 0; other dtypes are refused
        name: np.where(array < 0, 0, array.astype(np.int64) + 1) if _integer(array) else array
        for name, array in (("pred", pred), ("truth", truth))
    }
    report = evaluate_maps(
        shifted["pred"],
        shifted["truth"],
        ignore=None if ignore is None else ignore + 1,
        tolerance=tolerance,
        max_classes=max_classes,
    )
    report["ignore"] = ignore
    report["per_class"] = [
        {**row, "truth": row["truth"] - 1, "pred": None if row["pred"] is None else row["pred"] - 1}
        for row in report["per_class"]
    ]
    return report


def _integer(array: npt.NDArray[Any]) -> bool:
    return np.issubdtype(array.dtype, np.integer)
