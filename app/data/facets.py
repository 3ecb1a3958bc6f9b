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
TOP = 12  # values shown per facet (the most frequent)


def counts(scope: Scope, f: DatasetFilter, top: int = TOP) -> dict[str, list[tuple[str, int]]]:
    """Per facet, its ``top`` most frequent values in the datasets matching ``f``, with their counts (the
    most frequent first; years in calendar order)."""
    where, args = f.where()
    parts = [
        f"SELECT '{name}' AS facet, CAST(v AS VARCHAR) AS value, count(*) AS n FROM "
        f"(SELECT {expr} AS v FROM m) WHERE v IS NOT NULL GROUP BY v"
        for name, (_, _, expr) in FACETS.items()
    ]
    sql = (
        f"WITH m AS (SELECT detector, filter, filetypes, proposid, targname, year FROM master{where}), "
        f"c AS ({' UNION ALL '.join(parts)}) "
        "SELECT facet, value, n FROM (SELECT *, row_number() OVER (PARTITION BY facet ORDER BY n DESC, "
        f"value) AS k FROM c) WHERE k <= {int(top)} ORDER BY facet, n DESC, value"
    )

    def make() -> dict[str, list[tuple[str, int]]]:
        out: dict[str, list[tuple[str, int]]] = {name: [] for name in FACETS}
        for r in scope.sql(sql, args).to_pylist():
            out[r["facet"]].append((r["value"], int(r["n"])))
        out["year"].sort(key=lambda vn: int(vn[0]))  # (the most frequent years, in calendar order)
        return out

    # (one scan of the result per filter and snapshot: Browse and Query ask again at every rerun)
    return {k: list(v) for k, v in scope.memo(("facets", sql, tuple(args)), make).items()}


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
