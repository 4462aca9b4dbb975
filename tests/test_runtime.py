"""Freed memory held in the heap, read from glibc's own accounting (``mallinfo2``), in a
fresh process each so that this test process keeps glibc's defaults."""

from __future__ import annotations

import ctypes
import ctypes.util
import subprocess
import sys

import pytest

# Allocate and free a 64 MB buffer, then print, in MB, what glibc maps outside the heap
# now (hblkhd) and the free memory it keeps in the heap (fordblks); then the same after
# release_memory().
PROBE = """
import ctypes, sys
import numpy as np
from geoseg.runtime import hold_freed_memory, release_memory

class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
held = hold_freed_memory() if sys.argv[1] == "hold" else False
buffer = np.ones(8 << 20)  # 64 MB
during = libc.mallinfo2()
del buffer
after = libc.mallinfo2()
release_memory()
released = libc.mallinfo2()
mb = lambda n: n >> 20
print(held, mb(during.hblkhd), mb(after.fordblks), mb(released.fordblks))
"""


def _has_mallinfo2() -> bool:
    name = ctypes.util.find_library("c")
    return (
        sys.platform.startswith("linux")
        and name is not None
        and hasattr(ctypes.CDLL(name), "mallinfo2")
    )


glibc = pytest.mark.skipif(not _has_mallinfo2(), reason="needs glibc >= 2.33 (mallinfo2)")


def _probe(mode: str) -> tuple[str, int, int, int]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    held, mapped, kept, released = done.stdout.split()
    return held, int(mapped), int(kept), int(released)


@glibc
def test_freed_blocks_stay_in_the_heap_until_released() -> None:
    held, mapped, kept, released = _probe("hold")
    assert held == "True"
    assert mapped == 0  # the 64 MB came from the heap, not a mapping of its own
    assert kept >= 64  # freed, it stays there for the next step to reuse
    assert released < 8  # release_memory gives it back between stages


@glibc
def test_without_holding_glibc_maps_and_unmaps_big_blocks() -> None:
    held, mapped, kept, _ = _probe("plain")
    assert held == "False"
    assert mapped >= 64  # a mapping of its own, faulted in page by page ...
    assert kept < 8  # ... and handed back when freed


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def test_cores_are_shared_among_workers() -> None:
    import os
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from geoseg.runtime import share_cores, use_threads

    cores = len(os.sched_getaffinity(0))
    assert share_cores(1) == cores
    assert share_cores(cores) == 1
    assert share_cores(4 * cores) == 1  # never none
    # as the batch's local executor starts its workers: each runs share_cores(jobs)
    with ProcessPoolExecutor(
        1, mp_context=get_context("spawn"), initializer=use_threads, initargs=(1,)
    ) as pool:
        assert pool.submit(_torch_threads).result() == 1


@pytest.mark.slow
def test_dask_workers_keep_their_share_of_cores_after_a_restart() -> None:
    """The LocalCluster's workers run ``share_cores(workers)`` threads, not Dask's
    ``OMP_NUM_THREADS=1``, also once the nanny has restarted them (as after a crash)."""
    pytest.importorskip("distributed")
    import os

    from geoseg.run.distribute import dask_client
    from geoseg.runtime import share_cores

    cores = len(os.sched_getaffinity(0))
    if cores < 2:
        pytest.skip("one core: a worker's share and Dask's single thread are the same")
    with dask_client(None, workers=1) as client:
        assert list(client.run(_torch_threads).values()) == [share_cores(1)]
        client.restart(wait_for_workers=True)
        assert list(client.run(_torch_threads).values()) == [share_cores(1)]
