"""The run configuration: one typed model (its sections in :mod:`geoseg.sections`), YAML
loading and ``section.key=value`` overrides.

Values are resolved in this order, later wins: the defaults, the preset named by
``segment.preset``, the YAML file, then command-line overrides. Unknown keys and bad
values raise :class:`~geoseg.errors.ConfigError` with the key's path, the bad value,
what is allowed and, for a misspelt key, the closest known one.

>>> config = resolve_config(overrides=["segment.max_iterations=32", "tiling.tile_size=256"])
>>> config.segment.max_iterations, config.tiling.tile_size, config.segment.optimizer
(32, 256, 'adam')
>>> resolve_config(overrides=["segment.iteratons=3"])
Traceback (most recent call last):
...
geoseg.errors.ConfigError: segment.iteratons: unknown key; did you mean segment.max_iterations?
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from geoseg.errors import ConfigError
from geoseg.sections import Config

__all__ = [
    "Config",
    "config_yaml",
    "load_yaml",
    "output_dir",
    "parse_override",
    "resolve_config",
]


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or bad YAML is a one-line ConfigError."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder; give a YAML config file") from None
    except PermissionError:
        raise ConfigError(f"{path}: config file cannot be read (permission denied)") from None
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: not a text file (byte {err.start} is not UTF-8); give a YAML config file"
        ) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "not valid YAML"
        raise ConfigError(f"{path}:{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"segment.lr=0.01"`` -> ``(["segment", "lr"], 0.01)``; the value is read as YAML.

    >>> parse_override("input.bands=[4, 3, 2]")
    (['input', 'bands'], [4, 3, 2])
    """
    key, sep, value = text.partition("=")
    path = key.strip().split(".")
    if not sep or len(path) < 2 or not all(path):
        raise ConfigError(f"--set {text!r}: expected section.key=value, e.g. segment.lr=0.01")
    try:
        return path, yaml.safe_load(value)
    except yaml.YAMLError:
        return path, value


def resolve_config(
    path: str | Path | None = None,
    *,
    overrides: Iterable[str] = (),
    values: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
) -> Config:
    """Defaults < preset < ``path`` (YAML) or ``data`` < ``values`` (nested) < ``overrides``."""
    data = copy.deepcopy(dict(data or {})) if path is None else load_yaml(path)
    for section, entries in (values or {}).items():
        for key, value in entries.items():
            _set(data, [section, key], value)
    for text in overrides:
        _set(data, *parse_override(text))
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        where = f" ({path})" if path is not None else ""
        raise ConfigError("; ".join(_describe(e) for e in err.errors()) + where) from None


def output_dir(scene: str | Path, config: Config) -> Path:
    """``output.dir`` with ``{stem}`` filled in, else ``<scene folder>/<stem>_geoseg``.

    >>> output_dir("data/a.tif", resolve_config(overrides=["output.dir=out/{stem}"]))
    PosixPath('out/a')
    """
    from geoseg.io.raster import is_remote, source_stem

    stem = source_stem(scene)
    if config.output.dir is None:  # a remote scene's folder: here
        name = f"{stem}_geoseg"
        return Path(name) if is_remote(scene) else Path(scene).with_name(name)
    try:
        return Path(config.output.dir.format(stem=stem))
    except (KeyError, IndexError, ValueError) as err:
        raise ConfigError(
            f"output.dir={config.output.dir!r}: only {{stem}} may be used ({err})"
        ) from None


def config_yaml(config: Config) -> str:
    """The resolved configuration as YAML, sections in order."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def _set(data: dict[str, Any], path: list[str], value: Any) -> None:
    node = data
    for key in path[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{'.'.join(path)}: {key} is a value, not a section")
        node = child
    node[path[-1]] = value


def _describe(error: Mapping[str, Any]) -> str:
    """One pydantic error as ``path: problem``, with a suggestion for unknown keys."""
    loc = [str(part) for part in error["loc"]]
    path = ".".join(loc)
    if error["type"] == "extra_forbidden":
        known = _known_keys(loc[:-1])
        match = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
        hint = (
            f"did you mean {'.'.join([*loc[:-1], match[0]])}?"
            if match
            else (f"known keys: {', '.join(known)}")
        )
        kind = "section" if len(loc) == 1 else "key"
        return f"{path}: unknown {kind}; {hint}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] in {"value_error", "assertion_error"}:
        return message if not path or message.startswith(path) else f"{path}: {message}"
    return f"{path}={error.get('input')!r}: {message}"


def _known_keys(loc: list[str]) -> list[str]:
    model: Any = Config
    for part in loc:
        model = model.model_fields[part].annotation
    return list(model.model_fields)
