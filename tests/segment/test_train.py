from __future__ import annotations

import numpy as np
import pytest
import torch

from geoseg.errors import ConfigError, InputError
from geoseg.evaluate import adjusted_rand_index
from geoseg.sample import make_scene
from geoseg.segment import PRESETS, fit, get_preset, segment_image
from geoseg.segment.classify import classify
from geoseg.segment.model import Decorrelate, build_model
from geoseg.segment.superpixels import compute_superpixels
from geoseg.segment.train import cpu_bfloat16, predict

FAST = PRESETS["fork"].replace(max_iterations=3, fz_min_size=8)


def easy_scene(bands: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Four classes (as many as the presets' min_labels) with little noise."""
    return make_scene(
        rows=96, cols=128, bands=bands, n_classes=4, noise=0.01, texture=0.01, seed=seed
    )


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_easy_scene_is_recovered(seed: int) -> None:
    image, truth = easy_scene(3, seed)
    result = segment_image(image, PRESETS["default"], seed=seed)
    assert adjusted_rand_index(result.labels, truth) >= 0.9


@pytest.mark.parametrize(("n_classes", "first"), [(None, Decorrelate), (4, torch.nn.Conv2d)])
def test_decorrelation_is_off_when_asked_for_classes(n_classes, first) -> None:
    image, _ = easy_scene(3, 0)
    views = image[None], np.zeros((1, *image.shape[1:]), np.int32), np.ones((1, 96, 128), bool)
    params = PRESETS["default"].replace(
        max_iterations=1, texture_radius=0, decorrelate=0.5, n_classes=n_classes
    )
    assert type(fit(*views, params).model[0]) is first


@pytest.mark.parametrize("bands", [1, 3, 4, 7, 13])
def test_every_band_count(bands: int) -> None:
    image, truth = easy_scene(bands, 5)
    result = segment_image(image, PRESETS["default"], seed=0)
    assert result.labels.shape == (96, 128)
    assert result.scores.shape == (32, 96, 128)
    np.testing.assert_allclose(result.scores.sum(0), 1.0, rtol=1e-5)
    assert adjusted_rand_index(result.labels, truth) >= 0.9


def test_same_seed_same_result_other_seed_differs(two_halves: np.ndarray) -> None:
    a = segment_image(two_halves, FAST, seed=7)
    b = segment_image(two_halves, FAST, seed=7)
    c = segment_image(two_halves, FAST, seed=8)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert not np.array_equal(a.scores, c.scores)


def test_global_random_state_untouched(two_halves: np.ndarray) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    segment_image(two_halves, FAST, seed=0)
    np.testing.assert_array_equal(torch.rand(3), expected)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_preset_runs_a_few_iterations(name: str, two_halves: np.ndarray) -> None:
    params = get_preset(name).replace(max_iterations=3, min_labels=1)
    seen: list[tuple[int, int]] = []
    result = segment_image(two_halves, params, seed=0, progress=lambda i, n: seen.append((i, n)))
    assert [i for i, _ in seen] == list(range(1, result.n_iterations + 1))
    assert 1 <= result.n_iterations <= 3
    assert all(1 <= n <= params.n_channels for _, n in seen)
    assert result.labels.min() >= 1
    assert result.labels.max() == result.n_labels <= params.n_channels


def test_stops_when_labels_fall_to_min_labels(two_halves: np.ndarray) -> None:
    calls: list[int] = []
    # 32 output channels can never give more than 32 labels: stop after iteration 1
    params = PRESETS["fork"].replace(max_iterations=50, min_labels=32)
    result = segment_image(two_halves, params, progress=lambda i, n: calls.append(n))
    assert result.n_iterations == 1
    assert len(calls) == 1
    unlimited = segment_image(two_halves, params.replace(min_labels=1, max_iterations=5))
    assert unlimited.n_iterations == 5


def test_stops_once_the_targets_settle() -> None:
    image, truth = easy_scene(3, 1)
    params = PRESETS["default"].replace(max_iterations=60, min_labels=1, stop_change=0.002)
    settled = segment_image(image, params, seed=0)
    assert settled.n_iterations < 60
    assert adjusted_rand_index(settled.labels, truth) >= 0.9
    assert segment_image(image, params.replace(stop_change=0.0), seed=0).n_iterations == 60


def test_snapshots_at_chosen_iterations(two_halves: np.ndarray) -> None:
    frames: dict[int, np.ndarray] = {}
    params = PRESETS["default"].replace(max_iterations=5, min_labels=1)
    segment_image(
        two_halves,
        params,
        snapshot_at={1, 2, 4, 16},
        on_snapshot=lambda i, labels: frames.__setitem__(i, labels),
    )
    assert sorted(frames) == [1, 2, 4]
    assert all(f.shape == two_halves.shape[1:] and f.dtype == np.int32 for f in frames.values())


def test_nodata_pixels_get_zero_and_zero_scores(two_halves: np.ndarray) -> None:
    valid = np.ones(two_halves.shape[1:], bool)
    valid[:, :5] = False
    image = two_halves.copy()
    image[:, ~valid] = np.nan  # NaN is fine where it is marked nodata
    result = segment_image(image, FAST, valid=valid)
    assert (result.labels[:, :5] == 0).all()
    assert (result.labels[:, 5:] >= 1).all()
    assert (result.scores[:, :, :5] == 0).all()


def test_input_is_not_modified(two_halves: np.ndarray) -> None:
    before = two_halves.copy()
    segment_image(two_halves, FAST.replace(train_scale=0.5))
    np.testing.assert_array_equal(two_halves, before)


def test_prediction_uses_recalibrated_statistics(two_halves: np.ndarray) -> None:
    """Eval-mode prediction on the training image equals the paper's train-mode pass."""
    params = FAST.replace(max_iterations=4)
    sp = compute_superpixels(two_halves, params)
    valid = np.ones(two_halves.shape[1:], bool)
    fitted = fit(two_halves[None], sp[None], valid[None], params, seed=0, device="cpu")
    x = torch.from_numpy(two_halves)[None]
    with torch.no_grad():
        eval_scores = fitted.model(x)
        fitted.model.train()
        batch_scores = fitted.model(x)
    torch.testing.assert_close(eval_scores, batch_scores, atol=1e-3, rtol=1e-3)


def test_nan_inside_valid_is_an_error(two_halves: np.ndarray) -> None:
    image = two_halves.copy()
    image[0, 3, 3] = np.nan
    with pytest.raises(InputError, match="1 NaN/inf values at valid pixels"):
        segment_image(image, FAST)


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((8, 8), np.float32), r"\(bands, rows, cols\)"),
        (np.zeros((3, 1, 8), np.float32), ">= 2x2"),
        (np.zeros((3, 4, 4), complex), "real numbers"),
    ],
)
def test_bad_images_are_rejected(image: np.ndarray, match: str) -> None:
    with pytest.raises(InputError, match=match):
        segment_image(image, FAST)


def test_all_nodata_is_rejected(two_halves: np.ndarray) -> None:
    with pytest.raises(InputError, match="no valid pixel"):
        segment_image(two_halves, FAST, valid=np.zeros(two_halves.shape[1:], bool))


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"network": "resnet"}, "segment.network='resnet' is not allowed; choose one of paper"),
        ({"min_labels": 0}, r"segment.min_labels=0 must lie in 1..n_channels \(32\)"),
        ({"lr": -1.0}, "segment.lr=-1.0 must be > 0"),
        ({"train_scale": 2.0}, r"segment.train_scale=2.0 must lie in \(0, 1\]"),
        ({"stop_change": 1.0}, r"segment.stop_change=1.0 must lie in \[0, 1\)"),
        ({"stop_change": -0.1}, r"segment.stop_change=-0.1 must lie in \[0, 1\)"),
        ({"merge_edge_sigma": -3.0}, r"segment.merge_edge_sigma=-3.0 must be >= 0"),
        ({"decorrelate": -0.5}, r"segment.decorrelate=-0.5 must lie in \[0, 1\]"),
        ({"decorrelate": 1.5}, r"segment.decorrelate=1.5 must lie in \[0, 1\]"),
        ({"iterations": 3}, "unknown segment parameter"),
    ],
)
def test_bad_parameters_say_what_is_allowed(changes: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        PRESETS["fork"].replace(**changes)


def test_unknown_preset_lists_presets() -> None:
    with pytest.raises(ConfigError, match="default, fork, kanezaki2018, tip2020"):
        get_preset("nope")


def test_cuda_without_cuda_is_a_clear_error(two_halves: np.ndarray) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ConfigError, match="no CUDA device"):
        segment_image(two_halves, FAST, device="cuda")


@pytest.mark.gpu
def test_cuda_matches_cpu_closely(two_halves: np.ndarray) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    cpu = segment_image(two_halves, FAST, device="cpu")
    gpu = segment_image(two_halves, FAST, device="cuda")
    assert adjusted_rand_index(gpu.labels, cpu.labels) > 0.95


def test_bfloat16_prediction_gives_the_same_labels_nearly() -> None:
    image, _ = easy_scene(4, 0)
    torch.manual_seed(0)
    model = build_model(4, PRESETS["default"])
    cpu = torch.device("cpu")
    exact = predict(model, image, device=cpu)
    fast = predict(model, image, device=cpu, bfloat16=True)
    assert exact.dtype == torch.float32
    assert fast.dtype == (torch.bfloat16 if cpu_bfloat16() else torch.float32)
    assert fast.shape == exact.shape
    if not cpu_bfloat16():  # no native bfloat16: float32 throughout
        assert torch.equal(fast, exact)
    agree = (classify(fast) == classify(exact)).float().mean()
    assert agree >= 0.98
    assert torch.equal(classify(fast), classify(fast.float()))  # exact in float32
    assert torch.allclose(fast.float(), exact, atol=0.1 * float(exact.abs().max()))


def test_prediction_with_folded_batch_norms_matches_the_trained_network() -> None:
    image, _ = easy_scene(4, 0)
    torch.manual_seed(0)
    model = build_model(4, PRESETS["default"])
    model.train()
    with torch.no_grad():  # running statistics far from the initial 0 / 1
        for _ in range(3):
            model(torch.from_numpy(image)[None] * 3 + 1)
    model.eval()
    with torch.no_grad():
        plain = model(torch.from_numpy(image)[None])[0]
    folded = predict(model, image, device=torch.device("cpu"))
    assert not torch.equal(plain, torch.zeros_like(plain))
    assert torch.allclose(folded, plain, atol=1e-4 * float(plain.abs().max()))
    # rounding may flip a near-tie, nothing more
    assert (classify(folded) == plain.argmax(dim=0)).float().mean() >= 0.999
