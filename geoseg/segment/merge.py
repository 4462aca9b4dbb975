"""From class scores to final classes: merging on prototypes and spatial smoothing.

After training, each network class has a prototype: its pixel count and the means of
its pixels' class probabilities and band values over the training views (see
:func:`merge_for`). Classes are joined two at a time by Ward's criterion, the pair
whose union raises the within-class sum of squares least, until ``n_classes`` remain,
or (automatic choice) while that rise stays below a share of the total sum of squares.
The result is a lookup table from network channel to merged class, decided once per
scene, so every tile applies the same one.

Before that, classes that meet along boundaries the picture does not mark can be joined
(:func:`edge_merge_table`, ``merge_edge_sigma``): where the image changes no more across
a class boundary than at a typical pixel, the boundary is a ramp (the depth of shallow
water, the shading of a field), not an edge between two covers. With ``n_classes`` this
stops at ``n_classes`` classes and Ward's rule joins the rest: the picture's own edges
decide first, the prototypes after.

When the network ends with fewer classes than ``n_classes`` asks for, classes are split
instead (:func:`split_classes`, bisecting k-means): of the cuts of each class in two by
2-means on its pixels' band values, the one that lowers the within-class sum of squares
most is made, as long as it lowers it by at least :data:`SPLIT_SHARE` of the total. A
split is a plane in band space, so it too is applied pixel by pixel and every tile
agrees.

:func:`classify` applies such a table to a tile's argmax and optionally smooths the
result with a Gaussian-weighted majority filter, edge-aware with ``range_sigma`` (a
spatial prior against speckle whose reach is part of the receptive field).

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
import torch.nn.functional as F

from geoseg.errors import InputError
from geoseg.segment.model import local_mean, local_std
from geoseg.segment.params import SegmentParams, smooth_radius, smooth_step

__all__ = [
    "ClassMap",
    "Split",
    "class_prototypes",
    "classify",
    "edge_merge_table",
    "merge_for",
    "merge_table",
    "merge_tree",
    "scribble_map",
    "split_classes",
]

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


@dataclass(frozen=True, slots=True)
class ClassMap:
    """Network channel -> class (``table``, -1: a channel left out of the argmax), then
    ``splits`` applied in order (:func:`classify`)."""

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
    views (:func:`edge_merge_table`; with ``n_classes``, down to that many at most), and
    the prototypes are those of the joined classes.

    Channels that win no pixel of the views map to -1: :func:`classify` then gives
    their pixels the best of the other channels, so a class the views never showed
    cannot come back as one more class than asked for. With ``n_classes`` and fewer
    classes than that, classes are split on the views' pixels (:func:`split_classes`),
    the new ones taking ids of channels no class uses.
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
        splits, final = _split(final, pixels, params.n_classes, free)
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
    :func:`classify` gives them for the tiles."""
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


def classify(
    logits: torch.Tensor,
    *,
    table: npt.NDArray[np.integer] | None = None,
    splits: Sequence[Split] = (),
    sigma: float = 0.0,
    range_sigma: float = 0.0,
    image: torch.Tensor | npt.NDArray[np.floating] | None = None,
) -> torch.Tensor:
    """Class ids ``(H, W) int64`` of class logits ``(C, H, W)`` (any float type: the
    argmax of bfloat16 logits is that of their exact float32 values).

    The argmax, mapped through ``table`` (class -> merged class, :func:`merge_table`)
    when given; channels that ``table`` maps to -1 (:func:`merge_for`) are left out of
    the argmax. ``splits`` (:class:`Split`, in order) then move pixels of a class on the
    far side of a plane in ``image``'s band space to another. With ``sigma > 0`` each
    pixel then takes the class of highest
    Gaussian-weighted vote among its neighbours (a weighted majority filter, edges
    replicated, truncated at :func:`smooth_radius`; ties go to the lowest id). With
    ``range_sigma > 0`` the filter is edge-aware: each vote is also weighted by the
    similarity of the two pixels in ``image (B, H, W)`` (:func:`_bilateral_votes`). The
    ids stay network channels.

    >>> logits = torch.tensor([[[2.0, 0.0]], [[1.9, 0.0]], [[0.0, 3.0]]])
    >>> classify(logits).tolist(), classify(logits, table=np.array([2, 2, 2])).tolist()
    ([[0, 2]], [[2, 2]])
    >>> classify(logits, table=np.array([-1, 1, 2])).tolist()
    [[1, 2]]
    """
    # max(...).indices is the argmax (the first of equal maxima) and faster than argmax:
    # 15 against 19.5 ms over 32 x 560² channels-last logits, 6.6 against 59 ms (and
    # 23 ms plane by plane) over 6 x 476² votes
    if table is None:
        labels = logits.max(dim=0).indices
    else:
        table_t = torch.as_tensor(np.asarray(table), device=logits.device)
        kept = torch.nonzero(table_t >= 0).flatten()
        if kept.numel() < table_t.numel():  # the argmax over the kept channels only
            labels = table_t[kept[logits.index_select(0, kept).max(dim=0).indices]]
        else:
            labels = table_t[logits.max(dim=0).indices]
    pixels = None
    if image is not None:
        pixels = torch.as_tensor(image, device=labels.device).float()
        if pixels.shape[1:] != labels.shape:
            raise InputError(
                f"image {tuple(pixels.shape)} and logits {tuple(logits.shape)} differ in size"
            )
    for split in splits:
        if pixels is None:
            raise InputError("class splits need the image")
        side = pixels[0] * split.normal[0]  # band by band: the same sum in every tile
        for band in range(1, pixels.shape[0]):
            side.add_(pixels[band], alpha=split.normal[band])
        labels = torch.where((labels == split.source) & (side > split.offset), split.target, labels)
    radius = smooth_radius(sigma, range_sigma)
    if not radius:
        return labels
    ids = torch.nonzero(torch.bincount(labels.flatten()) > 0).flatten()  # present, sorted
    # the labels' edges replicated (a gather): the same as padding by replication
    h, w = labels.shape
    rows = torch.arange(-radius, h + radius, device=labels.device).clamp_(0, h - 1)
    cols = torch.arange(-radius, w + radius, device=labels.device).clamp_(0, w - 1)
    if range_sigma > 0:
        if pixels is None:
            raise InputError("edge-aware smoothing (range_sigma > 0) needs the image")
        compact = torch.zeros(int(ids[-1]) + 1, dtype=torch.int64, device=labels.device)
        compact[ids] = torch.arange(ids.numel(), device=labels.device)
        padded = compact[labels].index_select(0, rows).index_select(1, cols)
        edges = (radius,) * 4
        votes = _bilateral_votes(
            padded, F.pad(pixels[None], edges, mode="replicate")[0], ids.numel(), sigma, range_sigma
        )
        return ids[votes.max(dim=0).indices]
    padded = labels.index_select(0, rows).index_select(1, cols)
    votes = (padded[None] == ids[:, None, None]).float()[None]  # (1, classes, H', W')
    votes = _gaussian_blur(votes, sigma, radius)[0]
    return ids[votes.max(dim=0).indices]


def _gaussian_blur(planes: torch.Tensor, sigma: float, radius: int) -> torch.Tensor:
    """``planes (1, k, H + 2 radius, W + 2 radius)``, edges already padded, blurred by a
    normalized Gaussian of ``sigma`` px truncated at ``radius``, along columns then rows:
    ``(1, k, H, W)``."""
    k = planes.shape[1]
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=planes.device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = (kernel / kernel.sum()).repeat(k, 1, 1)  # (k, 1, taps)
    planes = F.conv2d(planes, kernel[:, :, None, :], groups=k)  # along columns
    return F.conv2d(planes, kernel[:, :, :, None], groups=k)  # along rows


def _bilateral_votes(
    padded: torch.Tensor, pixels: torch.Tensor, n: int, sigma: float, range_sigma: float
) -> torch.Tensor:
    """Votes ``(n, H, W)`` of a joint bilateral majority filter.

    ``padded (H + 2r, W + 2r)`` holds compact class ids ``0..n-1`` and ``pixels (B, H +
    2r, W + 2r)`` the band values, both padded by ``r = smooth_radius(sigma,
    range_sigma)``. The neighbour at offset ``(dy, dx)`` (multiples of
    :func:`smooth_step` up to ``r``) votes for its class with weight
    ``exp(-(dy² + dx²) / 2 sigma²) * exp(-d² / 2 range_sigma²)``, ``d²`` the mean over
    bands of the squared difference of the two pixels' values. A pair's weight is the
    same seen from either pixel, so each is computed once for the offsets ``d`` and
    ``-d``. Written by hand: skimage's and OpenCV's bilateral filters smooth values,
    not votes for classes.
    """
    r, step = smooth_radius(sigma, range_sigma), smooth_step(sigma)
    bands, h, w = pixels.shape[0], padded.shape[0] - 2 * r, padded.shape[1] - 2 * r
    votes = torch.zeros((n, h, w), dtype=torch.float32, device=padded.device)
    centre = padded[r : r + h, r : r + w]
    votes.scatter_add_(0, centre.unsqueeze(0), torch.ones((1, h, w), device=padded.device))
    scale = -1.0 / (2.0 * range_sigma**2 * bands)  # the mean over bands folded in
    offsets = [(dy, dx) for dy in range(0, r + 1, step) for dx in range(-r, r + 1, step)]
    # buffers for the largest pair block, reused (views of the right shape) at each offset
    diff_buffer = torch.empty((h + r) * (w + 2 * r), device=padded.device)
    d2_buffer = torch.empty_like(diff_buffer)
    for dy, dx in offsets:
        if dy == 0 and dx <= 0:  # (0, 0) is the centre; (0, -dx) pairs with (0, dx)
            continue
        # pairs (q, q + d) for every q that is a centre or a centre minus d
        y0, x0 = r - dy, r - max(0, dx)
        rows, cols = h + dy, w + abs(dx)
        diff = diff_buffer[: rows * cols].view(rows, cols)
        d2 = d2_buffer[: rows * cols].view(rows, cols)
        for band in range(bands):
            here = pixels[band, y0 : y0 + rows, x0 : x0 + cols]
            there = pixels[band, y0 + dy : y0 + dy + rows, x0 + dx : x0 + dx + cols]
            torch.sub(here, there, out=diff)
            if band == 0:
                torch.mul(diff, diff, out=d2)  # 0 + diff² exactly
            else:
                d2.addcmul_(diff, diff)
        weight = d2.mul_(scale).exp_().mul_(math.exp(-(dy * dy + dx * dx) / (2.0 * sigma**2)))
        # seen from q (the centre p = q): the neighbour p + d
        at_q = weight[r - y0 : r - y0 + h, r - x0 : r - x0 + w]
        votes.scatter_add_(0, padded[r + dy : r + dy + h, r + dx : r + dx + w][None], at_q[None])
        # seen from q + d (the centre p = q + d): the neighbour p - d, weight at q = p - d
        at_p = weight[r - dy - y0 : r - dy - y0 + h, r - dx - x0 : r - dx - x0 + w]
        votes.scatter_add_(0, padded[r - dy : r - dy + h, r - dx : r - dx + w][None], at_p[None])
    return votes


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
    return _split(classes, values, n_classes, free)[0]


def _split(
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


def edge_merge_table(
    labels: npt.NDArray[np.integer],
    images: npt.NDArray[np.floating],
    valid: npt.NDArray[np.bool_],
    sigma: float,
    n_labels: int | None = None,
    min_classes: int | None = None,
) -> npt.NDArray[np.int64]:
    """Lookup table ``class -> joined class`` that joins classes along weak boundaries.

    ``labels (N, H, W)`` (-1 at nodata) are class ids below ``n_labels`` (default: their
    largest + 1) of the views ``images (N, B, H, W)``. The image's gradient is the
    Gaussian gradient magnitude at ``sigma`` px (the bands smoothed, then central
    differences; the root of the bands' summed squares), and a boundary's strength is
    its mean over the pairs of 4-neighbours of two classes (both pixels valid). While
    the weakest boundary is no stronger than the median gradient of the valid pixels,
    its two classes are joined (their boundaries then pooled) under the id of the one
    with more pixels (ties: the lower id), until ``min_classes`` classes are left if
    given.

    >>> labels = np.zeros((1, 16, 16), np.int64); labels[0, :, 8:] = 1; labels[0, 6:] = 2
    >>> image = np.tile(np.linspace(0, 0.3, 16), (16, 1))  # a ramp, left to right,
    >>> image[6:] = np.where(np.arange(16) // 3 % 2, 0.2, 0.8)  # stripes below it
    >>> edge_merge_table(labels, image[None, None], labels >= 0, 1.0).tolist()
    [0, 0, 2]
    >>> edge_merge_table(labels, image[None, None], labels >= 0, 1.0, min_classes=3).tolist()
    [0, 1, 2]
    >>> image[:6, 8:] += 0.5  # a step where the ramp's two classes meet
    >>> edge_merge_table(labels, image[None, None], labels >= 0, 1.0).tolist()
    [0, 1, 2]
    """
    n = int(labels.max(initial=-1)) + 1 if n_labels is None else n_labels
    if n < 2 or not np.any(valid):
        return np.arange(n)
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    r = max(1, math.ceil(3 * sigma))
    flat = F.pad(x.reshape(1, -1, *x.shape[2:]), (r, r, r, r), mode="replicate")
    flat = _gaussian_blur(flat, sigma, r)
    gy, gx = torch.gradient(flat.reshape(x.shape), dim=(2, 3))
    grad = (gx * gx + gy * gy).sum(dim=1).sqrt().numpy().astype(np.float64)  # (N, H, W)
    ids = np.asarray(labels, np.int64)
    sums = np.zeros(n * n)
    pairs = np.zeros(n * n)
    for left, right, g_left, g_right in (
        (ids[:, :, :-1], ids[:, :, 1:], grad[:, :, :-1], grad[:, :, 1:]),
        (ids[:, :-1], ids[:, 1:], grad[:, :-1], grad[:, 1:]),
    ):
        cut = (left != right) & (left >= 0) & (right >= 0)
        key = np.minimum(left, right)[cut] * n + np.maximum(left, right)[cut]
        sums += np.bincount(key, weights=(g_left[cut] + g_right[cut]) / 2, minlength=n * n)
        pairs += np.bincount(key, minlength=n * n)
    sums = sums.reshape(n, n) + sums.reshape(n, n).T
    pairs = pairs.reshape(n, n) + pairs.reshape(n, n).T
    limit = float(np.median(grad[np.asarray(valid, bool)]))
    counts = np.bincount(ids[ids >= 0], minlength=n).astype(np.float64)
    table = np.arange(n)
    while min_classes is None or np.count_nonzero(counts) > min_classes:
        strength = np.where(pairs > 0, sums / np.maximum(pairs, 1), np.inf)
        a, b = np.unravel_index(int(np.argmin(strength)), strength.shape)
        if not strength[a, b] <= limit:
            return table
        keep, drop = (a, b) if (counts[a], -a) >= (counts[b], -b) else (b, a)
        for m in (sums, pairs):
            m[keep] += m[drop]
            m[:, keep] += m[:, drop]
            m[drop] = m[:, drop] = 0
            m[keep, keep] = 0
        counts[keep] += counts[drop]
        counts[drop] = 0
        table[table == drop] = keep
    return table


def mix_merge_table(
    labels: npt.NDArray[np.integer],
    radius: int,
    n_labels: int | None = None,
    min_classes: int | None = None,
    min_share: float = 0.5,
) -> npt.NDArray[np.int64]:
    """Lookup table ``class -> joined class`` that joins the classes which, at the ground
    scale, are not a cover of their own but part of another's mixture.

    ``labels (N, H, W)`` (-1 at nodata) are class ids below ``n_labels``. A class's
    *share* is the mean, over its pixels, of the part of the valid pixels in the ``(2
    radius + 1)²`` window around each that holds the class itself: close to 1 for a cover
    whose patches are wider than the window, low for the shade between sunlit crowns or
    one face of a roof, whose windows are mostly another class. While the class of lowest
    share has less than ``min_share``, it joins the class that fills most of its windows
    (its id: the one with more pixels, ties the lower id), until ``min_classes`` are left
    if given. Shares are linear in the classes' indicator images, so a join adds their
    rows and columns; the windows are measured once.

    >>> labels = np.zeros((1, 40, 40), np.int64); labels[0, :, 20:] = 1  # two covers,
    >>> labels[0, :, 20:][np.indices((40, 20)).sum(0) % 4 == 0] = 2  # one with 2 in it
    >>> mix_merge_table(labels, 3).tolist()
    [0, 1, 1]
    >>> mix_merge_table(labels, 3, min_classes=3).tolist()
    [0, 1, 2]
    """
    n = int(labels.max(initial=-1)) + 1 if n_labels is None else n_labels
    ids = np.asarray(labels, np.int64)
    table = np.arange(n)
    if n < 2 or radius < 1 or not (ids >= 0).any():
        return table
    present = np.flatnonzero(np.bincount(ids[ids >= 0], minlength=n))
    onehot = torch.from_numpy(
        (ids[:, None] == present[None, :, None, None]).astype(np.float32)
    )  # (N, K, H, W)
    valid = torch.from_numpy((ids >= 0).astype(np.float32))[:, None]
    window = local_mean(onehot, radius) / local_mean(valid, radius).clamp_(min=1e-12)
    k = present.size
    # mix[a, b]: over the pixels of class a, the sum of class b's share of their windows
    mix = torch.einsum("nahw,nbhw->ab", onehot.double(), window).numpy()
    counts = onehot.double().sum(dim=(0, 2, 3)).numpy()
    alive = np.ones(k, bool)
    while alive.sum() > max(1, min_classes or 1):
        share = np.where(alive, np.diag(mix) / np.maximum(counts, 1), np.inf)
        a = int(np.argmin(share))
        if not share[a] < min_share:
            break
        others = np.where(alive & (np.arange(k) != a), mix[a], -np.inf)
        b = int(np.argmax(others))
        keep, drop = (a, b) if (counts[a], -present[a]) >= (counts[b], -present[b]) else (b, a)
        mix[keep] += mix[drop]
        mix[:, keep] += mix[:, drop]
        mix[drop] = mix[:, drop] = 0
        counts[keep] += counts[drop]
        counts[drop] = 0
        alive[drop] = False
        table[table == present[drop]] = present[keep]
    return table


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
