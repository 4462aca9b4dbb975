"""SegmentParams seen from the config schema: each parameter's pydantic field (its
default, bounds and description, all taken from :class:`SegmentParams`) and the one-line
message of a value out of bounds, in SegmentParams' words.

>>> param_docs()["lr"]
'``"sgd"`` (with ``momentum``) or ``"adam"`` and the learning rate.'
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import Field, ValidationError

from geoseg.errors import ConfigError
from geoseg.segment.params import BOUND_KEYS, SegmentParams

__all__ = ["bound_message", "param_docs", "param_fields"]


def param_docs() -> dict[str, str]:
    """Per-field descriptions from the numpydoc ``Parameters`` section of SegmentParams."""
    docs: dict[str, str] = {}
    names: list[str] = []
    for line in (SegmentParams.__doc__ or "").splitlines():
        if re.fullmatch(r"    [a-z_]+(, [a-z_]+)*", line):
            names = line.strip().split(", ")
        elif line.startswith("        ") and names:
            for name in names:
                docs[name] = f"{docs.get(name, '')} {line.strip()}".strip()
    return docs


_BOUND_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})


def bound_message(error: ValidationError, values: Mapping[str, Any]) -> str | None:
    """:class:`SegmentParams`'s message for ``values`` when every problem pydantic found
    is a parameter out of its bounds (the schema's bounds are SegmentParams'), else
    ``None``: other problems keep pydantic's messages."""
    problems = error.errors(include_url=False)
    names = {f.name: f for f in dataclasses.fields(SegmentParams)}
    if not all(p["type"] in _BOUND_ERRORS and p["loc"][0] in names for p in problems):
        return None
    hints = typing.get_type_hints(SegmentParams)
    kept = {name: _as(hints[name], value) for name, value in values.items() if name in names}
    try:
        SegmentParams(**kept)
    except ConfigError as err:
        return str(err)
    except TypeError:
        return None
    return None


def _as(hint: Any, value: Any) -> Any:
    """``value`` as pydantic reads it for a parameter of type ``hint`` (``-1`` as
    ``-1.0`` for a float), so the message shows what was checked."""
    if hint is float and type(value) is int:
        return float(value)
    if hint is int and type(value) is float and value.is_integer():
        return int(value)
    return value


def param_fields() -> dict[str, tuple[Any, Any]]:
    """``{name: (type, pydantic Field)}`` for every SegmentParams parameter: its default,
    its bounds (a bound naming another parameter is left to SegmentParams) and its
    description."""
    hints = typing.get_type_hints(SegmentParams)
    docs = param_docs()
    fields = {}
    for f in dataclasses.fields(SegmentParams):
        bounds = {k: v for k, v in f.metadata.items() if k in BOUND_KEYS and not isinstance(v, str)}
        fields[f.name] = (
            hints[f.name],
            Field(default=f.default, description=docs.get(f.name), **bounds),
        )
    return fields
