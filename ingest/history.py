"""Header versions: what changed in a file's header when an ingest reads the changed file again.

Before a batch's commit deletes a changed file's old rows (copy-on-write), its old cards are read from
the pinned data files that hold them (:meth:`lake.tables.Lake.holding`: never the whole ``cards`` table)
and compared with the batch's new cards; the differences go to ``card_changes`` in the same commit as
the new rows, so a reader sees both or neither. Only changes are stored: one ``file`` row per version
(status, size and mtime before and after) and one row per card added, removed or changed.

Cards are matched by HDU, keyword and occurrence (the n-th card of that keyword in the HDU). Keywords
that appear more than once in an HDU on either side (HISTORY, COMMENT, blank cards) are aligned as
sequences instead (:mod:`difflib`), so a HISTORY line inserted in the middle is one ``added`` row, not a
cascade of ``changed`` ones. A file without cards on one side (unreadable before or now) gets its
``file`` row only: there is no header to compare with.
"""

from __future__ import annotations

import difflib
import os
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lake import schema as sch
from lake.catalog import sql_in, view_sql
from lake.tables import Lake, Pins

TABLE = "card_changes"

# the value as text: what SQL on card_changes compares (the exact card is in the image)
_VALUE = """CASE value_type
    WHEN 'int' THEN coalesce(CAST(value_int AS VARCHAR), value_str)
    WHEN 'float' THEN CAST(value_float AS VARCHAR)
    WHEN 'bool' THEN CASE WHEN value_bool THEN 'T' ELSE 'F' END
    WHEN 'undefined' THEN NULL
    ELSE value_str END"""

_CARDS = f"""SELECT path, rootname, hdu, coalesce(keyword, '') AS keyword, position, image, {_VALUE} AS value,
    CAST(row_number() OVER (PARTITION BY path, hdu, keyword ORDER BY position) - 1 AS INTEGER) AS occ,
    count(*) OVER (PARTITION BY path, hdu, keyword) AS cnt
FROM {{src}} WHERE path IN (SELECT path FROM both_sides)"""

# cards that differ, matched by occurrence; rows of repeated keywords are aligned again in Python
_DIFF = """SELECT coalesce(n.path, o.path) AS path, coalesce(n.rootname, o.rootname) AS rootname,
    coalesce(n.hdu, o.hdu) AS hdu, coalesce(n.keyword, o.keyword) AS keyword, coalesce(n.occ, o.occ) AS occ,
    o.position AS old_position, n.position AS new_position, o.value AS old_value, n.value AS new_value,
    o.image AS old_image, n.image AS new_image, greatest(coalesce(o.cnt, 0), coalesce(n.cnt, 0)) AS cnt
FROM o FULL JOIN n ON o.path = n.path AND o.hdu = n.hdu AND o.keyword = n.keyword AND o.occ = n.occ
WHERE o.image IS DISTINCT FROM n.image"""

_ROW = ("path", "rootname", "hdu", "keyword", "occ", "old_position", "new_position",
        "old_value", "new_value", "old_image", "new_image")  # fmt: skip


def changes(
    lake: Lake, pins: Pins, paths: Iterable[str], new_cards: list[str], new_files: list[str]
) -> pa.Table | None:
    """The ``card_changes`` rows of the known files ``paths`` read again: their old cards and ``files``
    rows as pinned, against the batch's Parquet ``new_cards`` and ``new_files`` (None if no path)."""
    paths = sorted(set(paths))
    if not paths:
        return None
    con = duckdb.connect(config={"threads": 2})
    try:
        con.register("changed", pa.table({"path": pa.array(paths, pa.string())}))
        for name, table, files in (
            ("old_cards", "cards", lake.holding(pins, "cards", paths)),
            ("new_cards", "cards", new_cards),
            ("old_files", "files", lake.holding(pins, "files", paths)),
            ("new_files", "files", new_files),
        ):
            # of the pinned files, the row groups holding the paths only (statistics, Bloom filters)
            where = sql_in("path", paths) if name.startswith("old") else ""
            con.execute(view_sql(name, files, sch.arrow_schema(table), where))
        versions = _versions(con)
        con.execute(
            "CREATE TEMP TABLE both_sides AS SELECT DISTINCT path FROM old_cards WHERE path IN "
            "(SELECT path FROM changed) INTERSECT SELECT DISTINCT path FROM new_cards WHERE path IN "
            "(SELECT path FROM changed)"
        )
        con.execute(f"CREATE TEMP TABLE o AS {_CARDS.format(src='old_cards')}")
        con.execute(f"CREATE TEMP TABLE n AS {_CARDS.format(src='new_cards')}")
        rows = _card_rows(con)
    finally:
        con.close()
    return _table(versions, rows, pins.tables.get("cards"))


def _versions(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    """Per changed path, its ``file`` row: rootname, status, size and mtime before and after."""
    got = con.execute(
        "SELECT c.path, coalesce(n.rootname, o.rootname), o.status, n.status, o.size, n.size, o.mtime, "
        "n.mtime FROM changed c LEFT JOIN old_files o USING (path) LEFT JOIN new_files n USING (path) "
        "ORDER BY c.path"
    ).fetchall()
    keys = ("rootname", "old_value", "new_value", "old_size", "new_size", "old_mtime", "new_mtime")
    return {r[0]: dict(zip(keys, r[1:], strict=True)) for r in got}


def _card_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The card rows: unique keywords from the occurrence join, repeated ones aligned as sequences."""
    diff = con.sql(_DIFF).to_arrow_table()
    simple = diff.filter(pc.less_equal(diff.column("cnt"), 1)).select(list(_ROW)).to_pylist()
    repeated = diff.filter(pc.greater(diff.column("cnt"), 1)).select(["path", "hdu", "keyword"])
    if not repeated.num_rows:
        return simple
    con.register("groups", repeated)
    con.execute("CREATE TEMP TABLE g AS SELECT DISTINCT * FROM groups")
    sides = {}
    for side in ("o", "n"):
        sides[side] = con.execute(
            f"SELECT {side}.path, {side}.hdu, {side}.keyword, rootname, position, image, value "
            f"FROM {side} JOIN g USING (path, hdu, keyword) ORDER BY path, hdu, keyword, position"
        ).fetchall()
    return simple + _aligned(sides["o"], sides["n"])


def _aligned(old: list[tuple[Any, ...]], new: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Rows for repeated keywords: per (path, HDU, keyword), the old and new cards aligned by difflib."""
    groups: dict[tuple[Any, ...], tuple[list[Any], list[Any]]] = {}
    for side, cards in ((0, old), (1, new)):
        for path, hdu, kw, root, pos, img, val in cards:
            groups.setdefault((path, hdu, kw), ([], []))[side].append((root, pos, img, val))
    out = []
    for (path, hdu, kw), (a, b) in groups.items():
        sm = difflib.SequenceMatcher(None, [c[2] for c in a], [c[2] for c in b], autojunk=False)
        for tag, i1, i2, j1, j2 in sm.get_opcodes():
            if tag == "equal":
                continue
            for k in range(max(i2 - i1, j2 - j1)):
                o = a[i1 + k] if i1 + k < i2 else None
                n = b[j1 + k] if j1 + k < j2 else None
                out.append(
                    {
                        "path": path, "rootname": (n or o)[0], "hdu": hdu, "keyword": kw,  # type: ignore[index]
                        "occ": j1 + k if n is not None else i1 + k,
                        "old_position": o and o[1], "new_position": n and n[1],
                        "old_value": o and o[3], "new_value": n and n[3],
                        "old_image": o and o[2], "new_image": n and n[2],
                    }
                )  # fmt: skip
    return out


def _table(
    versions: dict[str, dict[str, Any]], cards: list[dict[str, Any]], old_snapshot: int | None
) -> pa.Table:
    """The rows of ``card_changes``: per path its ``file`` row, then its cards (by HDU and position)."""
    now = datetime.now(UTC)
    rows = []
    for path, v in versions.items():
        rows.append({"path": path, "kind": "file", **v})
    for c in cards:
        kind = "added" if c["old_image"] is None else "removed" if c["new_image"] is None else "changed"
        v = versions[c["path"]]
        stamps = {k: v[k] for k in ("old_size", "new_size", "old_mtime", "new_mtime")}
        occurrence = c.pop("occ")
        rows.append({**c, "occurrence": occurrence, "kind": kind, **stamps})
    for r in rows:
        r["ingested_at"], r["old_snapshot"] = now, old_snapshot
    rows.sort(key=lambda r: (r["path"], r["kind"] != "file", r.get("hdu") or 0, _position(r)))
    return pa.Table.from_pylist(rows, schema=sch.arrow_schema(TABLE))


def _position(r: dict[str, Any]) -> int:
    p = r.get("new_position")
    return int(p if p is not None else r.get("old_position") or 0)


def removed(lake: Lake, pins: Pins, paths: list[str]) -> pa.Table | None:
    """The ``file`` rows of files gone from the archive (new status ``missing``)."""
    if not paths:
        return None
    con = duckdb.connect(config={"threads": 2})
    try:
        con.register("changed", pa.table({"path": pa.array(sorted(paths), pa.string())}))
        old = lake.holding(pins, "files", paths)
        con.execute(view_sql("old_files", old, sch.arrow_schema("files"), sql_in("path", paths)))
        con.execute(view_sql("new_files", [], sch.arrow_schema("files")))
        versions = _versions(con)
    finally:
        con.close()
    for v in versions.values():
        v["new_value"] = "missing"
    return _table(versions, [], pins.tables.get("cards"))


def commit(lake: Lake, pins: Pins, rows: pa.Table | None) -> None:
    """Write ``rows`` as one Parquet file of ``card_changes`` and register it (one snapshot, unpublished:
    the caller publishes it with the rows it describes)."""
    if rows is None or not rows.num_rows:
        return
    lake.ensure_table(pins, TABLE, sch.arrow_schema(TABLE))
    out = lake.data_dir(pins.namespace, TABLE)
    out.mkdir(parents=True, exist_ok=True)
    name = f"{uuid.uuid4().hex[:16]}.parquet"
    final, tmp = Path(out / name), Path(out / f".{name}.tmp")
    pq.write_table(rows, tmp, compression="zstd", store_schema=False)
    os.replace(tmp, final)
    lake.commit_files(pins, TABLE, [str(final)], properties={"quicklake.operation": "history"})
