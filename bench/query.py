"""The original Quicklook query on >= 1M rows of uvisflt_0: the lake (DuckDB over Parquet) vs SQLite.

    python bench/query.py [--rows 1000000]

Builds a lake whose uvisflt table holds --rows primary-header rows (real generated headers, replicated
with new rootnames, dates and targets) and the matching master rows; loads the same columns into SQLite
with an index on rootname and date_obs (as the original MySQL tables had keys); runs the query verbatim
on both (best of 5) and prints the ratio. Also times a cold `ql sql` process end to end.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from _util import ROOT, best_of, report

TARGETS = ["NGC4485", "NGC1300", "M51", "GD153", "GRW+70D5824", "DARK", "TUNGSTEN", "ABELL2744", "NGC6397"]


def build(base: Path, rows: int) -> tuple[Path, pa.Table, pa.Table]:
    from ingest.archivegen.generate import generate
    from ingest.run import ingest
    from lake import schema as sch
    from lake.tables import Lake

    seed_lake = base / "seed-lake"
    generate(base / "archive", datasets=60, seed=3)
    ingest(seed_lake, str(base / "archive"), scheduler="synchronous")
    src = Lake(seed_lake)
    pins = src.pins()
    prim = pa.concat_tables(
        [pq.read_table(f) for f in src.data_files(pins, "uvisflt")], promote_options="default"
    )
    prim = prim.filter(pc.equal(prim["hdu"], 0))
    rng = np.random.default_rng(5)
    take = rng.integers(0, prim.num_rows, rows)
    big = prim.take(pa.array(take))
    roots = np.char.add("i", np.char.zfill(np.char.mod("%08d", np.arange(rows)).astype(str), 8))
    days = rng.integers(0, 17 * 365, rows)
    dates = (np.datetime64("2009-06-01") + days).astype("datetime64[D]").astype(str)
    targ = np.array(TARGETS)[rng.integers(0, len(TARGETS), rows)]
    for name, values in (("rootname", roots), ("date_obs", dates), ("targname", targ)):
        big = big.set_column(big.schema.get_field_index(name), name, pa.array(values))
    big = big.set_column(
        big.schema.get_field_index("path"),
        "path",
        pc.binary_join_element_wise(pa.array(roots), "_flt.fits", ""),
    )
    big = big.sort_by([("date_obs", "ascending")])

    lake_dir = base / "lake"
    lake = Lake(lake_dir)
    with lake.writer():
        pins = lake.init()
        lake.ensure_table(pins, "uvisflt", big.schema)
        out = lake.data_dir(pins.namespace, "uvisflt")
        out.mkdir(parents=True, exist_ok=True)
        files = []
        for i in range(0, rows, 250_000):
            f = out / f"bench-{i}.parquet"
            pq.write_table(big.slice(i, 250_000), f, compression="zstd", row_group_size=100_000)
            files.append(str(f))
        cols = big.column_names[len(sch.WIDE_BASE) :]
        lake.commit_files(pins, "uvisflt", files, hdu_columns={0: cols})
        mschema = sch.arrow_schema("master")
        master = pa.table(
            {
                f.name: big[f.name].cast(f.type) if f.name in big.column_names else pa.nulls(rows, f.type)
                for f in mschema
            },
            schema=mschema,
        )
        lake.overwrite(pins, "master", master)
        lake.publish(pins)
    return lake_dir, big, master


def to_sqlite(path: Path, big: pa.Table, master: pa.Table) -> sqlite3.Connection:
    con = sqlite3.connect(path)
    ucols = ["rootname", "targname", "exptime", "ra_targ", "dec_targ", "filter", "date_obs"]
    con.execute(f"CREATE TABLE uvisflt_0 ({', '.join(ucols)})")
    con.executemany(
        f"INSERT INTO uvisflt_0 VALUES ({', '.join('?' * len(ucols))})",
        zip(*(big[c].to_pylist() for c in ucols), strict=True),
    )
    con.execute("CREATE TABLE master (rootname PRIMARY KEY, targname, date_obs)")
    con.executemany(
        "INSERT INTO master VALUES (?, ?, ?)",
        zip(*(master[c].to_pylist() for c in ("rootname", "targname", "date_obs")), strict=True),
    )
    con.execute("CREATE INDEX u_root ON uvisflt_0 (rootname)")
    con.execute("CREATE INDEX u_date ON uvisflt_0 (date_obs)")
    con.commit()
    return con


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()

    import lake as ql
    from lake.cli import ORIGINAL_QUERY

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        lake_dir, big, master = build(base, args.rows)
        sq = to_sqlite(base / "ql.sqlite", big, master)
        con = ql.connect(lake_dir)
        n_lake = len(con.execute(ORIGINAL_QUERY).fetchall())
        n_sql = len(sq.execute(ORIGINAL_QUERY).fetchall())
        assert n_lake == n_sql and n_lake > 0, (n_lake, n_sql)
        t_lake = best_of(lambda: con.execute(ORIGINAL_QUERY).fetchall())
        t_sql = best_of(lambda: sq.execute(ORIGINAL_QUERY).fetchall())
        ql_bin = str(Path(sys.executable).with_name("ql"))
        t0 = time.perf_counter()
        subprocess.run(
            [ql_bin, "sql", "--lake", str(lake_dir), ORIGINAL_QUERY],
            check=True,
            capture_output=True,
            cwd=ROOT,
        )
        t_cli = time.perf_counter() - t0
        print(f"{args.rows:,} rows in uvisflt_0 and master; the query returns {n_lake} rows")
        return report(
            "the original Quicklook query",
            [
                ("lake (DuckDB over pinned Parquet)", 1000 * t_lake, "ms"),
                ("SQLite, indexed", 1000 * t_sql, "ms"),
                ("`ql sql` as a new process, end to end", 1000 * t_cli, "ms"),
                ("SQLite time / lake time (x)", t_sql / t_lake, ""),
            ],
            [],
        )


if __name__ == "__main__":
    raise SystemExit(main())
