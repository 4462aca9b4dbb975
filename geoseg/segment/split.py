"""Splitting classes by bisecting k-means, when the network ends with fewer classes than
``n_classes`` asks for.

Of the cuts of each class in two by 2-means on its pixels' band values, the one that
lowers the within-class sum of squares most is made (:func:`split_classes`), as long as
it lowers it by at least :data:`SPLIT_SHARE` of the total. A split is a plane in band
space, so it is applied pixel by pixel (:func:`geoseg.segment.classify.classify`) and
every tile agrees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["BISECT_SAMPLE", "SPLIT_SHARE", "Split", "split_and_relabel", "split_classes"]


BISECT_SAMPLE = 20_000
"""Most pixels of a class 2-means is fitted on (the cut then applies to all of them)."""
SPLIT_SHARE = 0.01
"""Least share of the total sum of squares (band space, the views' valid pixels) that a
split must explain: Ward's cost of a merge, read the other way. Real classes the
network joined came apart at 1-12 % on the labelled images; pixel noise, the shading of
fields and the few pixels the network gave to a neighbouring class at 0.5 % or less."""


@dataclass(frozen=True, slots=True)
class Split:
    """Pixels of class ``source`` whose band values ``x`` have ``x · normal > offset``
    become class ``target`` (the plane halfway between 2-means centres)."""

    source: int
    target: int
    normal: tuple[float, ...]
    offset: float


def split_classes(
    classes: npt.NDArray[np.integer],
    values: npt.NDArray[np.floating],
    n_classes: int,
    free: Sequence[int],
) -> tuple[Split, ...]:
    """Splits that bring the pixels' ``classes (P,)`` up to ``n_classes`` classes, given
    their band values ``values (P, B)`` and the ids ``free`` for new classes (in order).

    Bisecting k-means on a given partition: every class is cut in two by 2-means
    (:func:`_bisect`), the halves either side of the plane midway between the two
    centres; the cut of largest gain (the fall of the within-class sum of squares,
    ``n1 n2 / (n1 + n2) |m1 - m2|²``) is made, the larger half keeping the id, while
    that gain is at least :data:`SPLIT_SHARE` of the total sum of squares. So fewer
    classes come back where the image has no more distinct ones.

    >>> values = np.array([[0.0], [0.1], [0.2]] * 60 + [[5.0], [5.1], [5.2]] * 40)
    >>> (split,) = split_classes(np.zeros(300, int), values, 3, [7])  # one real cut
    >>> split.source, split.target, round(split.normal[0], 6), round(split.offset, 6)
    (0, 7, 5.0, 13.0)
    """
    return split_and_relabel(classes, values, n_classes, free)[0]


def split_and_relabel(
    classes: npt.NDArray[np.integer],
    values: npt.NDArray[np.floating],
    n_classes: int,
    free: Sequence[int],
) -> tuple[tuple[Split, ...], npt.NDArray[np.int64]]:
    """:func:`split_classes`, and the pixels' classes once its splits are made."""
    ids: npt.NDArray[np.int64] = np.array(classes, np.int64)
    points: npt.NDArray[np.float64] = np.asarray(values, np.float64)
    free = list(free)
    if points.shape[0] == 0:
        return (), ids
    least = SPLIT_SHARE * float(((points - points.mean(axis=0)) ** 2).sum())
    cuts: dict[int, tuple[float, npt.NDArray[np.float64], float]] = {}  # class -> best cut
    splits: list[Split] = []
    while free and np.unique(ids).size < n_classes:
        for c in np.unique(ids).tolist():
            if c not in cuts:
                cuts[c] = _bisect(points[ids == c])
        source = max(cuts, key=lambda c: (cuts[c][0], -c))
        gain, normal, offset = cuts.pop(source)
        if gain <= 0 or gain < least:
            break
        members = np.flatnonzero(ids == source)
        ids[members[points[members] @ normal > offset]] = free[0]
        splits.append(Split(source, free.pop(0), tuple(normal.tolist()), offset))
    return tuple(splits), ids


def _bisect(values: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64], float]:
    """``(gain, normal, offset)`` of the cut of one class's pixels ``values (P, B)`` by
    2-means (scikit-learn, fixed seed, fitted on at most :data:`BISECT_SAMPLE` evenly
    spaced pixels): the smaller half is ``values @ normal > offset``. Gain 0 when the
    class cannot be cut (its sampled pixels all alike)."""
    sample = values[
        np.linspace(0, values.shape[0] - 1, min(values.shape[0], BISECT_SAMPLE)).astype(np.int64)
    ]
    normal = np.zeros(values.shape[1])
    if sample.shape[0] < 2 or not np.ptp(sample, axis=0).any():
        return 0.0, normal, 0.0
    from sklearn.cluster import KMeans  # here: 0.7 s of start-up for a rare split

    means = KMeans(n_clusters=2, n_init=3, random_state=0).fit(sample).cluster_centers_
    normal = means[1] - means[0]
    offset = float((means[1] @ means[1] - means[0] @ means[0]) / 2.0)
    far = values @ normal > offset
    n_far = int(far.sum())
    if n_far in (0, far.size):
        return 0.0, normal, offset
    if 2 * n_far > far.size:  # the larger half keeps the id
        normal, offset, far, n_far = -normal, -offset, ~far, far.size - n_far
    gap = values[far].mean(axis=0) - values[~far].mean(axis=0)
    return n_far * (far.size - n_far) / far.size * float(gap @ gap), normal, offset
