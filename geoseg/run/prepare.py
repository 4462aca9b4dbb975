"""Before any tile: the scene opened as the config says, its statistics, the stretched
reader the network sees and scene mode's training crops."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from rasterio.windows import Window

from geoseg.config import Config
from geoseg.errors import InputError
from geoseg.io.gdal_env import drop_block_cache, gdal_cache
from geoseg.io.raster_read import SceneReader
from geoseg.io.source import is_remote
from geoseg.io.stac import is_stac_item, stac_scene
from geoseg.measure import pixel_size_m
from geoseg.normalize import fill_nodata, percentile_bounds, stretch
from geoseg.tiling import sample_crops, stroke_crops
from geoseg.types import SceneInfo

if TYPE_CHECKING:
    from geoseg.io.scribbles import Scribbles

__all__ = [
    "Prepared",
    "Reader",
    "StretchValues",
    "drop_local_blocks",
    "for_pixel_size",
    "gdal_env",
    "keeps_local_copy",
    "open_scene",
    "prepare",
    "reads_network",
    "scene_statistics",
    "stretched_reader",
    "training_crops",
]

Reader = Callable[[Window], tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]]
"""``read(window) -> (image, valid)``."""
StretchValues = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]
"""The scene-wide ``(low, high, fill)`` of the stretch, as run.yaml records them."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """An open scene ready for labelling: its grid, the decimated copy the statistics
    read (``small``, raw bands, and its valid mask), the stretch and the reader that
    applies it; ``uniform`` when every band's stretch is flat (its low and high
    percentiles equal): the network would see a constant image, so there is nothing to
    segment (one class)."""

    reader: SceneReader
    info: SceneInfo
    small: npt.NDArray[Any]
    small_valid: npt.NDArray[np.bool_]
    stretch_values: StretchValues
    read: Reader
    uniform: bool = False

    def stretch(
        self, data: npt.NDArray[Any], valid: npt.NDArray[np.bool_]
    ) -> npt.NDArray[np.float32]:
        """Raw bands of a window (as :meth:`SceneReader.read` gives them) as
        :attr:`read` would return them: stretched, nodata filled."""
        return _stretched(data, valid, self.stretch_values)

    def reading(self, reader: SceneReader) -> Prepared:
        """The same scene read from ``reader`` (its local copy): same stretch."""
        return replace(self, reader=reader, read=stretched_reader(reader, self.stretch_values))


def gdal_env(config: Config) -> Any:
    """The GDAL environment of a run: its block cache and ``runtime.gdal_options``."""
    return gdal_cache(config.runtime.gdal_cache_mb, config.runtime.gdal_options)


def open_scene(scene: str | Path, config: Config, *, bands: list[int] | None = None) -> SceneReader:
    """``scene`` opened with the config's bands (or ``bands``) and nodata override; a
    STAC item as its ``input.assets`` stacked on one grid (:mod:`geoseg.io.stac`)."""
    chosen = bands if bands is not None else config.input.bands or None
    if is_stac_item(scene):
        stacked = stac_scene(
            scene,
            config.input.assets,
            resolution=config.input.resolution,
            options=config.runtime.gdal_options,
        )
        provenance = {"stac_item": stacked.item_id, "stac_assets": stacked.hrefs}
        return SceneReader(stacked.vrt, bands=chosen, nodata=config.input.nodata,
                           name=str(scene), provenance=provenance)  # fmt: skip
    return SceneReader(scene, bands=chosen, nodata=config.input.nodata)


def reads_network(scene: str | Path, reader: SceneReader) -> bool:
    """Whether the scene is read over the network (a URL, or a STAC item's assets)."""
    hrefs = reader.provenance.get("stac_assets") or {}
    return is_remote(scene) or any(is_remote(href) for href in hrefs.values())


def drop_local_blocks(reader: SceneReader) -> None:
    """Empty GDAL's block cache (:func:`geoseg.io.gdal_env.drop_block_cache`) unless the
    scene is read over the network, where cached blocks spare fetching them again."""
    if not reads_network(reader.path, reader):
        drop_block_cache()


def keeps_local_copy(networked: bool, config: Config) -> bool:
    """Whether a run keeps a local copy of what it reads
    (:class:`geoseg.io.raster_write.LocalCopy`): for a scene read over the network when a
    later pass (the vote, the polygons' band statistics) would read it again, so that
    each block is fetched once."""
    return networked and (config.output.vector is not None or config.stitch.refine)


def prepare(reader: SceneReader, config: Config) -> Prepared:
    """Statistics of the open scene and its stretched reader."""
    small, small_valid, values = scene_statistics(reader, config)
    low, high, _ = values
    uniform = bool((high <= low).all())
    read = stretched_reader(reader, values)
    return Prepared(reader, reader.info, small, small_valid, values, read, uniform)


def scene_statistics(
    reader: SceneReader, config: Config
) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_], StretchValues]:
    """The decimated bands and valid mask, and the scene-wide stretch ``(low, high,
    fill)``."""
    norm = config.normalize
    small, small_valid = reader.read_decimated(max_pixels=norm.stats_pixels)
    drop_local_blocks(reader)  # the blocks that read passed over are not read again soon
    if not small_valid.any():
        raise InputError(f"{reader.path}: every pixel is nodata; check the file or input.nodata")
    low, high = percentile_bounds(
        small, small_valid, low=norm.low_percentile, high=norm.high_percentile
    )
    fill = stretch(small, low, high)[:, small_valid].mean(axis=1)
    return small, small_valid, (low, high, fill)


def stretched_reader(reader: SceneReader, stretch_values: StretchValues) -> Reader:
    """``read(window) -> (image, valid)``: stretched, nodata filled, as the network sees it."""

    def read(window: Window) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
        data, valid = reader.read(window)
        return _stretched(data, valid, stretch_values), valid

    return read


def _stretched(
    data: npt.NDArray[Any], valid: npt.NDArray[np.bool_], values: StretchValues
) -> npt.NDArray[np.float32]:
    low, high, fill = values
    return fill_nodata(stretch(data, low, high), valid, values=fill)


def for_pixel_size(config: Config, info: SceneInfo) -> Config:
    """``config`` for a scene of this pixel size (:meth:`SegmentParams.for_pixel_size`):
    the ground scale in pixels (``segment.mix_radius`` from ``segment.scale`` metres),
    and without the texture bands (``segment.texture_radius`` 0) where a pixel is larger
    than ``segment.texture_max_pixel`` metres; run.yaml's ``training`` records both."""
    params = config.segment.params()
    metres = pixel_size_m(info.transform, info.crs, (info.height, info.width))
    used = params.for_pixel_size(metres)
    if used == params:
        return config
    changed = {
        name: value for name, value in used.to_dict().items() if value != getattr(params, name)
    }
    segment = config.segment.model_copy(update=changed)
    return config.model_copy(update={"segment": segment})


def training_crops(
    config: Config, prepared: Prepared, scribbles: Scribbles | None = None
) -> list[Window]:
    """Scene mode's training crops, spread over the valid area (seeded); with
    ``scribbles``, up to half of them (at least one a class) around the strokes
    (:func:`stroke_crops`) and the rest spread as usual."""
    params = config.segment.params()
    size = {"height": prepared.info.height, "width": prepared.info.width}
    strokes: list[Window] = []
    if scribbles is not None:
        strokes = stroke_crops(
            scribbles.rows,
            scribbles.cols,
            scribbles.classes,
            **size,
            crop_size=params.crop_size,
            n_crops=min(params.n_crops, max(params.n_crops // 2, len(scribbles.names))),
            seed=config.runtime.seed,
        )
    if len(strokes) >= params.n_crops:
        return strokes
    spread = sample_crops(
        prepared.small_valid,
        **size,
        crop_size=params.crop_size,
        n_crops=params.n_crops - len(strokes),
        seed=config.runtime.seed,
    )
    return strokes + spread
