"""check-fsys2lake and check-lake2fsys: the archive on disk against the lake's ``files`` table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from lake.access import read_sql
from lake.archive import Stamp, changed, scan_archive
from lake.errors import ConfigError
from lake.jobs import JobContext, JobResult

FINDINGS = pa.schema([("path", pa.string()), ("problem", pa.string()), ("detail", pa.string())])


def archive_root(ctx: JobContext) -> str:
    """The archive setting, checked: a root that does not exist is an error, never "nothing found"
    (cron started from another directory with no settings would otherwise report every file gone)."""
    archive = str(ctx.cfg["archive"])
    if "://" not in archive and not Path(archive).is_dir():
        raise ConfigError(
            f"archive {Path(archive).resolve()} does not exist; set 'archive' (quicklake.toml or "
            "QUICKLAKE_ARCHIVE) to the archive root"
        )
    return archive


def archive_files(ctx: JobContext) -> dict[str, Stamp]:
    """Every FITS file of the archive; an archive with none is an error (is it mounted?)."""
    archive = archive_root(ctx)
    disk = scan_archive(archive)
    if not disk:
        raise ConfigError(
            f"archive {archive} holds no .fits file; is it mounted? check the 'archive' setting"
        )
    return disk


def lake_files(ctx: JobContext) -> dict[str, dict[str, Any]]:
    t = read_sql("SELECT path, size, mtime, status FROM files", ctx.lake_root)
    return {r["path"]: r for r in t.to_pylist()}


def findings(rows: list[tuple[str, str, str]]) -> pa.Table:
    return pa.table({n: [r[i] for r in rows] for i, n in enumerate(FINDINGS.names)}, schema=FINDINGS)


def check_fsys2lake(ctx: JobContext) -> JobResult:
    """Files on disk the lake lacks, or whose size/mtime changed since they were ingested."""
    disk = archive_files(ctx)
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
    disk = archive_files(ctx)
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
