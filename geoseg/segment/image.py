"""One in-memory image segmented end to end: :func:`segment_image`, the public entry
point (classes ``1..K`` numbered by decreasing area, ``0`` at nodata, as in a run's
``labels.tif``), over :func:`segment_channels`, the loop in the network's channel ids.

>>> import numpy as np
>>> image = np.zeros((3, 32, 32), np.float32); image[:, :, 20:] = 1.0
>>> result = segment_image(image, PRESETS["fork"].replace(max_iterations=3, fz_min_size=8))
>>> int(result.labels.min()), int(result.labels.max()) == result.n_labels == len(result.channels)
(1, True)
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch

from geoseg.errors import InputError
from geoseg.normalize import fill_nodata
from geoseg.segment.classify import classify
from geoseg.segment.merge import merge_for
from geoseg.segment.params import PRESETS, SegmentParams
from geoseg.segment.superpixels import compute_superpixels, refine_labels
from geoseg.segment.train import SnapshotFn, fit, predict
from geoseg.segment.views import training_views, upsample_nearest
from geoseg.types import Progress, area_order

__all__ = ["ChannelSegmentation", "Segmentation", "segment_channels", "segment_image"]


@dataclass(frozen=True, slots=True)
class Segmentation:
    """Result of :func:`segment_image` for one image.

    Attributes
    ----------
    labels
        ``(H, W) int32`` classes ``1..K`` by decreasing pixel count (ties: the lower
        network channel first), ``0`` at nodata: the network's argmax after class
        merging and smoothing and, with ``refine_output``, the superpixel majority vote.
    scores
        ``(C, H, W) float32`` per-pixel probabilities (softmax) of the network's ``C``
        output channels, 0 at nodata.
    channels
        The network channel each class comes from: class ``k`` is channel
        ``channels[k - 1]`` of ``scores`` (merged classes keep one channel's id).
    n_iterations
        Training iterations run.
    n_labels
        Classes in ``labels`` (``K``).
    timings
        Seconds per stage: ``superpixels``, ``train``, ``refine`` (the training
        iterations' superpixel refinement, part of ``train``), ``predict`` and, with
        ``refine_output``, ``output_refine``.
    """

    labels: npt.NDArray[np.int32]
    scores: npt.NDArray[np.float32]
    channels: tuple[int, ...]
    n_iterations: int
    n_labels: int
    timings: dict[str, float] = field(default_factory=dict)


def segment_image(
    image: npt.NDArray[np.floating],
    params: SegmentParams | None = None,
    *,
    valid: npt.NDArray[np.bool_] | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: Progress | None = None,
    snapshot_at: Collection[int] = (),
    on_snapshot: SnapshotFn | None = None,
) -> Segmentation:
    """Segment one image ``(B, H, W)`` of any band count into classes ``1..K``.

    Parameters
    ----------
    image
        ``(bands, rows, cols)`` values scaled to about ``[0, 1]`` (e.g. 8-bit / 255, or a
        percentile stretch, see :mod:`geoseg.normalize`).
    params
        Loop parameters, e.g. ``PRESETS["fork"]``; ``None``: ``SegmentParams()``, the
        ``default`` preset.
    valid
        ``(rows, cols)`` bool, ``False`` at nodata (label 0). NaN inside ``valid`` is
        an error.
    seed
        Same seed, same input, same device: same result.
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    progress
        ``progress(iteration, n_labels)`` after each training iteration.
    snapshot_at, on_snapshot
        ``on_snapshot(iteration, labels (rows, cols))`` with the argmax at those
        iterations as network channel + 1 (``0`` at nodata), upsampled to full size
        when training on a downscaled copy.

    Examples
    --------
    >>> image = np.zeros((3, 16, 16), np.float32); image[:, 8:] = 1.0
    >>> valid = np.ones((16, 16), bool); valid[0, 0] = False
    >>> seg = segment_image(image, PRESETS["fork"].replace(max_iterations=2), valid=valid)
    >>> seg.labels.dtype, int(seg.labels[0, 0]), int(seg.labels.max()) == seg.n_labels
    (dtype('int32'), 0, True)
    """
    shifted = None
    if on_snapshot is not None:
        report = on_snapshot

        def shifted(iteration: int, channels: npt.NDArray[np.int32]) -> None:
            report(iteration, channels + 1)

    raw = segment_channels(
        image,
        SegmentParams() if params is None else params,
        valid=valid,
        seed=seed,
        device=device,
        progress=progress,
        snapshot_at=snapshot_at,
        on_snapshot=shifted,
    )
    inside = raw.labels >= 0
    order = area_order(np.bincount(raw.labels[inside] + 1))  # channel + 1, by area
    number = np.zeros(order.max(initial=0) + 1, np.int32)
    number[order] = np.arange(1, order.size + 1)
    return Segmentation(
        labels=number[raw.labels + 1],
        scores=raw.scores,
        channels=tuple(int(c) - 1 for c in order),
        n_iterations=raw.n_iterations,
        n_labels=int(order.size),
        timings=raw.timings,
    )


@dataclass(frozen=True, slots=True)
class ChannelSegmentation:
    """Result of :func:`segment_channels` for one image, in the network's channel ids.

    Attributes
    ----------
    labels
        ``(H, W) int32`` network output channels, ``-1`` at nodata:
        the argmax after class merging and smoothing (``n_classes``, ``merge_share``,
        ``smooth_sigma``, ``smooth_range``) and, with ``refine_output``, the superpixel
        majority vote, so they may differ from ``scores.argmax(0)``.
    scores
        ``(C, H, W) float32`` per-pixel class probabilities (softmax), 0 at nodata.
    n_iterations
        Training iterations run.
    n_labels
        Distinct labels in ``labels``.
    timings
        Seconds per stage: ``superpixels``, ``train``, ``refine`` (the training
        iterations' superpixel refinement, part of ``train``), ``predict`` and, with
        ``refine_output``, ``output_refine``.
    """

    labels: npt.NDArray[np.int32]
    scores: npt.NDArray[np.float32]
    n_iterations: int
    n_labels: int
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.labels.shape != self.scores.shape[1:]:
            raise InputError(
                f"labels {self.labels.shape} and scores {self.scores.shape} disagree in size"
            )


def segment_channels(
    image: npt.NDArray[np.floating],
    params: SegmentParams = PRESETS["default"],
    *,
    valid: npt.NDArray[np.bool_] | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: Progress | None = None,
    snapshot_at: Collection[int] = (),
    on_snapshot: SnapshotFn | None = None,
) -> ChannelSegmentation:
    """:func:`segment_image` in the network's channel ids (``-1`` at nodata), as the
    run's tile mode and ``geoseg segment``'s picture use them.

    Parameters
    ----------
    image
        ``(bands, rows, cols)`` values scaled to about ``[0, 1]`` (e.g. 8-bit / 255, or a
        percentile stretch, see :mod:`geoseg.normalize`).
    params
        Loop parameters, e.g. ``PRESETS["fork"]``.
    valid
        ``(rows, cols)`` bool, ``False`` at nodata. NaN inside ``valid`` is an error.
    seed
        Same seed, same input, same device: same result.
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    progress
        ``progress(iteration, n_labels)`` after each training iteration.
    snapshot_at, on_snapshot
        ``on_snapshot(iteration, labels (rows, cols))`` with the argmax at those
        iterations (upsampled to full size when training on a downscaled copy).

    Examples
    --------
    >>> image = np.zeros((1, 24, 24), np.float32); image[0, 12:] = 1.0
    >>> out = segment_channels(image, PRESETS["fork"].replace(max_iterations=3, fz_min_size=8))
    >>> out.labels.shape, out.scores.shape, out.n_iterations, int(out.labels.min())
    ((24, 24), (32, 24, 24), 3, 0)
    """
    image, valid = _check_image(image, valid)
    _bands, rows, cols = image.shape
    filled = fill_nodata(image, valid)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    views = training_views([filled], [valid], params)
    timings["superpixels"] = time.perf_counter() - t0

    def _snapshot(iteration: int, labels: npt.NDArray[np.int32]) -> None:
        assert on_snapshot is not None
        full = labels[0]
        if full.shape != (rows, cols):
            full = upsample_nearest(full, rows, cols)
        on_snapshot(iteration, np.where(valid, full, -1).astype(np.int32))

    fitted = fit(
        *views,
        params,
        seed=seed,
        device=device,
        progress=progress,
        snapshot_at=snapshot_at,
        on_snapshot=_snapshot if on_snapshot is not None else None,
    )
    timings["train"] = fitted.seconds
    timings["refine"] = fitted.refine_seconds

    t0 = time.perf_counter()
    logits = predict(fitted.model, filled, device=fitted.device)
    classes = merge_for(logits[None], filled[None], valid[None], params)
    labels_t = classify(
        logits,
        table=None if classes is None else classes.table,
        splits=() if classes is None else classes.splits,
        sigma=params.smooth_sigma,
        range_sigma=params.smooth_range,
        image=filled,
    )
    timings["predict"] = time.perf_counter() - t0
    if params.refine_output and params.superpixels != "none":
        t0 = time.perf_counter()
        full_sp = (
            views[1][0]
            if params.train_scale == 1.0
            else compute_superpixels(filled, params, valid=valid)
        )
        timings["superpixels"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        sp_t = torch.from_numpy(full_sp).to(fitted.device).view(-1)
        labels_t = refine_labels(labels_t.view(-1), sp_t, params.n_channels).view(rows, cols)
        timings["output_refine"] = time.perf_counter() - t0
    scores = torch.softmax(logits, dim=0).cpu().numpy()
    labels = labels_t.cpu().numpy().astype(np.int32)
    labels[~valid] = -1
    scores[:, ~valid] = 0.0
    n_labels = int(np.unique(labels[valid]).size)
    return ChannelSegmentation(
        labels=labels,
        scores=scores,
        n_iterations=fitted.n_iterations,
        n_labels=n_labels,
        timings=timings,
    )


def _check_image(
    image: npt.NDArray[np.floating], valid: npt.NDArray[np.bool_] | None
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    if not isinstance(image, np.ndarray) or image.ndim != 3:
        shape = getattr(image, "shape", type(image).__name__)
        raise InputError(f"image must be a (bands, rows, cols) array; got {shape}")
    if not np.issubdtype(image.dtype, np.number) or np.iscomplexobj(image):
        raise InputError(f"image must hold real numbers; got dtype {image.dtype}")
    _, rows, cols = image.shape
    if rows < 2 or cols < 2 or image.shape[0] < 1:
        raise InputError(f"image must have >= 1 band and >= 2x2 pixels; got {image.shape}")
    if valid is None:
        valid = np.ones((rows, cols), bool)
    elif valid.shape != (rows, cols) or valid.dtype != bool:
        raise InputError(
            f"valid must be a bool array of shape {(rows, cols)}; got {valid.dtype} {valid.shape}"
        )
    if not valid.any():
        raise InputError("image has no valid pixel (valid is all False)")
    data = image.astype(np.float32, copy=False)
    bad = ~np.isfinite(data[:, valid])
    if bad.any():
        raise InputError(
            f"image has {int(bad.sum())} NaN/inf values at valid pixels; mark them nodata, "
            "e.g. valid &= np.isfinite(image).all(axis=0)"
        )
    return data, valid
