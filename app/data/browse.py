"""What the site shows: archive totals, proposals → visits → datasets, a dataset's files, keyword plots.

Every function reads through a :class:`app.data.scope.Scope`, so a guest's totals, listings and plots are
computed from public rows only. Results are Arrow tables (the site turns them into frames and charts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa

from app.data.scope import Scope
from lake.catalog import _quote
from lake.errors import QueryError


def totals(scope: Scope) -> dict[str, Any]:
    """Files, datasets, proposals and bytes the viewer may see, plus the latest ingest time."""
    sql = (
        "SELECT count(*) AS files, count(DISTINCT rootname) AS datasets, count(DISTINCT proposid) AS "
        "proposals, coalesce(sum(size), 0)::BIGINT AS bytes, max(ingested_at) AS last_ingest, "
        "count(*) FILTER (WHERE status = 'error') AS errors FROM files WHERE status != 'missing'"
    )
    row = dict(scope.memo(("totals",), lambda: scope.sql(sql).to_pylist()[0]))
    row["snapshot_committed_at"] = scope.committed_at
    return row


def by_detector_and_type(scope: Scope) -> pa.Table:
    """File counts and bytes per detector and file type."""
    sql = (
        "SELECT coalesce(detector, '?') AS detector, filetype, count(*) AS files, sum(size)::BIGINT AS bytes "
        "FROM files WHERE status != 'missing' GROUP BY ALL ORDER BY detector, files DESC"
    )
    return scope.memo(("by_detector_and_type",), lambda: scope.sql(sql))


def proposals(scope: Scope) -> pa.Table:
    """One row per proposal: PI, datasets, visits, first and last observation."""
    sql = (
        "SELECT proposid, any_value(pr_inv_l) AS pi, count(*) AS datasets, count(DISTINCT visit) AS visits, "
        "min(date_obs) AS first_obs, max(date_obs) AS last_obs, string_agg(DISTINCT detector, ',') AS "
        "detectors FROM master GROUP BY proposid ORDER BY proposid"
    )
    return scope.memo(("proposals",), lambda: scope.sql(sql))


def visits(scope: Scope, proposid: int) -> pa.Table:
    return scope.sql(
        "SELECT visit, count(*) AS datasets, min(date_obs) AS first_obs, string_agg(DISTINCT targname, ',') "
        "AS targets FROM master WHERE proposid = ? GROUP BY visit ORDER BY visit",
        [proposid],
    )


@dataclass(frozen=True)
class DatasetFilter:
    """The Browse and Query forms: every field optional; text fields match case-insensitively."""

    proposid: int | None = None
    visit: str | None = None
    detector: str | None = None
    filter: str | None = None
    target: str | None = None  # substring of TARGNAME
    obstype: str | None = None
    imagetyp: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    min_exptime: float | None = None
    # facets (#18): exact values picked from the counts beside a result
    targname: str | None = None
    filetype: str | None = None
    year: int | None = None

    def where(self) -> tuple[str, list[Any]]:
        conds: list[str] = []
        args: list[Any] = []
        for col, val in (
            ("proposid", self.proposid),
            ("visit", self.visit),
            ("upper(detector)", self.detector and self.detector.upper()),
            ("upper(filter)", self.filter and self.filter.upper()),
            ("upper(obstype)", self.obstype and self.obstype.upper()),
            ("upper(imagetyp)", self.imagetyp and self.imagetyp.upper()),
            ("targname", self.targname),
            ("year", self.year),
        ):
            if val not in (None, ""):
                conds.append(f"{col} = ?")
                args.append(val)
        if self.target:
            # spaces, hyphens, underscores and dots do not count: "NGC 4485" finds NGC4485 and NGC-4485
            conds.append("(targname ILIKE ? OR regexp_replace(upper(targname), '[ _.-]+', '', 'g') LIKE ?)")
            args += [f"%{self.target}%", "%" + re.sub(r"[\s_.\-]+", "", self.target.upper()) + "%"]
        if self.date_from:
            conds.append("date_obs >= ?")
            args.append(self.date_from.isoformat())
        if self.date_to:
            conds.append("date_obs <= ?")
            args.append(self.date_to.isoformat())
        if self.min_exptime is not None:
            conds.append("exptime >= ?")
            args.append(self.min_exptime)
        if self.filetype:
            conds.append("list_contains(string_split(filetypes, ','), ?)")
            args.append(self.filetype)
        return (" WHERE " + " AND ".join(conds) if conds else ""), args

    def describe(self) -> str:
        """The conditions in words (shown beside the results, so that none can go unseen): ``DATE-OBS
        2015-01-01 to 2015-01-31, TARGNAME contains 'NGC'``; ``all datasets`` without any."""
        parts = [
            f"{label} {val}"
            for label, val in (
                ("proposal", self.proposid), ("visit", self.visit), ("detector", self.detector),
                ("filter", self.filter), ("OBSTYPE", self.obstype), ("IMAGETYP", self.imagetyp),
                ("TARGNAME", self.targname), ("file type", self.filetype), ("year", self.year),
            )
            if val not in (None, "")
        ]  # fmt: skip
        if self.target:
            parts.append(f"TARGNAME contains {self.target!r}")
        if self.date_from and self.date_to:
            parts.append(f"DATE-OBS {self.date_from.isoformat()} to {self.date_to.isoformat()}")
        elif self.date_from or self.date_to:
            side = "from" if self.date_from else "until"
            parts.append(f"DATE-OBS {side} {(self.date_from or self.date_to).isoformat()}")  # type: ignore[union-attr]
        if self.min_exptime is not None:
            parts.append(f"EXPTIME ≥ {self.min_exptime:g} s")
        return ", ".join(parts) if parts else "all datasets"


DATASET_COLUMNS = (
    "rootname, proposid, visit, detector, filter, aperture, targname, obstype, imagetyp, "
    "date_obs, time_obs, exptime, subarray, asn_id, filetypes"
)


def datasets(scope: Scope, f: DatasetFilter | None = None, limit: int = 1000, offset: int = 0) -> pa.Table:
    """Datasets matching ``f``, newest first."""
    where, args = (f or DatasetFilter()).where()
    return scope.sql(
        f"SELECT {DATASET_COLUMNS} FROM master{where} ORDER BY date_obs DESC, time_obs DESC, rootname "
        f"LIMIT {int(limit)} OFFSET {int(offset)}",
        args,
    )


def count_datasets(scope: Scope, f: DatasetFilter | None = None) -> int:
    where, args = (f or DatasetFilter()).where()
    return scope.memo(
        ("count_datasets", where, tuple(args)),
        lambda: int(scope.sql(f"SELECT count(*) AS n FROM master{where}", args).column("n")[0].as_py()),
    )


def choices(scope: Scope, column: str) -> list[str]:
    """Distinct values of a master column (for filter drop-downs)."""
    if column not in {"detector", "filter", "obstype", "imagetyp", "targname", "aperture"}:
        raise QueryError(f"no filter on {column!r}")
    sql = f"SELECT DISTINCT {column} AS v FROM master WHERE {column} IS NOT NULL ORDER BY v"
    return list(
        scope.memo(("choices", column), lambda: [str(v) for v in scope.sql(sql).column("v").to_pylist()])
    )


def dataset(scope: Scope, rootname: str) -> dict[str, Any]:
    """The master row of a dataset the viewer may see."""
    scope.require_dataset(rootname)
    rows = scope.sql("SELECT * FROM master WHERE rootname = ?", [rootname]).to_pylist()
    return rows[0]


def files(scope: Scope, rootname: str) -> pa.Table:
    """The archive files of a dataset (association products are listed under their own rootname)."""
    scope.require_dataset(rootname)
    return scope.sql(
        "SELECT path, filetype, size, n_hdus, status, error, mtime FROM files WHERE rootname = ? "
        "ORDER BY filetype",
        [rootname],
    )


def hdus(scope: Scope, path: str) -> pa.Table:
    """Per HDU of a file: index, XTENSION, EXTNAME, EXTVER and image size, from the ``cards`` table."""
    scope.require_file(path)
    return scope.file_sql(
        "cards",
        [path],
        "SELECT hdu, max(CASE WHEN keyword = 'XTENSION' THEN value_str END) AS xtension, "
        "max(CASE WHEN keyword = 'EXTNAME' THEN value_str END) AS extname, "
        "max(CASE WHEN keyword = 'EXTVER' THEN value_int END) AS extver, "
        "max(CASE WHEN keyword = 'NAXIS' THEN value_int END) AS naxis, "
        "max(CASE WHEN keyword = 'NAXIS1' THEN value_int END) AS naxis1, "
        "max(CASE WHEN keyword = 'NAXIS2' THEN value_int END) AS naxis2, count(*) AS cards "
        "FROM {rows} WHERE path = ? GROUP BY hdu ORDER BY hdu",
        [path],
    )


def archive_path(scope: Scope, path: str) -> str:
    """Where a visible file lives (local path or fsspec URL)."""
    scope.require_file(path)
    root = str(scope.cfg.get("archive", ""))
    return f"{root.rstrip('/')}/{path}" if "://" in root else str(Path(root).resolve() / path)


def file_bytes(scope: Scope, path: str) -> bytes:
    """A visible archive file's bytes (for downloads)."""
    import fsspec

    with fsspec.open(archive_path(scope, path), "rb") as fh:
        data: bytes = fh.read()
    return data


def numeric_columns(scope: Scope, table: str) -> list[str]:
    """Columns of ``table`` that can go on a plot axis (numbers and dates)."""
    keep = ("INT", "DOUBLE", "FLOAT", "DECIMAL", "BIGINT", "TIMESTAMP", "DATE", "VARCHAR")

    def make() -> list[str]:
        t = scope.sql(f"DESCRIBE {_quote(table)}")
        return [
            n
            for n, ty in zip(t.column(0).to_pylist(), t.column(1).to_pylist(), strict=True)
            if ty.startswith(keep)
        ]

    return list(scope.memo(("numeric_columns", table), make))


def keyword_plot(
    scope: Scope, table: str, x: str, y: str, where: str = "", colour: str | None = None, limit: int = 50000
) -> pa.Table:
    """``x`` against ``y`` (and an optional colour column) across every matching row of ``table``.

    ``where`` is a SQL condition; it runs on the viewer's sandboxed scope like console SQL.
    """
    if table not in scope.tables:
        raise QueryError(f"no table {table!r}; pick one of the lake's tables")
    cols = scope.columns(table)
    for c in (x, y, colour):
        if c and c not in cols:
            raise QueryError(f"{table} has no column {c!r}")
    sel = [f"{_quote(x)} AS x", f"{_quote(y)} AS y"]
    sel += ["rootname"] if "rootname" in cols else []
    sel += [f"{_quote(colour)} AS colour"] if colour else []
    sql = f"SELECT {', '.join(sel)} FROM {_quote(table)}"
    if where.strip():
        sql += f" WHERE {where}"
    sql += f" LIMIT {int(limit)}"
    return scope.console(sql, max_rows=limit).table


def visit_neighbours(scope: Scope, d: dict[str, Any]) -> tuple[str | None, str | None, int, int]:
    """The datasets before and after ``d`` in its visit (by DATE-OBS, TIME-OBS, rootname), its position
    (1-based) and the visit's size: one query."""
    roots = (
        scope.sql(
            "SELECT rootname FROM master WHERE proposid IS NOT DISTINCT FROM ? "
            "AND visit IS NOT DISTINCT FROM ? "
            "ORDER BY date_obs, time_obs, rootname",
            [d["proposid"], d["visit"]],
        )
        .column("rootname")
        .to_pylist()
    )
    if d["rootname"] not in roots:
        return None, None, 0, len(roots)
    i = roots.index(d["rootname"])
    return (roots[i - 1] if i else None), (roots[i + 1] if i + 1 < len(roots) else None), i + 1, len(roots)


def association_of(d: dict[str, Any]) -> str | None:
    """The rootname of the association ``d`` belongs to (or is), None if it has none."""
    a = str(d.get("asn_id") or "").strip().lower()
    return a if a and a != "none" else None


def members(scope: Scope, asn_rootname: str) -> pa.Table:
    """The member datasets of association ``asn_rootname`` (its ASN_ID, in lower case), without the
    association's own products, in exposure order."""
    return scope.sql(
        f"SELECT {DATASET_COLUMNS} FROM master WHERE lower(asn_id) = ? AND rootname <> ? "
        "ORDER BY date_obs, time_obs, rootname",
        [asn_rootname, asn_rootname],
    )


def datasets_starting(scope: Scope, prefix: str, limit: int = 50) -> pa.Table:
    """The datasets the viewer may see whose rootname starts with ``prefix`` (any case), by rootname; at
    most ``limit`` (suggestions for a Dataset box given part of a rootname)."""
    p = prefix.strip().lower()
    return scope.sql(
        f"SELECT {DATASET_COLUMNS} FROM master WHERE ? <> '' AND starts_with(rootname, ?) ORDER BY rootname "
        "LIMIT ?",
        [p, p, int(limit)],
    )
