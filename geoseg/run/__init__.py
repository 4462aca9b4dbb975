"""A run of one scene, one step per module:

- :mod:`~geoseg.run.prepare`: the scene opened as configured, statistics, the stretched
  reader, training crops, the output folder;
- :mod:`~geoseg.run.labelers`: scene mode and tile mode behind one ``Labeler``;
- :mod:`~geoseg.run.predict`: the tiles' labels into ``labels.tif``, then the vote;
- :mod:`~geoseg.run.scratch`: the resume store;
- :mod:`~geoseg.run.distribute`: tiles on a Dask cluster;
- :mod:`~geoseg.run.products`: vector layer and quicklook;
- :mod:`~geoseg.run.record`: ``run.yaml`` as a typed ``RunRecord``;
- :mod:`~geoseg.run.scene`: :func:`run_scene`, composing them.

The names below are imported on first use, so that reading a record does not load
PyTorch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from geoseg.run.products import VectorProduct, vectorize_labels
    from geoseg.run.record import RECORD, RunRecord, completed
    from geoseg.run.scene import RunResult, run_scene

__all__ = [
    "RECORD",
    "RunRecord",
    "RunResult",
    "VectorProduct",
    "completed",
    "run_scene",
    "vectorize_labels",
]

_HOME = {
    "RECORD": "record",
    "RunRecord": "record",
    "completed": "record",
    "RunResult": "scene",
    "run_scene": "scene",
    "VectorProduct": "products",
    "vectorize_labels": "products",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"geoseg.run.{_HOME[name]}"), name)
    raise AttributeError(f"module 'geoseg.run' has no attribute {name!r}")
