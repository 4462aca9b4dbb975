"""``plan_scene``: what a run of a scene will take, before running it.

Counts the tiles exactly as :func:`geoseg.run.run_scene` makes them, estimates the
valid fraction from the decimated read the run also starts with, and times a short
calibration on this machine with the run's own labeler (:mod:`geoseg.run.labelers`): a
few training iterations on the real crops (scene mode), then one tile's labels (in tile
mode, a few iterations on that tile). Peak memory comes from the
calibration's measured growth in resident memory plus the GDAL cache; the tile size
suggested is the largest whose measured per-tile memory, scaled by area, fits half of
the memory available now (and of free GPU memory on a GPU).

Estimates, not promises: training may stop before ``max_iterations`` (fewer labels than
``min_labels``), so the time is an upper bound for that stage.
"""

from __future__ import annotations

import math
import os
import resource
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geoseg.config import Config
from geoseg.io.source import Source, as_source
from geoseg.run.folder import local_copy_mb, outputs_mb, scratch_mb
from geoseg.run.labelers import labeler_for
from geoseg.run.prepare import gdal_env, keeps_local_copy, open_scene, prepare, reads_network
from geoseg.segment.train import resolve_device
from geoseg.tiling import tile_grid
from geoseg.types import SceneInfo

__all__ = ["Plan", "plan_scene"]

CALIBRATION_ITERATIONS = 3
TILE_SIZES = (256, 512, 1024, 2048, 4096)


@dataclass(frozen=True, slots=True)
class Plan:
    """A run's expected size, memory, disk and time (see :func:`plan_scene`)."""

    width: int
    height: int
    bands: int
    tile_size: int
    tiles: int
    tiles_with_data: int
    valid_fraction: float
    peak_memory_mb: float
    scratch_disk_mb: float
    output_disk_mb: float
    estimated_seconds: dict[str, float]
    suggested_tile_size: int
    available_memory_mb: float
    gpu_free_mb: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_scene(scene: str | Path, config: Config | None = None) -> Plan:
    """Plan a run of ``scene`` with ``config`` (tiles, memory, disk, time)."""
    config = config if config is not None else Config()
    with gdal_env(config):
        return _plan(as_source(scene), config)


def _plan(scene: Source, config: Config) -> Plan:
    tiling = config.tiling
    params = config.segment.params()
    base_rss = _rss_mb()
    with open_scene(scene, config) as reader:
        prepared = prepare(reader, config)
        networked = reads_network(scene, reader)
        info, small_valid = prepared.info, prepared.small_valid
        tiles = list(
            tile_grid(info.height, info.width, tile_size=tiling.tile_size, overlap=tiling.overlap)
        )
        flags = [_has_data(t.core, small_valid, info.height, info.width) for t in tiles]
        with_data = [t for t, has in zip(tiles, flags, strict=True) if has]
        empty = [t for t, has in zip(tiles, flags, strict=True) if not has]
        probe = max(  # the largest tile with data, as a typical one
            with_data, key=lambda t: (t.read.width * t.read.height, -abs(t.row), -abs(t.col))
        )
        seconds: dict[str, float] = {}
        device = resolve_device(config.runtime.device)
        short = _short(config)
        clock = _Clock()
        # scene mode trains here (crops read, a few iterations, merge table) ...
        labeler = labeler_for(short, prepared=prepared, progress=clock)
        seconds["train"] = clock.estimate(params.max_iterations) if clock.marks else 0.0
        train_rss = _rss_mb()
        image, valid = prepared.read(probe.read)
        clock = _Clock()
        labeler.compute(image, valid)  # ... tile mode trains each tile
        per_tile = clock.estimate(params.max_iterations) if clock.marks else clock.total()
        read_s = _read_seconds_per_mpx(prepared, empty or with_data)
        empty_mpx = sum(t.read.width * t.read.height for t in empty) / 1e6
        seconds["predict"] = per_tile * len(with_data) + read_s * empty_mpx
        tile_rss = _rss_mb()
    valid_fraction = float(small_valid.mean())
    valid_mpx = info.height * info.width * valid_fraction / 1e6
    # the label raster is written over the whole grid; vectorize walks it block by
    # block, nodata included (VECTORIZE_S_PER_MPX covers the valid part): reads the
    # labels and the scene's bands, and rewrites the labels after small-region merging
    grid_mpx = info.height * info.width / 1e6
    write_s, walk_s = _grid_seconds_per_mpx(info, config)
    seconds["predict"] += write_s * grid_mpx
    if config.output.vector:
        rewrite = write_s if config.vectorize.min_area > 0 else 0.0
        grid_s = (walk_s + rewrite + read_s) * grid_mpx * (1 - valid_fraction)
        seconds["vectorize"] = VECTORIZE_S_PER_MPX * valid_mpx + grid_s
    else:
        seconds["vectorize"] = 0.0
    seconds["total"] = sum(seconds.values())
    gdal_mb = float(config.runtime.gdal_cache_mb)
    grown = max(train_rss, tile_rss) - base_rss
    per_tile_mb = max(tile_rss - base_rss, 1.0)
    read_px = (tiling.tile_size + 2 * tiling.overlap) ** 2
    vector_mb = _vector_memory_mb(config, info.width, info.count)
    peak = base_rss + gdal_mb + max(grown, vector_mb)
    available = _available_memory_mb()
    gpu_free = _gpu_free_mb(device)
    suggested = TILE_SIZES[0]
    for size in TILE_SIZES:
        scale = (size + 2 * tiling.overlap) ** 2 / read_px
        fits = base_rss + gdal_mb + per_tile_mb * scale <= 0.5 * available
        if gpu_free is not None:
            fits &= per_tile_mb * scale <= 0.5 * gpu_free
        if fits:
            suggested = size
    n_px = info.height * info.width
    scratch = scratch_mb(len(with_data), read_px)
    if keeps_local_copy(networked, config):
        scratch += local_copy_mb(info)
    outputs = outputs_mb(n_px, round(n_px * valid_fraction), vector=bool(config.output.vector))
    return Plan(
        width=info.width,
        height=info.height,
        bands=info.count,
        tile_size=tiling.tile_size,
        tiles=len(tiles),
        tiles_with_data=len(with_data),
        valid_fraction=round(valid_fraction, 4),
        peak_memory_mb=round(peak, 1),
        scratch_disk_mb=round(scratch, 1),
        output_disk_mb=round(outputs, 1),
        estimated_seconds={k: round(v, 3) for k, v in seconds.items()},
        suggested_tile_size=suggested,
        available_memory_mb=round(available, 1),
        gpu_free_mb=None if gpu_free is None else round(gpu_free, 1),
    )


VECTORIZE_S_PER_MPX = 0.6
"""Vectorization rate measured on the 2-core reference machine (25 Mpx Sentinel-2
mosaic, scripts/bench_scene.py: 14 s); it grows with the number of segments."""


def _read_seconds_per_mpx(prepared: Any, tiles: list[Any], probes: int = 3) -> float:
    """Seconds per Mpx of reading the scene (the run reads every tile, with data or not,
    and vectorize reads the bands again), timed on up to ``probes`` of ``tiles``."""
    picked = tiles[:: max(1, len(tiles) // probes)][:probes]
    start = time.perf_counter()
    for tile in picked:
        prepared.read(tile.read)
    mpx = sum(t.read.width * t.read.height for t in picked) / 1e6
    return (time.perf_counter() - start) / max(mpx, 1e-9)


PROBE_SIDE = 2048
"""Side of the nodata-only label raster :func:`_grid_seconds_per_mpx` writes and walks."""


def _grid_seconds_per_mpx(info: SceneInfo, config: Config) -> tuple[float, float]:
    """Seconds per Mpx of the grid, timed here on a nodata-only probe: writing the
    label COG (with overviews), and vectorize's walk of it (read, label, polygonize)."""
    import tempfile

    from geoseg.io.labels import LabelWriter
    from geoseg.vectorize import vectorize

    side = PROBE_SIDE
    probe = replace(info, height=side, width=side, bands=(1,), dtype="uint8")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with LabelWriter(Path(tmp) / "probe.tif", probe):
            pass  # nothing written: nodata everywhere, as around a sparse scene's data
        write_s = time.perf_counter() - start
    start = time.perf_counter()
    zeros = lambda window: np.zeros((window.height, window.width), np.uint8)  # noqa: E731
    for _ in vectorize(zeros, (side, side), info.transform, info.crs,
                       block_size=config.vectorize.block_size):  # fmt: skip
        pass
    walk_s = time.perf_counter() - start
    mpx = side * side / 1e6
    return write_s / mpx, walk_s / mpx


def _short(config: Config) -> Config:
    """``config`` with a calibration's few training iterations."""
    segment = config.segment.model_copy(
        update={"max_iterations": CALIBRATION_ITERATIONS, "min_labels": 1}
    )
    return config.model_copy(update={"segment": segment})


class _Clock:
    """A training progress callback that times iterations; the first one (warm-up,
    allocations) is left out of the per-iteration time."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.marks: list[float] = []

    def __call__(self, iteration: int, n_labels: int) -> None:
        self.marks.append(time.perf_counter())

    def total(self) -> float:
        """Seconds since the clock was made."""
        return time.perf_counter() - self.start

    def estimate(self, iterations: int) -> float:
        """What the timed work would take with ``iterations`` training iterations: all
        but the iterations after the first, plus those at the measured rate."""
        trained = self.marks[-1] - self.marks[0]
        return self.total() - trained + self.per_iteration() * (iterations - 1)

    def per_iteration(self) -> float:
        if len(self.marks) >= 2:
            return (self.marks[-1] - self.marks[0]) / (len(self.marks) - 1)
        return self.marks[0] - self.start if self.marks else 0.0


def _has_data(core: Any, valid: np.ndarray, height: int, width: int) -> bool:
    """Whether a tile core holds valid pixels in the decimated mask (as the run skips
    tiles without any)."""
    fy, fx = valid.shape[0] / height, valid.shape[1] / width
    r0, c0 = int(core.row_off * fy), int(core.col_off * fx)
    r1 = max(r0 + 1, math.ceil((core.row_off + core.height) * fy))
    c1 = max(c0 + 1, math.ceil((core.col_off + core.width) * fx))
    return bool(valid[r0:r1, c0:c1].any())


def _vector_memory_mb(config: Config, width: int, bands: int) -> float:
    """Working memory of block-wise vectorization beyond the baseline: one block's
    arrays (labels, ids, float64 band sums) and one row of blocks' polygon pieces."""
    block = config.vectorize.block_size
    per_block = block * block * (8 * 3 + 8 * 3 * bands) / 2**20
    return per_block + width * block * 4 / 2**20


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _available_memory_mb() -> float:
    try:
        with Path("/proc/meminfo").open() as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20


def _gpu_free_mb(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return free / 2**20
