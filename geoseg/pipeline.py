"""``run_scene``: one scene from GeoTIFF to label raster, quicklook and run record.

Scene mode: one network is trained on crops sampled across the whole valid area (with
their superpixel priors), then applied tile by tile with fixed batch-norm statistics.
Tiles overlap by at least the network's receptive field and only their cores are
kept, so every pixel gets exactly the scores a whole-scene pass would give: no seams.
The optional superpixel vote on the stitched labels (``stitch.refine``, either mode) is
:func:`geoseg.stitch.superpixel_vote`, run when the label raster is closed: blocks of
its own (not the tiles), each read with a wide margin so that Felzenszwalb superpixels
crossing a block edge come out alike on both sides.

Tile mode: every tile is segmented on its own as in the paper; :mod:`geoseg.stitch`
aligns the tiles' labels to scene classes.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import platform
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
import torch
import yaml
from rasterio.windows import Window

from geoseg.config import Config, config_yaml
from geoseg.errors import InputError, OutputError
from geoseg.io.raster import (
    LabelWriter,
    SceneReader,
    atomic_path,
    gdal_cache,
    window_cache_mb,
    write_gif,
    write_png,
)
from geoseg.io.vector import VectorWriter
from geoseg.normalize import percentile_bounds, stretch
from geoseg.render import TrainingAnimation, display_rgb, quicklook
from geoseg.report import REPORT, write_report
from geoseg.runtime import hold_freed_memory, release_memory
from geoseg.segment import SegmentParams, fill_nodata, fit, predict, segment, training_views
from geoseg.segment.merge import classify, merge_for
from geoseg.segment.train import resolve_device
from geoseg.stitch import TileAligner, superpixel_vote
from geoseg.tiling import Tile, sample_crops, seam_cuts, tile_grid
from geoseg.types import SceneInfo
from geoseg.vectorize import pixel_area_m2, vectorize

__all__ = ["RECORD", "RunResult", "completed_record", "run_scene", "vectorize_labels"]

logger = logging.getLogger(__name__)

ANIMATION = "training.gif"
"""The label map during training, with ``output.snapshots``."""
RECORD = "run.yaml"
"""The run record, written last: a scene's outputs are complete when it is there."""

TileProgress = Callable[[int, int], None]
"""``progress(done, total)`` after each tile."""

TileLabeler = Callable[
    [Tile, npt.NDArray[np.float32], npt.NDArray[np.bool_]], npt.NDArray[np.int32]
]
"""``label(tile, image, valid)``: raw class ids (0 = nodata) over the tile's read window."""


@dataclass(frozen=True, slots=True)
class RunResult:
    """Where a run wrote its outputs and what it found."""

    labels: Path
    quicklook: Path
    record: Path
    vector: Path | None
    n_features: int
    n_classes: int
    n_tiles: int
    timings: dict[str, float] = field(default_factory=dict)


def run_scene(
    scene: str | Path,
    outdir: str | Path,
    config: Config | None = None,
    *,
    progress: TileProgress | None = None,
    distribute_tiles: bool | None = None,
) -> RunResult:
    """Segment ``scene`` and write ``labels.tif`` (COG), ``quicklook.png`` and ``run.yaml``.

    Class ids in ``labels.tif`` run ``1..K`` by decreasing area (``0`` is nodata), in
    uint8 when they fit, else uint16. A scene without CRS is processed in pixel
    coordinates with a warning.
    """
    config = config if config is not None else Config()
    hold_freed_memory()
    if distribute_tiles is None:
        distribute_tiles = config.runtime.executor == "dask"
    with gdal_cache(config.runtime.gdal_cache_mb):
        return _run_scene(Path(scene), Path(outdir), config, progress, distribute_tiles)


def _run_scene(
    scene: Path,
    outdir: Path,
    config: Config,
    progress: TileProgress | None,
    distribute_tiles: bool,
) -> RunResult:
    timings: dict[str, float] = {}
    record: dict[str, Any] = {"scene": str(scene)}
    start = time.perf_counter()
    inp = config.input
    with SceneReader(scene, bands=inp.bands or None, nodata=inp.nodata) as reader:
        info = reader.info
        if info.crs is None:
            logger.warning("%s has no CRS: labels are written in pixel coordinates", scene)
        small_valid, (low, high, fill) = scene_statistics(reader, config)
        record["grid"] = {
            "width": info.width,
            "height": info.height,
            "bands": list(info.bands),
            "crs": info.crs.to_string() if info.crs else None,
            "transform": list(info.transform)[:6],
            "nodata": info.nodata,
        }
        record["normalize"] = {"low": low.tolist(), "high": high.tolist(), "fill": fill.tolist()}
        timings["statistics"] = time.perf_counter() - start
        _prepare_outdir(outdir)
        scratch = _Scratch(outdir, scene, config)

        read = stretched_reader(reader, (low, high, fill))
        t0 = time.perf_counter()
        final_merge: Callable[[], npt.NDArray[np.int64] | None] = lambda: None  # noqa: E731
        if config.segment.mode == "scene":
            label_tile, record["training"] = _scene_labeler(
                config, read, small_valid, info, scratch, outdir
            )
        else:
            label_tile, record["training"], final_merge = _tile_labeler(config, scratch, outdir)
        timings["train"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        tiles = list(
            tile_grid(
                info.height,
                info.width,
                tile_size=config.tiling.tile_size,
                overlap=config.tiling.overlap,
            )
        )
        labels_path = outdir / "labels.tif"
        skipped = 0
        params = config.segment.params()
        refine = None
        if config.stitch.refine:
            refine = functools.partial(
                superpixel_vote,
                read_image=read,
                shape=(info.height, info.width),
                params=params,
                block=config.stitch.refine_block,
                margin=config.stitch.refine_margin,
            )
        if distribute_tiles:
            # tile mode keeps the first tile here: its training animation is drawn locally
            remote = tiles[1:] if config.segment.mode == "tile" else tiles
            record["distributed_tiles"] = _distribute_tiles(
                scene, outdir, config, (low, high, fill), remote
            )
        with LabelWriter(labels_path, info) as writer:
            for done, tile in enumerate(tiles, start=1):
                image, valid = read(tile.read)
                rows, cols = tile.core_in_read
                if not valid[rows, cols].any():
                    skipped += 1
                else:
                    writer.write(tile.core, label_tile(tile, image, valid)[rows, cols])
                if progress is not None:
                    progress(done, len(tiles))
            writer.close(refine, merge=final_merge())
        timings["predict"] = time.perf_counter() - t0
        n_classes, source_ids = len(writer.classes), writer.classes

        vector_path = None
        if config.output.vector is not None:
            release_memory()  # the network and tile buffers are done with
            t0 = time.perf_counter()
            vector_path = outdir / config.output.vector  # an absolute path stays
            provenance = {
                "geoseg_scene": str(scene),
                "geoseg_seed": str(config.runtime.seed),
                "geoseg_config": config_yaml(config),
                "geoseg_versions": yaml.safe_dump(_versions(), sort_keys=False),
            }
            record["vector"] = vectorize_labels(
                labels_path, vector_path, config, scene=scene, metadata=provenance
            )
            n_classes = record["vector"].pop("classes", n_classes)
            renumber = record["vector"].pop("renumber", None)
            if renumber is not None:  # merging renumbered the classes by area
                moved = dict(zip(renumber[1:], source_ids, strict=False))
                source_ids = [moved[k] for k in range(1, n_classes + 1)]
            timings["vectorize"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        quicklook_path = outdir / "quicklook.png"
        display = config.output.display_bands or reader.colour_bands() or info.bands[:3]
        _write_quicklook(quicklook_path, scene, labels_path, display, config, small_valid)
        timings["quicklook"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - start
    outputs = [labels_path, quicklook_path]
    if vector_path is not None:
        outputs.append(vector_path)
    if config.output.snapshots:
        outputs.append(outdir / ANIMATION)
    outputs.append(outdir / REPORT)
    record.update(
        {
            "config": config.model_dump(mode="json"),
            "tiles": {
                "total": len(tiles),
                "skipped_nodata": skipped,
                "resumed": scratch.resumed,
            },
            "classes": {
                "count": n_classes,
                "source_ids": source_ids,
                "source": "network output channel + 1"
                if config.segment.mode == "scene"
                else "scene class of the tile aligner",
            },
            "timings_s": {k: round(v, 3) for k, v in timings.items()},
            "versions": _versions(),
            "outputs": [
                str(p.relative_to(outdir) if p.is_relative_to(outdir) else p) for p in outputs
            ],
        }
    )
    t0 = time.perf_counter()
    row_cuts, col_cuts = seam_cuts(
        info.height, info.width, tile_size=config.tiling.tile_size, overlap=config.tiling.overlap
    )
    write_report(outdir, record, row_cuts=row_cuts, col_cuts=col_cuts)
    record["timings_s"]["report"] = round(time.perf_counter() - t0, 3)
    # run.yaml is the completion record: written last, under a temporary name
    record_path = outdir / RECORD
    with atomic_path(record_path) as tmp:
        tmp.write_text(yaml.safe_dump(record, sort_keys=False))
    scratch.remove()
    return RunResult(
        labels=labels_path,
        quicklook=quicklook_path,
        record=record_path,
        vector=vector_path,
        n_features=record.get("vector", {}).get("features", 0),
        n_classes=n_classes,
        n_tiles=len(tiles),
        timings=timings,
    )


Reader = Callable[[Window], tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]]
StretchValues = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]
"""The scene-wide ``(low, high, fill)`` of the stretch, as run.yaml records them."""


class _Scratch:
    """What an interrupted run already finished, kept for the next identical run.

    ``OUTDIR/.geoseg-scratch/<key>/`` holds the trained network (scene mode) and each
    tile's labels before stitching, every file written under a temporary name and
    renamed, so a run killed at any point (even ``kill -9``) leaves only whole files.
    The key hashes the scene (path, size, modification time) and the resolved config:
    a changed setting starts afresh. A successful run removes the folder.
    """

    def __init__(self, outdir: Path, scene: Path, config: Config) -> None:
        stat = scene.stat()
        identity = {
            "scene": str(scene.resolve()),
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "config": config.model_dump(mode="json"),
        }
        key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
        self.root = outdir / ".geoseg-scratch"
        self.dir = self.root / key
        self.resumed = 0

    def tile(self, tile: Tile, compute: Callable[[], tuple[Any, int]]) -> tuple[Any, int]:
        """``(labels, iterations)`` of a tile: saved ones, else ``compute()`` saved."""
        window = tile.read
        path = self.dir / f"tile_{window.row_off}_{window.col_off}.npz"
        if path.exists():
            try:
                with np.load(path) as saved:
                    self.resumed += 1
                    return saved["labels"].astype(np.int32), int(saved["iterations"])
            except (OSError, ValueError, KeyError):
                path.unlink()  # not a whole file: compute again
        labels, iterations = compute()
        low, high = int(labels.min(initial=0)), int(labels.max(initial=0))
        dtype = np.result_type(np.min_scalar_type(low), np.min_scalar_type(high))
        self._save(
            path, lambda tmp: np.savez(tmp, labels=labels.astype(dtype), iterations=iterations)
        )
        return labels, iterations

    def load_model(self) -> dict[str, Any] | None:
        path = self.dir / "model.pt"
        if not path.exists():
            return None
        try:
            saved: dict[str, Any] = torch.load(path, weights_only=False, map_location="cpu")
        except Exception:  # a torn or foreign file: train again
            path.unlink()
            return None
        return saved

    def save_model(self, saved: dict[str, Any]) -> None:
        self._save(self.dir / "model.pt", lambda tmp: torch.save(saved, tmp))

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _save(self, path: Path, write: Callable[[Path], None]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.part-{os.getpid()}{path.suffix}")
        write(tmp)
        tmp.replace(path)


def scene_statistics(
    reader: SceneReader, config: Config
) -> tuple[npt.NDArray[np.bool_], StretchValues]:
    """The decimated valid mask and the scene-wide stretch ``(low, high, fill)``."""
    norm = config.normalize
    small, small_valid = reader.read_decimated(max_pixels=norm.stats_pixels)
    if not small_valid.any():
        raise InputError(f"{reader.path}: every pixel is nodata; check the file or input.nodata")
    low, high = percentile_bounds(
        small, small_valid, low=norm.low_percentile, high=norm.high_percentile
    )
    fill = stretch(small, low, high)[:, small_valid].mean(axis=1)
    return small_valid, (low, high, fill)


def stretched_reader(reader: SceneReader, stretch_values: StretchValues) -> Reader:
    """``read(window) -> (image, valid)``: stretched, nodata filled, as the network sees it."""
    low, high, fill = stretch_values

    def read(window: Window) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
        data, valid = reader.read(window)
        return fill_nodata(stretch(data, low, high), valid, values=fill), valid

    return read


def training_crops(
    config: Config, small_valid: npt.NDArray[np.bool_], info: SceneInfo
) -> list[Window]:
    """Scene mode's training crops, spread over the valid area (seeded)."""
    params = config.segment.params()
    return sample_crops(
        small_valid,
        height=info.height,
        width=info.width,
        crop_size=params.crop_size,
        n_crops=params.n_crops,
        seed=config.runtime.seed,
    )


def _scene_labeler(
    config: Config,
    read: Reader,
    small_valid: npt.NDArray[np.bool_],
    info: SceneInfo,
    scratch: _Scratch,
    outdir: Path,
) -> tuple[TileLabeler, dict[str, Any]]:
    """Scene mode: one network trained on crops from the whole scene labels every tile."""
    params = config.segment.params()
    crops = training_crops(config, small_valid, info)
    saved = scratch.load_model()
    if saved is None:
        images, valids = zip(*(read(window) for window in crops), strict=True)
        animation = _animation(config)
        fitted = fit(
            *training_views(list(images), list(valids), params),
            params,
            seed=config.runtime.seed,
            device=config.runtime.device,
            snapshot_at=animation.iterations if animation is not None else (),
            on_snapshot=animation,
        )
        if animation is not None:
            write_gif(outdir / ANIMATION, animation.frames(stopped_at=fitted.n_iterations))
        table = _crop_merge(fitted.model, fitted.device, images, valids, params)
        saved = {
            "model": fitted.model.to("cpu"),
            "iterations": fitted.n_iterations,
            "labels_at_stop": fitted.n_labels,
            "merge": None if table is None else table.tolist(),
        }
        scratch.save_model(saved)
    device = resolve_device(config.runtime.device)
    model = saved["model"].to(device)
    classes = functools.partial(
        _predict_classes, model, device, table=saved["merge"], sigma=params.smooth_sigma
    )

    def label(tile: Tile, image: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_]) -> Any:
        return scratch.tile(tile, lambda: classes(image, valid))[0]

    summary = {
        "crops": [[int(w.col_off), int(w.row_off), int(w.width), int(w.height)] for w in crops],
        "iterations": saved["iterations"],
        "labels_at_stop": saved["labels_at_stop"],
        "merge": saved["merge"],
    }
    return label, summary


def _crop_merge(
    model: torch.nn.Module,
    device: torch.device,
    images: Sequence[npt.NDArray[np.float32]],
    valids: Sequence[npt.NDArray[np.bool_]],
    params: SegmentParams,
) -> npt.NDArray[np.int64] | None:
    """Scene mode's class merge table, from the trained network's classes on the
    full-resolution training crops (one decision for the whole scene)."""
    if not params.merges:  # spare predicting the crops
        return None
    logits = torch.stack([predict(model, image, device=device) for image in images])
    return merge_for(logits, np.stack(images), np.stack(valids), params)


def _tile_labeler(
    config: Config, scratch: _Scratch, outdir: Path
) -> tuple[TileLabeler, dict[str, Any], Callable[[], npt.NDArray[np.int64] | None]]:
    """Tile mode: every tile trained on its own, then aligned to scene classes; with
    ``segment.n_classes`` the scene classes are finally merged to that many (the third
    item gives that table once every tile is placed)."""
    aligner = TileAligner(
        min_vote_share=config.stitch.min_vote_share,
        max_vote_distance=config.stitch.max_vote_distance,
        max_feature_distance=config.stitch.max_feature_distance,
    )
    iterations: list[int] = []

    def label(tile: Tile, image: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_]) -> Any:
        def compute() -> tuple[Any, int]:
            animation = _animation(config) if not iterations else None  # the first tile
            labels, n = _segment_tile(config, image, valid, animation)
            if animation is not None:
                write_gif(outdir / ANIMATION, animation.frames(stopped_at=n))
            return labels, n

        labels, n = scratch.tile(tile, compute)
        iterations.append(n)
        return aligner.align(tile, labels, image)

    n_classes = config.segment.params().n_classes

    def final_merge() -> npt.NDArray[np.int64] | None:
        return None if n_classes is None else aligner.merge_to(n_classes)

    return label, {"tiles_trained": iterations}, final_merge


def _predict_classes(
    model: torch.nn.Module,
    device: torch.device,
    image: npt.NDArray[np.float32],
    valid: npt.NDArray[np.bool_],
    *,
    table: Sequence[int] | None = None,
    sigma: float = 0.0,
) -> tuple[npt.NDArray[np.int32], int]:
    """Scene mode: class ids (network output channel + 1, 0 = nodata) of one tile,
    after the scene's class merge ``table`` and smoothing."""
    logits = predict(model, image, device=device)
    labels = classify(logits, table=None if table is None else np.asarray(table), sigma=sigma)
    classes = labels.cpu().numpy().astype(np.int32) + 1
    classes[~valid] = 0
    return classes, 0


def _segment_tile(
    config: Config,
    image: npt.NDArray[np.float32],
    valid: npt.NDArray[np.bool_],
    animation: TrainingAnimation | None = None,
) -> tuple[npt.NDArray[np.int32], int]:
    """Tile mode: one tile segmented on its own; tile-local labels and iterations."""
    result = segment(
        image,
        config.segment.params(),
        valid=valid,
        seed=config.runtime.seed,
        device=config.runtime.device,
        snapshot_at=animation.iterations if animation is not None else (),
        on_snapshot=animation,
    )
    return result.labels, result.n_iterations


def _distribute_tiles(
    scene: Path, outdir: Path, config: Config, stretch_values: StretchValues, tiles: list[Tile]
) -> int:
    """Label ``tiles`` on Dask workers (``runtime.address`` or a LocalCluster of
    ``runtime.workers``) into the run's scratch folder, which the stitching loop then
    reads as finished tiles. Workers need the scene and OUTDIR on a shared file system."""
    from geoseg.cluster import dask_client

    with dask_client(config.runtime.address, workers=config.runtime.workers) as client:
        n_workers = max(1, len(client.scheduler_info()["workers"]))
        size = max(1, math.ceil(len(tiles) / (4 * n_workers)))
        chunks = [tiles[i : i + size] for i in range(0, len(tiles), size)]
        futures = [
            client.submit(
                _label_tiles_into_scratch, scene, outdir, config, stretch_values, chunk, pure=False
            )
            for chunk in chunks
        ]
        return sum(client.gather(futures))


def _label_tiles_into_scratch(
    scene: Path, outdir: Path, config: Config, stretch_values: StretchValues, tiles: list[Tile]
) -> int:
    """A Dask task: label tiles exactly as the run would and save them in its scratch."""
    hold_freed_memory()
    scratch = _Scratch(outdir, scene, config)
    compute: Callable[..., tuple[npt.NDArray[np.int32], int]] = functools.partial(
        _segment_tile, config
    )
    if config.segment.mode == "scene":
        saved = scratch.load_model()
        if saved is None:
            raise OutputError(f"{scratch.dir}: the trained network is not visible to this worker")
        device = resolve_device(config.runtime.device)
        compute = functools.partial(
            _predict_classes,
            saved["model"].to(device),
            device,
            table=saved["merge"],
            sigma=config.segment.params().smooth_sigma,
        )
    done = 0
    inp = config.input
    with (
        gdal_cache(config.runtime.gdal_cache_mb),
        SceneReader(scene, bands=inp.bands or None, nodata=inp.nodata) as reader,
    ):
        read = stretched_reader(reader, stretch_values)
        for tile in tiles:
            image, valid = read(tile.read)
            rows, cols = tile.core_in_read
            if not valid[rows, cols].any():
                continue
            scratch.tile(tile, functools.partial(compute, image, valid))
            done += 1
    return done


def vectorize_labels(
    labels_path: str | Path,
    vector_path: str | Path,
    config: Config | None = None,
    *,
    scene: str | Path | None = None,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Polygons of a label raster (``0`` = nodata) into ``vector_path``.

    With ``scene`` (same grid) every polygon gets its bands' mean and standard
    deviation (``config.input.bands``) and small regions merge into their most similar
    neighbour; with ``vectorize.min_area`` the merged regions are written back into
    the label raster so both agree (class ids again ``1..K`` by decreasing area).
    Returns ``{"path", "features"}`` plus, when the label raster was rewritten,
    ``"classes"`` (their count) and ``"renumber"`` (old class id -> new id).
    """
    config = config if config is not None else Config()
    labels_path, vector_path = Path(labels_path), Path(vector_path)
    vec = config.vectorize
    rewrite: list[LabelWriter] = []
    renumbered: list[npt.NDArray[np.int64]] = []
    with contextlib.ExitStack() as stack:
        labels = stack.enter_context(SceneReader(labels_path, bands=[1]))
        info = labels.info
        read_bands = band_names = None
        if scene is not None:
            source = stack.enter_context(
                SceneReader(scene, bands=config.input.bands or None, nodata=config.input.nodata)
            )
            grid = (source.info.height, source.info.width, source.info.transform)
            if grid != (info.height, info.width, info.transform):
                raise InputError(
                    f"{scene} and {labels_path} are on different grids; vectorize labels "
                    "with the scene they were made from"
                )
            read_bands = lambda window: source.read(window)[0]  # noqa: E731
            band_names = [f"b{band}" for band in source.info.bands]
        # each block is read once or twice: the run's cache would only hold memory
        paths = [labels_path] if scene is None else [labels_path, Path(scene)]
        cache = min(config.runtime.gdal_cache_mb, window_cache_mb(paths, vec.block_size))
        stack.enter_context(gdal_cache(cache))
        min_pixels = vec.min_area
        if vec.min_area_unit == "m2" and vec.min_area > 0:
            shape = (info.height, info.width)
            min_pixels = vec.min_area / pixel_area_m2(info.transform, info.crs, shape)

        def write_classes(window: Window, classes: npt.NDArray[np.integer]) -> None:
            if not rewrite:
                rewrite.append(stack.enter_context(LabelWriter(labels_path, info, renumber=False)))
            rewrite[0].write(window, classes)

        out = stack.enter_context(VectorWriter(vector_path, to_crs=vec.to_crs, metadata=metadata))
        for batch in vectorize(
            lambda window: labels.read(window)[0][0],
            (info.height, info.width),
            info.transform,
            info.crs,
            read_bands=read_bands,
            band_names=band_names or (),
            min_pixels=math.ceil(min_pixels),
            simplify=vec.simplify,
            block_size=vec.block_size,
            write_classes=write_classes,
            on_renumber=renumbered.append,
        ):
            out.write(batch)
    summary: dict[str, Any] = {"path": str(vector_path), "features": out.count}
    if rewrite:
        summary["classes"] = len(rewrite[0].classes)
    if renumbered:
        summary["renumber"] = renumbered[0].tolist()
    return summary


def completed_record(outdir: str | Path, config: Config) -> dict[str, Any] | None:
    """The record of a finished run in ``outdir`` with exactly this configuration (its
    record, written last, names this config and every output it lists exists), else
    ``None``."""
    path = Path(outdir) / RECORD
    try:
        record: dict[str, Any] = yaml.safe_load(path.read_text())
        same = Config.model_validate(record["config"]) == config
        outputs = [Path(outdir) / name for name in record["outputs"]]
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
        return None
    return record if same and all(p.exists() for p in outputs) else None


def _prepare_outdir(outdir: Path) -> None:
    if outdir.exists() and not outdir.is_dir():
        raise OutputError(f"{outdir}: exists and is not a directory; choose another -o")
    try:
        outdir.mkdir(exist_ok=True)
        (outdir / RECORD).unlink(missing_ok=True)  # outputs change: no longer complete
    except FileNotFoundError as err:
        raise OutputError(
            f"{outdir.parent}: output directory does not exist; create it first"
        ) from err
    except PermissionError as err:
        raise OutputError(f"{outdir}: cannot be created (permission denied)") from err


def _write_quicklook(
    path: Path,
    scene: Path,
    labels_path: Path,
    bands: Sequence[int],
    config: Config,
    valid: npt.NDArray[np.bool_],
) -> None:
    """The scene (its colour bands, stretched on their own) beside the labels."""
    with SceneReader(scene, bands=bands, nodata=config.input.nodata) as reader:
        small, _ = reader.read_decimated(shape=valid.shape)
    with SceneReader(labels_path) as labels:
        classes, _ = labels.read_decimated(shape=valid.shape)
    low, high = percentile_bounds(
        small, valid, low=config.normalize.low_percentile, high=config.normalize.high_percentile
    )
    display = display_rgb(stretch(small, low, high))
    write_png(path, quicklook(display, np.where(valid, classes[0], 0)))


def _animation(config: Config) -> TrainingAnimation | None:
    snapshots = config.output.snapshots
    return TrainingAnimation(snapshots) if snapshots else None


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
