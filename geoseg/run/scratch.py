"""The resume store: what an interrupted run already finished, kept for the next one."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from geoseg.config import Config
from geoseg.io.output import atomic_path, no_link
from geoseg.io.source import Source
from geoseg.tiling import Tile

__all__ = ["Scratch"]

logger = logging.getLogger(__name__)

MODEL = "model.pt"
"""The trained network: tensors and plain values only (no pickled objects)."""


class Scratch:
    """``<root>/<key>/`` (``root``: the run folder's ``scratch``,
    :class:`geoseg.run.folder.RunFolder`): the trained network (scene mode) and each
    tile's labels before stitching.

    Every file is written under a temporary name and renamed, so a run killed at any
    point (even ``kill -9``) leaves only whole files. The key hashes the scene (path,
    size, modification time), the scribble file's size and modification time and the
    resolved config: a changed setting starts afresh.
    A successful run removes the folder.

    What is read back is data, never code: tiles are ``.npz`` arrays read without
    pickles, the network its weights (``torch.load(weights_only=True)``), rebuilt from
    the run's config and checked against the key it was saved with; anything else is
    discarded with a warning and computed again.
    """

    def __init__(self, root: Path, scene: Source, config: Config) -> None:
        identity: dict[str, Any] = {"config": config.model_dump(mode="json")}
        if isinstance(scene, Path):
            stat = scene.stat()
            identity |= {"scene": str(scene.resolve()), "size": stat.st_size,
                         "mtime_ns": stat.st_mtime_ns}  # fmt: skip
        else:  # a remote scene: its URL (a changed object under one URL is not seen)
            identity["scene"] = scene
        strokes = config.segment.scribbles
        if strokes is not None and Path(strokes).exists():  # redrawn strokes: train again
            stat = Path(strokes).stat()
            identity["scribbles"] = [stat.st_size, stat.st_mtime_ns]
        key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
        self.key = key
        self.root = root
        self.dir = self.root / key
        self.resumed = 0
        self.config = config
        logger.debug("resume store: %s", self.dir)
        no_link(self.dir)  # never written through: the files would land elsewhere

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
        """The saved network (rebuilt, in ``"model"``) and its training summary,
        ``None`` when there is none or it is not one this run saved (then removed)."""
        import torch

        path = self.dir / MODEL
        if not path.exists():
            return None
        try:
            saved = torch.load(path, weights_only=True, map_location="cpu")
            return self._rebuild(saved)
        except Exception as err:  # a torn, foreign or planted file: train again
            logger.warning("%s: not a network this run saved (%s); training again",
                           path, str(err)[:120])  # fmt: skip
            path.unlink(missing_ok=True)
            return None

    def save_model(self, saved: dict[str, Any]) -> None:
        """Save ``saved`` (``"model"`` a network of :func:`geoseg.segment.model.build_model`,
        ``"in_bands"`` its input bands, the rest plain values) as tensors and values."""
        import torch

        from geoseg.segment.model import Decorrelate

        model = saved["model"]
        data = {k: v for k, v in saved.items() if k != "model"}
        data |= {"key": self.key, "state": {k: v.cpu() for k, v in model.state_dict().items()},
                 "decorrelate": isinstance(model[0], Decorrelate)}  # fmt: skip
        self._save(self.dir / MODEL, lambda tmp: torch.save(data, tmp))

    def _rebuild(self, saved: Any) -> dict[str, Any]:
        """The network of ``saved`` (as :meth:`save_model` wrote it) under this run's
        config; ``ValueError`` when anything does not fit."""
        import torch

        from geoseg.segment.model import Decorrelate, build_model

        if not isinstance(saved, dict) or saved.get("key") != self.key:
            raise ValueError("saved for another scene or configuration")
        bands = saved.get("in_bands")
        if not isinstance(bands, int) or not 0 < bands <= 1024:
            raise ValueError(f"in_bands={str(bands)[:20]}")
        decorrelate = Decorrelate(torch.eye(bands), torch.zeros(bands)) if saved.get(
            "decorrelate") else None  # fmt: skip
        model = build_model(bands, self.config.segment.params(), decorrelate=decorrelate)
        model.load_state_dict(saved["state"], strict=True)
        _check_summary(saved)
        return {k: v for k, v in saved.items() if k not in ("state", "key", "decorrelate")} | {
            "model": model.eval()
        }

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _save(self, path: Path, write: Callable[[Path], None]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            write(tmp)


def _check_summary(saved: dict[str, Any]) -> None:
    """The plain values a scene labeler reads from a saved network have their types."""
    crops, merge, splits = saved.get("crops"), saved.get("merge"), saved.get("splits", [])
    tree, names = saved.get("tree", []), saved.get("scribbled", [])
    strokes = saved.get("strokes")
    ok = (
        (strokes is None or _is_stroke_classifier(strokes))
        and isinstance(names, list)
        and all(isinstance(n, str) for n in names)
        and isinstance(crops, list)
        and all(isinstance(c, list) and all(isinstance(v, int) for v in c) for c in crops)
        and isinstance(saved.get("iterations"), int)
        and isinstance(saved.get("labels_at_stop"), int)
        and (merge is None or (isinstance(merge, list) and all(isinstance(v, int) for v in merge)))
        and isinstance(tree, list)
        and all(
            isinstance(t, list) and len(t) == 2 and all(isinstance(v, int) for v in t) for t in tree
        )
        and isinstance(splits, list)
        and all(
            isinstance(s, dict) and {"source", "target", "normal", "offset"} <= set(s)
            for s in splits
        )
    )
    if not ok:
        raise ValueError("its training summary is not one geoseg writes")
    if strokes is not None:  # its shapes fit the bands (ValueError if not)
        from geoseg.segment.strokes import StrokeClassifier

        StrokeClassifier.from_dict(strokes, saved["in_bands"])


def _is_stroke_classifier(saved: Any) -> bool:
    """Whether ``saved`` has the plain values of a stroke classifier's ``to_dict()``."""
    if not isinstance(saved, dict) or set(saved) != {"weights", "bias", "channels", "reach"}:
        return False
    weights, bias, channels = saved["weights"], saved["bias"], saved["channels"]
    return (
        isinstance(weights, list)
        and all(isinstance(w, list) and all(isinstance(v, float) for v in w) for w in weights)
        and isinstance(bias, list)
        and all(isinstance(v, float) for v in bias)
        and isinstance(channels, list)
        and all(isinstance(v, int) for v in channels)
        and isinstance(saved["reach"], int)
    )
