"""Process settings for the heavy stages: keep freed memory in the heap, share the cores
among worker processes.

Training and prediction allocate tensors of tens to hundreds of MB at every step and free
them again. glibc serves blocks above its mmap threshold (at most 32 MB when it adapts
by itself) with fresh mappings and gives them back when freed, so each step faults the
same memory in again, zeroed page by page by the kernel: on a 2-core machine a training
step of the default preset spent more time in the kernel (1.1 s) than computing (1.0 s).
:func:`hold_freed_memory` raises the mmap and trim thresholds, so freed blocks stay in
the heap and are reused (0.41 s a step, 0.01 s of it in the kernel);
:func:`release_memory` gives them back between stages, so that one stage's peak does
not stack on the last one's. ``tests/test_runtime.py`` counts the page faults.
:func:`share_cores` and :func:`use_threads` give each worker process of a batch or of a
Dask cluster its share of the cores, the same in both executors.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import gc
import logging
import os
import sys
from collections.abc import Callable

__all__ = ["hold_freed_memory", "release_memory", "share_cores", "use_threads"]

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1  # glibc's malloc.h
_M_MMAP_THRESHOLD = -3
HOLD_BYTES = 1 << 30
"""Blocks up to this size come from the heap; up to this much freed memory is kept."""


def hold_freed_memory(limit: int = HOLD_BYTES) -> bool:
    """Raise glibc's mmap and trim thresholds to ``limit`` bytes for this process.

    Returns ``False`` where there is no glibc ``mallopt`` (macOS, Windows, musl),
    changing nothing. Calling it again is harmless.
    """
    mallopt = _libc("mallopt")
    if mallopt is None:
        return False
    held = bool(mallopt(_M_MMAP_THRESHOLD, limit)) and bool(mallopt(_M_TRIM_THRESHOLD, limit))
    logger.debug("malloc thresholds at %d bytes: %s", limit, held)
    return held


def release_memory() -> None:
    """Collect garbage and give the heap's free memory back to the system (glibc's
    ``malloc_trim``; elsewhere only the collection)."""
    gc.collect()
    trim = _libc("malloc_trim")
    if trim is not None:
        trim(0)


def share_cores(workers: int) -> int:
    """Compute threads for each of ``workers`` processes on this machine: its usable
    cores divided among them, at least one (a LocalCluster's single-threaded workers get
    ``OMP_NUM_THREADS=1`` from Dask, two spawned processes with torch's default would
    each run as many threads as there are cores)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, workers))


def use_threads(threads: int) -> None:
    """Run torch's operations in this process on ``threads`` threads.

    The same number in every worker of the local and the Dask executor keeps their
    labels the same: PyTorch's CPU convolutions round differently with another thread
    count (a 1x1 convolution's output moves by ~1e-7), which can flip the argmax of a
    pixel near a tie. Called as a worker process's initializer.
    """
    import torch

    torch.set_num_threads(threads)


@functools.cache
def _libc(function: str) -> Callable[..., int] | None:
    """``function`` of the C library on Linux, else ``None``."""
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        return getattr(ctypes.CDLL(name), function) if name else None
    return None
