"""The resume store: what an interrupted run already finished, kept for the next one."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from geoseg.config import Config
from geoseg.io.raster import Source, atomic_path
from geoseg.tiling import Tile

__all__ = ["Scratch"]


class Scratch:
    """``<root>/<key>/`` (``root``: the run folder's ``scratch``,
    :class:`geoseg.run.folder.RunFolder`): the trained network (scene mode) and each
    tile's labels before stitching.

    Every file is written under a temporary name and renamed, so a run killed at any
    point (even ``kill -9``) leaves only whole files. The key hashes the scene (path,
    size, modification time) and the resolved config: a changed setting starts afresh.
    A successful run removes the folder.
    """

    def __init__(self, root: Path, scene: Source, config: Config) -> None:
        identity: dict[str, Any] = {"config": config.model_dump(mode="json")}
        if isinstance(scene, Path):
            stat = scene.stat()
            identity |= {"scene": str(scene.resolve()), "size": stat.st_size,
                         "mtime_ns": stat.st_mtime_ns}  # fmt: skip
        else:  # a remote scene: its URL (a changed object under one URL is not seen)
            identity["scene"] = scene
        key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
        self.root = root
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
        """The saved network and its training summary, ``None`` when there is none."""
        import torch

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
        import torch

        self._save(self.dir / "model.pt", lambda tmp: torch.save(saved, tmp))

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _save(self, path: Path, write: Callable[[Path], None]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            write(tmp)
