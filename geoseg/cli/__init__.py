"""The ``geoseg`` command line: each command parses options and calls one library function.

Errors that a user can fix end the command with one line on standard error and exit
status 1; usage errors (unknown option, bad option value) are one line too and exit with
status 2 (:func:`main`, the console script). The commands live in
:mod:`geoseg.cli.scene_commands` (run, vectorize, batch, plan) and
:mod:`geoseg.cli.tool_commands` (segment, sample, preseg, evaluate, config); each
imports the stages it calls when it runs, so that ``geoseg --version`` and ``geoseg
config validate`` start in well under a second.
"""

from __future__ import annotations

import sys

import typer

from geoseg.cli import scene_commands, tool_commands  # noqa: F401  (they register commands)
from geoseg.cli._common import app
from geoseg.cli._interrupt import STATUS, Watchdog

__all__ = ["app", "main"]


def main() -> None:
    """The ``geoseg`` console script: :data:`app`, with click's usage errors as one
    ``geoseg: error:`` line (exit status 2) instead of a framed block, and Ctrl-C as
    one line (exit status 130) within a second, whatever the command is doing
    (:mod:`geoseg.cli._interrupt`)."""
    watchdog = Watchdog()
    try:
        status = app(standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        watchdog.say_interrupted()
        sys.exit(STATUS)
    except Exception as err:
        # click's (typer's vendored click) usage errors: no public class to name
        message, code = getattr(err, "format_message", None), getattr(err, "exit_code", None)
        if message is None or not isinstance(code, int):
            raise
        if type(err).__name__ == "NoArgsIsHelpError":
            app()  # the help, drawn as typer draws it
        context = getattr(err, "ctx", None)
        hint = f" (see {context.command_path} --help)" if context is not None else ""
        print(f"geoseg: error: {message()}{hint}", file=sys.stderr)
        sys.exit(code)
    if watchdog.interrupted:  # typer made the KeyboardInterrupt a silent status 130
        watchdog.say_interrupted()
        sys.exit(STATUS)
    sys.exit(status if isinstance(status, int) else 0)
