"""Pivot parsed cards into a wide header table: one row per HDU, one typed column per keyword."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

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
    sources: list[tuple[pa.Array, np.ndarray | None]],
    cards: np.ndarray,
    rows: np.ndarray,
    groups: np.ndarray,
    group_type: np.ndarray,
    nrows: int,
) -> dict[int, pa.Array]:
    """Every keyword group's column (``nrows`` values): the value of card ``cards[i]`` at row ``rows[i]``
    of group ``groups[i]``'s column, null elsewhere. One take per column type, sliced into columns (a take
    per column cost more than the values it moved). A source is (values, the row of each card's value in
    them, -1 for none; None: the values are the cards')."""
    out: dict[int, pa.Array] = {}
    for t, (src, where) in enumerate(sources):
        members = np.flatnonzero(group_type == t)
        if not len(members):
            continue
        slot = np.full(len(group_type), -1, dtype=np.int64)
        slot[members] = np.arange(len(members))
        idx = np.full(len(members) * nrows, -1, dtype=np.int64)
        mine = group_type[groups] == t
        idx[slot[groups[mine]] * nrows + rows[mine]] = cards[mine] if where is None else where[cards[mine]]
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


def _dict_parts(col: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """A string column as (each value's index in the returned values, -1 for null; the values). The
    parsed cards' string columns are dictionaries over the batch's distinct cards (some 1 % of its cards):
    work on text is done once per distinct value, not once per card."""
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col)
    if isinstance(col, pa.ChunkedArray):
        col = col.unify_dictionaries() if col.num_chunks > 1 else col
        dictionary = col.chunk(0).dictionary if col.num_chunks else pa.array([], col.type.value_type)
        indices = pa.chunked_array([c.indices for c in col.chunks], col.type.index_type)
        col = pa.DictionaryArray.from_arrays(_a(indices), dictionary)
    idx = np.asarray(col.indices.to_numpy(zero_copy_only=False))
    if col.null_count:
        idx = np.where(np.asarray(col.is_valid().to_numpy(zero_copy_only=False), dtype=bool), idx, -1)
    return idx.astype(np.int64, copy=False), col.dictionary


def _record_values(vstr: pa.Array, of_strings: np.ndarray) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """Of each value ``vstr`` (those ``of_strings`` are string values): whether it is a record value
    (FITS distortion paper: DP1 = 'AXIS.1: 1' is the keyword DP1.AXIS.1), its field (".AXIS.1") and its
    number."""
    strings = np.flatnonzero(of_strings)  # (of the batch's distinct values, those of this table's cards)
    rv = pc.extract_regex(vstr.take(pa.array(strings)), RVKC_RE)
    got = np.asarray(rv.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    is_rv = np.zeros(len(vstr), dtype=bool)
    is_rv[strings[got]] = True
    # (at every other value: a null field, and 0)
    at = pa.array(np.where(is_rv, np.cumsum(is_rv) - 1, -1), mask=~is_rv)
    found = rv.filter(pa.array(got))
    field = pc.binary_join_element_wise(pa.scalar("", pa.string()), found.field("f"), ".").take(at)
    number = pc.cast(pc.replace_substring(found.field("v"), "D", "E"), pa.float64()).take(at).fill_null(0.0)
    return is_rv, field, number


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


class _Cards(NamedTuple):
    """What a pivot takes from the cards: the cards with a value indicator (not commentary), each one's
    keyword (a code, numbered in order of first appearance: that order names and orders the columns),
    the keywords, every card's value kind (a code into _KINDS, -1 for none) and the sources of the
    columns' values per column type (see :func:`_columns_by_type`)."""

    kept: np.ndarray
    codes: np.ndarray
    keywords: list[str]
    kind_code: np.ndarray
    sources: list[tuple[pa.Array, np.ndarray | None]]


def _card_values(cards: pa.Table) -> _Cards:
    """The cards' keywords, kinds and values as a pivot takes them (see :class:`_Cards`), with
    record-valued cards as KEYWORD.FIELD float values. The string columns are worked on through their
    dictionaries (the batch's distinct cards), not card by card."""
    kw_at, kw_text = _dict_parts(cards.column("keyword"))
    vt_at, vt_text = _dict_parts(cards.column("value_type"))
    vs_at, vs_text = _dict_parts(cards.column("value_str"))
    # value kind per card (-1: undefined, or none of _KINDS; -2: commentary, which has no column)
    vt_same = pc.dictionary_encode(vt_text)  # (a handful of type names)
    vt_code = np.array([_KINDS.index(v) if v in _KINDS else -2 if v == TEXT else -1
                        for v in vt_same.dictionary.to_pylist()] + [-1], dtype=np.int8)  # fmt: skip
    vt_kind = np.append(
        vt_code[np.asarray(vt_same.indices.to_numpy(zero_copy_only=False), dtype=np.int64)], -1
    )
    kind_code = vt_kind[vt_at]  # (index -1: a null type)
    kept = np.flatnonzero(kind_code != -2)
    kind_code[kind_code == -2] = -1
    is_string = kind_code == _KINDS.index(STRING)
    of_strings = np.zeros(len(vs_text) + 1, dtype=bool)
    of_strings[vs_at[is_string]] = True
    is_rv_text, rv_field, rv_number = _record_values(vs_text, of_strings[:-1])
    is_rv = np.append(is_rv_text, False)[vs_at] & is_string
    # each card's keyword as an index into ``names``: the keywords, then the record-valued cards' ones
    name_at = kw_at.copy()
    names = _a(kw_text).cast(pa.string())
    if is_rv.any():
        pairs, pair_at = np.unique(np.stack([kw_at[is_rv], vs_at[is_rv]]), axis=1, return_inverse=True)
        joined = pc.binary_join_element_wise(
            names.take(pa.array(pairs[0], mask=pairs[0] < 0)), _a(rv_field.take(pa.array(pairs[1]))), ""
        )
        name_at[is_rv] = len(names) + pair_at.ravel()
        names = pa.concat_arrays([names, joined.cast(pa.string())])
        kind_code[is_rv] = _KINDS.index(FLOAT)
    name_at[name_at < 0] = len(names)  # (a null keyword: none in parsed cards)
    names = pa.concat_arrays([names, pa.array([""], pa.string())])
    same = pc.dictionary_encode(names)  # (equal keywords, from different cards)
    by_text = np.asarray(same.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    first = pc.dictionary_encode(pa.array(by_text[name_at[kept]]))
    codes = np.asarray(first.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    keywords = same.dictionary.take(first.dictionary).to_pylist()
    vi = _a(cards.column("value_int"))
    vfloat = _a(cards.column("value_float"))
    if is_rv.any():
        vfloat = pc.if_else(pa.array(is_rv), rv_number.take(pa.array(np.maximum(vs_at, 0))), vfloat)
    is_int = pa.array(kind_code == _KINDS.index(INT))
    sources = [  # in the order of _TYPES
        (vi, None),
        (pc.if_else(is_int, pc.cast(vi, pa.float64()), vfloat), None),
        (_a(cards.column("value_bool")), None),
        (_a(vs_text).cast(pa.string()), np.where(is_rv, -1, vs_at)),
    ]
    return _Cards(kept, codes, keywords, kind_code, sources)


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
    kept, codes, keywords, kind_code, sources = _card_values(cards)
    rows = rows[kept]
    kind_k = kind_code[kept]
    position = np.asarray(cards.column("position").to_numpy())[kept]
    order, bounds = _first_per_keyword_and_row(codes, rows, position)
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
        ctype = _column_type(col, known, kind_k[order[start:end]])
        names[col] = ctype  # (a type other than _TYPES' takes strings, as a string column)
        group_type[g] = _TYPE_INDEX.get(ctype, _STRING_INDEX)
    group = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(order))))
    kc = kind_k[order]
    ok = _FITS_TABLE[group_type[group], kc + 1]
    column_types = dict(zip(np.flatnonzero(group_type >= 0).tolist(), names.values(), strict=True))
    conflicts = [
        Conflict(int(rows[order[i]]), keywords[codes[order[i]]], str(column_types[int(group[i])]),
                 _KINDS[kc[i]], _value_text(cards, int(kept[order[i]])))
        for i in np.flatnonzero(~ok & (kc >= 0) & (group_type[group] >= 0)).tolist()
    ]  # fmt: skip
    taken = _columns_by_type(sources, kept[order[ok]], rows[order[ok]], group[ok], group_type, nrows)
    columns: dict[str, pa.Array] = dict(base)
    for col, g in zip(names, column_types, strict=True):
        columns[col] = taken[g]
    return pa.table(columns), conflicts
