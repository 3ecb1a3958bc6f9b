"""The lake with its Iceberg catalogue and its state (job runs, locks, flags, alerts) in PostgreSQL.

A real server (Debian's postgresql binaries, :mod:`pgserver`) on a Unix socket; the same archive goes
into a lake on the default SQLite files and into one on PostgreSQL, and every table must agree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import pgserver

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

# what differs between two runs of the same work: run ids, times, hosts, pids, the lake's own paths
VOLATILE = {"run_id", "found_at", "ingested_at", "started", "ended", "ts", "flagged_at", "log_path", "pid",
            "opened_at", "mtime", "committed_at", "plot", "host", "params"}  # fmt: skip


@pytest.fixture(scope="module")
def server() -> Iterator[pgserver.Server]:
    with pgserver.running() as s:
        yield s


@pytest.fixture
def pg(server: pgserver.Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A fresh database holding both the catalogue and the state, set as the settings say."""
    db = "ql_" + uuid.uuid4().hex[:8]
    server.create_database(db)
    urls = {"catalog_uri": server.url(db, "+psycopg"), "state_url": server.url(db)}
    monkeypatch.setenv("QUICKLAKE_CATALOG_URI", urls["catalog_uri"])
    monkeypatch.setenv("QUICKLAKE_STATE_URL", urls["state_url"])
    return urls


def _pg_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url) as con:
        return con.execute(sql).fetchall()


def _work(lake: Path, archive: Path) -> dict[str, Any]:
    """Ingest, a monitor and a maintenance job, and an anomaly flag: what a team's lake records."""
    from app.data import anomaly
    from app.data.scope import Scope
    from app.data.viewer import Viewer
    from lake import settings
    from lake.jobs import run_job

    cfg = {**settings.load({"lake": str(lake)}), "archive": str(archive), "scheduler": "synchronous"}
    runs = {job: run_job(lake, job, cfg=cfg) for job in ("run-ingest", "ir-bias", "check-filesystem")}
    team = Scope(lake, Viewer(name="Zed", email="zed@stsci.edu", team=True), cfg)
    root = str(team.sql("SELECT min(rootname) FROM master").column(0)[0])
    anomaly.flag(team, root, "crosstalk", "chip 2")
    return {"runs": runs, "flagged": root}


def _comparable(t: pa.Table) -> list[tuple[Any, ...]]:
    keep = [c for c in t.column_names if c not in VOLATILE]
    rows = t.select(keep).to_pylist()
    return sorted((tuple(str(r[c]) for c in keep) for r in rows), key=str)


def test_lake_in_postgresql_matches_sqlite(
    tmp_path: Path, pg: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingest.archivegen.generate import generate
    from lake.access import connect, row_counts

    small_archive = tmp_path / "archive"
    generate(small_archive, datasets=8, seed=7)
    t0 = time.monotonic()
    on_pg = _work(tmp_path / "pg", small_archive)
    # the same work on the default engines (SQLite files in the lake)
    monkeypatch.delenv("QUICKLAKE_CATALOG_URI")
    monkeypatch.delenv("QUICKLAKE_STATE_URL")
    on_sqlite = _work(tmp_path / "sqlite", small_archive)
    print(f"both lakes in {time.monotonic() - t0:.1f} s")

    assert on_pg["runs"]["run-ingest"].counts == on_sqlite["runs"]["run-ingest"].counts
    assert on_pg["runs"]["run-ingest"].counts["ingested"] > 0
    for job, run in on_pg["runs"].items():
        assert run.status == on_sqlite["runs"][job].status == "success", (job, run.error)
    # the PostgreSQL lake's folder has no catalogue, state or lock files: they are in the database
    names = {p.name for p in (tmp_path / "pg").iterdir()}
    assert not names & {"catalog.sqlite", "state.sqlite", ".lock", "locks"}, names
    assert {"catalog.sqlite", "state.sqlite"} <= {p.name for p in (tmp_path / "sqlite").iterdir()}
    catalogued = _pg_rows(pg["state_url"], "SELECT table_name FROM iceberg_tables")
    assert {"files", "cards", "master"} <= {r[0] for r in catalogued}
    events = _pg_rows(pg["state_url"], "SELECT job, event, status FROM job_events ORDER BY ts")
    assert ("ir-bias", "end", "success") in events and ("run-ingest", "end", "success") in events

    # every table (lake and state), read through lake.read_sql with the PostgreSQL settings again
    sqlite_counts = row_counts(tmp_path / "sqlite").to_pylist()
    monkeypatch.setenv("QUICKLAKE_CATALOG_URI", pg["catalog_uri"])
    monkeypatch.setenv("QUICKLAKE_STATE_URL", pg["state_url"])
    assert row_counts(tmp_path / "pg").to_pylist() == sqlite_counts
    names = [r["table"] for r in sqlite_counts]
    assert {"job_runs", "anomalies", "monitor_ir_bias", "findings_check_filesystem", "master"} <= set(names)
    monkeypatch.setenv("QUICKLAKE_STATE_URL", pg["state_url"])
    on = {"pg": connect(tmp_path / "pg")}  # (the state tables are read when connecting)
    monkeypatch.delenv("QUICKLAKE_STATE_URL")
    on["sqlite"] = connect(tmp_path / "sqlite")
    differ = [
        n for n in names
        if _comparable(on["pg"].sql(f'SELECT * FROM "{n}"').to_arrow_table())
        != _comparable(on["sqlite"].sql(f'SELECT * FROM "{n}"').to_arrow_table())
    ]  # fmt: skip
    assert not differ, f"tables that differ between PostgreSQL and SQLite: {differ}"
    flags = on["pg"].sql('SELECT rootname, anomaly, "user" FROM anomalies').to_arrow_table().to_pylist()
    assert flags == [{"rootname": on_pg["flagged"], "anomaly": "crosstalk", "user": "zed@stsci.edu"}]
    monkeypatch.setenv("QUICKLAKE_STATE_URL", pg["state_url"])

    # ql sql, a separate process with only the environment's settings
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    query = "SELECT job, status FROM job_runs WHERE job = 'ir-bias'"
    cmd = [sys.executable, "-m", "lake", "sql", "--lake", str(tmp_path / "pg"), "--format", "csv", query]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert '"ir-bias","success"' in out.stdout


def test_append_only_and_one_alert_in_postgresql(pg: dict[str, str], tmp_path: Path) -> None:
    import psycopg

    from lake import state

    with state.connect(tmp_path) as con:
        con.execute(
            'INSERT INTO anomaly_events (ts, rootname, anomaly, action, "user") VALUES (?,?,?,?,?)',
            ("2026-01-01T00:00:00+00:00", "ib0a01abq", "ghost", "flag", "me"),
        )
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            con.execute("UPDATE anomaly_events SET anomaly = 'other'")
        con.execute(
            "INSERT INTO alert_events (alert_id, event, ts, rule, subject) VALUES (?,?,?,?,?)",
            ("a1", "open", "2026-01-01T00:00:00+00:00", "r", "s"),
        )
        with pytest.raises(psycopg.errors.RaiseException, match="alert history is append-only"):
            con.execute("DELETE FROM alert_events WHERE alert_id = ?", ("a1",))
        with pytest.raises(state.integrity_errors()):
            con.execute(
                "INSERT INTO alert_events (alert_id, event, ts, rule, subject) VALUES (?,?,?,?,?)",
                ("a1", "open", "2026-01-01T00:00:01+00:00", "r", "s"),
            )
    got = state.query(tmp_path, state.ANOMALIES_SQL).to_pylist()
    assert [(r["rootname"], r["user"]) for r in got] == [("ib0a01abq", "me")]
    assert not (tmp_path / "state.sqlite").exists()


_HOLD = """
import sys, time
from lake.tables import Lake
with Lake(sys.argv[1]).writer():
    print("held", flush=True)
    time.sleep(600)
"""


def test_writer_and_job_locks_are_advisory_locks(pg: dict[str, str], tmp_path: Path) -> None:
    from lake.errors import LakeLocked
    from lake.jobs import JobResult, run_job
    from lake.tables import Lake

    lake = tmp_path / "lake"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(lake)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LakeLocked, match=rf"quicklake pid {holder.pid} on "), Lake(lake).writer():
            pass
        locks = _pg_rows(pg["state_url"], "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
        assert locks == [(1,)]
        assert not (lake / ".lock").exists()  # no file: hosts sharing the folder see the database's lock
    finally:
        holder.kill()  # a writer that dies: PostgreSQL ends its session and its lock with it
        holder.wait()
        holder.stdout.close()  # type: ignore[union-attr]
    deadline = time.monotonic() + 20
    while True:
        try:
            with Lake(lake).writer():
                break
        except LakeLocked:
            assert time.monotonic() < deadline, "the dead writer's lock was never released"
            time.sleep(0.2)

    # a job's lock: a second run while the first holds it is skipped-locked
    inner: dict[str, Any] = {}

    def outer_work(ctx: Any) -> JobResult:
        inner["run"] = run_job(lake, "maintain-lake", work=lambda c: JobResult(worked=True))
        return JobResult(worked=True)

    first = run_job(lake, "maintain-lake", work=outer_work)
    assert first.status == "success"
    assert inner["run"].status == "skipped-locked"
    assert not (lake / "locks").exists()
