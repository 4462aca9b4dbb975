"""A Dask client for ``runtime.executor: dask``: an existing scheduler or a LocalCluster.

Only imported when Dask is asked for (``pip install 'geoseg[dask]'``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from geoseg.errors import ConfigError

__all__ = ["dask_client"]


@contextlib.contextmanager
def dask_client(address: str | None, *, workers: int) -> Iterator[Any]:
    """A ``distributed.Client`` connected to ``address``, or to a LocalCluster of
    ``workers`` single-threaded worker processes started (and stopped) here."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as err:
        raise ConfigError(
            "runtime.executor=dask needs dask.distributed: pip install 'geoseg[dask]'"
        ) from err
    cluster = None
    try:
        if address is None:
            cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
            client = Client(cluster)
        else:
            client = Client(address, timeout="30s")
    except OSError as err:
        if cluster is not None:
            cluster.close()
        raise ConfigError(
            f"runtime.address={address!r}: cannot reach the Dask scheduler ({err})"
        ) from err
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
