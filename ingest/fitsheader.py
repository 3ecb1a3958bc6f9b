"""Fast FITS header reader: every card of every HDU, without touching pixel data.

Reading is split in two steps so that the expensive one can be vectorised over a whole batch of files:

1. :func:`read_raw_headers` reads only the header blocks of each HDU of one file and jumps over the data
   using BITPIX/NAXISn/PCOUNT/GCOUNT (one ``pread`` per HDU in the common case).
2. :func:`parse_headers` turns the raw 80-byte card images of many headers into one Arrow table, with
   numpy for the fixed-column work and Arrow's RE2 kernels for the value/comment split. Cards that are not
   in plain fixed format (CONTINUE long strings, complex numbers, quotes inside strings, lower-case or
   HIERARCH keywords, anything odd) are handed to ``astropy.io.fits.Card``, so that the result agrees
   with astropy card for card; they are rare in HST data.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lake.errors import FitsError
from lake.pylist import column

READER_VERSION = "1"
BLOCK = 2880
CARD = 80
END_CARD = b"END" + b" " * 77
_FIRST_READ = 10 * BLOCK  # a WFC3 primary header is 7-9 blocks: one read covers it

# Value types as stored in the lake.
BOOL, INT, FLOAT, COMPLEX, STRING, UNDEFINED, TEXT = (
    "bool",
    "int",
    "float",
    "complex",
    "string",
    "undefined",
    "text",  # COMMENT, HISTORY and blank-keyword cards: free text, no value indicator
)
INVALID = "invalid"  # a card neither this reader nor astropy can parse; its file is an ingest error
COMMENTARY = frozenset({"", "COMMENT", "HISTORY"})

CARD_SCHEMA = pa.schema(
    [
        ("header", pa.int32()),  # index into the list of headers given to parse_headers
        ("position", pa.int32()),  # logical card index in the HDU, as astropy counts (CONTINUE joined)
        ("keyword", pa.dictionary(pa.int32(), pa.string())),
        ("value_type", pa.dictionary(pa.int32(), pa.string())),
        ("value_str", pa.dictionary(pa.int32(), pa.string())),
        ("value_int", pa.int64()),
        ("value_float", pa.float64()),
        ("value_bool", pa.bool_()),
        ("comment", pa.dictionary(pa.int32(), pa.string())),
        ("image", pa.string()),  # 80 characters, or a multiple of 80 for CONTINUE-joined cards
    ]
)

# RE2 pattern for the part after "= " of a fixed-format card. Strings with embedded quotes are left to
# astropy (its quote rules are subtle); so are complex values.
_VALUE_RE = (
    r"^ *(?:'(?P<s>[^']*)'|(?P<b>[TF])|(?P<n>[+-]?(?:\.\d+|\d+(?:\.\d*)?)(?:[EeDd][+-]?\d+)?)|)"
    r" *(?:/ *(?P<c>.*))?$"
)
_INT_RE = r"^[+-]?0*\d{1,18}$"  # fits int64 for sure; longer integers go to astropy

_KW_LUT = np.zeros(256, dtype=bool)
for _c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-":
    _KW_LUT[_c] = True


@dataclass(frozen=True)
class Card:
    """One logical header card."""

    keyword: str
    value: Any
    comment: str
    image: str
    value_type: str


@dataclass(frozen=True)
class RawHeader:
    """The card images of one HDU as found in the file (END card and padding excluded)."""

    hdu: int
    offset: int
    data: bytes
    data_size: int
    problems: tuple[str, ...] = ()  # conformance problems found reading it: "warning: ..." or "error: ..."


# --------------------------------------------------------------------------------------------------
# Step 1: header blocks of one file


def _is_blank_tail(chunk: bytes) -> bool:
    return not chunk.strip(b"\0 ")


def _find_end(buf: bytes, start: int = 0) -> int:
    """Offset of the END card in ``buf`` (80-aligned), or -1."""
    i = buf.find(END_CARD, start)
    while i >= 0 and i % CARD:
        i = buf.find(END_CARD, i + 1)
    return i


_SIZE_KEYS = frozenset({b"BITPIX  ", b"NAXIS   ", b"PCOUNT  ", b"GCOUNT  ", b"GROUPS  "})
VALID_BITPIX = frozenset({8, 16, 32, 64, -32, -64})
MAX_NAXIS = 999


def _fixed_int(header: bytes, i: int, key: bytes) -> int | None:
    """Integer value of card ``i`` if it is ``key`` with a fixed-format value (columns 11-30), else None."""
    o = i * CARD
    if header[o : o + 10] != key:
        return None
    try:
        return int(header[o + 10 : o + 30])
    except ValueError:
        return None


def _padded(nbytes: int) -> int:
    return -(-nbytes // BLOCK) * BLOCK


def _data_size(path: str, hdu: int, header: bytes, problems: list[str]) -> int:
    """Bytes of data following this header, padded to whole blocks (FITS 4.4.1); conformance problems of
    the size keywords go to ``problems``, sizes that cannot be right raise :class:`FitsError`."""
    # Fast path: valid mandatory keywords in the order the standard prescribes (almost every file).
    bitpix = _fixed_int(header, 1, b"BITPIX  = ")
    naxis = _fixed_int(header, 2, b"NAXIS   = ")
    if bitpix in VALID_BITPIX and naxis is not None and 0 <= naxis <= MAX_NAXIS:
        n = 1
        for k in range(naxis):
            d = _fixed_int(header, 3 + k, b"NAXIS%-3d= " % (k + 1))
            if d is None or d < 0:
                break
            n *= d
        else:
            if naxis == 0:
                return 0
            if hdu > 0:
                pcount = _fixed_int(header, 3 + naxis, b"PCOUNT  = ")
                gcount = _fixed_int(header, 4 + naxis, b"GCOUNT  = ")
                if pcount is not None and gcount is not None and pcount >= 0 and gcount >= 0:
                    return _padded(abs(bitpix) // 8 * gcount * (pcount + n))
            elif _fixed_int(header, 3, b"NAXIS1  = ") != 0:  # not random groups
                return _padded(abs(bitpix) // 8 * n)
    return _data_size_any_order(path, hdu, header, problems)


def _scan_size_cards(
    path: str, hdu: int, header: bytes
) -> tuple[dict[bytes, bytes], dict[int, int], dict[bytes, int]]:
    """Raw values of BITPIX/NAXIS/PCOUNT/GCOUNT/GROUPS and the NAXISn integers, in any card order, and
    the card index of each of the first."""
    vals: dict[bytes, bytes] = {}
    where: dict[bytes, int] = {}
    naxes: dict[int, int] = {}
    ncards = len(header) // CARD
    for i in range(ncards):
        card = header[i * CARD : i * CARD + CARD]
        key = card[:8]
        if card[8:10] != b"= ":
            continue
        if key in _SIZE_KEYS:
            vals.setdefault(key, card[10:].split(b"/", 1)[0].strip())
            where.setdefault(key, i)
        elif key[:5] == b"NAXIS" and key[5:].strip().isdigit():
            try:
                naxes.setdefault(int(key[5:]), int(card[10:].split(b"/", 1)[0]))
            except ValueError:
                kw = key.decode("latin-1").strip()
                raise FitsError(path, f"{kw} is not an integer; fix the header", hdu, kw) from None
        # stop once every keyword the size needs has been seen (past the mandatory block)
        done = (hdu == 0 and naxes.get(1) != 0) or (b"PCOUNT  " in vals and b"GCOUNT  " in vals)
        if done and b"NAXIS   " in vals and i > 8 and len(naxes) >= _int_or(vals[b"NAXIS   "], 0):
            break
    return vals, naxes, where


def _int_or(raw: bytes, default: int) -> int:
    try:
        return int(raw or default)
    except ValueError:
        return default


def _int_value(path: str, hdu: int, vals: dict[bytes, bytes], key: bytes, default: int | None) -> int:
    kw = key.decode().strip()
    raw = vals.get(key)
    if raw is None or raw == b"":
        if default is None:
            raise FitsError(path, f"mandatory keyword {kw} missing; fix the header", hdu, kw)
        return default
    try:
        return int(raw)
    except ValueError:
        text = raw.decode("latin-1")
        raise FitsError(path, f"{kw} = {text!r} is not an integer; fix the header", hdu, kw) from None


def _data_size_any_order(path: str, hdu: int, header: bytes, problems: list[str]) -> int:
    """Like :func:`_data_size` but tolerating mandatory keywords out of order, as astropy does, and
    checking every value: a size that cannot be right is an error naming the keyword."""
    vals, naxes, where = _scan_size_cards(path, hdu, header)
    bitpix = _int_value(path, hdu, vals, b"BITPIX  ", None)
    naxis = _int_value(path, hdu, vals, b"NAXIS   ", None)
    if bitpix not in VALID_BITPIX:
        # astropy sizes the data with |BITPIX|/8 all the same; a wrong size shows as truncation
        problems.append(f"error: HDU {hdu} BITPIX: {bitpix} is not one of 8, 16, 32, 64, -32, -64")
    if not 0 <= naxis <= MAX_NAXIS:
        raise FitsError(path, f"NAXIS = {naxis} is outside 0..{MAX_NAXIS}; fix the header", hdu, "NAXIS")
    if where.get(b"BITPIX  ") != 1 or where.get(b"NAXIS   ") != 2:
        problems.append(f"warning: HDU {hdu}: BITPIX and NAXIS are not the 2nd and 3rd cards")
    if naxis == 0:
        return 0
    missing = [k for k in range(1, naxis + 1) if k not in naxes]
    if missing:
        kw = f"NAXIS{missing[0]}"
        raise FitsError(path, f"{kw} missing (NAXIS = {naxis}); fix the header", hdu, kw)
    dims = [naxes[k] for k in range(1, naxis + 1)]
    for k, d in enumerate(dims, 1):
        if d < 0:
            raise FitsError(path, f"NAXIS{k} = {d} is negative; fix the header", hdu, f"NAXIS{k}")
    pcount = _int_value(path, hdu, vals, b"PCOUNT  ", 0)
    gcount = _int_value(path, hdu, vals, b"GCOUNT  ", 1)
    for kw, v in (("PCOUNT", pcount), ("GCOUNT", gcount)):
        if v < 0:
            raise FitsError(path, f"{kw} = {v} is negative; fix the header", hdu, kw)
    if hdu == 0 and dims[0] == 0 and vals.get(b"GROUPS  ") == b"T":  # random groups
        dims = dims[1:]
    n = 1
    for d in dims:
        n *= d
    return _padded(abs(bitpix) // 8 * gcount * (pcount + n))


def _odd_byte(card: np.ndarray) -> str:
    """What is wrong with a card holding bytes outside printable ASCII (FITS 4.1.1), as astropy's verify
    reports it: ``OBJECT: non-ASCII byte 0xe9 in column 15``."""
    bad = (card < 32) | (card > 126)
    col = int(bad.argmax())
    byte = int(card[col])
    what = "non-ASCII" if byte > 126 else "control"
    kw = card[:8].tobytes().decode("latin-1").strip().encode("unicode_escape").decode()
    return f"{kw}: {what} byte 0x{byte:02x} in column {col + 1}"


class _Reader:
    """Positional reads from a local file descriptor or any seekable file object."""

    def __init__(self, src: str | os.PathLike[str] | IO[bytes], label: str) -> None:
        if isinstance(src, str | os.PathLike):
            # O_NONBLOCK: opening a FIFO put in place of a file must not wait for a writer
            self.fd: int | None = os.open(src, os.O_RDONLY | os.O_NONBLOCK)
            self.fobj: IO[bytes] | None = None
            st = os.fstat(self.fd)
            if not stat.S_ISREG(st.st_mode):
                os.close(self.fd)
                raise FitsError(label, "not a regular file (a FIFO, device or socket); remove it", 0)
            self.size = st.st_size
        else:
            self.fd = None
            self.fobj = src
            src.seek(0, os.SEEK_END)
            self.size = src.tell()

    def read(self, offset: int, n: int) -> bytes:
        n = max(0, min(n, self.size - offset))  # never ask for more than the file holds
        if self.fd is not None:
            return os.pread(self.fd, n, offset)
        assert self.fobj is not None
        self.fobj.seek(offset)
        return self.fobj.read(n)

    def blank_from(self, offset: int) -> bool:
        """Whether the file holds only zeros and blanks from ``offset`` on (read in bounded chunks)."""
        while offset < self.size:
            chunk = self.read(offset, 1 << 20)
            if not chunk or not _is_blank_tail(chunk):
                return not chunk
            offset += len(chunk)
        return True

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)


# A header longer than this is refused rather than read: WFC3 headers are under 10 blocks, and a file
# with no END card would otherwise be read whole.
MAX_HEADER_BLOCKS = 1000  # 2.88 MB per HDU
MAX_HEADER_BYTES_PER_FILE = 64 * 1024 * 1024  # all HDUs of one file together


def _complete_header(r: _Reader, label: str, pos: int, hdu: int, buf: bytes) -> tuple[bytes, int]:
    """``buf`` (read at ``pos``) extended to the END card, and the END card's offset; bounded by
    MAX_HEADER_BLOCKS."""
    limit = MAX_HEADER_BLOCKS * BLOCK
    end = _find_end(buf)
    while end < 0:
        if len(buf) % BLOCK or pos + len(buf) >= r.size:
            raise FitsError(label, "header has no END card (file truncated?); fix or remove it", hdu, "END")
        if len(buf) >= limit:
            why = f"no END card in the first {MAX_HEADER_BLOCKS} header blocks; fix or remove the file"
            raise FitsError(label, why, hdu, "END")
        more = r.read(pos + len(buf), min(len(buf), limit - len(buf)))
        buf += more
        end = _find_end(buf, max(0, len(buf) - len(more) - CARD))
    return buf, end


def read_raw_headers(src: str | os.PathLike[str] | IO[bytes], name: str | None = None) -> list[RawHeader]:
    """Read the header cards of every HDU of one FITS file, skipping all data.

    ``src`` is a local path or an open binary file object (e.g. from fsspec); ``name`` is used in
    error messages (defaults to the path). Raises :class:`FitsError` for anything that is not a
    complete FITS file. Reads are bounded: at most MAX_HEADER_BLOCKS blocks per header and
    MAX_HEADER_BYTES_PER_FILE in all, whatever the file holds. Conformance problems that do not stop the
    read are in each header's ``problems``.
    """
    label = name or os.fspath(src) if isinstance(src, str | os.PathLike) else (name or "<file>")
    r = _Reader(src, label)
    try:
        size = r.size
        if size == 0:
            raise FitsError(label, "file is empty (0 bytes)", 0)
        out: list[RawHeader] = []
        pos = hdu = total = 0
        guess = _FIRST_READ
        while pos < size:
            buf = r.read(pos, min(guess, MAX_HEADER_BLOCKS * BLOCK))
            if hdu == 0 and not buf.startswith(b"SIMPLE  ="):
                raise FitsError(label, "not a FITS file (does not start with SIMPLE)", 0, "SIMPLE")
            if hdu > 0 and not buf.startswith(b"XTENSION="):
                if r.blank_from(pos):
                    break  # zero or blank padding after the last HDU: astropy ignores it too
                raise FitsError(
                    label, f"unexpected bytes at offset {pos} (expected XTENSION)", hdu, "XTENSION"
                )
            buf, end = _complete_header(r, label, pos, hdu, buf)
            header = buf[:end]
            total += end
            if total > MAX_HEADER_BYTES_PER_FILE:
                raise FitsError(label, "headers exceed 64 MiB in all; not a WFC3 file: remove it", hdu)
            problems: list[str] = []
            data_size = _data_size(label, hdu, header, problems)
            hdr_size = _padded(end + CARD)
            # extensions of one file tend to have headers of one size; the primary is larger
            guess = hdr_size if hdu else 2 * BLOCK
            out.append(RawHeader(hdu, pos, header, data_size, tuple(problems)))
            pos += hdr_size + data_size
            if pos > size:
                raise FitsError(
                    label,
                    f"file truncated: data of HDU {hdu} ends at byte {pos} but the file has {size} bytes",
                    hdu,
                    "NAXIS",
                )
            hdu += 1
        return _file_problems(out, size)
    finally:
        r.close()


def _file_problems(out: list[RawHeader], size: int) -> list[RawHeader]:
    """Problems of the file as a whole, added to its primary header's."""
    more = []
    if out and out[0].data[29:30] != b"T":
        more.append("warning: HDU 0 SIMPLE: not T (the file does not claim to conform to FITS)")
    if size % BLOCK:
        more.append(f"warning: file size {size} is not a multiple of {BLOCK} bytes")
    if more:
        out[0] = dataclasses.replace(out[0], problems=out[0].problems + tuple(more))
    return out


# --------------------------------------------------------------------------------------------------
# Step 2: vectorised card parsing


def _astropy_card(image: str) -> tuple[str, Any, str, str]:
    """Parse one (possibly CONTINUE-joined) card image exactly as astropy does."""
    from astropy.io.fits import Card as _ACard
    from astropy.io.fits.card import Undefined

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = _ACard.fromstring(image)
        if c.field_specifier:  # record-valued card (DP1 = 'AXIS.1: 1'): keep the card as written
            keyword, value = c.rawkeyword, c.rawvalue
        else:
            keyword, value = c.keyword, c.value
        comment = c.comment
    if keyword in COMMENTARY:
        return keyword, str(value), "", TEXT
    if isinstance(value, Undefined) or value is None:
        return keyword, None, comment, UNDEFINED
    if isinstance(value, bool | np.bool_):
        return keyword, bool(value), comment, BOOL
    if isinstance(value, int | np.integer):
        return keyword, int(value), comment, INT
    if isinstance(value, float | np.floating):
        return keyword, float(value), comment, FLOAT
    if isinstance(value, complex):
        return keyword, value, comment, COMPLEX
    return keyword, str(value), comment, STRING


_PIECE_RE = re.compile(r"'(?P<s>[^']*)' *(?:/ *(?P<c>.*))?$")
_KEY_RE = re.compile(r"[A-Z0-9_-]{1,8} *$")


def _long_string(image: str) -> tuple[str, Any, str, str] | None:
    """A CONTINUE long string in plain form, parsed as astropy's Card._split does; None if unusual."""
    key = image[:8]
    if image[8:10] != "= " or not _KEY_RE.match(key) or key.rstrip() in COMMENTARY:
        return None
    values: list[str] = []
    comments: list[str] = []
    for k in range(0, len(image), CARD):
        sub = image[k : k + CARD]
        vc = (sub[10:] if k == 0 else sub[8:]).strip()
        m = _PIECE_RE.match(vc)
        if m is None or (k and sub[:8] != "CONTINUE"):
            return None
        v = m.group("s").rstrip()
        if v.endswith("&"):
            v = v[:-1]
        values.append(v)
        if m.group("c"):
            comments.append(m.group("c").rstrip())
    return key.rstrip(), "".join(values).rstrip(), " ".join(comments).rstrip(), STRING


_UNPRINTABLE_RE = re.compile(r"[^\x20-\x7e]")


def _restore(image: str, masked: str, text: str) -> str:
    """``text`` as cut from ``masked`` (``image`` with unprintable characters as '?'), with the
    original characters back where it can be found verbatim."""
    i = masked.find(text) if text else -1
    return image[i : i + len(text)] if i >= 0 else text


def _parse_any(image: str) -> tuple[str, Any, str, str]:
    """Parse one card image, whatever it holds; INVALID if neither this reader nor astropy can."""
    parsed = _long_string(image) if len(image) > CARD else None
    if parsed is not None:
        return parsed
    # astropy refuses non-ASCII and control characters (FITS 4.1.1); such cards are parsed with them
    # masked, then the values get them back, so that 'café' stays 'café' (the file records a warning)
    masked = _UNPRINTABLE_RE.sub("?", image)
    try:
        kw, val, com, vt = _astropy_card(masked)
    except Exception as e:  # astropy cannot parse it either: keep the text, flag the card
        return image[:8].strip(), image[8:].strip(), str(e), INVALID
    if masked != image:
        kw, com = _restore(image, masked, kw), _restore(image, masked, com)
        if isinstance(val, str):
            val = _restore(image, masked, val)
    return kw, val, com, vt


def _slow_columns(images: list[str]) -> dict[str, pa.Array]:
    cols: dict[str, list[Any]] = {k: [] for k in ("keyword", "value_type", "s", "i", "f", "b", "comment")}
    for image in images:
        parsed = _parse_any(image)
        kw, com, vt = parsed[0], parsed[2], parsed[3]
        val: Any = parsed[1]
        cols["keyword"].append(kw)
        cols["value_type"].append(vt)
        cols["comment"].append(com)
        s = i = f = b = None
        if vt in (STRING, TEXT, INVALID):
            s = val
        elif vt == BOOL:
            b = val
        elif vt == INT:
            if -(2**63) <= val < 2**63:
                i = val
            f = float(val)
            s = str(val)  # exact text for integers beyond int64
        elif vt == FLOAT:
            f = val
        elif vt == COMPLEX:
            s = f"({val.real!r}, {val.imag!r})"
        cols["s"].append(s)
        cols["i"].append(i)
        cols["f"].append(f)
        cols["b"].append(b)
    return {
        "keyword": pa.array(cols["keyword"], pa.string()),
        "value_type": pa.array(cols["value_type"], pa.string()),
        "value_str": pa.array(cols["s"], pa.string()),
        "value_int": pa.array(cols["i"], pa.int64()),
        "value_float": pa.array(cols["f"], pa.float64()),
        "value_bool": pa.array(cols["b"], pa.bool_()),
        "comment": pa.array(cols["comment"], pa.string()),
    }


_DICT_FIELDS = ("keyword", "value_type", "value_str", "comment")
_FIELDS = ("keyword", "value_type", "value_str", "value_int", "value_float", "value_bool", "comment")
_VT_DICT = column([BOOL, INT, FLOAT, COMPLEX, STRING, UNDEFINED, TEXT, INVALID])  # (no pandas import)
_VT_CODE = {v: i for i, v in enumerate(_VT_DICT.to_pylist())}
_VALUE_START = np.frombuffer(b"'TF+-.0123456789/\0", dtype=np.uint8)
_NUM_START = np.frombuffer(b"+-.0123456789", dtype=np.uint8)
_HASH_MULT = np.random.default_rng(20261123).integers(1, 2**63, size=CARD // 8, dtype=np.uint64) | np.uint64(
    1
)


def _string_array(rows: np.ndarray) -> pa.Array:
    """Arrow strings from an (n, w) uint8 array of printable ASCII (zero-copy after one compaction)."""
    rows = np.ascontiguousarray(rows)
    n, w = rows.shape
    fsb = pa.Array.from_buffers(pa.binary(w), n, [None, pa.py_buffer(rows)])
    return pc.cast(pc.cast(fsb, pa.binary()), pa.string(), safe=False)


def _vt_array(codes: np.ndarray) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int8()), _VT_DICT).cast(pa.string())


def _bool_np(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=bool)


def _classify_cards(A: np.ndarray, printable: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first non-blank byte after "= " or 0, plain commentary cards, candidate plain value cards)."""
    n = len(A)
    kw8 = A[:, :8]
    sp = kw8 == 32
    kw_ok = (sp | _KW_LUT[kw8]).all(axis=1) & ~(sp[:, :-1] & ~sp[:, 1:]).any(axis=1)
    K = np.ascontiguousarray(kw8).view("S8").ravel()
    is_comm = (K == b"COMMENT ") | (K == b"HISTORY ") | (K == b" " * 8)
    has_vi = (A[:, 8] == ord("=")) & (A[:, 9] == ord(" "))
    V = A[:, 10:]
    nb = V != 32
    first = nb.argmax(axis=1)
    ch = np.where(nb.any(axis=1), V[np.arange(n), first], 0)
    fast_comm = printable & is_comm
    fast_val = printable & ~is_comm & kw_ok & has_vi & (K != b"CONTINUE") & np.isin(ch, _VALUE_START)
    return ch, fast_comm, fast_val


def _match_values(V: np.ndarray, fv_idx: np.ndarray) -> tuple[np.ndarray, pa.StructArray, np.ndarray]:
    """One RE2 pass over the part after "= " of candidate value cards: (cards kept, their matches, and
    whether each kept number fits int64). Cards whose value astropy reads differently are dropped."""
    m = pc.extract_regex(_string_array(V[fv_idx]), _VALUE_RE)
    ok = _bool_np(m.is_valid())
    num = m.field("n")
    # An empty string followed by a comment holding a quote ('' / it's) is ambiguous: astropy's string
    # rule then reads past the '' to a later quote. Such cards go to astropy, like embedded quotes. (RE2
    # gives "" for a group that took no part: a number or a boolean is not an empty string. WFC3's
    # "Earth's limb" and "detector's" comments follow numbers in every exposure's headers.)
    no_value = pc.and_(pc.equal(m.field("n"), ""), pc.equal(m.field("b"), ""))
    empty_str = pc.and_(pc.equal(m.field("s"), ""), no_value).fill_null(False)
    quote_in_comment = pc.match_substring(m.field("c"), "'").fill_null(False)
    ok &= ~_bool_np(pc.and_(empty_str, quote_in_comment))
    # Integers too long for int64 keep Python's exact value: astropy handles them.
    digits = pc.match_substring_regex(num, r"^[+-]?\d+$").fill_null(False)
    fits64 = pc.match_substring_regex(num, _INT_RE).fill_null(False)
    ok &= ~_bool_np(pc.and_(digits, pc.invert(fits64)))
    keep = pa.array(ok)
    return fv_idx[ok], m.filter(keep), _bool_np(fits64.filter(keep))


def _masked(arr: pa.Array, mask: np.ndarray) -> pa.Array:
    return pc.if_else(pa.array(mask), arr, pa.scalar(None, arr.type))


def _value_columns(
    kw8: np.ndarray, chv: np.ndarray, m: pa.StructArray, fits64: np.ndarray
) -> dict[str, pa.Array]:
    """Columns :data:`_FIELDS` of plain value cards from their RE2 matches; the type follows the first
    character of the value (``chv``)."""
    num = m.field("n")
    is_str = chv == ord("'")
    is_bool = (chv == ord("T")) | (chv == ord("F"))
    is_int = fits64 & np.isin(chv, _NUM_START)
    is_flt = np.isin(chv, _NUM_START) & ~is_int
    codes = np.full(len(chv), _VT_CODE[UNDEFINED], dtype=np.int8)
    codes[is_str] = _VT_CODE[STRING]
    codes[is_bool] = _VT_CODE[BOOL]
    codes[is_int] = _VT_CODE[INT]
    codes[is_flt] = _VT_CODE[FLOAT]
    ints = pc.utf8_ltrim(pc.if_else(pa.array(is_int), num, "0"), "+")
    flts = pc.if_else(pa.array(is_flt), num, "0")
    flts = pc.replace_substring(pc.replace_substring(flts, "D", "E"), "d", "e")
    return {
        "keyword": pc.ascii_rtrim(_string_array(kw8), " "),
        "value_type": _vt_array(codes),
        "value_str": _masked(pc.ascii_rtrim(m.field("s"), " "), is_str),
        "value_int": _masked(pc.cast(ints, pa.int64()), is_int),
        "value_float": _masked(pc.cast(flts, pa.float64()), is_flt),
        "value_bool": _masked(pc.equal(m.field("b"), "T"), is_bool),
        "comment": pc.ascii_rtrim(m.field("c"), " "),
    }


def _commentary_columns(A: np.ndarray, fc_idx: np.ndarray) -> dict[str, pa.Array]:
    """Columns :data:`_FIELDS` of the plain COMMENT/HISTORY/blank cards ``A[fc_idx]``: keyword and free
    text."""
    nc = len(fc_idx)
    return {
        "keyword": pc.ascii_rtrim(_string_array(A[fc_idx, :8]), " "),
        "value_type": _vt_array(np.full(nc, _VT_CODE[TEXT], dtype=np.int8)),
        "value_str": pc.ascii_rtrim(_string_array(A[fc_idx, 8:]), " "),
        "value_int": pa.nulls(nc, pa.int64()),
        "value_float": pa.nulls(nc, pa.float64()),
        "value_bool": pa.nulls(nc, pa.bool_()),
        "comment": pa.array(np.full(nc, "", dtype=object), pa.string()),
    }


def _parse_single(A: np.ndarray, printable: np.ndarray, needed: np.ndarray) -> dict[str, pa.Array]:
    """Parse distinct single (not CONTINUE-joined) 80-byte cards (``printable``: only bytes 32..126);
    columns :data:`_FIELDS`. A card not ``needed`` (only ever a part of a CONTINUE-joined card, parsed
    whole elsewhere) gets the columns of commentary text, never read: astropy is not asked."""
    ch, fast_comm, fast_val = _classify_cards(A, printable)
    fast_comm |= ~needed & printable & ~fast_val
    fv_idx, m, fits64 = _match_values(A[:, 10:], np.flatnonzero(fast_val))
    fast = _value_columns(A[fv_idx, :8], ch[fv_idx], m, fits64)
    fc_idx = np.flatnonzero(fast_comm)
    comm = _commentary_columns(A, fc_idx)
    # Everything else (rare), including the candidates the RE2 pass dropped: astropy.
    plain = fast_comm.copy()
    plain[fv_idx] = True
    sl_idx = np.flatnonzero(~plain)
    slow = _slow_columns([A[i].tobytes().decode("latin-1") for i in sl_idx])
    order = np.concatenate([fv_idx, fc_idx, sl_idx])
    perm = pa.array(np.argsort(order, kind="stable"))
    return {f: pa.concat_arrays([fast[f], comm[f], slow[f]]).take(perm) for f in _FIELDS}


def _images(buf: bytes, kept: np.ndarray, n: int) -> pa.Array:
    """The card images: the buffer itself, cut at the kept cards' offsets (a CONTINUE card belongs to the
    kept card before it)."""
    offsets = np.append(kept * CARD, n * CARD).astype(np.int64)
    text = buf
    if not buf.isascii():
        # latin-1: every byte is one character, so any card round-trips (its UTF-8 takes 2 bytes for
        # each byte >= 0x80, which shifts the offsets)
        text = buf.decode("latin-1").encode("utf-8")
        high = np.concatenate(([0], np.cumsum(np.frombuffer(buf, dtype=np.uint8) >= 0x80)))
        offsets = offsets + high[offsets]
    if len(text) >= 2**31:
        raise ValueError("parse_headers: batch too large (2 GiB of header text); use smaller batches")
    offsets = offsets.astype(np.int32)
    images = pa.Array.from_buffers(pa.string(), len(kept), [None, pa.py_buffer(offsets), pa.py_buffer(text)])
    return images


def parse_headers(headers: Sequence[bytes], odd_bytes: list[tuple[int, int, str]] | None = None) -> pa.Table:
    """Parse the card images of many headers into one table (schema :data:`CARD_SCHEMA`).

    Cards holding bytes outside printable ASCII (a FITS violation) are parsed all the same; if
    ``odd_bytes`` is given, each gets an entry (header index, card index in the header, what).

    Each element of ``headers`` is the raw card images of one HDU (a multiple of 80 bytes, without the
    END card). Row order is header by header, card by card. Identical card images are parsed once:
    across the files of a batch most cards repeat verbatim.
    """
    counts = np.fromiter((len(h) // CARD for h in headers), dtype=np.int64, count=len(headers))
    for k, h in enumerate(headers):
        if len(h) % CARD:
            raise ValueError(f"header {k} is not a whole number of cards")
    n = int(counts.sum())
    if n == 0:
        return CARD_SCHEMA.empty_table()
    buf = b"".join(headers)
    A = np.frombuffer(buf, dtype=np.uint8).reshape(n, CARD)
    header_of = np.repeat(np.arange(len(headers), dtype=np.int32), counts)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))

    # A CONTINUE card belongs to the card before it in the same header (astropy's Header.fromstring).
    is_cont = np.ascontiguousarray(A[:, :8]).view("S8").ravel() == b"CONTINUE"
    is_cont[starts[counts > 0]] = False
    has_cont = np.zeros(n, dtype=bool)
    has_cont[:-1] = is_cont[1:]
    joined = np.flatnonzero(has_cont & ~is_cont)
    kept = np.flatnonzero(~is_cont)

    # Distinct card images (Arrow's hash kernel), parsed once each.
    enc = pc.dictionary_encode(pa.Array.from_buffers(pa.binary(CARD), n, [None, pa.py_buffer(buf)]))
    distinct = np.frombuffer(enc.dictionary.buffers()[1], dtype=np.uint8)[: len(enc.dictionary) * CARD]
    D = distinct.reshape(-1, CARD)
    printable = (D.min(axis=1) >= 32) & (D.max(axis=1) <= 126)
    index = np.asarray(enc.indices.to_numpy(), dtype=np.int64)
    needed = np.zeros(len(D), dtype=bool)
    needed[index[kept]] = True
    uniq = _parse_single(D, printable, needed)
    if odd_bytes is not None and not printable.all():  # rare: found among the distinct cards
        for i in np.flatnonzero(np.isin(index, np.flatnonzero(~printable))):
            hi = int(header_of[i])
            odd_bytes.append((hi, int(i - starts[hi]), _odd_byte(A[i])))

    # Cards continued by CONTINUE cards: parsed whole, appended after the distinct ones.
    long_images = []
    for i in joined:
        j = i + 1
        while j < n and is_cont[j]:
            j += 1
        long_images.append(buf[i * CARD : j * CARD].decode("latin-1"))
    grp = _slow_columns(long_images)
    index[joined] = len(enc.dictionary) + np.arange(len(joined))
    take_np = index[kept].astype(np.int32)
    take = pa.array(take_np)

    hdr = header_of[kept]
    kept_starts = np.searchsorted(hdr, np.arange(len(headers), dtype=np.int32))
    position = (np.arange(len(kept)) - kept_starts[hdr]).astype(np.int32)
    # Kept cards tile the buffer (a CONTINUE card belongs to the kept card before it): the images are
    # the buffer itself, cut at the kept cards' offsets.
    if len(buf) >= 2**31:
        raise ValueError("parse_headers: batch too large (2 GiB of header bytes); use smaller batches")
    images = _images(buf, kept, n)
    cols = [pa.array(hdr), pa.array(position)]
    # String columns stay dictionary-encoded over the distinct cards: no copy of repeated text.
    for f in _FIELDS:
        values = pa.concat_arrays([uniq[f], grp[f]])
        if f in _DICT_FIELDS:
            # nulls live in the indices: Parquet cannot write a dictionary that holds a null
            nulls = np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)[take_np]
            idx = pa.array(take_np, mask=nulls) if nulls.any() else take
            cols.append(pa.DictionaryArray.from_arrays(idx, values.fill_null("")))
        else:
            cols.append(values.take(take))
    cols.append(images)
    return pa.Table.from_arrays(cols, schema=CARD_SCHEMA)


def first_invalid(table: pa.Table) -> tuple[int, str, str] | None:
    """(header index, keyword, reason) of the first card astropy could not parse either, or None."""
    vt = pc.cast(table.column("value_type"), pa.string())
    bad = table.filter(pc.equal(vt, INVALID))
    if bad.num_rows == 0:
        return None
    return (
        bad.column("header")[0].as_py(),
        bad.column("keyword")[0].as_py(),
        bad.column("comment")[0].as_py(),
    )


def _value_of(row: dict[str, Any]) -> Any:
    vt = row["value_type"]
    if vt == BOOL:
        return row["value_bool"]
    if vt == INT:
        return row["value_int"] if row["value_int"] is not None else int(row["value_str"])
    if vt == FLOAT:
        return row["value_float"]
    if vt == COMPLEX:
        re_, im = row["value_str"].strip("()").split(",")
        return complex(float(re_), float(im))
    if vt == UNDEFINED:
        return None
    return row["value_str"]


def cards_from_table(table: pa.Table) -> list[list[Card]]:
    """Turn a :func:`parse_headers` table back into per-header lists of :class:`Card`."""
    out: dict[int, list[Card]] = {}
    for row in table.to_pylist():
        out.setdefault(row["header"], []).append(
            Card(row["keyword"], _value_of(row), row["comment"], row["image"], row["value_type"])
        )
    return [out[k] for k in sorted(out)]


def read_header(src: str | os.PathLike[str] | IO[bytes]) -> list[list[Card]]:
    """All cards of all HDUs of one file, in order: ``result[hdu][position]``."""
    raws = read_raw_headers(src)
    table = parse_headers([r.data for r in raws])
    bad = first_invalid(table)
    if bad is not None:
        label = os.fspath(src) if isinstance(src, str | os.PathLike) else "<file>"
        raise FitsError(label, f"unparsable card: {bad[2]}", bad[0], bad[1])
    cards = {k: v for k, v in enumerate(cards_from_table(table))}
    return [cards.get(k, []) for k in range(len(raws))]


def iter_images(card: Card) -> Iterable[str]:
    """The 80-character physical card images of a logical card (one, or several for CONTINUE)."""
    for i in range(0, len(card.image), CARD):
        yield card.image[i : i + CARD]
