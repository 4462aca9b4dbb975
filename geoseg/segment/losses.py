"""Losses of the unsupervised loop.

* similarity (Kanezaki 2018, TIP 2020): cross-entropy between the scores and a target,
  the argmax refined by superpixels (2018) or the plain argmax (2020);
* continuity (TIP 2020): mean absolute difference between vertically and horizontally
  adjacent score vectors.

    >>> import torch
    >>> continuity_loss(torch.ones(1, 2, 4, 4)).item()
    0.0
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["IGNORE", "continuity_loss", "similarity_loss"]

IGNORE = -100
"""Target value of pixels that take no part in the loss (nodata)."""


def similarity_loss(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``scores (N, C, H, W)`` against ``target (N, H, W)``.

    Pixels whose target is :data:`IGNORE` are left out of the mean.
    """
    return F.cross_entropy(scores, target, ignore_index=IGNORE)


def continuity_loss(scores: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """L1 spatial continuity loss of TIP 2020 on ``scores (N, C, H, W)``.

    The mean absolute vertical difference plus the mean absolute horizontal difference
    (each the ``L1Loss`` against zeros of the reference code). With ``valid (N, H, W)``
    only pairs of two valid pixels count.

    >>> s = torch.zeros(1, 1, 2, 2); s[0, 0, :, 1] = 1.0
    >>> continuity_loss(s).item()  # no vertical change, horizontal change 1 everywhere
    1.0
    """
    dy = (scores[:, :, 1:, :] - scores[:, :, :-1, :]).abs()
    dx = (scores[:, :, :, 1:] - scores[:, :, :, :-1]).abs()
    if valid is None:
        return dy.mean() + dx.mean()
    c = scores.shape[1]
    vy = (valid[:, 1:, :] & valid[:, :-1, :]).unsqueeze(1)
    vx = (valid[:, :, 1:] & valid[:, :, :-1]).unsqueeze(1)
    ny = vy.sum().clamp(min=1) * c
    nx = vx.sum().clamp(min=1) * c
    return (dy * vy).sum() / ny + (dx * vx).sum() / nx
