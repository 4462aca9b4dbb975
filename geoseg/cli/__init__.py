"""The ``geoseg`` command line: each command parses options and calls one library function.

Errors that a user can fix end the command with one line on standard error and exit
status 1; usage errors (unknown option) exit with status 2. The commands live in
:mod:`geoseg.cli.scene_commands` (run, vectorize, batch, plan) and
:mod:`geoseg.cli.tool_commands` (segment, sample, preseg, evaluate, config); each
imports the stages it calls when it runs, so that ``geoseg --version`` and ``geoseg
config validate`` start in well under a second.
"""

from __future__ import annotations

from geoseg.cli import scene_commands, tool_commands  # noqa: F401  (they register commands)
from geoseg.cli._common import app

__all__ = ["app"]
