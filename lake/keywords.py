"""Header keyword documentation from ``schemas/``: each keyword's doc, unit and type, and the tables and
HDUs that have it.

The declared wide tables (``schemas/headers/<table>.json``) give a keyword's doc as its header comment,
e.g. "exposure duration (seconds)--calculated"; the unit is read from the parentheses of that comment
when they name one (:data:`UNITS`), so that it is written once, in the schema. The fixed tables'
columns (``master``, ``files``, ...) are documented in ``schemas/<table>.json``.

See Also
--------
lake.schema : the schemas themselves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping
from functools import cache
from typing import Any

import pyarrow as pa

from lake.schema import FIXED_TABLES, SCHEMA_DIR

# the units header comments give in parentheses, as written -> as shown
UNITS = {
    "V": "V", "deg": "deg", "degrees": "deg", "dgC": "°C", "degC": "°C", "arcsec": "arcsec",
    "arc-sec": "arcsec", "arcsecs": "arcsec", "mas": "mas", "MJD": "MJD", "Modified Julian Date": "MJD",
    "sec": "s", "secs": "s", "seconds": "s", "s": "s", "ms": "ms", "pixels": "pixel", "Angstroms": "Å",
    "arcsec/sec": "arcsec/s", "arcsecs/sec": "arcsec/s", "arcsec/pixel": "arcsec/pixel", "km": "km",
    "km/sec": "km/s", "uA": "µA", "milliamps": "mA", "radians": "rad", "Rad": "rad", "meters": "m",
    "meters/second": "m/s", "revs/sec": "rev/s", "rads/sec": "rad/s", "yyyy-mm-dd": "date (yyyy-mm-dd)",
    "hh:mm:ss": "time (hh:mm:ss)", "deg. e of n": "deg (east of north)", "degrees RA": "deg",
    "deg. DEC": "deg",
}  # fmt: skip
_PARENS = re.compile(r"\(([^()]*)\)")
COLUMNS = ["keyword", "column", "type", "unit", "doc", "tables"]


def unit_of(doc: str) -> str:
    """The unit a header comment names in parentheses ('' if none): "(seconds)" -> "s"."""
    for m in _PARENS.findall(doc or ""):
        if m.strip() in UNITS:
            return UNITS[m.strip()]
    return ""


@cache
def _declared() -> tuple[dict[str, Any], ...]:
    """One entry per keyword and header table: keyword, column, type, doc, table, hdus."""
    out: list[dict[str, Any]] = []
    for path in sorted((SCHEMA_DIR / "headers").glob("*.json")):
        spec = json.loads(path.read_text())
        for c in spec["columns"]:
            out.append({**c, "table": spec["table"]})
    for name in FIXED_TABLES:
        path = SCHEMA_DIR / f"{name}.json"
        if path.exists():
            for c in json.loads(path.read_text())["columns"]:
                out.append({"column": c["name"], "keyword": "", "type": c["type"], "doc": c.get("doc", ""),
                            "table": name, "hdus": []})  # fmt: skip
    return tuple(out)


def _where(entries: list[dict[str, Any]]) -> str:
    """``uvisflt_1, uvisflt_4, irflt_0``: the lake's per-HDU tables (fixed tables by name)."""
    names: list[str] = []
    for e in entries:
        for t in [f"{e['table']}_{h}" for h in e["hdus"]] or [e["table"]]:
            if t not in names:
                names.append(t)
    return ", ".join(names)


def _merged(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """One keyword's entries as one row: the most common doc and type, every table that has it."""
    docs = [e["doc"] for e in entries if e["doc"] and e["keyword"]] or [e["doc"] for e in entries]
    doc = max(set(docs), key=docs.count) if docs else ""
    types = [e["type"] for e in entries]
    first = entries[0]
    return {"keyword": first["keyword"] or first["column"].upper(), "column": first["column"],
            "type": max(set(types), key=types.count), "unit": unit_of(doc), "doc": doc,
            "tables": _where(entries)}  # fmt: skip


@cache
def _by_column() -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for e in _declared():
        groups.setdefault(e["column"], []).append(e)
    # a keyword's own entries first: the header comment is the better doc than a fixed table's copy
    return {col: _merged(sorted(es, key=lambda e: not e["keyword"])) for col, es in groups.items()}


def keywords(
    text: str = "", *, table: str | None = None, present: Mapping[str, Collection[str]] | None = None
) -> pa.Table:
    """Every documented keyword (or column of a fixed table) whose name or doc contains ``text``
    (case-insensitive), with its type, unit, doc and the tables that have it; ``table`` keeps those in
    one table (``uvisflt_1`` or ``uvisflt``). Exact name matches first. ``present``: a lake's tables and
    their columns (:func:`lake.access.columns`); ``tables`` then names the lake's tables with the
    keyword's column, and keywords no table of the lake has are left out (the schemas declare
    instruments and file types a lake may not hold, and a lake's tables may have more columns).

    See Also
    --------
    column_help : the same, as help text for a result's columns.
    """
    t = text.strip().lower()
    rows = [
        r
        for r in (_by_column().values() if present is None else _in_lake(present))
        if (not t or t in r["keyword"].lower() or t in r["column"] or t in r["doc"].lower())
        and (table is None or re.search(rf"(^|, ){re.escape(table)}(_\d+)?(,|$)", r["tables"]))
    ]
    rows.sort(key=lambda r: (r["keyword"].lower() != t and r["column"] != t, r["keyword"]))
    return pa.Table.from_pylist(rows, schema=pa.schema([(c, pa.string()) for c in COLUMNS]))


def _in_lake(present: Mapping[str, Collection[str]]) -> list[dict[str, Any]]:
    """The documented keywords with the tables of ``present`` (name -> columns) that have their column,
    in natural order (``uvisflt_2`` before ``uvisflt_10``); those no table has are left out."""
    from lake.access import natural_key

    having: dict[str, list[str]] = {}
    # the per-HDU tables (uvisflt_1) and the fixed ones, as the schemas name them (not uvisflt, nor results)
    named = [n for n in present if n[-1:].isdigit() or n in FIXED_TABLES]
    keyed = {e["column"] for e in _declared() if e["keyword"]}  # (a header table's path, hdu... are not)
    for name in sorted(named, key=natural_key):
        for col in present[name]:
            if name in FIXED_TABLES or col.lower() in keyed:
                having.setdefault(col.lower(), []).append(name)
    return [{**r, "tables": ", ".join(having[c])} for c, r in _by_column().items() if c in having]


def column_help(columns: Iterable[str]) -> dict[str, str]:
    """``{column: "EXPTIME · exposure duration (seconds)--calculated · s · double"}`` for the result
    columns that are documented keywords or fixed-table columns (others are left out)."""
    known = _by_column()
    out = {}
    for c in columns:
        r = known.get(str(c).lower())
        if r:
            out[str(c)] = " · ".join(x for x in (r["keyword"], r["doc"], r["unit"], r["type"]) if x)
    return out


def unit(column: str) -> str:
    """The unit of a documented column ('' if it has none or is unknown): ``expstart`` -> ``MJD``."""
    r = _by_column().get(column.lower())
    return str(r["unit"]) if r else ""
