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
    sources = {
        pa.int64(): vi,
        pa.float64(): pc.if_else(pa.array(is_int), pc.cast(vi, pa.float64()), vfloat),
        pa.bool_(): _a(c.column("value_bool")),
        pa.string(): vstr,
    }
    kind_code = np.full(len(vt_np), -1, dtype=np.int8)
    for code, kind in enumerate(_KINDS):
        kind_code[vt_np == kind] = code
    enc = pc.dictionary_encode(kw)
    codes = np.asarray(enc.indices.to_numpy(zero_copy_only=False))
    keywords = enc.dictionary.to_pylist()
    order, bounds = _first_per_keyword_and_row(codes, rows, np.asarray(c.column("position").to_numpy()))
    columns: dict[str, pa.Array] = dict(base)
    conflicts: list[Conflict] = []
    base_names = set(WIDE_BASE.names)
    for group in np.split(order, bounds):
        if not len(group):
            continue
        keyword = keywords[codes[group[0]]]
        col = column_name(keyword)
        if col in base_names or col in columns:
            continue
        r = rows[group]
        kc = kind_code[group]
        ctype = _column_type(col, known, kc)
        ok = np.isin(kc, [_KINDS.index(k) for k in _FITS.get(ctype, {STRING})])
        for b in np.flatnonzero(~ok & (kc >= 0)):
            conflicts.append(
                Conflict(int(r[b]), keyword, str(ctype), _KINDS[kc[b]], _value_text(c, int(group[b])))
            )
        idx = np.full(nrows, -1, dtype=np.int64)
        idx[r[ok]] = group[ok]
        columns[col] = sources.get(ctype, vstr).take(pa.array(idx, mask=idx < 0))
    return pa.table(columns), conflicts
