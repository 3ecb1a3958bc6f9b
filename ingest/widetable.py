"""Pivot parsed cards into a wide header table: one row per HDU, one typed column per keyword."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.fitsheader import BOOL, COMPLEX, FLOAT, INT, INVALID, STRING, TEXT
from lake.schema import WIDE_BASE, column_name, plain_type

# Record-valued keyword cards (FITS distortion paper): DP1 = 'AXIS.1: 1' is the keyword DP1.AXIS.1.
RVKC_RE = (
    r"^(?P<f>[a-zA-Z_]\w*(?:\.\d+)?(?:\.[a-zA-Z_]\w*(?:\.\d+)?)*): +"
    r"(?P<v>[+-]?(?:\.\d+|\d+(?:\.\d*)?)(?:[DE][+-]?\d+)?)$"
)

# value kinds as small codes; undefined values (code -1) fit any column
_KINDS = (INT, FLOAT, BOOL, STRING, COMPLEX, INVALID)

_FITS: dict[pa.DataType, set[str]] = {
    pa.int64(): {INT},
    pa.float64(): {INT, FLOAT},
    pa.bool_(): {BOOL},
    pa.string(): {STRING},
}


@dataclass
class Conflict:
    row: int
    keyword: str
    column_type: str
    value_type: str
    value: str


# the column types of wide tables (any other is a string column), and which value kinds each takes
_TYPES = (pa.int64(), pa.float64(), pa.bool_(), pa.string())
_TYPE_INDEX = {t: i for i, t in enumerate(_TYPES)}
_STRING_INDEX = _TYPE_INDEX[pa.string()]
# [column type, value kind code + 1] → the value fits the column (undefined values, code -1, fit any)
_FITS_TABLE = np.array(
    [[True] + [k in _FITS[t] for k in _KINDS] for t in _TYPES] + [[False] * (len(_KINDS) + 1)]
)  # (the last row, index -1: keywords whose column is taken by another)


def _columns_by_type(
    sources: list[pa.Array],
    cards: np.ndarray,
    rows: np.ndarray,
    groups: np.ndarray,
    group_type: np.ndarray,
    nrows: int,
) -> dict[int, pa.Array]:
    """Every keyword group's column (``nrows`` values): the value of card ``cards[i]`` at row ``rows[i]``
    of group ``groups[i]``'s column, null elsewhere. One take per column type, sliced into columns (a take
    per column cost more than the values it moved)."""
    out: dict[int, pa.Array] = {}
    for t, src in enumerate(sources):
        members = np.flatnonzero(group_type == t)
        if not len(members):
            continue
        slot = np.full(len(group_type), -1, dtype=np.int64)
        slot[members] = np.arange(len(members))
        idx = np.full(len(members) * nrows, -1, dtype=np.int64)
        mine = group_type[groups] == t
        idx[slot[groups[mine]] * nrows + rows[mine]] = cards[mine]
        values = src.take(pa.array(idx, mask=idx < 0))
        for j, g in enumerate(members.tolist()):
            out[g] = values.slice(j * nrows, nrows)
    return out


def _a(x: pa.Array | pa.ChunkedArray) -> pa.Array:
    return x.combine_chunks() if isinstance(x, pa.ChunkedArray) else x


def infer_type(kinds: set[str]) -> pa.DataType:
    """Type of a new column from the kinds of its first values (majority rules live in the caller)."""
    if kinds <= {INT}:
        return pa.int64()
    if kinds <= {INT, FLOAT}:
        return pa.float64()
    if kinds <= {BOOL}:
        return pa.bool_()
    return pa.string()


def _value_text(cards: pa.Table, i: int) -> str:
    row = {k: cards.column(k)[i].as_py() for k in ("value_str", "value_int", "value_float", "value_bool")}
    for k in ("value_str", "value_int", "value_float", "value_bool"):
        if row[k] is not None:
            return str(row[k])
    return ""


def _with_record_values(
    kw: pa.Array, vtype: pa.Array, vstr: pa.Array, vfloat: pa.Array
) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    """(keyword, value type, string, float) with record-valued cards as KEYWORD.FIELD float values."""
    rv = pc.extract_regex(vstr, RVKC_RE)
    is_rv = rv.is_valid().to_numpy(zero_copy_only=False) & (vtype.to_numpy(zero_copy_only=False) == STRING)
    if is_rv.any():
        rv_mask = pa.array(is_rv)
        kw = pc.if_else(rv_mask, pc.binary_join_element_wise(kw, rv.field("f"), "."), kw)
        rv_num = pc.cast(
            pc.replace_substring(pc.if_else(rv_mask, rv.field("v"), "0"), "D", "E"), pa.float64()
        )
        vfloat = pc.if_else(rv_mask, rv_num, vfloat)
        vtype = pc.if_else(rv_mask, FLOAT, vtype)
        vstr = pc.if_else(rv_mask, pa.scalar(None, pa.string()), vstr)
    return kw, vtype, vstr, vfloat


def _first_per_keyword_and_row(
    codes: np.ndarray, rows: np.ndarray, position: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(card indices, split points): the first card of each (keyword, row), grouped by keyword."""
    # cards grouped by keyword, then row, then position: the first card of a (keyword, row) run wins
    order = np.lexsort((position, rows, codes))
    sc, sr = codes[order], rows[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (sc[1:] != sc[:-1]) | (sr[1:] != sr[:-1])
    order = order[first]
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    return order, bounds


def _column_type(col: str, known: dict[str, pa.DataType], kc: np.ndarray) -> pa.DataType:
    """A column's type: the one already fixed, else inferred from the kinds (codes ``kc``) of its cards."""
    if col in known:
        return plain_type(known[col])
    present = {_KINDS[k] for k in np.unique(kc) if k >= 0}
    if present <= {INT, FLOAT} or len(present) <= 1:
        return infer_type(present)
    # mixed kinds in one batch: the most common kind fixes the type
    counts = np.bincount(kc[kc >= 0], minlength=len(_KINDS))
    return infer_type({_KINDS[int(counts.argmax())]})


def pivot(
    cards: pa.Table,
    rows: np.ndarray,
    nrows: int,
    base: dict[str, pa.Array],
    known: dict[str, pa.DataType],
) -> tuple[pa.Table, list[Conflict]]:
    """Build the wide table.

    ``cards`` holds the parsed cards of the table's HDUs (columns of :data:`ingest.fitsheader.CARD_SCHEMA`),
    ``rows`` gives each card's row in the wide table, ``base`` the identifying columns, ``known`` the
    column types already fixed (from the lake or ``schemas/headers``). A keyword present twice in one HDU
    keeps its first value, as astropy's ``header[key]`` does.
    """
    keep = np.asarray(
        pc.not_equal(cards.column("value_type"), TEXT).fill_null(True).to_numpy(zero_copy_only=False)
    )
    keep_idx = np.flatnonzero(keep)
    c = cards.take(pa.array(keep_idx))
    rows = rows[keep_idx]
    kw, vtype, vstr, vfloat = _with_record_values(
        _a(pc.cast(c.column("keyword"), pa.string())),
        _a(pc.cast(c.column("value_type"), pa.string())),
        _a(pc.cast(c.column("value_str"), pa.string())),
        _a(c.column("value_float")),
    )
    vi = _a(c.column("value_int"))
    vt_np = np.asarray(vtype.to_numpy(zero_copy_only=False), dtype=object)
    is_int = vt_np == INT
    # one source array per column type, built once (not per keyword)
    sources = [
        vi,
        pc.if_else(pa.array(is_int), pc.cast(vi, pa.float64()), vfloat),
        _a(c.column("value_bool")),
        vstr,
    ]  # in the order of _TYPES
    kind_code = np.full(len(vt_np), -1, dtype=np.int8)
    for code, kind in enumerate(_KINDS):
        kind_code[vt_np == kind] = code
    enc = pc.dictionary_encode(kw)
    codes = np.asarray(enc.indices.to_numpy(zero_copy_only=False))
    keywords = enc.dictionary.to_pylist()
    order, bounds = _first_per_keyword_and_row(codes, rows, np.asarray(c.column("position").to_numpy()))
    starts = np.concatenate([[0], bounds]) if len(order) else np.array([], dtype=np.int64)
    # each keyword's column and type (the first keyword of a column name wins), in one pass of Python
    base_names = set(WIDE_BASE.names)
    names: dict[str, pa.DataType] = {}  # column → its type
    group_type = np.full(len(starts), -1, dtype=np.int8)  # index in _TYPES; -1: the column is taken
    for g, start in enumerate(starts.tolist()):
        col = column_name(keywords[codes[order[start]]])
        if col in base_names or col in names:
            continue
        end = bounds[g] if g < len(bounds) else len(order)
        ctype = _column_type(col, known, kind_code[order[start:end]])
        names[col] = ctype  # (a type other than _TYPES' takes strings, as a string column)
        group_type[g] = _TYPE_INDEX.get(ctype, _STRING_INDEX)
    group = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(order))))
    kc = kind_code[order]
    ok = _FITS_TABLE[group_type[group], kc + 1]
    column_types = dict(zip(np.flatnonzero(group_type >= 0).tolist(), names.values(), strict=True))
    conflicts = [
        Conflict(int(rows[order[i]]), keywords[codes[order[i]]], str(column_types[int(group[i])]),
                 _KINDS[kc[i]], _value_text(c, int(order[i])))
        for i in np.flatnonzero(~ok & (kc >= 0) & (group_type[group] >= 0)).tolist()
    ]  # fmt: skip
    taken = _columns_by_type(sources, order[ok], rows[order[ok]], group[ok], group_type, nrows)
    columns: dict[str, pa.Array] = dict(base)
    for col, g in zip(names, column_types, strict=True):
        columns[col] = taken[g]
    return pa.table(columns), conflicts
