"""``<lake>/state.sqlite``: small transactional writes (job runs; later anomaly flags) in SQLite WAL mode.

Tables are append-only event logs, so history comes free and concurrent writers never update a row in
place (``docs/background/lake-formats.md`` §4: 2 x 500 inserts from two processes, 0 errors, readers never
blocked). DuckDB 2.0 reads them through ``sqlite3`` -> Arrow (no extension needed): see
:func:`state_tables`, used by :func:`lake.connect` and when ``catalog.duckdb`` is written.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa

SCHEMA = """
CREATE TABLE IF NOT EXISTS job_events (
    run_id     TEXT NOT NULL,
    job        TEXT NOT NULL,
    event      TEXT NOT NULL,      -- start | end
    ts         TEXT NOT NULL,      -- UTC ISO 8601
    host       TEXT,
    user       TEXT,
    pid        INTEGER,
    params     TEXT,               -- JSON
    status     TEXT,               -- running | success | no-work | failed | skipped-locked
    counts     TEXT,               -- JSON: work done
    error      TEXT,
    log_path   TEXT
);
CREATE INDEX IF NOT EXISTS job_events_job ON job_events (job, ts);
CREATE INDEX IF NOT EXISTS job_events_run ON job_events (run_id);
CREATE TABLE IF NOT EXISTS anomaly_events (
    event_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    ts         TEXT NOT NULL,      -- UTC ISO 8601
    rootname   TEXT NOT NULL,
    anomaly    TEXT NOT NULL,      -- one of app.data.anomaly.ANOMALY_TYPES
    action     TEXT NOT NULL CHECK (action IN ('flag', 'unflag')),
    user       TEXT NOT NULL,
    comment    TEXT
);
CREATE INDEX IF NOT EXISTS anomaly_events_root ON anomaly_events (rootname, anomaly);
-- the history is append-only: corrections are new events, never edits
CREATE TRIGGER IF NOT EXISTS anomaly_events_no_update BEFORE UPDATE ON anomaly_events
BEGIN SELECT RAISE(ABORT, 'anomaly history is append-only'); END;
CREATE TRIGGER IF NOT EXISTS anomaly_events_no_delete BEFORE DELETE ON anomaly_events
BEGIN SELECT RAISE(ABORT, 'anomaly history is append-only'); END;
"""

# the flags in force: per dataset and anomaly type, the latest event, if it is a flag
ANOMALIES_SQL = """
SELECT rootname, anomaly, ts AS flagged_at, user, comment FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY rootname, anomaly ORDER BY event_id DESC) AS k
    FROM anomaly_events
) WHERE k = 1 AND action = 'flag'
"""

# one row per run: its start event joined with its end event (if any)
RUNS_SQL = """
SELECT s.run_id, s.job, s.ts AS started, e.ts AS ended, s.host, s.user, s.pid, s.params,
       COALESCE(e.status, 'running') AS status, e.counts, e.error, s.log_path
FROM job_events s LEFT JOIN job_events e ON e.run_id = s.run_id AND e.event = 'end'
WHERE s.event = 'start'
"""


def path_of(lake_root: str | Path) -> Path:
    return Path(lake_root) / "state.sqlite"


@contextmanager
def connect(lake_root: str | Path) -> Iterator[sqlite3.Connection]:
    """A connection in WAL mode with a busy timeout; the schema is created on first use."""
    p = path_of(lake_root)
    p.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(p, timeout=10.0, isolation_level=None)  # autocommit: every event is durable
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.executescript(SCHEMA)
        yield con
    finally:
        con.close()


def query(lake_root: str | Path, sql: str, args: tuple[object, ...] = ()) -> pa.Table:
    """Run a read query on the state database and return Arrow: read-only, so a user who may only read
    the lake can run it (nothing is created or migrated); no database yet reads as empty tables."""
    p = path_of(lake_root)
    if not p.exists():
        con = sqlite3.connect(":memory:")
        con.executescript(SCHEMA)
    else:
        con = _read_only(p)
    try:
        return _arrow(con.execute(sql, args))
    finally:
        con.close()


def _read_only(p: Path) -> sqlite3.Connection:
    """``p`` opened read-only. A WAL database needs its -shm file; a reader who may not create it (a
    read-only lake folder, no writer around) reads the file as immutable: with no -wal file left by a
    writer, the file alone is the whole database."""
    uri = p.resolve().as_uri()
    con = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=10.0)
    try:
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return con
    except sqlite3.OperationalError:
        con.close()
    return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True)


STATE_TABLES = ("job_events", "job_runs", "anomaly_events", "anomalies")


def state_tables(lake_root: str | Path) -> dict[str, pa.Table]:
    """The state tables for DuckDB and Polars: job and anomaly events, and the ``job_runs`` and
    ``anomalies`` views (empty, with their columns, before the first run or flag)."""
    sqls = (
        "SELECT * FROM job_events ORDER BY ts",
        RUNS_SQL + " ORDER BY started",
        "SELECT * FROM anomaly_events ORDER BY event_id",
        ANOMALIES_SQL + " ORDER BY flagged_at",
    )
    return {name: query(lake_root, sql) for name, sql in zip(STATE_TABLES, sqls, strict=True)}


def _arrow(cur: sqlite3.Cursor) -> pa.Table:
    if cur.description is None:
        return pa.table({})
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    return pa.table(
        {n: pa.array([r[i] for r in rows], pa.string() if not rows else None) for i, n in enumerate(names)}
    )
