"""Ingest and a monitor on a multi-process Dask cluster: a ``dask scheduler`` process and two ``dask worker``
processes started from the command line, as on a team's cluster (docs/deploy.md), all on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in reversed(procs):
        p.terminate()
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """A scheduler and two single-threaded workers (separate processes; the workers import this tree)."""
    from distributed import Client

    dask = str(Path(sys.executable).with_name("dask"))
    log = tmp_path_factory.mktemp("dask")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    address = f"tcp://127.0.0.1:{_free_port()}"
    procs: list[subprocess.Popen[bytes]] = []
    files = []
    try:
        cmds = [[dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                 "--dashboard-address", "127.0.0.1:0"]]  # fmt: skip
        cmds += [[dask, "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1",
                  "--dashboard-address", "127.0.0.1:0", "--no-nanny"]] * 2  # fmt: skip
        for i, cmd in enumerate(cmds):
            f = open(log / f"{i}.log", "wb")  # noqa: SIM115 (closed at the end)
            files.append(f)
            procs.append(subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=log))
            if i == 0:
                time.sleep(1.0)
        with Client(address, timeout=60) as c:
            c.wait_for_workers(2, timeout=90)
            pids = c.run(os.getpid)
        yield {"address": address, "pids": set(pids.values()), "log": log}
    finally:
        _stop(procs)
        for f in files:
            f.close()


def _task_keys(dask_scheduler: object) -> set[str]:
    return {str(t[0]) for t in dask_scheduler.transition_log}  # type: ignore[attr-defined]


def test_ingest_and_monitor_on_a_dask_cluster(cluster: dict[str, object], tmp_path: Path) -> None:
    from ingest.archivegen.generate import generate
    from ingest.run import ingest
    from lake import settings
    from lake.access import read_sql
    from lake.jobs import run_job

    archive, lake = tmp_path / "archive", tmp_path / "lake"
    generate(archive, datasets=8, seed=7, pixels="sparse")
    address = str(cluster["address"])
    s = ingest(lake, str(archive), scheduler=address, batch_files=40)
    n = len(list(archive.rglob("*.fits")))
    assert s.ingested == n and s.errors == 0 and s.batches >= 2
    ref = ingest(tmp_path / "ref", str(archive), scheduler="synchronous")
    q = "SELECT path, count(*) AS n FROM cards GROUP BY path ORDER BY path"
    assert read_sql(q, lake) == read_sql(q, tmp_path / "ref") and ref.ingested == n

    cfg = {**settings.load({"lake": str(lake)}), "archive": str(archive), "scheduler": address}
    run = run_job(lake, "ir-bias", cfg=cfg)
    assert run.status == "success", run.error
    assert run.counts["measured"] > 0 and run.counts["errors"] == 0
    # the work ran on the cluster: its scheduler saw the ingest's and the monitor's tasks
    from distributed import Client

    with Client(address, timeout=30) as c:
        keys = c.run_on_scheduler(_task_keys)
    assert any(k.startswith("ingest-") for k in keys), sorted(keys)
    assert any(k.startswith("monitor-") for k in keys), sorted(keys)
    rows = read_sql("SELECT count(*) FROM monitor_ir_bias", lake).column(0)[0].as_py()
    cfg_sync = {**cfg, "scheduler": "synchronous"}
    run_job(tmp_path / "ref", "ir-bias", cfg={**cfg_sync, "lake": str(tmp_path / "ref")})
    assert rows == read_sql("SELECT count(*) FROM monitor_ir_bias", tmp_path / "ref").column(0)[0].as_py() > 0
