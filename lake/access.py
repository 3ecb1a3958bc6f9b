"""Reading the lake. ``read_*`` returns data now; ``scan_*`` and ``connect`` return lazy objects.

Everything reads the pinned snapshots, so a reader never sees half an ingest batch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from lake import settings
from lake.errors import ConfigError, LakeError, QueryError
from lake.snapshot import Snapshot, TableFiles, read_pins
from lake.snapshot import load as load_snapshot

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

    from lake.tables import Lake
    from lake.timetravel import AsOf

# pyarrow and pyiceberg (lake.tables) are imported where they are used: a point lookup's process (`ql
# header`) needs neither, and they are a quarter of its start


def reader_settings(
    path: str | os.PathLike[str] | None = None, catalog_uri: str | None = None
) -> dict[str, Any]:
    """The settings a reader uses, with the lake found wherever the reader runs (a notebook's kernel runs
    in the notebook's folder).

    The lake is, first to apply: ``path``; ``QUICKLAKE_LAKE``; the ``lake`` of ``quicklake.toml``
    (``QUICKLAKE_CONFIG``, else ``./quicklake.toml``), all as :func:`lake.settings.load` gives it; the
    default ``demo/lake`` if it exists in the working directory. Otherwise the working directory's parents
    up to the repository root (the nearest folder holding ``.git``) are searched, nearest first, for a
    ``quicklake.toml`` (its relative ``lake`` taken from its own folder) or the default ``demo/lake``
    (where ``ql demo`` writes, run from the repository root).
    """
    cfg = settings.load({"lake": str(path) if path else None, "catalog_uri": catalog_uri})
    chosen = path or "QUICKLAKE_LAKE" in os.environ or settings.config_file().exists()
    if chosen or Path(cfg["lake"]).exists():
        return cfg
    for folder in _up_to_repository_root(Path.cwd()):
        toml = folder / "quicklake.toml"
        if toml.exists():
            return {**cfg, **_lake_from_toml(toml, cfg["lake"], catalog_uri)}
        if (folder / cfg["lake"]).exists():
            return {**cfg, "lake": str(folder / cfg["lake"])}
    return cfg


def _up_to_repository_root(start: Path) -> list[Path]:
    """``start``'s parents up to the nearest one holding ``.git`` (none outside a repository)."""
    chain: list[Path] = []
    for folder in (start, *start.parents):
        if folder != start:
            chain.append(folder)
        if (folder / ".git").exists():
            return chain
    return []


def _lake_from_toml(toml: Path, default_lake: str, catalog_uri: str | None) -> dict[str, Any]:
    """``lake`` (relative to ``toml``'s folder) and ``catalog_uri`` from a ``quicklake.toml``."""
    import tomllib

    try:
        data = tomllib.loads(toml.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{toml}: not a readable TOML file ({e}); fix it or set QUICKLAKE_LAKE") from None
    table = data.get("quicklake", data)
    found: dict[str, Any] = {"lake": str(toml.parent / str(table.get("lake", default_lake)))}
    if catalog_uri is None and "QUICKLAKE_CATALOG_URI" not in os.environ and table.get("catalog_uri"):
        found["catalog_uri"] = str(table["catalog_uri"])
    return found


def open_lake(path: str | os.PathLike[str] | None = None, catalog_uri: str | None = None) -> Lake:
    """The lake at ``path`` (default: the ``lake`` setting, found as :func:`reader_settings` says)."""
    cfg = reader_settings(path, catalog_uri)
    from lake.tables import Lake

    lake = Lake(cfg["lake"], cfg["catalog_uri"])
    lake.require()
    return lake


def connect(
    path: str | os.PathLike[str] | None = None, *, as_of: AsOf | None = None, query: str | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with every lake table as a view (``catalog.duckdb`` attached) and
    the search macros ``ang_sep``, ``cone`` and ``cone_search`` (:func:`lake.search.register_macros`).

    ``as_of`` (a time, naive = UTC, or a snapshot id): the lake tables as they were then
    (:mod:`lake.timetravel`); the state tables (job runs, flags, alerts) are always today's. ``query``:
    the one query the connection is for; only the state tables it names are loaded (``ql sql``).

    See Also
    --------
    lake.search.search : datasets by position, target, rootname or proposal.
    """
    cfg = reader_settings(path)
    root = Path(cfg["lake"]).resolve()
    pins = json.loads(read_pins(root))
    from lake.relocate import check_place

    check_place(root, pins)  # a moved or copied lake would read the original's files
    con = duckdb.connect()
    con.execute("SET parquet_metadata_cache = true")  # a session's repeated queries skip the footers
    if as_of is not None:
        _create_views(con, snapshot(path, as_of=as_of))
    else:
        duck = str(root / "catalog.duckdb").replace("'", "''")
        con.execute(f"ATTACH '{duck}' AS lake (READ_ONLY)")
        if not _records_pins(con, pins):
            # catalog.duckdb ran ahead of pins.json (a writer died between the two renames) or predates
            # the record: the views are made from the commit point instead, as every other reader reads it
            con.execute("DETACH lake")
            con.execute("ATTACH ':memory:' AS lake")
            con.execute("USE lake")
            _create_views(con, load_snapshot(root, cfg["catalog_uri"]))
        con.execute("USE lake")
    from lake.search import register_macros

    register_macros(con, temporary=True)  # also for a catalog.duckdb published before they were stored
    _register_state(con, root, query)
    return con


def _register_state(con: duckdb.DuckDBPyConnection, root: Path, query: str | None) -> None:
    """The state tables, live, shadowing their copies in catalog.duckdb: those ``query`` names, or all of
    them (without a query, or one DuckDB cannot parse). A query of lake tables alone needs no pyarrow."""
    from lake.state import STATE_TABLES, state_tables

    named = _named_tables(con, query) if query is not None else None
    names = set(STATE_TABLES) if named is None else set(STATE_TABLES) & named
    if names:
        for name, t in state_tables(root, names).items():
            con.register(name, t)


def _named_tables(con: duckdb.DuckDBPyConnection, query: str) -> set[str] | None:
    """Every table name ``query`` mentions, lower case, from DuckDB's parse of it (nothing bound: a view's
    or macro's own tables are not named); None where DuckDB cannot parse it."""
    got = con.execute("SELECT json_serialize_sql(?)", [query]).fetchall()  # (all: the result is finished)
    tree = json.loads(got[0][0]) if got else {"error": True}
    if tree.get("error"):
        return None
    names: set[str] = set()
    stack: list[Any] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            name = node.get("table_name")
            if isinstance(name, str) and name:
                names.add(name.lower())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return names


def catalog_in_step(lake: Lake) -> bool:
    """Whether ``catalog.duckdb`` records exactly what ``pins.json`` pins (not so after a writer died
    between the two renames, until the next writer)."""
    con = duckdb.connect()
    try:
        pins = json.loads(lake.pins_path.read_text())
        con.execute(f"ATTACH '{lake.duckdb_path}' AS lake (READ_ONLY)")
        return _records_pins(con, pins)
    finally:
        con.close()


def _records_pins(con: duckdb.DuckDBPyConnection, pins: dict[str, Any]) -> bool:
    """Whether the attached ``lake`` (catalog.duckdb) was written for exactly ``pins`` (pins.json)."""
    from lake.snapshot import PINS_TABLE

    try:
        rows = con.execute(f"SELECT table_name, namespace, snapshot_id FROM lake.{PINS_TABLE}").fetchall()
    except duckdb.CatalogException:
        return False  # written before the record existed
    want = {t: (pins["namespace"], sid) for t, sid in pins["tables"].items()}
    return {t: (ns, sid) for t, ns, sid in rows} == want


def _create_views(con: duckdb.DuckDBPyConnection, snap: Snapshot) -> None:
    """The views catalog.duckdb would hold for ``snap``, in the connection's current database."""
    from lake.catalog import hdu_files, hdu_view_sql, view_sql

    for name, tf in sorted(snap.tables.items()):
        keys = list(tf.column_keys)
        known = len(keys) == len(tf.files) and all(k is not None for k in keys)
        con.execute(view_sql(name, list(tf.files), tf.schema, keys=[str(k) for k in keys] if known else None))
    for view, (table, hdu, cols) in sorted(snap.hdu_views().items()):
        tf = snap.tables[table]
        got = hdu_files(tf.files, tf.hdu_rows, tf.column_keys, hdu)
        con.execute(hdu_view_sql(view, table, hdu, cols, got and (*got, tf.schema)))


def snapshot(path: str | os.PathLike[str] | None = None, *, as_of: AsOf | None = None) -> Snapshot:
    """The lake's current pinned snapshot (:class:`lake.snapshot.Snapshot`): what every reader reads;
    with ``as_of`` (a time or a snapshot id), the one readers saw then (:mod:`lake.timetravel`).

    See Also
    --------
    scan, read : a table of it as Polars.
    """
    cfg = reader_settings(path)
    if as_of is not None:
        from lake.timetravel import snapshot_as_of

        return snapshot_as_of(cfg["lake"], cfg["catalog_uri"], as_of)
    return load_snapshot(cfg["lake"], cfg["catalog_uri"])


def tables(path: str | os.PathLike[str] | None = None) -> list[str]:
    """Every readable table name (as ``ql tables`` lists them), sorted."""
    return snapshot(path).names()


def columns(path: str | os.PathLike[str] | None = None) -> dict[str, list[str]]:
    """Every readable table's columns, as SQL sees them (``catalog.duckdb``'s views): what ``ql keywords``
    names a keyword's tables from.

    See Also
    --------
    tables : the names alone.
    """
    con = connect(path)
    try:
        found: dict[str, list[str]] = {}
        for name, col in con.execute(
            "SELECT DISTINCT table_name, column_name FROM information_schema.columns "
            "WHERE NOT starts_with(table_name, '_quicklake') ORDER BY 1, 2"
        ).fetchall():
            found.setdefault(name, []).append(col)
        return found
    finally:
        con.close()


def row_counts(path: str | os.PathLike[str] | None = None) -> pa.Table:
    """Every readable name (once, in natural order: ``uvisflt_2`` before ``uvisflt_10``) with its rows.

    Counted from what ``catalog.duckdb`` records of the pinned files (rows, and rows per HDU of the wide
    tables), so no data file is read; a lake published before the record counts from the Parquet footers
    (per HDU from the ``hdu`` column alone).

    See Also
    --------
    tables : the names alone.
    counts : the same as a dict, without pyarrow (``ql tables``).
    """
    import pyarrow as pa

    from lake.pylist import column

    got = counts(path)
    return pa.table({"table": column(list(got)), "rows": column(list(got.values()))})


def counts(path: str | os.PathLike[str] | None = None) -> dict[str, int]:
    """:func:`row_counts` as a dict of name to rows, in the same order."""
    from lake.state import state_counts

    snap = snapshot(path)
    found: dict[str, int] = {}
    for name, tf in snap.tables.items():
        found.update(_table_counts(name, tf))
    found.update(state_counts(snap.root))
    return {n: found[n] for n in sorted(found, key=natural_key)}


def natural_key(name: str) -> list[object]:
    """A table name's sort key in natural order: ``uvisflt_2`` before ``uvisflt_10``."""
    import re

    return [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", name)]


def _table_counts(name: str, tf: TableFiles) -> dict[str, int]:
    """Rows of a physical table and of its per-HDU tables: as recorded at the commit, else (a lake
    published before the record) from the Parquet footers, or the ``hdu`` column alone."""
    files = list(tf.files)
    if not files:
        return {name: 0}
    if tf.hdu_columns:
        per_hdu = tf.rows_per_hdu()
        if per_hdu is None:
            sql = "SELECT hdu, count(*) FROM read_parquet(?) GROUP BY hdu"
            per_hdu = {int(h): int(n) for h, n in duckdb.execute(sql, [files]).fetchall()}
        return {name: sum(per_hdu.values()), **{f"{name}_{h}": per_hdu.get(h, 0) for h in tf.hdu_columns}}
    rows = tf.num_rows()
    if rows is not None:
        return {name: rows}
    got = duckdb.execute("SELECT sum(num_rows) FROM parquet_file_metadata(?)", [files]).fetchall()
    return {name: int(got[0][0] or 0) if got else 0}


def scan(
    table: str,
    path: str | os.PathLike[str] | None = None,
    *,
    paths: list[str] | None = None,
    as_of: AsOf | None = None,
) -> pl.LazyFrame:
    """A lazy Polars frame over ``table`` as of the lake's pinned snapshot.

    Parameters
    ----------
    table
        Any name :func:`tables` lists: ``files``, ``cards``, ``master``, a wide table (``uvisflt``), a
        per-HDU one (``uvisflt_1``), a result table, or a state table (``job_runs``).
    path
        The lake directory (default: the ``lake`` setting).
    paths
        Only the rows of these archive files (``files.path``), read from the data files whose recorded
        path range holds them: a lookup of a few files costs the same in a lake of any size.
    as_of
        The table as it was at this time (naive = UTC) or snapshot id (:mod:`lake.timetravel`).

    See Also
    --------
    read : the same, collected now.
    connect : the lake in DuckDB, for SQL.
    """
    return snapshot(path, as_of=as_of).scan(table, paths=paths)


def read(
    table: str,
    path: str | os.PathLike[str] | None = None,
    *,
    columns: list[str] | None = None,
    where: str | None = None,
    as_of: AsOf | None = None,
) -> pl.DataFrame:
    """``table`` as a Polars frame, now: ``scan(table, path).collect()``, with only ``columns`` and the
    rows matching the SQL condition ``where`` (Polars SQL) if given, as of ``as_of`` if given.

    See Also
    --------
    scan : the lazy frame this collects.
    read_sql : any SQL query, in DuckDB.
    """
    lf = scan(table, path, as_of=as_of)
    if where:
        try:
            lf = lf.sql(f"SELECT * FROM self WHERE {where}")
        except Exception as e:  # Polars' SQL errors have no common base class
            raise QueryError(f"{table} WHERE {where}: {e}") from None
    if columns:
        lf = lf.select(columns)
    try:
        return lf.collect()
    except Exception as e:
        raise QueryError(f"reading {table}: {e}") from None


def read_sql(sql: str, path: str | os.PathLike[str] | None = None, *, as_of: AsOf | None = None) -> pa.Table:
    """Run one SQL query on the lake, now (on the lake as of ``as_of``, if given)."""
    con = connect(path, as_of=as_of, query=sql)
    try:
        return con.sql(sql).to_arrow_table()
    except duckdb.Error as e:
        raise QueryError(str(e)) from None


def read_header(
    file: str,
    hdu: int | None = None,
    path: str | os.PathLike[str] | None = None,
    *,
    as_of: AsOf | None = None,
) -> list[str]:
    """The card images of a file's header(s) from the ``cards`` table, in order (one 80-char line each).

    ``file`` is the archive-relative path, an absolute path inside the archive, or a bare file name. Only
    the data files whose recorded path range holds the file are read (:meth:`TableFiles.holding`), so the
    lookup costs the same in a lake of any size. ``as_of``: the header as it was then.

    See Also
    --------
    scan : ``scan("cards", paths=[...])`` for the rows themselves.
    """
    snap = snapshot(path, as_of=as_of)
    rel = _relpath(snap, file)
    cards = sorted(snap.tuples("cards", [rel], ["hdu", "position", "image"]))  # a few hundred
    images = [img for h, _, img in cards if hdu is None or h == hdu]
    if not images:
        raise LakeError(
            f"{file}: no header cards in the lake" + (f" for HDU {hdu}" if hdu is not None else "")
        )
    lines: list[str] = []
    for img in images:
        lines.extend(img[i : i + 80] for i in range(0, len(img), 80))
    return lines


def _ok_paths(found: list[tuple[Any, ...]]) -> list[str]:
    return [p for p, s in found if s == "ok"]


def _relpath(snap: Snapshot, file: str) -> str:
    """The archive path of ``file`` as the ``files`` table has it: located by its exact path, else (a bare
    name, an absolute path) by the rootname its name gives, through the ``rootname`` Bloom filters of
    ``files`` (the cost of a lookup, whatever the size of the lake); a name whose rootname ``files`` does
    not record so (HAP products, named from the header) is matched on the ``path`` column alone."""
    exact = _ok_paths(snap.tuples("files", [file], ["path", "status"]))
    if exact:
        return exact[0]
    from lake.layout import split_filetype

    name = Path(file).name
    rootname = split_filetype(name.removesuffix(".fits"))[0].lower()
    found = _ok_paths(snap.tuples("files", [rootname], ["path", "status"], key="rootname"))
    matches = [p for p in found if p == name or p.endswith(("/" + name, "/" + name + ".fits"))]
    if not matches and found and name.lower() == rootname:  # a dataset's name, not a file's
        names = ", ".join(p.rsplit("/", 1)[-1] for p in sorted(found)[:8])
        raise LakeError(
            f"{file} is a dataset; give one of its files: {names}" + (" …" if len(found) > 8 else "")
        )
    if not matches:
        matches = _named(snap, name)
    if len(matches) == 1:
        return str(matches[0])
    if len(matches) > 1:
        raise LakeError(f"{file}: ambiguous, matches {', '.join(matches[:5])}; give the archive path")
    raise LakeError(f"{file}: not in the lake (run 'ql ingest' or check 'ql errors')")


def _named(snap: Snapshot, name: str) -> list[str]:
    """The ``ok`` paths of ``files`` whose file name is ``name``, from the ``path`` column of every data
    file (DuckDB; the rare lookup no rootname answers)."""
    tf = snap.tables.get("files")
    if tf is None or not tf.files:
        return []
    sql = (
        "SELECT path FROM read_parquet(?, union_by_name = true) "
        "WHERE status = 'ok' AND (path = ? OR suffix(path, ?))"
    )
    con = duckdb.connect()
    try:
        return [r[0] for r in con.execute(sql, [list(tf.files), name, "/" + name]).fetchall()]
    finally:
        con.close()
