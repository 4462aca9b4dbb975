"""A run's class hierarchy: its merge tree in ``labels.tif``'s ids, and cuts of it.

Scene mode's classes come with a merge tree (:func:`geoseg.segment.merge.merge_tree`):
Ward's rule on the classes' prototypes over the training crops (class probabilities,
band means and texture), decided once per scene like the classes themselves, carried on
down to one class. ``run.yaml`` keeps it as ``classes.tree`` in ``labels.tif``'s ids
(:func:`labels_tree`), so that :func:`reclass_run` (``geoseg reclass RUN --classes
K``) gives fewer, coarser classes without training again: each new class is a union of
the run's classes, numbered ``1..K`` by area again. The tree does not depend on the
tiling, so neither does a cut of it.

A cut is not the same as a fresh ``--classes K`` run: that one trains without the
decorrelation stretch, joins classes along weak edges first and may split classes;
a cut only joins the run's classes, in the order of the tree.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from geoseg.errors import InputError, OutputError

__all__ = ["ReclassResult", "cut_tree", "labels_tree", "reclass_run"]

logger = logging.getLogger(__name__)


def labels_tree(
    tree: Sequence[Sequence[int]], source_ids: Sequence[int], *, offset: int = 1
) -> list[list[int]]:
    """A merge tree of class ids (``raw = id + offset``, as the network's channels are
    numbered in the raw labels) as merges of ``labels.tif``'s ids ``1..K``
    (``source_ids[k - 1]``: the raw id of class ``k``). Classes of the tree that the
    scene has not (the crops saw them, no tile kept them) drop out: a merge is kept
    when both of its groups hold a class of the scene, named by their smallest id
    (the largest class).

    >>> labels_tree([[0, 3], [0, 1], [0, 2]], source_ids=[1, 2, 4])  # channel 2 absent
    [[1, 3], [1, 2]]
    """
    final = {raw: k for k, raw in enumerate(source_ids, start=1)}
    parent: dict[int, int] = {}
    smallest: dict[int, int] = {}  # a group's root -> its smallest labels.tif id (0: none)

    def root(raw: int) -> int:
        while parent.get(raw, raw) != raw:
            raw = parent[raw]
        return raw

    out = []
    for keep, drop in tree:
        a, b = root(int(keep) + offset), root(int(drop) + offset)
        if a == b:
            continue
        ids = [smallest.get(r, final.get(r, 0)) for r in (a, b)]
        if all(ids):
            out.append(sorted(ids))
        parent[b] = a
        smallest[a] = min((i for i in ids if i), default=0)
    return out


def cut_tree(tree: Sequence[Sequence[int]], count: int, n_classes: int) -> npt.NDArray[np.int64]:
    """Table ``old id -> group`` (``0 -> 0``, nodata) of ``count`` classes joined by the
    first merges of ``tree`` until ``n_classes`` groups are left; a group is named by
    its smallest old id.

    >>> cut_tree([[1, 3], [1, 2]], 3, 2).tolist()
    [0, 1, 2, 1]
    """
    if not 1 <= n_classes <= count:
        raise InputError(f"--classes {n_classes} must lie in 1..{count} (the run's classes)")
    if len(tree) < count - n_classes:
        raise InputError(
            f"the run's class tree joins {len(tree) + 1 if tree else 0} classes, not "
            f"{count}; it cannot be cut to {n_classes}"
        )
    table = np.arange(count + 1)
    for a, b in tree[: count - n_classes]:
        low, high = sorted((int(table[a]), int(table[b])))
        table[table == high] = low
    return table


@dataclass(frozen=True, slots=True)
class ReclassResult:
    """What :func:`reclass_run` wrote."""

    labels: Path
    vector: Path | None
    n_classes: int
    n_features: int


def reclass_run(
    run_dir: str | Path, n_classes: int, outdir: str | Path | None = None
) -> ReclassResult:
    """Cut the class tree of the finished run in ``run_dir`` to ``n_classes`` classes:
    ``labels.tif`` (classes ``1..n_classes`` by area, as a run numbers them) and, when
    the run wrote one, its vector layer (band statistics from the run's scene when it is
    still there), into ``outdir`` (default ``RUN/classes_<n>``). The run is only read,
    under its folder's lock (:class:`geoseg.run.folder.OutdirLock`)."""
    from geoseg.run.folder import OutdirLock
    from geoseg.run.record import RECORD

    run_dir = Path(run_dir)
    if not (run_dir / RECORD).is_file():
        raise InputError(f"{run_dir}: not a finished geoseg run (no {RECORD}); give a run's folder")
    # no run may publish into it meanwhile (a folder we cannot write, no run of ours can)
    lock = OutdirLock.acquire(run_dir) if os.access(run_dir, os.W_OK) else None
    try:
        return _reclass(run_dir, n_classes, outdir)
    finally:
        if lock is not None:
            lock.release()


def _reclass(run_dir: Path, n_classes: int, outdir: str | Path | None) -> ReclassResult:
    from geoseg.config import Config
    from geoseg.io.labels import LabelWriter
    from geoseg.io.raster_read import SceneReader
    from geoseg.io.source import as_source, is_remote
    from geoseg.run.products import vectorize_labels
    from geoseg.run.record import RECORD, RunRecord
    from geoseg.tiling import blocks

    try:
        record = RunRecord.read(run_dir / RECORD)
    except OSError as err:
        raise InputError(f"{run_dir}: not a finished geoseg run (no readable {RECORD})") from err
    except ValueError as err:
        raise InputError(
            f"{run_dir / RECORD}: not a geoseg run record; give a run's folder"
        ) from err
    classes = record.classes
    if not classes.tree and classes.count > 1:
        raise InputError(
            f"{run_dir}: this run has no class tree (tile mode, scribbled classes, a preset "
            "without class merging, or an older geoseg); run again with --classes K"
        )
    table = cut_tree(classes.tree, classes.count, n_classes)
    out = Path(outdir) if outdir is not None else run_dir / f"classes_{n_classes}"
    if not out.parent.is_dir():
        raise OutputError(f"{out.parent}: does not exist; create it first or choose another -o")
    out.mkdir(exist_ok=True)
    config = Config.model_validate(record.config)
    labels_path = out / "labels.tif"
    with (
        SceneReader(run_dir / "labels.tif") as source,
        LabelWriter(labels_path, source.info) as writer,
    ):
        for core, _ in blocks(source.info.height, source.info.width, 1024):
            ids, _ = source.read(core)
            writer.write(core, table[np.minimum(ids[0], classes.count)])
    vector = None
    features = 0
    if record.vector is not None:
        vector = out / Path(record.vector.path).name
        scene = as_source(record.scene)
        present = is_remote(scene) or Path(scene).exists()
        if not present:
            logger.warning("%s: the run's scene is gone; polygons without band statistics", scene)
        product = vectorize_labels(labels_path, vector, config, scene=scene if present else None)
        features = product.features
    return ReclassResult(labels_path, vector, len(writer.classes), features)
