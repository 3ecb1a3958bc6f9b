"""An ingest run: scan the archive, parse new or changed files on Dask, commit one snapshot per batch."""

from __future__ import annotations

import functools
import os
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest import history
from ingest.batch import BatchResult, BatchTask, FileJob, process_batch
from ingest.compacting import Compacted, Compactor
from lake import schema as sch
from lake.archive import Stamp, changed, changed_sql, scan_archive, scope
from lake.catalog import _sql_str, view_sql
from lake.datafile import FileCounts, file_counts
from lake.errors import LayoutError
from lake.executor import Executor
from lake.faults import point as fault_point
from lake.layout import DEFAULT_TEMPLATES, Layout
from lake.master import MasterInputs, compute_master, touched_rows
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
    problems: int = 0
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
            f"{self.seconds:.1f} s ({rate:.0f} files/s); {self.errors} with errors"
            + (f", {self.problems} with FITS problems (files.problems)" if self.problems else ""),
        ]

    def add(self, res: BatchResult) -> None:
        """Count a finished batch."""
        self.batches += 1
        self.ingested += res.n_files
        self.errors += res.n_errors
        self.problems += res.n_problems
        self.cards += res.n_cards
        self.error_samples.extend(res.errors[: 20 - len(self.error_samples)])


class KnownFile(NamedTuple):
    """A file as the pinned ``files`` table records it."""

    size: int
    mtime: float
    status: str
    tables: str  # the header tables holding its rows, comma-separated
    parsed: bool  # its path fitted the layout (it has a rootname)
    error: str | None = None
    year: int | None = None  # the partition its rows are in


def _known_files(
    lake: Lake, pins: Pins, listing: dict[str, Stamp], under: list[str] | None = None
) -> tuple[dict[str, KnownFile], list[str]]:
    """What the pinned ``files`` table records of the files an ingest may have to act on, and the paths
    it does not know (new files).

    The listing and the table are joined in DuckDB, and only the known files that differ from the listing
    (:func:`lake.archive.changed_sql`), are gone from it, have a scan problem or are recorded in error
    or missing come back as Python objects: a no-op rescan of millions of files builds none. With
    ``under`` (archive-relative folders or files), only the known files there are compared (the others
    were not listed). A file whose path did not fit the layout has no rootname."""
    files = lake.data_files(pins, "files")
    if not files:
        return {}, list(listing)
    problems: dict[str, str] = getattr(listing, "problems", {})
    now = pa.table(
        {
            "path": pa.array(list(listing), pa.string()),
            "size": pa.array([st[0] for st in listing.values()], pa.int64()),
            "mtime": pa.array([st[1] for st in listing.values()], pa.float64()),
            "problem": pa.array([p in problems for p in listing], pa.bool_()),
        }
    )
    con = duckdb.connect(config={"threads": 2})
    try:
        con.register("now", now)
        con.execute(view_sql("was_all", files, sch.arrow_schema("files")))
        con.execute(f"CREATE TEMP VIEW was AS SELECT * FROM was_all WHERE {_within(con, under or [])}")
        rows = con.execute(
            "SELECT was.path, was.size, was.mtime, was.status, was.tables, was.rootname IS NOT NULL, "
            "was.error, TRY_CAST(was.year AS INTEGER) FROM was LEFT JOIN now USING (path) "
            "WHERE now.path IS NULL OR now.problem OR was.status IN ('error', 'missing') OR "
            + changed_sql("was", "now")
        ).fetchall()
        new = [r[0] for r in con.execute("SELECT path FROM now ANTI JOIN was USING (path)").fetchall()]
    finally:
        con.close()
    known = {p: KnownFile(s, m, st, tb or "", parsed, e, y) for p, s, m, st, tb, parsed, e, y in rows}
    return known, new


# Up to this many scanned folders are compared as path ranges, which DuckDB prunes row groups with (a
# cron ingest reads the row groups holding its folders only); more go into a table joined by prefix
RANGE_FOLDERS = 64


def _within(con: duckdb.DuckDBPyConnection, under: list[str]) -> str:
    """A SQL condition on ``path``: below one of the folders (or one of the files) ``under``. A few are
    path ranges (:data:`RANGE_FOLDERS`); more go into a table joined by prefix length (a hash lookup per
    row, whatever the number of folders: a literal IN list of 15,000 folders was compared one by one, 9
    minutes over a million files)."""
    if not under:
        return "true"
    if len(under) <= RANGE_FOLDERS:
        # '0' follows '/': the range holds exactly the paths below the folder
        ranges = [
            f"(path = {_sql_str(u)} OR (path >= {_sql_str(u + '/')} AND path < {_sql_str(u + '0')}))"
            for u in under
        ]
        return "(" + " OR ".join(ranges) + ")"
    lengths = sorted({len(u) + 1 for u in under})
    con.register(
        "scope_prefixes",
        pa.table({"n": [len(u) + 1 for u in under], "prefix": [u + "/" for u in under], "path": under}),
    )
    parts = ["path IN (SELECT path FROM scope_prefixes)"]
    parts += [f"left(path, {n}) IN (SELECT prefix FROM scope_prefixes WHERE n = {n})" for n in lengths]
    return "(" + " OR ".join(parts) + ")"


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


def _prepare(lake: Lake, pins: Pins, res: BatchResult, *, describe: bool = True) -> None:
    """Get the tables ready for a finished batch (create them, add its new keyword columns) and describe
    its files (unless they are compacted before their commit), as soon as it arrives: the workers are
    still busy then, and the commit that follows the last batch has that much less to do. Nothing here
    is visible to readers before the commit."""
    for table, cols in res.schemas.items():
        if table not in pins.tables:
            lake.ensure_table(pins, table, _schema_of(cols))
        lake.evolve(pins, table, _schema_of(cols))
    for table, files in res.files.items() if describe else ():
        lake.describe_files(pins, table, files, res.counts)


def _commit(
    lake: Lake,
    pins: Pins,
    results: list[BatchResult],
    replaced: dict[str, str],
    publish: bool = True,
    years: dict[str, int | None] | None = None,
) -> None:
    """Register the files of batches that finished together in every table they touched (one snapshot
    per table) and what changed in the headers of the known files among them (``card_changes``, read
    before their old rows go), then (if ``publish``) make the new pins visible."""
    deletes = [p for r in results for p in r.relpaths if p in replaced]
    changes = history.changes(
        lake,
        pins,
        deletes,
        [f for r in results for f in r.files.get("cards", [])],
        [f for r in results for f in r.files.get("files", [])],
    )
    old_tables = {t for p in deletes for t in replaced[p].split(",") if t}
    touched = {t for r in results for t in r.files} | old_tables | ({"files", "cards"} if deletes else set())
    lake.rewrite_ahead(pins, sorted(touched), deletes, years)
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
            years=years,
            properties={"quicklake.batch": ",".join(r.batch_id for r in results)},
            hdu_columns=hdu_columns or None,
        )
    history.commit(lake, pins, changes)
    if publish:
        lake.publish(pins)


def _commit_compacted(lake: Lake, pins: Pins, stream: Compactor, done: list[Compacted]) -> None:
    """Commit compacted files (one snapshot per table, unpublished), with the per-HDU columns of the
    batches fed so far; then their batch files go."""
    by_table: dict[str, list[Compacted]] = {}
    for c in done:
        by_table.setdefault(c.table, []).append(c)
    for table in sorted(by_table):
        got = by_table[table]
        paths = [c.path for c in got]
        lake.describe_files(pins, table, paths, {c.path: c.counts for c in got})
        hdu_columns = stream.hdu_columns.pop(table, None)
        lake.commit_files(
            pins, table, paths, properties={"quicklake.operation": "ingest"}, hdu_columns=hdu_columns
        )
        for c in got:
            if c.hdu_rows is not None:
                lake.know_hdu_rows(c.path, c.hdu_rows)
    stream.retire(done)


def _schema_of(cols: list[tuple[str, str]]) -> pa.Schema:
    return pa.schema([(c, sch.ARROW_TYPES[t]) for c, t in cols])


# Intermediate commits wait at least this many times as long as the previous one took: about 1 s of a
# core for some twenty tables, which at every 10 s cost 2 local workers 5 % of their time.
COMMIT_SHARE = 20
# An ingest of at least this many batches compacts what it wrote (on its workers) before it publishes
COMPACT_BATCHES = 8
COMPACT_TARGET_MB = 128.0
# Ingests touching at most this many files update ``master`` for their datasets only; larger ones
# compute it afresh (one pass over the header tables instead of many located reads).
INCREMENTAL_MASTER = 5000
# At most this many files to parse are parsed in the driver's process rather than on a LocalCluster
# (some 2-3 ms each against 3-10 s to start and stop one); a remote scheduler is always used.
SMALL_INGEST = 200
# An ingest of at least this many files runs its LocalCluster's scheduler in a process of its own: its
# work (some 0.05 ms of CPU per file, 17 % of the driver's) then leaves the driver's core to the commits,
# for a second more to start the cluster (lake.executor)
SCHEDULER_APART = 10_000


@dataclass(frozen=True)
class IngestOptions:
    """How an ingest run works (see :func:`ingest`)."""

    archive: str
    rebuild: bool = False
    scheduler: str = "local"
    workers: int = 0
    batch_files: int = 2000
    commit_interval: float = 10.0
    template: str | Sequence[str] = DEFAULT_TEMPLATES
    progress: Callable[[int, int], None] | None = None
    batch_cards: int = 1_000_000


@dataclass
class IngestPlan:
    """What a run does, from comparing the archive with the lake: the files to parse, the files gone from
    the archive, and the header tables of every known file either replaces (path → ``files.tables``)."""

    todo: list[FileJob]
    removed: list[str]
    replaced: dict[str, str]
    years: dict[str, int | None] = field(default_factory=dict)  # year partition of each replaced file
    incremental: bool = False  # master updated for the touched datasets only (see _refresh_master)
    fresh: bool = False  # a new lake (or a rebuild's): published once, when whole

    def touched(self) -> list[str]:
        return [j.relpath for j in self.todo] + self.removed


def ingest(
    lake_dir: str | os.PathLike[str],
    archive: str,
    *,
    rebuild: bool = False,
    scheduler: str = "local",
    workers: int = 0,
    batch_files: int = 2000,
    batch_cards: int = 1_000_000,
    commit_interval: float = 10.0,
    template: str | Sequence[str] = DEFAULT_TEMPLATES,
    catalog_uri: str = "",
    under: list[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> IngestSummary:
    """Bring the lake up to date with the archive (or, with ``rebuild``, re-extract everything).

    ``under``: only these folders or files of the archive (relative to it, or absolute inside it) are
    scanned and compared with the lake, e.g. the folders a delivery wrote into; a cron ingest of a few
    files then costs the same whatever the size of the archive.

    Incremental: files whose size and mtime match the lake are skipped; new and changed files are parsed
    in batches of ``batch_files`` (a worker holding ``batch_cards`` cards writes what it has and goes on,
    which bounds its memory whatever the mix of files); files gone from disk are marked ``missing`` and
    their header rows removed. The driver commits what the workers finished every ``commit_interval``
    seconds (one Iceberg snapshot per table, then the pins, which is what readers see) and at the end,
    with the master table, so a slow driver never holds back its workers; when a commit takes long, the
    next waits longer, so that committing takes at most 1/COMMIT_SHARE of the time (the driver shares the
    cores with the workers). A new lake is published once, at the end: an ingest of many batches into
    it commits only the files compacted from its batches' (:mod:`ingest.compacting`). ``rebuild``
    writes a complete new set of tables in a fresh namespace and swaps it in with one pin update at the
    end, so readers see the old lake until the new one is whole.
    ``progress(files_done, errors)`` is called after each batch.
    """
    t0 = time.monotonic()
    lake = Lake(lake_dir, catalog_uri)
    summary = IngestSummary()
    opts = IngestOptions(
        archive, rebuild, scheduler, workers, batch_files, commit_interval, template, progress, batch_cards
    )
    if not archive.startswith(("file://",)) and "://" not in archive and not Path(archive).is_dir():
        from lake.errors import ConfigError

        raise ConfigError(f"archive {archive} is not a directory; set --archive or QUICKLAKE_ARCHIVE")
    where = scope(archive, under or []) if not rebuild else []
    early: list[_Compared] = []
    # every publish is explicit below (the transaction has nothing left to publish at its end)
    with lake.transaction(early=_early(lake, archive, where, template, early) if where else None) as pins:
        old_namespace = None
        if rebuild:  # a new namespace, published only at the end (by _refresh_master)
            old_namespace, pins = pins.namespace, lake.begin_rebuild(pins)
        lake.evolve(pins, "files", sch.arrow_schema("files"))  # a lake made before files.problems
        lake.ensure_table(pins, history.TABLE, sch.arrow_schema(history.TABLE))  # a lake made before it
        got = early[0] if early and early[0].pins == (pins.namespace, pins.tables) else None
        listing, known, new = got.found if got else _compare(lake, pins, archive, where, rebuild)
        plan = _plan(known, new, listing, Layout(template), summary)
        plan.fresh = rebuild or not lake.data_files(pins, "files")
        plan.incremental = (
            not rebuild
            and pins.tables.get("master") is not None
            and len(plan.todo) + len(plan.removed) <= INCREMENTAL_MASTER
        )
        ahead = _run_batches(lake, pins, plan, opts, summary) if plan.todo else None
        if plan.removed:
            _remove(lake, pins, plan.removed, known)
            summary.removed = len(plan.removed)
        if plan.todo or plan.removed or rebuild:
            _refresh_master(lake, pins, ahead, plan.touched() if plan.incremental else None)
        if old_namespace is not None:
            lake.finish_rebuild(old_namespace)
    summary.seconds = time.monotonic() - t0
    return summary


@dataclass
class _Compared:
    """The archive's listing compared with the lake as of ``pins`` (namespace, tables): listing, the
    known files that may need work, the new paths (see :func:`_known_files`)."""

    pins: tuple[str, dict[str, int | None]]
    found: tuple[dict[str, Stamp], dict[str, KnownFile], list[str]]


def _compare(
    lake: Lake, pins: Pins, archive: str, where: list[str], rebuild: bool = False
) -> tuple[dict[str, Stamp], dict[str, KnownFile], list[str]]:
    listing = scan_archive(archive, where)
    known, new = ({}, list(listing)) if rebuild else _known_files(lake, pins, listing, where)
    return listing, known, new


def _early(
    lake: Lake, archive: str, where: list[str], template: str | Sequence[str], out: list[_Compared]
) -> Callable[[Pins], None]:
    """The start of a scoped ingest (a cron's) given the published pins, before the catalog is opened
    (:meth:`Lake.transaction`): the archive compared with the lake from what catalog.duckdb records, and
    the copy-on-write deletes of the changed files' rows started (:meth:`Lake.rewrite_early`), so that
    they run while pyiceberg loads. The ingest takes the comparison if recovery left the pins as they
    were."""

    def start(published: Pins) -> None:
        if not lake.seed_from_record(published):
            return
        found = _compare(lake, published, archive, where)
        out.append(_Compared((published.namespace, dict(published.tables)), found))
        plan = _plan(found[1], found[2], found[0], Layout(template), IngestSummary())
        changed = [j.relpath for j in plan.todo if j.relpath in plan.replaced]
        tables = {t for p in changed for t in plan.replaced[p].split(",") if t} | {"files", "cards"}
        lake.rewrite_early(published, sorted(tables), changed, plan.years)

    return start


def _remove(lake: Lake, pins: Pins, removed: list[str], known: dict[str, KnownFile]) -> None:
    """Files gone from the archive are marked missing; the rows of folders the scanner could not read
    (path ending in '/') go: a folder that is readable again has its files listed instead."""
    folders = [p for p in removed if p.endswith("/")]
    files = [p for p in removed if not p.endswith("/")]
    if files:
        history.commit(lake, pins, history.removed(lake, pins, files))
        lake.mark_missing(pins, files, {p: known[p].tables for p in files}, {p: known[p].year for p in files})
    if folders:
        lake.commit_files(pins, "files", [], delete_paths=folders)


def _plan(
    known: dict[str, KnownFile],
    new: list[str],
    listing: dict[str, Stamp],
    layout: Layout,
    summary: IngestSummary,
) -> IngestPlan:
    """Compare the archive's ``listing`` (path → size, mtime; a :class:`Listing` also names the paths that
    cannot be ingested) with the lake: ``new`` paths, and the ``known`` files that may need work (see
    :func:`_known_files`; every other listed file is unchanged). New and changed files are to do, and
    counted in ``summary``."""
    summary.scanned = len(listing)
    problems: dict[str, str] = getattr(listing, "problems", {})
    redo = [
        rel
        for rel, k in known.items()
        if rel in listing and _redo(k, rel, listing[rel], problems.get(rel), layout)
    ]
    summary.new, summary.changed = len(new), len(redo)
    summary.unchanged = len(listing) - len(new) - len(redo)
    todo = [FileJob(rel, *listing[rel], problems.get(rel)) for rel in sorted([*new, *redo])]
    removed = sorted(p for p, k in known.items() if p not in listing and k.status != "missing")
    replaced = {p: known[p].tables for p in [*redo, *removed]}
    return IngestPlan(todo, removed, replaced, {p: known[p].year for p in replaced})


def _redo(k: KnownFile, rel: str, now: Stamp, problem: str | None, layout: Layout) -> bool:
    """Whether a known file is read again: when it is missing in the lake or changed on disk, and when
    it is recorded in ``error``, whatever its mtime (a ``chmod`` that fixed it leaves the mtime alone),
    unless the outcome is known: the scanner still has the same problem with it, or its path still does
    not fit the layout (it is taken when the template changes)."""
    if k.status == "missing" or changed((k.size, k.mtime), now):
        return True
    if k.status != "error":
        return False
    if problem is not None:
        return problem != k.error
    return k.parsed or _fits_layout_now(layout, rel)


class _Commits:
    """The driver's commits of finished batches: every so often while they come in (published, but not
    in a rebuild), then the rest at the end, unpublished (published with the master table). With
    ``compact``, the files are compacted after the last commit (and master is not computed ahead).

    The master table of a commit of many files is computed on a worker (``ex``), like the last one's:
    the commit is published when it is back (readers never see files ahead of master), and batches that
    finish meanwhile wait for the next commit, their tables untouched until then."""

    def __init__(
        self,
        lake: Lake,
        pins: Pins,
        plan: IngestPlan,
        opts: IngestOptions,
        compact: bool,
        ex: Executor,
        stream: Compactor | None = None,
    ) -> None:
        self.lake, self.pins, self.plan, self.opts, self.ex = lake, pins, plan, opts, ex
        self.compact = compact
        self.stream = stream  # batch files compacted before their commit (ingest.compacting)
        self.tables: set[str] = set()  # that batches wrote to (compacted at the end, if compact)
        self.pending: list[BatchResult] = []
        self.unprepared: list[BatchResult] = []  # arrived while a commit waited for its master
        self.master: tuple[MasterInputs, Future[Any]] | None = None  # that master, computing
        self.last_commit, self.took = time.monotonic(), 0.0

    def add(self, results: list[BatchResult]) -> None:
        """Take finished batches; their tables are made ready now, or after the publish under way."""
        if self.stream is not None:
            for res in results:
                _prepare(self.lake, self.pins, res, describe=False)
                for table, cols in res.schemas.items():
                    res.files[table] = _reconcile(self.lake, self.pins, table, res.files[table], cols)
            self.stream.add(results)
            return
        self.pending += results
        if self.master is not None:
            self.unprepared += results
            return
        for res in results:
            _prepare(self.lake, self.pins, res)

    def maybe(self) -> None:
        """Publish the commit whose master is back, or commit what is pending if the last commit was
        long enough ago."""
        if self.master is not None:
            if not self.master[1].done():
                return
            self._publish()
        if time.monotonic() - self.last_commit < max(self.opts.commit_interval, COMMIT_SHARE * self.took):
            return
        if self.stream is not None:  # (a new lake: nothing is published before the end)
            started = time.monotonic()
            _commit_compacted(self.lake, self.pins, self.stream, self.stream.done())
            self.last_commit = time.monotonic()
            self.took = self.last_commit - started
            return
        started = time.monotonic()
        self.tables.update(t for r in self.pending for t in r.files)
        plan = self.plan
        _commit(self.lake, self.pins, self.pending, plan.replaced, False, plan.years)
        if not self.opts.rebuild:
            # readers never see files ahead of master: this commit's datasets are brought up to
            # date in the same publish (a rebuild publishes only at its end)
            touched = [p for r in self.pending for p in r.relpaths]
            if len(touched) <= INCREMENTAL_MASTER:
                _refresh_master(self.lake, self.pins, None, touched)
            else:
                inputs = _master_inputs(self.lake, self.pins)
                key = f"master-{uuid.uuid4().hex[:16]}"
                self.master = (inputs, self.ex.submit(compute_master, inputs, key=key, first=True))
        self.pending, self.last_commit = [], time.monotonic()
        self.took = self.last_commit - started

    def _publish(self) -> None:
        """Publish the commit with its master (computed on a worker), then prepare what came meanwhile."""
        assert self.master is not None
        started = time.monotonic()
        _refresh_master(self.lake, self.pins, self.master)
        self.master = None
        for res in self.unprepared:
            _prepare(self.lake, self.pins, res)
        self.unprepared = []
        self.took += time.monotonic() - started  # (the next commit waits for both)

    def last(self) -> tuple[MasterInputs, Future[Any]] | None:
        """Commit what is left (unpublished); returns the master computed beside it, if it can be (the
        master of a commit not published yet is then not needed: the last publish has it all)."""
        self.master = None
        if self.stream is not None:
            _commit_compacted(self.lake, self.pins, self.stream, self.stream.finish())
            for table, hdu_columns in sorted(self.stream.hdu_columns.items()):  # (no file left to commit)
                self.lake.commit_files(self.pins, table, [], hdu_columns=hdu_columns)
            self.stream.hdu_columns.clear()
            return None
        for res in self.unprepared:
            _prepare(self.lake, self.pins, res)
        self.unprepared = []
        if not self.pending:
            return None
        ahead = None
        plan = self.plan
        self.tables.update(t for r in self.pending for t in r.files)
        if (
            not self.compact
            and not plan.incremental
            and not plan.removed
            and not any(p in plan.replaced for r in self.pending for p in r.relpaths)
        ):
            ahead = _master_ahead(self.lake, self.pins, self.pending)
        _commit(self.lake, self.pins, self.pending, plan.replaced, False, plan.years)
        return ahead


def _run_batches(
    lake: Lake, pins: Pins, plan: IngestPlan, opts: IngestOptions, summary: IngestSummary
) -> tuple[MasterInputs, Future[Any]] | None:
    """Parse ``plan.todo`` in batches on the executor, preparing and committing the results as they come;
    returns the master computed ahead (see :func:`_master_ahead`), if any."""
    types = {
        t: {c: sch.TYPE_NAMES.get(sch.plain_type(ty), "string") for c, ty in cols.items()}
        for t, cols in lake.column_types(pins).items()
    }
    data_root = str(lake.warehouse / f"{pins.namespace}.db")
    # a cron ingest of a few files is parsed here: starting a LocalCluster costs seconds, the files less
    small = opts.scheduler == "local" and len(plan.todo) <= SMALL_INGEST
    apart = len(plan.todo) >= SCHEDULER_APART
    ex = Executor("synchronous" if small else opts.scheduler, opts.workers, scheduler_apart=apart)
    try:
        batches = split_batches(plan.todo, opts.batch_files, ex.workers)
        tasks = [
            BatchTask(
                uuid.uuid4().hex[:16],
                opts.archive,
                b,
                data_root,
                opts.template,
                types,
                opts.batch_cards,
                # (a new lake's wide-table batch files are all rewritten before their commit)
                interim=len(batches) >= COMPACT_BATCHES and plan.fresh,
            )
            for b in batches
        ]
        compact = len(tasks) >= COMPACT_BATCHES
        stream = None
        if compact and plan.fresh:
            order = [t.batch_id for t in tasks]
            stream = Compactor(lake, pins, ex, order, target_mb=COMPACT_TARGET_MB)
        commits = _Commits(lake, pins, plan, opts, compact, ex, stream)
        done = 0
        for parts in ex.map(process_batch, [(t,) for t in tasks], key=lambda t: t[0].batch_id):
            fault_point("batch.written")
            done += len(parts)
            group = [res for part in parts for res in part]
            for res in group:
                summary.add(res)
            commits.add(group)
            if done < len(tasks):
                commits.maybe()
            if opts.progress:
                opts.progress(summary.ingested, summary.errors)
        ahead = commits.last()
        if stream is not None:  # compacted as they came: master of the committed files, on a worker
            master = _master_on_worker(lake, pins, plan, ex)
            if master is not None:
                ahead = (_master_inputs(lake, pins), _settled(master))
        elif commits.compact:
            master = _master_on_worker(lake, pins, plan, ex)
            _compact_new(lake, pins, ex, commits.tables)
            if master is not None:
                ahead = (_master_inputs(lake, pins), _settled(master))
        return ahead
    finally:
        ex.close()


def _master_on_worker(lake: Lake, pins: Pins, plan: IngestPlan, ex: Executor) -> Future[Any] | None:
    """Start computing ``master`` of the committed tables on a worker, beside the compaction that
    follows (one DuckDB pass over every header table: the largest serial step of a large ingest left in
    the driver). The compaction swaps files for files of the same rows, so it is the master of the
    compacted tables too; None when the ingest updates master for its datasets only."""
    if plan.incremental:
        return None
    return ex.submit(compute_master, _master_inputs(lake, pins), key=f"master-{uuid.uuid4().hex[:16]}")


def _settled(future: Future[Any]) -> Future[Any]:
    """A finished future of ``future``'s result (or error), to be read after the executor closed."""
    done: Future[Any] = Future()
    try:
        done.set_result(future.result())
    except Exception as e:  # computed again in the driver (see _refresh_master)
        done.set_exception(e)
    return done


def _compact_new(lake: Lake, pins: Pins, ex: Executor, tables: set[str]) -> None:
    """Compact the tables a large ingest wrote (their small files: the ingest's one file per batch), with
    the rewrites on the ingest's workers: the lake it leaves is as fast to read as a maintained one. A
    worker sends back its new file's footer counts (read there, where the file was just written), from
    which the driver describes the file for its commit instead of reading the footer again."""
    from lake.maintenance import compact

    def on_workers(work: list[tuple[Any, ...]]) -> list[str]:
        out: dict[int, tuple[str, FileCounts]] = {}
        tagged = [(i, *w) for i, w in enumerate(work)]
        for group in ex.map(_rewrite_one, tagged, name="compact", key=lambda t: f"{t[3]}-{t[0]}"):
            out.update((i, (path, counts)) for i, path, counts in group)
        for table in {w[2] for w in work}:
            mine = [out[i] for i, w in enumerate(work) if w[2] == table]
            lake.describe_files(pins, table, [p for p, _ in mine], dict(mine))
        return [out[i][0] for i in range(len(work))]

    compact(lake, pins, sorted(tables), target_mb=COMPACT_TARGET_MB, rewrites=on_workers)


def _rewrite_one(
    i: int, paths: list[str], schema: pa.Schema, table: str, out_dir: Path, part: str | None
) -> tuple[int, str, FileCounts]:
    """One compaction rewrite (on a worker), with the counts of the file it wrote (bounds of every
    column for the fixed tables, which keep them; see :func:`ingest.batch._write`)."""
    from lake.maintenance import _rewrite

    path = _rewrite(paths, schema, table, out_dir, part)
    return i, path, file_counts(pq.read_metadata(path), bounds=table in sch.FIXED_TABLES)


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


def _master_inputs(lake: Lake, pins: Pins, pending: list[BatchResult] | None = None) -> MasterInputs:
    """What ``master`` is computed from: ``files`` and the header tables, their files and schemas, as
    pinned, or (with ``pending``) as they will be once ``pending`` is committed."""
    out: MasterInputs = {}
    for t in ["files", *(t for t in pins.tables if sch.is_header_table(t))]:
        files = lake.data_files(pins, t) + [f for r in pending or [] for f in r.files.get(t, [])]
        out[t] = (files, lake.current_schema(pins, t) if pending else lake.table_facts(pins, t)[0])
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


def _refresh_master(
    lake: Lake,
    pins: Pins,
    ahead: tuple[MasterInputs, Future[Any]] | None = None,
    touched: list[str] | None = None,
) -> None:
    """Bring ``master`` up to date with the (not yet published) header tables, then publish everything
    at once: with ``touched`` (the archive paths the ingest parsed or removed), the rows of their
    datasets only (:func:`lake.master.touched_rows`, rewriting the year partitions they are in), else all
    of it."""
    inputs = _master_inputs(lake, pins)
    if touched is not None and _master_current(lake, pins):
        fresh, rootnames = touched_rows(inputs, touched, functools.partial(lake.holding, pins))
        lake.replace_datasets(pins, "master", fresh, rootnames)
        lake.publish(pins)
        return
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


def _master_current(lake: Lake, pins: Pins) -> bool:
    """Whether the pinned ``master`` has rows and today's columns (else it is computed afresh)."""
    if not lake.data_files(pins, "master"):
        return False
    return not set(sch.arrow_schema("master").names) - set(lake.iceberg_schema(pins, "master").names)


def ingest_with(
    cfg: dict[str, Any],
    lake_dir: str | os.PathLike[str] | None = None,
    rebuild: bool = False,
    progress: Callable[[int, int], None] | None = None,
    under: list[str] | None = None,
) -> IngestSummary:
    """:func:`ingest` with every option taken from the settings ``cfg`` (see :mod:`lake.settings`)."""
    return ingest(
        lake_dir or cfg["lake"],
        cfg["archive"],
        rebuild=rebuild,
        scheduler=cfg["scheduler"],
        workers=cfg["workers"],
        batch_files=cfg["batch_files"],
        batch_cards=cfg["batch_cards"],
        commit_interval=cfg["commit_interval"],
        template=cfg["layout"],
        catalog_uri=cfg["catalog_uri"],
        under=under,
        progress=progress,
    )
