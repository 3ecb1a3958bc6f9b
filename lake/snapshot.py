"""One pinned state of the lake as every reader sees it: :class:`Snapshot`.

The writer records, with every commit, what a reader needs in ``catalog.duckdb`` (:mod:`lake.catalog`):
each table's data files, its Arrow schema and, for wide header tables, the keyword columns of each HDU.
A :class:`Snapshot` is read from there and from ``pins.json`` (the commit point), so reading needs
neither pyiceberg nor a look at any Parquet footer; ``lake.scan``, ``lake.read`` and the site's scopes all
read through it. When ``catalog.duckdb`` does not match ``pins.json`` (a writer died between the two,
or a lake written before these records existed) the file lists are planned from the pinned Iceberg
snapshots instead: slower, but never anything the commit point does not name.

Every name ``ql tables`` lists is readable: the physical tables (``files``, ``cards``, ``uvisflt``...),
the per-HDU wide tables (``uvisflt_1``: the HDU's rows with its own columns) and the state tables
(``job_runs``, ``anomalies``...: live, from ``state.sqlite``).
"""

from __future__ import annotations

import bisect
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import duckdb

from lake.errors import LakeError, LakeNotFound

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

FILES_TABLE = "_quicklake_files"
TABLES_TABLE = "_quicklake_tables"
PINS_TABLE = "_quicklake_pins"


@dataclass(frozen=True)
class TableFiles:
    """A physical table as pinned: its data files, Arrow schema and keyword columns per HDU, and per data
    file its rows and smallest and largest ``path`` (None where not recorded)."""

    files: tuple[str, ...]
    # the Arrow schema, or its IPC bytes as catalog.duckdb records them, parsed when first asked for: a
    # point lookup (`ql header`) never needs it, nor pyarrow (a quarter of its process's start)
    schema_source: pa.Schema | bytes
    hdu_columns: dict[int, list[str]]
    rows: tuple[int | None, ...] = ()
    bounds: tuple[tuple[str | None, str | None], ...] = ()
    hdu_rows: Sequence[dict[int, int] | None] = ()  # per data file, its rows per HDU (wide tables)
    column_keys: tuple[str | None, ...] = ()  # per data file, a key of its columns (Lake.columns_key)

    @cached_property
    def schema(self) -> pa.Schema:
        """The table's Arrow schema."""
        import pyarrow as pa

        src = self.schema_source
        return pa.ipc.read_schema(pa.py_buffer(src)) if isinstance(src, bytes) else src

    def holding(self, paths: list[str]) -> tuple[str, ...]:
        """The data files that may hold rows of ``paths``: those whose path bounds take one of them
        (every file without bounds). With files written in path order this is one or a few files,
        whatever the size of the lake."""
        if not self.bounds:
            return self.files
        return tuple(holding(self.files, self.bounds, paths))

    def num_rows(self) -> int | None:
        """Rows of the table, from the record (None if one file's count is not recorded)."""
        if any(r is None for r in self.rows) or len(self.rows) != len(self.files):
            return None
        return sum(int(r or 0) for r in self.rows)

    def rows_per_hdu(self) -> dict[int, int] | None:
        """Rows of each HDU, from the record (None if one file's are not recorded)."""
        if len(self.hdu_rows) != len(self.files) or any(h is None for h in self.hdu_rows):
            return None
        out: dict[int, int] = {}
        for per_file in self.hdu_rows:
            for h, n in (per_file or {}).items():
                out[h] = out.get(h, 0) + n
        return out


@dataclass(frozen=True)
class Snapshot:
    """The lake's tables as of one commit (see the module docstring)."""

    root: Path
    namespace: str
    committed_at: str
    tables: dict[str, TableFiles]

    def hdu_views(self) -> dict[str, tuple[str, int, list[str]]]:
        """Per-HDU table name (``uvisflt_1``) → (physical table, HDU index, its keyword columns)."""
        return {
            f"{name}_{hdu}": (name, hdu, cols)
            for name, tf in self.tables.items()
            for hdu, cols in sorted(tf.hdu_columns.items())
        }

    def names(self) -> list[str]:
        """Every readable name: physical tables, per-HDU tables and the state tables, sorted."""
        from lake.state import STATE_TABLES

        return sorted({*self.tables, *self.hdu_views(), *STATE_TABLES})

    def rows(self, name: str, paths: list[str], columns: list[str], *, key: str = "path") -> pa.Table:
        """``columns`` of the rows of archive files ``paths`` in physical table ``name``, read with DuckDB
        from the data files that hold them (:meth:`TableFiles.holding`): what a point lookup (``ql
        header``) needs, without importing Polars (a quarter of a ``ql`` process's start). DuckDB skips
        the row groups whose ``path`` statistics or Bloom filter rule the paths out, so of the data files
        of every year partition whose path range spans a path, only the row group holding it is read.

        With ``key="rootname"``, ``paths`` are rootnames: the rows of those datasets' files, from the row
        groups whose ``rootname`` Bloom filter (or statistics) may hold one (every data file is asked, no
        row group but those is read)."""
        import pyarrow as pa

        tf = self._table(name)
        want = pa.schema([tf.schema.field(c) for c in columns])  # (Schema.empty_table imports pandas)
        query = self._located(tf, paths, want.names, key)
        if query is None:
            return pa.Table.from_batches([], want)
        with _reader() as con:
            got = con.sql(query[0], params=query[1]).to_arrow_table()
        if got.schema.types == want.types:  # (Table.cast imports pyarrow.compute: 0.1 s of `ql header`)
            return pa.Table.from_arrays(got.columns, schema=want)
        return got.cast(want)

    def tuples(
        self, name: str, paths: list[str], columns: list[str], *, key: str = "path"
    ) -> list[tuple[Any, ...]]:
        """:meth:`rows` as Python tuples, without pyarrow: a point lookup's process (``ql header``) starts a
        quarter faster without it."""
        query = self._located(self._table(name), paths, columns, key)
        if query is None:
            return []
        with _reader() as con:
            return con.execute(query[0], query[1]).fetchall()

    def _table(self, name: str) -> TableFiles:
        tf = self.tables.get(name)
        if tf is None:
            raise LakeError(f"no table {name!r} in {self.root}; 'ql tables' lists them")
        return tf

    @staticmethod
    def _located(
        tf: TableFiles, paths: list[str], columns: list[str], key: str
    ) -> tuple[str, list[Any]] | None:
        """The query and its parameters for :meth:`rows` (None: no data file can hold them)."""
        files = list(tf.holding(paths) if key == "path" else tf.files)
        if not files or not paths:
            return None
        cols = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
        marks = ", ".join("?" for _ in paths)
        where = '"' + key.replace('"', '""') + '"'
        sql = f"SELECT {cols} FROM read_parquet(?, union_by_name = true) WHERE {where} IN ({marks})"
        return sql, [files, *paths]

    def scan(self, name: str, *, paths: list[str] | None = None) -> pl.LazyFrame:
        """A lazy Polars frame over ``name`` (any of :meth:`names`); with ``paths``, only the rows of
        those archive files, read from the data files that hold them (:meth:`TableFiles.holding`)."""
        import polars as pl

        if name in self.tables:
            tf = self.tables[name]
            schema = pl.DataFrame(tf.schema.empty_table()).schema
            files = tf.files if paths is None else tf.holding(paths)
            if not files:
                return pl.LazyFrame(schema=schema)
            lf = pl.scan_parquet(list(files), schema=schema, missing_columns="insert", extra_columns="ignore")
            return lf if paths is None else lf.filter(pl.col("path").is_in(paths))
        views = self.hdu_views()
        if name in views:
            table, hdu, cols = views[name]
            lf = self.scan(table, paths=paths)
            from lake.schema import WIDE_BASE

            return lf.filter(pl.col("hdu") == hdu).select([*WIDE_BASE.names, *cols])
        from lake.state import STATE_TABLES, state_tables

        if name in STATE_TABLES:
            return pl.from_arrow(state_tables(self.root)[name]).lazy()  # type: ignore[union-attr]
        raise LakeError(f"no table {name!r} in {self.root}; 'ql tables' lists them")


_READER: list[duckdb.DuckDBPyConnection] = []


@contextmanager
def _reader() -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor of the process's DuckDB database for located reads: its Parquet footer cache spares a
    process's repeated lookups the footers (data files never change once written)."""
    if not _READER:
        con = duckdb.connect(config={"threads": 2})
        con.execute("SET parquet_metadata_cache = true")
        con.execute("SET arrow_large_buffer_size = true")  # strings as the tables type them
        _READER.append(con)
    cur = _READER[0].cursor()
    try:
        yield cur
    finally:
        cur.close()


def holding(
    files: Sequence[str], bounds: Sequence[tuple[str | None, str | None]], paths: list[str]
) -> list[str]:
    """The ``files`` whose ``bounds`` (smallest, largest path; None if unknown) may take one of ``paths``."""
    want = sorted(paths)
    out = []
    for f, (lo, hi) in zip(files, bounds, strict=True):
        if lo is None or hi is None:
            out.append(f)
            continue
        i = bisect.bisect_left(want, lo)
        if i < len(want) and want[i] <= hi:
            out.append(f)
    return out


def load(root: str | Path, catalog_uri: str = "") -> Snapshot:
    """The lake's current snapshot (cached per commit)."""
    root = Path(root).resolve()
    pins_text = read_pins(root)
    try:
        stamp = (root / "catalog.duckdb").stat().st_mtime_ns
    except FileNotFoundError:
        raise LakeNotFound.at(root, "catalog.duckdb") from None
    return _load(str(root), catalog_uri, pins_text, stamp)


def read_pins(root: Path) -> str:
    """The text of the lake's commit point, ``pins.json`` (:class:`LakeNotFound` if there is none)."""
    try:
        return (root / "pins.json").read_text()
    except FileNotFoundError:
        raise LakeNotFound.at(root, "pins.json") from None


@lru_cache(maxsize=8)
def _load(root: str, catalog_uri: str, pins_text: str, _catalog_stamp: int) -> Snapshot:
    pins = json.loads(pins_text)
    from lake.relocate import check_place

    check_place(Path(root), pins)  # a moved or copied lake would read the original's files
    tables = _recorded(Path(root) / "catalog.duckdb", pins)
    if tables is None:
        tables = _planned(root, catalog_uri)
    return Snapshot(Path(root), pins["namespace"], pins.get("committed_at", ""), tables)


_ATTACHING = threading.Lock()  # one catalog attached at a time under its alias (threads of the site)
ALIAS = "quicklake_records"


def _recorded(duck: Path, pins: dict[str, Any]) -> dict[str, TableFiles] | None:
    """The tables as ``catalog.duckdb`` records them, if it records exactly the pinned snapshots.

    Read by attaching the file to the process's reader (:func:`_reader`), not by a database of its own:
    each DuckDB database costs 40-50 ms to start, a tenth of a `ql header` process."""
    quoted = str(duck).replace("'", "''")
    with _ATTACHING, _reader() as con:
        con.execute(f"ATTACH '{quoted}' AS {ALIAS} (READ_ONLY)")
        try:
            return _records(con, pins)
        finally:
            con.execute(f"DETACH {ALIAS}")


def _records(con: duckdb.DuckDBPyConnection, pins: dict[str, Any]) -> dict[str, TableFiles] | None:
    # (information_schema.tables lists the views too: 26 ms at 4M files; never duckdb_columns(), which
    # binds every view)
    have = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [ALIAS]
        ).fetchall()
    }
    if not {FILES_TABLE, TABLES_TABLE, PINS_TABLE} <= have:
        return None  # written before these records existed
    rows = con.execute(f"SELECT table_name, namespace, snapshot_id FROM {ALIAS}.{PINS_TABLE}").fetchall()
    want = {t: (pins["namespace"], sid) for t, sid in pins["tables"].items()}
    if {t: (ns, sid) for t, ns, sid in rows} != want:
        return None  # ran ahead of (or behind) the commit point
    recorded = {r[0] for r in con.execute(f"DESCRIBE {ALIAS}.{FILES_TABLE}").fetchall()}
    extra = "rows, min_path, max_path" if "rows" in recorded else "NULL, NULL, NULL"
    extra += ", hdu_rows" if "hdu_rows" in recorded else ", NULL"
    extra += ", columns_key" if "columns_key" in recorded else ", NULL"
    files: dict[str, list[tuple[Any, ...]]] = {}
    for t, *row in con.execute(
        f"SELECT table_name, path, {extra} FROM {ALIAS}.{FILES_TABLE} ORDER BY table_name, seq"
    ).fetchall():
        files.setdefault(t, []).append(tuple(row))
    out = {}
    for t, schema, hdus in con.execute(f"SELECT * FROM {ALIAS}.{TABLES_TABLE}").fetchall():
        rows = files.get(t, [])
        out[t] = TableFiles(
            tuple(r[0] for r in rows),
            bytes(schema),
            {int(k): list(v) for k, v in json.loads(hdus).items()},
            tuple(r[1] for r in rows),
            tuple((r[2], r[3]) for r in rows),
            HduRows(tuple(r[4] for r in rows)),
            tuple(r[5] for r in rows),
        )
    return out


class HduRows(Sequence[dict[int, int] | None]):
    """Per data file, its rows per HDU, parsed from the record's JSON when first asked for: a point
    lookup asks for none (parsing all took 40 ms of a `ql header` process at 4M files)."""

    def __init__(self, texts: tuple[str | None, ...]) -> None:
        self._texts = texts
        self._parsed: dict[int, dict[int, int] | None] = {}

    def __len__(self) -> int:
        return len(self._texts)

    @overload
    def __getitem__(self, i: int) -> dict[int, int] | None: ...
    @overload
    def __getitem__(self, i: slice) -> list[dict[int, int] | None]: ...
    def __getitem__(self, i: int | slice) -> dict[int, int] | list[dict[int, int] | None] | None:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        k = range(len(self))[i]
        if k not in self._parsed:
            text = self._texts[k]
            self._parsed[k] = {int(h): int(n) for h, n in json.loads(text).items()} if text else None
        return self._parsed[k]


def _planned(root: str, catalog_uri: str) -> dict[str, TableFiles]:
    """The tables planned from the pinned Iceberg snapshots (pyiceberg): the fallback."""
    from lake.tables import Lake, hdu_columns_of

    lake = Lake(root, catalog_uri)
    pins = lake.pins()
    out = {}
    for name in sorted(pins.tables):
        files = lake.data_files(pins, name)
        infos = [lake.file_info(f) for f in files]
        out[name] = TableFiles(
            tuple(files),
            lake.iceberg_schema(pins, name),
            hdu_columns_of(lake.table(pins, name)),
            tuple(i.rows for i in infos),
            tuple((i.min_path, i.max_path) for i in infos),
        )
    return out


def recorded(root: str | Path, pins: dict[str, Any]) -> dict[str, TableFiles] | None:
    """What ``catalog.duckdb`` records of the tables, if it records exactly ``pins`` (else None)."""
    duck = Path(root) / "catalog.duckdb"
    return _recorded(duck, pins) if duck.exists() else None
