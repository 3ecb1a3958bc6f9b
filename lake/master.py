"""The ``master`` table: one row per dataset, derived from ``files`` and the primary-header tables.

Its rows are sorted by ``_healpix_29``, the HEALPix cell of the dataset's pointing (:mod:`lake.search`).
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from lake import schema as sch
from lake.catalog import sql_in, view_sql
from lake.search import HEALPIX_COLUMN

# Dataset facts come from the primary header of the first present file in this order.
FILETYPE_PRIORITY = (
    "raw",
    "flt",
    "flc",
    "ima",
    "crj",
    "crc",
    "drz",
    "drc",
    "spt",
    "asn",
    "jif",
    "jit",
    "trl",
)

MASTER_KEYWORDS = {
    "instrume": "VARCHAR",
    "detector": "VARCHAR",
    "obstype": "VARCHAR",
    "imagetyp": "VARCHAR",
    "targname": "VARCHAR",
    "ra_targ": "DOUBLE",
    "dec_targ": "DOUBLE",
    "date_obs": "VARCHAR",
    "time_obs": "VARCHAR",
    "expstart": "DOUBLE",
    "exptime": "DOUBLE",
    "filter": "VARCHAR",
    "aperture": "VARCHAR",
    "subarray": "BOOLEAN",
    "asn_id": "VARCHAR",
    "pr_inv_l": "VARCHAR",
}


def build_master(con: duckdb.DuckDBPyConnection, tables: dict[str, list[str]], *, only: str = "") -> pa.Table:
    """Compute ``master`` with the views of ``con`` (the lake's pinned views); ``tables`` gives each
    table's columns (from the lake's schemas: asking DuckDB would bind every view, reading its footers).
    ``only`` names a relation of ``rootname`` s to compute the rows of (all datasets if empty)."""
    primaries = [t for t in sorted(tables) if sch.is_header_table(t)]
    selects = []
    for t in primaries:
        cols = set(tables[t])
        parts = ["path"]
        for c, typ in MASTER_KEYWORDS.items():
            parts.append(f'TRY_CAST("{c}" AS {typ}) AS {c}' if c in cols else f"CAST(NULL AS {typ}) AS {c}")
        keep = " AND path IN (SELECT path FROM f)" if only else ""
        selects.append(f'SELECT {", ".join(parts)} FROM "{t}" WHERE hdu = 0{keep}')
    prio = " ".join(f"WHEN '{ft}' THEN {i}" for i, ft in enumerate(FILETYPE_PRIORITY))
    kw_cols = ", ".join(f"h.{c}" for c in MASTER_KEYWORDS)
    if not selects:
        return sch.arrow_schema("master").empty_table()
    sql = f"""
        WITH f AS (SELECT * FROM files WHERE status = 'ok' AND rootname IS NOT NULL
                   {f"AND rootname IN (SELECT rootname FROM {only})" if only else ""}),
        prim AS ({" UNION ALL ".join(selects)}),
        ranked AS (
            SELECT f.rootname, f.proposid, f.visit, f.year, {kw_cols},
                   row_number() OVER (PARTITION BY f.rootname
                                      ORDER BY CASE f.filetype {prio} ELSE 99 END, f.path) AS rk
            FROM f JOIN prim h ON h.path = f.path),
        agg AS (SELECT rootname, string_agg(DISTINCT filetype, ',' ORDER BY filetype) AS filetypes,
                       count(*)::INTEGER AS n_files FROM f GROUP BY rootname)
        SELECT r.rootname, r.proposid, r.visit, {", ".join(f"r.{c}" for c in MASTER_KEYWORDS)},
               a.filetypes, a.n_files, r.year::INTEGER AS year
        FROM ranked r JOIN agg a USING (rootname) WHERE rk = 1 ORDER BY r.rootname
    """
    table = con.sql(sql).to_arrow_table()
    return with_healpix(table).select(sch.arrow_schema("master").names).cast(sch.arrow_schema("master"))


def with_healpix(table: pa.Table) -> pa.Table:
    """``table`` with ``_healpix_29``, the nested order-29 HEALPix cell of its pointing (RA_TARG,
    DEC_TARG; null without one), sorted by it so that a cone search's index ranges prune
    (:mod:`lake.search`)."""
    from lake.search import HEALPIX_COLUMN, healpix29

    cell = healpix29(table.column("ra_targ"), table.column("dec_targ"))
    table = table.append_column(HEALPIX_COLUMN, cell)
    return table.sort_by([(HEALPIX_COLUMN, "ascending"), ("rootname", "ascending")])


MasterInputs = dict[str, tuple[list[str], pa.Schema]]


def compute_master(inputs: MasterInputs) -> pa.Table:
    """``master`` from explicit inputs: for ``files`` and each header table, its Parquet files and schema.
    One DuckDB thread (DuckDB releases the GIL), so an ingest can run it beside its last commit."""
    con = _input_views(inputs, threads=1)
    try:
        return build_master(con, {t: s.names for t, (_, s) in inputs.items() if sch.is_header_table(t)})
    finally:
        con.close()


def _input_views(inputs: MasterInputs, threads: int) -> duckdb.DuckDBPyConnection:
    from lake.catalog import view_sql

    con = duckdb.connect(config={"threads": threads})
    con.execute("SET parquet_metadata_cache = true")
    con.execute("BEGIN")
    for name, (files, schema) in sorted(inputs.items()):
        con.execute(view_sql(name, files, schema))
    con.execute("COMMIT")
    return con


def touched_rows(
    inputs: MasterInputs, touched: list[str], holding: Callable[[str, list[str]], list[str]]
) -> tuple[pa.Table, list[str]]:
    """The ``master`` rows of the datasets of the ``touched`` files (archive paths) computed again, and
    those datasets' rootnames (a dataset whose last file went has a rootname and no row): what an ingest
    of a few files costs, whatever the size of the lake. Only the data files that may hold the touched
    files are read for their rootnames, and for the datasets' headers those that may hold the datasets'
    files (``holding(table, paths)``: those whose path range takes one of them)."""
    con = _input_views({"files": inputs["files"]}, threads=2)
    try:
        files_schema = sch.arrow_schema("files")
        con.execute(
            view_sql("touched_files", holding("files", touched), files_schema, sql_in("path", touched))
        )
        rootnames = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT rootname FROM touched_files WHERE rootname IS NOT NULL ORDER BY rootname"
            ).fetchall()
        ]
        con.register("touched", pa.table({"rootname": pa.array(rootnames, pa.string())}))
        # the datasets' files, read once; build_master reads them from here
        where = sql_in("rootname", rootnames)
        con.execute(f"CREATE TEMP TABLE touched_rows AS SELECT * FROM files WHERE {where}")
        con.execute("CREATE OR REPLACE VIEW files AS SELECT * FROM touched_rows")
        rows = con.execute("SELECT path, tables FROM touched_rows").fetchall()
        paths = [r[0] for r in rows]
        used = {t for r in rows for t in (r[1] or "").split(",") if t}  # header tables holding them
        headers = {t: v for t, v in inputs.items() if t in used and sch.is_header_table(t)}
        con.execute("BEGIN")
        for t, (_files, schema) in sorted(headers.items()):
            con.execute(view_sql(t, holding(t, paths) if paths else [], schema))
        con.execute("COMMIT")
        fresh = build_master(con, {t: s.names for t, (_, s) in headers.items()}, only="touched")
    finally:
        con.close()
    return fresh, rootnames


def update_master(
    old: pa.Table, inputs: MasterInputs, touched: list[str], holding: Callable[[str, list[str]], list[str]]
) -> pa.Table:
    """``master`` with the datasets of the ``touched`` files computed again (:func:`touched_rows`) and
    every other row as in ``old``."""
    fresh, rootnames = touched_rows(inputs, touched, holding)
    # every touched dataset's old row goes: recomputed in ``fresh``, or gone with its last file
    keep = old.filter(pc.invert(pc.is_in(old.column("rootname"), pa.array(rootnames, pa.string()))))
    merged = pa.concat_tables([keep.select(fresh.schema.names).cast(fresh.schema), fresh])
    return merged.sort_by([(HEALPIX_COLUMN, "ascending"), ("rootname", "ascending")])
