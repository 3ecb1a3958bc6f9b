"""Facets: counts of datasets per detector, filter, file type, proposal, target and year in a result,
each value a filter that narrows the result to exactly that count (#18).

All counts come from one query per result (a UNION ALL over one filtered scan), so a page with facets
costs one query more, whatever the number of facets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from app.data.browse import DatasetFilter
from app.data.scope import Scope

# facet name -> (label, the DatasetFilter field it sets, the master expression it counts)
FACETS: dict[str, tuple[str, str, str]] = {
    "detector": ("Detector", "detector", "detector"),
    "filter": ("Filter", "filter", "filter"),
    "filetype": ("File type", "filetype", "unnest(string_split(filetypes, ','))"),
    "proposal": ("Proposal", "proposid", "proposid"),
    "target": ("Target", "targname", "targname"),
    "year": ("Year", "year", "year"),
}
INTEGER = {"proposal", "year"}
# values shown per facet, the most frequent first: every year and detector; the drop-downs (filter,
# proposal, target) take a few hundred, as many as a person scrolls through; a facet cut short says so
LIMITS = {"detector": 12, "filetype": 40, "year": 100, "filter": 300, "proposal": 300, "target": 300}


def counts(scope: Scope, f: DatasetFilter, top: int | None = None) -> dict[str, list[tuple[str, int]]]:
    """Per facet, its most frequent values in the datasets matching ``f`` (``top``, or :data:`LIMITS`),
    with their counts (the most frequent first; years in calendar order).

    See Also
    --------
    counts_and_totals : the same, with each facet's number of distinct values
    """
    return counts_and_totals(scope, f, top)[0]


def counts_and_totals(
    scope: Scope, f: DatasetFilter, top: int | None = None
) -> tuple[dict[str, list[tuple[str, int]]], dict[str, int]]:
    """:func:`counts`, and per facet the number of its distinct values (more than shown when cut short)."""
    where, args = f.where()
    parts = [
        f"SELECT '{name}' AS facet, CAST(v AS VARCHAR) AS value, count(*) AS n FROM "
        f"(SELECT {expr} AS v FROM m) WHERE v IS NOT NULL GROUP BY v"
        for name, (_, _, expr) in FACETS.items()
    ]
    limit = (
        " CASE facet "
        + " ".join(f"WHEN '{name}' THEN {int(top if top is not None else LIMITS[name])}" for name in FACETS)
        + " END"
    )
    sql = (
        f"WITH m AS (SELECT detector, filter, filetypes, proposid, targname, year FROM master{where}), "
        f"c AS ({' UNION ALL '.join(parts)}) "
        "SELECT facet, value, n, total FROM (SELECT *, "
        "row_number() OVER (PARTITION BY facet ORDER BY n DESC, value) AS k, "
        f"count(*) OVER (PARTITION BY facet) AS total FROM c) WHERE k <={limit} "
        "ORDER BY facet, n DESC, value"
    )

    def make() -> tuple[dict[str, list[tuple[str, int]]], dict[str, int]]:
        out: dict[str, list[tuple[str, int]]] = {name: [] for name in FACETS}
        totals = dict.fromkeys(FACETS, 0)
        for r in scope.sql(sql, args).to_pylist():
            out[r["facet"]].append((r["value"], int(r["n"])))
            totals[r["facet"]] = int(r["total"])
        out["year"].sort(key=lambda vn: int(vn[0]))  # (the most frequent years, in calendar order)
        return out, totals

    # (one scan of the result per filter and snapshot: Browse and Query ask again at every rerun)
    got, totals = scope.memo(("facets", sql, tuple(args)), make)
    return {k: list(v) for k, v in got.items()}, dict(totals)


def narrowed(f: DatasetFilter, picked: Mapping[str, str | None]) -> DatasetFilter:
    """``f`` with each picked facet value as an exact condition (replacing the form's own, if any)."""
    changes: dict[str, Any] = {}
    for name, value in picked.items():
        if name not in FACETS or value in (None, ""):
            continue
        field = FACETS[name][1]
        changes[field] = int(value) if name in INTEGER else value
    return dataclasses.replace(f, **changes)


def table(c: dict[str, list[tuple[str, int]]]) -> pa.Table:
    """The counts as a table (facet, value, datasets), for downloads and tests."""
    rows = [(k, v, n) for k, vs in c.items() for v, n in vs]
    return pa.table(
        {
            "facet": [r[0] for r in rows],
            "value": [r[1] for r in rows],
            "datasets": pa.array([r[2] for r in rows], pa.int64()),
        }
    )
