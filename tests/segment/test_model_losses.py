from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from geoseg.segment.losses import IGNORE, continuity_loss, similarity_loss
from geoseg.segment.model import Texture, build_model, conv_flops, decorrelation, for_inference
from geoseg.segment.params import PRESETS, SegmentParams


def test_paper_network_layout() -> None:
    net = build_model(5, PRESETS["kanezaki2018"])
    kinds = [type(m).__name__ for m in net]
    assert kinds == [
        "Conv2d",
        "ReLU",
        "BatchNorm2d",
        "Conv2d",
        "ReLU",
        "BatchNorm2d",
        "Conv2d",
        "BatchNorm2d",
    ]
    convs = [m for m in net if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (5, 100, (3, 3)),
        (100, 100, (3, 3)),
        (100, 100, (1, 1)),
    ]


def test_light_network_layout() -> None:
    net = build_model(13, PRESETS["fork"])
    convs = [m for m in net if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in convs] == [
        (13, 64, 3),
        (64, 32, 1),
        (32, 64, 3),
        (64, 32, 1),
    ]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net) == 4
    assert sum(isinstance(m, nn.ReLU) for m in net) == 3
    assert isinstance(net[-1], nn.BatchNorm2d)


@pytest.mark.parametrize(
    "params",
    [PRESETS["kanezaki2018"], PRESETS["fork"], PRESETS["fork"].replace(texture_radius=2)],
    ids=["kanezaki2018", "fork", "fork+texture"],
)
def test_receptive_field_matches_network(params: SegmentParams) -> None:
    """An impulse spreads over exactly receptive_field x receptive_field outputs."""
    net = build_model(1, params).eval()
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.constant_(m.weight, 1.0)
            nn.init.zeros_(m.bias)
    x = torch.zeros(1, 1, 21, 21)
    x[0, 0, 10, 10] = 1.0
    with torch.no_grad():
        changed = (net(x) - net(torch.zeros_like(x))).abs().sum(1)[0] > 0
    rows, cols = np.nonzero(changed.numpy())
    side = params.receptive_field
    assert rows.max() - rows.min() + 1 == side
    assert cols.max() - cols.min() + 1 == side


def test_texture_bands_are_the_local_spread_of_each_band() -> None:
    """Flat areas get 0, a pixel whose 5 x 5 window holds two values gets their spread."""
    x = torch.zeros(1, 2, 12, 12)
    x[0, 0, :, 6:] = 1.0  # band 1: a vertical step; band 2 flat
    out = Texture(2)(x)
    assert out.shape == (1, 4, 12, 12)
    torch.testing.assert_close(out[:, :2], x)
    spread = out[0, 2, 6]  # row 6, across the step: windows of 5 columns
    assert spread[:4].abs().max() == 0
    assert spread[8:].abs().max() == 0
    assert spread[5].item() == pytest.approx(np.std([0, 0, 0, 1, 1]), abs=1e-6)
    assert out[0, 3].abs().max() == 0
    net = build_model(2, PRESETS["fork"].replace(texture_radius=2))
    assert isinstance(net[0], Texture)
    assert net[1].in_channels == 4


def _correlated_bands(seed: int = 0) -> torch.Tensor:
    """(2, 3, 40, 40): brightness with 100 times the variance of two colour components.
    Every pixel independent of its neighbours: no component has more signal than noise
    by the decorrelation's measure, so it stretches them all as they are."""
    g = torch.Generator().manual_seed(seed)
    light, red, blue = torch.randn(3, 2, 1, 40, 40, generator=g)
    return torch.cat([light + 0.1 * red, light - 0.1 * red + 0.1 * blue, light - 0.1 * blue], 1)


def _component_spreads(x: torch.Tensor) -> torch.Tensor:
    pixels = x.double().permute(1, 0, 2, 3).reshape(x.shape[1], -1)
    return torch.linalg.eigvalsh(torch.cov(pixels)).sqrt()


@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0])
def test_decorrelation_evens_the_spread_of_the_principal_components(strength: float) -> None:
    x = _correlated_bands()
    valid = torch.ones(2, 40, 40, dtype=torch.bool)
    before = _component_spreads(x)
    y = decorrelation(x, valid, strength)(x)
    after = _component_spreads(y)
    # each component's spread s_i becomes s_i * (s / s_i) ** strength: the ratio of the
    # largest to the smallest (about 17 here) is raised to the power 1 - strength
    ratio_before = float(before[-1] / before[0])
    assert ratio_before > 10
    assert float(after[-1] / after[0]) == pytest.approx(ratio_before ** (1 - strength), rel=1e-3)
    # the mean is kept and the total spread stays of the bands' order
    assert torch.allclose(y.mean(dim=(0, 2, 3)), x.mean(dim=(0, 2, 3)), atol=1e-4)


def _smooth_field(g: torch.Generator) -> torch.Tensor:
    """(2, 1, 40, 40), unit spread, neighbours alike (a 9 x 9 px mean of white noise)."""
    field = F.avg_pool2d(torch.randn(2, 1, 48, 48, generator=g), 9, 1)
    return (field - field.mean()) / field.std()


def _spread_along(x: torch.Tensor, direction: torch.Tensor) -> float:
    centred = x - x.mean(dim=(0, 2, 3), keepdim=True)
    return float(torch.einsum("nbhw,b->nhw", centred, direction).std())


def test_decorrelation_stretches_a_weak_signal_but_not_noise() -> None:
    """Two weak components: a smooth tint is stretched as before, pixel-to-pixel noise of
    twice its spread is not (on a sensor's own pixels the weakest components are partly
    noise, and stretching them made classes of it)."""
    g = torch.Generator().manual_seed(0)
    light_dir = torch.tensor([1.0, 1.0, 1.0]) / 3**0.5
    tint_dir = torch.tensor([1.0, -1.0, 0.0]) / 2**0.5
    noise_dir = torch.tensor([1.0, 1.0, -2.0]) / 6**0.5
    light, tint = _smooth_field(g), 0.1 * _smooth_field(g)
    noise = 0.2 * torch.randn(2, 1, 40, 40, generator=g)
    x = light * light_dir[:, None, None] + tint * tint_dir[:, None, None]
    x = x + noise * noise_dir[:, None, None]  # (2, 3, 40, 40)
    y = decorrelation(x, torch.ones(2, 40, 40, dtype=torch.bool), 0.5)(x)
    # the plain stretch would raise them by (s / 0.1) ** 0.5 and (s / 0.2) ** 0.5, s the
    # bands' root mean variance: about 2.4 and 1.7 here
    assert _spread_along(y, tint_dir) / _spread_along(x, tint_dir) > 2.0
    assert _spread_along(y, noise_dir) / _spread_along(x, noise_dir) < 0.5
    brightness = _spread_along(y, light_dir) / _spread_along(x, light_dir)
    assert brightness == pytest.approx((0.58 / 1.0) ** 0.5, abs=0.05)  # as before


def test_decorrelation_is_measured_on_valid_pixels_and_travels_with_the_model() -> None:
    x = _correlated_bands()
    valid = torch.ones(2, 40, 40, dtype=torch.bool)
    valid[:, :, 20:] = False
    spoiled = x.clone()
    spoiled[:, :, :, 20:] = 100.0  # nodata values must not move the map
    layer = decorrelation(spoiled, valid, 1.0)
    assert torch.allclose(
        layer.weight, decorrelation(x[..., :20], valid[..., :20], 1.0).weight, atol=1e-5
    )
    net = build_model(3, PRESETS["default"], decorrelate=layer)
    assert net[0] is layer
    assert not any(p is layer.weight for p in net.parameters())  # not trained
    fast = for_inference(net.eval())
    assert torch.allclose(fast(x), net(x), atol=1e-4)
    constant = torch.ones(1, 3, 8, 8)  # no spread at all: the map must stay finite
    assert torch.isfinite(
        decorrelation(constant, torch.ones(1, 8, 8, dtype=torch.bool), 1.0).weight
    ).all()


def test_conv_flops_counts_multiply_adds_twice() -> None:
    net = nn.Sequential(nn.Conv2d(2, 3, 3))
    assert conv_flops(net, 10, 10) == 2 * 2 * 3 * 9 * 100


def test_continuity_loss_matches_direct_formula() -> None:
    rng = np.random.default_rng(0)
    s = rng.normal(size=(1, 4, 5, 6)).astype(np.float32)
    expected = np.abs(np.diff(s, axis=2)).mean() + np.abs(np.diff(s, axis=3)).mean()
    got = continuity_loss(torch.from_numpy(s)).item()
    assert got == pytest.approx(expected, rel=1e-5)
    all_valid = torch.ones(1, 5, 6, dtype=torch.bool)
    assert continuity_loss(torch.from_numpy(s), all_valid).item() == pytest.approx(got, rel=1e-5)


@pytest.mark.parametrize("masked", [False, True], ids=["all valid", "nodata"])
def test_continuity_gradient_is_autograds_of_the_slices(masked: bool) -> None:
    """The hand-written gradient is the one autograd gives the plain formula."""
    rng = np.random.default_rng(1)
    s = torch.from_numpy(rng.normal(size=(2, 3, 7, 9)).astype(np.float32))
    s[0, 1, 2, :4] = s[0, 1, 3, :4]  # ties: |0| has no slope, in both
    valid = torch.from_numpy(rng.random((2, 7, 9)) > 0.2) if masked else None

    def reference(x: torch.Tensor) -> torch.Tensor:
        dy = (x[:, :, 1:] - x[:, :, :-1]).abs()
        dx = (x[:, :, :, 1:] - x[:, :, :, :-1]).abs()
        if valid is None:
            return dy.mean() + dx.mean()
        vy = (valid[:, 1:] & valid[:, :-1]).unsqueeze(1)
        vx = (valid[:, :, 1:] & valid[:, :, :-1]).unsqueeze(1)
        return (dy * vy).sum() / (vy.sum() * 3) + (dx * vx).sum() / (vx.sum() * 3)

    mine, theirs = s.clone().requires_grad_(), s.clone().requires_grad_()
    (2.5 * continuity_loss(mine, valid)).backward()
    (2.5 * reference(theirs)).backward()
    torch.testing.assert_close(continuity_loss(s, valid), reference(s))
    assert mine.grad is not None
    assert theirs.grad is not None
    torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-5, atol=1e-7)
    assert mine.grad.abs().max() > 0


def test_continuity_loss_ignores_pairs_touching_nodata() -> None:
    s = torch.zeros(1, 1, 3, 3)
    s[0, 0, 0, :] = 10.0  # a jump between rows 0 and 1 only
    valid = torch.ones(1, 3, 3, dtype=torch.bool)
    valid[0, 0, :] = False
    assert continuity_loss(s, valid).item() == 0.0
    assert continuity_loss(s).item() > 0.0


def test_similarity_loss_ignores_nodata() -> None:
    scores = torch.tensor([[[[5.0, -5.0]], [[-5.0, 5.0]]]])  # (1, 2, 1, 2)
    good = similarity_loss(scores, torch.tensor([[[0, 1]]])).item()
    masked = similarity_loss(scores, torch.tensor([[[0, IGNORE]]])).item()
    assert masked == pytest.approx(good, rel=1e-6)
    assert similarity_loss(scores, torch.tensor([[[1, 0]]])).item() > 5.0
