"""What a run makes of its label raster: the vector layer and the quicklook."""

from __future__ import annotations

import contextlib
import math
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from rasterio.windows import Window

from geoseg.config import Config
from geoseg.errors import InputError
from geoseg.io.gdal_env import gdal_cache, window_cache_mb
from geoseg.io.labels import LabelWriter, class_id_reader
from geoseg.io.output import atomic_path
from geoseg.io.raster_read import SceneReader
from geoseg.io.raster_write import write_png
from geoseg.io.source import Source
from geoseg.io.vector import VectorWriter
from geoseg.measure import pixel_area_m2
from geoseg.normalize import percentile_bounds, stretch
from geoseg.render import display_rgb, quicklook
from geoseg.run.prepare import Prepared, open_scene
from geoseg.types import Progress, class_name
from geoseg.vectorize import vectorize

__all__ = ["VectorProduct", "vectorize_labels", "write_quicklook"]


@dataclass(frozen=True, slots=True)
class VectorProduct:
    """A written vector layer. When small-region merging rewrote the label raster,
    ``classes`` is its new class count and ``renumber[old id]`` the new id of each.
    ``seconds``: ``polygons`` (both passes over the label raster, small-region merging,
    the labels rewritten; ``polygons.<step>`` its parts, the ``profile`` of
    :func:`geoseg.vectorize.vectorize`), ``write`` (batches into the layer) and ``close``
    (the layer finished and moved into place, the rewritten labels' COG)."""

    path: Path
    features: int
    classes: int | None = None
    renumber: list[int] | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def vectorize_labels(
    labels_path: str | Path,
    vector_path: str | Path,
    config: Config | None = None,
    *,
    scene: str | Path | None = None,
    scene_copy: Path | None = None,
    labels_out: str | Path | None = None,
    metadata: dict[str, str] | None = None,
    progress: Progress | None = None,
    class_names: Sequence[str] = (),
) -> VectorProduct:
    """Polygons of a label raster (``0`` = nodata) into ``vector_path``.

    With ``scene`` (same grid, same CRS) every polygon gets its bands' mean and
    standard deviation (``config.input.bands``) and small regions
    (``vectorize.min_area``) merge into their most similar neighbour. The label raster
    is only read: with ``labels_out`` the merged labels are written there (it may be
    ``labels_path`` itself only for a run's own staged labels), so raster and polygons
    agree, with class ids again ``1..K`` by decreasing area; without it the polygons
    keep the raster's class ids. ``scene_copy``: the run's local copy of a remote
    scene's bands (:class:`geoseg.io.raster_write.LocalCopy`), read instead of the scene.
    With ``class_names`` (a run's scribbled classes ``1..S``) the class ids are kept
    even with ``labels_out``, and every polygon gets a ``class_name`` (null for a class
    beyond them).
    """
    config = config if config is not None else Config()
    labels_path, vector_path = Path(labels_path), Path(vector_path)
    vec = config.vectorize
    rewrite: list[LabelWriter] = []
    renumbered: list[npt.NDArray[np.int64]] = []
    with contextlib.ExitStack() as stack:
        # the network settings (timeouts) before a remote scene is opened
        stack.enter_context(gdal_cache(config.runtime.gdal_cache_mb, config.runtime.gdal_options))
        labels = stack.enter_context(SceneReader(labels_path))
        read_ids = class_id_reader(labels)
        info = labels.info
        read_bands = band_names = None
        source: SceneReader | None = None
        if scene is not None:
            source = stack.enter_context(open_scene(scene, config))
            grid = (source.info.height, source.info.width, source.info.transform)
            if grid != (info.height, info.width, info.transform):
                raise InputError(
                    f"{scene} and {labels_path} are on different grids; vectorize labels "
                    "with the scene they were made from"
                )
            if (source.info.crs is None) != (info.crs is None) or (
                info.crs is not None and source.info.crs != info.crs
            ):
                crss = [c.to_string() if c else "no CRS" for c in (source.info.crs, info.crs)]
                raise InputError(
                    f"{scene} ({crss[0]}) and {labels_path} ({crss[1]}) are in different "
                    "CRSs; vectorize labels with the scene they were made from"
                )
            band_names = [f"b{band}" for band in source.info.bands]
            if scene_copy is not None:
                source = stack.enter_context(SceneReader(scene_copy))
            read_bands = lambda window: source.read(window)[0]  # noqa: E731
        # each block is read once or twice: the run's cache would only hold memory
        paths = [labels_path] if source is None else [labels_path, source.path]
        cache = min(config.runtime.gdal_cache_mb, window_cache_mb(paths, vec.block_size))
        stack.enter_context(gdal_cache(cache, config.runtime.gdal_options))
        min_pixels = vec.min_area
        if vec.min_area_unit == "m2" and vec.min_area > 0:
            shape = (info.height, info.width)
            min_pixels = vec.min_area / pixel_area_m2(info.transform, info.crs, shape)

        def write_classes(window: Window, classes: npt.NDArray[np.integer]) -> None:
            if not rewrite:
                assert labels_out is not None
                writer = LabelWriter(labels_out, info, renumber=False, names=class_names)
                rewrite.append(stack.enter_context(writer))
            rewrite[0].write(window, classes)

        out = stack.enter_context(
            VectorWriter(vector_path, to_crs=vec.to_crs, metadata=metadata, names=class_names)
        )
        spent = {"polygons": 0.0, "write": 0.0}
        steps: dict[str, float] = {}  # the parts of "polygons"
        mark = time.perf_counter()
        for batch in vectorize(
            read_ids,
            (info.height, info.width),
            info.transform,
            info.crs,
            read_bands=read_bands,
            band_names=band_names or (),
            min_pixels=math.ceil(min_pixels),
            simplify=vec.simplify,
            block_size=vec.block_size,
            write_classes=write_classes if labels_out is not None else None,
            on_renumber=renumbered.append,
            renumber_classes=labels_out is not None and not class_names,
            progress=progress,
            profile=steps,
        ):
            now = time.perf_counter()
            spent["polygons"] += now - mark
            if class_names:
                ids = batch["class_id"].tolist()
                batch.insert(2, "class_name", [class_name(k, class_names) for k in ids])
            out.write(batch)
            mark = time.perf_counter()
            spent["write"] += mark - now
        spent["polygons"] += time.perf_counter() - mark
        mark = time.perf_counter()
    spent["close"] = time.perf_counter() - mark
    if labels_out is not None and not rewrite and Path(labels_out) != labels_path:
        with atomic_path(labels_out) as tmp:  # no region merged: the labels as they are
            shutil.copyfile(labels_path, tmp)
    spent |= {f"polygons.{step}": seconds for step, seconds in steps.items()}
    return VectorProduct(
        path=vector_path,
        features=out.count,
        classes=len(rewrite[0].classes) if rewrite else None,
        renumber=renumbered[0].tolist() if renumbered else None,
        seconds={k: round(v, 3) for k, v in spent.items()},
    )


def write_quicklook(
    path: Path,
    scene: Source,
    labels_path: Path,
    bands: Sequence[int],
    config: Config,
    prepared: Prepared,
) -> None:
    """The scene (its colour ``bands``, stretched on their own) beside the labels, at
    the statistics' decimated size; drawn from their read when it has the colour bands."""
    valid = prepared.small_valid
    chosen = list(prepared.info.bands)
    if all(band in chosen for band in bands):
        small = prepared.small[[chosen.index(band) for band in bands]]
    else:
        with open_scene(scene, config, bands=list(bands)) as reader:
            small, _ = reader.read_decimated(shape=valid.shape)
    with SceneReader(labels_path) as labels:
        classes, _ = labels.read_decimated(shape=valid.shape)
    low, high = percentile_bounds(
        small, valid, low=config.normalize.low_percentile, high=config.normalize.high_percentile
    )
    display = display_rgb(stretch(small, low, high))
    write_png(path, quicklook(display, np.where(valid, classes[0], 0)))
