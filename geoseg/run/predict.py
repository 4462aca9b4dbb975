"""The predict stage of a run: every tile labelled and its core written into
``labels.tif`` (renumbered ``1..K`` by area by :class:`geoseg.io.labels.LabelWriter`),
then, with ``stitch.refine``, the superpixel vote over the written labels
(:func:`geoseg.stitch.superpixel_vote`), renumbered by area again."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Sequence
from pathlib import Path

from geoseg.config import Config
from geoseg.io.labels import LabelWriter
from geoseg.io.raster_read import SceneReader
from geoseg.io.raster_write import LocalCopy
from geoseg.run.labelers import Labeler
from geoseg.run.prepare import Prepared
from geoseg.run.scratch import Scratch
from geoseg.stitch import superpixel_vote
from geoseg.tiling import Tile, blocks
from geoseg.types import Progress, StageProgress

__all__ = ["label_tiles"]


def label_tiles(
    path: Path,
    tiles: list[Tile],
    prepared: Prepared,
    labeler: Labeler,
    scratch: Scratch,
    config: Config,
    progress: StageProgress | None,
    profile: dict[str, float],
    copy: LocalCopy | None = None,
    names: Sequence[str] = (),
    *,
    vote_progress: Progress | None = None,
) -> tuple[int, list[int]]:
    """Every tile's core into ``labels.tif``; tiles without valid pixels skipped.
    Returns the number skipped and the raw id of each class ``1..K``; ``profile``
    receives the seconds of each part (:attr:`geoseg.run.scene.RunResult.profile`).
    With ``copy`` every core read is kept there, and the vote reads it. The scribbled
    classes (``names``, raw ids ``1..S``) keep their ids. ``progress`` follows the
    tiles (stage ``predict``), ``vote_progress`` the vote's blocks."""
    skipped = 0
    clock = time.perf_counter
    spent = dict.fromkeys(("read", "label", "write", "close"), 0.0)
    with contextlib.ExitStack() as stack:
        writer = stack.enter_context(LabelWriter(path, prepared.info, keep=len(names), names=names))
        if copy is not None:
            stack.enter_context(copy)
        for done, tile in enumerate(tiles, start=1):
            t0 = clock()
            data, valid = prepared.reader.read(tile.read)
            rows, cols = tile.core_in_read
            if copy is not None:
                copy.write(tile.core, data[:, rows, cols], valid[rows, cols])
            image = prepared.stretch(data, valid)
            t1 = clock()
            spent["read"] += t1 - t0
            if not valid[rows, cols].any():
                skipped += 1
            else:
                raw, n = scratch.tile(tile, functools.partial(labeler.compute, image, valid))
                placed = labeler.place(tile, raw, image, n)[rows, cols]
                t2 = clock()
                writer.write(tile.core, placed)
                spent["label"] += t2 - t1
                spent["write"] += clock() - t2
            if progress is not None:
                progress("predict", done, len(tiles))
        t0 = clock()
        writer.close(merge=labeler.final_merge())
        spent["close"] = clock() - t0
    parts = getattr(labeler, "seconds", None)  # scene mode splits the labelling
    if parts and sum(parts.values()) > 0:
        spent.pop("label")
        spent.update(parts)
    profile.update({f"predict.{name}": seconds for name, seconds in spent.items()})
    if not config.stitch.refine:
        return skipped, writer.classes
    with contextlib.ExitStack() as stack:
        if copy is not None:
            prepared = prepared.reading(stack.enter_context(SceneReader(copy.path)))
        voted = _vote(path, prepared, config, vote_progress, names)
    return skipped, [writer.classes[k - 1] for k in voted]


def _vote(
    path: Path,
    prepared: Prepared,
    config: Config,
    progress: Progress | None,
    names: Sequence[str] = (),
) -> list[int]:
    """``stitch.refine``: the superpixel vote, a pass of its own over the written labels
    (:func:`geoseg.stitch.superpixel_vote`), renumbered by area again. Returns, for each
    new class, its id before the vote."""
    info = prepared.info
    block, margin = config.stitch.refine_block, config.stitch.refine_margin
    total = sum(1 for _ in blocks(info.height, info.width, block, margin=margin))
    # the reader closes first; the writer then renames its COG over the file read
    with (
        LabelWriter(path, info, keep=len(names), names=names) as writer,
        SceneReader(path, bands=[1]) as labels,
    ):
        for done, (window, voted) in enumerate(superpixel_vote(
            lambda window: labels.read(window)[0][0],
            read_image=prepared.read,
            shape=(info.height, info.width),
            params=config.segment.params(),
            block=block,
            margin=margin,
        ), start=1):  # fmt: skip
            writer.write(window, voted)
            if progress is not None:
                progress(done, total)
    return writer.classes
