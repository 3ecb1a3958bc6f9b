"""Table schemas: the versioned data files in ``schemas/`` and the rules for wide header tables.

Fixed tables (files, cards, master, conflicts) are declared in ``schemas/<table>.json``. Wide header
tables (``uvisflt_0``, ``irima_1``, …) have five identifying columns plus one typed column per keyword;
keyword types come from ``schemas/headers/<table>.json`` where one exists, else from the first value
seen, and are then fixed: a later value of another type is a conflict, never a silent cast.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa

from lake.errors import ConfigError

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "long": pa.int64(),
    "int": pa.int32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "timestamptz": pa.timestamp("us", tz="UTC"),
}
TYPE_NAMES = {v: k for k, v in ARROW_TYPES.items()}


def plain_type(t: pa.DataType) -> pa.DataType:
    """The type a column is declared and compared as: every Arrow string flavour is ``string``."""
    return pa.string() if t in (pa.large_string(), pa.string_view()) else t


# Columns every wide header table starts with.
WIDE_BASE = pa.schema(
    [
        ("rootname", pa.string()),
        ("path", pa.string()),
        ("hdu", pa.int32()),
        ("extname", pa.string()),
        ("extver", pa.int64()),
        ("year", pa.int32()),
    ]
)
FIXED_TABLES = ("files", "cards", "master", "conflicts")
# tables kept across ingests and rebuilds: the header history (written by the ingest, never re-extracted)
HISTORY_TABLES = ("card_changes",)
# tables of results rather than headers: job findings, monitor results
RESULT_PREFIXES = ("findings_", "monitor_")


def is_header_table(name: str) -> bool:
    """A wide header table (``uvisflt``), as opposed to the fixed tables and result tables."""
    return name not in FIXED_TABLES and name not in HISTORY_TABLES and not name.startswith(RESULT_PREFIXES)


def _schema_dir() -> Path:
    # Installed non-editable, schemas/ sits beside the packages in the source tree only; fall back to
    # the copy in the package data if one is ever added.
    if not SCHEMA_DIR.is_dir():
        raise ConfigError(
            f"schema directory {SCHEMA_DIR} is missing; reinstall Quicklake from its source tree"
        )
    return SCHEMA_DIR


@cache
def table_spec(name: str) -> dict[str, Any]:
    path = _schema_dir() / f"{name}.json"
    return dict(json.loads(path.read_text()))


@cache
def arrow_schema(name: str) -> pa.Schema:
    """Arrow schema of a fixed table, from ``schemas/<name>.json`` (with each column's doc as metadata)."""
    spec = table_spec(name)
    return pa.schema(
        [
            pa.field(c["name"], ARROW_TYPES[c["type"]], metadata={"doc": c.get("doc", "")})
            for c in spec["columns"]
        ]
    )


@cache
def header_types(table: str) -> dict[str, pa.DataType]:
    """Declared keyword column types of a wide table (column name → type), empty if none declared."""
    path = _schema_dir() / "headers" / f"{table}.json"
    if not path.exists():
        return {}
    spec = json.loads(path.read_text())
    return {c["column"]: ARROW_TYPES[c["type"]] for c in spec["columns"]}


_NON_SQL = re.compile(r"[^a-z0-9_]")
RESERVED = {c for c in WIDE_BASE.names} | {"select", "from", "where", "order", "group", "table", "end"}


def column_name(keyword: str) -> str:
    """SQL-safe column name of a keyword: ``DATE-OBS`` → ``date_obs``, ``DP1.AXIS.1`` → ``dp1_axis_1``.

    Keywords that would collide with the identifying columns get a ``kw_`` prefix (``EXTNAME`` is kept
    as the identifying column itself).
    """
    name = _NON_SQL.sub("_", keyword.lower())
    if not name or name[0].isdigit():
        name = "kw_" + name
    if name in {"select", "from", "where", "order", "group", "table", "end", "path", "hdu", "year"}:
        name = "kw_" + name
    return name


def physical_table_name(instrume: str | None, detector: str | None, filetype: str) -> str:
    """The Iceberg table holding every HDU of one detector + file type: ``uvisflt``, ``irima``.

    Other instruments are prefixed (``acs_wfcflt``, ``stis_ccdraw``) so that they cannot collide with
    WFC3's. One physical table per file type (rather than per HDU) keeps commits and files per batch
    few; the original per-HDU tables are views of it.
    """
    det = _NON_SQL.sub("", (detector or "nodet").lower()) or "nodet"
    ft = _NON_SQL.sub("_", filetype.lower())
    inst = (instrume or "").strip().upper()
    if inst and inst != "WFC3":
        return f"{_NON_SQL.sub('', inst.lower())}_{det}{ft}"
    return f"{det}{ft}"


def wide_table_name(instrume: str | None, detector: str | None, filetype: str, hdu: int) -> str:
    """``uvisflt_0``: detector + file type + HDU index, as the original Quicklook named its tables."""
    return f"{physical_table_name(instrume, detector, filetype)}_{hdu}"


def expected_files(detector: str | None, imagetyp: str | None, association: bool = False) -> list[str]:
    """File types a dataset (or, with ``association``, an association's products) is expected to have
    (rules as data: ``schemas/expected_files.json``)."""
    rules = json.loads((_schema_dir() / "expected_files.json").read_text())["rules"]
    per = rules.get((detector or "").upper(), {})
    key = "ASSOCIATION" if association else (imagetyp or "").upper()
    return list(per.get(key, per.get("*", [])))
