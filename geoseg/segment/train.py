"""The unsupervised loop: fit a network to its own refined argmax, then predict.

:func:`fit` trains on a batch of training views (one image, a downscaled copy, or crops
sampled across a scene), :func:`predict` applies the trained network to any image with
batch-norm running statistics; :mod:`geoseg.segment.image` composes both for one image.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.optim.adam import adam
from torch.optim.sgd import sgd

from geoseg.errors import ConfigError, InputError
from geoseg.normalize import fill_nodata
from geoseg.segment.losses import IGNORE, continuity_loss, similarity_loss
from geoseg.segment.model import build_model, decorrelation, for_inference
from geoseg.segment.params import SegmentParams
from geoseg.segment.superpixels import refine_labels
from geoseg.segment.views import training_views
from geoseg.segment.warm import load_warm_start
from geoseg.types import Progress

__all__ = [
    "FitResult",
    "SnapshotFn",
    "fill_nodata",
    "fit",
    "predict",
    "resolve_device",
    "training_views",
]

logger = logging.getLogger(__name__)

SnapshotFn = Callable[[int, npt.NDArray[np.int32]], None]
"""``on_snapshot(iteration, labels)``, called at the iterations asked for."""


@dataclass(frozen=True, slots=True)
class FitResult:
    """A trained network and how its training went."""

    model: nn.Module
    n_iterations: int
    n_labels: int
    seconds: float
    refine_seconds: float
    device: torch.device
    warm_start: bool = False
    """Whether the feature layers started from the shipped weights (geoseg.segment.warm)."""

    def __post_init__(self) -> None:
        if self.n_iterations < 1:
            raise InputError(f"n_iterations={self.n_iterations} must be >= 1")


def resolve_device(device: str) -> torch.device:
    """``"auto"`` picks CUDA when present, else the CPU; ``"cuda"`` without CUDA fails."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ConfigError(
            f"runtime.device={device!r} is not allowed; choose auto, cpu, cuda or cuda:N"
        )
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"runtime.device={device!r} but PyTorch sees no CUDA device; "
            "use --device auto or cpu (runtime.device)"
        )
    return torch.device(device)


def fit(
    images: npt.NDArray[np.float32],
    superpixels: npt.NDArray[np.int32],
    valid: npt.NDArray[np.bool_],
    params: SegmentParams,
    *,
    scribbles: npt.NDArray[np.integer] | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: Progress | None = None,
    snapshot_at: Collection[int] = (),
    on_snapshot: SnapshotFn | None = None,
) -> FitResult:
    """Train a network on its own superpixel-refined argmax labels.

    Parameters
    ----------
    images
        ``(N, B, h, w) float32`` training views, nodata already filled.
    superpixels
        ``(N, h, w) int32`` superpixel ids, unique across the batch, ``-1`` at nodata.
    valid
        ``(N, h, w) bool``; invalid pixels take no part in the losses.
    params
        The loop's parameters.
    scribbles
        ``(N, h, w)`` user classes ``0..S-1`` of scribbled pixels, ``-1`` elsewhere
        (TIP 2020): class ``s`` is trained into output channel ``s`` by a cross-entropy of
        weight ``params.scribble_weight`` on the scribbled pixels, the similarity loss
        covers the other pixels only, and training stops no earlier than at ``S``
        labels.
    seed
        Seeds the weights; the global random state is left untouched.
    progress, snapshot_at, on_snapshot
        ``progress(iteration, n_labels)`` after each iteration; ``on_snapshot(iteration,
        labels (N, h, w))`` with the raw argmax at the iterations in ``snapshot_at``.

    Returns
    -------
    FitResult
        The network in eval mode, its batch-norm running statistics recomputed on
        ``images`` with the final weights.
    """
    dev = resolve_device(device)
    n_classes = params.n_channels
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        decorrelate = None
        # measured on these views, once; not with n_classes, where it lowered the scores
        if params.decorrelate > 0 and params.n_classes is None and valid.any():
            decorrelate = decorrelation(
                torch.from_numpy(images), torch.from_numpy(valid), params.decorrelate
            )
        model = build_model(images.shape[1], params, decorrelate=decorrelate)
    # the shipped weights fit only the network they were trained as (geoseg.segment.warm)
    warm = (
        params.warm_start
        and decorrelate is not None
        and scribbles is None
        and load_warm_start(model, images.shape[1])
    )
    model = model.to(dev)
    iterations = params.max_iterations
    if warm:
        iterations = min(params.warm_iterations, iterations)
    optimizer = _Optimizer(list(model.parameters()), params)
    x = torch.from_numpy(np.ascontiguousarray(images)).to(dev)
    valid_t = torch.from_numpy(np.ascontiguousarray(valid)).to(dev)
    all_valid = bool(valid.all())
    sp = torch.from_numpy(np.ascontiguousarray(superpixels)).to(dev).view(-1)
    n_sp = int(superpixels.max()) + 1
    use_priors = params.superpixels != "none"
    snapshot_set = set(snapshot_at)
    n_valid = max(int(valid.sum()), 1)
    min_labels = params.min_labels
    scribbled = scribble_target = None
    if scribbles is not None and bool((drawn := valid & (scribbles >= 0)).any()):
        user = np.where(drawn, scribbles, IGNORE).astype(np.int64)
        scribble_target = torch.from_numpy(user).to(dev)
        scribbled = scribble_target != IGNORE
        min_labels = max(min_labels, int(user.max()) + 1)
    # the similarity loss needs a pixel to cover (a mean over none is NaN)
    similarity = scribbled is None or not bool(scribbled[valid_t].all())
    previous: torch.Tensor | None = None
    changed = 1.0

    model.train()
    start = time.perf_counter()
    refine_seconds = 0.0
    iteration = n_labels = 0
    for iteration in range(1, iterations + 1):
        model.zero_grad(set_to_none=True)
        scores = model(x)
        with torch.no_grad():
            target = scores.max(dim=1).indices  # the argmax (first of equal maxima), faster
            n_labels = int((torch.bincount(target[valid_t], minlength=n_classes) > 0).sum())
            if iteration in snapshot_set and on_snapshot is not None:
                on_snapshot(iteration, target.cpu().numpy().astype(np.int32))
            if use_priors:
                t0 = time.perf_counter()
                target = refine_labels(target.view(-1), sp, n_classes, n_superpixels=n_sp).view_as(
                    target
                )
                refine_seconds += time.perf_counter() - t0
            if not all_valid:
                target[~valid_t] = IGNORE
            if scribbled is not None:  # TIP 2020: similarity on the other pixels only
                target[scribbled] = IGNORE
            if params.stop_change > 0:  # the share of targets that changed
                if previous is not None:
                    changed = float((target != previous).sum()) / n_valid
                previous = target
        loss = (
            params.similarity_weight * similarity_loss(scores, target)
            if similarity
            else scores.new_zeros(())
        )
        if scribble_target is not None:
            loss = loss + params.scribble_weight * similarity_loss(scores, scribble_target)
        if params.continuity_weight > 0:
            loss = loss + params.continuity_weight * continuity_loss(
                scores, None if all_valid else valid_t
            )
        loss.backward()
        optimizer.step()
        if progress is not None:
            progress(iteration, n_labels)
        if n_labels <= min_labels or changed < params.stop_change:
            logger.debug(
                "stopped at iteration %d with %d labels, %.4f of the targets changed",
                iteration,
                n_labels,
                changed,
            )
            break
    _recalibrate_batch_norm(model, x)
    return FitResult(
        model=model,
        n_iterations=iteration,
        n_labels=n_labels,
        seconds=time.perf_counter() - start,
        refine_seconds=refine_seconds,
        device=dev,
        warm_start=warm,
    )


class _Optimizer:
    """``params.optimizer`` through torch's functional optimizers.

    ``torch.optim.adam.adam`` and ``torch.optim.sgd.sgd`` are the arithmetic of
    ``torch.optim.Adam`` and ``SGD`` (the same weights bit for bit on the CPU), without the
    optimizer classes, whose first use imports ``torch._dynamo``: 1.8-4 s of every
    ``geoseg`` command's start-up.
    """

    def __init__(self, weights: list[torch.Tensor], params: SegmentParams) -> None:
        self.weights, self.params = weights, params
        self.momentum: list[torch.Tensor | None] = [None] * len(weights)
        self.exp_avgs = [torch.zeros_like(w) for w in weights]
        self.exp_avg_sqs = [torch.zeros_like(w) for w in weights]
        self.steps = [torch.tensor(0.0) for _ in weights]

    @torch.no_grad()
    def step(self) -> None:
        """One update; every weight of the network has a gradient after ``backward``."""
        p = self.params
        grads = [w.grad for w in self.weights if w.grad is not None]
        assert len(grads) == len(self.weights)
        if p.optimizer == "sgd":
            sgd(
                self.weights,
                grads,
                self.momentum,
                weight_decay=0.0,
                momentum=p.momentum,
                lr=p.lr,
                dampening=0.0,
                nesterov=False,
                maximize=False,
            )  # fills self.momentum
        else:
            adam(
                self.weights,
                grads,
                self.exp_avgs,
                self.exp_avg_sqs,
                [],
                self.steps,
                amsgrad=False,
                beta1=0.9,
                beta2=0.999,
                lr=p.lr,
                weight_decay=0.0,
                eps=1e-8,
                maximize=False,
            )  # torch.optim.Adam's defaults


def _recalibrate_batch_norm(model: nn.Module, x: torch.Tensor) -> None:
    """Set every BN layer's running statistics to those of ``x`` under the final weights.

    Prediction then uses fixed statistics (eval mode), never those of the image being
    predicted; for a single full-resolution training image this reproduces the
    paper's final train-mode forward pass exactly.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: one pass gives the exact statistics
    model.train()
    with torch.no_grad():
        model(x)
    # BN stores the unbiased variance; normalizing a batch uses the biased one.
    n = x.shape[0] * x.shape[2] * x.shape[3]
    for bn in norms:
        if bn.running_var is not None:
            bn.running_var.mul_((n - 1) / n)
        bn.momentum = 0.1
    model.eval()


def predict(
    model: nn.Module,
    image: npt.NDArray[np.float32],
    *,
    device: torch.device,
    bfloat16: bool = False,
) -> torch.Tensor:
    """Class logits ``(C, H, W)`` of ``image (B, H, W)`` with batch-norm running statistics.

    Runs :func:`~geoseg.segment.model.for_inference`'s copy of ``model`` (batch norms
    folded into the convolutions) in channels-last memory order (oneDNN's fast path for
    inference); both give the same values to float rounding. ``model`` is left in eval
    mode. The logits stay in that order (channels adjacent, not a contiguous ``(C, H,
    W)`` copy): the argmax over channels then reads them in order, three times faster.
    With ``bfloat16`` on a CPU that supports it (:func:`cpu_bfloat16`) the network runs
    under ``torch.autocast`` in bfloat16 and the logits come back in bfloat16
    (converting them to float32 took 13 ms of a 560² tile; :func:`classify` takes
    either).
    """
    net = for_inference(model).to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # runtime accepts it
    x = torch.from_numpy(np.ascontiguousarray(image)).to(device)[None]
    fast = bfloat16 and device.type == "cpu" and cpu_bfloat16()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
        logits = net(x.contiguous(memory_format=torch.channels_last))[0]
    return logits


def cpu_bfloat16() -> bool:
    """Whether oneDNN runs bfloat16 natively on this CPU (AVX-512 BF16 or AMX); elsewhere
    it would be emulated, slower than float32."""
    return bool(torch.backends.mkldnn.is_available()) and bool(
        torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )
