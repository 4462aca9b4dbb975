"""Joins of classes by their layout in the views, before Ward's rule on prototypes.

Classes that meet along boundaries the picture does not mark can be joined
(:func:`edge_merge_table`, ``merge_edge_sigma``): where the image changes no more across
a class boundary than at a typical pixel, the boundary is a ramp (the depth of shallow
water, the shading of a field), not an edge between two covers. With ``n_classes`` this
stops at ``n_classes`` classes and Ward's rule (:mod:`geoseg.segment.merge`) joins the
rest: the picture's own edges decide first, the prototypes after.

Classes that, at the ground scale, are not a cover of their own but part of another's
mixture (the shade between sunlit crowns, one face of a roof) join that cover
(:func:`mix_merge_table`, ``mix_radius``).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from geoseg.segment.classify import gaussian_blur
from geoseg.segment.model import local_mean

__all__ = ["edge_merge_table", "mix_merge_table"]


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
    flat = gaussian_blur(flat, sigma, r)
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
