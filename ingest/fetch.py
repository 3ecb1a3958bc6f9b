"""get-missing-files: fetch the files a dataset should have but the archive lacks, from a mirror.

The mirror is any fsspec URL (a directory, ``s3://...``) laid out like the archive. Each fetched file
is checked (size against the mirror's listing, SHA-256 against the mirror's ``SHA256SUMS`` when it has
one, and a complete FITS structure), written under a temporary name and renamed into place, so the
archive never holds half a file; then the incremental ingest brings it into the lake.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO

import fsspec
import pyarrow as pa

from ingest.fitsheader import read_raw_headers
from lake.access import read_sql
from lake.errors import FitsError, LayoutError, NotConfigured
from lake.jobs import JobContext, JobResult
from lake.layout import Layout
from lake.schema import expected_files

FINDINGS = pa.schema([("path", pa.string()), ("problem", pa.string()), ("detail", pa.string())])


def missing_files(lake_root: Path, layout: Layout) -> list[str]:
    """Archive-relative paths of expected files the lake does not have as ``ok``: never seen, gone
    from disk, or recorded with an error (a truncated or corrupt copy, replaced if the mirror's is good)."""
    m = read_sql(
        "SELECT rootname, proposid, detector, imagetyp, asn_id FROM master ORDER BY rootname", lake_root
    )
    f = read_sql("SELECT path, rootname, filetype, status FROM files", lake_root).to_pylist()
    have = {(r["rootname"], r["filetype"]) for r in f if r["status"] == "ok"}
    gone = [r["path"] for r in f if r["status"] in {"missing", "error"} and _filed_right(layout, r["path"])]
    want = []
    for r in m.to_pylist():
        for ft in expected_files(r["detector"], r["imagetyp"], r["rootname"] == (r["asn_id"] or "").lower()):
            if (r["rootname"], ft) not in have:
                want.append(layout.path(r["proposid"], r["rootname"], ft))
    return sorted(set(want) | set(gone))


def _filed_right(layout: Layout, path: str) -> bool:
    """The path fits the layout (a misfiled copy is check-filesystem's business, not a missing file)."""
    try:
        layout.parse(path)
    except LayoutError:
        return False
    return True


def _checksums(fs: fsspec.AbstractFileSystem, root: str) -> dict[str, str]:
    p = f"{root.rstrip('/')}/SHA256SUMS"
    if not fs.exists(p):
        return {}
    out = {}
    for line in fs.cat_file(p).decode().splitlines():
        if line.strip():
            digest, name = line.split(None, 1)
            out[name.strip().lstrip("*")] = digest.lower()
    return out


_HOLE = bytes(4096)  # a file-system block


def write_sparse(f: BinaryIO, chunk: bytes) -> None:
    """Write ``chunk``, seeking over blocks of zeros so they stay holes on disk (as ``cp --sparse``
    does); the caller ends with ``f.truncate()`` so trailing holes count in the size."""
    step = len(_HOLE)
    for i in range(0, len(chunk), step):
        part = chunk[i : i + step]
        if part == _HOLE[: len(part)]:
            f.seek(len(part), os.SEEK_CUR)
        else:
            f.write(part)


def fetch(fs: fsspec.AbstractFileSystem, root: str, rel: str, dest: Path, sums: dict[str, str]) -> str | None:
    """Copy one file; None if done, else why not."""
    src = f"{root.rstrip('/')}/{rel}"
    if not fs.exists(src):
        return "not in the mirror"
    size = int(fs.info(src)["size"])
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    h = hashlib.sha256()
    try:
        with fs.open(src, "rb") as fin, open(tmp, "wb") as fout:
            while chunk := fin.read(1 << 22):
                h.update(chunk)
                write_sparse(fout, chunk)
            fout.truncate()
        if tmp.stat().st_size != size:
            return f"size {tmp.stat().st_size} differs from the mirror's {size}"
        if rel in sums and sums[rel] != h.hexdigest():
            return "SHA-256 differs from the mirror's SHA256SUMS"
        try:
            read_raw_headers(tmp, rel)
        except FitsError as e:
            return f"not a complete FITS file: {e}"
        os.replace(tmp, dest)
        return None
    finally:
        tmp.unlink(missing_ok=True)


def get_missing_files(ctx: JobContext) -> JobResult:
    mirror = ctx.params.get("mirror") or ctx.cfg.get("mirror")
    if not mirror:
        raise NotConfigured("mirror", "get-missing-files needs a mirror to fetch from (or -p mirror=URL)")
    layout = Layout(ctx.cfg["layout"])
    archive = Path(ctx.cfg["archive"])
    want = missing_files(ctx.lake_root, layout)
    fs, root = fsspec.core.url_to_fs(str(mirror))
    sums = _checksums(fs, root)
    rows, fetched = [], 0
    broken = {
        r["path"]
        for r in read_sql("SELECT path FROM files WHERE status = 'error'", ctx.lake_root).to_pylist()
    }
    for rel in want:
        if (archive / rel).exists() and rel not in broken:
            continue  # on disk already, just not ingested yet: the ingest below takes it
        why = fetch(fs, root, rel, archive / rel, sums)
        if why is None:
            fetched += 1
            ctx.log.info("fetched %s", rel)
            rows.append((rel, "fetched", f"from {mirror}"))
        else:
            ctx.log.warning("%s: %s", rel, why)
            rows.append((rel, "not-fetched", why))
    ingested = 0
    if fetched or any((archive / r).exists() for r in want):
        from ingest.run import ingest

        s = ingest(ctx.lake_root, str(archive), scheduler="synchronous", template=ctx.cfg["layout"],
                   catalog_uri=ctx.cfg.get("catalog_uri", ""))  # fmt: skip
        ingested = s.ingested
    table = pa.table({n: [r[i] for r in rows] for i, n in enumerate(FINDINGS.names)}, schema=FINDINGS)
    counts = {"missing": len(want), "fetched": fetched, "ingested": ingested}
    return JobResult(
        bool(fetched or ingested), counts, table, f"{fetched} of {len(want)} missing files fetched"
    )
