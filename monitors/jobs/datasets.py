"""get-new-datasets and get-proposal-status: what arrived, and how complete each proposal is."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from lake.access import read_sql
from lake.jobs import JobContext, JobResult
from lake.schema import expected_files as expected_for


def get_new_datasets(ctx: JobContext) -> JobResult:
    """Datasets whose first file entered the lake since the last successful run."""
    since = ctx.last_success()
    where = f"WHERE first_in > TIMESTAMPTZ '{since.isoformat()}'" if since else ""
    t = read_sql(
        f"""SELECT m.rootname, m.proposid, m.detector, m.targname, m.date_obs, n.first_in
            FROM (SELECT rootname, min(ingested_at) AS first_in FROM files
                  WHERE status = 'ok' AND rootname IS NOT NULL GROUP BY rootname) n
            JOIN master m USING (rootname) {where} ORDER BY n.first_in, m.rootname""",
        ctx.lake_root,
    )
    ctx.log.info("%d new datasets since %s", t.num_rows, since or "the beginning")
    found = t.select(["rootname", "proposid", "detector", "targname", "date_obs"]).cast(
        pa.schema(
            [
                ("rootname", pa.string()),
                ("proposid", pa.int64()),
                ("detector", pa.string()),
                ("targname", pa.string()),
                ("date_obs", pa.string()),
            ]
        )
    )
    return JobResult(t.num_rows > 0, {"new_datasets": t.num_rows}, found, f"{t.num_rows} new datasets")


@dataclass
class Proposal:
    proposid: int
    visits: set[str] = field(default_factory=set)
    datasets: int = 0
    first_expstart: float | None = None
    last_expstart: float | None = None
    expected_files: int = 0
    present_files: int = 0
    missing: list[str] = field(default_factory=list)


def proposal_status(ctx: JobContext) -> list[Proposal]:
    m = read_sql(
        "SELECT rootname, proposid, visit, detector, imagetyp, expstart, filetypes, asn_id FROM master "
        "ORDER BY rootname",
        ctx.lake_root,
    ).to_pylist()
    by: dict[int, Proposal] = {}
    for r in m:
        p = by.setdefault(int(r["proposid"] or 0), Proposal(int(r["proposid"] or 0)))
        p.visits.add(r["visit"])
        p.datasets += 1
        t = r["expstart"]
        if t is not None:
            p.first_expstart = t if p.first_expstart is None else min(p.first_expstart, t)
            p.last_expstart = t if p.last_expstart is None else max(p.last_expstart, t)
        want = set(expected_for(r["detector"], r["imagetyp"], r["rootname"] == (r["asn_id"] or "").lower()))
        have = set((r["filetypes"] or "").split(","))
        p.expected_files += len(want)
        p.present_files += len(want & have)
        p.missing += [f"{r['rootname']}_{ft}" for ft in sorted(want - have)]
    return [by[k] for k in sorted(by)]


def get_proposal_status(ctx: JobContext) -> JobResult:
    """Per proposal: visits, datasets, first/last observation, expected vs present files."""
    rows = proposal_status(ctx)
    table = pa.table(
        {
            "proposid": pa.array([p.proposid for p in rows], pa.int64()),
            "visits": pa.array([len(p.visits) for p in rows], pa.int64()),
            "datasets": pa.array([p.datasets for p in rows], pa.int64()),
            "first_expstart": pa.array([p.first_expstart for p in rows], pa.float64()),
            "last_expstart": pa.array([p.last_expstart for p in rows], pa.float64()),
            "expected_files": pa.array([p.expected_files for p in rows], pa.int64()),
            "present_files": pa.array([p.present_files for p in rows], pa.int64()),
            "missing": pa.array([",".join(p.missing) for p in rows], pa.string()),
        }
    )
    incomplete = sum(1 for p in rows if p.missing)
    ctx.log.info("%d proposals, %d with missing files", len(rows), incomplete)
    return JobResult(bool(rows), {"proposals": len(rows), "incomplete": incomplete}, table)
