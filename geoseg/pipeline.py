"""``run_scene``: one scene from GeoTIFF to label raster, quicklook and run record.

Scene mode: one network is trained on crops sampled across the whole valid area (with
their superpixel priors), then applied tile by tile with fixed batch-norm statistics.
Tiles overlap by at least the network's receptive field and only their cores are
kept, so every pixel gets exactly the scores a whole-scene pass would give: no seams.
"""

from __future__ import annotations

import logging
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
import torch
import yaml

from geoseg.errors import ConfigError, InputError, OutputError
from geoseg.io.raster import LabelWriter, SceneReader, atomic_path, write_png
from geoseg.normalize import percentile_bounds, stretch
from geoseg.render import display_rgb, quicklook
from geoseg.segment import SegmentParams, fill_nodata, fit, predict, training_views
from geoseg.segment.model import receptive_field
from geoseg.tiling import check_tiling, sample_crops, tile_grid

__all__ = ["RunOptions", "RunResult", "run_scene"]

logger = logging.getLogger(__name__)

TileProgress = Callable[[int, int], None]
"""``progress(done, total)`` after each tile."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Everything of a scene run but the segmentation parameters.

    Attributes
    ----------
    bands
        1-based bands to read, in order (``()``: all but alpha).
    nodata
        Value marking nodata, overriding the file's.
    low, high
        Scene-wide percentile stretch bounds (per band, over valid pixels).
    stats_pixels
        Pixels of the decimated read the statistics and crops are drawn from.
    tile_size, overlap
        Tiling of the prediction; ``overlap`` must be at least the receptive field.
    n_crops, crop_size
        Training crops sampled across the scene.
    seed
        Seeds the crops and the network.
    device
        ``auto``, ``cpu`` or ``cuda``.
    gdal_cache_mb
        GDAL's block cache during the run. GDAL's default (5 % of RAM) lets memory grow
        with the scene; the cap must still hold one row of blocks (a 20000-column,
        4-band uint16 scene needs 160 MB) or reads repeat.
    """

    bands: tuple[int, ...] = ()
    nodata: float | None = None
    low: float = 2.0
    high: float = 98.0
    stats_pixels: int = 1_000_000
    tile_size: int = 512
    overlap: int = 16
    n_crops: int = 8
    crop_size: int = 256
    seed: int = 0
    device: str = "auto"
    gdal_cache_mb: int = 256

    def __post_init__(self) -> None:
        if self.tile_size < 16:
            raise ConfigError(f"tiling.tile_size={self.tile_size} must be >= 16")
        check_tiling(self.tile_size, self.overlap)
        if self.n_crops < 1 or self.crop_size < 16:
            raise ConfigError(
                f"train.n_crops={self.n_crops} must be >= 1 and "
                f"train.crop_size={self.crop_size} >= 16"
            )


@dataclass(frozen=True, slots=True)
class RunResult:
    """Where a run wrote its outputs and what it found."""

    labels: Path
    quicklook: Path
    record: Path
    n_classes: int
    n_tiles: int
    timings: dict[str, float] = field(default_factory=dict)


def run_scene(
    scene: str | Path,
    outdir: str | Path,
    params: SegmentParams,
    options: RunOptions = RunOptions(),
    *,
    progress: TileProgress | None = None,
) -> RunResult:
    """Segment ``scene`` and write ``labels.tif`` (COG), ``quicklook.png`` and ``run.yaml``.

    Class ids in ``labels.tif`` are the network's output channels plus one (``0`` is
    nodata); uint8 when they fit, else uint16. A scene without CRS is processed in
    pixel coordinates with a warning.
    """
    if options.overlap < receptive_field(params):
        raise ConfigError(
            f"tiling.overlap={options.overlap} must be at least the network's receptive "
            f"field ({receptive_field(params)} px) so that tiles join without seams"
        )
    with rasterio.Env(GDAL_CACHEMAX=options.gdal_cache_mb * 2**20):  # rasterio takes bytes
        return _run_scene(Path(scene), Path(outdir), params, options, progress)


def _run_scene(
    scene: Path,
    outdir: Path,
    params: SegmentParams,
    options: RunOptions,
    progress: TileProgress | None,
) -> RunResult:
    timings: dict[str, float] = {}
    start = time.perf_counter()
    with SceneReader(scene, bands=options.bands or None, nodata=options.nodata) as reader:
        info = reader.info
        if info.crs is None:
            logger.warning("%s has no CRS: labels are written in pixel coordinates", scene)
        small, small_valid = reader.read_decimated(max_pixels=options.stats_pixels)
        if not small_valid.any():
            raise InputError(f"{scene}: every pixel is nodata; check the file or input.nodata")
        low, high = percentile_bounds(small, small_valid, low=options.low, high=options.high)
        fill = stretch(small, low, high)[:, small_valid].mean(axis=1)
        timings["statistics"] = time.perf_counter() - start
        _prepare_outdir(outdir)

        t0 = time.perf_counter()
        crops = sample_crops(
            small_valid,
            height=info.height,
            width=info.width,
            crop_size=options.crop_size,
            n_crops=options.n_crops,
            seed=options.seed,
        )
        images, valids = [], []
        for window in crops:
            data, valid = reader.read(window)
            images.append(fill_nodata(stretch(data, low, high), valid, values=fill))
            valids.append(valid)
        fitted = fit(
            *training_views(images, valids, params),
            params,
            seed=options.seed,
            device=options.device,
        )
        timings["train"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        tiles = list(
            tile_grid(info.height, info.width, tile_size=options.tile_size, overlap=options.overlap)
        )
        used = np.zeros(params.n_channels, bool)
        dtype = "uint8" if params.n_channels < 255 else "uint16"
        labels_path = outdir / "labels.tif"
        skipped = 0
        with LabelWriter(labels_path, info, dtype=dtype, nodata=0) as writer:
            for done, tile in enumerate(tiles, start=1):
                data, valid = reader.read(tile.read)
                rows, cols = tile.core_in_read
                if not valid[rows, cols].any():
                    skipped += 1
                else:
                    image = fill_nodata(stretch(data, low, high), valid, values=fill)
                    scores = predict(fitted.model, image, device=fitted.device)
                    classes = scores[:, rows, cols].argmax(0).cpu().numpy() + 1
                    classes[~valid[rows, cols]] = 0
                    used[np.unique(classes[classes > 0]) - 1] = True
                    writer.write(tile.core, classes)
                if progress is not None:
                    progress(done, len(tiles))
        timings["predict"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    quicklook_path = outdir / "quicklook.png"
    _write_quicklook(quicklook_path, labels_path, small, small_valid, low, high)
    timings["quicklook"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - start
    record = {
        "input": {"scene": str(scene), "bands": list(info.bands), "nodata": info.nodata},
        "crs": info.crs.to_string() if info.crs else None,
        "segment": params.to_dict(),
        "run": {**asdict(options), "bands": list(info.bands)},
        "normalize": {
            "low_percentile": options.low,
            "high_percentile": options.high,
            "low": low.tolist(),
            "high": high.tolist(),
        },
        "training": {
            "crops": [[int(w.col_off), int(w.row_off), int(w.width), int(w.height)] for w in crops],
            "iterations": fitted.n_iterations,
            "labels_at_stop": fitted.n_labels,
        },
        "tiles": {"total": len(tiles), "skipped_nodata": skipped},
        "classes": int(used.sum()),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "versions": _versions(),
    }
    record_path = outdir / "run.yaml"
    with atomic_path(record_path) as tmp:
        tmp.write_text(yaml.safe_dump(record, sort_keys=False))
    return RunResult(
        labels=labels_path,
        quicklook=quicklook_path,
        record=record_path,
        n_classes=int(used.sum()),
        n_tiles=len(tiles),
        timings=timings,
    )


def _prepare_outdir(outdir: Path) -> None:
    if outdir.exists() and not outdir.is_dir():
        raise OutputError(f"{outdir}: exists and is not a directory; choose another -o")
    try:
        outdir.mkdir(exist_ok=True)
    except FileNotFoundError as err:
        raise OutputError(
            f"{outdir.parent}: output directory does not exist; create it first"
        ) from err
    except PermissionError as err:
        raise OutputError(f"{outdir}: cannot be created (permission denied)") from err


def _write_quicklook(
    path: Path,
    labels_path: Path,
    small: npt.NDArray[Any],
    small_valid: npt.NDArray[np.bool_],
    low: npt.NDArray[np.float64],
    high: npt.NDArray[np.float64],
) -> None:
    with SceneReader(labels_path) as labels:
        classes, _ = labels.read_decimated(shape=small.shape[1:])
    display = display_rgb(stretch(small, low, high))
    write_png(path, quicklook(display, np.where(small_valid, classes[0], 0)))


def _versions() -> dict[str, str]:
    from geoseg import __version__

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gdal = rasterio.__gdal_version__
    versions = {
        "geoseg": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "rasterio": rasterio.__version__,
        "gdal": gdal,
    }
    return {name: str(value) for name, value in versions.items()}
