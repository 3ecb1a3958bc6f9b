"""An ingest run: scan the archive, parse new or changed files on Dask, commit one snapshot per batch."""

from __future__ import annotations

import os
import time
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.batch import BatchResult, FileJob, process_batch
from lake import schema as sch
from lake.archive import changed, scan_archive
from lake.errors import LayoutError
from lake.executor import Executor
from lake.layout import Layout
from lake.master import MasterInputs, compute_master
from lake.tables import Lake, Pins


@dataclass
class IngestSummary:
    scanned: int = 0
    new: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    ingested: int = 0
    errors: int = 0
    cards: int = 0
    batches: int = 0
    seconds: float = 0.0
    error_samples: list[tuple[str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        rate = self.ingested / self.seconds if self.seconds else 0.0
        return [
            f"scanned {self.scanned} files: {self.new} new, {self.changed} changed, {self.removed} removed, "
            f"{self.unchanged} unchanged",
            f"ingested {self.ingested} files ({self.cards} cards) in {self.batches} batches, "
            f"{self.seconds:.1f} s ({rate:.0f} files/s); {self.errors} with errors",
        ]


def _known_files(lake: Lake, pins: Pins) -> dict[str, tuple[int, float, str, str, bool]]:
    """path → (size, mtime, status, tables, path parsed) from the pinned ``files`` table; a file whose
    path did not fit the layout has no rootname."""
    files = lake.data_files(pins, "files")
    if not files:
        return {}
    t = pq.ParquetDataset(files, partitioning=None).read(
        columns=["path", "size", "mtime", "status", "tables", "rootname"]
    )
    return {
        p: (s, m, st, tb or "", r is not None)
        for p, s, m, st, tb, r in zip(*(t.column(c).to_pylist() for c in t.column_names), strict=True)
    }


def _fits_layout_now(layout: Layout, rel: str) -> bool:
    try:
        layout.parse(rel)
    except LayoutError:
        return False
    return True


def _reconcile(
    lake: Lake, pins: Pins, table: str, files: list[str], cols: list[tuple[str, str]]
) -> list[str]:
    """Make worker files agree with column types fixed meanwhile by another batch (int→double cast)."""
    tbl_types = {f.name: f.type for f in lake.current_schema(pins, table)}
    bad = {c for c, t in cols if c in tbl_types and sch.ARROW_TYPES[t] != sch.plain_type(tbl_types[c])}
    if not bad:
        return files
    for f in files:
        t = pq.read_table(f)
        for c in bad:
            target = sch.plain_type(tbl_types[c])
            col = t.column(c)
            try:
                new = pc.cast(col, target, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                new = pa.nulls(len(col), target)  # the cards table keeps the exact values
            t = t.set_column(t.schema.get_field_index(c), c, new)
        pq.write_table(t, f + ".tmp", compression="zstd")
        os.replace(f + ".tmp", f)
    return files


def _prepare(lake: Lake, pins: Pins, res: BatchResult) -> None:
    """Get the tables ready for a finished batch (create them, add its new keyword columns) and describe
    its files, as soon as it arrives: the workers are still busy then, and the commit that follows the
    last batch has that much less to do. Nothing here is visible to readers before the commit."""
    for table, cols in res.schemas.items():
        if table not in pins.tables:
            lake.ensure_table(pins, table, _schema_of(cols))
        lake.evolve(pins, table, _schema_of(cols))
    for table, files in res.files.items():
        lake.describe_files(pins, table, files, res.counts)


def _commit(
    lake: Lake, pins: Pins, results: list[BatchResult], replaced: dict[str, str], publish: bool = True
) -> None:
    """Register the files of batches that finished together in every table they touched (one snapshot
    per table), then (if ``publish``) make the new pins visible."""
    deletes = [p for r in results for p in r.relpaths if p in replaced]
    old_tables = {t for p in deletes for t in replaced[p].split(",") if t}
    touched = {t for r in results for t in r.files} | old_tables | ({"files", "cards"} if deletes else set())
    for table in sorted(touched):
        files: list[str] = []
        hdu_columns: dict[int, list[str]] = {}
        for res in results:
            got = res.files.get(table, [])
            if table in res.schemas:
                if table not in pins.tables:
                    lake.ensure_table(pins, table, _schema_of(res.schemas[table]))
                lake.evolve(pins, table, _schema_of(res.schemas[table]))
                got = _reconcile(lake, pins, table, got, res.schemas[table])
            files += got
            for h, cols in res.hdu_columns.get(table, {}).items():
                have = hdu_columns.setdefault(h, [])
                have.extend(c for c in cols if c not in have)
        lake.commit_files(
            pins,
            table,
            files,
            delete_paths=deletes,
            properties={"quicklake.batch": ",".join(r.batch_id for r in results)},
            hdu_columns=hdu_columns or None,
        )
    if publish:
        lake.publish(pins)


def _schema_of(cols: list[tuple[str, str]]) -> pa.Schema:
    return pa.schema([(c, sch.ARROW_TYPES[t]) for c, t in cols])


# Intermediate commits wait at least this many times as long as the previous one took: about 1 s of a
# core for some twenty tables, which at every 10 s cost 2 local workers 5 % of their time.
COMMIT_SHARE = 20


def ingest(
    lake_dir: str | os.PathLike[str],
    archive: str,
    *,
    rebuild: bool = False,
    scheduler: str = "local",
    workers: int = 0,
    batch_files: int = 2000,
    commit_interval: float = 10.0,
    template: str = "{proposid}/Visit{visit}/{rootname}_{filetype}.fits",
    catalog_uri: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> IngestSummary:
    """Bring the lake up to date with the archive (or, with ``rebuild``, re-extract everything).

    Incremental: files whose size and mtime match the lake are skipped; new and changed files are parsed
    in batches of ``batch_files``; files gone from disk are marked ``missing`` and their header rows
    removed. The driver commits what the workers finished every ``commit_interval`` seconds (one
    Iceberg snapshot per table, then the pins, which is what readers see) and at the end, with the master
    table, so a slow driver never holds back its workers; when a commit takes long, the next waits
    longer, so that committing takes at most 1/COMMIT_SHARE of the time (the driver shares the cores
    with the workers). ``rebuild`` writes a complete new set of
    tables in a fresh namespace and swaps it in with one pin update at the end, so readers see the old
    lake until the new one is whole.
    ``progress(files_done, errors)`` is called after each batch.
    """
    t0 = time.monotonic()
    lake = Lake(lake_dir, catalog_uri)
    summary = IngestSummary()
    if not archive.startswith(("file://",)) and "://" not in archive and not Path(archive).is_dir():
        from lake.errors import ConfigError

        raise ConfigError(f"archive {archive} is not a directory; set --archive or QUICKLAKE_ARCHIVE")
    with lake.writer():
        lake.recover()
        pins = lake.init()
        old_namespace = None
        if rebuild:
            old_namespace = pins.namespace
            n = (
                int(pins.namespace.rsplit("_", 1)[-1]) + 1
                if pins.namespace.rsplit("_", 1)[-1].isdigit()
                else 1
            )
            pins = Pins(f"lake_{n}", {})
            if (pins.namespace,) in lake.catalog.list_namespaces():
                _drop_namespace(lake, pins.namespace)  # left by a rebuild that was killed
            lake.catalog.create_namespace_if_not_exists(pins.namespace)
            for name in sch.FIXED_TABLES:
                lake.ensure_table(pins, name, sch.arrow_schema(name))
            _carry_results(lake, Pins(old_namespace, lake.pins().tables), pins)
        listing = scan_archive(archive)
        known = {} if rebuild else _known_files(lake, pins)
        summary.scanned = len(listing)
        todo: list[FileJob] = []
        layout = Layout(template)
        for rel, (size, mtime) in sorted(listing.items()):
            k = known.get(rel)
            if k is None:
                summary.new += 1
            elif k[2] == "missing" or changed((k[0], k[1]), (size, mtime)):
                summary.changed += 1
            elif k[2] == "error" and not k[4] and _fits_layout_now(layout, rel):
                summary.changed += 1  # refused by an earlier layout template, fits the current one
            else:
                summary.unchanged += 1
                continue
            todo.append(FileJob(rel, size, mtime))
        removed = [p for p, k in known.items() if p not in listing and k[2] != "missing"]
        replaced = {p: known[p][3] for p in known if p in {j.relpath for j in todo} or p in removed}

        types = {
            t: {c: sch.TYPE_NAMES.get(sch.plain_type(ty), "string") for c, ty in cols.items()}
            for t, cols in lake.column_types(pins).items()
        }
        data_root = str(lake.warehouse / f"{pins.namespace}.db")
        ahead: tuple[MasterInputs, Future[Any]] | None = None
        if todo:
            ex = Executor(scheduler, workers)
            try:
                batches = split_batches(todo, batch_files, ex.workers)
                tasks = [(uuid.uuid4().hex[:16], archive, b, data_root, template, types) for b in batches]
                last_commit, commit_took = time.monotonic(), 0.0
                pending: list[BatchResult] = []
                for group in ex.map(process_batch, tasks):
                    pending += group
                    for res in group:
                        summary.batches += 1
                        summary.ingested += res.n_files
                        summary.errors += res.n_errors
                        summary.cards += res.n_cards
                        summary.error_samples.extend(res.errors[: 20 - len(summary.error_samples)])
                        _prepare(lake, pins, res)
                    wait = max(commit_interval, COMMIT_SHARE * commit_took)
                    if summary.batches < len(tasks) and time.monotonic() - last_commit >= wait:
                        started = time.monotonic()
                        _commit(lake, pins, pending, replaced, publish=not rebuild)
                        pending, last_commit = [], time.monotonic()
                        commit_took = last_commit - started
                    if progress:
                        progress(summary.ingested, summary.errors)
                if pending:  # published below, with the master table (a rebuild: the swap)
                    if not removed and not any(p in replaced for r in pending for p in r.relpaths):
                        ahead = _master_ahead(lake, pins, pending)
                    _commit(lake, pins, pending, replaced, publish=False)
            finally:
                ex.close()
        if removed:
            _mark_missing(lake, pins, removed, known)
            summary.removed = len(removed)
        if todo or removed or rebuild:
            _refresh_master(lake, pins, ahead)
        if old_namespace is not None:
            _drop_namespace(lake, old_namespace)
    summary.seconds = time.monotonic() - t0
    return summary


def split_batches(todo: list[FileJob], batch_files: int, workers: int) -> list[list[FileJob]]:
    """At most ``batch_files`` files per batch, in a number of batches that is a multiple of ``workers``,
    all of (nearly) the same size: every worker then gets the same share, and none idles while another
    finishes a last full batch (13 full batches and a small one on 2 workers would cost 7 batch times
    instead of 6.65). With two rounds or more, the last round goes out in half-size batches: workers drift
    apart by up to a batch time (the driver's commits slow one at a time), and a worker that finishes early
    then takes more of the tail instead of waiting for the other (a batch costs ~0.2 s of fixed work, so
    halves, not smaller)."""
    if not todo:
        return []
    n = -(-len(todo) // max(1, batch_files))
    n = -(-n // workers) * workers
    n = min(n, len(todo))
    size, extra = divmod(len(todo), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (i < extra)
        out.append(todo[start:end])
        start = end
    if workers > 1 and n >= 2 * workers and size >= 2:
        tail = [half for b in out[-workers:] for half in (b[: len(b) // 2], b[len(b) // 2 :])]
        out[-workers:] = tail
    return out


def _mark_missing(
    lake: Lake, pins: Pins, removed: list[str], known: dict[str, tuple[int, float, str, str, bool]]
) -> None:
    from datetime import UTC, datetime

    tables = {t for p in removed for t in known[p][3].split(",") if t}
    for t in sorted(tables | {"cards"}):
        lake.commit_files(pins, t, [], delete_paths=removed)
    old = (
        lake.table(pins, "files")
        .scan(row_filter=pc_in("path", removed), snapshot_id=pins.tables["files"])
        .to_arrow()
    )
    now = datetime.now(UTC)
    old = old.set_column(old.schema.get_field_index("status"), "status", pa.array(["missing"] * old.num_rows))
    old = old.set_column(
        old.schema.get_field_index("error"),
        "error",
        pa.array(["file no longer in the archive"] * old.num_rows),
    )
    old = old.set_column(old.schema.get_field_index("tables"), "tables", pa.array([""] * old.num_rows))
    old = old.set_column(
        old.schema.get_field_index("ingested_at"),
        "ingested_at",
        pa.array([now] * old.num_rows, pa.timestamp("us", tz="UTC")),
    )
    tbl = lake.table(pins, "files")
    with warnings.catch_warnings(), tbl.transaction() as tx:
        warnings.filterwarnings("ignore", "Delete operation did not match any records")
        tx.delete(pc_in("path", removed))
        tx.append(old.cast(tbl.schema().as_arrow()))
    pins.tables["files"] = lake.table(pins, "files").metadata.current_snapshot_id


def pc_in(column: str, values: list[str]) -> Any:
    from pyiceberg.expressions import In

    return In(column, values)  # type: ignore[call-arg,arg-type]


def _master_inputs(lake: Lake, pins: Pins, pending: list[BatchResult] | None = None) -> MasterInputs:
    """What ``master`` is computed from: ``files`` and the header tables, their files and schemas, as
    pinned, or (with ``pending``) as they will be once ``pending`` is committed."""
    out: MasterInputs = {}
    for t in ["files", *(t for t in pins.tables if sch.is_header_table(t))]:
        files = lake.data_files(pins, t) + [f for r in pending or [] for f in r.files.get(t, [])]
        out[t] = (files, lake.current_schema(pins, t) if pending else lake.iceberg_schema(pins, t))
    return out


def _same_inputs(a: MasterInputs, b: MasterInputs) -> bool:
    return a.keys() == b.keys() and all(
        sorted(a[t][0]) == sorted(b[t][0]) and a[t][1].names == b[t][1].names for t in a
    )


def _master_ahead(lake: Lake, pins: Pins, pending: list[BatchResult]) -> tuple[MasterInputs, Future[Any]]:
    """Start computing ``master`` as it will be after the last commit, beside that commit (about half a
    second of DuckDB that would otherwise follow it). :func:`_refresh_master` uses the result only if
    the commit made exactly these file lists and columns."""
    from concurrent.futures import ThreadPoolExecutor

    inputs = _master_inputs(lake, pins, pending)
    pool = ThreadPoolExecutor(1, thread_name_prefix="master")
    try:
        return inputs, pool.submit(compute_master, inputs)
    finally:
        pool.shutdown(wait=False)  # the thread ends with its one task


def _refresh_master(lake: Lake, pins: Pins, ahead: tuple[MasterInputs, Future[Any]] | None = None) -> None:
    """Rebuild ``master`` from the (not yet published) header tables, then publish everything at once."""
    inputs = _master_inputs(lake, pins)
    master = None
    if ahead is not None:
        used, future = ahead
        try:
            got = future.result()
        except Exception:  # computed from files the commit then replaced: computed again below
            got = None
        if got is not None and _same_inputs(used, inputs):
            master = got
    if master is None:
        master = compute_master(inputs)
    lake.overwrite(pins, "master", master)
    lake.publish(pins)


def _drop_namespace(lake: Lake, namespace: str) -> None:
    import shutil

    for ident in lake.catalog.list_tables(namespace):
        lake.catalog.drop_table(ident)
        lake.forget(".".join(ident))
    lake.catalog.drop_namespace(namespace)
    shutil.rmtree(lake.warehouse / f"{namespace}.db", ignore_errors=True)


def ingest_with(
    cfg: dict[str, Any],
    lake_dir: str | os.PathLike[str] | None = None,
    rebuild: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> IngestSummary:
    """:func:`ingest` with every option taken from the settings ``cfg`` (see :mod:`lake.settings`)."""
    return ingest(
        lake_dir or cfg["lake"],
        cfg["archive"],
        rebuild=rebuild,
        scheduler=cfg["scheduler"],
        workers=cfg["workers"],
        batch_files=cfg["batch_files"],
        commit_interval=cfg["commit_interval"],
        template=cfg["layout"],
        catalog_uri=cfg["catalog_uri"],
        progress=progress,
    )


def run_ingest_job(ctx: Any) -> Any:
    """The ``run-ingest`` job: the incremental ingest, recorded (``no-work`` when nothing changed)."""
    from lake.jobs import JobResult

    s = ingest_with(ctx.cfg, ctx.lake_root)
    for line in s.lines():
        ctx.log.info(line)
    for path, err in s.error_samples:
        ctx.log.warning("%s: %s", path, err)
    counts = {"scanned": s.scanned, "ingested": s.ingested, "removed": s.removed, "errors": s.errors}
    return JobResult(bool(s.ingested or s.removed), counts, None, s.lines()[-1])


def _carry_results(lake: Lake, old: Pins, new: Pins) -> None:
    """A rebuild re-extracts headers; result tables (job findings, monitor results) move as they are."""
    for name in sorted(old.tables):
        if sch.is_header_table(name) or name in sch.FIXED_TABLES or old.tables[name] is None:
            continue
        files = lake.data_files(old, name)
        data = pq.ParquetDataset(files, partitioning=None).read() if files else None
        lake.ensure_table(new, name, lake.iceberg_schema(old, name))
        if data is not None and data.num_rows:
            lake.append(new, name, data.cast(lake.iceberg_schema(old, name)))
