"""How a tile gets its class ids: the run's mode, chosen once in :func:`labeler_for`.

A :class:`Labeler` computes a tile's raw labels from its stretched image (what the
resume store saves and Dask workers run: :meth:`~Labeler.compute`), places them among
the scene's classes (:meth:`~Labeler.place`) and may join classes once every tile is
placed (:meth:`~Labeler.final_merge`). Scene mode trains one network on crops from the
whole scene; tile mode segments every tile on its own as in the paper and aligns its
classes to the scene's (:class:`geoseg.stitch.TileAligner`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt
import torch
from rasterio.windows import Window

from geoseg.config import Config
from geoseg.errors import OutputError
from geoseg.io.raster_write import write_gif
from geoseg.render import TrainingAnimation
from geoseg.run.prepare import Prepared, drop_local_blocks, training_crops
from geoseg.run.scratch import Scratch
from geoseg.runtime import release_memory
from geoseg.segment import SegmentParams, fit, predict, training_views
from geoseg.segment.classify import classify
from geoseg.segment.image import segment_channels
from geoseg.segment.merge import ClassMap, merge_for, scribble_map
from geoseg.segment.model import for_inference
from geoseg.segment.params import smooth_radius
from geoseg.segment.split import Split
from geoseg.segment.strokes import StrokeClassifier, fit_strokes, stroke_features
from geoseg.segment.train import resolve_device
from geoseg.stitch import TileAligner
from geoseg.tiling import Tile, tile_grid
from geoseg.types import Progress

if TYPE_CHECKING:
    from geoseg.io.scribbles import Scribbles

__all__ = ["ANIMATION", "Labeler", "SceneLabeler", "TileLabeler", "UniformLabeler", "labeler_for"]

ANIMATION = "training.gif"
"""The label map during training, with ``output.snapshots``."""

Labels = npt.NDArray[np.int32]


class Labeler(Protocol):
    """What the tile loop, the Dask workers and ``plan`` ask of a mode."""

    summary: dict[str, Any]
    """The ``training`` part of run.yaml."""

    def compute(
        self, image: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_]
    ) -> tuple[Labels, int]:
        """Raw class ids of a tile's read window (0 = nodata) and iterations trained."""
        ...

    def place(
        self, tile: Tile, labels: Labels, image: npt.NDArray[np.float32], iterations: int
    ) -> Labels:
        """The raw ids as scene classes (``iterations``: what computing them took)."""
        ...

    def final_merge(self) -> npt.NDArray[np.int64] | None:
        """A table joining scene classes once every tile is placed, or ``None``."""
        ...


def labeler_for(
    config: Config,
    *,
    prepared: Prepared | None = None,
    scratch: Scratch | None = None,
    outdir: Path | None = None,
    progress: Progress | None = None,
    scribbles: Scribbles | None = None,
) -> Labeler:
    """The labeler of ``config.segment.mode``.

    Scene mode loads the network ``scratch`` holds, else trains one on ``prepared``'s
    crops (saved in ``scratch``); a Dask worker passes no ``prepared`` and must find it.
    ``outdir`` receives ``training.gif`` with ``output.snapshots``; ``progress`` is
    called after each training iteration; ``scribbles`` (scene mode) name the classes
    the network learns (TIP 2020).
    """
    if prepared is not None and prepared.uniform:
        return UniformLabeler()
    if config.segment.mode == "tile":
        return TileLabeler(config, outdir=outdir, progress=progress)
    saved = scratch.load_model() if scratch is not None else None
    if saved is None:
        if prepared is None:
            where = scratch.dir if scratch is not None else "the scratch folder"
            raise OutputError(f"{where}: the trained network is not visible to this worker")
        saved = _train(config, prepared, outdir, progress, scribbles)
        if scratch is not None:
            scratch.save_model(saved)
    return SceneLabeler(config, saved)


class SceneLabeler:
    """Scene mode: one trained network predicts every tile (then the scene's class merge
    table and the label smoothing); ids are the network's output channel + 1."""

    def __init__(self, config: Config, saved: dict[str, Any]) -> None:
        self.device = resolve_device(config.runtime.device)
        self.model = for_inference(saved["model"].to(self.device))  # folded once, not per tile
        self.table = None if saved["merge"] is None else np.asarray(saved["merge"])
        self.splits = tuple(
            Split(s["source"], s["target"], tuple(s["normal"]), s["offset"])
            for s in saved.get("splits", ())
        )
        params = config.segment.params()
        self.sigma, self.range_sigma = params.smooth_sigma, params.smooth_range
        strokes = saved.get("strokes")
        self.strokes = (
            None if strokes is None else StrokeClassifier.from_dict(strokes, saved["in_bands"])
        )
        self.bfloat16 = config.runtime.precision == "bfloat16"
        self.seconds = {"network": 0.0, "classify": 0.0}
        """Time spent in the network and in the class table, merge and smoothing."""
        self.summary = {
            "crops": saved["crops"],
            "iterations": saved["iterations"],
            "warm_start": saved.get("warm_start", False),
            "labels_at_stop": saved["labels_at_stop"],
            "merge": saved["merge"],
            "splits": saved.get("splits", []),
            "tree": saved.get("tree", []),  # network channels; run.yaml's classes.tree
            "scribbled": saved.get("scribbled", []),  # run.yaml's classes.names
        }

    def compute(
        self, image: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_]
    ) -> tuple[Labels, int]:
        t0 = time.perf_counter()
        logits = predict(self.model, image, device=self.device, bfloat16=self.bfloat16)
        t1 = time.perf_counter()
        if self.strokes is not None:
            labels = self.strokes.classify(logits, image)
        else:
            labels = classify(
                logits,
                table=self.table,
                splits=self.splits,
                sigma=self.sigma,
                range_sigma=self.range_sigma,
                image=image,
            )
        classes = labels.cpu().numpy().astype(np.int32) + 1
        classes[~valid] = 0
        self.seconds["network"] += t1 - t0
        self.seconds["classify"] += time.perf_counter() - t1
        return classes, 0

    def place(
        self, tile: Tile, labels: Labels, image: npt.NDArray[np.float32], iterations: int
    ) -> Labels:
        return labels

    def final_merge(self) -> npt.NDArray[np.int64] | None:
        return None


class UniformLabeler:
    """Either mode on a scene the network would see as constant (every band's stretch
    is flat): nothing to segment, so one class and no training. A network would only
    tell the frame and corners of its zero padding apart."""

    summary: dict[str, Any] = {"iterations": 0, "uniform": True}  # noqa: RUF012

    def compute(
        self, image: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_]
    ) -> tuple[Labels, int]:
        return valid.astype(np.int32), 0

    def place(
        self, tile: Tile, labels: Labels, image: npt.NDArray[np.float32], iterations: int
    ) -> Labels:
        return labels

    def final_merge(self) -> npt.NDArray[np.int64] | None:
        return None


class TileLabeler:
    """Tile mode: every tile trained on its own, then aligned to scene classes; with
    ``segment.n_classes`` the scene classes are finally merged to that many."""

    def __init__(
        self, config: Config, *, outdir: Path | None = None, progress: Progress | None = None
    ) -> None:
        self.config, self.outdir, self.progress = config, outdir, progress
        self.aligner = TileAligner(
            min_vote_share=config.stitch.min_vote_share,
            max_vote_distance=config.stitch.max_vote_distance,
            max_feature_distance=config.stitch.max_feature_distance,
        )
        self.iterations: list[int] = []
        self.summary = {"tiles_trained": self.iterations}

    def compute(
        self, image: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_]
    ) -> tuple[Labels, int]:
        first = self.outdir is not None and not self.iterations  # the grid's first tile
        animation = _animation(self.config) if first else None
        result = segment_channels(
            image,
            self.config.segment.params(),
            valid=valid,
            seed=self.config.runtime.seed,
            device=self.config.runtime.device,
            progress=self.progress,
            snapshot_at=animation.iterations if animation is not None else (),
            on_snapshot=animation,
        )
        if animation is not None and self.outdir is not None:
            frames = animation.frames(stopped_at=result.n_iterations)
            write_gif(self.outdir / ANIMATION, frames)
        return result.labels, result.n_iterations

    def place(
        self, tile: Tile, labels: Labels, image: npt.NDArray[np.float32], iterations: int
    ) -> Labels:
        self.iterations.append(iterations)
        return self.aligner.align(tile, labels, image)

    def final_merge(self) -> npt.NDArray[np.int64] | None:
        n_classes = self.config.segment.params().n_classes
        return None if n_classes is None else self.aligner.merge_to(n_classes)


def _train(
    config: Config,
    prepared: Prepared,
    outdir: Path | None,
    progress: Progress | None,
    scribbles: Scribbles | None = None,
) -> dict[str, Any]:
    """Scene mode's network, trained on crops from the whole scene, with its merge table
    (with ``scribbles``: their classes, :func:`geoseg.segment.merge.scribble_map`)."""
    params = config.segment.params()
    crops = training_crops(config, prepared, scribbles)
    images, valids = zip(*(prepared.read(window) for window in crops), strict=True)
    drop_local_blocks(prepared.reader)  # the crops' blocks, before training's peak
    release_memory()  # and what the statistics and the crops freed
    animation = _animation(config) if outdir is not None else None
    strokes = None if scribbles is None else np.stack([scribbles.window(w) for w in crops])
    fitted = fit(
        *training_views(list(images), list(valids), params),
        params,
        scribbles=strokes,
        seed=config.runtime.seed,
        device=config.runtime.device,
        progress=progress,
        snapshot_at=animation.iterations if animation is not None else (),
        on_snapshot=animation,
    )
    if animation is not None and outdir is not None:
        write_gif(outdir / ANIMATION, animation.frames(stopped_at=fitted.n_iterations))
    bfloat16 = config.runtime.precision == "bfloat16"
    views = merge_views(crops, params, prepared.info.height, prepared.info.width)
    if views != crops:  # the ground scale's windows are wider than the crops
        images, valids = zip(*(prepared.read(window) for window in views), strict=True)
    classifier = None
    if scribbles is None:
        classes = _crop_merge(fitted.model, fitted.device, images, valids, params, bfloat16)
    else:
        logits = _predict_views(fitted.model, fitted.device, images, bfloat16)
        classes = scribble_map(logits, np.stack(valids), len(scribbles.names), params)
        if params.scribbles_only and params.scribble_context:
            classifier = _fit_strokes(fitted.model, fitted.device, config, prepared, scribbles,
                                      classes.table, bfloat16)  # fmt: skip
    return {
        "model": fitted.model.to("cpu"),
        "in_bands": int(images[0].shape[0]),
        "crops": [[int(w.col_off), int(w.row_off), int(w.width), int(w.height)] for w in crops],
        "iterations": fitted.n_iterations,
        "warm_start": fitted.warm_start,
        "labels_at_stop": fitted.n_labels,
        "merge": None if classes is None else classes.table.tolist(),
        "splits": [
            {**asdict(split), "normal": list(split.normal)}
            for split in (classes.splits if classes is not None else ())
        ],
        "tree": [list(pair) for pair in (classes.tree if classes is not None else ())],
        "scribbled": [] if scribbles is None else list(scribbles.names),
        "strokes": None if classifier is None else classifier.to_dict(),
    }


def _fit_strokes(
    model: torch.nn.Module,
    device: torch.device,
    config: Config,
    prepared: Prepared,
    scribbles: Scribbles,
    table: npt.NDArray[np.int64],
    bfloat16: bool,
) -> StrokeClassifier:
    """The stroke classifier (:mod:`geoseg.segment.strokes`) of the scribbled pixels,
    their features measured in the tiles the scene is labelled in (each pixel in the
    tile whose core holds it), so that they are the features the tiles then classify.
    Every scribbled pixel lies on data (:func:`geoseg.io.scribbles.on_data`)."""
    params = config.segment.params()
    channels = [int(c) for c in np.flatnonzero(table >= 0)]
    reach = smooth_radius(params.smooth_sigma, params.smooth_range)
    net = for_inference(model)
    info, tiling = prepared.info, config.tiling
    features, classes, where = [], [], []
    for tile in tile_grid(info.height, info.width, tile_size=tiling.tile_size,
                          overlap=tiling.overlap):  # fmt: skip
        drawn = scribbles.window(tile.core)
        if not (drawn >= 0).any():
            continue
        image, _ = prepared.read(tile.read)
        core_rows, core_cols = tile.core_in_read
        rows, cols = np.nonzero(drawn >= 0)  # in the core
        logits = predict(net, image, device=device, bfloat16=bfloat16)
        tile_features = stroke_features(logits, image, channels, reach)
        features.append(
            tile_features[:, rows + core_rows.start, cols + core_cols.start].T.cpu().numpy()
        )
        classes.append(drawn[rows, cols])
        where.append((rows + int(tile.core.row_off)) * info.width + cols + int(tile.core.col_off))
    order = np.argsort(np.concatenate(where), kind="stable")  # the same order at any tiling
    return fit_strokes(
        np.concatenate(features)[order],
        np.concatenate(classes)[order],
        len(scribbles.names),
        channels,
        reach,
        seed=config.runtime.seed,
    )


MERGE_VIEW_PIXELS = 1 << 20
"""At most about this many pixels in the views the scene's merges are measured on."""


def merge_views(
    crops: Sequence[Window], params: SegmentParams, height: int, width: int
) -> list[Window]:
    """The windows the scene's class merges are measured on: the training crops, or
    where the ground scale's windows (``params.mix_radius``) are wider than a quarter
    of a crop, windows of ``4 mix_radius + 1`` px centred on the first crops (moved
    inside the scene), as many as hold :data:`MERGE_VIEW_PIXELS`: a class's share of
    its windows is then measured on ground around it, not on a crop's edges.

    >>> crops = [Window(0, 0, 128, 128), Window(500, 500, 128, 128)]
    >>> from geoseg.segment.params import PRESETS
    >>> merge_views(crops, PRESETS["default"], 1000, 1000) == crops
    True
    >>> views = merge_views(crops, PRESETS["default"].replace(mix_radius=50), 1000, 1000)
    >>> [(w.col_off, w.row_off, w.width, w.height) for w in views]
    [(0, 0, 201, 201), (464, 464, 201, 201)]
    """
    side = 4 * params.mix_radius + 1
    if not crops or side <= params.crop_size:
        return list(crops)
    rows, cols = min(side, height), min(side, width)
    count = max(1, min(len(crops), MERGE_VIEW_PIXELS // (rows * cols)))
    views = []
    for crop in crops[:count]:
        centre_row = int(crop.row_off) + int(crop.height) // 2
        centre_col = int(crop.col_off) + int(crop.width) // 2
        row = min(max(0, centre_row - rows // 2), height - rows)
        col = min(max(0, centre_col - cols // 2), width - cols)
        views.append(Window(col, row, cols, rows))
    return views


def _crop_merge(
    model: torch.nn.Module,
    device: torch.device,
    images: Sequence[npt.NDArray[np.float32]],
    valids: Sequence[npt.NDArray[np.bool_]],
    params: SegmentParams,
    bfloat16: bool,
) -> ClassMap | None:
    """Scene mode's class map (merge table and splits), from the trained network's classes on the
    full-resolution training crops (one decision for the whole scene), predicted as the
    tiles are (``runtime.precision``)."""
    if not params.merges:  # spare predicting the crops
        return None
    logits = _predict_views(model, device, images, bfloat16)
    return merge_for(logits, np.stack(images), np.stack(valids), params)


def _predict_views(
    model: torch.nn.Module,
    device: torch.device,
    images: Sequence[npt.NDArray[np.float32]],
    bfloat16: bool,
) -> torch.Tensor:
    """The network's class logits ``(N, C, H, W)`` on views, predicted as tiles are."""
    return torch.stack(
        [predict(model, image, device=device, bfloat16=bfloat16) for image in images]
    )


def _animation(config: Config) -> TrainingAnimation | None:
    snapshots = config.output.snapshots
    return TrainingAnimation(snapshots) if snapshots else None
