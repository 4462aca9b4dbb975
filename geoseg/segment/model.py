"""The two fully convolutional networks: the paper's and the fork's light net.

>>> import torch
>>> from geoseg.segment.params import PRESETS
>>> net = build_model(4, PRESETS["fork"])
>>> net(torch.zeros(1, 4, 16, 16)).shape
torch.Size([1, 32, 16, 16])
"""

from __future__ import annotations

import math
import time

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from geoseg.segment.params import SegmentParams

__all__ = [
    "Decorrelate",
    "Texture",
    "build_model",
    "conv_flops",
    "decorrelation",
    "for_inference",
    "local_mean",
    "local_std",
    "matmul_gflops",
]


def local_mean(images: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean of each band of ``images (N, B, H, W)`` over the ``(2 radius + 1)²`` window
    around each pixel (cut at the image's edges), in float64: a box filter run as two
    one-dimensional passes (along rows, then along columns: the cut window is a
    rectangle, so this is its mean), so its cost grows with ``radius``, not its square
    (the ground scale's windows are 40-90 px wide on 0.1 m pixels; the stroke
    classifier's features take several a tile).

    >>> x = torch.tensor([[[[0.0, 0.0, 3.0, 3.0]]]])
    >>> local_mean(x, 1)[0, 0, 0].tolist()
    [0.0, 1.0, 2.0, 3.0]
    >>> x = torch.arange(12.0).reshape(1, 1, 3, 4)
    >>> local_mean(x, 1)[0, 0, 0].tolist()  # the corner's window is 2 x 2
    [2.5, 3.0, 4.0, 4.5]
    """
    n, b, height, width = images.shape
    side = 2 * radius + 1
    x = images.double().reshape(n * b * height, 1, width)
    x = F.avg_pool1d(x, side, 1, radius, count_include_pad=False)
    x = x.reshape(n * b, height, width).transpose(1, 2).reshape(n * b * width, 1, height)
    x = F.avg_pool1d(x, side, 1, radius, count_include_pad=False)
    return x.reshape(n, b, width, height).transpose(2, 3)


def local_std(images: torch.Tensor, radius: int) -> torch.Tensor:
    """Standard deviation of each band of ``images (N, B, H, W)`` over the ``(2 radius +
    1)²`` window around each pixel (the window cut at the image's edges), in float32.

    The mean square less the squared mean is summed in float64: in float32 the two
    cancel to a rounding residue of about 1e-8 in a flat window, whose square root
    (~1e-4) then depended on how the pooling's SIMD lanes fell, so a flat area (a
    nodata fill, saturation) got other texture in a tile than in the whole scene.

    >>> x = torch.tensor([[[[0.0, 0.0, 1.0, 1.0]]]])
    >>> [round(v, 4) for v in local_std(x, 1)[0, 0, 0].tolist()]
    [0.0, 0.4714, 0.4714, 0.0]
    >>> float(local_std(torch.full((1, 1, 40, 40), 0.3), 4).max())  # flat: exactly 0
    0.0
    """
    images = images.double()
    side = 2 * radius + 1
    mean = F.avg_pool2d(images, side, 1, radius, count_include_pad=False)
    square = F.avg_pool2d(images * images, side, 1, radius, count_include_pad=False)
    return (square - mean * mean).clamp_(min=0).sqrt_().float()


class Texture(nn.Module):
    """Appends each input band's local standard deviation over ``(2 radius + 1)²`` px
    (:func:`local_std`) as one more band: ``(N, B, H, W) -> (N, 2B, H, W)``, so the 3x3
    filters see texture beside colour (smooth water against a built-up block of the
    same mean). It has no weights; it widens the receptive field by ``2 radius``."""

    def __init__(self, radius: int) -> None:
        super().__init__()
        self.radius = radius

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, local_std(x, self.radius).to(x.dtype)], dim=1)


class Decorrelate(nn.Module):
    """A fixed linear map of the bands in front of the network (a 1x1 convolution whose
    weights are not trained): ``(N, B, H, W) -> (N, B, H, W)``, see
    :func:`decorrelation`. Its weights travel with the model, so every tile that the
    model predicts sees the same map."""

    weight: torch.Tensor
    bias: torch.Tensor

    def __init__(self, matrix: torch.Tensor, offset: torch.Tensor) -> None:
        super().__init__()
        bands = matrix.shape[0]
        self.register_buffer("weight", matrix.float().reshape(bands, bands, 1, 1).clone())
        self.register_buffer("bias", offset.float().reshape(bands).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight.to(x.dtype), self.bias.to(x.dtype))


def decorrelation(images: torch.Tensor, valid: torch.Tensor, strength: float) -> Decorrelate:
    """A partial decorrelation stretch of the bands of ``images (N, B, H, W)``, measured
    on the ``valid (N, H, W)`` pixels: each principal component of the bands is scaled
    by ``(s / its standard deviation) ** strength`` about the bands' mean, ``s`` the
    root mean variance of the bands, and turned back into band space (at ``strength`` 1
    the classic decorrelation stretch, every component with the same spread; at 0 the
    identity). The bands of natural colour imagery move together: on the labelled
    Dubai tiles brightness has 18-40 times the spread of the two colour components,
    which the 3x3 filters then barely see. Each gain is also multiplied by the
    component's share of signal (:func:`_signal_shares`): on a sensor's own pixels the
    weakest components are partly noise from pixel to pixel (signal shares of 0.5-0.8 on
    the NC Landsat 7, Landsat 8 and Sentinel-2 10 m scenes, 0.96-1 on the JPEG-smoothed
    labelled tiles), and stretching them 2-4 times made classes of noise. Components are
    floored at a millionth of the largest variance, so a constant band is not blown up.

    >>> g = torch.Generator().manual_seed(0)
    >>> smooth = F.avg_pool2d(torch.rand(2, 1, 72, 72, generator=g), 9, 1)  # 2 fields
    >>> light, tint = smooth[:, None]  # (1, 1, 64, 64) each
    >>> x = torch.cat([light + 0.05 * tint, light - 0.05 * tint], dim=1)  # (1, 2, 64, 64)
    >>> y = decorrelation(x, torch.ones(1, 64, 64, dtype=torch.bool), 1.0)(x)
    >>> abs(round(float(torch.corrcoef(y[0].reshape(2, -1))[0, 1]), 1))  # was 0.995
    0.0
    """
    # numpy's pairwise sums, one band pair at a time: no split of the sums by thread
    pixels = images.detach().cpu().numpy().transpose(1, 0, 2, 3)[:, valid.cpu().numpy()]
    mean = np.array([band.mean(dtype=np.float64) for band in pixels])
    centred = [band.astype(np.float64) - m for band, m in zip(pixels, mean, strict=True)]
    n = len(centred)
    covariance = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1):
            covariance[i, j] = covariance[j, i] = np.mean(centred[i] * centred[j])
    variances, components = np.linalg.eigh(covariance)
    variances = np.maximum(variances, 1e-6 * max(float(variances.max()), 1e-12))
    target = math.sqrt(float(np.diagonal(covariance).mean()))
    gains = (target / np.sqrt(variances)) ** strength
    gains = gains * _signal_shares(images, valid, components, variances)
    matrix = components @ np.diag(gains) @ components.T
    return Decorrelate(torch.from_numpy(matrix), torch.from_numpy(mean - matrix @ mean))


_NOISE_PAIRS = 1 << 16
"""About as many pixel pairs as :func:`_signal_shares` measures noise on."""


def _signal_shares(
    images: torch.Tensor,
    valid: torch.Tensor,
    components: npt.NDArray[np.float64],
    variances: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Each principal component's share of signal, relative to the component with the
    most: ``1 - noise / variance`` (a Wiener filter's gain). A component's noise is
    measured on the differences of horizontally and vertically adjacent valid pixels
    along it: noise independent from pixel to pixel doubles its variance in a difference,
    what varies smoothly cancels. The differences' median absolute value (over 0.6745,
    the normal's) gives the noise's spread robustly: edges and fine texture are the
    differences' heavy tail, not their core, so coarse pixels, where neighbours often
    differ in cover, do not pass for noise. All ones when even the best component has
    more noise than signal by that measure.
    """
    pixels = images.detach().cpu().numpy()
    mask = valid.cpu().numpy()
    down = pixels[:, :, 1:] - pixels[:, :, :-1], mask[:, 1:] & mask[:, :-1]
    across = pixels[..., 1:] - pixels[..., :-1], mask[..., 1:] & mask[..., :-1]
    pairs = [np.moveaxis(step, 1, 0)[:, both] for step, both in (down, across)]
    steps = np.concatenate(pairs, axis=1)  # (B, pairs): both valid
    if steps.shape[1] == 0:
        return np.ones_like(variances)
    # evenly spaced pairs: a median of 65,536 is within about 0.5 % of all of them
    steps = steps[:, :: max(1, steps.shape[1] // _NOISE_PAIRS)].astype(np.float64)
    noise = np.zeros_like(variances)
    for k in range(len(variances)):  # no BLAS: sums that do not depend on the threads
        along = sum(float(w) * band for w, band in zip(components[:, k], steps, strict=True))
        noise[k] = (np.median(np.abs(along)) / 0.6745) ** 2 / 2
    shares = np.clip(1.0 - noise / variances, 0.0, 1.0)
    best = float(shares.max())
    return shares / best if best >= 0.5 else np.ones_like(variances)


def build_model(
    in_bands: int, params: SegmentParams, *, decorrelate: Decorrelate | None = None
) -> nn.Sequential:
    """Build the network selected by ``params.network`` for ``in_bands`` input bands.

    ``"paper"`` (Kanezaki 2018 / TIP 2020): ``n_conv`` blocks of 3x3 conv -> ReLU -> BN
    (``n_channels`` wide), then 1x1 conv -> BN. ``"light"`` (the fork): 3x3 conv
    ``hidden_channels``, 1x1 conv ``n_channels``, 3x3 conv ``hidden_channels``, 1x1 conv
    ``n_channels``, each followed by BN, with ReLU between. With
    ``params.texture_radius`` a :class:`Texture` layer comes first, and before it the
    bands' ``decorrelate`` map when given.
    """
    c = params.n_channels
    layers: list[nn.Module] = [] if decorrelate is None else [decorrelate]
    if params.texture_radius > 0:
        layers.append(Texture(params.texture_radius))
        in_bands *= 2

    def relu() -> nn.ReLU:  # in place: neither a BN's nor a conv's backward needs its output
        return nn.ReLU(inplace=True)

    if params.network == "paper":
        width = in_bands
        for _ in range(params.n_conv):
            layers += [nn.Conv2d(width, c, 3, padding=1), relu(), nn.BatchNorm2d(c)]
            width = c
        layers += [nn.Conv2d(c, c, 1), nn.BatchNorm2d(c)]
    else:
        hidden = params.hidden_channels
        layers += [nn.Conv2d(in_bands, hidden, 3, padding=1), nn.BatchNorm2d(hidden), relu()]
        layers += [nn.Conv2d(hidden, c, 1), nn.BatchNorm2d(c), relu()]
        layers += [nn.Conv2d(c, hidden, 3, padding=1), nn.BatchNorm2d(hidden), relu()]
        layers += [nn.Conv2d(hidden, c, 1), nn.BatchNorm2d(c)]
    return nn.Sequential(*layers)


def for_inference(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` for prediction: each batch norm that directly
    follows a convolution folded into that convolution's weights and bias
    (``torch.nn.utils.fusion.fuse_conv_bn_eval``), ReLUs in place. The same function to
    float rounding, with four fewer passes over the activations: the light net's
    forward on a 476² tile took 59-69 against 88-106 ms (float32, freed memory held as
    in a run; bfloat16 gains more). The paper net's batch norms follow a ReLU and stay
    (all but its last). ``model`` is left in eval mode; a model already folded comes
    back with the same layers (no copy of weights), one that is not an
    ``nn.Sequential`` unchanged.

    >>> from geoseg.segment.params import PRESETS
    >>> net = build_model(4, PRESETS["default"]).eval()
    >>> fast = for_inference(net)
    >>> [type(layer).__name__ for layer in fast][:3], len(fast), len(net)
    (['Texture', 'Conv2d', 'ReLU'], 8, 12)
    >>> x = torch.rand(1, 4, 8, 8)
    >>> bool(torch.allclose(fast(x), net(x), atol=1e-5))
    True
    """
    model.eval()
    if not isinstance(model, nn.Sequential):
        return model
    layers: list[nn.Module] = list(model.children())
    folded: list[nn.Module] = []
    i = 0
    while i < len(layers):
        layer = layers[i]
        following = layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(layer, nn.Conv2d) and isinstance(following, nn.BatchNorm2d):
            folded.append(fuse_conv_bn_eval(layer, following))
            i += 2
            continue
        folded.append(nn.ReLU(inplace=True) if isinstance(layer, nn.ReLU) else layer)
        i += 1
    return nn.Sequential(*folded)


def conv_flops(model: nn.Module, rows: int, cols: int) -> int:
    """Floating-point operations of one forward pass's convolutions on ``rows x cols``.

    Counts a multiply-add as two operations (the convention of GFLOP/s figures).
    """
    total = 0
    for layer in model.modules():
        if isinstance(layer, nn.Conv2d):
            kh, kw = layer.kernel_size
            total += 2 * layer.in_channels * layer.out_channels * kh * kw * rows * cols
    return total


def matmul_gflops(n: int = 2048, repeats: int = 5, device: str | torch.device = "cpu") -> float:
    """This machine's fp32 matrix-multiply speed (GFLOP/s) on ``device``, the fastest of
    ``repeats`` products: with :func:`conv_flops`, the compute-bound limit of a network's
    speed (benchmarks). The fastest, not the mean, since a limit is what the machine can
    reach; a slow moment (another process, a throttled core) only lowers the others. On
    a GPU each product is timed to its end (``torch.cuda.synchronize``)."""
    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
    a @ b
    sync()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9
