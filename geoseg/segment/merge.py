"""The scene's class map: network channels -> final classes, decided once per scene.

After training, each network class has a prototype: its pixel count and the means of
its pixels' class probabilities and band values over the training views (see
:func:`merge_for`). Classes are joined two at a time by Ward's criterion, the pair
whose union raises the within-class sum of squares least, until ``n_classes`` remain,
or (automatic choice) while that rise stays below a share of the total sum of squares.
The result is a lookup table from network channel to merged class, decided once per
scene, so every tile applies the same one (:func:`geoseg.segment.classify.classify`).

Before that, classes can be joined by their layout in the views, along boundaries the
picture does not mark or into the mixture they belong to
(:mod:`geoseg.segment.spatial_merge`); when the network ends with fewer classes than
``n_classes`` asks for, classes are split instead (:mod:`geoseg.segment.split`).

Ward's rule is written here by hand (a 32x32 cost matrix): scipy's ``linkage`` and
scikit-learn's ``AgglomerativeClustering`` take raw observations, not weighted
centroids.

    >>> import numpy as np
    >>> counts = np.array([100, 90, 0, 10])
    >>> means = np.array([[0.1], [0.12], [0.5], [0.9]])
    >>> merge_table(counts, means, n_classes=2).tolist()
    [0, 0, 2, 3]
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from geoseg.errors import InputError
from geoseg.segment.classify import classify
from geoseg.segment.model import local_std
from geoseg.segment.params import SegmentParams
from geoseg.segment.spatial_merge import edge_merge_table, mix_merge_table
from geoseg.segment.split import Split, split_and_relabel

__all__ = [
    "ClassMap",
    "class_prototypes",
    "merge_for",
    "merge_table",
    "merge_tree",
    "scribble_map",
]


@dataclass(frozen=True, slots=True)
class ClassMap:
    """Network channel -> class (``table``, -1: a channel left out of the argmax), then
    ``splits`` applied in order (:func:`~geoseg.segment.classify.classify`)."""

    table: npt.NDArray[np.int64]
    splits: tuple[Split, ...] = ()
    tree: tuple[tuple[int, int], ...] = ()
    """The classes' merge tree: ``(keep, drop)`` pairs of class ids, each joining two of
    the classes left by the ones before it, until one class is left
    (:func:`merge_tree`)."""


def merge_for(
    logits: torch.Tensor,
    images: npt.NDArray[np.floating],
    valid: npt.NDArray[np.bool_],
    params: SegmentParams,
) -> ClassMap | None:
    """The class map ``params`` ask for (``n_classes`` or ``merge_share``) from the
    trained network's class logits ``(N, C, H, W)`` on its views ``images (N, B, H, W)``
    with ``valid (N, H, W)``; ``None`` when no merging is asked for.

    A class's prototype joins three descriptions, each divided by the square root of its
    total sum of squares so that all weigh alike: the mean of its pixels' class
    probabilities (classes the network itself confuses join first), the mean of their
    band values (classes that look alike join first; on its own the first fails when the
    network is confident, since confident classes are then all equally far apart) and
    the mean of their bands' local standard deviation over 5 x 5 px (classes of like
    texture join first: smooth water does not join a built-up class of the same mean).

    With ``merge_edge_sigma``, classes are first joined along weak boundaries of the
    views (:func:`~geoseg.segment.spatial_merge.edge_merge_table`; with ``n_classes``,
    down to that many at most), and the prototypes are those of the joined classes.

    Channels that win no pixel of the views map to -1:
    :func:`~geoseg.segment.classify.classify` then gives their pixels the best of the
    other channels, so a class the views never showed cannot come back as one more class
    than asked for. With ``n_classes`` and fewer classes than that, classes are split on
    the views' pixels (:func:`~geoseg.segment.split.split_classes`), the new ones taking
    ids of channels no class uses.
    """
    if not params.merges:
        return None
    with torch.no_grad():
        probs = torch.softmax(logits.float(), dim=1)
        labels = np.where(valid, probs.argmax(dim=1).cpu().numpy(), -1)
        probs_np = probs.cpu().numpy()
        texture = local_std(torch.as_tensor(images), radius=2).numpy()
    seen = np.bincount(labels[labels >= 0], minlength=params.n_channels)[: params.n_channels]
    if not seen.any():  # views without a valid pixel leave every channel in
        return ClassMap(np.arange(params.n_channels))
    joined = np.where(seen > 0, np.arange(params.n_channels), -1)
    if params.merge_edge_sigma > 0:
        smoothed = np.where(valid, _smoothed_views(logits, images, joined, params), -1)
        edges = edge_merge_table(
            smoothed, images, valid, params.merge_edge_sigma, joined.size, params.n_classes
        )
        joined = np.where(joined >= 0, edges[np.maximum(joined, 0)], -1)
    if params.mix_radius > 0:  # on the classes as the smoothing leaves them
        current = np.where(valid, _smoothed_views(logits, images, joined, params), -1)
        mixes = mix_merge_table(current, params.mix_radius, joined.size, params.n_classes)
        joined = np.where(joined >= 0, mixes[np.maximum(joined, 0)], -1)
    labels = np.where(labels >= 0, joined[np.maximum(labels, 0)], -1)
    described = (probs_np, images, texture)
    counts, means = _joint_prototypes(labels, described, params.n_channels)
    ward = merge_table(
        counts, means, n_classes=params.n_classes, total_ss=3.0, max_share=params.merge_share
    )
    table = np.where(joined >= 0, ward[np.maximum(joined, 0)], -1)
    splits: tuple[Split, ...] = ()
    final = table[labels[valid]]
    if params.n_classes is not None:
        free = sorted(set(range(table.size)) - set(table[table >= 0].tolist()))
        pixels = np.moveaxis(images, 1, -1)[valid]  # (pixels, B)
        splits, final = split_and_relabel(final, pixels, params.n_classes, free)
    # the tree: Ward's rule on the final classes' prototypes, down to one class
    per_view = np.full(labels.shape, -1, np.int64)
    per_view[valid] = final
    return ClassMap(table, splits, merge_tree(*_joint_prototypes(per_view, described, table.size)))


def scribble_map(
    logits: torch.Tensor, valid: npt.NDArray[np.bool_], n_scribbled: int, params: SegmentParams
) -> ClassMap:
    """The class map of a network trained with ``n_scribbled`` scribbled classes in its
    first channels: those channels are the classes. The network's other classes (the
    channels that win pixels of the views ``logits (N, C, H, W)``, ``valid (N, H, W)``)
    are kept whole: with ``params.scribbles_only`` each joins the scribbled class that
    most of its pixels score highest among the scribbled channels; without it, each
    stays a class of its own.

    >>> logits = torch.zeros(1, 4, 2, 2); logits[0, 3] = 1.0  # channel 3 wins everywhere
    >>> logits[0, 1] = 0.5; logits[0, 1, 1, 1] = -1  # channel 1 leads 0 on 3 of its 4 px
    >>> valid = np.ones((1, 2, 2), bool)
    >>> scribble_map(logits, valid, 2, SegmentParams()).table.tolist()
    [0, 1, -1, 1]
    >>> scribble_map(logits, valid, 2, SegmentParams(scribbles_only=False)).table.tolist()
    [0, 1, -1, 3]
    """
    channels = logits.shape[1]
    with torch.no_grad():
        won = logits.argmax(dim=1).cpu().numpy()[valid]
        scribbled = logits[:, :n_scribbled].argmax(dim=1).cpu().numpy()[valid]
    table = np.full(channels, -1, np.int64)
    table[:n_scribbled] = np.arange(n_scribbled)
    for c in np.unique(won[won >= n_scribbled]):
        if params.scribbles_only:
            table[c] = np.bincount(scribbled[won == c], minlength=n_scribbled).argmax()
        else:
            table[c] = c
    return ClassMap(table)


def _smoothed_views(
    logits: torch.Tensor,
    images: npt.NDArray[np.floating],
    table: npt.NDArray[np.int64],
    params: SegmentParams,
) -> npt.NDArray[np.int64]:
    """The views' classes ``(N, H, W)`` through ``table`` and the label smoothing, as
    :func:`~geoseg.segment.classify.classify` gives them for the tiles."""
    views = [
        classify(
            logits[i],
            table=table,
            sigma=params.smooth_sigma,
            range_sigma=params.smooth_range,
            image=images[i],
        )
        for i in range(logits.shape[0])
    ]
    return torch.stack(views).cpu().numpy().astype(np.int64)


def _joint_prototypes(
    labels: npt.NDArray[np.integer],
    described: Sequence[npt.NDArray[np.floating]],
    n_labels: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Pixel counts and prototypes of the classes of ``labels (N, H, W)``: the class
    means of each of ``described`` (``(N, B, H, W)`` each: class probabilities, band
    values, texture), each divided by the square root of its total sum of squares so
    that all weigh alike, side by side."""
    parts = [class_prototypes(labels, values, n_labels) for values in described]
    means = [part / math.sqrt(max(total, 1e-12)) for _, part, total in parts]
    return parts[0][0], np.concatenate(means, axis=1)


def class_prototypes(
    labels: npt.NDArray[np.integer],
    images: npt.NDArray[np.floating],
    n_labels: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], float]:
    """Per-class pixel counts, band means and the total sum of squares.

    Parameters
    ----------
    labels
        ``(N, H, W)`` class ids in ``0..n_labels-1``; negative ids (nodata) are left out.
    images
        ``(N, B, H, W)`` band values of the same pixels.
    n_labels
        Number of possible classes (the network's output channels).

    Returns
    -------
    counts (n_labels,), means (n_labels, B) (0 for absent classes), total sum of squares
    of the counted pixels about their mean.
    """
    if labels.ndim != 3 or images.ndim != 4 or images.shape[:1] + images.shape[2:] != labels.shape:
        raise InputError(f"labels {labels.shape} and images {images.shape} do not match")
    inside = labels >= 0
    ids = labels[inside].astype(np.int64)
    values = np.moveaxis(images, 1, -1)[inside].astype(np.float64)  # (pixels, B)
    counts = np.bincount(ids, minlength=n_labels)[:n_labels]
    sums = np.stack(
        [
            np.bincount(ids, weights=values[:, b], minlength=n_labels)
            for b in range(values.shape[1])
        ],
        axis=1,
    )
    means = sums / np.maximum(counts, 1)[:, None]
    total = float(((values - values.mean(axis=0)) ** 2).sum()) if values.size else 0.0
    return counts, means, total


def merge_table(
    counts: npt.NDArray[np.integer],
    means: npt.NDArray[np.floating],
    *,
    n_classes: int | None = None,
    total_ss: float | None = None,
    max_share: float = 0.0,
) -> npt.NDArray[np.int64]:
    """Lookup table ``class -> merged class`` by Ward agglomeration of class prototypes.

    A merged class takes the id of its member with the most pixels (ties: the lowest
    id); absent classes (count 0) map to themselves.

    Parameters
    ----------
    counts, means
        Pixels ``(C,)`` and band means ``(C, B)`` of each class (:func:`class_prototypes`).
    n_classes
        Merge until this many present classes remain (fewer are never made).
    total_ss, max_share
        Without ``n_classes``: keep merging while the cheapest merge raises the
        within-class sum of squares by less than ``max_share * total_ss``.
    """
    if n_classes is not None and n_classes < 1:
        raise InputError(f"n_classes={n_classes} must be >= 1")
    table = np.arange(np.asarray(counts).size)
    present = int(np.count_nonzero(np.asarray(counts) > 0))
    limit = max_share * (total_ss or 0.0)
    for cost, keep, drop in _ward(counts, means):
        if n_classes is not None and present <= n_classes:
            break
        if n_classes is None and cost >= limit:
            break
        table[table == drop] = keep
        present -= 1
    return table


def merge_tree(
    counts: npt.NDArray[np.integer], means: npt.NDArray[np.floating]
) -> tuple[tuple[int, int], ...]:
    """Every merge of Ward's rule (:func:`merge_table`) down to one class, in order:
    ``(keep, drop)``, the group ``drop`` names joining the group ``keep`` names. The
    first ``P - K`` of them leave ``K`` of the ``P`` present classes: a class
    hierarchy, cut anywhere without training again (``geoseg reclass``).

    >>> merge_tree(np.array([100, 90, 0, 10]), np.array([[0.1], [0.12], [0.5], [0.9]]))
    ((0, 1), (0, 3))
    """
    return tuple((keep, drop) for _, keep, drop in _ward(counts, means))


def _ward(
    counts: npt.NDArray[np.integer], means: npt.NDArray[np.floating]
) -> Iterator[tuple[float, int, int]]:
    """Ward's agglomeration of the present classes: ``(cost, keep, drop)`` of each
    cheapest merge in turn (a group is named after its member with the most pixels,
    ties: the lowest id)."""
    counts = np.asarray(counts, np.int64)
    means = np.asarray(means, np.float64)
    present = [int(c) for c in np.flatnonzero(counts > 0)]
    n = {c: float(counts[c]) for c in present}
    mu = {c: means[c].copy() for c in present}
    while len(present) > 1:
        best = None
        for i, a in enumerate(present):
            for b in present[i + 1 :]:
                cost = n[a] * n[b] / (n[a] + n[b]) * float(((mu[a] - mu[b]) ** 2).sum())
                if best is None or cost < best[0]:
                    best = (cost, a, b)
        assert best is not None
        cost, a, b = best
        keep, drop = (a, b) if (counts[a], -a) >= (counts[b], -b) else (b, a)
        yield cost, keep, drop
        mu[keep] = (n[keep] * mu[keep] + n[drop] * mu[drop]) / (n[keep] + n[drop])
        n[keep] += n.pop(drop)
        del mu[drop]
        present.remove(drop)
