"""Scribble mode's last step: every pixel's scribbled class from a classifier trained on
the strokes over the pixel's neighbourhood (docs/decisions/0022).

The network trained with scribbles finds its classes by colour and texture over a few
pixels; a map's classes (a forest, farmland, a built-up block) are told apart over more
ground. So after training, a multinomial logistic regression (scikit-learn) is fitted on
the scribbled pixels, over each pixel's

- band values;
- each band's mean and standard deviation, and the share of each network class (the
  channel it scores highest), within windows of ``(2 r + 1)²`` px, ``r`` the reach of
  the label smoothing it replaces (:func:`~geoseg.segment.params.smooth_radius`, 9 px
  by default) and half of that (:func:`window_radii`).

Its scores give each pixel its class. The windows reach no farther than the smoothing
did, so the receptive field and the tiles' overlap stay as they were, and a pixel's
features, hence its class, are the same in every tile that holds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from geoseg.segment.model import local_mean

__all__ = ["MAX_SAMPLES", "StrokeClassifier", "fit_strokes", "stroke_features", "window_radii"]

MAX_SAMPLES = 200_000
"""At most this many scribbled pixels (a seeded sample) train the classifier."""


def window_radii(reach: int) -> tuple[int, ...]:
    """Radii of the feature windows of a classifier reaching ``reach`` px.

    >>> window_radii(9), window_radii(1), window_radii(0)
    ((4, 9), (1,), ())
    """
    return tuple(sorted({r for r in (reach // 2, reach) if r > 0}))


def stroke_features(
    logits: torch.Tensor,
    image: torch.Tensor | npt.NDArray[np.floating],
    channels: Sequence[int],
    reach: int,
) -> torch.Tensor:
    """Features ``(F, H, W)`` float64 of each pixel of a tile: its bands ``image (B, H,
    W)``, then for each radius of :func:`window_radii` the bands' window means and
    standard deviations and the share of each of ``channels`` (the network's classes, by
    the channel of highest logit among them in ``logits (C, H, W)``).

    >>> logits = torch.zeros(2, 1, 4); logits[1, 0, 2:] = 1.0  # channel 1 on the right
    >>> f = stroke_features(logits, np.zeros((1, 1, 4), np.float32), [0, 1], 1)
    >>> f.shape[0], f[-1, 0].tolist()  # 1 band, its mean and std, 2 shares (radius 1)
    (5, [0.0, 0.3333333333333333, 0.6666666666666666, 1.0])
    """
    x = torch.as_tensor(image, device=logits.device).double()
    kept = torch.as_tensor(list(channels), device=logits.device, dtype=torch.long)
    won = logits.index_select(0, kept).max(dim=0).indices  # index into channels
    onehot = (won[None] == torch.arange(kept.numel(), device=won.device)[:, None, None]).double()
    parts = [x]
    for radius in window_radii(reach):
        mean = local_mean(x[None], radius)[0]
        square = local_mean((x * x)[None], radius)[0]
        shares = local_mean(onehot[None], radius)[0]
        parts += [mean, (square - mean * mean).clamp_(min=0).sqrt_(), shares]
    return torch.cat(parts)


@dataclass(frozen=True)
class StrokeClassifier:
    """A linear classifier over :func:`stroke_features`: class ``argmax(weights @ f +
    bias)``."""

    weights: npt.NDArray[np.float64]
    """``(S, F)``: one row a scribbled class."""
    bias: npt.NDArray[np.float64]
    """``(S,)``."""
    channels: tuple[int, ...]
    """The network channels whose shares are features."""
    reach: int
    """Pixels its windows reach on each side (:func:`window_radii`)."""

    def classify(
        self, logits: torch.Tensor, image: torch.Tensor | npt.NDArray[np.floating]
    ) -> torch.Tensor:
        """Scribbled class ids ``(H, W) int64`` of a tile's logits and bands."""
        features = stroke_features(logits, image, self.channels, self.reach)
        weights = torch.as_tensor(self.weights, device=features.device)
        scores = torch.einsum("sf,fhw->shw", weights, features)
        scores += torch.as_tensor(self.bias, device=features.device)[:, None, None]
        return scores.max(dim=0).indices

    def to_dict(self) -> dict[str, Any]:
        """Plain values (what the scratch folder saves)."""
        return {
            "weights": self.weights.tolist(),
            "bias": self.bias.tolist(),
            "channels": list(self.channels),
            "reach": self.reach,
        }

    @classmethod
    def from_dict(cls, saved: dict[str, Any], n_bands: int) -> StrokeClassifier:
        """The classifier :meth:`to_dict` saved; ``ValueError`` when its shapes do not
        fit ``n_bands`` bands (a file from another version or another scene)."""
        weights = np.asarray(saved["weights"], np.float64)
        bias = np.asarray(saved["bias"], np.float64)
        channels = tuple(int(c) for c in saved["channels"])
        reach = int(saved["reach"])
        n_features = n_bands + len(window_radii(reach)) * (2 * n_bands + len(channels))
        if weights.ndim != 2 or weights.shape != (bias.size, n_features):
            raise ValueError(f"stroke classifier of shape {weights.shape}, not (S, {n_features})")
        return cls(weights, bias, channels, reach)


def fit_strokes(
    features: npt.NDArray[np.float64],
    classes: npt.NDArray[np.int64],
    n_classes: int,
    channels: Sequence[int],
    reach: int,
    *,
    seed: int = 0,
) -> StrokeClassifier:
    """The classifier of the scribbled pixels' ``features (N, F)`` and ``classes (N,)``
    (``0 .. n_classes - 1``): scikit-learn's multinomial logistic regression (L2, C = 1;
    Newton steps: 8 of them took 0.06 s on 4,466 pixels where L-BFGS took 1.3 s), on at
    most :data:`MAX_SAMPLES` of them (seeded). A class without a pixel never wins.

    The features are not standardised: the stretched bands, their spreads and the class
    shares all lie in about ``[0, 1]``, so the penalty weighs them alike. Scaled by the
    strokes' own spread, a feature nearly constant along a few short strokes (a class
    share inside one region) got weights that swung whole regions elsewhere (a synthetic
    scene with one 9 px stroke a class: ARI 0.75 against 0.98 unscaled).

    >>> rng = np.random.default_rng(0)
    >>> f = np.concatenate([rng.normal(0, 1, (50, 2)), rng.normal(4, 1, (50, 2))])
    >>> c = fit_strokes(f, np.repeat([0, 1], 50), 3, (), 0)
    >>> (c.weights @ np.array([[0.0, 4.0], [0.0, 4.0]]) + c.bias[:, None]).argmax(0).tolist()
    [0, 1]
    """
    from sklearn.linear_model import LogisticRegression

    if len(classes) > MAX_SAMPLES:
        pick = np.sort(np.random.default_rng(seed).choice(len(classes), MAX_SAMPLES, replace=False))
        features, classes = features[pick], classes[pick]
    weights = np.zeros((n_classes, features.shape[1]))
    bias = np.full(n_classes, -1e6)  # absent classes never win
    present = np.unique(classes)
    if present.size == 1:
        bias[present[0]] = 0.0
        return StrokeClassifier(weights, bias, tuple(channels), reach)
    fitted = LogisticRegression(C=1.0, solver="newton-cg", max_iter=100).fit(features, classes)
    coef, intercept = fitted.coef_, fitted.intercept_
    if present.size == 2:  # scikit-learn keeps one row: the second class's score
        coef = np.stack([np.zeros_like(coef[0]), coef[0]])
        intercept = np.array([0.0, intercept[0]])
    weights[present], bias[present] = coef, intercept
    return StrokeClassifier(weights, bias, tuple(channels), reach)
