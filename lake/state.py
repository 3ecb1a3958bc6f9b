"""The lake's state: small transactional writes (job runs, anomaly flags, alerts, commits) and its locks.

Kept in ``<lake>/state.sqlite`` (SQLite, WAL mode) by default, or in PostgreSQL when the setting
``state_url`` names a database (``postgresql://user@host/db``): a team whose hosts share the lake over a
network filesystem, where SQLite's WAL and ``flock`` do not work across hosts. Both engines run the same
SQL through one thin layer (:class:`Connection`: ``?`` placeholders, one exclusive transaction); only the
tables' DDL differs (auto-numbered keys, the append-only triggers). The writer lock and the job locks
are ``flock`` on files in the lake with SQLite, and PostgreSQL session advisory locks with PostgreSQL
(:func:`lock`): either way the lock goes when its holder dies.

Tables are append-only event logs, so history comes free and concurrent writers never update a row in
place (``docs/background/lake-formats.md`` §4: 2 x 500 inserts from two processes, 0 errors, readers never
blocked). DuckDB 2.0 reads them through ``sqlite3`` -> Arrow (no extension needed): see
:func:`state_tables`, used by :func:`lake.connect` and when ``catalog.duckdb`` is written.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa  # imported where used: `ql tables` needs no pyarrow

# The tables, written once for both engines: {id} is an auto-numbered key, {real} a double.
TABLES = """
CREATE TABLE IF NOT EXISTS job_events (
    run_id     TEXT NOT NULL,
    job        TEXT NOT NULL,
    event      TEXT NOT NULL,      -- start | end
    ts         TEXT NOT NULL,      -- UTC ISO 8601
    host       TEXT,
    "user"     TEXT,
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
    event_id   {id},
    ts         TEXT NOT NULL,      -- UTC ISO 8601
    rootname   TEXT NOT NULL,
    anomaly    TEXT NOT NULL,      -- one of app.data.anomaly.ANOMALY_TYPES
    action     TEXT NOT NULL CHECK (action IN ('flag', 'unflag')),
    "user"     TEXT NOT NULL,
    comment    TEXT
);
CREATE INDEX IF NOT EXISTS anomaly_events_root ON anomaly_events (rootname, anomaly);
CREATE TABLE IF NOT EXISTS alert_events (
    event_id   {id},
    alert_id   TEXT NOT NULL,
    event      TEXT NOT NULL CHECK (event IN ('open', 'clear', 'ack', 'resolve')),
    ts         TEXT NOT NULL,      -- UTC ISO 8601
    rule       TEXT NOT NULL,
    subject    TEXT NOT NULL,      -- what the rule found: a monitor (and group), or a job
    severity   TEXT,
    value      {real},             -- the metric when opened or cleared
    detail     TEXT,               -- the sentence the messages carry
    rows       TEXT,               -- JSON: the result rows or job runs that triggered it
    plot       TEXT,               -- the monitor's plot (a path) when opened
    link       TEXT,               -- the site page of the monitor or run (setting site_url)
    run_id     TEXT,               -- the run whose evaluation wrote the event
    "user"     TEXT,               -- who acknowledged or resolved
    comment    TEXT
);
-- each event at most once per alert (one open, one clear, one acknowledgement, one resolution)
CREATE UNIQUE INDEX IF NOT EXISTS alert_events_once ON alert_events (alert_id, event);
CREATE INDEX IF NOT EXISTS alert_events_rule ON alert_events (rule, subject);
CREATE TABLE IF NOT EXISTS alert_deliveries (
    delivery_id {id},
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
    seq          {id},
    committed_at TEXT NOT NULL,    -- UTC ISO 8601, as pins.json has it
    namespace    TEXT NOT NULL,
    tables       TEXT NOT NULL     -- JSON: table -> snapshot id
);
CREATE INDEX IF NOT EXISTS pins_history_at ON pins_history (committed_at);
-- the site's saved queries: a user's name for a Query page state (its URL parameters); a save under a
-- name already used replaces it, a delete is one more event (private to their user: not a lake table)
CREATE TABLE IF NOT EXISTS saved_query_events (
    event_id   {id},
    ts         TEXT NOT NULL,      -- UTC ISO 8601
    "user"     TEXT NOT NULL,
    name       TEXT NOT NULL,
    action     TEXT NOT NULL CHECK (action IN ('save', 'delete')),
    params     TEXT                -- JSON: the page's URL parameters
);
CREATE INDEX IF NOT EXISTS saved_query_events_user ON saved_query_events ("user", name);
"""

# a user's saved queries in force: per name, the latest event, if it is a save
SAVED_QUERIES_SQL = """
SELECT name, ts AS saved_at, params FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY "user", name ORDER BY event_id DESC) AS k
    FROM saved_query_events WHERE "user" = ?
) AS latest WHERE k = 1 AND action = 'save' ORDER BY name
"""
APPEND_ONLY = ("anomaly", "alert")  # <name>_events: corrections are new events, never edits

SQLITE_SCHEMA = TABLES.format(id="INTEGER PRIMARY KEY AUTOINCREMENT", real="REAL") + "".join(
    f"""CREATE TRIGGER IF NOT EXISTS {n}_events_no_{op} BEFORE {op.upper()} ON {n}_events
BEGIN SELECT RAISE(ABORT, '{n} history is append-only'); END;
"""
    for n in APPEND_ONLY
    for op in ("update", "delete")
)
SCHEMA = SQLITE_SCHEMA  # (the name earlier versions used)

POSTGRES_SCHEMA = (
    TABLES.format(id="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", real="DOUBLE PRECISION")
    + """CREATE OR REPLACE FUNCTION quicklake_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '% history is append-only', TG_ARGV[0]; END $$;
"""
    + "".join(
        f"CREATE OR REPLACE TRIGGER {n}_events_append_only BEFORE UPDATE OR DELETE ON {n}_events "
        f"FOR EACH ROW EXECUTE FUNCTION quicklake_append_only('{n}');\n"
        for n in APPEND_ONLY
    )
)

# the flags in force: per dataset and anomaly type, the latest event, if it is a flag
ANOMALIES_SQL = """
SELECT rootname, anomaly, ts AS flagged_at, "user", comment FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY rootname, anomaly ORDER BY event_id DESC) AS k
    FROM anomaly_events
) AS latest WHERE k = 1 AND action = 'flag'
"""

# one row per run: its start event joined with its end event (if any)
RUNS_SQL = """
SELECT s.run_id, s.job, s.ts AS started, e.ts AS ended, s.host, s."user", s.pid, s.params,
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
       a."user" AS acknowledged_by, a.ts AS acknowledged_at, r."user" AS resolved_by, r.ts AS resolved_at
FROM alert_events o
LEFT JOIN alert_events c ON c.alert_id = o.alert_id AND c.event = 'clear'
LEFT JOIN alert_events a ON a.alert_id = o.alert_id AND a.event = 'ack'
LEFT JOIN alert_events r ON r.alert_id = o.alert_id AND r.event = 'resolve'
WHERE o.event = 'open'
"""


def path_of(lake_root: str | Path) -> Path:
    return Path(lake_root) / "state.sqlite"


def url_of(lake_root: str | Path) -> str:
    """The state database's URL: the setting ``state_url`` (from ``quicklake.toml`` or
    ``QUICKLAKE_STATE_URL``), else the SQLite file in the lake."""
    from lake import settings

    return str(settings.load().get("state_url") or "") or f"sqlite:///{path_of(lake_root)}"


def _is_postgres(url: str) -> bool:
    return url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def _libpq(url: str) -> str:
    """A libpq URI from a SQLAlchemy-style one (``postgresql+psycopg://`` names the driver)."""
    return "postgresql:" + url.split(":", 1)[1]


# errors a unique index raises (someone else recorded the same event first), for both engines
def integrity_errors() -> tuple[type[Exception], ...]:
    errors: list[type[Exception]] = [sqlite3.IntegrityError]
    try:
        import psycopg

        errors.append(psycopg.errors.IntegrityError)
    except ImportError:  # no PostgreSQL driver: no PostgreSQL state either
        pass
    return tuple(errors)


def columns(names: Sequence[str]) -> str:
    """A column list for INSERT, quoted (``user`` is a reserved word in PostgreSQL)."""
    return ", ".join(f'"{c}"' for c in names)


class Connection:
    """One connection to the state database, SQLite or PostgreSQL, in autocommit mode (every event is
    durable on its own). ``execute`` takes ``?`` placeholders on both engines."""

    def __init__(self, raw: Any, postgres: bool) -> None:
        self.raw = raw
        self.postgres = postgres

    def execute(self, sql: str, args: Sequence[object] = ()) -> Any:
        if not self.postgres:
            return self.raw.execute(sql, tuple(args))
        if args:  # psycopg's placeholders are %s, and a literal % is %%
            sql = sql.replace("%", "%%").replace("?", "%s")
            return self.raw.execute(sql, tuple(args))
        return self.raw.execute(sql)

    @contextmanager
    def exclusive(self, table: str) -> Iterator[None]:
        """One transaction in which nobody else writes ``table``: a check and the write it decides are
        one step (SQLite: BEGIN IMMEDIATE locks the database; PostgreSQL: a table lock that readers
        pass)."""
        if self.postgres:
            self.raw.execute("BEGIN")
            self.raw.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
        else:
            self.raw.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.raw.execute("ROLLBACK")
            raise
        self.raw.execute("COMMIT")


_PG_READY: set[str] = set()  # databases whose tables this process has made sure of


def _application_name() -> str:
    # who holds a lock, as PostgreSQL shows it (pg_stat_activity) and LakeLocked says it
    return f"quicklake pid {os.getpid()} on {socket.gethostname()}"[:63]


def _pg_connect(url: str, *, create: bool) -> Any:
    import psycopg

    raw = psycopg.connect(_libpq(url), autocommit=True, application_name=_application_name())
    if create and url not in _PG_READY:
        # one statement string runs as one transaction; the lock keeps two first users apart
        first = "SELECT pg_advisory_xact_lock(hashtextextended('quicklake-schema', 0));"
        # a reader who may not create tables reads what there is
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            raw.execute(first + POSTGRES_SCHEMA)
        _PG_READY.add(url)
    return raw


@contextmanager
def connect(lake_root: str | Path) -> Iterator[Connection]:
    """A connection to the lake's state database; its tables are created on first use."""
    url = url_of(lake_root)
    if _is_postgres(url):
        raw = _pg_connect(url, create=True)
        try:
            yield Connection(raw, True)
        finally:
            raw.close()
        return
    p = path_of(lake_root)
    p.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(p, timeout=10.0, isolation_level=None)  # autocommit: every event is durable
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.executescript(SQLITE_SCHEMA)
        yield Connection(con, False)
    finally:
        con.close()


def query(lake_root: str | Path, sql: str, args: tuple[object, ...] = ()) -> pa.Table:
    """Run a read query on the state database and return Arrow: read-only, so a user who may only read
    the lake can run it (nothing is created or migrated); no database yet reads as empty tables."""
    return _read(lake_root, sql, args, _arrow)


def count(lake_root: str | Path, sql: str) -> int:
    """Rows of a read query on the state database (as :func:`query` reads it), without pyarrow."""
    got = _read(lake_root, f"SELECT count(*) FROM ({sql}) AS counted", (), lambda cur: cur.fetchone())
    return int(got[0])


def _read(lake_root: str | Path, sql: str, args: tuple[object, ...], fetch: Callable[[Any], Any]) -> Any:
    url = url_of(lake_root)
    if _is_postgres(url):
        raw = _pg_connect(url, create=True)
        try:
            return fetch(Connection(raw, True).execute(sql, args))
        finally:
            raw.close()
    p = path_of(lake_root)
    if not p.exists():
        con = sqlite3.connect(":memory:")
        con.executescript(SQLITE_SCHEMA)
    else:
        con = _read_only(p)
    try:
        try:
            return fetch(con.execute(sql, args))
        except sqlite3.OperationalError as e:
            if "no such table" not in str(e):
                raise
        # a database from before a table was added, read by someone who may not migrate it: the new
        # tables read as empty
        con.close()
        con = sqlite3.connect(":memory:")
        con.executescript(SQLITE_SCHEMA)
        return fetch(con.execute(sql, args))
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


# ------------------------------------------------------------------------------------------ locks


class Lock:
    """What :func:`lock` yields: whether this process holds the lock, and if not, who does."""

    def __init__(self, held: bool, holder: str = "") -> None:
        self.held = held
        self.holder = holder


@contextmanager
def lock(lake_root: str | Path, name: str, file: Path, *, wait: float = 0.0) -> Iterator[Lock]:
    """Hold the lock ``name`` of the lake while the block runs, waiting up to ``wait`` seconds for it.

    With SQLite state, ``flock`` on ``file`` (its content names the holder); with PostgreSQL state, a
    session advisory lock on ``name`` in the state database, so that hosts sharing the lake over a
    network filesystem exclude each other. Either is released when the holder dies."""
    url = url_of(lake_root)
    if _is_postgres(url):
        with _pg_lock(url, name, wait) as got:
            yield got
        return
    with _file_lock(file, wait) as got:
        yield got


@contextmanager
def _file_lock(file: Path, wait: float) -> Iterator[Lock]:
    file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield Lock(False, os.pread(fd, 64, 0).decode(errors="replace").strip())
                    return
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        yield Lock(True)
    finally:
        os.close(fd)


# the advisory lock's 64-bit key, per schema (a database may hold several lakes' states, one per schema)
_PG_KEY = "hashtextextended(current_schema() || ':' || ?, 0)"
_PG_HOLDER = f"""
SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND ((l.classid::bigint << 32) | l.objid::bigint) = ({_PG_KEY})
"""


@contextmanager
def _pg_lock(url: str, name: str, wait: float) -> Iterator[Lock]:
    raw = _pg_connect(url, create=False)
    con = Connection(raw, True)
    deadline = time.monotonic() + wait
    try:
        while not con.execute(f"SELECT pg_try_advisory_lock({_PG_KEY})", (name,)).fetchone()[0]:
            if time.monotonic() >= deadline:
                row = con.execute(_PG_HOLDER, (name,)).fetchone()
                yield Lock(False, row[0] if row else "")
                return
            time.sleep(0.2)
        yield Lock(True)
    finally:
        raw.close()  # the session's advisory locks go with it


# ------------------------------------------------------------------------------------------ reading

STATE_TABLES = (
    "job_events", "job_runs", "anomaly_events", "anomalies", "alert_events", "alerts", "alert_deliveries"
)  # fmt: skip


def _state_sql() -> dict[str, str]:
    sqls = (
        "SELECT * FROM job_events ORDER BY ts",
        RUNS_SQL + " ORDER BY started",
        "SELECT * FROM anomaly_events ORDER BY event_id",
        ANOMALIES_SQL + " ORDER BY flagged_at",
        "SELECT * FROM alert_events ORDER BY event_id",
        ALERTS_SQL + " ORDER BY opened_at",
        "SELECT * FROM alert_deliveries ORDER BY delivery_id",
    )
    return dict(zip(STATE_TABLES, sqls, strict=True))


def state_tables(lake_root: str | Path, names: Collection[str] = STATE_TABLES) -> dict[str, pa.Table]:
    """The state tables for DuckDB and Polars (or those of ``names``): job, anomaly and alert events, the
    ``job_runs``, ``anomalies`` and ``alerts`` views, and alert deliveries (empty, with their columns,
    before the first run, flag or alert)."""
    return {name: query(lake_root, sql) for name, sql in _state_sql().items() if name in names}


def state_counts(lake_root: str | Path) -> dict[str, int]:
    """Rows of each of :func:`state_tables`, counted by the state database (``ql tables``)."""
    return {name: count(lake_root, sql) for name, sql in _state_sql().items()}


def _arrow(cur: Any) -> pa.Table:
    import pyarrow as pa

    if cur.description is None:
        return pa.table({})
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    from lake.pylist import column

    return pa.table({n: column([r[i] for r in rows]) for i, n in enumerate(names)})
