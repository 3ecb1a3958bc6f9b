"""check-fsys2lake and check-lake2fsys: the archive on disk against the lake's ``files`` table."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from lake.access import read_sql
from lake.archive import changed, scan_archive
from lake.jobs import JobContext, JobResult

FINDINGS = pa.schema([("path", pa.string()), ("problem", pa.string()), ("detail", pa.string())])


def lake_files(ctx: JobContext) -> dict[str, dict[str, Any]]:
    t = read_sql("SELECT path, size, mtime, status FROM files", ctx.lake_root)
    return {r["path"]: r for r in t.to_pylist()}


def findings(rows: list[tuple[str, str, str]]) -> pa.Table:
    return pa.table({n: [r[i] for r in rows] for i, n in enumerate(FINDINGS.names)}, schema=FINDINGS)


def check_fsys2lake(ctx: JobContext) -> JobResult:
    """Files on disk the lake lacks, or whose size/mtime changed since they were ingested."""
    disk = scan_archive(ctx.cfg["archive"])
    known = lake_files(ctx)
    rows = []
    for p, (size, mtime) in sorted(disk.items()):
        k = known.get(p)
        if k is None or k["status"] == "missing":
            rows.append((p, "not-in-lake", f"{size} bytes on disk; run 'ql ingest'"))
        elif changed((k["size"], k["mtime"]), (size, mtime)):
            rows.append((p, "changed", f"lake has {k['size']} bytes, disk {size}; run 'ql ingest'"))
    ctx.log.info("%d files on disk, %d in the lake, %d findings", len(disk), len(known), len(rows))
    return JobResult(True, {"files_on_disk": len(disk), "problems": len(rows)}, findings(rows))


def check_lake2fsys(ctx: JobContext) -> JobResult:
    """Lake rows whose file vanished from the archive (a folder or an fsspec URL) or changed."""
    disk = scan_archive(ctx.cfg["archive"])
    rows = []
    known = lake_files(ctx)
    for p, k in sorted(known.items()):
        if k["status"] == "missing":
            continue
        now = disk.get(p)
        if now is None:
            rows.append((p, "vanished", "in the lake but not on disk"))
        elif changed((k["size"], k["mtime"]), now):
            rows.append((p, "changed", f"lake has {k['size']} bytes, disk {now[0]}"))
    ctx.log.info("%d lake files checked, %d findings", len(known), len(rows))
    return JobResult(True, {"lake_files": len(known), "problems": len(rows)}, findings(rows))
