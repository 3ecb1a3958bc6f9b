"""One ingest task: read and parse a batch of files, write Parquet for every table, return a small summary.

Runs in a Dask worker. It writes data files only (never the catalog); the driver registers them in one
commit per batch. A file that cannot be read becomes a ``files`` row with status ``error`` and no header
rows; the rest of the batch goes on.
"""

from __future__ import annotations

import functools
import os
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.fitsheader import INVALID, READER_VERSION, RawHeader, parse_headers, read_raw_headers
from ingest.widetable import pivot
from lake import schema as sch
from lake.datafile import FileCounts, bloom_filters, file_counts, row_group_rows
from lake.errors import FitsError, LayoutError
from lake.layout import Layout, split_filetype

_PRIMARY_KEYS = ("ROOTNAME", "PROPOSID", "INSTRUME", "DETECTOR", "DATE-OBS", "EXPSTART")
_EXT_KEYS = ("EXTNAME", "EXTVER")


@dataclass
class FileJob:
    relpath: str
    size: int
    mtime: float
    problem: str | None = None  # why the scanner could not take the path: recorded, not read


@dataclass
class BatchResult:
    batch_id: str
    files: dict[str, list[str]] = field(default_factory=dict)  # table → Parquet files written
    schemas: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # table → (column, type)
    hdu_columns: dict[str, dict[int, list[str]]] = field(
        default_factory=dict
    )  # table → hdu → keyword columns
    n_files: int = 0
    n_errors: int = 0
    n_problems: int = 0  # files ingested with conformance problems (files.problems)
    n_cards: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    relpaths: list[str] = field(default_factory=list)
    counts: dict[str, FileCounts] = field(default_factory=dict)  # Parquet file → its footer's counts
    hdu_rows: dict[str, dict[int, int]] = field(default_factory=dict)  # wide table's file → rows per HDU


def _year_from(date_obs: Any, expstart: Any) -> int | None:
    if isinstance(date_obs, str) and len(date_obs) >= 4 and date_obs[:4].isdigit():
        return int(date_obs[:4])
    if isinstance(expstart, float | int) and 0 < expstart < 100000:
        return int(1858.876 + expstart / 365.25)
    return None


def _open_headers(archive: str, relpath: str) -> list[RawHeader]:
    full = posixpath.join(archive, relpath) if "://" in archive else os.path.join(archive, relpath)
    if "://" in archive:
        with fsspec.open(full, "rb") as f:
            return read_raw_headers(f, name=full)
    try:
        return read_raw_headers(full, name=relpath)
    except PermissionError:
        raise FitsError(relpath, "permission denied; make the file readable by the ingest user") from None
    except FileNotFoundError:
        raise FitsError(relpath, "file vanished during ingest; it will be marked missing next run") from None
    except OSError as e:  # symlink loop, I/O error, ...: this file only
        raise FitsError(relpath, f"cannot be read ({e.strerror or e}); fix or remove it") from None


def _headers_or_error(archive: str, relpath: str) -> list[RawHeader] | str:
    """The raw headers of one file, or the message of why they cannot be read. Never raises: whatever
    one file holds, the batch goes on."""
    try:
        return _open_headers(archive, relpath)
    except FitsError as e:
        return str(e)
    except Exception as e:  # a reader bug must cost one file, not the ingest
        return f"{relpath}: the header reader failed ({type(e).__name__}: {e}); report this with the file"


# An interim file (see BatchTask.interim) keeps statistics of these columns only: ``path`` (the file's
# path range), ``year`` (its partition) and ``hdu`` (which row groups hold primary headers)
INTERIM_STATISTICS = ("path", "year", "hdu")


def _write(
    table: pa.Table,
    out_dir: Path,
    batch_id: str,
    counts: dict[str, FileCounts] | None = None,
    partitioned: bool = True,
    sort_by: list[str] | None = None,
    interim: bool = False,
    hdu_rows: dict[str, dict[int, int]] | None = None,
) -> list[str]:
    """Write one Parquet file per year partition (or one file); returns their paths. The footers' counts go
    to ``counts`` if given, with every column's bounds for the partitioned (fixed) tables, which keep them:
    the driver describes the files with them instead of reading the footers back. With ``hdu_rows``, each
    file's rows per HDU go there.

    An ``interim`` file (read once by compaction, never by readers) is written for speed: LZ4, no Bloom
    filters, statistics of :data:`INTERIM_STATISTICS` only (so its bounds are those columns'), and a wide
    table's primary headers (HDU 0) in row groups of their own, which compaction reads apart from the
    extensions' (:func:`lake.maintenance.read_part`)."""
    written = []
    years = table.column("year")
    for y, part in _year_parts(table, years) if partitioned else [("all", table)]:
        if sort_by:
            part = part.sort_by([(c, "ascending") for c in sort_by])
        d = out_dir / f"year={'null' if y is None else y}" if partitioned else out_dir
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{batch_id}.parquet"
        tmp = d / f".{batch_id}.parquet.tmp"
        # no stored Arrow schema: the dictionary-encoded strings are plain strings to Iceberg and readers
        footer: list[pq.FileMetaData] = []
        group = row_group_rows(out_dir.parent.name)  # (``<table>/data``)
        per_hdu = _rows_per_hdu(part) if hdu_rows is not None or (interim and sort_by) else None
        if interim:
            stats = [c for c in INTERIM_STATISTICS if c in part.column_names]
            with pq.ParquetWriter(
                tmp, part.schema, compression="lz4", store_schema=False, write_statistics=stats,
                metadata_collector=footer,
            ) as writer:  # fmt: skip
                # (sorted by HDU first: the primary headers lead)
                first = per_hdu.get(0, 0) if per_hdu is not None and sort_by and sort_by[0] == "hdu" else 0
                pieces = [p for p in (part.slice(0, first), part.slice(first)) if p.num_rows] or [part]
                for piece in pieces:
                    writer.write_table(piece, row_group_size=group)
        else:
            pq.write_table(
                part,
                tmp,
                compression="zstd",
                row_group_size=group,
                store_schema=False,
                metadata_collector=footer,
                bloom_filter_options=bloom_filters(part, group),
            )
        os.replace(tmp, path)
        written.append(str(path))
        if counts is not None:
            counts[str(path)] = file_counts(footer[0], bounds=partitioned)
        if hdu_rows is not None and per_hdu is not None:
            hdu_rows[str(path)] = per_hdu
    return written


def _year_parts(table: pa.Table, years: pa.ChunkedArray) -> list[tuple[int | None, pa.Table]]:
    """The rows of each year (None: no year), in their order, in the order the years first appear: the
    table's runs of rows of one year (a file's rows are one run), put together without a copy (not a
    filter of the whole table per year)."""
    n = len(years)
    if n == 0:
        return []
    y = np.asarray(years.to_numpy(), dtype=np.float64) if years.null_count else np.asarray(years.to_numpy())
    if y.dtype.kind == "f":
        y = np.where(np.isnan(y), np.inf, y)  # (the year-less rows)
    starts = np.concatenate([[0], np.flatnonzero(y[1:] != y[:-1]) + 1])
    if len(starts) == 1:
        return [(_year_of(y[0]), table)]
    runs: dict[int | None, list[pa.Table]] = {}
    for start, end in zip(starts.tolist(), [*starts[1:].tolist(), n], strict=True):
        runs.setdefault(_year_of(y[start]), []).append(table.slice(start, end - start))
    return [(year, pa.concat_tables(parts) if len(parts) > 1 else parts[0]) for year, parts in runs.items()]


def _year_of(v: Any) -> int | None:
    return None if v == np.inf else int(v)


def _rows_per_hdu(t: pa.Table) -> dict[int, int]:
    """Rows per HDU of a wide table (none for other tables)."""
    if "hdu" not in t.column_names:
        return {}
    hdus, n = np.unique(np.asarray(t.column("hdu").to_numpy(), dtype=np.int64), return_counts=True)
    return {int(h): int(k) for h, k in zip(hdus.tolist(), n.tolist(), strict=True)}


@dataclass
class BatchTask:
    """One batch for a worker: parse ``jobs`` (paths relative to ``archive``, placed by the layout
    ``template``) and write Parquet under ``data_root/<table>/...``; ``types`` are the tables' current
    column types (table → column → type name), which the worker's wide tables follow."""

    batch_id: str
    archive: str
    jobs: list[FileJob]
    data_root: str
    template: str | Sequence[str]
    types: dict[str, dict[str, str]]
    max_cards: int = 1_000_000
    # wide tables' files are interim (see _write): ingest.compacting rewrites every one of them
    interim: bool = False


class _OkFile(NamedTuple):
    """A file whose headers were read: its index among the batch's readable files, and what to parse."""

    k: int
    job: FileJob
    ap: Any  # its layout.parse result
    n_hdus: int
    problems: list[
        str
    ]  # conformance problems ("warning: ..." / "error: ..."), the file ingested all the same


class _FileInfo(NamedTuple):
    """What a readable file's primary header (or its path) says about it."""

    rootname: str | None
    proposid: Any
    year: int | None
    instrume: str | None
    detector: str | None


class _FileRows:
    """The columns of the batch's ``files`` rows, built row by row."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)
        self.cols: dict[str, list[Any]] = {f.name: [] for f in sch.arrow_schema("files")}
        self.errors: list[tuple[str, str]] = []  # (path, why) of the files that became error rows

    def add(
        self,
        job: FileJob,
        ap: Any,
        status: str,
        error: str | None,
        n_hdus: int | None,
        problems: str | None = None,
    ) -> None:
        row = {
            "path": job.relpath,
            "proposid": ap.proposid if ap else None,
            "visit": ap.visit if ap else None,
            "rootname": ap.rootname if ap else None,
            "filetype": ap.filetype if ap else split_filetype(Path(job.relpath).stem)[1] or None,
            "instrume": None,
            "detector": None,
            "size": job.size,
            "mtime": job.mtime,
            "n_hdus": n_hdus,
            "status": status,
            "error": error,
            "tables": None,
            "ingested_at": self.now,
            "reader_version": READER_VERSION,
            "year": None,
            "problems": problems,
        }
        for k, col in self.cols.items():
            col.append(row[k])


@dataclass
class _Headers:
    """The raw headers of the batch's readable files, and which file and HDU each came from."""

    raw: list[bytes] = field(default_factory=list)
    file: list[int] = field(default_factory=list)
    hdu: list[int] = field(default_factory=list)
    ok: list[_OkFile] = field(default_factory=list)


@dataclass
class _Parsed:
    """The batch's cards and the indexes every table is cut from."""

    cards: pa.Table
    hf: np.ndarray  # header → file index
    hh: np.ndarray  # header → HDU
    card_header: np.ndarray  # card → header
    info: dict[int, dict[str, Any]]  # header → identity keywords
    file_info: list[_FileInfo]
    paths: pa.Array  # file index → path
    roots: pa.Array  # file index → rootname
    years: pa.Array  # file index → year
    extname: pa.Array  # header → EXTNAME (PRIMARY for a primary header without one)
    extver: pa.Array  # header → EXTVER, if an integer


def process_batch(task: BatchTask) -> list[BatchResult]:
    """Parse the task's files and write Parquet under ``data_root/<table>/year=Y/<batch_id>.parquet``.

    A worker holds at most ``task.max_cards`` cards at once: the files are read in order until their
    headers reach that many cards, that part is parsed and written (``<batch_id>-<part>`` after the
    first), and reading goes on. A batch of 2,000 IR ``ima`` files (80 HDUs each) then needs no more
    memory than one of 2,000 ``flt`` files. Each part is a result of its own, with its own schemas."""
    layout = Layout(task.template)
    results: list[BatchResult] = []
    rows, heads, start, held = _FileRows(), _Headers(), 0, 0
    for i, job in enumerate(task.jobs):
        n = len(heads.raw)
        _read_one(task, layout, job, rows, heads)
        held += sum(len(r) for r in heads.raw[n:]) // 80  # a card is 80 bytes
        if held >= task.max_cards and i + 1 < len(task.jobs):
            results.append(_process_part(task, len(results), task.jobs[start : i + 1], rows, heads))
            rows, heads, start, held = _FileRows(), _Headers(), i + 1, 0
    results.append(_process_part(task, len(results), task.jobs[start:], rows, heads))
    return results


def _process_part(
    task: BatchTask, part: int, jobs: list[FileJob], rows: _FileRows, heads: _Headers
) -> BatchResult:
    """Parse the headers read for ``jobs`` and write every table's Parquet file."""
    batch_id = task.batch_id if part == 0 else f"{task.batch_id}-{part}"
    result = BatchResult(batch_id, relpaths=[j.relpath for j in jobs], errors=list(rows.errors))
    cards = _parse_cards(heads)
    b = _index(heads, cards)
    out_root = Path(task.data_root)
    written: dict[str, list[str]] = {}
    card_tab = _cards_table(b)
    if card_tab.num_rows:
        written["cards"] = _write(card_tab, out_root / "cards" / "data", batch_id, result.counts)
    result.n_cards = card_tab.num_rows
    tables_of_file, conflict_rows = _write_wide_tables(task, batch_id, heads, b, result, written)
    _add_ok_rows(rows, heads, b, tables_of_file)
    files_tab = pa.table(rows.cols, schema=sch.arrow_schema("files"))
    written["files"] = _write(files_tab, out_root / "files" / "data", batch_id, result.counts)
    if conflict_rows["path"]:
        written["conflicts"] = _write(
            pa.table(conflict_rows, schema=sch.arrow_schema("conflicts")),
            out_root / "conflicts" / "data",
            batch_id,
            result.counts,
        )
    result.files = written
    result.n_files = len(jobs)
    result.n_errors = len(result.errors)
    result.n_problems = sum(1 for f in heads.ok if f.problems)
    return result


def _read_one(task: BatchTask, layout: Layout, job: FileJob, rows: _FileRows, heads: _Headers) -> None:
    """Place a file by the layout and read its raw headers into ``heads``; a file that fails either (or
    that the scanner could not take) becomes an ``error`` row."""
    ap = None
    try:
        ap = layout.parse(job.relpath)
    except LayoutError as e:
        if job.problem is None:
            rows.add(job, None, "error", str(e), None)
            rows.errors.append((job.relpath, str(e)))
            return
    got = job.problem if job.problem is not None else _headers_or_error(task.archive, job.relpath)
    if isinstance(got, str):
        rows.add(job, ap, "error", got, None)
        rows.errors.append((job.relpath, got))
        return
    k = len(heads.ok)
    problems = [p for r in got for p in r.problems]
    heads.ok.append(_OkFile(k, job, ap, len(got), problems))
    for r in got:
        heads.raw.append(r.data)
        heads.file.append(k)
        heads.hdu.append(r.hdu)


def _parse_cards(heads: _Headers) -> pa.Table:
    """Parse every header's cards; a card neither this reader nor astropy can parse keeps its text (value
    type ``invalid``) and is a problem of its file, which is ingested all the same."""
    odd: list[tuple[int, int, str]] = []
    cards = parse_headers(heads.raw, odd)
    for h, i, what in odd:
        heads.ok[heads.file[h]].problems.append(f"warning: HDU {heads.hdu[h]} card {i} {what}")
    for k, msgs in _invalid_card_problems(cards, heads.file, heads.hdu).items():
        heads.ok[k].problems.extend(msgs)
    return cards


def _index(heads: _Headers, cards: pa.Table) -> _Parsed:
    """The header and card indexes, each header's identity keywords and each file's identity."""
    hf = np.asarray(heads.file, dtype=np.int32)
    info = _identity_keywords(cards)
    header_start = np.searchsorted(hf, np.arange(len(heads.ok)))
    file_info = []
    for k, job, ap, n_hdus, _problems in heads.ok:
        prim = info.get(int(header_start[k]), {}) if n_hdus else {}
        # identity the name does not give (HAP products, odd names) comes from the header, then the name
        rootname = (
            ap.rootname
            or str(prim.get("ROOTNAME") or "").strip().lower()
            or split_filetype(posixpath.basename(job.relpath).removesuffix(".fits"))[0].lower()
            or None
        )
        proposid = ap.proposid if ap.proposid is not None else prim.get("PROPOSID")
        year = _year_from(prim.get("DATE-OBS"), prim.get("EXPSTART"))
        instrume = (prim.get("INSTRUME") or None) and str(prim["INSTRUME"]).strip()
        detector = (prim.get("DETECTOR") or None) and str(prim["DETECTOR"]).strip()
        file_info.append(_FileInfo(rootname, proposid, year, instrume, detector))
    return _Parsed(
        cards=cards,
        hf=hf,
        hh=np.asarray(heads.hdu, dtype=np.int32),
        card_header=np.asarray(cards.column("header").to_numpy()),
        info=info,
        file_info=file_info,
        paths=pa.array([heads.ok[k].job.relpath for k in range(len(heads.ok))], pa.string()),
        roots=pa.array([fi.rootname for fi in file_info], pa.string()),
        years=pa.array([fi.year for fi in file_info], pa.int32()),
        **_extensions(info, heads.hdu),
    )


def _extensions(info: dict[int, dict[str, Any]], hdus: list[int]) -> dict[str, pa.Array]:
    """Every header's EXTNAME and EXTVER (the wide tables' ``extname`` and ``extver``)."""
    names: list[str | None] = []
    versions: list[Any] = []
    for h, hdu in enumerate(hdus):
        d = info.get(h) or {}
        names.append(str(d.get("EXTNAME") or ("PRIMARY" if hdu == 0 else "")).strip() or None)
        v = d.get("EXTVER")
        versions.append(v if isinstance(v, int) else None)
    return {"extname": pa.array(names, pa.string()), "extver": pa.array(versions, pa.int64())}


def _identity_keywords(cards: pa.Table) -> dict[int, dict[str, Any]]:
    """Identity keywords per header: a small filtered slice of the cards."""
    kw_all = pc.cast(cards.column("keyword"), pa.string())
    ident = cards.filter(pc.is_in(kw_all, pa.array(_PRIMARY_KEYS + _EXT_KEYS)))
    info: dict[int, dict[str, Any]] = {}
    for h, kwd, vt, s, i, f in zip(
        ident.column("header").to_pylist(),
        pc.cast(ident.column("keyword"), pa.string()).to_pylist(),
        pc.cast(ident.column("value_type"), pa.string()).to_pylist(),
        pc.cast(ident.column("value_str"), pa.string()).to_pylist(),
        ident.column("value_int").to_pylist(),
        ident.column("value_float").to_pylist(),
        strict=True,
    ):
        d = info.setdefault(h, {})
        d.setdefault(kwd, s if vt == "string" else i if vt == "int" else f)
    return info


_CARD_COLUMNS = (
    "position",
    "keyword",
    "value_type",
    "value_str",
    "value_int",
    "value_float",
    "value_bool",
    "comment",
    "image",
)


def _cards_table(b: _Parsed) -> pa.Table:
    """The ``cards`` rows: every card with its file's path, rootname and year."""
    fidx_a = pa.array(b.hf[b.card_header])
    return pa.table(
        {
            "path": pa.DictionaryArray.from_arrays(fidx_a, b.paths),
            "rootname": b.roots.take(fidx_a),  # may hold nulls: a dictionary may not
            "hdu": pa.array(b.hh[b.card_header]),
            **{n: b.cards.column(n) for n in _CARD_COLUMNS},
            "year": b.years.take(fidx_a),
        }
    )


def _write_wide_tables(
    task: BatchTask,
    batch_id: str,
    heads: _Headers,
    b: _Parsed,
    result: BatchResult,
    written: dict[str, list[str]],
) -> tuple[dict[int, set[str]], dict[str, list[Any]]]:
    """Group the headers by wide table, write each table's file (its schema and per-HDU columns go to
    ``result``); returns the tables of each file and the ``conflicts`` rows."""
    table_of_file = [
        _table_name(fi.instrume, fi.detector, ok.ap.filetype or "unknown")
        for fi, ok in zip(b.file_info, heads.ok, strict=True)
    ]
    by_table: dict[str, list[int]] = {}
    for h, k in enumerate(b.hf.tolist()):
        by_table.setdefault(table_of_file[k], []).append(h)
    tables_of_file: dict[int, set[str]] = {}
    conflict_rows: dict[str, list[Any]] = {f.name: [] for f in sch.arrow_schema("conflicts")}
    order = np.argsort(b.card_header, kind="stable")  # cards are already in header order
    card_start = np.searchsorted(b.card_header[order], np.arange(len(heads.raw) + 1))
    for tname, hs in sorted(by_table.items()):
        hs_a = np.asarray(hs)
        wide = _wide_table(tname, hs_a, b, card_start, len(heads.raw), task.types, heads, conflict_rows)
        sort_cols = ["hdu", "date_obs", "path"] if "date_obs" in wide.column_names else ["hdu", "path"]
        written[tname] = _write(
            wide,
            Path(task.data_root) / tname / "data",
            batch_id,
            result.counts,
            partitioned=False,
            sort_by=sort_cols,
            interim=task.interim,
            hdu_rows=result.hdu_rows,
        )
        result.schemas[tname] = [(f.name, sch.TYPE_NAMES.get(f.type, "string")) for f in wide.schema]
        result.hdu_columns[tname] = _columns_per_hdu(wide)
        for k in set(b.hf[hs_a].tolist()):
            tables_of_file.setdefault(int(k), set()).add(tname)
    return tables_of_file, conflict_rows


# the cards' columns a wide table is made from (ingest.widetable.pivot)
_PIVOT_COLUMNS = ("position", "keyword", "value_type", "value_str", "value_int", "value_float", "value_bool")


def _wide_table(
    tname: str,
    hs_a: np.ndarray,
    b: _Parsed,
    card_start: np.ndarray,
    n_headers: int,
    known_types: dict[str, dict[str, str]],
    heads: _Headers,
    conflict_rows: dict[str, list[Any]],
) -> pa.Table:
    """The wide table ``tname`` of the headers ``hs_a`` (one row each); its type conflicts are added to
    ``conflict_rows``."""
    sel = _ranges(card_start[hs_a], card_start[hs_a + 1])  # the headers' cards
    sub = b.cards.select(_PIVOT_COLUMNS).take(pa.array(sel))  # (not the card images and comments)
    row_of_header = np.full(n_headers, -1, dtype=np.int64)
    row_of_header[hs_a] = np.arange(len(hs_a))
    rows = row_of_header[b.card_header[sel]]
    files_k = b.hf[hs_a]
    known = {
        **sch.header_types(tname),
        **{c: _arrow_type(t) for c, t in known_types.get(tname, {}).items()},
    }
    wide, conflicts = pivot(sub, rows, len(hs_a), _wide_base(hs_a, files_k, b), known)
    for cf in conflicts:
        h = hs_a[cf.row]
        k = int(b.hf[h])
        for name, v in (
            ("path", heads.ok[k].job.relpath),
            ("hdu", int(b.hh[h])),
            ("table_name", tname),
            ("keyword", cf.keyword),
            ("column_type", cf.column_type),
            ("value_type", cf.value_type),
            ("value", cf.value),
            ("year", b.file_info[k].year),
        ):
            conflict_rows[name].append(v)
    return wide


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The indices start..end-1 of every (start, end), one range after the other."""
    n = ends - starts
    total = int(n.sum())
    if not total:
        return np.array([], dtype=np.int64)
    shift = np.repeat(starts - (np.cumsum(n) - n), n)
    return np.arange(total, dtype=np.int64) + shift


def _wide_base(hs_a: np.ndarray, files_k: np.ndarray, b: _Parsed) -> dict[str, pa.Array]:
    """The columns every wide-table row starts with (before its keywords)."""
    return {
        "rootname": b.roots.take(pa.array(files_k)),
        "path": b.paths.take(pa.array(files_k)),
        "hdu": pa.array(b.hh[hs_a], pa.int32()),
        "extname": b.extname.take(pa.array(hs_a)),
        "extver": b.extver.take(pa.array(hs_a)),
        "year": b.years.take(pa.array(files_k)),
    }


@functools.lru_cache(maxsize=256)
def _table_name(instrume: str | None, detector: str | None, filetype: str) -> str:
    return sch.physical_table_name(instrume, detector, filetype)


_IPPPSSOOT = re.compile(r"[a-z0-9]{9}")


def _add_ok_rows(rows: _FileRows, heads: _Headers, b: _Parsed, tables_of_file: dict[int, set[str]]) -> None:
    """The ``files`` rows of the readable files, with what their headers said."""
    for k, job, ap, n_hdus, problems in heads.ok:
        rows.add(job, ap, "ok", None, n_hdus, _problem_text(problems))
        fi = b.file_info[k]
        i = len(rows.cols["path"]) - 1
        rows.cols["rootname"][i] = fi.rootname
        if ap.visit is None and fi.rootname and _IPPPSSOOT.fullmatch(fi.rootname):
            rows.cols["visit"][i] = fi.rootname[4:6].upper()  # from the header's ROOTNAME
        rows.cols["proposid"][i] = fi.proposid
        rows.cols["year"][i] = fi.year
        rows.cols["instrume"][i] = fi.instrume
        rows.cols["detector"][i] = fi.detector
        rows.cols["tables"][i] = ",".join(sorted(tables_of_file.get(k, ())))


def _invalid_card_problems(
    cards: pa.Table, header_file: list[int], header_hdu: list[int]
) -> dict[int, list[str]]:
    """file index → a problem per card that could not be parsed."""
    vt = pc.cast(cards.column("value_type"), pa.string())
    bad = cards.filter(pc.equal(vt, INVALID))
    out: dict[int, list[str]] = {}
    for h, pos, kwd, reason in zip(
        bad.column("header").to_pylist(),
        bad.column("position").to_pylist(),
        pc.cast(bad.column("keyword"), pa.string()).to_pylist(),
        pc.cast(bad.column("comment"), pa.string()).to_pylist(),
        strict=True,
    ):
        kw = kwd.encode("unicode_escape").decode()
        msg = f"error: HDU {header_hdu[h]} card {pos} {kw}: unparsable card ({reason}); kept as text"
        out.setdefault(header_file[h], []).append(msg)
    return out


MAX_PROBLEMS = 50  # listed per file; a file with more is damaged throughout, and the count says so


def _problem_text(problems: list[str]) -> str | None:
    """The ``files.problems`` text: one problem a line, most severe first."""
    if not problems:
        return None
    ordered = sorted(problems, key=lambda p: not p.startswith("error"))
    if len(ordered) > MAX_PROBLEMS:
        ordered = [*ordered[:MAX_PROBLEMS], f"... and {len(ordered) - MAX_PROBLEMS} more"]
    return "\n".join(ordered)


def _columns_per_hdu(wide: pa.Table) -> dict[int, list[str]]:
    """Keyword columns holding at least one value, per HDU index (for the per-HDU views)."""
    hdus, inv = np.unique(np.asarray(wide.column("hdu").to_numpy()), return_inverse=True)
    names = wide.column_names[len(sch.WIDE_BASE) :]
    present = np.zeros((len(hdus), len(names)), dtype=bool)
    for j, n in enumerate(names):
        valid = np.asarray(wide.column(n).is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        present[:, j] = np.bincount(inv, weights=valid, minlength=len(hdus)) > 0
    return {int(h): [n for n, p in zip(names, present[i], strict=True) if p] for i, h in enumerate(hdus)}


def _arrow_type(name: str) -> pa.DataType:
    return sch.ARROW_TYPES.get(name, pa.string())
