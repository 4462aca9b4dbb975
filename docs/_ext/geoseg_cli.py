"""The ``geoseg`` command line as click commands, for sphinx-click (``geoseg_cli:run`` ...).

Typer (0.22 and later) builds its commands on a click of its own, which sphinx-click
does not take, so the Typer app is copied here into plain click commands: the same
names, arguments, options and help, each option's help as ``--help`` prints it
(defaults and ranges included). ``geoseg_cli:geoseg`` is the whole group; any other
name is that command of the group, e.g. ``geoseg_cli:config``.
"""

from __future__ import annotations

import re
from typing import Any

import click
import typer

from geoseg.cli import app

__all__ = ["geoseg"]

_REQUIRED = "  [required]"
_OPTS = re.compile(r"^(?P<opts>-{1,2}[\w-]+(?:[/,] ?-{1,2}[\w-]+)*)(?: (?P<metavar>.+))?$")


class _Argument(click.Argument):
    """A click argument with help text, which sphinx-click shows (click's has none)."""

    def __init__(self, name: str, *, help: str, required: bool, nargs: int) -> None:
        super().__init__([name], required=required, nargs=nargs, metavar=name.upper())
        self.help = help


def _help(record: tuple[str, str] | None) -> tuple[str, str, bool]:
    """``(declaration, help, required)`` from typer's help record of one parameter."""
    name, text = record if record is not None else ("", "")
    required = text.endswith(_REQUIRED)
    return name, text.removesuffix(_REQUIRED).strip(), required


def _param(param: Any, context: Any) -> click.Parameter | None:
    if getattr(param, "hidden", False):
        return None
    declaration, text, required = _help(param.get_help_record(context))
    if type(param).__name__ == "TyperArgument":
        return _Argument(param.name, help=text, required=required, nargs=param.nargs)
    match = _OPTS.match(declaration)
    metavar = (match.group("metavar") or "") if match else ""
    metavar = metavar.strip("<>")
    if param.multiple:  # typer says list[str] for a repeatable option of str
        metavar = re.sub(r"^list\[(.*)\]$", r"\1", metavar)
    return click.Option(
        [*param.opts, *param.secondary_opts],
        help=text or None,
        required=required,
        is_flag=bool(param.is_flag) or None,
        count=bool(param.count),
        multiple=bool(param.multiple),
        metavar=metavar or None,
        show_default=False,  # typer's help text says the default already
        expose_value=False,
    )


def _first_paragraph(text: str | None) -> str | None:
    """The help's first paragraph, whole: click would cut it at 45 characters."""
    return " ".join(text.split("\n\n")[0].split()) if text else None


def _command(command: Any, name: str) -> click.Command:
    """A click copy of one typer command or group."""
    context = typer._click.Context(command, info_name=name)
    params = [p for p in (_param(p, context) for p in command.params) if p is not None]
    fields: dict[str, Any] = {
        "help": command.help,
        "short_help": command.short_help or _first_paragraph(command.help),
        "epilog": command.epilog,
        "params": params,
        "hidden": bool(command.hidden),
    }
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        return click.Command(name, **fields)
    group = click.Group(name, **fields)
    for sub_name, sub in subcommands.items():
        group.add_command(_command(sub, sub_name))
    return group


geoseg = _command(typer.main.get_command(app), "geoseg")


def __getattr__(name: str) -> click.Command:
    assert isinstance(geoseg, click.Group)
    if name in geoseg.commands:
        return geoseg.commands[name]
    raise AttributeError(f"geoseg has no command {name!r}")
