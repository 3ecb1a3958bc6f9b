"""Write ``schemas/headers/<table>.json``: the declared keyword columns of each wide header table.

The files are data (versioned with the repository): for every keyword column its FITS keyword, type,
the HDUs it appears in and a ``doc`` (the comment the headers give it). They are made from lakes ingested
from real files and the generated archive::

    python -m ingest.schemagen LAKE [LAKE ...] --out schemas/headers

Ingest reads them to fix column types before it has seen a value (a keyword that is an integer in one
file and a float in another is a ``double`` from the start, not a conflict later).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from lake import schema as sch
from lake.access import connect
from lake.tables import Lake, hdu_columns_of

VERSION = 1
_RANK = {"boolean": 0, "long": 1, "double": 2, "string": 3}  # a wider type wins when lakes disagree


def collect(lake_dir: str | Path) -> dict[str, dict[str, dict[str, Any]]]:
    """table → column → {keyword, type, hdus, doc} found in one lake."""
    lake = Lake(lake_dir)
    pins = lake.pins()
    con = connect(lake_dir)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for table in sorted(t for t in pins.tables if sch.is_header_table(t)):
        types = {f.name: sch.TYPE_NAMES.get(f.type, "string") for f in lake.iceberg_schema(pins, table)}
        hdus: dict[str, list[int]] = defaultdict(list)
        for h, cols in hdu_columns_of(lake.table(pins, table)).items():
            for c in cols:
                hdus[c].append(h)
        rows = con.execute(
            """SELECT keyword, mode(NULLIF(comment, '')) FROM cards
               WHERE path IN (SELECT path FROM files WHERE list_contains(string_split(tables, ','), ?))
                 AND value_type NOT IN ('text') GROUP BY keyword""",
            [table],
        ).fetchall()
        docs = {sch.column_name(k): (k, d or "") for k, d in rows if k}
        # A keyword whose values differ in kind across HDUs (CCDCHIP is 1 or 2 in SCI headers but 'DX'
        # in D2IMARR ones) takes the kind of the first HDU it occurs in; the others become conflicts.
        first_kind = con.execute(
            """SELECT keyword, arg_min(value_type, hdu), bool_or(value_type = 'float') FROM cards
               WHERE path IN (SELECT path FROM files WHERE list_contains(string_split(tables, ','), ?))
                 AND value_type IN ('int', 'float', 'bool', 'string') GROUP BY keyword""",
            [table],
        ).fetchall()
        for k, kind, any_float in first_kind:
            c = sch.column_name(k)
            if types.get(c) == "string" and kind in ("int", "float"):
                types[c] = "double" if kind == "float" or any_float else "long"
        spec: dict[str, dict[str, Any]] = {}
        for c, t in types.items():
            if c in sch.WIDE_BASE.names:
                continue
            kw, doc = docs.get(c, (c.upper(), ""))
            spec[c] = {"keyword": kw, "type": t, "hdus": sorted(set(hdus.get(c, []))), "doc": doc}
        out[table] = spec
    return out


def merge(found: list[dict[str, dict[str, dict[str, Any]]]]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for f in found:
        for table, cols in f.items():
            have = out.setdefault(table, {})
            for c, spec in cols.items():
                old = have.get(c)
                if old is None:
                    have[c] = dict(spec)
                    continue
                if _RANK[spec["type"]] > _RANK[old["type"]]:
                    numeric = {spec["type"], old["type"]} <= {"long", "double"}
                    old["type"] = spec["type"] if numeric else "string"
                old["hdus"] = sorted(set(old["hdus"]) | set(spec["hdus"]))
                old["doc"] = old["doc"] or spec["doc"]
    return out


def write(tables: dict[str, dict[str, dict[str, Any]]], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for table, cols in sorted(tables.items()):
        head = {
            "table": table,
            "version": VERSION,
            "doc": f"Keyword columns of the {table} header table (one row per HDU); hdus: where each occurs.",
        }
        # one column per line: readable, and diffs show which keyword changed
        lines = [json.dumps({"column": c, **cols[c]}) for c in sorted(cols)]
        text = json.dumps(head, indent=1)[:-2] + ',\n "columns": [\n  ' + ",\n  ".join(lines) + "\n ]\n}\n"
        p = out_dir / f"{table}.json"
        p.write_text(text)
        written.append(p)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("lakes", nargs="+")
    ap.add_argument("--out", default=str(sch.SCHEMA_DIR / "headers"))
    args = ap.parse_args()
    for p in write(merge([collect(x) for x in args.lakes]), Path(args.out)):
        print(p)


if __name__ == "__main__":
    main()
