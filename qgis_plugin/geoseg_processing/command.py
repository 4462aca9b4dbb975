"""The ``geoseg`` command as the plugin runs it. Nothing here imports QGIS, so the
tests check it with plain Python; ``algorithms.py`` wires it to Processing.

geoseg writes plain progress lines to stderr when it is not on a terminal
(``geoseg: predict 12/40 (31 s)``), every ``GEOSEG_HEARTBEAT_S`` seconds, and an
error as one line (``geoseg: error: ...``) with a non-zero exit status.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

PRESETS = ("default", "fork", "kanezaki2018", "tip2020")
"""geoseg's parameter presets (``segment.preset``)."""
DEVICES = ("auto", "cpu", "cuda")
"""``runtime.device`` choices offered in the dialog."""
WORK = ".geoseg-run"
"""The work folder geoseg keeps in OUTDIR while it runs (and after an interruption,
to resume); a cancelled algorithm removes it."""
LOCK = ".geoseg-lock"
"""geoseg's lock on OUTDIR while a run works there (geoseg.run.folder.LOCK)."""
KILL_AFTER_S = 30.0
"""Seconds a cancelled command has to end after its interrupt before it is killed."""
HEARTBEAT_S = "0.5"
"""Seconds between geoseg's progress lines when the plugin runs it (unless
``GEOSEG_HEARTBEAT_S`` is set in QGIS's environment)."""

STAGES = {
    "train": (0, 35),
    "predict": (35, 75),
    "vote": (75, 80),
    "vectorize": (80, 95),
    "report": (95, 100),
}
"""The share of the whole run (percent) each stage of ``geoseg run`` covers."""
_PROGRESS = re.compile(r"geoseg: (\w+) (\d+)(?:/(\d+))? \(\d+ s\)")


def percent(line: str, stages: dict[str, tuple[int, int]] | None = None) -> float | None:
    """The overall percentage a progress line stands for, ``None`` for other lines.
    ``stages`` maps stage names to their share (default :data:`STAGES`); a command
    with one stage (``vectorize``) passes ``{"vectorize": (0, 100)}``."""
    found = _PROGRESS.fullmatch(line.strip())
    stages = STAGES if stages is None else stages
    if found is None or found.group(1) not in stages:
        return None
    low, high = stages[found.group(1)]
    done, total = int(found.group(2)), int(found.group(3) or 0)
    return low + (high - low) * (min(done / total, 1.0) if total else 0.0)


def find_geoseg(configured: str = "") -> str | None:
    """The geoseg executable: ``configured`` (the provider's setting) when given and
    executable, else ``geoseg`` on PATH; ``None`` when there is none."""
    if configured:
        path = Path(configured).expanduser()
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which("geoseg")


def settings_args(values: dict[str, object], extra: str = "") -> list[str]:
    """``--set key=value`` for every config key given a value (``None``: geoseg's
    default), then one ``--set`` for each non-empty line of ``extra``."""
    args: list[str] = []
    for key, value in values.items():
        if value is None or value == "":
            continue
        args += ["--set", f"{key}={value}"]
    for line in extra.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            args += ["--set", line.strip()]
    return args


@dataclass
class Outcome:
    """How a geoseg command ended: its exit status, what it printed on stdout, its
    error line (the ``geoseg: error: ...`` line, else its last stderr line) and
    whether it was cancelled."""

    returncode: int
    stdout: str
    error: str
    cancelled: bool


def run(
    args: Sequence[str],
    *,
    on_progress: Callable[[float], None],
    on_line: Callable[[str], None],
    cancelled: Callable[[], bool],
    stages: dict[str, tuple[int, int]] | None = None,
    poll_s: float = 0.1,
) -> Outcome:
    """Run ``args`` (the executable first), passing each stderr line to ``on_line``
    and the progress lines to ``on_progress`` as percentages. When ``cancelled()``
    turns true the command is interrupted (SIGINT, as Ctrl-C: geoseg stops cleanly),
    then killed if it has not ended within :data:`KILL_AFTER_S`."""
    env = dict(os.environ)
    env.setdefault("GEOSEG_HEARTBEAT_S", HEARTBEAT_S)
    for name in ("PYTHONPATH", "PYTHONHOME"):  # QGIS's own Python must not leak in
        env.pop(name, None)
    with subprocess.Popen(
        list(args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        return _follow(proc, on_progress, on_line, cancelled, stages, poll_s)


def _follow(
    proc: subprocess.Popen[str],
    on_progress: Callable[[float], None],
    on_line: Callable[[str], None],
    cancelled: Callable[[], bool],
    stages: dict[str, tuple[int, int]] | None,
    poll_s: float,
) -> Outcome:
    lines: queue.Queue[str | None] = queue.Queue()
    out: list[str] = []

    def pump_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    def pump_stdout() -> None:
        assert proc.stdout is not None
        out.append(proc.stdout.read())

    readers = [threading.Thread(target=f, daemon=True) for f in (pump_stderr, pump_stdout)]
    for reader in readers:
        reader.start()
    error, last, stopped = "", "", 0.0
    while True:
        if not stopped and cancelled():
            stopped = time.monotonic()
            _interrupt(proc)
        try:
            line = lines.get(timeout=poll_s)
        except queue.Empty:
            if stopped and time.monotonic() - stopped > KILL_AFTER_S:
                proc.kill()
            continue
        if line is None:
            break
        share = percent(line, stages)
        if share is not None:
            on_progress(share)
            continue
        if line.strip():
            last = line.strip()
            if last.startswith("geoseg: error:"):
                error = last
            on_line(line)
    proc.wait()
    for reader in readers:
        reader.join()
    return Outcome(proc.returncode, "".join(out), error or last, bool(stopped))


def _interrupt(proc: subprocess.Popen[str]) -> None:
    if os.name == "posix":
        proc.send_signal(signal.SIGINT)
    else:
        proc.terminate()


def discard(outdir: Path, *, created: bool) -> None:
    """After a cancelled run: its work folder goes, and OUTDIR when the algorithm made
    it and nothing else is in it (a previous complete run's outputs stay)."""
    shutil.rmtree(outdir / WORK, ignore_errors=True)
    # a command ended the hard way (its Ctrl-C watchdog, a kill) leaves its lock file;
    # the command has ended, so nobody holds it
    with contextlib.suppress(OSError):
        (outdir / LOCK).unlink()
    if created:
        with contextlib.suppress(OSError):
            outdir.rmdir()
