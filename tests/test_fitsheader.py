"""The header reader agrees with astropy.io.fits card for card."""

from __future__ import annotations

import gzip
import io
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.fitsheader import parse_headers, read_header, read_raw_headers
from lake.errors import FitsError
from tests.conftest import real_files

ASTROPY_DATA = Path(fits.__file__).resolve().parent.parent.parent
ASTROPY_FILES = sorted(
    p for p in ASTROPY_DATA.rglob("*") if p.suffix in {".fits", ".fit", ".fts"} or p.name.endswith(".fits.gz")
)


def astropy_cards(data: bytes) -> list[list[tuple[str, Any, str, str]]]:
    """astropy's parse of the header bytes of every HDU, located by astropy itself.

    astropy's HDU classes rewrite some headers (compressed images, invalid random groups); comparing
    with ``Header.fromstring`` of the bytes in the file compares what is actually written there.
    """
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(io.BytesIO(data), lazy_load_hdus=False, disable_image_compression=True) as hl:
            for h in hl:
                hdr = fits.Header.fromstring(data[h._header_offset : h._data_offset])
                cards = []
                for c in hdr.cards:
                    kw, v = (c.rawkeyword, c.rawvalue) if c.field_specifier else (c.keyword, c.value)
                    if type(v).__name__ == "Undefined":
                        v = None
                    cards.append((kw, v, c.comment, c.image))
                out.append(cards)
    return out


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    if isinstance(a, bool | np.bool_) or isinstance(b, bool):
        return type(b) is bool and bool(a) == b
    return type(a) is type(b) and a == b


def assert_agrees(data: bytes, name: str) -> None:
    expected = astropy_cards(data)
    got = read_header(io.BytesIO(data))
    assert len(got) == len(expected), f"{name}: {len(got)} HDUs, astropy {len(expected)}"
    for h, (ea, eb) in enumerate(zip(expected, got, strict=True)):
        assert len(ea) == len(eb), f"{name} HDU {h}: {len(eb)} cards, astropy {len(ea)}"
        for i, (x, y) in enumerate(zip(ea, eb, strict=True)):
            assert x[0] == y.keyword, f"{name} HDU {h} card {i}"
            assert same_value(x[1], y.value), f"{name} HDU {h} card {i} {x[0]}: {x[1]!r} != {y.value!r}"
            assert x[2] == y.comment, f"{name} HDU {h} card {i} {x[0]} comment"
            assert x[3] == y.image, f"{name} HDU {h} card {i} {x[0]} image"


@pytest.mark.parametrize("path", real_files(), ids=lambda p: p.name)
def test_real_files_agree_with_astropy(path: Path) -> None:
    assert_agrees(path.read_bytes(), path.name)


def test_real_files_present() -> None:
    """Every file PROVENANCE.md lists is in the repository (a fresh clone tests real files), and no other."""
    from tests.conftest import REAL

    listed = set(re.findall(r"^\| `([a-z0-9]+/[^`]+\.fits)` \|", (REAL / "PROVENANCE.md").read_text(), re.M))
    assert len(listed) == 13
    assert {p.relative_to(REAL).as_posix() for p in real_files()} == listed


@pytest.mark.parametrize("path", ASTROPY_FILES, ids=lambda p: p.name)
def test_astropy_test_data_agrees(path: Path) -> None:
    data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    try:
        astropy_cards(data)
    except Exception:
        with pytest.raises(FitsError):
            read_header(io.BytesIO(data))
        return
    assert_agrees(data, path.name)


def test_astropy_test_data_found() -> None:
    assert len(ASTROPY_FILES) >= 40


def test_uvis_flc_special_cards() -> None:
    cards = read_header(Path(real_files()[0]).parent.parent / "wfc3" / "sample_ipppssoot_flc.fits")
    sci = cards[1]
    dp1 = [c for c in sci if c.keyword == "DP1"]
    assert [c.value for c in dp1] == ["EXTVER: 1", "NAXES: 2", "AXIS.1: 1", "AXIS.2: 2"]
    s_region = next(c for c in sci if c.keyword == "S_REGION")
    assert len(s_region.image) > 80 and len(s_region.image) % 80 == 0
    assert s_region.value.startswith("POLYGON")
    assert any(c.keyword == "XTENSION" and c.value == "HDRLET" for h in cards for c in h)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"hello world" * 400, "not a FITS file"),
        (b"SIMPLE  =                    T" + b" " * 50 + b" " * 2800, "no END card"),
    ],
)
def test_bad_input_names_the_problem(data: bytes, reason: str) -> None:
    with pytest.raises(FitsError, match=reason):
        read_raw_headers(io.BytesIO(data), name="bad.fits")


def test_truncated_file(tmp_path: Path) -> None:
    src = (real_files()[0].parent.parent / "wfc3" / "iccz11q4q_ima.fits").read_bytes()
    p = tmp_path / "trunc.fits"
    p.write_bytes(src[: len(src) // 2])
    with pytest.raises(FitsError, match=r"truncated.*HDU \d+"):
        read_raw_headers(p)


_kw = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=1, max_size=8).filter(
    lambda k: (
        k not in {"COMMENT", "HISTORY", "CONTINUE", "END", "SIMPLE", "BITPIX", "NAXIS", "EXTEND"}
        and not k.startswith("NAXIS")
    )
)
_val = st.one_of(
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=120),
    st.complex_numbers(allow_nan=False, allow_infinity=False, max_magnitude=1e10),
)
_com = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_kw, _val, _com), min_size=1, max_size=30), st.lists(_com, max_size=3))
def test_property_headers_built_by_astropy(cards: list[tuple[str, Any, str]], history: list[str]) -> None:
    hdr = fits.Header()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kw, val, com in cards:
            hdr.append(fits.Card(kw, val, com), end=True)
        for h in history:
            hdr["HISTORY"] = h
        buf = io.BytesIO()
        fits.PrimaryHDU(header=hdr).writeto(buf, output_verify="silentfix")
    assert_agrees(buf.getvalue(), "hypothesis")


def test_parse_headers_batch_equals_single() -> None:
    p = real_files()[0].parent.parent / "wfc3" / "sample_ipppssoot_flc.fits"
    raws = [r.data for r in read_raw_headers(p)]
    one = parse_headers(raws)
    many = parse_headers(raws * 3)
    assert many.num_rows == 3 * one.num_rows
    assert many.slice(0, one.num_rows).column("image").to_pylist() == one.column("image").to_pylist()


def test_empty_string_then_quote_in_comment_as_astropy_reads_it() -> None:
    # found by hypothesis: astropy writes ('', "'") as "'' / '" and reads it back as "' /"
    h = fits.Header()
    h["EMPTYQ"] = ("", "'")
    h["EMPTYA"] = ("", "it's")
    buf = io.BytesIO()
    fits.PrimaryHDU(header=h).writeto(buf)
    assert_agrees(buf.getvalue(), "empty string, quote in comment")


def test_wfc3s_quoted_comments_and_long_strings_need_no_astropy(monkeypatch: pytest.MonkeyPatch) -> None:
    # every WFC3 exposure's primary header has "Earth's limb" after a number, and S_REGION as a long
    # string: read by the vectorised reader (importing astropy costs a cron ingest 0.8 s), as astropy does
    h = fits.Header()
    h["SUN_ALT"] = (66.069641, "altitude of the sun above Earth's limb")
    h["IDCTHETA"] = (45.0, "orientation of detector's Y-axis w.r.t. V3 axis")
    h["NPIX"] = (4096, "the detector's pixels")
    h["FLAG"] = (True, "it's set")
    h["S_REGION"] = ("POLYGON ICRS " + " ".join(f"{137.8 + i / 7:.13f} -64.9" for i in range(6)), "footprint")
    h["NOVALUE"] = (None, "nobody's value")
    buf = io.BytesIO()
    fits.PrimaryHDU(header=h).writeto(buf)
    data = buf.getvalue()
    assert b"CONTINUE" in data
    import ingest.fitsheader as fh

    asked: list[str] = []
    real = fh._astropy_card
    monkeypatch.setattr(fh, "_astropy_card", lambda image: asked.append(image) or real(image))
    assert_agrees(data, "quoted comments")
    assert [a[:8] for a in asked] == ["NOVALUE "]  # (no value then a quote: astropy's own rule)
