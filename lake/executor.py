"""Where batch tasks run: a Dask LocalCluster (one process per core), a remote Dask scheduler, or this
process (``synchronous``). Shared by ingest and the archive generator; tasks are coarse (thousands of
files each) and return small summaries, because shipping results back dominates a fine-grained map."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future
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


# Seconds between the cluster object's pushes of its description to the scheduler (1 by default: an RPC a
# second from the driver's event loop, for dashboards, which ingest's clusters have none of)
SYNC_INTERVAL = 10


class Executor:
    """Runs batch tasks on Dask (a LocalCluster, a remote scheduler) or in this process.

    ``scheduler_apart`` (``local``): the cluster's scheduler runs in a process of its own instead of this
    one (the workers are this process's children either way), so that its work (a task's transitions,
    the workers' heartbeats: about 0.05 ms of CPU per ingested file) does not take the driver's time; it
    costs a second to start, and ends with this process however this process ends."""

    def __init__(self, scheduler: str, workers: int, *, scheduler_apart: bool = False) -> None:
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
                if scheduler_apart:
                    self.cluster = _cluster_with_scheduler_apart(n)
                else:
                    # no dashboard; the scheduler's HTTP routes on any free port: on the default 8787 a
                    # second cluster on the machine (another user's, a test's) made the start fail
                    self.cluster = LocalCluster(
                        n_workers=n,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                        silence_logs=40,
                        scheduler_kwargs={"dashboard_address": ":0"},
                        scheduler_sync_interval=SYNC_INTERVAL,
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

    def submit(self, fn: Callable[..., T], *args: Any, key: str, first: bool = False) -> Future[T]:
        """``fn(*args)`` as one task (Dask key ``key``), started now (in this process: computed here and
        now); its ``result()`` must be asked for before the executor closes. With ``first``, it runs
        before the tasks of a :meth:`map` still waiting for a worker (else after them)."""
        if self.client is not None:
            got: Future[T] = self.client.submit(
                fn, *args, pure=False, key=key, priority=1 if first else 0
            )  # (Dask's, alike)
            return got
        done: Future[T] = Future()
        try:
            done.set_result(fn(*args))
        except Exception as e:  # raised by result(), as Dask's future does
            done.set_exception(e)
        return done

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


# The scheduler's process: Dask's own ``dask spec`` command, which also exits when its standard input
# closes, i.e. when the process that started it ends, even by kill -9 (a LocalCluster's workers do the
# same through a pipe of their own), so that no scheduler outlives its ingest.
_SCHEDULER_MAIN = """
import os, sys, threading
def _watch():
    sys.stdin.buffer.read()
    os._exit(0)
threading.Thread(target=_watch, daemon=True).start()
from distributed.cli.dask_spec import main
main(["--spec", sys.argv[1]])
"""


def _cluster_with_scheduler_apart(n: int) -> Any:
    """A LocalCluster's equal (``n`` single-threaded worker processes, this process's children, no
    dashboard, quiet logs, the current Dask config) but for its scheduler, in a process of its own."""
    import logging

    from distributed import Nanny, SpecCluster
    from distributed.worker_memory import parse_memory_limit

    worker = {
        "cls": Nanny,
        "options": {
            "host": "127.0.0.1",
            "nthreads": 1,
            "dashboard": False,
            "silence_logs": 40,
            "memory_limit": parse_memory_limit("auto", 1, n, logger=logging.getLogger(__name__)),
        },
    }
    options = {"host": "127.0.0.1", "port": 0, "dashboard": False, "dashboard_address": ":0"}
    scheduler = {"cls": _scheduler_process_class(), "options": {"scheduler_kwargs": options}}
    return SpecCluster(
        workers=dict.fromkeys(range(n), worker),
        scheduler=scheduler,
        worker=worker,
        silence_logs=40,
        scheduler_sync_interval=SYNC_INTERVAL,
    )


def _scheduler_process_class() -> type:
    import asyncio
    import json
    import sys
    import tempfile
    from pathlib import Path

    import dask
    from distributed.deploy.subprocess import SubprocessScheduler
    from distributed.utils import Deadline

    class _SchedulerProcess(SubprocessScheduler):
        """distributed's SubprocessScheduler, started by :data:`_SCHEDULER_MAIN` with a standard input
        that stays open as long as this process lives, and with this process's Dask config."""

        async def _start(self) -> None:
            spec = json.dumps({"cls": "distributed.Scheduler", "opts": self.scheduler_kwargs})
            env = {**os.environ, "DASK_INTERNAL_INHERIT_CONFIG": dask.config.serialize(dask.config.config)}
            # its log goes to a file, read if it fails to start (a pipe nobody reads fills and blocks it)
            with tempfile.TemporaryFile() as log:
                self.process = await asyncio.create_subprocess_exec(
                    sys.executable, "-c", _SCHEDULER_MAIN, spec,
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=log, env=env,
                )  # fmt: skip
                scheduler_file = Path(self.scheduler_kwargs["scheduler_file"])
                deadline = Deadline.after(self.timeout)
                while not deadline.expired and self.process.returncode is None:
                    try:
                        self.address = json.loads(scheduler_file.read_text())["address"]
                        scheduler_file.unlink(missing_ok=True)
                        return
                    except (OSError, ValueError, KeyError):  # not written yet, or half
                        await asyncio.sleep(0.05)
                log.seek(0)
                raise RuntimeError(f"the Dask scheduler did not start: {log.read().decode()[-2000:]}")

    return _SchedulerProcess
