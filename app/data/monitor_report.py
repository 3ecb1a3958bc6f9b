"""A monitor's report as the site shows it: results from the lake, filtered, and plots drawn from them.

Results are read through the viewer's :class:`app.data.scope.Scope` (a guest sees results of public inputs
only); the trend summary is the monitor's own ``trend()`` of the results shown (so it follows the filters
and the viewer's scope), turned into tables people read by the monitor's ``tables``; the PNGs are the
products the last run wrote under ``<lake>/reports/monitors/<name>/`` (from every input: team only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from app.data.scope import Scope
from monitors.calibration.summary import MJD_EPOCH
from monitors.framework import REFUSED, Monitor, table_name
from monitors.registry import get

GROUP_MAX = 24  # a string or integer column with at most this many values can be a filter
MJD_COLUMNS = ("expstart", "window_end", "anneal_mjd", "first_seen")  # shown as dates
HIDDEN = ("hot_pixels", "inputs", "stimuli")  # long lists, left to SQL: not for a table cell
COUNTS = ("n_", "npix", "nsamp", "area")  # integer columns that count things: no filter on them
# points a trend chart draws by default: 17 years of a monitor are 6,000 results, whose chart took the
# browser ~1 s to draw (Vega interprets its expressions point by point) on every view (#18)
CHART_POINTS = 1500
# results a Monitors page's table shows at first (newest first; more when asked): 500 rows of every
# column were ~0.1 s of the browser's time on every view of the page (#18)
TABLE_ROWS = 50


@dataclass(frozen=True)
class Report:
    monitor: Monitor
    results: pa.Table  # filtered, newest first
    summary: dict[str, Any]  # the monitor's trend() of the measured rows among ``results``
    pngs: list[Path]
    groups: dict[str, list[Any]]  # filterable columns and their values (of all results)
    tables: dict[str, list[dict[str, Any]]]  # the summary as titled tables with units

    @property
    def measured(self) -> pa.Table:
        """The results with numbers (refused inputs left out)."""
        t = self.results
        if REFUSED not in t.column_names:
            return t
        return t.filter(pc.is_null(t.column(REFUSED))).drop_columns([REFUSED])


def results(scope: Scope, name: str) -> pa.Table:
    """All result rows of monitor ``name`` the viewer may see (empty before its first run); read once
    per scope (a monitor run publishes a new lake snapshot, hence a new scope)."""
    m = get(name)
    table = table_name(m.name)
    if not scope.has(table):
        return m.schema.append(pa.field("path", pa.string())).empty_table()
    return scope.memo(("monitor_results", table), lambda: scope.sql(f'SELECT * FROM "{table}"'))


# what an analyst calls the columns results are filtered by (others: their name, spaced and capitalized)
LABELS = {"amp": "Amplifier", "chip": "Chip", "targname": "Target", "pr_inv_l": "PI (last name)",
          "proposid": "Proposal", "samp_seq": "Sample sequence (SAMP_SEQ)", "filter": "Filter",
          "detector": "Detector", "aperture": "Aperture", "ccdamp": "Amplifiers (CCDAMP)"}  # fmt: skip


def label(column: str) -> str:
    """``pr_inv_l`` -> "PI (last name)"; ``cte_pixels`` -> "Cte pixels"."""
    return LABELS.get(column, column.replace("_", " ").capitalize())


def group_columns(t: pa.Table) -> dict[str, list[Any]]:
    """The columns a monitor's results can be filtered by, with their values: text or integer columns
    of 2 to GROUP_MAX values, not names of files or runs."""
    out = {}
    for f in t.schema:
        if (
            f.name in {"rootname", "path", "run_id", "inputs", "hot_pixels"}
            or f.name.endswith("_path")
            or f.name.startswith(COUNTS)
            or not (pa.types.is_string(f.type) or pa.types.is_integer(f.type))
        ):
            continue
        values = pc.unique(t.column(f.name).drop_null()).to_pylist()
        if 1 < len(values) <= GROUP_MAX:
            out[f.name] = sorted(values)
    return out


def report(
    scope: Scope,
    name: str,
    mjd_range: tuple[float, float] | None = None,
    where: dict[str, list[Any]] | None = None,
) -> Report:
    """Results of ``name`` within ``mjd_range`` (EXPSTART) and with ``where`` column values, plus plots;
    computed once per scope and choice (the trend fit is most of a Monitors page's server time)."""
    return scope.memo(
        ("monitor_report", name, mjd_range, choice_key(where)), lambda: _report(scope, name, mjd_range, where)
    )


def choice_key(where: dict[str, list[Any]] | None) -> tuple[Any, ...]:
    """The column values picked (``where``) as a memo key: the same picks give the same key."""
    return tuple(sorted((c, tuple(v)) for c, v in (where or {}).items() if v))


def _report(
    scope: Scope, name: str, mjd_range: tuple[float, float] | None, where: dict[str, list[Any]] | None
) -> Report:
    m = get(name)
    t = results(scope, name)
    groups = group_columns(t)
    if mjd_range and "expstart" in t.column_names and t.num_rows:
        e = t.column("expstart")
        t = t.filter(pc.and_(pc.greater_equal(e, mjd_range[0]), pc.less_equal(e, mjd_range[1])))
    for col, values in (where or {}).items():
        if values and col in t.column_names:
            t = t.filter(pc.is_in(t.column(col), value_set=pa.array(values, t.schema.field(col).type)))
    if "expstart" in t.column_names and t.num_rows:
        t = t.sort_by([("expstart", "descending")])
    out = scope.lake_root / "reports" / "monitors" / name
    # the PNGs are drawn from every input, proprietary ones included: team members only
    pngs = sorted(out.glob("*.png")) if scope.viewer.team else []
    rep = Report(m, t, {}, pngs, groups, {})
    measured = rep.measured
    if not measured.num_rows:
        return rep
    summary = m.trend(measured)
    return Report(m, t, summary, pngs, groups, m.tables(summary) if m.tables else {})


def mjd_of(d: date) -> float:
    """The MJD of a date's midnight (UTC)."""
    return float((d - MJD_EPOCH).days)


def date_of(mjd: float) -> date:
    return MJD_EPOCH + timedelta(days=float(mjd))


def shown(t: pa.Table, first: list[str] | None = None) -> pa.Table:
    """The results as a table shows them: the columns ``first`` (the monitor's) first, MJD columns as
    UTC date-times (``anneal_mjd`` as ``anneal``), long lists left out."""
    epoch = datetime(MJD_EPOCH.year, MJD_EPOCH.month, MJD_EPOCH.day)
    names = [n for n in first or [] if n in t.column_names]
    cols = {}
    for name in names + [n for n in t.column_names if n not in names]:
        if name in HIDDEN:
            continue
        col = t.column(name)
        if name in MJD_COLUMNS and pa.types.is_floating(col.type):
            col = pa.array([None if v is None else epoch + timedelta(days=v) for v in col.to_pylist()],
                           pa.timestamp("ms"))  # fmt: skip
            name = name.removesuffix("_mjd")
        cols[name] = col
    return pa.table(cols)


def chart(rep: Report, max_points: int | None = None) -> dict[str, Any] | None:
    """The monitor's Vega-Lite trend drawn from the (filtered) results; with ``max_points``, from
    :func:`thinned` results."""
    if rep.monitor.vega is None or not rep.results.num_rows:
        return None
    t = thinned(rep.results, list(rep.groups), max_points) if max_points else rep.results
    spec: dict[str, Any] = rep.monitor.vega(t)
    return spec


def thinned(t: pa.Table, series: list[str], max_points: int) -> pa.Table:
    """About ``max_points`` rows of ``t``: every k-th row of each series (rows with the same values in
    the ``series`` columns, e.g. a chip and amp: each keeps its share, in its order), the same k for
    all, so that each series is drawn over its whole time range; ``t`` itself if it is small enough."""
    if t.num_rows <= max_points:
        return t
    step = -(-t.num_rows // max_points)
    keys = list(zip(*(t.column(c).to_pylist() for c in series if c in t.column_names), strict=True))
    if not keys:
        keys = [()] * t.num_rows
    seen: dict[tuple[Any, ...], int] = {}
    keep = []
    for i, k in enumerate(keys):
        n = seen.get(k, 0)
        seen[k] = n + 1
        if n % step == 0:
            keep.append(i)
    return t.take(pa.array(keep, pa.int64()))
