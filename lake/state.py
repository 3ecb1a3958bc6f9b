"""``<lake>/state.sqlite``: small transactional writes (job runs, anomaly flags, alerts) in SQLite WAL mode.

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
CREATE TABLE IF NOT EXISTS alert_events (
    event_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id   TEXT NOT NULL,
    event      TEXT NOT NULL CHECK (event IN ('open', 'clear', 'ack', 'resolve')),
    ts         TEXT NOT NULL,      -- UTC ISO 8601
    rule       TEXT NOT NULL,
    subject    TEXT NOT NULL,      -- what the rule found: a monitor (and group), or a job
    severity   TEXT,
    value      REAL,               -- the metric when opened or cleared
    detail     TEXT,               -- the sentence the messages carry
    rows       TEXT,               -- JSON: the result rows or job runs that triggered it
    plot       TEXT,               -- the monitor's plot (a path) when opened
    link       TEXT,               -- the site page of the monitor or run (setting site_url)
    run_id     TEXT,               -- the run whose evaluation wrote the event
    user       TEXT,               -- who acknowledged or resolved
    comment    TEXT
);
-- each event at most once per alert (one open, one clear, one acknowledgement, one resolution)
CREATE UNIQUE INDEX IF NOT EXISTS alert_events_once ON alert_events (alert_id, event);
CREATE INDEX IF NOT EXISTS alert_events_rule ON alert_events (rule, subject);
CREATE TRIGGER IF NOT EXISTS alert_events_no_update BEFORE UPDATE ON alert_events
BEGIN SELECT RAISE(ABORT, 'alert history is append-only'); END;
CREATE TRIGGER IF NOT EXISTS alert_events_no_delete BEFORE DELETE ON alert_events
BEGIN SELECT RAISE(ABORT, 'alert history is append-only'); END;
CREATE TABLE IF NOT EXISTS alert_deliveries (
    delivery_id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts         TEXT NOT NULL,
    alert_id   TEXT,               -- NULL for a digest
    kind       TEXT NOT NULL,      -- open | clear | digest
    channel    TEXT NOT NULL,      -- email | webhook
    target     TEXT NOT NULL,      -- addresses or URL
    ok         INTEGER NOT NULL,
    error      TEXT
);
-- every published pin set, for reading the lake as it was (lake.timetravel)
CREATE TABLE IF NOT EXISTS pins_history (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    committed_at TEXT NOT NULL,    -- UTC ISO 8601, as pins.json has it
    namespace    TEXT NOT NULL,
    tables       TEXT NOT NULL     -- JSON: table -> snapshot id
);
CREATE INDEX IF NOT EXISTS pins_history_at ON pins_history (committed_at);
-- the site's saved queries: a user's name for a Query page state (its URL parameters); a save under a
-- name already used replaces it, a delete is one more event (private to their user: not a lake table)
CREATE TABLE IF NOT EXISTS saved_query_events (
    event_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    ts         TEXT NOT NULL,      -- UTC ISO 8601
    user       TEXT NOT NULL,
    name       TEXT NOT NULL,
    action     TEXT NOT NULL CHECK (action IN ('save', 'delete')),
    params     TEXT                -- JSON: the page's URL parameters
);
CREATE INDEX IF NOT EXISTS saved_query_events_user ON saved_query_events (user, name);
"""

# a user's saved queries in force: per name, the latest event, if it is a save
SAVED_QUERIES_SQL = """
SELECT name, ts AS saved_at, params FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY user, name ORDER BY event_id DESC) AS k
    FROM saved_query_events WHERE user = ?
) WHERE k = 1 AND action = 'save' ORDER BY name
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


# one row per alert: its open event with its clear, acknowledgement and resolution (if any); an alert is
# open until its condition clears or someone resolves it
ALERTS_SQL = """
SELECT o.alert_id, o.rule, o.subject, o.severity,
       CASE WHEN r.ts IS NOT NULL THEN 'resolved' WHEN c.ts IS NOT NULL THEN 'cleared'
            WHEN a.ts IS NOT NULL THEN 'acknowledged' ELSE 'open' END AS status,
       o.ts AS opened_at, o.value, o.detail, o.rows, o.plot, o.link, o.run_id,
       c.ts AS cleared_at, c.value AS cleared_value, c.detail AS cleared_detail,
       a.user AS acknowledged_by, a.ts AS acknowledged_at, r.user AS resolved_by, r.ts AS resolved_at
FROM alert_events o
LEFT JOIN alert_events c ON c.alert_id = o.alert_id AND c.event = 'clear'
LEFT JOIN alert_events a ON a.alert_id = o.alert_id AND a.event = 'ack'
LEFT JOIN alert_events r ON r.alert_id = o.alert_id AND r.event = 'resolve'
WHERE o.event = 'open'
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
        try:
            return _arrow(con.execute(sql, args))
        except sqlite3.OperationalError as e:
            if "no such table" not in str(e):
                raise
        # a database from before a table was added, read by someone who may not migrate it: the new
        # tables read as empty
        con.close()
        con = sqlite3.connect(":memory:")
        con.executescript(SCHEMA)
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


STATE_TABLES = (
    "job_events", "job_runs", "anomaly_events", "anomalies", "alert_events", "alerts", "alert_deliveries"
)  # fmt: skip


def state_tables(lake_root: str | Path) -> dict[str, pa.Table]:
    """The state tables for DuckDB and Polars: job, anomaly and alert events, the ``job_runs``,
    ``anomalies`` and ``alerts`` views, and alert deliveries (empty, with their columns, before the first
    run, flag or alert)."""
    sqls = (
        "SELECT * FROM job_events ORDER BY ts",
        RUNS_SQL + " ORDER BY started",
        "SELECT * FROM anomaly_events ORDER BY event_id",
        ANOMALIES_SQL + " ORDER BY flagged_at",
        "SELECT * FROM alert_events ORDER BY event_id",
        ALERTS_SQL + " ORDER BY opened_at",
        "SELECT * FROM alert_deliveries ORDER BY delivery_id",
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
