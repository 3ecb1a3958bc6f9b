"""Cone search on a 5M-row master-like Parquet file: HEALPix ranges vs the Dec band vs a full scan.

    python bench/search.py [--rows 5000000] [--radius 180]

Writes --rows datasets' pointings (clustered on 20,000 targets, a few arcmin of scatter, plus 10% spread
over the sky) with ``_healpix_29`` and the other master columns a listing shows, sorted by
``_healpix_29`` as ``master`` is, in row groups of 122,880 rows. Then, warm (best of 5, each over 20
cones), DuckDB with 2 threads times:

- full scan: the exact distance on every row (what a query without an index does);
- Dec band: ``cone_search()``, the SQL macro (a band of Dec, then the distance);
- HEALPix: :func:`lake.search.cone_query` (index ranges from cdshealpix, the Dec band, the distance),
  what ``ql search`` and the site run.

Every method must return the same rows; the ratios are against the full scan of the same run.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _util import best_of, report

from lake.search import ang_sep_sql, cone_query, healpix29, register_macros

ROW_GROUP = 122_880


def sky(rows: int, rng: np.random.Generator, n_targets: int = 20_000) -> tuple[np.ndarray, ...]:
    """Pointings of ``rows`` datasets clustered on ``n_targets`` targets uniform on the sphere (2 arcmin
    of scatter), 10% spread over the whole sky: (ra, dec, target index of each row, target ra, dec)."""
    t_ra = rng.uniform(0, 360, n_targets)
    t_dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n_targets)))  # uniform on the sphere
    which = rng.integers(0, n_targets, rows)
    scatter = rng.normal(0, 120 / 3600, (2, rows))  # 2 arcmin
    ra = (t_ra[which] + scatter[0] / np.cos(np.radians(t_dec[which]))) % 360
    dec = np.clip(t_dec[which] + scatter[1], -90, 90)
    spread = rng.random(rows) < 0.1
    ra[spread] = rng.uniform(0, 360, spread.sum())
    dec[spread] = np.degrees(np.arcsin(rng.uniform(-1, 1, spread.sum())))
    return ra, dec, which, t_ra, t_dec


def build(path: Path, rows: int) -> list[tuple[float, float]]:
    """Write the file; return the cone centres (targets that have datasets)."""
    rng = np.random.default_rng(18)
    ra, dec, which, t_ra, t_dec = sky(rows, rng)
    table = pa.table(
        {
            "rootname": [f"i{i:08d}" for i in range(rows)],
            "proposid": rng.integers(11000, 17500, rows),
            "detector": np.where(rng.random(rows) < 0.7, "UVIS", "IR"),
            "targname": np.char.add("T", which.astype(str)),
            "ra_targ": ra,
            "dec_targ": dec,
            "date_obs": (np.datetime64("2009-06-01") + rng.integers(0, 6200, rows)).astype(str),
            "exptime": rng.uniform(0.5, 1500, rows),
            "_healpix_29": healpix29(ra, dec),
        }
    ).sort_by("_healpix_29")
    pq.write_table(table, path, row_group_size=ROW_GROUP)
    pick = rng.choice(len(t_ra), 20, replace=False)
    return list(zip(t_ra[pick].tolist(), t_dec[pick].tolist(), strict=True))


def measure(
    rows: int, radius: float
) -> tuple[str, list[tuple[str, float, str]], list[tuple[str, float, float, str]]]:
    """Time the three methods on a file of ``rows`` datasets: (a summary line, report rows, checks)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "master.parquet"
        centres = build(path, rows)
        con = duckdb.connect(config={"threads": 2})
        con.execute("SET parquet_metadata_cache = true")
        con.execute(f"CREATE VIEW master AS SELECT * FROM read_parquet('{path}')")
        register_macros(con, temporary=True)
        cols = [str(c) for c in con.sql("SELECT * FROM master LIMIT 0").columns]
        r = radius
        sep = ang_sep_sql("ra_targ", "dec_targ", "$1", "$2")
        full = f"SELECT rootname FROM master WHERE {sep} * 3600 <= $3 ORDER BY rootname"

        def rows_of(sql: str, params: list[float]) -> list[str]:
            return sorted(x[0] for x in con.execute(sql, params).fetchall())

        def by_full() -> list[list[str]]:
            return [rows_of(full, [ra, dec, r]) for ra, dec in centres]

        def by_band() -> list[list[str]]:
            return [rows_of(f"SELECT rootname FROM cone_search({ra}, {dec}, {r})", []) for ra, dec in centres]

        def by_healpix() -> list[list[str]]:
            return [rows_of(*cone_query(ra, dec, r, cols)) for ra, dec in centres]

        same = by_full() == by_band() == by_healpix()
        found = sum(len(x) for x in by_healpix())
        n = len(centres)
        t_full, t_band, t_hpx = (best_of(f) / n * 1000 for f in (by_full, by_band, by_healpix))
        con.close()
    said = f"{n} cones of {r:g} arcsec on {rows:,} rows: {found:,} datasets found; same rows: {same}"
    return (
        said,
        [
            ("full scan (exact distance on every row)", t_full, "ms"),
            ("Dec band + distance (SQL macro cone_search)", t_band, "ms"),
            ("HEALPix ranges + distance (ql search)", t_hpx, "ms"),
            ("full scan / HEALPix", t_full / t_hpx, "x"),
            ("full scan / Dec band", t_full / t_band, "x"),
        ],
        [
            (f"HEALPix cone faster than 100 ms ({rows / 1e6:g}M rows)", 100 / t_hpx, 1.0, "x"),
            ("same rows", float(same), 1.0, ""),
        ],
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--radius", type=float, default=180.0, help="arcsec")
    args = ap.parse_args()
    said, rows, checks = measure(args.rows, args.radius)
    print(said)
    return report("cone search, ms per cone (warm, best of 5, 20 cones)", rows, checks)


if __name__ == "__main__":
    raise SystemExit(main())
