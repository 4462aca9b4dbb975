"""Tiles labelled on a Dask cluster (``runtime.executor: dask``): an existing scheduler
(``runtime.address``) or a LocalCluster of ``runtime.workers`` processes.

Workers label tiles exactly as the local loop would, through the same
:func:`~geoseg.run.labelers.labeler_for`, into the run's resume store, which the
local stitching loop then reads as finished tiles. Workers need the scene and the output
folder on a shared file system. Dask is imported only here, when asked for
(``pip install 'geoseg[dask]'``).
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from geoseg.config import Config
from geoseg.errors import ConfigError
from geoseg.io.source import Source
from geoseg.run.labelers import labeler_for
from geoseg.run.prepare import StretchValues, gdal_env, open_scene, stretched_reader
from geoseg.run.scratch import Scratch
from geoseg.runtime import hold_freed_memory, share_cores, use_threads
from geoseg.tiling import Tile

__all__ = ["dask_client", "distribute_tiles"]


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
            # as the local executor's; a plugin, so a worker the nanny restarts gets it too
            client.register_plugin(_threads_plugin(share_cores(workers)))
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


def _threads_plugin(threads: int) -> Any:
    """A Dask worker plugin that runs :func:`~geoseg.runtime.use_threads` on every worker
    of the cluster, also on one that joins or is restarted later (``Client.run`` reaches
    only the workers there at the time)."""
    from distributed import WorkerPlugin

    class Threads(WorkerPlugin):
        name = "geoseg-threads"

        def setup(self, worker: Any) -> None:
            use_threads(threads)

    return Threads()


def distribute_tiles(
    scene: Source, scratch: Path, config: Config, stretch_values: StretchValues, tiles: list[Tile]
) -> int:
    """Label ``tiles`` on Dask workers into the run's scratch folder ``scratch`` (a path
    the workers share with this process); the number labelled
    (tiles without valid pixels are left out)."""
    with dask_client(config.runtime.address, workers=config.runtime.workers) as client:
        n_workers = max(1, len(client.scheduler_info()["workers"]))
        size = max(1, math.ceil(len(tiles) / (4 * n_workers)))
        chunks = [tiles[i : i + size] for i in range(0, len(tiles), size)]
        futures = [
            client.submit(
                _label_into_scratch, scene, scratch, config, stretch_values, chunk, pure=False
            )
            for chunk in chunks
        ]
        return sum(client.gather(futures))


def _label_into_scratch(
    scene: Source, root: Path, config: Config, stretch_values: StretchValues, tiles: list[Tile]
) -> int:
    """A Dask task: label tiles exactly as the run would and save them in its scratch."""
    hold_freed_memory()
    scratch = Scratch(root, scene, config)
    labeler = labeler_for(config, scratch=scratch)
    done = 0
    with gdal_env(config), open_scene(scene, config) as reader:
        read = stretched_reader(reader, stretch_values)
        for tile in tiles:
            image, valid = read(tile.read)
            rows, cols = tile.core_in_read
            if not valid[rows, cols].any():
                continue
            scratch.tile(tile, functools.partial(labeler.compute, image, valid))
            done += 1
    return done
