"""Superpixel priors (SLIC, Felzenszwalb) and the vectorized majority-vote refinement.

This is the only module that goes channel-last, for scikit-image.

    >>> import numpy as np
    >>> from geoseg.segment.params import PRESETS
    >>> image = np.zeros((3, 20, 20), np.float32); image[:, :, 10:] = 1.0
    >>> sp = compute_superpixels(image, PRESETS["fork"].replace(fz_min_size=4))
    >>> sp.shape, sp.dtype, int(sp.min())
    ((20, 20), dtype('int32'), 0)
"""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt
import torch
from skimage.segmentation import felzenszwalb, slic

from geoseg.errors import InputError
from geoseg.segment.params import SegmentParams

__all__ = ["compute_superpixels", "refine_labels"]


def compute_superpixels(
    image: npt.NDArray[np.floating],
    params: SegmentParams,
    *,
    valid: npt.NDArray[np.bool_] | None = None,
    scale: float = 1.0,
) -> npt.NDArray[np.int32]:
    """Superpixel ids ``(H, W) int32`` numbered ``0..M-1``, ``-1`` outside ``valid``.

    Parameters
    ----------
    image
        ``(B, H, W)`` float image scaled to about ``[0, 1]``, any band count.
    params
        Uses ``superpixels`` and its ``slic_*`` / ``fz_*`` fields. With ``"none"`` every
        valid pixel is its own superpixel, so refinement leaves labels unchanged.
    valid
        ``(H, W)`` bool, ``True`` where the pixel holds data.
    scale
        Resolution of ``image`` relative to the full-resolution image the parameters
        were set for; sizes in pixels (``fz_min_size``, ``slic_n_segments``) scale by
        ``scale**2`` so a downscaled copy gets superpixels of the same ground size.
    """
    if image.ndim != 3:
        raise InputError(f"image must be (bands, rows, cols); got shape {image.shape}")
    _, h, w = image.shape
    if valid is None:
        valid = np.ones((h, w), bool)
    if params.superpixels == "none":
        ids = np.full((h, w), -1, np.int32)
        ids[valid] = np.arange(int(valid.sum()), dtype=np.int32)
        return ids

    filled = np.where(valid[None], image, 0.0).astype(np.float64)
    if params.superpixels == "felzenszwalb":
        channel_last = np.moveaxis(filled, 0, -1)
        with warnings.catch_warnings():
            # skimage warns for band counts other than 3; any count is intended here.
            warnings.simplefilter("ignore", (UserWarning, RuntimeWarning))
            raw = felzenszwalb(
                channel_last[..., 0] if channel_last.shape[-1] == 1 else channel_last,
                scale=params.fz_scale,
                sigma=params.fz_sigma,
                min_size=max(1, round(params.fz_min_size * scale * scale)),
                channel_axis=None if channel_last.shape[-1] == 1 else -1,
            )
    else:
        three_band = image.shape[0] == 3
        # skimage rescales the image to [0, 1]; RGB then goes to CIELAB (0-100) as in
        # the paper. Other band counts stay on [0, 1], so the compactness is divided by
        # 100 to weigh colour against distance as it does for CIELAB.
        data = np.moveaxis(filled, 0, -1)
        raw = slic(
            data[..., 0] if data.shape[-1] == 1 else data,
            n_segments=max(1, round(params.slic_n_segments * scale * scale)),
            compactness=params.slic_compactness / (1.0 if three_band else 100.0),
            convert2lab=three_band,
            start_label=1,
            mask=None if valid.all() else valid,
            channel_axis=None if data.shape[-1] == 1 else -1,
        )
    ids = np.full((h, w), -1, np.int32)
    _, ids[valid] = np.unique(raw[valid], return_inverse=True)
    return ids


def refine_labels(
    labels: torch.Tensor,
    superpixels: torch.Tensor,
    n_labels: int,
    *,
    n_superpixels: int | None = None,
) -> torch.Tensor:
    """Majority vote of ``labels`` inside each superpixel, in one vectorized pass.

    Counts every (superpixel, label) pair with one ``bincount`` and paints each
    superpixel with its most frequent label (the smallest label on ties, as
    ``np.unique`` + ``argmax`` in the reference code). Pixels with a negative
    superpixel id keep their label. ``n_superpixels`` (``max id + 1``) may be given to
    spare a device synchronisation.

    >>> labels = torch.tensor([0, 1, 1, 2, 2, 0])
    >>> sp = torch.tensor([0, 0, 0, 1, 1, -1])
    >>> refine_labels(labels, sp, 3).tolist()
    [1, 1, 1, 2, 2, 0]
    """
    inside = superpixels >= 0
    sp = superpixels[inside]
    if sp.numel() == 0:
        return labels.clone()
    n_sp = int(sp.max()) + 1 if n_superpixels is None else n_superpixels
    counts = torch.bincount(sp * n_labels + labels[inside], minlength=n_sp * n_labels)
    majority = counts.view(n_sp, n_labels).argmax(dim=1)
    refined = labels.clone()
    refined[inside] = majority[sp]
    return refined
