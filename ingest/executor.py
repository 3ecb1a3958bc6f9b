"""Where batch tasks run: a Dask LocalCluster (one process per core), a remote Dask scheduler, or this
process (``synchronous``). Shared by ingest and the archive generator; tasks are coarse (thousands of
files each) and return small summaries, because shipping results back dominates a fine-grained map."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class Executor:
    """Runs batch tasks on Dask (a LocalCluster, a remote scheduler) or in this process."""

    def __init__(self, scheduler: str, workers: int) -> None:
        self.scheduler = scheduler
        self.client: Any = None
        self.cluster: Any = None
        if scheduler == "synchronous":
            return
        from distributed import Client, LocalCluster

        if scheduler == "local":
            n = workers or os.cpu_count() or 1
            self.cluster = LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
            )
            self.client = Client(self.cluster)
        else:
            self.client = Client(scheduler, timeout=30)

    def map(
        self, fn: Callable[..., T], tasks: list[tuple[Any, ...]], name: str = "ingest"
    ) -> Iterator[list[T]]:
        """Results as they finish, grouped: batches that completed while the driver was committing the
        previous group come together, so a driver slower than its workers commits less often."""
        if self.client is None:
            for t in tasks:
                yield [fn(*t)]
            return
        from distributed import as_completed

        futures = [self.client.submit(fn, *t, pure=False, key=f"{name}-{t[0]}") for t in tasks]
        for group in as_completed(futures).batches():
            yield [fut.result() for fut in group]
            for fut in group:
                fut.release()

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
