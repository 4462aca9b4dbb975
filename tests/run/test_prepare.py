"""Before any tile (:mod:`geoseg.run.prepare`): the settings a scene's pixel size gives."""

from __future__ import annotations

import pytest

from geoseg.run.prepare import for_pixel_size
from geoseg.sample import SAMPLE_CRS, sample_transform
from geoseg.types import SceneInfo
from tests.helpers import fast_config as config


@pytest.mark.parametrize(
    ("pixel", "crs", "radius"),
    [
        (0.3, SAMPLE_CRS, 4),
        (5.0, SAMPLE_CRS, 4),
        (30.0, SAMPLE_CRS, 0),
        (30.0, None, 4),
    ],
)
def test_texture_bands_only_where_pixels_are_fine(pixel: float, crs, radius: int) -> None:
    grid = sample_transform(pixel_size=pixel)
    info = SceneInfo(height=100, width=100, bands=(1,), dtype="uint8", transform=grid, crs=crs,
                     nodata=None)  # fmt: skip
    assert for_pixel_size(config(), info).segment.params().texture_radius == radius
