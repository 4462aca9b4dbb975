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
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.resolver import Resolver

from geoseg.errors import PATH_CHARS, ConfigError, plain, quote
from geoseg.sections import Config, dir_template

__all__ = [
    "YAML_MAX_BYTES",
    "YAML_MAX_DEPTH",
    "YAML_MAX_REPEATED",
    "Config",
    "config_yaml",
    "load_yaml",
    "output_dir",
    "parse_override",
    "read_yaml",
    "resolve_config",
]

YAML_MAX_BYTES = 2**20
"""The largest YAML file read: some 15,000 scene paths in a batch file (a glob covers
more), and at most a few seconds and 300 MB to read and check the worst one."""
YAML_MAX_DEPTH = 32
"""Deepest nesting of YAML collections (a batch file needs 5 levels)."""
YAML_MAX_REPEATED = 1_000_000
"""What YAML aliases (``*name``) may repeat of their anchored nodes: values plus
characters of text, counted where each alias is used. A few hundred bytes of nested
aliases ("a billion laughs") otherwise expand to gigabytes once walked."""
MAX_ERRORS_SHOWN = 3
"""A configuration with many bad values: the first ones named, the rest counted."""


class _Unsafe(yaml.MarkedYAMLError):
    """YAML that is refused before it is built: too deep, self-referring or a bomb."""


try:  # libyaml's parser, when PyYAML has it: eight times as fast as PyYAML's own
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover  (a PyYAML built without libyaml)
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)


class _BoundedLoader(Composer, _Parser, SafeConstructor, Resolver):
    """A safe loader that composes the node graph in Python from the parser's events,
    refusing on the way a graph that nests deeper than :data:`YAML_MAX_DEPTH` (aliases
    followed), contains itself, or whose aliases repeat more than
    :data:`YAML_MAX_REPEATED` values and characters. Each node is counted once, where
    it is composed, so the check is linear in the text however much it would expand;
    nothing is built before it passes. A tagged value that does not convert (``!!int
    x``, ``2001-13-45``, an integer of 5000 digits) is a YAMLError too, not Python's
    own exception."""

    def __init__(self, stream: str) -> None:
        _Parser.__init__(self, stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._level = 0  # collections open around the node being composed
        self._size: dict[int, tuple[int, int]] = {}  # id(node) -> expanded (size, depth)
        self._repeated = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        mark = self.peek_event().start_mark
        if self.check_event(AliasEvent):
            node = super().compose_node(parent, index)  # the anchored node, not a copy
            if id(node) not in self._size:
                raise _Unsafe(
                    problem="an alias (*name) stands for a collection that contains it",
                    problem_mark=mark,
                )
            self._repeated += self._size[id(node)][0]
            if self._repeated > YAML_MAX_REPEATED:
                raise _Unsafe(
                    problem=f"its aliases (*name) repeat over {YAML_MAX_REPEATED:,} values "
                    "and characters (a YAML bomb?); write the values out",
                    problem_mark=mark,
                )
            return node
        self._level += 1
        try:
            if self._level > YAML_MAX_DEPTH:
                raise _Unsafe(
                    problem=f"nested deeper than {YAML_MAX_DEPTH} levels", problem_mark=mark
                )
            node = super().compose_node(parent, index)
        finally:
            self._level -= 1
        if isinstance(node, yaml.ScalarNode):
            self._size[id(node)] = (1 + len(node.value), 1)
            return node
        children = (
            [self._size[id(part)] for pair in node.value for part in pair]
            if isinstance(node, yaml.MappingNode)
            else [self._size[id(child)] for child in node.value]
        )
        depth = 1 + max((d for _, d in children), default=0)
        if depth > YAML_MAX_DEPTH:
            raise _Unsafe(
                problem=f"nested deeper than {YAML_MAX_DEPTH} levels once its aliases "
                "(*name) are followed",
                problem_mark=mark,
            )
        self._size[id(node)] = (1 + sum(n for n, _ in children), depth)
        return node

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, LookupError, AttributeError, OverflowError) as err:
            kind = str(node.tag).rsplit(":", 1)[-1][:40]
            shown = quote(node.value) if isinstance(node.value, str) else "this collection"
            # the reason, without Python's advice on set_int_max_str_digits; a KeyError's
            # is only the value again
            reason = "" if isinstance(err, LookupError) else str(err).split(";", 1)[0][:200]
            raise yaml.constructor.ConstructorError(
                problem=f"{shown} is not a valid {kind}" + (f" ({reason})" if reason else ""),
                problem_mark=node.start_mark,
            ) from None


def read_yaml(text: str) -> Any:
    """``yaml.safe_load`` with bounds on nesting and on alias expansion; every problem,
    those included, is a :class:`yaml.YAMLError` with ``problem`` (and ``problem_mark``
    where a line is known).

    >>> read_yaml("{a: &x [1, 2], b: *x}")
    {'a': [1, 2], 'b': [1, 2]}
    >>> try:
    ...     read_yaml("&a [x, *a]")
    ... except yaml.YAMLError as err:
    ...     print(err.problem)
    an alias (*name) stands for a collection that contains it
    """
    try:
        loader = _BoundedLoader(text)
    except UnicodeEncodeError as err:  # a command line's undecodable bytes (surrogates)
        raise yaml.MarkedYAMLError(problem=f"not UTF-8 text (character {err.start + 1})") from None
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping (:func:`read_yaml`: bounded); a missing file, bad YAML or a
    file over :data:`YAML_MAX_BYTES` is a one-line ConfigError."""
    path = Path(path)
    shown = plain(path, PATH_CHARS)  # a name typed or generated: no newline echoed
    try:
        with path.open("rb") as handle:
            raw = handle.read(YAML_MAX_BYTES + 1)
        if len(raw) > YAML_MAX_BYTES:
            raise ConfigError(
                f"{shown}: over {YAML_MAX_BYTES // 2**20} MiB; give a YAML config file "
                "(a batch file lists globs rather than every scene)"
            )
        data = read_yaml(raw.decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{shown}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{shown}: is a folder; give a YAML config file") from None
    except PermissionError:
        raise ConfigError(f"{shown}: config file cannot be read (permission denied)") from None
    except OSError as err:
        raise ConfigError(f"{shown}: config file cannot be read ({err.strerror})") from None
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{shown}: not a text file (byte {err.start} is not UTF-8); give a YAML config file"
        ) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{shown}:{_yaml_problem(err)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{shown}: expected a mapping of sections, got {type(data).__name__}")
    return data


def _yaml_problem(err: yaml.YAMLError) -> str:
    """`` line N: problem`` of a YAML error (its problem text cut: it may quote a tag)."""
    mark = getattr(err, "problem_mark", None)
    where = f" line {mark.line + 1}:" if mark is not None else ""
    problem = str(getattr(err, "problem", None) or "not valid YAML")
    return f"{where} {problem if problem.isprintable() else repr(problem)[1:-1]}"[:300]


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"segment.lr=0.01"`` -> ``(["segment", "lr"], 0.01)``; the value is read as YAML.

    >>> parse_override("input.bands=[4, 3, 2]")
    (['input', 'bands'], [4, 3, 2])
    """
    key, sep, value = text.partition("=")
    path = key.strip().split(".")
    if not sep or len(path) < 2 or not all(path):
        raise ConfigError(f"--set {quote(text)}: expected section.key=value, e.g. segment.lr=0.01")
    try:
        return path, read_yaml(value)
    except _Unsafe as err:
        raise ConfigError(f"--set {plain(key.strip())}={quote(value)}: {err.problem}") from None
    except yaml.YAMLError:  # not YAML: the text itself, e.g. a path with a colon
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
        errors = err.errors(include_url=False, include_context=False)
        hinted: set[str] = set()
        shown = [_describe(e, hinted) for e in errors[:MAX_ERRORS_SHOWN]]
        if len(errors) > MAX_ERRORS_SHOWN:
            shown.append(f"and {len(errors) - MAX_ERRORS_SHOWN} more problems")
        where = f" ({plain(path, PATH_CHARS)})" if path is not None else ""
        raise ConfigError("; ".join(shown) + where) from None


def output_dir(scene: str | Path, config: Config) -> Path:
    """``output.dir`` with ``{stem}`` filled in, else ``<scene folder>/<stem>_geoseg``.

    The template is checked when the configuration is built
    (:func:`geoseg.sections.dir_template`): a plain ``{stem}``, no other field.

    >>> output_dir("data/a.tif", resolve_config(overrides=["output.dir=out/{stem}"]))
    PosixPath('out/a')
    """
    from geoseg.io.source import is_remote, source_stem

    stem = source_stem(scene)
    if not stem:
        raise ConfigError(f"{plain(scene, PATH_CHARS)}: names no file; give a scene's file or URL")
    if config.output.dir is None:  # a remote scene's folder: here
        name = f"{stem}_geoseg"
        return Path(name) if is_remote(scene) else Path(scene).with_name(name)
    try:
        pieces = dir_template(config.output.dir)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return Path("".join(stem if is_stem else text for text, is_stem in pieces))


def config_yaml(config: Config) -> str:
    """The resolved configuration as YAML, sections in order."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def _set(data: dict[str, Any], path: list[str], value: Any) -> None:
    node = data
    for key in path[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{plain('.'.join(path))}: {plain(key)} is a value, not a section")
        node = child
    node[path[-1]] = value


def _describe(error: Mapping[str, Any], hinted: set[str]) -> str:
    """One pydantic error as ``path: problem``, with a suggestion for unknown keys (the
    known keys of a section listed once: ``hinted`` holds the sections listed)."""
    loc = [plain(str(part)) for part in error["loc"]]
    path = ".".join(loc)
    if error["type"] == "extra_forbidden":
        known = _known_keys(loc[:-1])
        match = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
        parent = ".".join(loc[:-1])
        if match:
            hint = f"; did you mean {'.'.join([*loc[:-1], match[0]])}?"
        elif parent in hinted:
            hint = ""
        else:
            hinted.add(parent)
            hint = f"; known keys: {', '.join(known)}"
        kind = "section" if len(loc) == 1 else "key"
        return f"{path}: unknown {kind}{hint}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] in {"value_error", "assertion_error"}:
        return message if not path or message.startswith(path) else f"{path}: {message}"
    return f"{path}={quote(error.get('input'))}: {message}"


def _known_keys(loc: list[str]) -> list[str]:
    model: Any = Config
    for part in loc:
        model = model.model_fields[part].annotation
    return list(model.model_fields)
