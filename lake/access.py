"""Reading the lake. ``read_*`` returns data now; ``scan_*`` and ``connect`` return lazy objects.

Everything reads the pinned snapshots, so a reader never sees half an ingest batch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from lake import settings
from lake.errors import LakeError, QueryError
from lake.tables import Lake

if TYPE_CHECKING:
    import polars as pl


def open_lake(path: str | os.PathLike[str] | None = None, catalog_uri: str | None = None) -> Lake:
    """The lake at ``path`` (default: the ``lake`` setting)."""
    cfg = settings.load({"lake": str(path) if path else None, "catalog_uri": catalog_uri})
    lake = Lake(cfg["lake"], cfg["catalog_uri"])
    lake.require()
    return lake


def connect(path: str | os.PathLike[str] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with every lake table as a view (``catalog.duckdb`` attached)."""
    lake = open_lake(path)
    con = duckdb.connect()
    con.execute(f"ATTACH '{lake.duckdb_path}' AS lake (READ_ONLY)")
    con.execute("USE lake")
    from lake.state import state_tables

    for name, t in state_tables(lake.root).items():  # live, shadowing the copies in catalog.duckdb
        con.register(name, t)
    return con


def tables(path: str | os.PathLike[str] | None = None) -> list[str]:
    return open_lake(path).tables()


def scan(table: str, path: str | os.PathLike[str] | None = None) -> pl.LazyFrame:
    """A lazy Polars frame over a table's pinned snapshot."""
    import polars as pl

    lake = open_lake(path)
    pins = lake.pins()
    if table not in pins.tables:
        raise LakeError(f"no table {table!r} in {lake.root}; 'ql tables' lists them")
    files = lake.data_files(pins, table)
    if not files:
        return pl.LazyFrame(schema=pl.DataFrame(lake.iceberg_schema(pins, table).empty_table()).schema)
    return pl.scan_parquet(
        files, missing_columns="insert", extra_columns="ignore", schema=_unified_schema(files)
    )


def _unified_schema(files: list[str]) -> pl.Schema:
    import polars as pl
    import pyarrow.parquet as pq

    schemas = [pq.read_schema(f) for f in files]
    unified = pa.unify_schemas(schemas, promote_options="permissive")
    return pl.DataFrame(unified.empty_table()).schema


def read(
    table: str,
    path: str | os.PathLike[str] | None = None,
    columns: list[str] | None = None,
    where: str | None = None,
) -> pl.DataFrame:
    """A table (or the chosen ``columns``, rows matching the SQL ``where``) as a Polars frame, now."""
    import polars as pl

    con = connect(path)
    cols = ", ".join(f'"{c}"' for c in columns) if columns else "*"
    sql = f'SELECT {cols} FROM "{table}"' + (f" WHERE {where}" if where else "")
    try:
        return pl.from_arrow(con.sql(sql).to_arrow_table())  # type: ignore[return-value]
    except duckdb.Error as e:
        raise QueryError(f"{sql}: {e}") from None


def read_sql(sql: str, path: str | os.PathLike[str] | None = None) -> pa.Table:
    """Run one SQL query on the lake, now."""
    con = connect(path)
    try:
        return con.sql(sql).to_arrow_table()
    except duckdb.Error as e:
        raise QueryError(str(e)) from None


def read_header(file: str, hdu: int | None = None, path: str | os.PathLike[str] | None = None) -> list[str]:
    """The card images of a file's header(s) from the ``cards`` table, in order (one 80-char line each).

    ``file`` is the archive-relative path, an absolute path inside the archive, or a bare file name.
    """
    con = connect(path)
    rel = _relpath(con, file)
    q = "SELECT image FROM cards WHERE path = ?" + (" AND hdu = ?" if hdu is not None else "")
    q += " ORDER BY hdu, position"
    args: list[object] = [rel] + ([hdu] if hdu is not None else [])
    images = [r[0] for r in con.execute(q, args).fetchall()]
    if not images:
        raise LakeError(
            f"{file}: no header cards in the lake" + (f" for HDU {hdu}" if hdu is not None else "")
        )
    lines: list[str] = []
    for img in images:
        lines.extend(img[i : i + 80] for i in range(0, len(img), 80))
    return lines


def _relpath(con: duckdb.DuckDBPyConnection, file: str) -> str:
    rows = con.execute("SELECT path FROM files WHERE path = ? AND status = 'ok'", [file]).fetchall()
    if rows:
        return str(rows[0][0])
    name = Path(file).name
    rows = con.execute(
        "SELECT path FROM files WHERE status = 'ok' AND (path = ? OR path LIKE ?)", [name, f"%/{name}"]
    ).fetchall()
    matches = [r[0] for r in rows if str(file).endswith(r[0]) or r[0].endswith(name)]
    if len(matches) == 1:
        return str(matches[0])
    if len(matches) > 1:
        raise LakeError(f"{file}: ambiguous, matches {', '.join(matches[:5])}; give the archive path")
    raise LakeError(f"{file}: not in the lake (run 'ql ingest' or check 'ql errors')")
