"""lake.executor: a LocalCluster whose scheduler runs in a process of its own (large ingests, #16)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from lake.executor import Executor


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_scheduler_apart_runs_tasks_on_worker_processes_with_the_config() -> None:
    import dask

    stealing = "distributed.scheduler.work-stealing"
    with Executor("local", 2, scheduler_apart=True) as ex:
        assert ex.workers == 2
        tasks = [(2, i) for i in range(6)]
        got = [r for group in ex.map(pow, tasks, key=lambda t: t[1]) for r in group]
        assert ex.submit(pow, 3, 2, key="three-squared").result() == 9
        workers = set(ex.client.run(os.getpid).values())
        scheduler = ex.client.run_on_scheduler(os.getpid)
        assert dask.config.get(stealing) is True
        assert ex.client.run_on_scheduler(dask.config.get, stealing) is False  # the ingest's config
    assert sorted(got) == [1, 2, 4, 8, 16, 32]
    assert len(workers) == 2 and os.getpid() not in workers and scheduler not in {os.getpid(), *workers}
    assert not _alive(scheduler) and not any(_alive(w) for w in workers)


DRIVER = """
import json, os, sys, time
import psutil
import pytest
from lake.executor import Executor
ex = Executor("local", 2, scheduler_apart=True)
print(json.dumps([p.pid for p in psutil.Process().children(recursive=True)]), flush=True)
time.sleep(120)
"""


def test_nothing_outlives_a_driver_killed_by_sigkill() -> None:
    with subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        children = json.loads(proc.stdout.readline())
        assert len(children) >= 3  # the scheduler and two workers
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in children if _alive(p)]


@pytest.mark.slow
def test_an_ingest_with_the_scheduler_apart_makes_the_same_lake(
    archive_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lake
    from ingest import run

    monkeypatch.setattr(run, "SCHEDULER_APART", 1)  # (large ingests only, else)
    s = run.ingest(tmp_path / "apart", str(archive_copy), scheduler="local", workers=2, batch_files=50)
    t = run.ingest(tmp_path / "here", str(archive_copy), scheduler="synchronous", batch_files=50)
    assert s.errors == t.errors == 0 and s.ingested == t.ingested > run.SMALL_INGEST and s.batches >= 2
    sql = "SELECT count(*), sum(length(image)), count(DISTINCT path) FROM cards"
    assert (
        lake.connect(tmp_path / "apart").sql(sql).fetchall()
        == lake.connect(tmp_path / "here").sql(sql).fetchall()
    )
