"""check-mast2lake: the lake against a listing of MAST holdings (CSV or VOTable, path or fsspec URL)."""

from __future__ import annotations

import io

import fsspec
import pyarrow as pa
import pyarrow.csv as pcsv

from lake.access import read_sql
from lake.errors import ConfigError, NotConfigured
from lake.jobs import JobContext, JobResult
from monitors.jobs.consistency import findings

FILE_COLUMNS = ("filename", "productfilename", "file")
DATASET_COLUMNS = ("dataset", "obs_id", "rootname", "asn_id")


def read_listing(url: str) -> pa.Table:
    """A MAST export as Arrow, column names lower-cased."""
    with fsspec.open(url, "rb") as f:
        data = f.read()
    if url.lower().endswith((".xml", ".vot", ".votable")):
        from astropy.io.votable import parse_single_table

        t = parse_single_table(io.BytesIO(data)).to_table()
        table = pa.table({c: [str(v) for v in t[c]] for c in t.colnames})
    else:
        table = pcsv.read_csv(io.BytesIO(data))
    return table.rename_columns([c.lower() for c in table.column_names])


def check_mast2lake(ctx: JobContext) -> JobResult:
    """Files (or datasets) MAST has that the lake lacks, and lake files MAST does not list."""
    url = ctx.params.get("listing") or ctx.cfg.get("mast_listing")
    if not url:
        raise NotConfigured("mast_listing", "check-mast2lake needs a MAST listing (or -p listing=PATH)")
    t = read_listing(str(url))
    lake = read_sql("SELECT path, rootname FROM files WHERE status = 'ok'", ctx.lake_root).to_pylist()
    col = next((c for c in FILE_COLUMNS if c in t.column_names), None)
    rows: list[tuple[str, str, str]] = []
    if col:
        theirs = {str(v).strip().lower() for v in t.column(col).to_pylist() if v}
        ours = {r["path"].rsplit("/", 1)[-1].lower(): r["path"] for r in lake}
        rows += [(f, "missing-from-lake", f"listed in {url}") for f in sorted(theirs - set(ours))]
        rows += [(ours[f], "not-in-mast", f"not listed in {url}") for f in sorted(set(ours) - theirs)]
        unit = "files"
    else:
        dcol = next((c for c in DATASET_COLUMNS if c in t.column_names), None)
        if dcol is None:
            raise ConfigError(f"{url}: no column named one of {FILE_COLUMNS + DATASET_COLUMNS}")
        theirs = {str(v).strip().lower() for v in t.column(dcol).to_pylist() if v}
        ours_d = {r["rootname"] for r in lake if r["rootname"]}
        rows += [(d, "missing-from-lake", f"listed in {url}") for d in sorted(theirs - ours_d)]
        rows += [(d, "not-in-mast", f"not listed in {url}") for d in sorted(ours_d - theirs)]
        unit = "datasets"
    ctx.log.info("%d %s listed, %d findings", len(theirs), unit, len(rows))
    return JobResult(True, {"listed": len(theirs), "problems": len(rows)}, findings(rows))
