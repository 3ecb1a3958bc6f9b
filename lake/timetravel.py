"""The lake as it was: every published pin set is recorded, and a past one is read like the current one.

Each :meth:`lake.tables.Lake.publish` appends the pins it made visible to ``pins_history`` in
``state.sqlite`` (one row per commit: the time, the namespace and each table's snapshot id). Reading
``as_of`` a time takes the last commit at or before it; ``as_of`` a snapshot id takes the last commit
whose pins hold that snapshot of some table (``card_changes.old_snapshot`` names the ``cards`` snapshot
a changed header came from). The tables are then planned at those Iceberg snapshots (pyiceberg), so the
result is exactly what a reader saw then, through the same :class:`lake.snapshot.Snapshot`.

A past commit stays readable while its snapshots do: maintenance expires a snapshot ``keep_hours`` after
it stopped being current (``ql maintain --keep-hours``), and a rebuild drops the old namespace. Asking
for an earlier time is a clear error naming the earliest readable one. The header history
(``card_changes``) is an ordinary table and outlives every snapshot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from lake.errors import LakeError

if TYPE_CHECKING:
    from lake.snapshot import Snapshot
    from lake.tables import Lake

AsOf = str | int | datetime


@dataclass(frozen=True)
class Commit:
    """One published pin set."""

    seq: int
    committed_at: datetime
    namespace: str
    tables: dict[str, int | None]


def record_commit(root: str | Path, namespace: str, tables: dict[str, int | None], committed_at: str) -> None:
    """Append a published pin set to ``pins_history`` (called by ``Lake.publish`` after pins.json)."""
    from lake import state

    with state.connect(root) as con:
        con.execute(
            "INSERT INTO pins_history (committed_at, namespace, tables) VALUES (?, ?, ?)",
            (committed_at, namespace, json.dumps(tables, sort_keys=True)),
        )


def commits(root: str | Path) -> list[Commit]:
    """Every recorded commit of the lake, oldest first."""
    from lake import state

    t = state.query(root, "SELECT seq, committed_at, namespace, tables FROM pins_history ORDER BY seq")
    return [
        Commit(int(seq), _utc(datetime.fromisoformat(at)), ns, dict(json.loads(tabs)))
        for seq, at, ns, tabs in zip(*(t.column(c).to_pylist() for c in t.column_names), strict=True)
    ]


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def parse_as_of(value: AsOf) -> datetime | int:
    """A time (naive = UTC) or a snapshot id (an integer, or a string of digits)."""
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    if text.lstrip("-").isdigit() and len(text) > 8:  # 20260101 is a date, a snapshot id is longer
        return int(text)
    try:
        return _utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise LakeError(
            f"as of {value!r}: give a time (2026-01-01, 2026-01-01T12:00:00Z) or a snapshot id"
        ) from None


def pins_as_of(lake: Lake, as_of: AsOf) -> Commit:
    """The commit readers saw ``as_of`` a time or snapshot id (see the module docstring); a clear error
    when there is none or its snapshots are gone, naming the earliest readable time."""
    history = commits(lake.root)
    if not history:
        raise LakeError(
            f"{lake.root} has no recorded commits to read back (lakes record them from their next commit on)"
        )
    want = parse_as_of(as_of)
    if isinstance(want, int):
        found = [c for c in history if want in c.tables.values()]
        if not found:
            raise LakeError(
                f"as of snapshot {want}: no commit of {lake.root} pinned it; {_earliest(lake, history)}"
            )
    else:
        found = [c for c in history if c.committed_at <= want]
        if not found:
            raise LakeError(
                f"as of {want.isoformat()}: before the lake's first commit "
                f"({history[0].committed_at.isoformat()}); " + _earliest(lake, history)
            )
    chosen = found[-1]
    if not _readable(lake, chosen, {}):
        raise LakeError(
            f"as of {as_of}: the commit of {chosen.committed_at.isoformat()} is no longer readable (its "
            "snapshots were expired by maintenance after keep_hours, or dropped by a rebuild); "
            + _earliest(lake, history)
        )
    return chosen


def _earliest(lake: Lake, history: list[Commit]) -> str:
    """The start of the readable stretch of history: every commit from it to the last is readable."""
    have: dict[tuple[str, str], set[int] | None] = {}
    first = None
    for c in reversed(history):
        if not _readable(lake, c, have):
            break
        first = c
    if first is None:
        return "no commit is readable"
    return f"the earliest readable time is {first.committed_at.isoformat()}"


def _readable(lake: Lake, c: Commit, have: dict[tuple[str, str], set[int] | None]) -> bool:
    """Whether every pinned snapshot of ``c`` still exists (``have`` caches each table's snapshot ids)."""
    for name, sid in c.tables.items():
        if sid is None:
            continue
        key = (c.namespace, name)
        if key not in have:
            have[key] = _snapshot_ids(lake, c.namespace, name)
        ids = have[key]
        if ids is None or sid not in ids:
            return False
    return True


def _snapshot_ids(lake: Lake, namespace: str, table: str) -> set[int] | None:
    from pyiceberg.exceptions import NoSuchTableError

    try:
        tbl = lake.catalog.load_table(f"{namespace}.{table}")
    except NoSuchTableError:
        return None
    return {s.snapshot_id for s in tbl.metadata.snapshots}


def snapshot_as_of(root: str | Path, catalog_uri: str, as_of: AsOf) -> Snapshot:
    """The lake's :class:`lake.snapshot.Snapshot` as of a past time or snapshot id."""
    from lake.tables import Lake

    lake = Lake(root, catalog_uri)
    lake.require()
    c = pins_as_of(lake, as_of)
    return _planned(
        str(lake.root), catalog_uri, c.namespace, json.dumps(c.tables, sort_keys=True), c.committed_at
    )


@lru_cache(maxsize=4)
def _planned(root: str, catalog_uri: str, namespace: str, tables_json: str, at: datetime) -> Snapshot:
    from lake.snapshot import Snapshot, TableFiles
    from lake.tables import Lake, Pins, hdu_columns_of

    lake = Lake(root, catalog_uri)
    pins = Pins(namespace, json.loads(tables_json))
    out = {}
    for name in sorted(pins.tables):
        files = lake.data_files(pins, name)
        schema = lake.iceberg_schema(pins, name)
        infos = [lake.file_info(f) for f in files]
        # the columns each HDU had then: those of the table's schema at that snapshot
        per_hdu = {
            h: [c for c in cols if c in schema.names]
            for h, cols in hdu_columns_of(lake.table(pins, name)).items()
        }
        out[name] = TableFiles(
            tuple(files),
            schema,
            {h: cols for h, cols in per_hdu.items() if cols},
            tuple(i.rows for i in infos),
            tuple((i.min_path, i.max_path) for i in infos),
        )
    return Snapshot(lake.root, namespace, at.isoformat(), out)
