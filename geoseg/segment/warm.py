"""A warm start for the light network: feature layers trained beforehand on open imagery.

The package ships, for 3-band (red, green, blue) and 4-band (red, green, blue,
near-infrared) input, the weights of every layer of ``default``'s network but the last
convolution and its batch norm, as ``geoseg/segment/weights/light_<B>b.npz``; the
decorrelation map is the scene's own. They were trained by ``default`` itself, without
labels, on a Landsat 8 scene of Tokyo Bay (3 bands) and a Sentinel-2 scene of the Virginia
coast (4 bands), with the texture bands on (``scripts/make_warm_weights.py``; USGS public
domain, modified Copernicus Sentinel data 2016). A network that starts from them has
learnt colour and texture filters already and trains ``warm_iterations`` (12) instead of
``max_iterations`` (24). Opt-in (``segment.warm_start``): half the iterations, mean ARI
0.007 lower over the labelled images (docs/decisions/0021).

They apply only to the network they were trained as: the light net of 64/32 channels,
the texture bands on, the decorrelation on (the automatic class count), no scribbles.
Any other shape trains from random weights, as before.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["WEIGHTS", "layers_of", "load_warm_start", "save_warm_start"]

WEIGHTS = Path(__file__).with_name("weights")
"""The folder of the shipped weights, one ``light_<B>b.npz`` per input band count."""


def layers_of(model: nn.Module) -> list[nn.Module]:
    """The network's layers with weights (convolutions and batch norms), in order, less
    the last convolution and its batch norm: those give the classes, and start random."""
    weighted: list[nn.Module] = [
        m for m in model.modules() if isinstance(m, nn.Conv2d | nn.BatchNorm2d)
    ]
    return weighted[:-2]


def load_warm_start(model: nn.Module, bands: int, folder: Path = WEIGHTS) -> bool:
    """Set the feature layers of ``model`` (:func:`layers_of`) from ``light_<bands>b.npz``
    in ``folder``; ``False``, and ``model`` unchanged, where there is no such file or any
    of its arrays does not fit the layer it belongs to.

    The file is read with ``allow_pickle=False``: it holds arrays, never code.
    """
    path = folder / f"light_{bands}b.npz"
    if not path.is_file():
        return False
    with np.load(path, allow_pickle=False) as saved:
        arrays = {key: saved[key] for key in saved.files}
    wanted = _named_weights(model)
    if set(arrays) != set(wanted) or any(
        arrays[key].shape != tuple(tensor.shape) for key, tensor in wanted.items()
    ):
        return False
    with torch.no_grad():
        for key, tensor in wanted.items():
            tensor.copy_(torch.from_numpy(arrays[key]))
    return True


def save_warm_start(model: nn.Module, path: Path) -> None:
    """Write the feature layers' weights of ``model`` (:func:`layers_of`) to ``path``
    (``.npz``, float32), as :func:`load_warm_start` reads them."""
    arrays = {
        key: tensor.detach().cpu().numpy().astype(np.float32)
        for key, tensor in _named_weights(model).items()
    }
    np.savez(path, **arrays)  # type: ignore[arg-type]


def _named_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The feature layers' weights by file key: ``"<layer>.<weight|bias>"``, the layer
    its position in :func:`layers_of`."""
    return {
        f"{i}.{name}": tensor
        for i, layer in enumerate(layers_of(model))
        for name, tensor in layer.named_parameters(recurse=False)
    }
