"""Reading the header history (``card_changes``, written by the ingest: see ``ingest/history.py``).

A file's versions are located like its header (:meth:`lake.snapshot.TableFiles.holding`), so looking up
one file costs the same whatever the size of the history. ``docs/history.md`` has the SQL for the
questions the table answers (files whose PFLTFILE changed since a date, CAL_VER of every version).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import pyarrow as pa

from lake.errors import LakeError

TABLE = "card_changes"


def history(file: str, *, keyword: str | None = None, path: str | os.PathLike[str] | None = None) -> pa.Table:
    """The recorded versions of ``file`` (archive path, absolute path in the archive or bare file name):
    per version its ``file`` row, then its card changes, oldest version first; with ``keyword``, only
    the versions that changed it and only its rows.

    See Also
    --------
    lake.read_header : the header as it is (or, ``as_of``, as it was).
    """
    import polars as pl

    from lake.access import snapshot

    snap = snapshot(path)
    if TABLE not in snap.tables:
        raise LakeError(f"{snap.root} has no header history yet; the next 'ql ingest' starts it")
    rel = _history_path(snap, file)
    lf = snap.scan(TABLE, paths=[rel])
    if keyword:
        kw = keyword.strip().upper()
        when = lf.filter(pl.col("keyword") == kw).select("ingested_at").unique()
        lf = lf.join(when, on="ingested_at").filter((pl.col("keyword") == kw) | (pl.col("kind") == "file"))
    order = pl.coalesce("new_position", "old_position")
    got = lf.sort(["ingested_at", pl.col("kind") != "file", "hdu", order], nulls_last=False).collect()
    return got.to_arrow()


def _history_path(snap: Any, file: str) -> str:
    """The archive path of ``file`` in the history: exact, else as ``files`` has it, else by name."""
    import polars as pl

    from lake.access import _relpath

    if snap.scan(TABLE, paths=[file]).select("path").head(1).collect().height:
        return file
    try:
        return _relpath(snap, file)
    except LakeError:
        pass
    name = os.path.basename(file)
    found = (
        snap.scan(TABLE).select("path").unique().filter(pl.col("path").str.ends_with("/" + name)).collect()
    )
    if found.height == 1:
        return str(found["path"][0])
    if found.height > 1:
        raise LakeError(
            f"{file}: ambiguous, matches {', '.join(found['path'].to_list()[:5])}; give the archive path"
        )
    raise LakeError(f"{file}: not in the lake or its history (check the name, or 'ql ingest' it)")


def lines(t: pa.Table) -> list[str]:
    """``t`` (from :func:`history`) as text: a line per version, then a line per change under it."""
    out = []
    for r in t.to_pylist():
        if r["kind"] == "file":
            out.append(_version_line(r))
        else:
            out.append("  " + _change_line(r))
    return out


def _version_line(r: dict[str, Any]) -> str:
    at = r["ingested_at"]
    when = at.strftime("%Y-%m-%d %H:%M:%S UTC") if isinstance(at, datetime) else str(at)
    size = f"size {r['old_size']} -> {r['new_size'] if r['new_size'] is not None else '-'} B"
    mtime = f"mtime {_t(r['old_mtime'])} -> {_t(r['new_mtime'])}"
    status = f"status {r['old_value']} -> {r['new_value']}"
    before = f"; before: as_of={r['old_snapshot']}" if r["old_snapshot"] is not None else ""
    return f"{when}  {r['path']}: {size}, {mtime}, {status}{before}"


def _t(x: float | None) -> str:
    from datetime import UTC

    return "-" if x is None else datetime.fromtimestamp(x, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _change_line(r: dict[str, Any]) -> str:
    kw = r["keyword"] or "(blank)"
    if r["keyword"] in ("HISTORY", "COMMENT", "") or r["occurrence"]:
        kw += f"[{r['occurrence']}]"
    where = f"HDU {r['hdu']} {kw}"
    if r["kind"] == "added":
        return f"{where} added: {_v(r['new_value'], r['new_image'])}"
    if r["kind"] == "removed":
        return f"{where} removed: {_v(r['old_value'], r['old_image'])}"
    return f"{where} changed: {_v(r['old_value'], r['old_image'])} -> {_v(r['new_value'], r['new_image'])}"


def _v(value: str | None, image: str | None) -> str:
    if value is not None:
        return repr(value)
    return repr((image or "").rstrip())
