"""Lake maintenance: compact small data files, expire old snapshots, delete the files nothing needs.

A lake fed by cron grows in ways its rows do not: every ingest with a change adds a data file per table
it touches and rewrites ``master``, every job run appends its findings as one small file, and every
commit leaves Iceberg metadata behind. Left alone, queries open ever more files and the warehouse fills
with files no snapshot reads. :func:`maintain` (``ql maintain``, the ``maintain-lake`` job) puts that
back, under the writer lock, as one published commit:

1. **Compaction.** In each table (and each year partition of the fixed tables) data files smaller than
   ``target_mb`` are rewritten together, in ``path`` order, into files of about that size and at most
   :data:`MAX_CELLS` cells, so each new file holds a narrow range of archive paths (readers locate a
   file's rows by it, and a changed file rewrites one data file); rows are sorted within a file like the
   ingest sorts them (wide tables by HDU, date and path; ``cards`` by path, HDU and position), so Parquet
   statistics keep pruning. A wide header table's primary headers (HDU 0) go to files of their own, apart
   from its extensions: a per-HDU table (``uvisflt_0``) reads only the files holding its HDU, so a query
   of the primary headers opens some 1/20 of the table's files (a changed file rewrites two data files).
   The swap is one Iceberg snapshot per table and one pin update: readers see the old files or the new
   ones, never both or neither.
2. **Expiry.** A snapshot that stopped being its table's current one more than ``keep_hours`` ago is
   expired (a DuckDB session or notebook opened before then may still read its files; the pinned
   snapshot is never expired).
3. **Cleanup.** Data, manifest and metadata files that no remaining snapshot or metadata version refers
   to, and that are older than ``keep_hours``, are deleted (files of expired snapshots, leftovers of
   killed writers). Iceberg's own "delete old metadata after commit" is switched on for every table, so
   metadata versions stay few between runs. The namespace a rebuild replaced is dropped once it has
   been retired for ``keep_hours`` (:meth:`lake.tables.Lake.drop_retired`), with what killed writers
   left outside any table.

A killed run changes nothing visible: compacted files become visible only with the final pin update, and
files written before that are unreferenced leftovers that the next run deletes.
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lake import schema as sch
from lake.datafile import bloom_filters, row_group_rows
from lake.errors import LakeError
from lake.faults import point
from lake.tables import METADATA_PROPERTIES, Lake, Pins, hdu_columns_of

SMALL_SHARE = 0.75  # a file under this share of the target size is worth rewriting
MIN_FILES = 4  # fewer small files than this in a partition are left alone
# A compacted file holds at most this many cells (rows x columns), whatever its compressed size: a
# copy-on-write delete of one archive file's rows reads and writes the data files holding it whole, so
# this bounds the memory (some 150 MB of Arrow) and the CPU (about 0.3 s a copy, four copies for a changed
# UVIS file) of a one-file ingest in a lake of any size. (16M cells took a 4M-file lake's cron ingest over
# 5 s; half that doubles the files per view, whose footers a scan of the whole table reads.)
MAX_CELLS = 8_000_000


@dataclass
class MaintenanceSummary:
    tables: int = 0
    compacted_tables: int = 0
    files_before: int = 0
    files_after: int = 0
    snapshots_expired: int = 0
    files_deleted: int = 0
    bytes_deleted: int = 0
    seconds: float = 0.0
    compacted: dict[str, tuple[int, int]] = field(default_factory=dict)  # table -> (files in, files out)
    per_table: list[dict[str, Any]] = field(default_factory=list)  # what each table had and gave back
    namespaces_dropped: list[str] = field(default_factory=list)  # retired by a rebuild > keep_hours ago

    def lines(self) -> list[str]:
        return [
            f"compacted {self.compacted_tables} of {self.tables} tables: data files {self.files_before} -> "
            f"{self.files_after}",
            f"expired {self.snapshots_expired} snapshots; deleted {self.files_deleted} unreferenced files "
            f"({self.bytes_deleted / 1e6:.1f} MB); {self.seconds:.1f} s",
        ] + ([f"dropped the namespaces {', '.join(self.namespaces_dropped)} (replaced by a rebuild)"]
             if self.namespaces_dropped else [])  # fmt: skip


def maintain(
    lake_dir: str | os.PathLike[str],
    *,
    keep_hours: float = 24.0,
    target_mb: float = 128.0,
    catalog_uri: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> MaintenanceSummary:
    """Compact, expire and clean the lake at ``lake_dir`` (see the module docstring).

    ``keep_hours``: how long superseded snapshots and their files stay readable. ``target_mb``: size of
    compacted files. ``progress(tables_done, tables)`` is called after each table.
    """
    t0 = time.monotonic()
    lake = Lake(lake_dir, catalog_uri)
    lake.require()
    out = MaintenanceSummary()
    target = int(target_mb * 1e6)
    # Compaction is published before expiry (which keeps only the current and pinned snapshots); expiry
    # and cleanup change no pin, so the transaction has nothing left to publish at its end.
    with lake.transaction() as pins:
        names = sorted(pins.tables)
        out.tables = len(names)
        for i, name in enumerate(names):
            before, after = _compact(lake, pins, name, target)
            out.files_before += before
            out.files_after += after
            if after != before:
                out.compacted_tables += 1
                out.compacted[name] = (before, after)
            if progress:
                progress(i + 1, len(names))
        if out.compacted:
            lake.publish(pins)
        cutoff_ms = int((time.time() - keep_hours * 3600) * 1000)
        for name in names:
            _metadata_properties(lake.table(pins, name))
            expired = _expire(lake.table(pins, name), pins.tables[name], cutoff_ms)
            point("maintain.expired")
            folders = [lake.data_dir(pins.namespace, name)]
            deleted, size = _delete_unreferenced(lake.table(pins, name), folders, cutoff_ms / 1000)
            point("maintain.cleaned")
            out.snapshots_expired += expired
            out.files_deleted += deleted
            out.bytes_deleted += size
            was, now = out.compacted.get(name) or (None, None)
            if expired or deleted or was is not None:
                out.per_table.append(
                    {"table": name, "files_before": was, "files_after": now,
                     "snapshots_expired": expired, "files_deleted": deleted, "bytes_deleted": size}
                )  # fmt: skip
        out.namespaces_dropped = lake.drop_retired(keep_hours)
    out.seconds = time.monotonic() - t0
    return out


FINDINGS = pa.schema(
    [
        ("table", pa.string()),
        ("files_before", pa.int64()),
        ("files_after", pa.int64()),
        ("snapshots_expired", pa.int64()),
        ("files_deleted", pa.int64()),
        ("bytes_deleted", pa.int64()),
    ]
)


def maintain_lake_job(ctx: Any) -> Any:
    """The ``maintain-lake`` job: :func:`maintain` with the lake's settings; one findings row per table
    it compacted or cleaned."""
    from lake.jobs import JobResult

    s = maintain(
        ctx.lake_root,
        keep_hours=float(ctx.params.get("keep_hours", ctx.cfg["keep_hours"])),
        target_mb=float(ctx.params.get("target_mb", ctx.cfg["target_file_mb"])),
        catalog_uri=ctx.cfg.get("catalog_uri", ""),
    )
    for line in s.lines():
        ctx.log.info(line)
    counts = {
        "compacted_tables": s.compacted_tables,
        "files_before": s.files_before,
        "files_after": s.files_after,
        "snapshots_expired": s.snapshots_expired,
        "files_deleted": s.files_deleted,
    }
    findings = pa.Table.from_pylist(s.per_table, schema=FINDINGS)
    worked = bool(s.compacted_tables or s.snapshots_expired or s.files_deleted)
    return JobResult(worked, counts, findings, " ".join(s.lines()))


# ------------------------------------------------------------------------------------------ compaction
def _sort_keys(table: str, names: list[str]) -> list[str]:
    if table == "cards":
        wanted = ["path", "hdu", "position"]
    elif table == "card_changes":  # a file's versions in order, each as the ingest wrote it
        wanted = ["path", "ingested_at", "hdu", "new_position", "old_position"]
    elif sch.is_header_table(table):
        wanted = ["hdu", "date_obs", "path"]
    else:
        wanted = ["path"]
    return [c for c in wanted if c in names]


# Parts of a wide header table's rows, written to separate files by compaction: the primary headers
# (HDU 0: dates, targets, exposure times, what most queries filter on) and the extensions. A per-HDU
# view reads the files holding its HDU only (lake.catalog.hdu_view_sql), so a query of ``uvisflt_0``
# opens the primary files, about 1/20 of the table's, each in date order.
PRIMARY, EXTENSIONS = "primary", "extensions"
Task = tuple[list[str], pa.Schema, str, Path, str | None]  # files, schema, table, folder, part (None: all)
Rewrites = Callable[[list[Task]], list[str]]


def _here(tasks: list[Task]) -> list[str]:
    return [_rewrite(*t) for t in tasks]


def split_primary(table: str, names: list[str]) -> bool:
    """Whether ``table``'s files hold the primary headers apart from the extensions."""
    return sch.is_header_table(table) and "hdu" in names


def part_schema(schema: pa.Schema, hdu_columns: dict[int, list[str]], part: str | None) -> pa.Schema:
    """The columns of ``schema`` that a file of ``part``'s rows holds: the bookkeeping columns and the
    keyword columns the table records for the part's HDUs (``hdu_columns``, see
    :func:`lake.tables.hdu_columns_of`); every column where the record is empty or ``part`` is None.

    A primary file of ``uvisflt`` then holds some 190 of the table's 441 columns: DuckDB sets up a
    reader per file and column, so a query of ``uvisflt_0`` costs half as much per file, and the same
    :data:`MAX_CELLS` make files of twice the rows, so half as many (the original query at 4M files
    opened 26 primary files of 441 columns in 12 ms, 11 files of 193 columns in 8.5 ms)."""
    if part is None or not hdu_columns:
        return schema
    keep = set(sch.WIDE_BASE.names)
    for hdu, cols in hdu_columns.items():
        if (hdu == 0) == (part == PRIMARY):
            keep.update(cols)
    return pa.schema([f for f in schema if f.name in keep])


def part_rows(t: pa.Table, part: str | None) -> pa.Table:
    """The rows of ``t`` in ``part`` (:data:`PRIMARY`, :data:`EXTENSIONS`; None: all)."""
    if part is None:
        return t
    primary = pc.fill_null(pc.equal(t.column("hdu"), 0), False)
    return t.filter(primary if part == PRIMARY else pc.invert(primary))


def compact(lake: Lake, pins: Pins, tables: list[str], *, target_mb: float, rewrites: Rewrites) -> int:
    """Compact ``tables`` (unpublished), with the file rewrites done by ``rewrites`` (e.g. on an ingest's
    Dask workers, so that a large ingest leaves a lake as fast as a maintained one without a serial
    tail); returns the number of data files removed."""
    gone = 0
    for name in sorted(tables):
        before, after = _compact(lake, pins, name, int(target_mb * 1e6), rewrites)
        gone += before - after
    return gone


def _compact(lake: Lake, pins: Pins, table: str, target: int, rewrites: Rewrites = _here) -> tuple[int, int]:
    """Rewrite the table's small files; returns its data-file count before and after."""
    sid = pins.tables.get(table)
    if sid is None:
        return 0, 0
    tbl = lake.table(pins, table)
    tasks = list(tbl.scan(snapshot_id=sid).plan_files())
    groups: dict[Any, list[Any]] = {}
    schema = _plain_schema(lake.current_schema(pins, table))
    split = split_primary(table, schema.names)
    parts: dict[str | None, pa.Schema] = {None: schema}
    if split:
        per_hdu = hdu_columns_of(tbl)
        parts = {part: part_schema(schema, per_hdu, part) for part in (PRIMARY, EXTENSIONS)}
    max_rows = {part: max(1, MAX_CELLS // max(1, len(s))) for part, s in parts.items()}
    # (a file is small by the smaller part's rows: an extension file full at its 30k rows is not small
    # beside a primary file's 41k, and rewriting every such file cost 'ql maintain' at 4M files 75 s)
    small = min(max_rows.values())
    for t in tasks:
        if t.file.file_size_in_bytes < SMALL_SHARE * target and t.file.record_count < SMALL_SHARE * small:
            groups.setdefault((t.file.spec_id, tuple(t.file.partition)), []).append(t.file)
    groups = {k: v for k, v in groups.items() if len(v) >= MIN_FILES}
    if not groups:
        return len(tasks), len(tasks)
    path_id = _path_field_id(lake.table(pins, table))
    old: list[Any] = []
    work: list[Task] = []
    for files in groups.values():
        # beside the partition's files (``data/year=2016``): DuckDB reads the partition from the folder
        sub = Path(files[0].file_path.removeprefix("file://")).parent
        files.sort(key=lambda f: _lower_path(f, path_id))
        bins = _split_bins(lake, files, max_rows) if split else _whole_bins(files, target, max_rows[None])
        for bin_, part in bins:
            paths = [f.file_path.removeprefix("file://") for f in bin_]
            work.append((paths, _file_schema(parts[part], paths[0]), table, sub, part))
        old.extend({f.file_path: f for b, _ in bins for f in b}.values())
    new = rewrites(work) if work else []
    point("compact.written")
    if not old:  # every small file alone in its bin: nothing to swap (and nothing to publish)
        return len(tasks), len(tasks)
    lake.replace_files(pins, table, old, new, {"quicklake.operation": "compaction"})
    return len(tasks), len(tasks) - len(old) + len(new)


def _plain_schema(schema: pa.Schema) -> pa.Schema:
    """The table's columns without Iceberg's field-id metadata: files are matched by name, as the
    ingest's own files are (the table's name mapping)."""
    return pa.schema([pa.field(f.name, f.type, f.nullable) for f in schema])


def _file_schema(table_schema: pa.Schema, example: str) -> pa.Schema:
    """The table's columns with the Parquet types the ingest wrote (e.g. ``year`` as int64 where the
    table says int): compacted files change no type a view over the files shows."""
    written = pq.read_schema(example)
    # nullability is the table's: a file whose column happened to hold no nulls (a cron ingest's) may
    # say "not null", and the files compacted with it may hold nulls
    return pa.schema(
        [
            written.field(f.name).with_nullable(f.nullable) if f.name in written.names else f
            for f in table_schema
        ],
    )


def _path_field_id(tbl: Any) -> int | None:
    try:
        return int(tbl.schema().find_field("path").field_id)
    except ValueError:
        return None


def _lower_path(f: Any, path_id: int | None) -> bytes:
    """A data file's smallest ``path`` as Iceberg recorded it (files without bounds sort first)."""
    return bytes((f.lower_bounds or {}).get(path_id, b"")) if path_id is not None else b""


def _bins(files: list[Any], target: int, max_rows: int) -> Iterator[list[Any]]:
    """Consecutive groups of files of about ``target`` bytes and at most ``max_rows`` rows together (the
    last may be smaller)."""
    group: list[Any] = []
    size = rows = 0
    for f in files:
        if group and (size + f.file_size_in_bytes > target or rows + f.record_count > max_rows):
            if len(group) > 1:  # a file alone is left as it is
                yield group
            group, size, rows = [], 0, 0
        group.append(f)
        size += f.file_size_in_bytes
        rows += f.record_count
    if len(group) > 1:
        yield group


def _whole_bins(files: list[Any], target: int, max_rows: int) -> list[tuple[list[Any], str | None]]:
    return [(b, None) for b in _bins(files, target, max_rows)]


def _split_bins(
    lake: Lake, files: list[Any], max_rows: dict[str | None, int]
) -> list[tuple[list[Any], str | None]]:
    """Every one of ``files`` (in path order) rewritten as primary files and extension files of at most
    ``max_rows[part]`` rows each (see :data:`PRIMARY`)."""
    primary = [lake.hdu_rows(f.file_path.removeprefix("file://")).get(0, 0) for f in files]
    out: list[tuple[list[Any], str | None]] = []
    rest = [f.record_count - n for f, n in zip(files, primary, strict=True)]
    for part, counts in ((PRIMARY, primary), (EXTENSIONS, rest)):
        group: list[Any] = []
        rows = 0
        for f, n in zip(files, counts, strict=True):
            if not n:
                continue
            if group and rows + n > max_rows[part]:
                out.append((group, part))
                group, rows = [], 0
            group.append(f)
            rows += n
        if group:
            out.append((group, part))
    return out


def read_part(path: str, part: str | None) -> pa.Table:
    """The rows of the Parquet file ``path`` in ``part`` (see :func:`part_rows`), reading only the row
    groups that may hold them by their ``hdu`` statistics (an ingest's interim files keep the primary
    headers in row groups of their own: each of a primary and an extension rewrite then reads its own),
    decoded in this thread (Arrow's thread pool cost more CPU than it saved on these files)."""
    f = pq.ParquetFile(path)
    if part is None:
        return f.read(use_threads=False)
    meta = f.metadata
    i = f.schema_arrow.get_field_index("hdu")
    if i >= 0 and meta.num_row_groups and meta.row_group(0).column(i).path_in_schema != "hdu":
        i = -1  # (a nested column before it: not the leaf index)
    groups: list[int] = []
    mixed = i < 0
    for r in range(meta.num_row_groups):
        stats = meta.row_group(r).column(i).statistics if i >= 0 else None
        if stats is None or not stats.has_min_max or not stats.has_null_count:
            groups.append(r)
            mixed = True
            continue
        only_primary = stats.min == 0 and stats.max == 0 and stats.null_count == 0
        no_primary = stats.min > 0 or stats.max < 0
        if (only_primary and part == EXTENSIONS) or (no_primary and part == PRIMARY):
            continue
        groups.append(r)
        mixed = mixed or not (only_primary or no_primary)
    if len(groups) == meta.num_row_groups:
        t = f.read(use_threads=False)
    elif groups:
        t = f.read_row_groups(groups, use_threads=False)
    else:
        t = f.schema_arrow.empty_table()
    return part_rows(t, part) if mixed else t


def _conform(t: pa.Table, schema: pa.Schema, source: str = "") -> pa.Table:
    """A file's rows in the columns of ``schema``: missing (newer) keywords as nulls. A column left out
    must hold no value (a part's file leaves out the other HDUs' keywords, see :func:`part_schema`)."""
    cols = []
    have = {n: i for i, n in enumerate(t.column_names)}  # (``column_names`` is a new list per call)
    names = set(schema.names)
    lost = [n for n in have if n not in names and t.column(have[n]).null_count < t.num_rows]
    if lost:  # the table's record of each HDU's keywords lacks one: compaction would drop its values
        raise LakeError(
            f"{source}: column {lost[0]!r} holds values but is not among the table's keyword columns of "
            "these HDUs; compaction left the table as it was. Run 'ql rebuild' to record them again."
        )
    for f in schema:
        i = have.get(f.name)
        if i is not None:
            col = t.column(i)
            cols.append(col if col.type == f.type else pc.cast(col, f.type, safe=True))
        else:
            cols.append(pa.nulls(len(t), f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def in_order(t: pa.Table, keys: list[str]) -> bool:
    """Whether the rows of ``t`` are already in the order ``t.sort_by`` puts them in by ``keys`` (each
    ascending, nulls last); False where that is not checked (floating-point or nested keys). A few
    vectorised comparisons of each row with the next, much cheaper than sorting: the files compaction
    reads are mostly sorted already (an ingest's ``cards`` in path order), and then need no sort."""
    n = t.num_rows
    if n < 2:
        return True
    le: Any = None  # row i <= row i + 1 by the keys compared so far (from the last key back)
    for c in reversed(keys):
        col = t.column(c)
        kind = col.type
        if not (
            pa.types.is_integer(kind)
            or pa.types.is_string(kind)
            or pa.types.is_large_string(kind)
            or pa.types.is_timestamp(kind)
            or pa.types.is_date(kind)
            or pa.types.is_boolean(kind)
        ):
            return False  # (NaN's place, dictionaries: left to sort_by)
        a, b = col.slice(0, n - 1), col.slice(1)
        if col.null_count:
            a_ok, b_ok = pc.is_valid(a), pc.is_valid(b)
            lt = pc.or_(pc.fill_null(pc.less(a, b), False), pc.and_(a_ok, pc.invert(b_ok)))
            eq = pc.or_(pc.fill_null(pc.equal(a, b), False), pc.invert(pc.or_(a_ok, b_ok)))
        else:
            lt, eq = pc.less(a, b), pc.equal(a, b)
        le = pc.or_(lt, eq) if le is None else pc.or_(lt, pc.and_(eq, le))
    return bool(pc.all(le).as_py())


def _by_path(paths: list[str]) -> list[str]:
    """``paths`` in the order of their smallest ``path`` (from their footers' statistics; as given if one
    has none). Files of ranges that do not overlap (an ingest's batches) then follow one another in
    sorted order, whatever order they came in, and their rows need no sort (see :func:`in_order`)."""
    first: list[str] = []
    for p in paths:
        meta = pq.read_metadata(p)
        names = meta.schema.names
        lo = []
        for r in range(meta.num_row_groups) if "path" in names else ():
            stats = meta.row_group(r).column(names.index("path")).statistics
            if stats is None or not stats.has_min_max:
                return paths
            lo.append(stats.min)
        if not lo:
            return paths
        first.append(min(lo))
    return [p for _, p in sorted(zip(first, paths, strict=True), key=lambda fp: fp[0])]


def _rewrite(paths: list[str], schema: pa.Schema, table: str, out_dir: Path, part: str | None = None) -> str:
    """One Parquet file of the rows of ``paths`` (those of ``part``, see :func:`part_rows`), in sorted row
    groups (of the table's size, see :func:`lake.datafile.row_group_rows`) with Bloom filters on the
    lookup columns; written under a temporary name and renamed, so a half-written file is never mistaken
    for a finished one."""
    name = f"compact-{uuid.uuid4().hex[:16]}.parquet"
    final, tmp = out_dir / name, out_dir / f".{name}.tmp"
    keys = [(c, "ascending") for c in _sort_keys(table, schema.names)]
    group = row_group_rows(table)
    pending: list[pa.Table] = []
    rows = 0
    writer: pq.ParquetWriter | None = None

    def flush() -> None:
        nonlocal writer
        chunk = pa.concat_tables(pending) if pending else schema.empty_table()
        if writer is None:  # Bloom filters sized by the first chunk's distinct values
            blooms = bloom_filters(chunk, group)
            writer = pq.ParquetWriter(
                tmp, schema, compression="zstd", store_schema=False, bloom_filter_options=blooms
            )
        if keys and not in_order(chunk, [c for c, _ in keys]):
            chunk = chunk.sort_by(keys)
        writer.write_table(chunk, row_group_size=group)

    try:
        for p in _by_path(paths) if keys and keys[0][0] == "path" else paths:
            pending.append(_conform(read_part(p, part), schema, f"{table} data file {p}"))
            rows += pending[-1].num_rows
            if rows >= group:
                flush()
                pending, rows = [], 0
        if pending or writer is None:
            flush()
    finally:
        if writer is not None:
            writer.close()
    os.replace(tmp, final)
    return str(final)


# ------------------------------------------------------------------------------------ expiry, cleanup
def _metadata_properties(tbl: Any) -> None:
    if any(tbl.properties.get(k) != v for k, v in METADATA_PROPERTIES.items()):
        with tbl.transaction() as tx:
            tx.set_properties(METADATA_PROPERTIES)


def _expire(tbl: Any, pinned: int | None, cutoff_ms: int) -> int:
    """Expire the snapshots that stopped being current before ``cutoff_ms``; returns how many."""
    md = tbl.metadata
    ended: dict[int, int] = {}
    log = md.snapshot_log
    for entry, nxt in itertools.pairwise(log):
        ended[entry.snapshot_id] = nxt.timestamp_ms  # a snapshot current twice: the later end counts
    keep = {md.current_snapshot_id, pinned}
    ids = [
        s.snapshot_id
        for s in md.snapshots
        if s.snapshot_id not in keep and ended.get(s.snapshot_id, s.timestamp_ms) < cutoff_ms
    ]
    if ids:
        tbl.maintenance.expire_snapshots().by_ids(ids).commit()
    return len(ids)


def _referenced(tbl: Any) -> set[str]:
    """Every file the table's metadata refers to: metadata versions, manifest lists, manifests and data
    files of every remaining snapshot."""
    md = tbl.metadata
    refs = {tbl.metadata_location, *(m.metadata_file for m in md.metadata_log)}
    for snap in md.snapshots:
        refs.add(snap.manifest_list)
        for m in snap.manifests(tbl.io):
            refs.add(m.manifest_path)
            for e in m.fetch_manifest_entry(tbl.io, discard_deleted=True):
                refs.add(e.data_file.file_path)
    return {r.removeprefix("file://") for r in refs}


def _delete_unreferenced(tbl: Any, folders: list[Path], cutoff: float) -> tuple[int, int]:
    """Delete the files under the table's folders (Iceberg's own, and ``folders`` where the ingest's
    workers write) that its metadata does not refer to and that are older than ``cutoff`` (a time
    stamp); returns (files, bytes)."""
    refs = _referenced(tbl)
    root = Path(tbl.metadata.location.removeprefix("file://"))
    n = size = 0
    for folder in [root / "data", root / "metadata", *folders]:
        for dirpath, _dirs, files in os.walk(folder):
            for fname in files:
                p = os.path.join(dirpath, fname)
                if p in refs:
                    continue
                st = os.stat(p)
                if st.st_mtime < cutoff:
                    os.unlink(p)
                    n += 1
                    size += st.st_size
    return n, size
