"""``<lake>/catalog.duckdb``: one view per lake table, pinned to the files of its pinned snapshot.

Written from Python's DuckDB 2.0 in storage format v1.5.0 so that the ``duckdb`` 1.5 CLI opens it, with
absolute file paths so that it works from any directory, and published with an atomic rename so that a
reader holding the old file keeps a consistent view (``docs/background/lake-formats.md`` §1, §3).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from lake.faults import point
from lake.schema import WIDE_BASE
from lake.snapshot import FILES_TABLE, PINS_TABLE, TABLES_TABLE

if TYPE_CHECKING:
    from lake.tables import FileInfo, Lake, Pins

STORAGE_VERSION = "v1.5.0"
# Views are bound when first queried, not when created: binding reads the footers of every file of the
# table, and a lake has hundreds of per-HDU views, so binding them all at each commit cost the writer
# about a second (the duckdb 1.5 CLI reads such views as well).
_DEFER = "WITH (DEFER_BINDING)"

_DUCK_TYPES = {
    pa.string(): "VARCHAR",
    pa.large_string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.float64(): "DOUBLE",
    pa.float32(): "FLOAT",
    pa.bool_(): "BOOLEAN",
}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def duck_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    return _DUCK_TYPES.get(t, "VARCHAR")


def sql_in(column: str, values: Iterable[str]) -> str:
    """``column IN (a constant list)`` (``false`` for none): DuckDB skips the row groups whose statistics
    or Bloom filters hold none of the values (a semi-join against a table reads every row group)."""
    values = sorted(set(values))
    return f"{_quote(column)} IN ({', '.join(_sql_str(v) for v in values)})" if values else "false"


def view_sql(
    name: str, files: list[str], schema: pa.Schema, where: str = "", *, keys: Sequence[str] | None = None
) -> str:
    """CREATE VIEW over the given Parquet files (an empty typed relation when there are none), of the
    rows ``where`` holds (e.g. :func:`sql_in`) if given.

    ``keys`` (one per file, :meth:`lake.tables.Lake.columns_key`): files of the same columns are read as
    one scan, the groups joined by name. Without them, one scan of all files matches their columns by
    name, which DuckDB does at every query's binding by merging every file's schema: 0.1 s for the 300
    files of a wide table of 440 columns."""
    if files:
        body = _scan_sql(files, keys, schema)
        return f"CREATE OR REPLACE VIEW {_quote(name)} {_DEFER} AS {body}" + (
            f" WHERE {where}" if where else ""
        )
    return f"CREATE OR REPLACE VIEW {_quote(name)} {_DEFER} AS {_empty_sql(schema)}"


def _empty_sql(schema: pa.Schema) -> str:
    """An empty relation of ``schema``'s columns and types."""
    cols = ", ".join(f"CAST(NULL AS {duck_type(f.type)}) AS {_quote(f.name)}" for f in schema)
    return f"SELECT {cols} WHERE false"


def _scan_sql(files: list[str], keys: Sequence[str] | None, schema: pa.Schema) -> str:
    """One relation of the rows of ``files`` (see :func:`view_sql`), its columns in the order of
    ``schema`` where the columns of every scan are known from its key (a wide table's primary files and
    extension files hold different columns, and a union by name orders them as its first scan has them)."""
    groups = _scans(files, keys)
    scans = [
        f"SELECT * FROM read_parquet([{', '.join(_sql_str(f) for f in group)}]{option})"
        for group, option in groups
    ]
    if len(scans) == 1:
        return scans[0]
    body = f"({' UNION ALL BY NAME '.join(scans)})"
    if any(option for _, option in groups) or keys is None:
        return f"SELECT * FROM {body}"
    key_of = dict(zip(files, keys, strict=True))
    have: set[str] = set().union(*(file_columns(g[0], key_of[g[0]]) for g, _ in groups))
    order = {name: i for i, name in enumerate(schema.names)}
    cols = sorted(have, key=lambda c: (order.get(c, len(order)), c))
    return f"SELECT {', '.join(_quote(c) for c in cols)} FROM {body}"


# At most this many groups of files with the same columns are separate scans; the rest are one scan
# that matches columns by name
MAX_SCANS = 8


def _scans(files: list[str], keys: Sequence[str] | None) -> list[tuple[list[str], str]]:
    """The scans of a view: groups of files and the option their read_parquet takes (see view_sql)."""
    by_name = ", union_by_name = true"
    if keys is None or len(keys) != len(files):
        return [(files, by_name)]
    groups: dict[str, list[str]] = {}
    for f, k in zip(files, keys, strict=True):
        groups.setdefault(k, []).append(f)
    ordered = sorted(groups.values(), key=len, reverse=True)
    out = [(g, "") for g in ordered[: MAX_SCANS - 1 if len(ordered) > MAX_SCANS else MAX_SCANS]]
    rest = [f for g in ordered[len(out) :] for f in g]
    return out + ([(rest, by_name)] if rest else [])


def hdu_view_sql(
    view: str,
    table: str,
    hdu: int,
    columns: list[str],
    files: tuple[list[str], list[str] | None, pa.Schema] | None = None,
) -> str:
    """A per-HDU wide table (``uvisflt_1``): the HDU's rows of the physical table, with its own columns.

    With ``files`` (the data files holding rows of the HDU, their column keys and the table's schema),
    the view reads those files only: compaction writes the primary headers (HDU 0, where a query's
    dates and targets are) apart from the extensions, so ``uvisflt_0`` opens some 1/20 of the table's
    footers (DuckDB opens every file of a scan, whatever its statistics say). Each scan selects the
    view's columns by position, a typed NULL for a column its files lack (read from one footer per
    column key): joining an empty typed relation by name instead cost every query of the view 35 ms
    of binding for its 200-odd columns, most of the original query's time in a lake of 70k files."""
    names = [*WIDE_BASE.names, *columns]
    body = f"SELECT {', '.join(_quote(c) for c in names)} FROM {_quote(table)}"
    if files is not None and files[0]:
        paths, keys, schema = files
        key_of: dict[str, str | None] = dict(zip(paths, keys, strict=True)) if keys is not None else {}
        selects = []
        for group, option in _scans(paths, keys):
            have: set[str] = set().union(
                *(file_columns(f, key_of.get(f)) for f in _one_per_key(group, key_of))
            )
            cols = ", ".join(_column_or_null(c, have, schema) for c in names)
            selects.append(
                f"SELECT {cols} FROM read_parquet([{', '.join(_sql_str(f) for f in group)}]{option})"
            )
        body = selects[0] if len(selects) == 1 else f"SELECT * FROM ({' UNION ALL '.join(selects)})"
    return f"CREATE OR REPLACE VIEW {_quote(view)} {_DEFER} AS SELECT * FROM ({body}) WHERE hdu = {int(hdu)}"


def _column_or_null(name: str, have: set[str], schema: pa.Schema) -> str:
    """A scan's item for ``name``: the column, or a NULL of the table's type if its files lack it."""
    if name in have:
        return _quote(name)
    kind = duck_type(schema.field(name).type) if name in schema.names else "VARCHAR"
    return f"CAST(NULL AS {kind}) AS {_quote(name)}"


def _one_per_key(group: list[str], key_of: dict[str, str | None]) -> list[str]:
    """One file of each column key in ``group`` (every file whose key is not known)."""
    seen: dict[object, str] = {}
    for f in group:
        seen.setdefault(key_of.get(f) or f, f)
    return list(seen.values())


# the column names of a columns key (lake.tables.Lake.columns_key: a hash of the names and types)
_KEY_COLUMNS: dict[str, frozenset[str]] = {}


def file_columns(path: str, key: str | None = None) -> frozenset[str]:
    """The column names of a data file (from its footer; one read per ``key`` in a process)."""
    got = _KEY_COLUMNS.get(key) if key else None
    if got is None:
        import pyarrow.parquet as pq

        got = frozenset(pq.read_schema(path).names)
        if key:
            _KEY_COLUMNS[key] = got
    return got


def hdu_files(
    files: Sequence[str], hdu_rows: Sequence[dict[int, int] | None], keys: Sequence[str | None], hdu: int
) -> tuple[list[str], list[str] | None] | None:
    """The data files holding rows of ``hdu`` and their column keys (None if one file's rows per HDU are
    not known, or for an extension: then every file is read). Only the primary HDU's view lists its own
    files: compaction writes every extension to the same files, so a list per extension would spare few
    footers and cost every view's creation and binding (a publish made hundreds of such views)."""
    if hdu != 0 or len(hdu_rows) != len(files) or any(h is None for h in hdu_rows):
        return None
    # (the HDU's view scans whole files: the one of about their mean rows first, as scan_order does)
    totals = [sum((h or {}).values()) for h in hdu_rows]
    picked = mean_first([i for i, h in enumerate(hdu_rows) if (h or {}).get(hdu)], totals)
    known = len(keys) == len(files) and all(k is not None for k in keys)
    return [files[i] for i in picked], [str(keys[i]) for i in picked] if known else None


def scan_order(files: Sequence[str], info: Callable[[str], FileInfo]) -> list[str]:
    """``files`` in the order a view lists them: the file whose rows are nearest the mean first, the rest
    in path order.

    DuckDB estimates a scan's rows as its first file's times the number of files. Iceberg lists the
    newest files first, often a cron ingest's file of one row: DuckDB then took ``master``'s 814k rows
    at 4M files for 20, built a join's hash table on them and never pushed the join's filter into its
    scan (the original query's join took 106 ms of CPU instead of 29). Path order for the rest keeps an
    unordered query's rows in archive order."""
    infos = [info(f) for f in files]
    rest = sorted(range(len(files)), key=lambda k: (infos[k].min_path or "", files[k]))
    return [files[k] for k in mean_first(rest, [i.rows for i in infos])]


def mean_first(order: list[int], rows: Sequence[int]) -> list[int]:
    """``order`` (indices into ``rows``) with the one whose rows are nearest their mean moved first (see
    :func:`scan_order`)."""
    if len(order) < 2:
        return order
    mean = max(sum(rows[k] for k in order) / len(order), 1.0)

    # DuckDB's error is a factor, so nearest in ratio: of a table's primary-header file of 134 rows and
    # its extensions' of 3,070, the first made 3,204 rows look like 268, the second like 6,140. Of files
    # as near, the larger, then the first in ``order``: the view is the same whatever order they came in
    def far(i: int) -> tuple[float, int, int]:
        return abs(math.log(max(rows[order[i]], 1) / mean)), -rows[order[i]], i

    i = min(range(len(order)), key=far)
    return [order[i], *order[:i], *order[i + 1 :]]


def create_views(
    con: duckdb.DuckDBPyConnection, lake: Lake, pins: Pins, replacing: Sequence[str] | None = None
) -> None:
    """Create the lake's views (pinned to ``pins``) in ``con``, in one transaction, and record what
    :class:`lake.snapshot.Snapshot` reads (files, schema and per-HDU columns of every table). With
    ``replacing``, the views and records of those tables (those still pinned) take the place of theirs
    in ``con`` (see :func:`write_duckdb_catalog`); the other tables' are kept."""
    # a query binds a table's view once per use, and the per-HDU views bind it again: cache the footers
    con.execute("SET parquet_metadata_cache = true")
    con.execute("BEGIN")  # DDL in autocommit mode pays a commit per view
    files_rows: dict[str, list[object]] = {k: [] for k in _FILES_SCHEMA.names}
    table_rows: dict[str, list[object]] = {"table_name": [], "arrow_schema": [], "hdu_columns": []}
    if replacing is not None:
        _drop_views(con, replacing)
    for name in sorted(pins.tables if replacing is None else set(replacing) & set(pins.tables)):
        files = scan_order(lake.data_files(pins, name), lake.file_info)
        schema, per_hdu = lake.table_facts(pins, name)
        keys = [lake.columns_key(f) for f in files]
        con.execute(view_sql(name, files, schema, keys=keys))
        infos = [lake.file_info(f) for f in files]
        # rows per HDU, so that 'ql tables' counts the per-HDU tables without reading a file
        hdu_rows = [lake.hdu_rows(f) if per_hdu else None for f in files]
        for hdu, cols in sorted(per_hdu.items()):
            got = hdu_files(files, hdu_rows, keys, hdu)
            con.execute(hdu_view_sql(f"{name}_{hdu}", name, hdu, cols, got and (*got, schema)))
        files_rows["hdu_rows"] += [_hdu_json(h) if h is not None else None for h in hdu_rows]
        files_rows["columns_key"] += keys
        files_rows["table_name"] += [name] * len(files)
        files_rows["seq"] += list(range(len(files)))
        files_rows["path"] += files
        files_rows["rows"] += [i.rows for i in infos]
        files_rows["min_path"] += [i.min_path for i in infos]
        files_rows["max_path"] += [i.max_path for i in infos]
        table_rows["table_name"].append(name)
        table_rows["arrow_schema"].append(schema.serialize().to_pybytes())
        table_rows["hdu_columns"].append(json.dumps({str(k): v for k, v in sorted(per_hdu.items())}))
    _record(con, FILES_TABLE, pa.table(files_rows, schema=_FILES_SCHEMA), replacing=replacing)
    _record(con, TABLES_TABLE, pa.table(table_rows, schema=_TABLES_SCHEMA), replacing=replacing)
    con.execute("COMMIT")


def _drop_views(con: duckdb.DuckDBPyConnection, tables: Iterable[str]) -> None:
    """Drop the views of ``tables`` (their per-HDU views as the record names them)."""
    tables = sorted(tables)
    if not tables:
        return
    marks = ", ".join("?" for _ in tables)
    got = con.execute(
        f"SELECT table_name, hdu_columns FROM {TABLES_TABLE} WHERE table_name IN ({marks})", tables
    ).fetchall()
    for name, hdus in got:
        for hdu in json.loads(hdus):
            con.execute(f"DROP VIEW IF EXISTS {_quote(f'{name}_{hdu}')}")
    for name in tables:
        con.execute(f"DROP VIEW IF EXISTS {_quote(name)}")


# a data file's rows and path bounds let readers count without scanning and find a file's rows in the
# one or few data files that hold them (lake.snapshot)
_FILES_SCHEMA = pa.schema(
    [
        ("table_name", pa.string()),
        ("seq", pa.int32()),
        ("path", pa.string()),
        ("rows", pa.int64()),
        ("min_path", pa.string()),
        ("max_path", pa.string()),
        ("hdu_rows", pa.string()),  # JSON {hdu: rows} (wide header tables)
        ("columns_key", pa.string()),  # files of one key are read as one scan (see view_sql)
    ]
)


_TABLES_SCHEMA = pa.schema(
    [("table_name", pa.string()), ("arrow_schema", pa.binary()), ("hdu_columns", pa.string())]
)


def _hdu_json(rows: dict[int, int]) -> str:
    return json.dumps({str(h): n for h, n in sorted(rows.items())})


def _record(
    con: duckdb.DuckDBPyConnection, name: str, rows: pa.Table, *, replacing: Sequence[str] | None = None
) -> None:
    """The record table ``name`` made of ``rows``; with ``replacing``, of its rows of other tables than
    those and ``rows`` (made anew rather than deleted from: DuckDB reuses a dropped table's blocks, so an
    incremental publish's catalog keeps its size)."""
    con.register("_rows", rows)
    rest = ""
    if replacing is not None:
        # (no table replaced: every row kept; "NOT IN (NULL)" would have kept none)
        marks = ", ".join(_sql_str(t) for t in replacing)
        kept = f" WHERE table_name NOT IN ({marks})" if marks else ""
        rest = f"SELECT * FROM {name}{kept} UNION ALL BY NAME "
    con.execute(f"CREATE OR REPLACE TABLE {name} AS {rest}SELECT * FROM _rows")
    con.unregister("_rows")


# the catalog's own record of how it was written: an incremental publish reuses the views of a catalog
# written by the same code, for the same namespace and root, whose file is not mostly free blocks
FORMAT_TABLE = "_quicklake_catalog"
# (a catalog rewritten in place settles at 3-4 times its whole size: DuckDB writes new blocks before it
# frees the old ones. Its size when last written whole is no measure: the catalog of a lake built by
# many commits grows with its files, and a 4M stand-in's, first written whole at 0.8 MB, passed 5x that
# at 3.7 MB of views it needed, so a cron ingest wrote it whole: 15 s)
GROWTH = 5.0


def write_duckdb_catalog(lake: Lake, pins: Pins) -> None:
    """Write ``catalog.duckdb`` for ``pins`` and put it in place with an atomic rename.

    The previous catalog is copied and only the tables whose pinned snapshot changed get new views (a
    cron ingest touches four of several hundred tables; creating every view parses megabytes of file
    lists at 4 million files). A catalog of other code, another namespace or root, or more than
    :data:`GROWTH` times the size of the blocks it uses, is written whole again."""
    tmp = lake.duckdb_path.with_name(f".catalog.{os.getpid()}.duckdb")
    for p in (tmp, tmp.with_name(tmp.name + ".wal")):
        if p.exists():
            p.unlink()
    con, before = _reusable(lake.duckdb_path, tmp, pins)
    try:
        if before is None:
            create_views(con, lake, pins)
        else:
            changed = {t for t in {*pins.tables, *before} if before.get(t) != pins.tables.get(t)}
            create_views(con, lake, pins, replacing=sorted(changed))
        _write_pins_and_state(con, lake, pins)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    if before is None:
        _stamp_format(tmp, pins)
    point("catalog.written")
    os.replace(tmp, lake.duckdb_path)


def _write_pins_and_state(con: duckdb.DuckDBPyConnection, lake: Lake, pins: Pins) -> None:
    con.execute(
        f"CREATE OR REPLACE TABLE {PINS_TABLE} (table_name VARCHAR, namespace VARCHAR, snapshot_id BIGINT, "
        "committed_at VARCHAR)"
    )
    con.executemany(
        f"INSERT INTO {PINS_TABLE} VALUES (?, ?, ?, ?)",
        [(k, pins.namespace, v, pins.committed_at) for k, v in sorted(pins.tables.items())],
    )
    # the state tables as of this commit; lake.connect() shows them live
    from lake.state import state_tables

    for name, t in state_tables(lake.root).items():
        con.register("_state", t)
        con.execute(f"CREATE OR REPLACE TABLE {_quote(name)} AS SELECT * FROM _state")
        con.unregister("_state")
    from lake.search import register_macros

    register_macros(con)  # cone(), cone_search(): stored, so the duckdb CLI has them too


def _reusable(
    old: Path, tmp: Path, pins: Pins
) -> tuple[duckdb.DuckDBPyConnection, dict[str, int | None] | None]:
    """A connection to the new catalog ``tmp``: a copy of ``old`` and the snapshots its views are of, if
    its views can be kept (see :data:`FORMAT_TABLE`); else an empty database and None."""
    import shutil

    config: dict[str, str | bool | int | float | list[str]] = {
        "storage_compatibility_version": STORAGE_VERSION
    }
    if old.exists():
        shutil.copyfile(old, tmp)
        con = duckdb.connect(str(tmp), config=config)
        try:
            got = con.execute(f"SELECT format, namespace, root FROM {FORMAT_TABLE}").fetchone()
            same = got is not None and tuple(got) == (_format(), pins.namespace, pins.root)
            blocks = con.execute(
                "SELECT total_blocks, free_blocks FROM pragma_database_size() "
                "WHERE database_name = current_database()"
            ).fetchone()
            if same and blocks is not None and blocks[0] - blocks[1] >= blocks[0] / GROWTH:
                rows = con.execute(f"SELECT table_name, snapshot_id FROM {PINS_TABLE}").fetchall()
                return con, {t: sid for t, sid in rows}
        except duckdb.Error:
            pass  # written before the format record, or damaged: written whole
        con.close()
        tmp.unlink()
    return duckdb.connect(str(tmp), config=config), None


def _stamp_format(path: Path, pins: Pins) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute(
            f"CREATE OR REPLACE TABLE {FORMAT_TABLE} (format VARCHAR, namespace VARCHAR, root VARCHAR)"
        )
        con.execute(f"INSERT INTO {FORMAT_TABLE} VALUES (?, ?, ?)", [_format(), pins.namespace, pins.root])
        con.execute("CHECKPOINT")
    finally:
        con.close()


@functools.cache
def _format() -> str:
    """A digest of the code that writes views (this module, the schema's names, the search macros): a
    catalog written by other code is written whole."""
    import hashlib

    from lake import schema, search

    h = hashlib.sha256()
    for module in (__name__, schema.__name__, search.__name__):
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.origin:
            h.update(Path(spec.origin).read_bytes())
    return h.hexdigest()[:16]
