"""The ``master`` table: one row per dataset, derived from ``files`` and the primary-header tables.

Its rows are sorted by ``_healpix_29``, the HEALPix cell of the dataset's pointing (:mod:`lake.search`).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from lake import schema as sch

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


def build_master(con: duckdb.DuckDBPyConnection, tables: dict[str, list[str]]) -> pa.Table:
    """Compute ``master`` with the views of ``con`` (the lake's pinned views); ``tables`` gives each
    table's columns (from the lake's schemas: asking DuckDB would bind every view, reading its footers)."""
    primaries = [t for t in sorted(tables) if sch.is_header_table(t)]
    selects = []
    for t in primaries:
        cols = set(tables[t])
        parts = ["path"]
        for c, typ in MASTER_KEYWORDS.items():
            parts.append(f'TRY_CAST("{c}" AS {typ}) AS {c}' if c in cols else f"CAST(NULL AS {typ}) AS {c}")
        selects.append(f'SELECT {", ".join(parts)} FROM "{t}" WHERE hdu = 0')
    prio = " ".join(f"WHEN '{ft}' THEN {i}" for i, ft in enumerate(FILETYPE_PRIORITY))
    kw_cols = ", ".join(f"h.{c}" for c in MASTER_KEYWORDS)
    if not selects:
        return sch.arrow_schema("master").empty_table()
    sql = f"""
        WITH prim AS ({" UNION ALL ".join(selects)}),
        f AS (SELECT * FROM files WHERE status = 'ok' AND rootname IS NOT NULL),
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
    from lake.catalog import view_sql

    con = duckdb.connect(config={"threads": 1})
    try:
        con.execute("SET parquet_metadata_cache = true")
        con.execute("BEGIN")
        for name, (files, schema) in sorted(inputs.items()):
            con.execute(view_sql(name, files, schema))
        con.execute("COMMIT")
        return build_master(con, {t: s.names for t, (_, s) in inputs.items() if sch.is_header_table(t)})
    finally:
        con.close()
