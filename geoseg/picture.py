"""The commands on one picture: segment a plain picture, write the sample scene, and a
superpixel contact sheet of a scene window. Each is one function the CLI calls."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from geoseg.errors import InputError
from geoseg.io.labels import write_labels
from geoseg.io.output import check_output
from geoseg.io.raster_read import read_image
from geoseg.io.raster_write import (
    LABEL_SUFFIXES,
    PICTURE_SUFFIXES,
    write_gif,
    write_image,
    write_png,
)
from geoseg.normalize import auto_scale, percentile_bounds, stretch
from geoseg.render import TrainingAnimation, display_rgb, mean_colour
from geoseg.sample import SAMPLE_CRS, make_scene, sample_transform
from geoseg.segment.params import SegmentParams
from geoseg.types import Progress

__all__ = ["PictureResult", "contact_sheet", "segment_picture", "write_sample"]


@dataclass(frozen=True, slots=True)
class PictureResult:
    """Labels found and training iterations run by :func:`segment_picture`."""

    n_labels: int
    n_iterations: int


def segment_picture(
    image: Path,
    output: Path,
    params: SegmentParams,
    *,
    labels: Path | None = None,
    snapshots: Sequence[int] | None = None,
    gif: Path | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: Progress | None = None,
) -> PictureResult:
    """Segment a plain picture: its mean-colour rendering into ``output`` and, if asked,
    the labels (``1..K``, 0 = nodata) and the training animation (``gif``, default
    ``training.gif`` beside ``output``). Every target is checked before training."""
    from geoseg.runtime import hold_freed_memory
    from geoseg.segment.image import segment_channels

    check_output(output, PICTURE_SUFFIXES, inputs=[image])
    if labels is not None:
        check_output(labels, LABEL_SUFFIXES, inputs=[image], option="--labels")
    animation = TrainingAnimation(list(snapshots)) if snapshots else None
    gif_path = gif if gif is not None else output.with_name("training.gif")
    if animation is not None:
        check_output(gif_path, (".gif",), inputs=[image], option="--gif")
    hold_freed_memory()  # as geoseg run: training's activations reuse freed memory, 2x faster
    data = read_image(image)
    scaled = auto_scale(data.data, data.valid)
    metres = None
    if data.crs is not None:  # geopandas and pyproj only for a georeferenced raster
        from geoseg.measure import pixel_size_m

        metres = pixel_size_m(data.transform, data.crs, data.valid.shape)
    result = segment_channels(
        scaled,
        params.for_pixel_size(metres),  # a georeferenced raster: as geoseg run does
        valid=data.valid,
        seed=seed,
        device=device,
        progress=progress,
        snapshot_at=animation.iterations if animation is not None else (),
        on_snapshot=animation,
    )
    write_png(output, mean_colour(display_rgb(scaled), result.labels))
    if animation is not None:
        write_gif(gif_path, animation.frames(stopped_at=result.n_iterations))
    if labels is not None:
        inside = result.labels >= 0
        numbered = np.zeros(result.labels.shape, np.int32)  # 0 = nodata
        numbered[inside] = np.unique(result.labels[inside], return_inverse=True)[1] + 1
        write_labels(labels, numbered, transform=data.transform, crs=data.crs, nodata=0)
    return PictureResult(result.n_labels, result.n_iterations)


def write_sample(
    output: Path,
    *,
    truth: Path | None = None,
    rows: int = 512,
    cols: int = 512,
    bands: int = 4,
    n_classes: int = 5,
    seed: int = 0,
) -> None:
    """The synthetic sample scene (:func:`geoseg.sample.make_scene`) as a uint16
    GeoTIFF, 10 m in UTM 18N, and optionally its true classes."""
    image, classes = make_scene(rows=rows, cols=cols, bands=bands, n_classes=n_classes, seed=seed)
    transform = sample_transform()
    dn = np.round(image * 10000).astype(np.uint16)
    write_image(output, dn, transform=transform, crs=SAMPLE_CRS)
    if truth is not None:
        write_labels(truth, classes, transform=transform, crs=SAMPLE_CRS, nodata=0)


def contact_sheet(
    scene: Path,
    output: Path,
    base: SegmentParams,
    vary: Sequence[str],
    *,
    method: str = "felzenszwalb",
    window: str | None = None,
    bands: list[int] | None = None,
    nodata: float | None = None,
) -> list[int]:
    """A superpixel contact sheet of a scene window (default: centred, at most 512 px)
    into ``output``: one cell per ``vary`` value of ``method``'s parameters, the others
    from ``base``, stretched as the run stretches (the scene-wide 2-98 %). Returns each
    cell's superpixel count."""
    from geoseg.explore import (
        centred_window,
        parse_vary,
        parse_window,
        superpixel_sheet,
        vary_names,
    )
    from geoseg.io.raster_read import SceneReader

    vary_names(method)
    base = base.replace(superpixels=method)
    sweeps = [parse_vary(text, method=method) for text in vary]
    check_output(output, PICTURE_SUFFIXES, inputs=[scene])
    with SceneReader(scene, bands=bands, nodata=nodata) as reader:
        info = reader.info
        if window is None:
            col, row, width, height = centred_window(info.height, info.width)
        else:
            col, row, width, height = parse_window(window, height=info.height, width=info.width)
        small, small_valid = reader.read_decimated()
        low, high = percentile_bounds(small, small_valid)  # scene-wide 2-98 %
        data, valid = reader.read(Window(col, row, width, height))
        colour = reader.display_bands(info.bands[:3] if bands else ())
        if not set(colour) <= set(info.bands):  # a colour band that is not read
            colour = list(info.bands[:3])
        colour = colour if len(colour) == 3 else colour[:1]  # fewer show as grey
    if not valid.any():
        raise InputError(
            f"{scene}: window {col},{row},{width},{height} is all nodata; choose another --window"
        )
    image = stretch(data, low, high)
    shown = image[[info.bands.index(b) for b in colour]]
    sheet = superpixel_sheet(image, sweeps, base=base, valid=valid, display=display_rgb(shown))
    write_png(output, sheet.image)
    return list(sheet.counts)
