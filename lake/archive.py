"""The archive as files: the one scanner (local folders and fsspec URLs) and the one rule for whether a
file changed since the lake recorded it. Used by ingest and by the consistency jobs alike, so that
``check-fsys2lake`` reports exactly what the next ``ql ingest`` will pick up."""

from __future__ import annotations

import os

import fsspec

# (size in bytes, modification time in seconds since the epoch)
Stamp = tuple[int, float]
MTIME_TOLERANCE = 1e-6  # mtimes go through a double in the lake; equal stamps compare equal after it


def scan_archive(archive: str) -> dict[str, Stamp]:
    """Every ``*.fits`` file below ``archive`` (a folder or an fsspec URL): relative path → stamp."""
    if "://" in archive:
        return _scan_fsspec(archive)
    out: dict[str, Stamp] = {}
    root = os.path.abspath(archive)

    def walk(d: str, prefix: str) -> None:
        with os.scandir(d) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    walk(e.path, prefix + e.name + "/")
                elif e.name.endswith(".fits") and e.is_file():
                    st = e.stat()
                    out[prefix + e.name] = (st.st_size, st.st_mtime)

    walk(root, "")
    return out


def _scan_fsspec(archive: str) -> dict[str, Stamp]:
    fs, root = fsspec.core.url_to_fs(archive)
    out: dict[str, Stamp] = {}
    for p, info in fs.find(root, detail=True).items():
        if p.endswith(".fits"):
            mtime = info.get("mtime") or info.get("LastModified") or 0
            stamp = mtime.timestamp() if hasattr(mtime, "timestamp") else float(mtime)
            out[p[len(root) :].lstrip("/")] = (int(info["size"]), stamp)
    return out


def changed(recorded: Stamp, now: Stamp) -> bool:
    """Whether a file whose stamp the lake recorded as ``recorded`` is different now."""
    return recorded[0] != now[0] or abs((recorded[1] or 0.0) - now[1]) > MTIME_TOLERANCE
