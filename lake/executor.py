"""Where batch tasks run: a Dask LocalCluster (one process per core), a remote Dask scheduler, or this
process (``synchronous``). Shared by ingest and the archive generator; tasks are coarse (thousands of
files each) and return small summaries, because shipping results back dominates a fine-grained map."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

# How ingest runs its own LocalCluster. It has no dashboard, so nobody reads the workers' statistical
# profiles (a stack sample every 10 ms) or fine-grained system metrics; switched off, they leave ~8% more
# of the cores to the tasks, which is most of what kept 2 workers from 2x on a 2-core machine
# (bench/ingest.py). A worker is sent its next batch only when it finishes one (saturation 1.0, not 1.1,
# which queues a second batch on every worker): batches are seconds long and carry no data, so nothing is
# gained by sending early, and the half-size batches of the last round go to whichever worker is free.
# The scheduler runs in the ingest driver's process: its periodic work (the cluster object's sync with
# it, event-loop ticks, disk counters nobody plots, work stealing, which queued tasks never use) is kept
# rare, some 0.3 s of the driver's CPU less per minute of ingest (bench/driver.py).
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.admin.system-monitor.disk": False,
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.tick.interval": "1s",
    "distributed.scheduler.worker-saturation": 1.0,
    "distributed.scheduler.work-stealing": False,
    "distributed.deploy.cluster-repr-interval": "10s",
    "distributed.client.scheduler-info-interval": "10s",
}


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
            import dask

            n = workers or os.cpu_count() or 1
            with dask.config.set(LOCAL_CLUSTER_CONFIG):
                # no dashboard; the scheduler's HTTP routes on any free port: on the default 8787 a second
                # cluster on the machine (another user's, a test's) made the start fail
                self.cluster = LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=40,
                    scheduler_kwargs={"dashboard_address": ":0"},
                )
                self.client = Client(self.cluster)
        else:
            self.client = Client(scheduler, timeout=30)

    @property
    def workers(self) -> int:
        """How many tasks run at once (the workers' threads; 1 in this process)."""
        if self.client is None:
            return 1
        info = self.client.scheduler_info(n_workers=-1)["workers"].values()
        return max(1, sum(int(w.get("nthreads", 1)) for w in info))

    def map(
        self,
        fn: Callable[..., T],
        tasks: list[tuple[Any, ...]],
        name: str = "ingest",
        key: Callable[[tuple[Any, ...]], object] | None = None,
    ) -> Iterator[list[T]]:
        """``fn(*task)`` for every task; results as they finish, grouped: batches that completed while the
        driver was committing the previous group come together, so a driver slower than its workers
        commits less often. A task's Dask key is ``name-`` and ``key(task)`` (by default its first
        element), which must be unique per task."""
        if self.client is None:
            for t in tasks:
                yield [fn(*t)]
            return
        from distributed import as_completed

        futures = [
            self.client.submit(fn, *t, pure=False, key=f"{name}-{key(t) if key else t[0]}") for t in tasks
        ]
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
