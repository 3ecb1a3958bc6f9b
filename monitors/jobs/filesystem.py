"""check-filesystem and check-duplicate-proposal-folders: the archive's folders, names and permissions."""

from __future__ import annotations

import os
import stat
from collections import defaultdict
from pathlib import Path

from lake.access import read_sql
from lake.errors import ConfigError, LayoutError, MisfiledError
from lake.jobs import JobContext, JobResult
from lake.layout import Layout
from monitors.jobs.consistency import archive_root, findings

BLOCK = 2880


ARCHIVE_LISTS = {"proposals.csv", "uvis_anneals.txt"}  # proprietary periods; anneal dates


def proprietary_proposals(ctx: JobContext) -> set[int]:
    """Proposals with a dataset still in its proposal's proprietary period (``lake.proprietary``)."""
    from lake.proprietary import public_rootnames

    master = read_sql("SELECT rootname, proposid, expstart FROM master", ctx.lake_root)
    public = set(public_rootnames(master, ctx.cfg).to_pylist())
    roots, props = master.column("rootname").to_pylist(), master.column("proposid").to_pylist()
    return {int(p) for r, p in zip(roots, props, strict=True) if p is not None and r not in public}


def _primary_value(path: Path, keyword: str) -> str | None:
    """A keyword's value from the first header block(s), cheaply (no full parse)."""
    with open(path, "rb") as f:
        data = f.read(BLOCK * 10)
    key = keyword.ljust(8).encode()
    for i in range(0, len(data) - 79, 80):
        card = data[i : i + 80]
        if card[:8] == key and card[8:10] == b"= ":
            return card[10:].split(b"/", 1)[0].strip().strip(b"'").strip().decode("ascii", "replace")
        if card[:8] == b"END     ":
            break
    return None


def _folder_finding(d: str, rel_d: str, secret: set[int], allowed: int) -> tuple[str, str, str] | None:
    """A proprietary proposal folder (top level) that others may enter or read, or None."""
    top = rel_d.split("/")[0]
    if rel_d != "." and "/" not in rel_d and top.isdigit() and int(top) in secret:
        mode = stat.S_IMODE(os.stat(d).st_mode)
        if mode & ~allowed & 0o007:
            return (
                rel_d,
                "world-accessible",
                f"proprietary proposal folder has mode {oct(mode)}; chmod o-rwx",
            )
    return None


def _beside_archive(rel_d: str, name: str) -> bool:
    """The generator's marker and truth table, and the lists kept beside the archive: not checked."""
    return rel_d == "." and (name.startswith((".quicklake", "quicklake_")) or name in ARCHIVE_LISTS)


def _file_finding(layout: Layout, p: Path, rel: str) -> tuple[str, str, str] | None:
    """The first problem of one file (its name, folder, size, readability or PROPOSID), or None."""
    if not p.name.endswith(".fits"):
        return (rel, "unexpected-file", "not a FITS file")
    try:
        ap = layout.parse(rel)
    except MisfiledError as e:
        return (rel, "wrong-folder", str(e))
    except LayoutError as e:
        return (rel, "bad-name", str(e))
    try:
        size = p.stat().st_size
        if size == 0:
            return (rel, "empty", "0 bytes")
        if size % BLOCK:
            return (rel, "truncated", f"{size} bytes is not a whole number of 2880-byte blocks")
        prop = _primary_value(p, "PROPOSID")
    except PermissionError:
        return (rel, "unreadable", "permission denied")
    if prop is not None and ap.proposid is not None and prop != str(ap.proposid):
        return (rel, "wrong-folder", f"PROPOSID {prop} but filed under {ap.proposid}")
    if ap.rootname and ap.visit and ap.rootname[4:6].upper() != str(ap.visit).upper():
        return (rel, "wrong-folder", f"visit {ap.rootname[4:6].upper()} but filed under Visit{ap.visit}")
    return None


def check_filesystem(ctx: JobContext) -> JobResult:
    """Permissions, misplaced files, bad names, empty or unreadable files, unexpected files."""
    root = Path(archive_root(ctx)).resolve()
    layout = Layout(ctx.cfg["layout"])
    allowed = int(str(ctx.cfg.get("proprietary_mode", "0o750")), 8)
    secret = proprietary_proposals(ctx)
    rows: list[tuple[str, str, str]] = []
    n = 0
    for d, dirs, names in os.walk(root):
        dirs.sort()
        rel_d = Path(d).relative_to(root).as_posix()
        folder = _folder_finding(d, rel_d, secret, allowed)
        if folder:
            rows.append(folder)
        for name in sorted(names):
            if _beside_archive(rel_d, name):
                continue
            n += 1
            rel = name if rel_d == "." else f"{rel_d}/{name}"
            problem = _file_finding(layout, Path(d) / name, rel)
            if problem:
                rows.append(problem)
    if n == 0:
        raise ConfigError(f"archive {root} holds no file; is it mounted? check the 'archive' setting")
    ctx.log.info("%d files checked, %d findings", n, len(rows))
    return JobResult(True, {"files_checked": n, "problems": len(rows)}, findings(rows))


def _dataset_of(layout: Layout, rel: str, name: str) -> str | None:
    """The rootname a file's name gives: by the layout; the name's first part if it fits no template;
    None for a HAP product, whose name gives none (``hst_...``: its header does)."""
    try:
        return layout.parse(rel).rootname
    except LayoutError:
        return name.split("_", 1)[0]


def check_duplicate_proposal_folders(ctx: JobContext) -> JobResult:
    """The same dataset (rootname) filed under two proposal folders."""
    root = Path(ctx.cfg["archive"]).resolve()
    layout = Layout(ctx.cfg["layout"])
    where: dict[str, set[str]] = defaultdict(set)
    for prop in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in prop.rglob("*.fits"):
            dataset = _dataset_of(layout, f.relative_to(root).as_posix(), f.name)
            if dataset:
                where[dataset].add(prop.name)
    rows = [
        (root_name, "duplicate-proposal-folders", ",".join(sorted(props)))
        for root_name, props in sorted(where.items())
        if len(props) > 1
    ]
    ctx.log.info("%d datasets, %d under more than one proposal folder", len(where), len(rows))
    return JobResult(True, {"datasets": len(where), "problems": len(rows)}, findings(rows))
