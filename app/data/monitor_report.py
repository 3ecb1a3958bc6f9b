"""A monitor's report as the site shows it: results from the lake, filtered, and plots drawn from them.

Results are read through the viewer's :class:`app.data.scope.Scope` (a guest sees results of public inputs
only); the trend summary and PNGs are the products the last run wrote under
``<lake>/reports/monitors/<name>/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from app.data.scope import Scope
from monitors.framework import Monitor, table_name
from monitors.registry import get

GROUP_MAX = 24  # a string or integer column with at most this many values can be a filter


@dataclass(frozen=True)
class Report:
    monitor: Monitor
    results: pa.Table  # filtered, newest first
    summary: dict[str, Any]
    pngs: list[Path]
    groups: dict[str, list[Any]]  # filterable columns and their values (of all results)


def results(scope: Scope, name: str) -> pa.Table:
    """All result rows of monitor ``name`` the viewer may see (empty before its first run)."""
    m = get(name)
    table = table_name(m.name)
    if not scope.has(table):
        return m.schema.append(pa.field("path", pa.string())).empty_table()
    return scope.sql(f'SELECT * FROM "{table}"')


def group_columns(t: pa.Table) -> dict[str, list[Any]]:
    out = {}
    for f in t.schema:
        if f.name in {"rootname", "path", "run_id", "inputs", "hot_pixels"} or not (
            pa.types.is_string(f.type) or pa.types.is_integer(f.type)
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
    """Results of ``name`` within ``mjd_range`` (EXPSTART) and with ``where`` column values, plus plots."""
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
    # the summary and PNGs are drawn from every input, proprietary ones included: team members only
    team = scope.viewer.team
    summary = json.loads((out / "trend.json").read_text()) if team and (out / "trend.json").exists() else {}
    pngs = sorted(out.glob("*.png")) if team else []
    return Report(m, t, summary, pngs, groups)


def chart(rep: Report) -> dict[str, Any] | None:
    """The monitor's Vega-Lite trend drawn from the (filtered) results."""
    if rep.monitor.vega is None or not rep.results.num_rows:
        return None
    spec: dict[str, Any] = rep.monitor.vega(rep.results)
    return spec
