"""One ingest task: read and parse a batch of files, write Parquet for every table, return a small summary.

Runs in a Dask worker. It writes data files only (never the catalog); the driver registers them in one
commit per batch. A file that cannot be read becomes a ``files`` row with status ``error`` and no header
rows; the rest of the batch goes on.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.fitsheader import INVALID, READER_VERSION, RawHeader, parse_headers, read_raw_headers
from ingest.widetable import pivot
from lake import schema as sch
from lake.datafile import FileCounts, file_counts
from lake.errors import FitsError, LayoutError
from lake.layout import Layout, split_filetype

_PRIMARY_KEYS = ("ROOTNAME", "PROPOSID", "INSTRUME", "DETECTOR", "DATE-OBS", "EXPSTART")
_EXT_KEYS = ("EXTNAME", "EXTVER")


@dataclass
class FileJob:
    relpath: str
    size: int
    mtime: float


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
    n_cards: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    relpaths: list[str] = field(default_factory=list)
    counts: dict[str, FileCounts] = field(default_factory=dict)  # Parquet file → its footer's counts


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


def _write(
    table: pa.Table,
    out_dir: Path,
    batch_id: str,
    counts: dict[str, FileCounts] | None = None,
    partitioned: bool = True,
    sort_by: list[str] | None = None,
) -> list[str]:
    """Write one Parquet file per year partition (or one file); returns their paths. The footers' counts go
    to ``counts`` if given (wide tables keep counts only: the driver describes their files with them instead
    of reading the footers back)."""
    written = []
    years = table.column("year")
    for y in pc.unique(years).to_pylist() if partitioned else ["all"]:
        part = (
            table if not partitioned else table.filter(pc.is_null(years) if y is None else pc.equal(years, y))
        )
        if sort_by:
            part = part.sort_by([(c, "ascending") for c in sort_by])
        d = out_dir / f"year={'null' if y is None else y}" if partitioned else out_dir
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{batch_id}.parquet"
        tmp = d / f".{batch_id}.parquet.tmp"
        # no stored Arrow schema: the dictionary-encoded strings are plain strings to Iceberg and readers
        footer: list[pq.FileMetaData] = []
        pq.write_table(
            part,
            tmp,
            compression="zstd",
            row_group_size=256 * 1024,
            store_schema=False,
            metadata_collector=footer,
        )
        os.replace(tmp, path)
        written.append(str(path))
        if counts is not None:
            counts[str(path)] = file_counts(footer[0])
    return written


def process_batch(
    batch_id: str,
    archive: str,
    jobs: list[FileJob],
    data_root: str,
    template: str,
    known_types: dict[str, dict[str, str]],
) -> BatchResult:
    """Parse ``jobs`` and write Parquet under ``data_root/<table>/year=Y/<batch_id>.parquet``."""
    layout = Layout(template)
    result = BatchResult(batch_id, relpaths=[j.relpath for j in jobs])
    now = datetime.now(UTC)
    file_rows: dict[str, list[Any]] = {f.name: [] for f in sch.arrow_schema("files")}
    raw_headers: list[bytes] = []
    header_file: list[int] = []
    header_hdu: list[int] = []
    ok_files: list[tuple[int, FileJob, Any, int]] = []  # (index in ok list, job, archive path, n_hdus)

    def add_file_row(job: FileJob, ap: Any, status: str, error: str | None, n_hdus: int | None) -> None:
        rootname = ap.rootname if ap else None
        filetype = ap.filetype if ap else split_filetype(Path(job.relpath).stem)[1] or None
        row = {
            "path": job.relpath,
            "proposid": ap.proposid if ap else None,
            "visit": ap.visit if ap else None,
            "rootname": rootname,
            "filetype": filetype,
            "instrume": None,
            "detector": None,
            "size": job.size,
            "mtime": job.mtime,
            "n_hdus": n_hdus,
            "status": status,
            "error": error,
            "tables": None,
            "ingested_at": now,
            "reader_version": READER_VERSION,
            "year": None,
        }
        for k, v in row.items():
            file_rows[k].append(v)

    for job in jobs:
        try:
            ap = layout.parse(job.relpath)
        except LayoutError as e:
            add_file_row(job, None, "error", str(e), None)
            result.errors.append((job.relpath, str(e)))
            continue
        try:
            raws = _open_headers(archive, job.relpath)
        except FitsError as e:
            add_file_row(job, ap, "error", str(e), None)
            result.errors.append((job.relpath, str(e)))
            continue
        k = len(ok_files)
        ok_files.append((k, job, ap, len(raws)))
        for r in raws:
            raw_headers.append(r.data)
            header_file.append(k)
            header_hdu.append(r.hdu)

    cards = parse_headers(raw_headers)
    bad_files = _files_with_invalid_cards(cards, header_file, header_hdu)
    if bad_files:  # rare: drop those files (recorded as errors) and parse the rest again
        for k, (hdu, kwd, reason) in bad_files.items():
            _, job, ap, _n = ok_files[k]
            msg = str(FitsError(job.relpath, f"unparsable card ({reason}); fix or remove the file", hdu, kwd))
            add_file_row(job, ap, "error", msg, None)
            result.errors.append((job.relpath, msg))
        keep_h = [i for i, k in enumerate(header_file) if k not in bad_files]
        remap = {old: new for new, old in enumerate(k for k in range(len(ok_files)) if k not in bad_files)}
        ok_files = [(remap[k], j, a, n) for k, j, a, n in ok_files if k not in bad_files]
        raw_headers = [raw_headers[i] for i in keep_h]
        header_hdu = [header_hdu[i] for i in keep_h]
        header_file = [remap[header_file[i]] for i in keep_h]
        cards = parse_headers(raw_headers)
    hf = np.asarray(header_file, dtype=np.int32)
    hh = np.asarray(header_hdu, dtype=np.int32)
    card_header = np.asarray(cards.column("header").to_numpy())

    # Identity keywords per header: a small filtered slice of the cards.
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

    header_start = np.searchsorted(hf, np.arange(len(ok_files)))
    file_info = []
    for k, _job, ap, n_hdus in ok_files:
        prim = info.get(int(header_start[k]), {}) if n_hdus else {}
        rootname = ap.rootname or (str(prim.get("ROOTNAME") or "").strip().lower() or None)
        proposid = ap.proposid if ap.proposid is not None else prim.get("PROPOSID")
        year = _year_from(prim.get("DATE-OBS"), prim.get("EXPSTART"))
        instrume = (prim.get("INSTRUME") or None) and str(prim["INSTRUME"]).strip()
        detector = (prim.get("DETECTOR") or None) and str(prim["DETECTOR"]).strip()
        file_info.append((rootname, proposid, year, instrume, detector))

    # cards table rows
    fidx = hf[card_header]
    paths = pa.array([ok_files[k][1].relpath for k in range(len(ok_files))], pa.string())
    roots = pa.array([fi[0] for fi in file_info], pa.string())
    years = pa.array([fi[2] for fi in file_info], pa.int32())
    fidx_a = pa.array(fidx)
    card_tab = pa.table(
        {
            "path": pa.DictionaryArray.from_arrays(fidx_a, paths),
            "rootname": roots.take(fidx_a),  # may hold nulls: a dictionary may not
            "hdu": pa.array(hh[card_header]),
            **{
                n: cards.column(n)
                for n in (
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
            },
            "year": years.take(fidx_a),
        }
    )
    out_root = Path(data_root)
    written: dict[str, list[str]] = {}
    if card_tab.num_rows:
        written["cards"] = _write(card_tab, out_root / "cards" / "data", batch_id)
    result.n_cards = card_tab.num_rows

    # wide tables: group headers by table name
    table_of_header = []
    for h in range(len(raw_headers)):
        k = int(hf[h])
        rootname, proposid, year, instrume, detector = file_info[k]
        ftype = ok_files[k][2].filetype or "unknown"
        table_of_header.append(sch.physical_table_name(instrume, detector, ftype))
    tables_of_file: dict[int, set[str]] = {}
    conflict_rows: dict[str, list[Any]] = {f.name: [] for f in sch.arrow_schema("conflicts")}
    by_table: dict[str, list[int]] = {}
    for h, t in enumerate(table_of_header):
        by_table.setdefault(t, []).append(h)
    order = np.argsort(card_header, kind="stable")  # cards are already in header order
    card_start = np.searchsorted(card_header[order], np.arange(len(raw_headers) + 1))
    for tname, hs in sorted(by_table.items()):
        hs_a = np.asarray(hs)
        sel = (
            np.concatenate([np.arange(card_start[h], card_start[h + 1]) for h in hs_a])
            if len(hs_a)
            else np.array([], int)
        )
        sub = cards.take(pa.array(sel))
        row_of_header = np.full(len(raw_headers), -1, dtype=np.int64)
        row_of_header[hs_a] = np.arange(len(hs_a))
        rows = row_of_header[card_header[sel]]
        files_k = hf[hs_a]
        base = {
            "rootname": roots.take(pa.array(files_k)),
            "path": paths.take(pa.array(files_k)),
            "hdu": pa.array(hh[hs_a], pa.int32()),
            "extname": pa.array(
                [
                    str(info.get(int(h), {}).get("EXTNAME") or ("PRIMARY" if hh[h] == 0 else "")).strip()
                    or None
                    for h in hs_a
                ],
                pa.string(),
            ),
            "extver": pa.array(
                [
                    info.get(int(h), {}).get("EXTVER")
                    if isinstance(info.get(int(h), {}).get("EXTVER"), int)
                    else None
                    for h in hs_a
                ],
                pa.int64(),
            ),
            "year": years.take(pa.array(files_k)),
        }
        known = {
            **sch.header_types(tname),
            **{c: _arrow_type(t) for c, t in known_types.get(tname, {}).items()},
        }
        wide, conflicts = pivot(sub, rows, len(hs_a), base, known)
        for cf in conflicts:
            h = hs_a[cf.row]
            k = int(hf[h])
            for name, v in (
                ("path", ok_files[k][1].relpath),
                ("hdu", int(hh[h])),
                ("table_name", tname),
                ("keyword", cf.keyword),
                ("column_type", cf.column_type),
                ("value_type", cf.value_type),
                ("value", cf.value),
                ("year", file_info[k][2]),
            ):
                conflict_rows[name].append(v)
        sort_cols = ["hdu", "date_obs", "path"] if "date_obs" in wide.column_names else ["hdu", "path"]
        written[tname] = _write(
            wide, out_root / tname / "data", batch_id, result.counts, partitioned=False, sort_by=sort_cols
        )
        result.schemas[tname] = [(f.name, sch.TYPE_NAMES.get(f.type, "string")) for f in wide.schema]
        result.hdu_columns[tname] = _columns_per_hdu(wide)
        for k in set(files_k.tolist()):
            tables_of_file.setdefault(int(k), set()).add(tname)

    for k, job, ap, n_hdus in ok_files:
        add_file_row(job, ap, "ok", None, n_hdus)
        rootname, proposid, year, instrume, detector = file_info[k]
        i = len(file_rows["path"]) - 1
        file_rows["rootname"][i] = rootname
        file_rows["proposid"][i] = proposid
        file_rows["year"][i] = year
        file_rows["instrume"][i] = instrume
        file_rows["detector"][i] = detector
        file_rows["tables"][i] = ",".join(sorted(tables_of_file.get(k, ())))
    files_tab = pa.table(file_rows, schema=sch.arrow_schema("files"))
    written["files"] = _write(files_tab, out_root / "files" / "data", batch_id)
    if conflict_rows["path"]:
        written["conflicts"] = _write(
            pa.table(conflict_rows, schema=sch.arrow_schema("conflicts")),
            out_root / "conflicts" / "data",
            batch_id,
        )
    result.files = written
    result.n_files = len(jobs)
    result.n_errors = len(result.errors)
    return result


def _files_with_invalid_cards(
    cards: pa.Table, header_file: list[int], header_hdu: list[int]
) -> dict[int, tuple[int, str, str]]:
    vt = pc.cast(cards.column("value_type"), pa.string())
    bad = cards.filter(pc.equal(vt, INVALID))
    out: dict[int, tuple[int, str, str]] = {}
    for h, kwd, reason in zip(
        bad.column("header").to_pylist(),
        pc.cast(bad.column("keyword"), pa.string()).to_pylist(),
        pc.cast(bad.column("comment"), pa.string()).to_pylist(),
        strict=True,
    ):
        out.setdefault(header_file[h], (header_hdu[h], kwd, reason))
    return out


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
