"""Ctrl-C that ends the command within a second, whatever the process is doing.

Python runs its SIGINT handler only in the main thread, between bytecodes: a read
stuck in GDAL or curl, or a long torch operation, holds ``KeyboardInterrupt`` back for
as long as it lasts. :class:`Watchdog` does not wait for it. The signal's C handler
also writes the signal's number to a pipe (:func:`signal.set_wakeup_fd`), and a daemon
thread reading that pipe gives the main thread :data:`GRACE_S` to end the usual way (a
``KeyboardInterrupt``, then ``geoseg: interrupted`` and exit status 130). If the
process is still there after that, the thread writes the same line, stops the
process's worker processes (``geoseg batch``, a Dask cluster) and ends the process
with status 130 (``os._exit``) at once.

Ending that way leaves what ``kill -9`` leaves, and a run is built to resume from that:
every file is written under a temporary name and renamed, the work folder
``OUTDIR/.geoseg-run`` and its scratch stay, and the folder's lock (``flock``) goes
with the process. Only the command line process watches; library code and worker
processes keep Python's own handling.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

__all__ = ["GRACE_S", "STATUS", "Watchdog"]

GRACE_S = 0.5
"""Seconds the main thread has to end by itself after Ctrl-C."""
STATUS = 130
"""Exit status of an interrupted command (128 + SIGINT), as shells report it."""


class Watchdog:
    """Watch for SIGINT from construction on (call it in the main thread).

    >>> watchdog = Watchdog()
    >>> watchdog.close()  # the pipe closed, Python's wakeup fd set back
    """

    def __init__(self, *, grace_s: float = GRACE_S) -> None:
        self.grace_s = grace_s
        self._said = self._closed = self._interrupted = False
        self._handler: Any = None
        self._lock = threading.Lock()
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)  # set_wakeup_fd requires it
        try:
            self._previous = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        except ValueError:  # not the main thread: Python's own handling only
            self._previous = -1
            self.close()
            return
        self._handler = signal.getsignal(signal.SIGINT)
        if self._handler is signal.default_int_handler:
            signal.signal(signal.SIGINT, self._on_sigint)
        threading.Thread(target=self._watch, name="geoseg-interrupt", daemon=True).start()
        os.register_at_fork(after_in_child=self._forget)

    @property
    def interrupted(self) -> bool:
        """Whether SIGINT came: typer turns the ``KeyboardInterrupt`` it raises into
        exit status 130 without a word, so the command line asks here."""
        return self._interrupted

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self._interrupted = True
        signal.default_int_handler(signum, frame)  # KeyboardInterrupt, as Python's

    def say_interrupted(self) -> None:
        """Write ``geoseg: interrupted`` to stderr once (the main thread or the
        watchdog, whichever comes first)."""
        with self._lock:
            if self._said:
                return
            self._said = True
        with contextlib.suppress(OSError, ValueError):
            if sys.stderr.isatty():  # over a progress bar's line, with the cursor shown
                sys.stderr.write("\r\x1b[2K\x1b[?25h")
            sys.stderr.write("geoseg: interrupted\n")
            sys.stderr.flush()

    def close(self) -> None:
        """Stop watching: the previous wakeup fd back, the pipe closed (the thread
        sees its end and returns)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(ValueError):  # not in the main thread
            signal.set_wakeup_fd(self._previous)
            if self._handler is not None and signal.getsignal(signal.SIGINT) == self._on_sigint:
                signal.signal(signal.SIGINT, self._handler)
        for fd in (self._write, self._read):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _watch(self) -> None:
        while True:
            try:
                data = os.read(self._read, 64)
            except OSError:
                return
            if not data:
                return
            if signal.SIGINT in data:
                self._interrupted = True
                break
        threading.Event().wait(self.grace_s)  # the main thread ends the usual way meanwhile
        self.say_interrupted()
        _stop_workers()
        os._exit(STATUS)

    def _forget(self) -> None:
        """In a forked child: no watchdog thread runs there, so its signals must not
        reach this process's pipe."""
        if self._closed:  # its descriptors' numbers may be another file's by now
            return
        self._closed = True
        with contextlib.suppress(ValueError, OSError):
            signal.set_wakeup_fd(-1)
        for fd in (self._write, self._read):
            with contextlib.suppress(OSError):
                os.close(fd)


def _stop_workers() -> None:
    """End this process's worker processes (``multiprocessing``: a batch's pool, a
    Dask LocalCluster's workers), which would otherwise go on without it, and release
    the semaphores their queues hold, as a normal exit does (else multiprocessing's
    resource tracker warns of them on stderr, after our one line)."""
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is None:
        return
    with contextlib.suppress(Exception):
        for child in multiprocessing.active_children():
            with contextlib.suppress(Exception):
                child.kill()
    util = sys.modules.get("multiprocessing.util")
    with contextlib.suppress(Exception):  # a private function: best effort
        util._run_finalizers(0)  # type: ignore[union-attr]  # the exit's, priority >= 0
