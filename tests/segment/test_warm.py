from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from geoseg.evaluate import adjusted_rand_index
from geoseg.sample import make_scene
from geoseg.segment import PRESETS, segment_image
from geoseg.segment.model import Decorrelate, build_model
from geoseg.segment.warm import WEIGHTS, layers_of, load_warm_start, save_warm_start

DEFAULT = PRESETS["default"]


def default_net(bands: int, **changes: object) -> torch.nn.Sequential:
    decorrelate = Decorrelate(torch.eye(bands), torch.zeros(bands))
    return build_model(bands, DEFAULT.replace(**changes), decorrelate=decorrelate)


def weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in model.state_dict().values()]


@pytest.mark.parametrize("bands", [3, 4])
def test_the_shipped_weights_fit_the_default_network(bands: int) -> None:
    model = default_net(bands)
    last = [t.detach().clone() for t in model[-2:].parameters()]
    assert load_warm_start(model, bands)
    with np.load(WEIGHTS / f"light_{bands}b.npz", allow_pickle=False) as saved:
        first = layers_of(model)[0]
        np.testing.assert_array_equal(first.weight.detach().numpy(), saved["0.weight"])
        assert len(saved.files) == 2 * len(layers_of(model))  # weight and bias of each
    # the class layer (last convolution and its batch norm) keeps its random start
    for before, after in zip(last, model[-2:].parameters(), strict=True):
        assert torch.equal(before, after)


@pytest.mark.parametrize(
    ("bands", "changes"),
    [
        (5, {}),
        (3, {"texture_radius": 0}),
        (3, {"hidden_channels": 32}),
        (4, {"n_channels": 16}),
        (3, {"network": "paper"}),
    ],
)
def test_other_networks_are_left_as_they_are(bands: int, changes: dict) -> None:
    model = default_net(bands, **changes)
    before = weights(model)
    assert not load_warm_start(model, bands)
    assert all(torch.equal(a, b) for a, b in zip(before, weights(model), strict=True))


def test_a_saved_warm_start_loads_back(tmp_path: Path) -> None:
    source, target = default_net(4), default_net(4)
    save_warm_start(source, tmp_path / "light_4b.npz")
    assert load_warm_start(target, 4, folder=tmp_path)
    for a, b in zip(layers_of(source), layers_of(target), strict=True):
        assert torch.equal(a.weight, b.weight)
        assert torch.equal(a.bias, b.bias)


class _Marker:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):  # unpickling it would write the file
        return (Path.write_text, (self.path, "ran"))


def test_a_weights_file_never_runs_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    evil = np.array([_Marker(marker)], dtype=object)
    with (tmp_path / "light_3b.npz").open("wb") as f:
        np.savez(f, **{"0.weight": evil})
    assert pickle.dumps(evil)  # it is a pickle inside
    with pytest.raises(ValueError, match="allow_pickle"):
        load_warm_start(default_net(3), 3, folder=tmp_path)
    assert not marker.exists()


def test_a_warm_start_halves_the_training_and_keeps_the_classes() -> None:
    assert not DEFAULT.warm_start  # opt-in: docs/decisions/0021
    image, truth = make_scene(
        rows=96, cols=128, bands=3, n_classes=4, noise=0.01, texture=0.01, seed=0
    )
    params = DEFAULT.replace(min_labels=1, warm_start=True)
    warm = segment_image(image, params, seed=0)
    cold = segment_image(image, params.replace(warm_start=False), seed=0)
    assert (warm.n_iterations, cold.n_iterations) == (12, 24)
    assert adjusted_rand_index(warm.labels, truth) >= 0.9
    assert segment_image(image, params.replace(max_iterations=5), seed=0).n_iterations == 5
    # --classes K trains without the decorrelation the weights were trained with
    assert segment_image(image, params.replace(n_classes=4), seed=0).n_iterations == 24
    # five bands: no shipped weights, so the full training from random weights
    five, _ = make_scene(rows=96, cols=128, bands=5, n_classes=4, noise=0.01, seed=0)
    assert segment_image(five, params, seed=0).n_iterations == 24
