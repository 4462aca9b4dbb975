"""Train the warm-start weights the package ships (``geoseg/segment/weights``).

``default`` trains, without labels and from random weights (seed 0, the texture bands on
whatever the pixel size), on one open scene per band count, as ``geoseg run`` trains;
the feature layers of the result (:func:`geoseg.segment.warm.save_warm_start`) become
``light_<B>b.npz``:

- 3 bands (red, green, blue): Landsat 8, Tokyo Bay, 150 m (USGS, public domain);
- 4 bands (red, green, blue, near-infrared): Sentinel-2 L1C, Virginia coast, 10 m
  (contains modified Copernicus Sentinel data 2016). Its file holds blue, green, red,
  near-infrared; the first convolution's inputs are put in the shipped order after
  training.

Run on the CPU; the result is the same on every run on one machine:

    python scripts/make_warm_weights.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from geoseg.config import resolve_config
from geoseg.run.prepare import for_pixel_size, open_scene, prepare, training_crops
from geoseg.runtime import hold_freed_memory
from geoseg.segment import fit, training_views
from geoseg.segment.warm import WEIGHTS, layers_of, save_warm_start

SOURCES: dict[int, tuple[str, list[int] | None]] = {
    3: ("landsat8_tokyo_150m/LC81070352015122LGN00_B4B3B2_150m_uint16.tif", None),
    4: ("sentinel2_l1c_18SVG_10m/S2_18SVG_20160112_B02-B03-B04-B08_10m_uint16.tif", [2, 1, 0, 3]),
}
"""Band count -> (scene under the data folder, the file's bands in the shipped order)."""


def train(scene: Path) -> nn.Module:
    """``default``'s network trained on ``scene`` from random weights, texture bands on."""
    overrides = ["segment.texture_max_pixel=1000", "segment.warm_start=false", "runtime.seed=0"]
    config = resolve_config(overrides=overrides)
    prepared = prepare(open_scene(scene, config), config)
    config = for_pixel_size(config, prepared.info)
    params = config.segment.params()
    crops = training_crops(config, prepared)
    images, valids = zip(*(prepared.read(window) for window in crops), strict=True)
    views = training_views(list(images), list(valids), params)
    return fit(*views, params, seed=0, device="cpu").model


def reorder(model: nn.Module, order: list[int]) -> None:
    """Put the first convolution's inputs (the bands, then their texture bands) in
    ``order``: the network that the same scene with its bands in that order trains."""
    first = layers_of(model)[0]
    assert isinstance(first, nn.Conv2d)
    bands = len(order)
    columns = order + [bands + b for b in order]
    with torch.no_grad():
        first.weight.copy_(first.weight[:, columns].clone())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args()
    hold_freed_memory()
    args.out.mkdir(parents=True, exist_ok=True)
    for bands, (name, order) in SOURCES.items():
        model = train(args.data / name)
        if order is not None:
            reorder(model, order)
        path = args.out / f"light_{bands}b.npz"
        save_warm_start(model, path)
        with np.load(path) as saved:
            digest = hashlib.md5(b"".join(saved[k].tobytes() for k in sorted(saved.files)))
        print(json.dumps({"bands": bands, "scene": name, "file": str(path),
                          "bytes": path.stat().st_size, "md5": digest.hexdigest()}))  # fmt: skip


if __name__ == "__main__":
    main()
