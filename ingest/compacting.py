"""Compaction in a large ingest's write path: the batch files compacted as they come, never committed.

An ingest of many batches into a new lake (a first ingest, or a rebuild) used to commit every batch's
files, then compact them all at its end: every batch file was registered in a manifest twice (added, then
removed), the compaction read all the manifests back to plan itself, and the workers' rewrites waited for
the last batch. Here the driver hands a :class:`Compactor` each finished batch; the Compactor gathers the
batch files of each table, partition and part (a wide header table's primary headers apart from its
extensions, as :mod:`lake.maintenance` lays them out) into bins of about the compacted size, in path order,
and has the workers rewrite a bin as soon as it is full (before the batches still waiting for a worker).
Only the rewritten files are committed; a batch file is deleted once what was made of it is committed.

Bins take the batches in their order (the archive's paths are split into batches in order), whatever
order they finish in, so each compacted file holds a narrow range of paths, as a maintained lake's do:
readers locate a file's rows by it, and a changed file rewrites one data file per part.
"""

from __future__ import annotations

import os
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ingest.batch import BatchResult
from lake import schema as sch
from lake.datafile import FileCounts, file_counts, hdu_counts
from lake.executor import Executor
from lake.maintenance import (
    EXTENSIONS,
    MAX_CELLS,
    PRIMARY,
    _file_schema,
    _plain_schema,
    _rewrite,
    part_schema,
)
from lake.tables import Lake, Pins, hdu_columns_of

Key = tuple[str, str, str | None]  # table, partition folder, part (None: every row)


@dataclass
class _Bin:
    """Batch files gathered for one rewrite: their paths, and the rows and bytes of them it takes."""

    paths: list[str] = field(default_factory=list)
    rows: int = 0
    size: int = 0


@dataclass(frozen=True)
class Compacted:
    """A compacted file (written by a worker) and what the driver needs to commit it: its footer's
    counts, its rows per HDU (wide header tables) and the batch files it was made of."""

    table: str
    path: str
    counts: FileCounts
    hdu_rows: dict[int, int] | None
    inputs: tuple[str, ...]


class Compactor:
    """The compaction of a large ingest's batch files, while the batches are parsed (module docs).

    ``order``: the batch ids in path order. Batch files are taken in that order: a batch that finishes
    early waits for the ones before it. ``target_mb``: a compacted file's size; a bin also holds at most
    :data:`lake.maintenance.MAX_CELLS` cells."""

    def __init__(self, lake: Lake, pins: Pins, ex: Executor, order: list[str], *, target_mb: float) -> None:
        self.lake, self.pins, self.ex = lake, pins, ex
        self.target = int(target_mb * 1e6)
        self.rank = {b: i for i, b in enumerate(order)}
        self.waiting: dict[int, list[BatchResult]] = {}
        self.next = 0
        self.bins: dict[Key, _Bin] = {}
        self.running: list[tuple[str, Future[Any]]] = []
        self.uses: dict[str, int] = {}  # batch file → the bins taking rows of it, not yet committed
        self.hdu_columns: dict[str, dict[int, list[str]]] = {}  # to record with the table's next commit
        self.counts: dict[str, FileCounts] = {}  # batch file → its writer's counts
        self.kept: list[Compacted] = []  # batch files committed as they are (see _submit)
        self.schemas: dict[tuple[str, str | None], pa.Schema] = {}  # (table, part) → see _schema

    def add(self, results: list[BatchResult]) -> None:
        """Take finished batches (their tables already hold every column of their files)."""
        for res in results:
            self.waiting.setdefault(self.rank[res.batch_id.split("-")[0]], []).append(res)
        while self.next in self.waiting:
            for res in self.waiting.pop(self.next):
                self._feed(res)
            self.next += 1

    def _feed(self, res: BatchResult) -> None:
        for table, files in sorted(res.files.items()):
            # (first: a bin's files are rewritten with the columns of their HDUs, see _schema)
            for hdu, cols in res.hdu_columns.get(table, {}).items():
                have = self.hdu_columns.setdefault(table, {}).setdefault(hdu, [])
                new = [c for c in cols if c not in have]
                if new:
                    have.extend(new)
                    self.schemas = {k: v for k, v in self.schemas.items() if k[0] != table}
            for f in files:
                for part, rows in self._parts(table, f, res):
                    if rows:
                        self._put((table, str(Path(f).parent), part), f, rows, res.counts[f])

    def _parts(self, table: str, path: str, res: BatchResult) -> list[tuple[str | None, int]]:
        """The parts a batch file's rows go to, with their rows."""
        n = res.counts[path].num_rows
        if not sch.is_header_table(table):
            return [(None, n)]
        per_hdu = res.hdu_rows.get(path)
        primary = (per_hdu if per_hdu is not None else self.lake.hdu_rows(path)).get(0, 0)
        return [(PRIMARY, primary), (EXTENSIONS, n - primary)]

    def _put(self, key: Key, path: str, rows: int, counts: FileCounts) -> None:
        size = sum(c[2] for c in counts.columns) * rows // max(1, counts.num_rows)
        got = self.bins.get(key)
        if got is not None and (got.rows + rows > self._max_rows(key) or got.size + size > self.target):
            self._submit(key)
            got = None
        if got is None:
            got = self.bins[key] = _Bin()
        got.paths.append(path)
        self.counts[path] = counts
        got.rows += rows
        got.size += size
        self.uses[path] = self.uses.get(path, 0) + 1

    def _max_rows(self, key: Key) -> int:
        return max(1, MAX_CELLS // max(1, len(self._schema(key[0], key[2]))))

    def _schema(self, table: str, part: str | None) -> pa.Schema:
        """The columns of a compacted file of ``table``'s ``part``: those the table records for the part's
        HDUs, with those of the batches not yet committed (see :func:`lake.maintenance.part_schema`); kept
        until a batch brings the table a keyword column (asked for each batch file: a 4M-file ingest
        would otherwise parse the table's record some 100,000 times)."""
        if part is None:
            return _plain_schema(self.lake.current_schema(self.pins, table))
        got = self.schemas.get((table, part))
        if got is None:
            per_hdu = hdu_columns_of(self.lake.table(self.pins, table))
            for hdu, cols in self.hdu_columns.get(table, {}).items():
                per_hdu[hdu] = [*per_hdu.get(hdu, []), *cols]
            schema = _plain_schema(self.lake.current_schema(self.pins, table))
            got = self.schemas[(table, part)] = part_schema(schema, per_hdu, part)
        return got

    def _submit(self, key: Key) -> None:
        """Have a worker rewrite a bin (before the batches waiting for a worker: memory stays bounded). A
        bin of one file of a table whose files are not split into parts is that file, committed as it
        is: ``cards`` files are mostly so (a batch's worker writes what it holds at about a compacted
        file's rows), and rewriting them alone cost the workers a tenth of their time."""
        table, folder, part = key
        b = self.bins.pop(key)
        if part is None and len(b.paths) == 1:
            path = b.paths[0]
            self.kept.append(Compacted(table, path, self.counts.pop(path), None, ()))
            self.uses.pop(path)
            return
        schema = _file_schema(self._schema(table, part), b.paths[0])
        args = (b.paths, schema, table, Path(folder), part)
        self.running.append(
            (table, self.ex.submit(rewrite_bin, *args, key=f"compact-{uuid.uuid4().hex[:16]}", first=True))
        )

    def done(self, *, wait: bool = False) -> list[Compacted]:
        """The rewrites finished (with ``wait``, all of them, once finished)."""
        out, still = self.kept, []
        self.kept = []
        for table, fut in self.running:
            if wait or fut.done():
                path, counts, hdu_rows, inputs = fut.result()
                out.append(Compacted(table, path, counts, hdu_rows, tuple(inputs)))
            else:
                still.append((table, fut))
        self.running = still
        return out

    def finish(self) -> list[Compacted]:
        """Rewrite what is left (bins not full) and wait for every rewrite."""
        for key in sorted(self.bins, key=lambda k: (k[0], k[1], k[2] or "")):
            self._submit(key)
        return self.done(wait=True)

    def retire(self, committed: list[Compacted]) -> None:
        """Delete the batch files whose every part is in a committed file (nothing refers to them)."""
        for c in committed:
            for p in c.inputs:
                self.uses[p] -= 1
                if not self.uses[p]:
                    del self.uses[p]
                    self.counts.pop(p, None)
                    os.unlink(p)


def rewrite_bin(
    paths: list[str], schema: Any, table: str, out_dir: Path, part: str | None
) -> tuple[str, FileCounts, dict[int, int] | None, list[str]]:
    """One bin rewritten (on a worker): the new file, its footer's counts (every column's bounds for the
    fixed tables, which keep them), its rows per HDU (wide header tables) and the bin's files, read where
    the file was just written, so the driver reads no footer again."""
    path = _rewrite(paths, schema, table, out_dir, part)
    counts = file_counts(pq.read_metadata(path), bounds=table in sch.FIXED_TABLES)
    hdu_rows = None
    if part == PRIMARY:
        hdu_rows = {0: counts.num_rows}
    elif part is not None:
        hdu_rows = hdu_counts(path)
    return path, counts, hdu_rows, paths
