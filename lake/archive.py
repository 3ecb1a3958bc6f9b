"""The archive as files: the one scanner (local folders and fsspec URLs) and the one rule for whether a
file changed since the lake recorded it. Used by ingest and by the consistency jobs alike, so that
``check-fsys2lake`` reports exactly what the next ``ql ingest`` will pick up.

A path the scanner cannot take (a folder it may not read, a symlink loop or a broken link, a FIFO or
a folder named ``*.fits``, a name that is not UTF-8) is listed all the same, with the reason in
:attr:`Listing.problems`: the ingest records it as an ``error`` row, so that ``ql errors`` shows it,
and one bad path never stops a scan. Folders are listed with a trailing ``/``.

Paths are strings in the lake. A name that is not valid UTF-8 (POSIX names are bytes) is stored with
its undecodable bytes as ``\\xNN`` escapes (``os.fsencode`` then ``backslashreplace``): safe to store and
print, readable, but not a name the file can be opened by, so such a file is an error row asking for
a rename rather than ingested under a name that no reader could match.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence

import fsspec

from lake.errors import ConfigError

# (size in bytes, modification time in seconds since the epoch)
Stamp = tuple[int, float]
MTIME_TOLERANCE = 1e-6  # mtimes go through a double in the lake; equal stamps compare equal after it


class Listing(dict[str, Stamp]):
    """Relative path → stamp of every ``*.fits`` path below the archive; ``problems`` maps the paths that
    cannot be ingested (they are in the listing too) to ``"<path>: <reason>"``."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: dict[str, str] = {}

    def problem(self, rel: str, reason: str, st: os.stat_result | None = None) -> None:
        self[rel] = (st.st_size, st.st_mtime) if st else (0, 0.0)
        self.problems[rel] = f"{rel}: {reason}"


def scan_archive(archive: str, under: Sequence[str] = ()) -> Listing:
    """Every ``*.fits`` file below ``archive`` (a folder or an fsspec URL): relative path → stamp, and
    the paths that cannot be ingested, with why (:class:`Listing`). With ``under`` (archive-relative
    folders or files, see :func:`scope`), only those. Never raises for a path below the archive; the
    walk is iterative, so depth is no limit."""
    if "://" in archive:
        return _scan_fsspec(archive)
    out = Listing()
    root = os.path.abspath(archive)
    stack: list[tuple[str, str]] = [("", root)]
    if under:
        stack = []
        for rel in under:
            full = os.path.join(root, rel)
            if os.path.isdir(full):
                stack.append((rel.rstrip("/") + "/", full))
            elif rel.endswith(".fits") and os.path.lexists(full):
                _scan_file(out, rel, full)
    while stack:
        prefix, d = stack.pop()
        try:
            with os.scandir(d) as it:
                entries = list(it)
        except OSError as e:
            if not prefix:
                raise ConfigError(
                    f"archive {archive} cannot be read ({e.strerror}); fix its permissions"
                ) from None
            _folder_problem(out, prefix, d, e)
            continue
        for entry in entries:
            _scan_entry(out, stack, prefix, entry)
    return out


def _storable(rel: str) -> tuple[str, bool]:
    """``rel`` as it can be stored (valid UTF-8), and whether that took escaping."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(rel).decode("utf-8", "backslashreplace"), True
    return rel, False


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def _folder_problem(out: Listing, prefix: str, path: str, e: OSError) -> None:
    rel, _ = _storable(prefix)
    if e.errno in (errno.EACCES, errno.EPERM):
        why = "folder cannot be read (permission denied); make it readable by the ingest user"
    else:
        why = f"folder cannot be read ({e.strerror}); its files are not ingested: fix it"
    out.problem(rel, why, _lstat(path))


def scope(archive: str, paths: Sequence[str]) -> list[str]:
    """``paths`` (folders or files, relative to ``archive`` or absolute inside it) as archive-relative
    paths without a trailing ``/``; raise :class:`ConfigError` for one outside the archive."""
    root = os.path.abspath(archive)
    out = []
    for p in paths:
        full = os.path.abspath(os.path.join(root, p))
        if full != root and not full.startswith(root + os.sep):
            raise ConfigError(f"{p} is not inside the archive {archive}; give a folder or file below it")
        rel = os.path.relpath(full, root).replace(os.sep, "/")
        out.append("" if rel == "." else rel)
    return [] if "" in out else sorted(set(out))


def _scan_file(out: Listing, rel: str, full: str) -> None:
    """Add one file named by the caller (it may be gone: then it is not listed)."""
    with os.scandir(os.path.dirname(full)) as it:
        for entry in it:
            if entry.name == os.path.basename(full):
                _scan_entry(out, [], rel[: len(rel) - len(entry.name)], entry)
                return


def _scan_entry(out: Listing, stack: list[tuple[str, str]], prefix: str, entry: os.DirEntry[str]) -> None:
    """Add one directory entry to ``out`` (a file or a problem), or its folder to ``stack``."""
    rel, escaped = _storable(prefix + entry.name)
    try:
        if entry.is_dir(follow_symlinks=False):
            stack.append((prefix + entry.name + "/", entry.path))
            if entry.name.endswith(".fits"):
                out.problem(rel, "is a folder, not a FITS file; rename it", _lstat(entry.path))
            return
        if not entry.name.endswith(".fits"):
            return
        st = os.stat(entry.path)  # follows symlinks: a link to a file is the file
    except OSError as e:
        out.problem(rel, _stat_reason(entry, e), _lstat(entry.path))
        return
    if escaped:
        out.problem(rel, "file name is not valid UTF-8 (shown with \\x escapes); rename it", st)
    elif stat.S_ISREG(st.st_mode):
        out[rel] = (st.st_size, st.st_mtime)
    elif stat.S_ISDIR(st.st_mode):
        out.problem(rel, "is a link to a folder, not a FITS file; remove the link", _lstat(entry.path))
    else:
        out.problem(rel, "not a regular file (a FIFO, socket or device); remove it", _lstat(entry.path))


def _stat_reason(entry: os.DirEntry[str], e: OSError) -> str:
    if e.errno == errno.ELOOP:
        return "symbolic link loop; remove or fix the link"
    if e.errno == errno.ENOENT and entry.is_symlink():
        try:
            target = repr(os.readlink(entry.path))
        except OSError:
            target = "?"
        return f"broken symbolic link (its target {target} does not exist); fix or remove it"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied; make the file and its folder readable by the ingest user"
    return f"cannot be read ({e.strerror}); fix or remove it"


def _scan_fsspec(archive: str) -> Listing:
    fs, root = fsspec.core.url_to_fs(archive)
    out = Listing()
    for p, info in fs.find(root, detail=True).items():
        if p.endswith(".fits"):
            mtime = info.get("mtime") or info.get("LastModified") or 0
            stamp = mtime.timestamp() if hasattr(mtime, "timestamp") else float(mtime)
            out[p[len(root) :].lstrip("/")] = (int(info["size"]), stamp)
    return out


def changed(recorded: Stamp, now: Stamp) -> bool:
    """Whether a file whose stamp the lake recorded as ``recorded`` is different now."""
    return recorded[0] != now[0] or abs((recorded[1] or 0.0) - now[1]) > MTIME_TOLERANCE


def changed_sql(recorded: str, now: str) -> str:
    """:func:`changed` as a SQL condition on the ``size`` and ``mtime`` columns of two relations."""
    return (
        f"({recorded}.size IS DISTINCT FROM {now}.size "
        f"OR abs(coalesce({recorded}.mtime, 0.0) - {now}.mtime) > {MTIME_TOLERANCE!r})"
    )
