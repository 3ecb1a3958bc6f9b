"""What one viewer may see of the lake: a sandboxed DuckDB connection whose tables hold only their rows.

A :class:`Scope` registers every lake table as a ``pyarrow.dataset`` over the files of its pinned
snapshot. For a guest each dataset is filtered to public rootnames (:mod:`lake.proprietary`) *before*
DuckDB sees it, and tables that cannot be tied to a dataset are left out, so no query, however written,
reaches proprietary rows. The connection has no file access at all (``enable_external_access=false``
with no allowed directories), no extension loading, no Python replacement scans and a locked
configuration: the tested recipe of ``docs/background/lake-formats.md`` §5, variant D. The site's own
queries and its SQL console both go through it; :meth:`Scope.console` adds the single-SELECT rule,
a row cap and an interrupt-based timeout.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from app.data.viewer import Viewer
from lake import settings
from lake.catalog import _quote
from lake.errors import AccessDenied, QueryError
from lake.proprietary import public_rootnames
from lake.schema import WIDE_BASE
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
TEAM_ONLY = ("job_events", "job_runs")  # job logs name files of every proposal


class Scope:
    """The lake as ``viewer`` may see it, now. Thread-safe: queries on it are serialized."""

    def __init__(
        self,
        lake_root: str | Path,
        viewer: Viewer,
        cfg: Mapping[str, Any] | None = None,
        now: datetime | None = None,
        resident: bool = True,
    ) -> None:
        """``now``: when proprietary periods are judged (default: the current time). ``resident``: hold
        ``master`` and ``files`` in DuckDB's memory (fast listings; a per-session console skips it)."""
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
        snap = load_snapshot(self.lake.root, self.lake.catalog_uri).tables
        self._con = duckdb.connect(config=LOCKED)
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

    def _register(self, name: str, tf: TableFiles, snap: dict[str, TableFiles]) -> None:
        import pyarrow.compute as pc

        obj = self._dataset(tf)
        if not self.viewer.team:
            cols = tf.schema.names
            if "rootname" in cols:
                keep = pc.invert(pc.field("rootname").isin(self._hidden)) & pc.field("rootname").is_valid()
            elif "path" in cols and "files" in snap:
                keep = pc.invert(pc.field("path").isin(self._hidden_paths)) & pc.field("path").is_valid()
            else:
                return  # cannot be tied to a dataset: not shown to guests
            if tf.files:  # (an empty table has nothing to hide)
                obj = obj.filter(keep)
        if self.resident and name in self.RESIDENT:
            # loaded once per scope; the user never sees the unfiltered registration
            self._con.register("__load", obj)
            self._con.execute(f"CREATE TABLE {_quote(name)} AS SELECT * FROM __load")
            self._con.unregister("__load")
        else:
            self._con.register(name, obj)
        self.tables.append(name)
        base = ", ".join(_quote(c) for c in WIDE_BASE.names)
        for hdu, kws in sorted(tf.hdu_columns.items()):
            cols = ", ".join([base, *(_quote(c) for c in kws)])
            view = _quote(f"{name}_{hdu}")
            self._con.execute(f"CREATE VIEW {view} AS SELECT {cols} FROM {_quote(name)} WHERE hdu = {hdu}")
            self.tables.append(f"{name}_{hdu}")

    def _register_state(self) -> None:
        import pyarrow.compute as pc

        from lake.state import state_tables

        for name, t in state_tables(self.lake_root).items():
            if name in TEAM_ONLY and not self.viewer.team:
                continue
            if not self.viewer.team and "rootname" in t.column_names and t.num_rows:
                t = t.filter(pc.is_in(t.column("rootname").cast(pa.string()), value_set=self.public))
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

    def has(self, table: str) -> bool:
        return table in self.tables

    def columns(self, table: str) -> list[str]:
        if table not in self.tables:
            raise QueryError(f"no table {table!r} visible")
        return [str(c) for c in self.sql(f"DESCRIBE {_quote(table)}").column(0).to_pylist()]

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

    def console(self, query: str, max_rows: int | None = None, timeout: float | None = None) -> ConsoleResult:
        """Run a user's SQL: one SELECT only, at most ``max_rows`` rows, interrupted after ``timeout`` s."""
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
        with self._lock:
            timer = threading.Timer(timeout, self._con.interrupt)
            t0 = time.perf_counter()
            timer.start()
            try:
                table = self._con.sql(query).limit(max_rows + 1).to_arrow_table()
            except duckdb.InterruptException:
                raise QueryError(f"query interrupted after {timeout:g} s; narrow it down") from None
            except duckdb.Error as e:
                raise QueryError(f"{e}") from None
            finally:
                timer.cancel()
            seconds = time.perf_counter() - t0
        truncated = table.num_rows > max_rows
        return ConsoleResult(table.slice(0, max_rows), truncated, seconds)


@dataclass(frozen=True)
class ConsoleResult:
    table: pa.Table
    truncated: bool
    seconds: float
