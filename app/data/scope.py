"""What one viewer may see of the lake: a sandboxed DuckDB connection whose tables hold only their rows.

A :class:`Scope` registers every lake table as a ``pyarrow.dataset`` over the files of its pinned
snapshot. For a guest each dataset is filtered to public rootnames (:mod:`lake.proprietary`) *before*
DuckDB sees it, and tables that cannot be tied to a dataset are left out, so no query, however written,
reaches proprietary rows. The connection has no file access at all (``enable_external_access=false``
with no allowed directories), no extension loading, no Python replacement scans and a locked
configuration: the tested recipe of ``docs/background/lake-formats.md`` §5, variant D.

Two DuckDB databases serve a scope (issue #21). The site's own queries run on the scope's database,
under its lock, spilling only into a private temporary folder that no SQL string reaches. A user's SQL
(:meth:`Scope.console`: the console, the Plot tab's condition) never runs there: it runs on a connection
of its own to the *query pool*, one database for the whole process whose ``console_memory`` and
``console_threads`` are the budget every user query of every session shares; it has no temporary folder
at all (nothing to list or read, and a query that outgrows the budget fails instead of filling a disk)
and sees only the tables registered on its own connection, those of its viewer. So a guest's query
neither waits for nor holds a lock another guest's page needs, and N consoles cannot add up to more than
the budget. User queries run on a few threads of their own (``console_queries`` at once, the rest wait
their turn) at a lower CPU priority, so a heavy one leaves the machine to the pages.
:meth:`Scope.console` adds the single-SELECT rule, a row cap and an interrupt-based timeout.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import duckdb
import pyarrow as pa

from app.data.viewer import Viewer
from lake import settings
from lake.catalog import _quote
from lake.errors import AccessDenied, QueryError
from lake.proprietary import public_rootnames
from lake.schema import RESULT_PREFIXES, WIDE_BASE
from lake.search import register_macros
from lake.snapshot import TableFiles
from lake.snapshot import load as load_snapshot
from lake.tables import Lake

LOCKED: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "python_enable_replacements": False,  # SQL cannot see the app's Python variables
    "memory_limit": "2GB",
    "threads": 2,
}
# job logs name files of every proposal; alerts hold result rows of every proposal and subscribers
TEAM_ONLY = ("job_events", "job_runs", "alert_events", "alerts", "alert_deliveries")
TEAM_COLUMNS = ("user",)  # who flagged an anomaly: a team member's e-mail address

T = TypeVar("T")
_POOLS: dict[tuple[str, int], duckdb.DuckDBPyConnection] = {}
_POOLS_LOCK = threading.Lock()


_WORKERS: dict[int, ThreadPoolExecutor] = {}
USER_NICE = 10  # users' queries yield the CPU to the pages' own


def _lower_priority() -> None:
    if sys.platform == "linux":  # (a thread's own priority; elsewhere it would be the process's)
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), USER_NICE)


def user_workers(n: int) -> ThreadPoolExecutor:
    """The process's threads for users' queries: at most ``n`` run at once, the rest wait their turn,
    and they run at a lower CPU priority than the pages (a heavy console does not slow anyone's Home)."""
    with _POOLS_LOCK:
        if n not in _WORKERS:
            _WORKERS[n] = ThreadPoolExecutor(n, "quicklake-user-query", initializer=_lower_priority)
        return _WORKERS[n]


def query_pool(memory: str, threads: int) -> duckdb.DuckDBPyConnection:
    """The process's one database for users' SQL (per budget; a server has one): no files at all."""
    key = (memory, threads)
    with _POOLS_LOCK:
        if key not in _POOLS:
            con = duckdb.connect(
                config={
                    **LOCKED,
                    "memory_limit": memory,
                    "threads": threads,
                    "temp_directory": "",  # no spilling: no folder a query could list or read
                    "enable_external_access": False,
                }
            )
            con.execute("SET lock_configuration = true")
            _POOLS[key] = con
        return _POOLS[key]


class _Private:
    """A scope's spill folder, removed (with its database closed) when no copy of the scope is left."""

    def __init__(self, tmp: str) -> None:
        self.tmp = tmp

    def close_with(self, con: duckdb.DuckDBPyConnection) -> None:
        weakref.finalize(self, _close, con, self.tmp)


def _close(con: duckdb.DuckDBPyConnection, tmp: str) -> None:
    con.close()
    shutil.rmtree(tmp, ignore_errors=True)


SPILL_PREFIX = "quicklake-scope-"
STALE_SECONDS = 86_400  # a folder named without its process (older versions) is stale after a day


def _spill_folder() -> str:
    """A new spill folder named after this process, first removing the empty ones of processes gone.

    A site killed with SIGKILL never runs its scopes' finalizers, so their folders stay in the temporary
    directory. Only empty folders are removed (``os.rmdir``): should one belong to a live process after
    all (another PID namespace sharing /tmp), DuckDB makes it again when it first spills."""
    base = Path(tempfile.gettempdir())
    for old in base.glob(SPILL_PREFIX + "*"):
        if _stale(old):
            with contextlib.suppress(OSError):
                old.rmdir()
    return tempfile.mkdtemp(prefix=f"{SPILL_PREFIX}{os.getpid()}-")


def _stale(folder: Path) -> bool:
    """Whether the process named in ``folder``'s name is gone (or, for a name without one, whether the
    folder has not changed for STALE_SECONDS)."""
    pid = folder.name[len(SPILL_PREFIX) :].split("-", 1)[0]
    if not pid.isdigit():
        with contextlib.suppress(OSError):
            return time.time() - folder.stat().st_mtime > STALE_SECONDS
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's
        return False
    return False


class Scope:
    """The lake as ``viewer`` may see it, now. Thread-safe: queries on it are serialized."""

    def __init__(
        self,
        lake_root: str | Path,
        viewer: Viewer,
        cfg: Mapping[str, Any] | None = None,
        now: datetime | None = None,
        resident: bool = True,
        as_of: str | None = None,
    ) -> None:
        """``now``: when proprietary periods are judged (default: the current time). ``resident``: hold
        ``master`` and ``files`` in DuckDB's memory (fast listings; a per-session console skips it).
        ``as_of`` (team members only): the lake's tables as they were then (:mod:`lake.timetravel`)."""
        if as_of is not None and not viewer.team:
            raise AccessDenied("reading the lake as of a past time is for WFC3 team members")
        self.now = now
        self.resident = resident
        self.cfg = dict(cfg) if cfg is not None else settings.load({"lake": str(lake_root)})
        self.lake = Lake(lake_root, self.cfg.get("catalog_uri", ""))
        self.lake.require()
        self.lake_root = self.lake.root
        self.viewer = viewer
        self.pins_text = self.lake.pins_path.read_text()
        self.committed_at = json.loads(self.pins_text).get("committed_at", "")
        self._lock = threading.RLock()
        self._memo: OrderedDict[Hashable, Any] = OrderedDict()  # (shared by as_viewer's copies)
        self._memo_lock = threading.Lock()
        if as_of is None:
            self.snapshot = load_snapshot(self.lake.root, self.lake.catalog_uri)
        else:
            from lake.timetravel import snapshot_as_of

            self.snapshot = snapshot_as_of(self.lake.root, self.lake.catalog_uri, as_of)
        snap = self.snapshot.tables
        # spills of the site's own queries: a folder of this scope's, gone with it
        self._own = _Private(_spill_folder())
        self._con = duckdb.connect(config={**LOCKED, "temp_directory": self._own.tmp})
        self._own.close_with(self._con)
        self._objects: dict[str, Any] = {}  # what a user query's connection registers
        self._views: list[tuple[str, str]] = []
        self._idle: list[duckdb.DuckDBPyConnection] = []  # user connections ready for a next query
        self._idle_lock = threading.Lock()  # held for a list operation, never during a query
        self.public: pa.Array = pa.array([], pa.string())
        self._hidden: pa.Array = pa.array([], pa.string())
        self._hidden_paths: pa.Array = pa.array([], pa.string())
        if not viewer.team:
            self._split(snap)
        self._public_set = frozenset(self.public.to_pylist())
        self.tables: list[str] = []
        for name, tf in snap.items():
            self._register(name, tf, snap)
        self._register_state()
        register_macros(self._con, temporary=True)  # cone(), cone_search() over the scoped master
        self._con.execute("SET enable_external_access = false")
        self._con.execute("SET lock_configuration = true")

    # ---------------------------------------------------------------- building
    def _dataset(self, tf: TableFiles) -> Any:
        import pyarrow.dataset as ds

        if not tf.files:
            return tf.schema.empty_table()
        return ds.dataset(list(tf.files), schema=tf.schema, format="parquet")

    def _split(self, snap: dict[str, TableFiles]) -> None:
        """Public rootnames, and the hidden ones: every other rootname the lake knows (with its paths).

        Filtering on the hidden set is the same rule as keeping the public set (rows of a rootname the
        lake does not know are dropped too), but its value set is far smaller: proprietary data are the
        last year or so of an archive.
        """
        import pyarrow.compute as pc

        if "master" in snap and snap["master"].files:
            master = self._dataset(snap["master"]).to_table(columns=["rootname", "proposid", "expstart"])
            self.public = public_rootnames(master, self.cfg, self.now).cast(pa.string())
            known = master.column("rootname")
        else:
            known = pa.chunked_array([], pa.string())
        files = (
            self._dataset(snap["files"]).to_table(columns=["path", "rootname"])
            if "files" in snap and snap["files"].files
            else pa.table({"path": pa.array([], pa.string()), "rootname": pa.array([], pa.string())})
        )
        chunks = [c.cast(pa.string()) for c in (*known.chunks, *files.column("rootname").chunks)]
        everyone = pc.unique(pa.chunked_array(chunks, pa.string()))
        self._hidden = everyone.filter(pc.invert(pc.is_in(everyone, value_set=self.public))).drop_null()
        self._hidden_paths = (
            files.filter(pc.is_in(files.column("rootname"), value_set=self._hidden))
            .column("path")
            .combine_chunks()
        )

    # tables small enough to hold in DuckDB's memory: the site's listings aggregate them on every page
    RESIDENT = ("master", "files")
    # the columns pages look one row up by (a dataset, its files, a file): an index answers in well under
    # a millisecond where a scan of 1M rows takes 15-30 ms, and a page looks up tens of them (#18)
    INDEXED: ClassVar[dict[str, tuple[str, ...]]] = {"master": ("rootname",), "files": ("rootname", "path")}

    def _register(self, name: str, tf: TableFiles, snap: dict[str, TableFiles]) -> None:
        obj = self._dataset(tf)
        if not self.viewer.team:
            obj = self._guest_rows(name, tf, obj, snap)
            if obj is None:
                return  # cannot be tied to a dataset: not shown to guests
        self._objects[name] = obj
        if self.resident and name in self.RESIDENT:
            # loaded once per scope; the user never sees the unfiltered registration
            self._con.register("__load", obj)
            self._con.execute(f"CREATE TABLE {_quote(name)} AS SELECT * FROM __load")
            for col in self.INDEXED.get(name, ()):
                if col in tf.schema.names:
                    self._con.execute(
                        f"CREATE INDEX {_quote(f'{name}_{col}')} ON {_quote(name)} ({_quote(col)})"
                    )
            self._con.unregister("__load")
        else:
            self._con.register(name, obj)
        self.tables.append(name)
        base = ", ".join(_quote(c) for c in WIDE_BASE.names)
        for hdu, kws in sorted(tf.hdu_columns.items()):
            cols = ", ".join([base, *(_quote(c) for c in kws)])
            view = f"{name}_{hdu}"
            select = f"SELECT {cols} FROM {_quote(name)} WHERE hdu = {hdu}"
            self._con.execute(f"CREATE VIEW {_quote(view)} AS {select}")
            self._views.append((view, select))
            self.tables.append(view)

    def _guest_rows(self, name: str, tf: TableFiles, obj: Any, snap: dict[str, TableFiles]) -> Any:
        """``obj`` with only public datasets' rows, or None if its rows cannot be tied to datasets.

        Header tables drop the hidden rootnames (every row comes from a file the lake knows). Result
        tables (job findings, monitor results) name whatever a job found, a misfiled proprietary file or
        folder included, so they keep only rows of public datasets: by ``rootname``, else by the rootname
        in the ``path``'s file name (a folder or an unknown name is not public).
        """
        import pyarrow.compute as pc

        cols = tf.schema.names
        if name.startswith(RESULT_PREFIXES):
            t = obj if isinstance(obj, pa.Table) else obj.to_table()
            if "rootname" in cols:
                key = t.column("rootname").cast(pa.string())
            elif "path" in cols:
                key = pc.replace_substring_regex(t.column("path"), r"^(?:.*/)?([^/_]+)_[^/]*$", r"\1")
            else:
                return None
            return t.filter(pc.fill_null(pc.is_in(pc.utf8_lower(key), value_set=self.public), False))
        if "rootname" in cols:
            keep = pc.invert(pc.field("rootname").isin(self._hidden)) & pc.field("rootname").is_valid()
        elif "path" in cols and "files" in snap:
            keep = pc.invert(pc.field("path").isin(self._hidden_paths)) & pc.field("path").is_valid()
        else:
            return None
        return obj.filter(keep) if tf.files else obj  # (an empty table has nothing to hide)

    def _register_state(self) -> None:
        import pyarrow.compute as pc

        from lake.state import state_tables

        for name, t in state_tables(self.lake_root).items():
            if not self.viewer.team:
                if name in TEAM_ONLY:
                    continue
                if "rootname" in t.column_names and t.num_rows:
                    t = t.filter(pc.is_in(t.column("rootname").cast(pa.string()), value_set=self.public))
                t = t.drop_columns([c for c in TEAM_COLUMNS if c in t.column_names])
            self._objects[name] = t
            self._con.register(name, t)
            if name not in self.tables:
                self.tables.append(name)

    def as_viewer(self, viewer: Viewer) -> Scope:
        """This scope (same connection) acting for ``viewer``, who must have the same role."""
        if viewer.role != self.viewer.role:
            raise AccessDenied(f"a {self.viewer.role} scope cannot act for a {viewer.role} viewer")
        other = copy.copy(self)
        other.viewer = viewer
        return other

    # ---------------------------------------------------------------- queries
    def sql(self, query: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run a trusted query of the site's own on the scoped tables; Arrow now."""
        with self._lock:
            try:
                return self._con.sql(query, params=list(params or []) or None).to_arrow_table()
            except duckdb.Error as e:
                raise QueryError(f"{e}") from None

    def file_sql(
        self, table: str, paths: Sequence[str], query: str, params: Sequence[Any] | None = None
    ) -> pa.Table:
        """Run a query of the site's own over the rows of the archive files ``paths`` in physical table
        ``table``, named ``{rows}`` in ``query``: read from the data files that hold them, one row group
        each by ``path`` statistics and Bloom filters (:meth:`lake.snapshot.Snapshot.rows`), instead of
        scanning every data file of the table. Callers check that the files are visible
        (:meth:`require_file`); a guest gets no row of a hidden dataset all the same."""
        import pyarrow.compute as pc

        tf = self.snapshot.tables.get(table)
        if tf is None or table not in self.tables:
            raise QueryError(f"no table {table!r} visible")
        rows = self.snapshot.rows(table, list(paths), tf.schema.names)
        if not self.viewer.team and "rootname" in rows.column_names:
            hidden = pc.fill_null(pc.is_in(rows.column("rootname"), value_set=self._hidden), True)
            rows = rows.filter(pc.invert(hidden))
        with self._lock:
            self._con.register("_file_rows", rows)
            try:
                sql = query.format(rows="_file_rows")
                return self._con.sql(sql, params=list(params or []) or None).to_arrow_table()
            except duckdb.Error as e:
                raise QueryError(f"{e}") from None
            finally:
                self._con.unregister("_file_rows")

    MEMO_ENTRIES = 512

    def memo(self, key: Hashable, make: Callable[[], T]) -> T:
        """``make()``, computed once per scope for ``key`` (the last :data:`MEMO_ENTRIES` kept): for the
        site's aggregates that page views ask again and again (totals, proposals, facet counts, drop-down
        values). A scope is one role's view of one lake snapshot (for an hour at most), so they cannot go
        stale; keep results small, and never memoize what the viewer (beyond the role) or the state
        tables (flags, jobs) decide."""
        with self._memo_lock:
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key]
        value = make()  # (outside the lock: two sessions may both compute it, once)
        with self._memo_lock:
            self._memo[key] = value
            while len(self._memo) > self.MEMO_ENTRIES:
                self._memo.popitem(last=False)
        return value

    def has(self, table: str) -> bool:
        return table in self.tables

    def columns(self, table: str) -> list[str]:
        if table not in self.tables:
            raise QueryError(f"no table {table!r} visible")
        return self.memo(
            ("columns", table),
            lambda: [str(c) for c in self.sql(f"DESCRIBE {_quote(table)}").column(0).to_pylist()],
        )

    def visible(self, rootname: str) -> bool:
        if self.viewer.team:
            return bool(self.sql("SELECT 1 FROM master WHERE rootname = ? LIMIT 1", [rootname]).num_rows)
        return rootname in self._public_set

    def require_dataset(self, rootname: str) -> None:
        if not self.visible(rootname):
            raise AccessDenied(f"dataset {rootname!r} {self._unseen()}")

    def require_file(self, path: str) -> dict[str, Any]:
        """The ``files`` row of an ingested archive file the viewer may see (else AccessDenied)."""
        rows = self.sql("SELECT * FROM files WHERE path = ?", [path]).to_pylist()
        if not rows:
            raise AccessDenied(f"file {path!r} {self._unseen()}")
        return rows[0]

    def _unseen(self) -> str:
        if self.viewer.team:
            return "is not in the lake; check the name, or 'ql ingest' it"
        return "is not in the lake or is still proprietary; team members who log in can see proprietary data"

    def _user_connection(self) -> duckdb.DuckDBPyConnection:
        """A connection to the query pool holding this viewer's tables and nothing else: none of this
        scope's locks, resident tables or spill folder. One query at a time each; reused (registering
        a lake's views takes a while), and as many as run at once."""
        with self._idle_lock:
            if self._idle:
                return self._idle.pop()
        pool = query_pool(str(self.cfg.get("console_memory", "2GB")), int(self.cfg.get("console_threads", 1)))
        con = pool.cursor()
        for name, obj in self._objects.items():
            con.register(name, obj)
        for view, select in self._views:
            con.execute(f"CREATE TEMP VIEW {_quote(view)} AS {select}")
        register_macros(con, temporary=True)  # cone() and cone_search() in the console too
        return con

    def console(self, query: str, max_rows: int | None = None, timeout: float | None = None) -> ConsoleResult:
        """Run a user's SQL: one SELECT only, at most ``max_rows`` rows, interrupted after ``timeout`` s.

        It runs on a connection of its own to the query pool (see the module's docstring), so it holds
        no lock of the scope and shares the pool's memory with every other user query."""
        max_rows = int(max_rows or self.cfg.get("console_rows", 10000))
        timeout = float(timeout or self.cfg.get("console_timeout", 30.0))
        try:
            stmts = duckdb.extract_statements(query)
        except duckdb.Error as e:
            raise QueryError(f"{e}") from None
        if len(stmts) != 1:
            raise AccessDenied(f"only a single SELECT statement is allowed, got {len(stmts)} statements")
        if stmts[0].type != duckdb.StatementType.SELECT:
            kind = stmts[0].type.name
            raise AccessDenied(f"only a single SELECT statement is allowed, not {kind}")
        con = self._user_connection()
        try:
            workers = user_workers(int(self.cfg.get("console_queries", 4)))
            table, seconds = workers.submit(self._run, con, query, max_rows, timeout).result()
        finally:
            with self._idle_lock:
                self._idle.append(con)  # (a SELECT leaves nothing behind on it)
        truncated = table.num_rows > max_rows
        return ConsoleResult(table.slice(0, max_rows), truncated, seconds)

    def _run(
        self, con: duckdb.DuckDBPyConnection, query: str, max_rows: int, timeout: float
    ) -> tuple[pa.Table, float]:
        timer = threading.Timer(timeout, con.interrupt)
        t0 = time.perf_counter()
        timer.start()
        try:
            return con.sql(query).limit(max_rows + 1).to_arrow_table(), time.perf_counter() - t0
        except duckdb.InterruptException:
            raise QueryError(f"query interrupted after {timeout:g} s; narrow it down") from None
        except duckdb.OutOfMemoryException:
            raise QueryError(
                f"query needs more than the {self.cfg.get('console_memory', '')} that all the site's "
                "queries share; narrow it down (fewer columns, a WHERE, an aggregate) or try later"
            ) from None
        except duckdb.Error as e:
            raise QueryError(f"{e}") from None
        finally:
            timer.cancel()


@dataclass(frozen=True)
class ConsoleResult:
    table: pa.Table
    truncated: bool
    seconds: float
