"""Sphinx extension for geoseg's reference pages, generated from the code (one source).

Directives:

``geoseg-config``
    One table per section of :class:`geoseg.sections.Config`: every key with its type,
    default (as ``Config()`` resolves it), bounds and description. The bounds are read
    from the model's JSON schema, so every pydantic constraint shows (``ge``/``gt``/
    ``le``/``lt``, ``Literal`` choices, patterns, item bounds, ``json_schema_extra``).
``geoseg-presets``
    The ``segment`` keys on which the presets differ, one column per preset.
``geoseg-api``
    Autodoc entries for every name in a module's ``__all__``, also names the module
    provides lazily (a module ``__getattr__``), which ``automodule`` does not list.
    A name another public module defines is shown unindexed (the definer's is indexed).
``geoseg-package``
    A package's docstring, then ``geoseg-api`` of each public submodule, each in a
    section of its own: a module split in two needs no edit of the page.

At the end of a build every name in the ``__all__`` of every public module (no part of
its dotted name starts with ``_``) must be documented somewhere: under that module or
under the module that defines it. A missing one is a warning, an error with ``-W``.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import json
import pkgutil
import re
import types
import typing
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

__all__ = ["setup"]

_log = logging.getLogger(__name__)

_PACKAGE = "geoseg"
_SCHEMA_BOUNDS = {
    "minimum": ">=",
    "exclusiveMinimum": ">",
    "maximum": "<=",
    "exclusiveMaximum": "<",
    "minLength": "length >=",
    "maxLength": "length <=",
    "minItems": "items >=",
    "maxItems": "items <=",
    "multipleOf": "multiple of",
}
# JSON schema keys that are not constraints (the rest, json_schema_extra included, are)
_SCHEMA_PLAIN = {"title", "description", "default", "type", "anyOf", "$ref", "items"}
_SCHEMA_PLAIN |= {"additionalProperties", "properties", "required"}


def _literal(value: Any) -> str:
    """A value as YAML writes it (``null``, ``true``, lists in brackets)."""
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value


def _type_name(annotation: Any) -> str:
    """A readable type: ``float | None``, ``list[int]``, ``str`` for a Literal."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is type(None):
        return "None"
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        kinds = sorted({type(arg).__name__ for arg in args})
        return " | ".join(kinds)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(arg) for arg in args)
    if origin is not None:
        inner = ", ".join(_type_name(arg) for arg in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    return getattr(annotation, "__name__", str(annotation))


def _constraints(schema: dict[str, Any], defs: dict[str, Any], prefix: str = "") -> list[str]:
    """The constraints of one property's JSON schema, as short phrases."""
    if "$ref" in schema:
        schema = {**defs[schema["$ref"].rsplit("/", 1)[-1]], **schema}
    found: list[str] = []
    for key, value in schema.items():
        if key in _SCHEMA_PLAIN:
            continue
        if key in _SCHEMA_BOUNDS:
            found.append(f"{prefix}{_SCHEMA_BOUNDS[key]} {_literal(value)}")
        elif key == "enum":
            found.append(f"{prefix}one of " + ", ".join(_literal(v) for v in value))
        elif key == "const":
            found.append(f"{prefix}= {_literal(value)}")
        elif key == "pattern":
            found.append(f"{prefix}matches ``{value}``")
        else:  # json_schema_extra and the rarer JSON schema keywords
            found.append(f"{prefix}{key}: {_literal(value)}")
    for branch in schema.get("anyOf", []):
        if branch.get("type") != "null":
            found += _constraints(branch, defs, prefix)
    if isinstance(schema.get("items"), dict):
        found += _constraints(schema["items"], defs, prefix="each ")
    return found


def _cell(text: str) -> nodes.entry:
    entry = nodes.entry()
    entry += nodes.paragraph(text=text)
    return entry


_INLINE = re.compile(r"``(?P<code>[^`]+)``|:[a-z:]+:`~?(?P<role>[^`]+)`")


def _text_cell(text: str) -> nodes.entry:
    """A description: ``code`` and :role:`target` (numpydoc docstrings) as literals,
    anything else as plain text (config descriptions are plain, ``segment.fz_*``)."""
    paragraph = nodes.paragraph()
    end = 0
    for match in _INLINE.finditer(text):
        paragraph += nodes.Text(text[end : match.start()])
        code = match.group("code") or match.group("role").rsplit(".", 1)[-1]
        paragraph += nodes.literal(text=code)
        end = match.end()
    paragraph += nodes.Text(text[end:])
    entry = nodes.entry()
    entry += paragraph
    return entry


def _code_cell(text: str) -> nodes.entry:
    entry = nodes.entry()
    if text:
        entry += nodes.paragraph("", "", nodes.literal(text=text))
    return entry


def _table(header: list[str], rows: list[list[nodes.entry]], widths: list[int]) -> nodes.table:
    table = nodes.table(classes=["geoseg-reference"])
    group = nodes.tgroup(cols=len(header))
    table += group
    group.extend(nodes.colspec(colwidth=width) for width in widths)
    head = nodes.thead()
    group += head
    row = nodes.row()
    row.extend(_cell(text) for text in header)
    head += row
    body = nodes.tbody()
    group += body
    for cells in rows:
        row = nodes.row()
        row.extend(cells)
        body += row
    return table


def _config_sections() -> list[tuple[str, type, dict[str, Any]]]:
    """``(name, section model, resolved defaults)`` for each section of Config."""
    from geoseg.sections import Config

    defaults = Config().model_dump(mode="json")
    return [
        (name, field.annotation, defaults[name])
        for name, field in Config.model_fields.items()
        if isinstance(field.annotation, type)
    ]


def _as_rst(directive: SphinxDirective, lines: list[str]) -> list[str]:
    """reST lines, wrapped in ``{eval-rst}`` when the page is MyST Markdown."""
    if "myst" in type(directive.state).__module__:
        return ["```{eval-rst}", *lines, "```"]
    return lines


class ConfigReference(SphinxDirective):
    """Every section and key of the run configuration, as tables."""

    def run(self) -> list[nodes.Node]:
        from geoseg.sections import Config

        schema = Config.model_json_schema()
        defs = schema.get("$defs", {})
        out: list[nodes.Node] = []
        for name, model, defaults in _config_sections():
            properties = defs[model.__name__]["properties"]
            section = nodes.section(ids=[f"config-{name}"])
            section += nodes.title(text=name)
            doc = inspect.getdoc(model) or ""
            if doc:
                self._parse(section, doc.split("\n\n")[0])
            rows = []
            for key, field in model.model_fields.items():
                rows.append(
                    [
                        _code_cell(f"{name}.{key}"),
                        _code_cell(_type_name(field.annotation)),
                        _code_cell(_literal(defaults[key])),
                        _cell("; ".join(_constraints(properties[key], defs))),
                        _text_cell(field.description or ""),
                    ]
                )
            section += _table(
                ["key", "type", "default", "bounds", "description"], rows, [14, 9, 9, 12, 56]
            )
            out.append(section)
        return out

    def _parse(self, parent: nodes.Element, text: str) -> None:
        """Parse a docstring paragraph (reST, as the code's docstrings are) into parent."""
        lines = _as_rst(self, text.splitlines())
        self.state.nested_parse(StringList(lines, "geoseg.sections"), 0, parent)


class PresetTable(SphinxDirective):
    """The segment keys on which the presets differ, one column per preset."""

    def run(self) -> list[nodes.Node]:
        from geoseg.segment.params import PRESETS

        values = {name: params.to_dict() for name, params in PRESETS.items()}
        names = sorted(values, key=lambda name: name != "default")  # default first
        keys = [
            key
            for key in values[names[0]]
            if len({json.dumps(values[name][key]) for name in names}) > 1
        ]
        rows = [
            [_code_cell(f"segment.{key}")]
            + [_code_cell(_literal(values[name][key])) for name in names]
            for key in keys
        ]
        widths = [24] + [12] * len(names)
        return [_table(["key", *names], rows, widths)]


def _reexport(module: types.ModuleType, member: str) -> bool:
    """Whether another public module defines what ``module`` exports as ``member``."""
    obj = getattr(module, member)
    for name in _public_modules():
        other = importlib.import_module(name)
        if other is module:
            continue
        for key in getattr(other, "__all__", []):
            if getattr(other, key, None) is obj and _defines(other, key):
                return True
    return False


def _defines(module: types.ModuleType, member: str) -> bool:
    """Whether ``module`` defines ``member`` (rather than importing it)."""
    obj = getattr(module, member)
    owner = getattr(obj, "__module__", None)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return owner == module.__name__
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError):
        return True
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == member for t in targets):
            return True
    return False


_LONG_VALUE = 80  # characters of repr(): a longer value is left out of the page


def _kind(obj: Any) -> str:
    if inspect.isclass(obj):
        return "autoexception" if issubclass(obj, BaseException) else "autoclass"
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return "autofunction"
    return "autodata"


def _module_lines(name: str) -> list[str]:
    """reST: the module's docstring, then one autodoc entry per name in its ``__all__``."""
    module = importlib.import_module(name)
    lines = [f".. automodule:: {name}", "   :no-members:", ""]
    for member in getattr(module, "__all__", []):
        if member.startswith("__"):
            continue
        obj = getattr(module, member)
        lines.append(f".. {_kind(obj)}:: {name}.{member}")
        if _kind(obj) == "autodata" and len(repr(obj)) > _LONG_VALUE:
            lines.append("   :no-value:")
        if _reexport(module, member):  # a re-export: the defining module's is indexed
            lines.append("   :no-index:")
        lines.append("")
    return lines


class ModuleApi(SphinxDirective):
    """A module's docstring, then an autodoc entry for each name in its ``__all__``."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        container = nodes.container()
        lines = _as_rst(self, _module_lines(name))
        self.state.nested_parse(StringList(lines, name), 0, container)
        return list(container.children)


class PackageApi(SphinxDirective):
    """A package's docstring, then a section per public submodule, as ``geoseg-api``.

    New modules of the package appear without an edit of the page.
    """

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        head = nodes.container()
        lines = _as_rst(self, [f".. automodule:: {name}", "   :no-members:", ""])
        self.state.nested_parse(StringList(lines, name), 0, head)
        out: list[nodes.Node] = list(head.children)
        for module in _public_modules():
            if module.rpartition(".")[0] != name:
                continue
            section = nodes.section(ids=[nodes.make_id(module)])
            section += nodes.title("", "", nodes.literal(text=module))
            body = nodes.container()
            lines = _as_rst(self, _module_lines(module))
            self.state.nested_parse(StringList(lines, module), 0, body)
            section.extend(body.children)
            out.append(section)
        return out


@functools.cache
def _public_modules() -> list[str]:
    package = importlib.import_module(_PACKAGE)
    names = [_PACKAGE]
    for info in pkgutil.walk_packages(package.__path__, _PACKAGE + "."):
        parts = info.name.split(".")
        if not any(part.startswith("_") for part in parts):
            names.append(info.name)
    return names


def _check_coverage(app: Sphinx, env: Any) -> None:
    """Warn for each public name that no page documents (under any of its names)."""
    documented = set(env.get_domain("py").objects)
    modules = {name: importlib.import_module(name) for name in _public_modules()}
    seen = set()  # the objects documented, by identity
    for full in documented:
        owner, _, member = full.rpartition(".")
        if owner in modules and member in getattr(modules[owner], "__all__", []):
            seen.add(id(getattr(modules[owner], member)))
    for name, module in modules.items():
        for member in getattr(module, "__all__", []):
            if member.startswith("__") or id(getattr(module, member)) in seen:
                continue
            _log.warning(
                "API reference: %s.%s is public (in __all__) but on no page; add its "
                "module to a page under docs/api/",
                name,
                member,
                type="geoseg",
            )


def _drop_type_docstring(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """A value without a docstring of its own shows none, not its type's (dict's ...)."""
    if what not in ("data", "attribute") or inspect.isclass(obj) or not lines:
        return
    type_doc = inspect.getdoc(type(obj))
    if type_doc and lines[0].strip() == type_doc.splitlines()[0].strip():
        lines.clear()


def _is_model(obj: Any) -> bool:
    from pydantic import BaseModel

    return inspect.isclass(obj) and issubclass(obj, BaseModel)


def _model_signature(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, signature: Any, annotation: Any
) -> tuple[str, Any] | None:
    """A pydantic model's fields are in the configuration tables, not its signature."""
    if what == "class" and _model_signature_hidden(obj):
        return "", annotation
    return None


def _model_signature_hidden(obj: Any) -> bool:
    return _is_model(obj) and obj.__module__.startswith(_PACKAGE)


def _skip_model_internals(
    app: Sphinx, what: str, name: str, obj: Any, skip: bool, options: Any
) -> bool | None:
    """Leave out pydantic's own attributes (``model_config`` ...) on a model's page."""
    return True if name.startswith("model_") else None


def _model_note(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    if what == "class" and _model_signature_hidden(obj):
        lines += ["", "Its keys, types, defaults and bounds: :doc:`/configuration`."]


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("autodoc-process-docstring", _drop_type_docstring)
    app.connect("autodoc-process-docstring", _model_note)
    app.connect("autodoc-process-signature", _model_signature)
    app.connect("autodoc-skip-member", _skip_model_internals)
    app.add_directive("geoseg-config", ConfigReference)
    app.add_directive("geoseg-presets", PresetTable)
    app.add_directive("geoseg-api", ModuleApi)
    app.add_directive("geoseg-package", PackageApi)
    app.connect("env-check-consistency", _check_coverage)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
