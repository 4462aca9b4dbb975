"""The run record, ``run.yaml``: what a run did, written last as its completion mark.

:class:`RunRecord` is frozen and typed; report, batch and the CLI read its fields, so a
misspelt key is an error, not a silent default. ``to_dict`` gives the YAML layout (the
order of the keys is the order of the fields), :meth:`RunRecord.read` the reverse, and
:func:`completed` says whether a folder holds a finished run of a given configuration.

    >>> record = RunRecord(
    ...     scene="a.tif", grid={}, normalize={}, training={}, config={},
    ...     tiles=TileCounts(4, 0, 0), classes=ClassSummary(3, [7, 2, 5], "network"),
    ... )
    >>> RunRecord.from_dict(record.to_dict()) == record
    True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from geoseg.config import YAML_MAX_BYTES, Config, read_yaml
from geoseg.io.output import atomic_path

__all__ = [
    "RECORD",
    "ClassSummary",
    "RunRecord",
    "TileCounts",
    "VectorSummary",
    "completed",
    "read_record_data",
    "versions",
]

RECORD = "run.yaml"
"""The run record, written last: a scene's outputs are complete when it is there."""


@dataclass(frozen=True, slots=True)
class TileCounts:
    """Tiles of the grid, those skipped (all nodata) and those resumed from scratch."""

    total: int
    skipped_nodata: int
    resumed: int


@dataclass(frozen=True, slots=True)
class ClassSummary:
    """The ``count`` classes of labels.tif (ids ``1..count`` by decreasing area), the
    id each had before renumbering (``source_ids[k - 1]``, meaning ``source``) and the
    classes' merge tree in labels.tif's ids (``[a, b]``: the groups of ``a`` and ``b``
    join; ``count - 1`` of them, none without one; :mod:`geoseg.run.reclass`)."""

    count: int
    source_ids: list[int]
    source: str
    tree: list[list[int]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    """With scribbles: ``names[k - 1]`` names class ``k`` (the scribbled classes come
    first, in order of first appearance in the scribble layer's field)."""


@dataclass(frozen=True, slots=True)
class VectorSummary:
    """The vector layer written: its path and number of polygons."""

    path: str
    features: int


@dataclass(frozen=True, slots=True)
class RunRecord:
    """What ``run.yaml`` holds (``grid``, ``normalize`` and ``training`` as written by
    the stages that made them; ``training`` differs between scene and tile mode)."""

    scene: str
    grid: dict[str, Any]
    normalize: dict[str, Any]
    training: dict[str, Any]
    config: dict[str, Any]
    tiles: TileCounts
    classes: ClassSummary
    distributed_tiles: int | None = None
    vector: VectorSummary | None = None
    timings_s: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    network: dict[str, int] | None = None
    """A remote scene: GDAL's requests and downloaded bytes during the run."""

    def to_dict(self) -> dict[str, Any]:
        """Plain data in run.yaml's layout; optional parts left out when absent."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in ("tiles", "classes", "vector"):
            if data[name] is not None:
                data[name] = dataclasses.asdict(data[name])
        order = ("scene", "grid", "normalize", "training", "distributed_tiles", "vector")
        data = {k: data[k] for k in order} | {k: v for k, v in data.items() if k not in order}
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """The record of ``data`` (as :meth:`to_dict` gives); raises ``KeyError`` or
        ``TypeError`` when a part is missing or unknown."""
        parts = dict(data)
        parts["tiles"] = TileCounts(**parts["tiles"])
        parts["classes"] = ClassSummary(**parts["classes"])
        if parts.get("vector") is not None:
            parts["vector"] = VectorSummary(**parts["vector"])
        return cls(**parts)

    @classmethod
    def read(cls, path: str | Path) -> RunRecord:
        """The record in ``path``; ``ValueError`` when it is not one."""
        try:
            return cls.from_dict(read_record_data(path))
        except (KeyError, TypeError, AttributeError, ValueError, yaml.YAMLError) as err:
            raise ValueError(f"{path}: not a geoseg run record ({str(err)[:200]})") from err

    def write(self, path: str | Path) -> None:
        """Write ``path`` under a temporary name, renamed when whole."""
        with atomic_path(Path(path)) as tmp:
            tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


def read_record_data(path: str | Path) -> Any:
    """The YAML of a record file, read as untrusted text: at most
    :data:`geoseg.config.YAML_MAX_BYTES`, with the config loader's bounds on nesting and
    aliases (:func:`geoseg.config.read_yaml`); ``ValueError`` or ``yaml.YAMLError``
    otherwise (``OSError`` when it cannot be read)."""
    with Path(path).open("rb") as handle:
        raw = handle.read(YAML_MAX_BYTES + 1)
    if len(raw) > YAML_MAX_BYTES:
        raise ValueError(f"larger than {YAML_MAX_BYTES} bytes")
    return read_yaml(raw.decode())


def completed(outdir: str | Path, config: Config) -> RunRecord | None:
    """The record of a finished run in ``outdir`` with exactly this configuration (its
    record, written last, names this config and every output it lists exists), else
    ``None``."""
    try:
        record = RunRecord.read(Path(outdir) / RECORD)
        same = Config.model_validate(record.config) == config
    except (OSError, ValueError):
        return None
    outputs = [Path(outdir) / name for name in record.outputs]
    return record if same and all(p.exists() for p in outputs) else None


def versions() -> dict[str, str]:
    """The versions that made a run: geoseg, Python, PyTorch, NumPy, rasterio, GDAL."""
    import platform
    import warnings

    import numpy as np
    import rasterio
    import torch

    from geoseg import __version__

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gdal = rasterio.__gdal_version__
    found = {
        "geoseg": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "rasterio": rasterio.__version__,
        "gdal": gdal,
    }
    return {name: str(value) for name, value in found.items()}
