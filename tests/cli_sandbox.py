"""The ``geoseg`` command run in-process, many times over, under a memory limit: the
hostile-input fuzz's child process (``python -m tests.cli_sandbox ROOT``); with
``--real`` (``python -m tests.cli_sandbox --real ROOT``) the bad-input cases' child,
which runs the real commands (below).

Starting Python and importing geoseg for each of 2,000 examples would take half an
hour; here one process does it once, then reads one JSON request a line on standard
input (``{"files": {name: text}, "binary": {name: hex}, "args": [...]}``), writes the
files into a fresh folder under ``ROOT``, runs :func:`geoseg.cli.main` there with those
arguments, as the console script does, and answers one JSON line: the exit status (or
``"traceback"`` when an exception escaped), what went to stderr (Python's streams and
file descriptor 2 alike), the seconds it took and how far the resident memory rose.

Nothing is ever run: :func:`geoseg.run.scene.run_scene` is replaced by a stand-in that
raises a :class:`~geoseg.errors.GeosegError` and :func:`geoseg.batch.run_batch` by one
that reports every scene skipped, so an example parses options, reads YAML, resolves
configurations, expands globs and computes output folders, and writes nothing but the
batch summary beside its batch file. After a warm-up the address space is limited to
what the process uses plus :data:`HEADROOM_MB`, so a bomb that gets through fails
with a MemoryError instead of taking the machine down.

With ``--real`` nothing is replaced and there is no memory limit: a request is
``{"cwd": folder, "args": [...]}``, run in that existing folder (nothing created or
removed there by the sandbox), so one process answers the many commands of
``tests/cli/test_bad_inputs.py`` and ``tests/run/test_folder.py`` that need no process
of their own (exit statuses and stderr as the console script gives them; signals and
full disks keep theirs): :class:`tests.helpers.InProcess`.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import resource
import shutil
import sys
import time
import traceback
import types
from pathlib import Path
from typing import Any

__all__ = ["HEADROOM_MB", "main"]

HEADROOM_MB = 700
"""Address space allowed above the warmed-up process: more than the 500 MB an example
may use (checked on the resident peak), less than what would hurt the machine."""


class _Stream(io.StringIO):
    """A stand-in for ``sys.stdout`` / ``sys.stderr`` that is not a terminal."""

    def isatty(self) -> bool:
        return False


def _kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    """Start the resident peak (VmHWM) afresh; False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _stand_ins() -> None:
    """Replace the two functions that would do work: an example only parses."""
    from geoseg.batch import Outcome
    from geoseg.errors import GeosegError

    def run_scene(*args: Any, **kwargs: Any) -> Any:
        raise GeosegError("sandbox: the scene is not run")

    def run_batch(items: Any, **kwargs: Any) -> list[Outcome]:
        return [Outcome(str(item.scene), "skipped") for item in items]

    scene = types.ModuleType("geoseg.run.scene")  # the real one imports PyTorch
    scene.run_scene = run_scene  # type: ignore[attr-defined]
    sys.modules["geoseg.run.scene"] = scene
    import geoseg.batch
    import geoseg.cli

    geoseg.batch.run_batch = run_batch  # type: ignore[assignment]
    _closing_watchdogs()


def _closing_watchdogs() -> None:
    """Let :func:`_invoke` stop each call's Ctrl-C watcher when the call ends."""
    import geoseg.cli

    watchdog = getattr(geoseg.cli, "Watchdog", None)
    if watchdog is not None:  # Ctrl-C's watcher: a thread a call, stopped after each here

        class Closed(watchdog):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                _WATCHDOGS.append(self)

        geoseg.cli.Watchdog = Closed  # type: ignore[attr-defined]


_WATCHDOGS: list[Any] = []


def _close_watchdogs() -> None:
    while _WATCHDOGS:
        _WATCHDOGS.pop().close()


def _invoke(args: list[str], folder: Path, err_fd_file: Path) -> dict[str, Any]:
    from geoseg.cli import main as cli_main

    out, err = _Stream(), _Stream()
    logging.root.handlers.clear()  # each command sets logging up anew, as in a new process
    os.chdir(folder)
    fd_before = err_fd_file.stat().st_size
    rss_before = _kb("VmRSS")
    exact = _reset_peak()
    start = time.perf_counter()
    sys.argv = ["geoseg", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli_main()
        status: int | str = 0
    except SystemExit as end:
        code = end.code
        status = code if isinstance(code, int) else 0 if code is None else 1
    except BaseException:
        status = "traceback"
        err.write(traceback.format_exc())
    seconds = time.perf_counter() - start
    _close_watchdogs()
    peak = _kb("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with err_fd_file.open("rb") as handle:  # what C code wrote to the descriptor itself
        handle.seek(fd_before)
        raw = handle.read().decode("utf-8", "backslashreplace")
    return {
        "status": status,
        "stderr": err.getvalue() + raw,
        "stdout_chars": len(out.getvalue()),
        "seconds": seconds,
        "peak_mb": max(0, peak - rss_before) / 1024,
    }


def _serve(root: Path, requests: Any, answer: Any) -> None:
    err_fd_file = root / "fd2.log"
    for number, line in enumerate(requests):
        request = json.loads(line)
        folder = root / f"ex{number}"
        folder.mkdir()
        for name, text in request.get("files", {}).items():
            (folder / name).write_text(text, encoding="utf-8", errors="surrogatepass")
        for name, data in request.get("binary", {}).items():
            (folder / name).write_bytes(bytes.fromhex(data))
        result = _invoke(request["args"], folder, err_fd_file)
        os.chdir(root)
        shutil.rmtree(folder, ignore_errors=True)
        answer.write(json.dumps(result) + "\n")
        answer.flush()


def _serve_real(root: Path, requests: Any, answer: Any) -> None:
    for line in requests:
        request = json.loads(line)
        result = _invoke(request["args"], Path(request["cwd"]), root / "fd2.log")
        os.chdir(root)
        answer.write(json.dumps(result) + "\n")
        answer.flush()


def main() -> None:
    """Serve requests until standard input ends (see the module docstring)."""
    real = sys.argv[1] == "--real"
    root = Path(sys.argv[2 if real else 1]).resolve()
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    answer = os.fdopen(os.dup(1), "w", encoding="utf-8")
    log = os.open(root / "fd2.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)  # C code writing to 1 or 2 lands in the log, read back per example
    os.dup2(log, 2)
    if real:
        _closing_watchdogs()
        answer.write(json.dumps({"ready": True}) + "\n")
        answer.flush()
        _serve_real(root, requests, answer)
        return
    _stand_ins()
    warm = root / "warm"
    warm.mkdir()
    (warm / "c.yaml").write_text("segment: {max_iterations: 3}\n")
    (warm / "b.yaml").write_text("scenes: [a.tif]\noutput: {dir: 'o/{stem}'}\n")
    for args in (
        ["config", "validate", "c.yaml"],
        ["config", "validate", "b.yaml"],
        ["config", "show", "-c", "c.yaml", "--set", "vectorize.to_crs=EPSG:4326"],
        ["run", "a.tif", "-c", "c.yaml", "-q"],
        ["batch", "b.yaml", "-q"],
        ["sample", "--help"],
    ):
        _invoke(args, warm, root / "fd2.log")
    os.chdir(root)
    limit = (_kb("VmSize") + HEADROOM_MB * 1024) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    answer.write(json.dumps({"ready": True, "limit_mb": limit / 2**20}) + "\n")
    answer.flush()
    _serve(root, requests, answer)


if __name__ == "__main__":
    main()
