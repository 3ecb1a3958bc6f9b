"""Hostile inputs (issue #21): no file sinks an ingest, no byte poisons a table, no header hangs the reader.

Every case puts one bad thing beside a good file in a tiny hand-made archive, ingests, and checks that
the ingest completed, the good file reads back through every reader, and the bad one has a ``files``
row that says what is wrong with it.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

import lake
from ingest import fitsheader
from ingest.fitsheader import read_raw_headers
from ingest.run import ingest
from lake.archive import scan_archive
from lake.cli import main
from lake.errors import FitsError

GOOD = "12345/Visit01/iabc01aaq_raw.fits"
BAD = "12345/Visit01/iabc01bbq_raw.fits"


def card(text: str | bytes) -> bytes:
    b = text.encode("latin-1") if isinstance(text, str) else text
    assert len(b) <= 80, b
    return b.ljust(80, b" ")


def hdu(cards: list[str | bytes], data: bytes = b"", end: bool = True) -> bytes:
    h = b"".join(card(c) for c in cards) + (card("END") if end else b"")
    h = h.ljust(-(-len(h) // 2880) * 2880, b" ")
    return h + data.ljust(-(-len(data) // 2880) * 2880, b"\0")


def primary(root: str, extra: list[str | bytes] = (), naxis: list[str] | None = None) -> list[str | bytes]:
    axes = naxis if naxis is not None else ["NAXIS   =                    0"]
    return [
        "SIMPLE  =                    T",
        "BITPIX  =                   16",
        *axes,
        "EXTEND  =                    T",
        f"ROOTNAME= '{root}'",
        "INSTRUME= 'WFC3    '",
        "DETECTOR= 'UVIS    '",
        "DATE-OBS= '2020-01-02'",
        *extra,
    ]


def sci(extra: list[str | bytes] = (), axes: tuple[str, str] = ("4", "2")) -> list[str | bytes]:
    return [
        "XTENSION= 'IMAGE   '",
        "BITPIX  =                   16",
        "NAXIS   =                    2",
        f"NAXIS1  = {axes[0]:>20}",
        f"NAXIS2  = {axes[1]:>20}",
        "PCOUNT  =                    0",
        "GCOUNT  =                    1",
        "EXTNAME = 'SCI     '",
        "EXTVER  =                    1",
        *extra,
    ]


def fits_file(root: str, extra: list[str | bytes] = ()) -> bytes:
    return hdu(primary(root, extra)) + hdu(sci(), b"\1" * 16)


def make_archive(tmp_path: Path) -> Path:
    archive = tmp_path / "archive"
    (archive / GOOD).parent.mkdir(parents=True)
    (archive / GOOD).write_bytes(fits_file("iabc01aaq"))
    return archive


def run_ingest(tmp_path: Path, archive: Path, limit: float = 30.0) -> Path:
    lk = tmp_path / "lake"
    t0 = time.monotonic()
    ingest(lk, str(archive), scheduler="synchronous")
    assert time.monotonic() - t0 < limit
    return lk


def good_file_reads(lk: Path) -> None:
    """The good file is ingested and every reader reads the whole lake."""
    lines = lake.read_header(GOOD, path=lk)
    assert lines[0].startswith("SIMPLE  =") and all(len(x) == 80 for x in lines)
    r = CliRunner().invoke(main, ["header", GOOD, "--lake", str(lk)])
    assert r.exit_code == 0, r.output
    con = lake.connect(lk)
    n = con.execute("SELECT count(*) FROM cards").fetchone()
    assert n is not None and n[0] >= len(lines)
    assert len(con.execute("SELECT * FROM cards").fetchall()) == n[0]
    assert lake.read("cards", path=lk).height == n[0]
    assert lake.scan("cards", path=lk).collect().height == n[0]
    assert lake.read("files", path=lk).height >= 1
    assert file_row(lk, GOOD)[0] == "ok"


def file_row(lk: Path, path: str) -> tuple[str, str | None, str | None]:
    got = (
        lake.connect(lk)
        .execute("SELECT status, error, problems FROM files WHERE path = ?", [path])
        .fetchall()
    )
    assert len(got) == 1, (path, lake.connect(lk).execute("SELECT path, status FROM files").fetchall())
    return got[0]


def errors_listed(lk: Path, *words: str) -> str:
    r = CliRunner().invoke(main, ["errors", "--lake", str(lk)])
    assert r.exit_code == 0, r.output
    for w in words:
        assert w in r.output, (w, r.output)
    return r.output


# -------------------------------------------------------------------------------------------- bytes


@pytest.mark.parametrize(
    ("raw", "value", "what"),
    [
        (b"OBJECT  = 'caf\xe9'            / non-ASCII (latin-1)", "caf\xe9", "non-ASCII byte 0xe9"),
        (b"OBJECT  = '\xc3\xa9t\xc3\xa9'  / UTF-8 bytes", "\xc3\xa9t\xc3\xa9", "non-ASCII byte 0xc3"),
        (b"OBJECT  = 'bad\xff\xfe'         / not UTF-8", "bad\xff\xfe", "non-ASCII byte 0xff"),
        (b"OBJECT  = 'a\x00b'              / NUL", "a\x00b", "control byte 0x00"),
    ],
)
def test_odd_bytes_in_a_card_round_trip_and_are_flagged(
    tmp_path: Path, raw: bytes, value: str, what: str
) -> None:
    archive = make_archive(tmp_path)
    (archive / BAD).write_bytes(fits_file("iabc01bbq", [raw]))
    lk = run_ingest(tmp_path, archive)
    good_file_reads(lk)
    status, error, problems = file_row(lk, BAD)
    assert status == "ok" and error is None
    assert problems is not None and "HDU 0 card 8 OBJECT" in problems and what in problems
    assert problems.startswith("warning:")
    # the card image comes back byte for byte (latin-1: one character per byte)
    lines = lake.read_header(BAD, path=lk)
    assert lines[8].encode("latin-1") == card(raw)
    con = lake.connect(lk)
    got = con.execute("SELECT value_str FROM cards WHERE path = ? AND keyword = 'OBJECT'", [BAD]).fetchone()
    assert got == (value,)
    assert con.execute("SELECT object FROM uvisraw_0 WHERE path = ?", [BAD]).fetchone() == (value,)
    r = CliRunner().invoke(main, ["header", BAD, "--lake", str(lk)])
    assert r.exit_code == 0
    errors_listed(lk, f"problem  {BAD}: warning: HDU 0 card 8 OBJECT", "1 ingested with FITS problems")


def test_unparsable_card_is_a_problem_not_a_lost_file(tmp_path: Path) -> None:
    archive = make_archive(tmp_path)
    (archive / BAD).write_bytes(fits_file("iabc01bbq", ["OBJECT  = 'never closed"]))
    lk = run_ingest(tmp_path, archive)
    good_file_reads(lk)
    status, _, problems = file_row(lk, BAD)
    assert status == "ok" and problems is not None
    assert problems.startswith("error: HDU 0 card 8 OBJECT: unparsable card")


def test_invalid_bitpix_is_recorded(tmp_path: Path) -> None:
    archive = make_archive(tmp_path)
    bad = hdu(primary("iabc01bbq")) + hdu(
        [c.replace("16", "12") if "BITPIX" in c else c for c in sci()], b"\0" * 8
    )
    (archive / BAD).write_bytes(bad)
    lk = tmp_path / "lake"
    s = ingest(lk, str(archive), scheduler="synchronous")
    assert (s.ingested, s.errors, s.problems) == (2, 0, 1) and "1 with FITS problems" in s.lines()[-1]
    good_file_reads(lk)
    status, _, problems = file_row(lk, BAD)
    assert status == "ok" and problems is not None and "error: HDU 1 BITPIX: 12 is not one of" in problems


# ------------------------------------------------------------------------------------ sizes and END


def _sized(naxis: list[str] | None = None, ext_axes: tuple[str, str] = ("4", "2")) -> bytes:
    return hdu(primary("iabc01bbq", naxis=naxis)) + hdu(sci(axes=ext_axes), b"\1" * 16)


@pytest.mark.parametrize(
    ("data", "hdu_no", "keyword"),
    [
        (_sized(naxis=["NAXIS   =                   -1"]), 0, "NAXIS"),
        (_sized(naxis=["NAXIS   =                 1000"]), 0, "NAXIS"),
        (_sized(naxis=["NAXIS   =                    1", "NAXIS1  =                -2880"]), 0, "NAXIS1"),
        (_sized(ext_axes=("-2880", "1")), 1, "NAXIS1"),
        (_sized(ext_axes=("4", "-100000")), 1, "NAXIS2"),  # an extension ending before the file start
        (_sized(naxis=["NAXIS   =                    1"]), 0, "NAXIS1"),  # NAXIS1 missing
    ],
)
def test_impossible_sizes_are_errors_naming_hdu_and_keyword(
    tmp_path: Path, data: bytes, hdu_no: int, keyword: str
) -> None:
    t0 = time.monotonic()
    with pytest.raises(FitsError) as e:
        read_raw_headers(io.BytesIO(data), name="x.fits")
    assert time.monotonic() - t0 < 1
    assert (e.value.hdu, e.value.keyword) == (hdu_no, keyword)
    archive = make_archive(tmp_path)
    (archive / BAD).write_bytes(data)
    lk = run_ingest(tmp_path, archive)
    good_file_reads(lk)
    status, error, _ = file_row(lk, BAD)
    assert status == "error" and error is not None
    assert BAD in error and f"HDU {hdu_no}" in error and keyword in error and "fix" in error
    errors_listed(lk, BAD)


class _CountingFile(io.BytesIO):
    """A file object that records the largest single read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.largest = 0

    def read(self, n: int | None = -1) -> bytes:
        got = super().read(n)
        self.largest = max(self.largest, len(got))
        return got


def test_header_without_end_stops_at_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fitsheader, "MAX_HEADER_BLOCKS", 20)
    filler = [f"HISTORY filler {i}" for i in range(36 * 60)]  # 60 blocks of cards, no END anywhere
    data = hdu(primary("iabc01bbq", filler), end=False) + b"\0" * 2880 * 10
    f = _CountingFile(data)
    with pytest.raises(FitsError) as e:
        read_raw_headers(f, name=BAD)
    assert (e.value.hdu, e.value.keyword) == (0, "END") and "20 header blocks" in str(e.value)
    assert f.largest <= 20 * 2880  # bounded: not the whole file
    archive = make_archive(tmp_path)
    (archive / BAD).write_bytes(data)
    lk = run_ingest(tmp_path, archive)
    good_file_reads(lk)
    status, error, _ = file_row(lk, BAD)
    assert status == "error" and error is not None and BAD in error and "END" in error


def test_blank_tail_is_read_in_bounded_chunks() -> None:
    data = fits_file("iabc01bbq") + b"\0" * (3 << 20)
    f = _CountingFile(data)
    assert len(read_raw_headers(f, name="x.fits")) == 2
    assert f.largest <= 1 << 20


# ------------------------------------------------------------------------------------------- paths


def _symlink_loop(archive: Path) -> str:
    a, b = archive / "12345/Visit01/iabc01ccq_raw.fits", archive / "12345/Visit01/iabc01ddq_raw.fits"
    a.symlink_to(b.name)
    b.symlink_to(a.name)
    return "12345/Visit01/iabc01ccq_raw.fits"


def _dangling(archive: Path) -> str:
    (archive / BAD).symlink_to("nowhere.fits")
    return BAD


def _fifo(archive: Path) -> str:
    os.mkfifo(archive / BAD)
    return BAD


def _folder(archive: Path) -> str:
    (archive / BAD).mkdir()
    return BAD


def _link_to_folder(archive: Path) -> str:
    (archive / BAD).symlink_to(archive / "12345", target_is_directory=True)
    return BAD


def _not_utf8(archive: Path) -> str:
    os.close(
        os.open(
            os.fsencode(archive / "12345/Visit01") + b"/iabc01\xff\xfeq_raw.fits", os.O_CREAT | os.O_WRONLY
        )
    )
    return "12345/Visit01/iabc01\\xff\\xfeq_raw.fits"


def _not_utf8_folder(archive: Path) -> str:
    folder = os.fsencode(archive / "12345") + b"/Visit\xe9"
    os.mkdir(folder)
    with open(folder + b"/iabc01eeq_raw.fits", "wb") as f:
        f.write(fits_file("iabc01eeq"))
    return "12345/Visit\\xe9/iabc01eeq_raw.fits"


def _control_char_name(archive: Path) -> str:
    (archive / "12345/Visit01/iabc01\x01\nq_raw.fits").write_bytes(fits_file("iabc01ffq"))
    return "12345/Visit01/iabc01\x01\nq_raw.fits"


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (_symlink_loop, "symbolic link loop"),
        (_dangling, "broken symbolic link"),
        (_fifo, "not a regular file"),
        (_folder, "is a folder"),
        (_link_to_folder, "link to a folder"),
        (_not_utf8, "not valid UTF-8"),
        (_not_utf8_folder, "not valid UTF-8"),
        (_control_char_name, "does not fit"),
    ],
)
def test_bad_paths_become_error_rows(tmp_path: Path, make: Callable[[Path], str], words: str) -> None:
    archive = make_archive(tmp_path)
    bad = make(archive)
    lk = run_ingest(tmp_path, archive)
    good_file_reads(lk)
    status, error, _ = file_row(lk, bad)
    assert status == "error" and error is not None and words in error and error.startswith(bad)
    errors_listed(lk, words)
    again = ingest(lk, str(archive), scheduler="synchronous")  # the same problem: nothing to redo
    assert (again.changed, again.ingested) == (0, 0)


def test_unreadable_folder_is_an_error_row_and_taken_once_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tests run as root, whom chmod 000 does not stop: the scanner is refused this one folder instead
    archive = make_archive(tmp_path)
    locked = archive / "12345/Visit02"
    locked.mkdir()
    (locked / "iabc02aaq_raw.fits").write_bytes(fits_file("iabc02aaq"))
    real_scandir = os.scandir

    def scandir(path: str) -> object:
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    lk = run_ingest(tmp_path, archive)
    good_file_reads(lk)
    status, error, _ = file_row(lk, "12345/Visit02/")
    assert status == "error" and error is not None and "permission denied" in error
    errors_listed(lk, "12345/Visit02/")
    monkeypatch.setattr(os, "scandir", real_scandir)
    ingest(lk, str(archive), scheduler="synchronous")
    assert file_row(lk, "12345/Visit02/iabc02aaq_raw.fits")[0] == "ok"
    gone = lake.connect(lk).execute("SELECT count(*) FROM files WHERE path = '12345/Visit02/'").fetchone()
    assert gone == (0,)


def test_deep_folders_are_walked_without_recursion(tmp_path: Path) -> None:
    archive = make_archive(tmp_path)
    chain = [archive / "deep"]
    for _ in range(1100):  # deeper than Python's recursion limit
        chain.append(chain[-1] / "d")
    try:
        for d in chain:  # os.makedirs and (on 3.11) shutil.rmtree recurse: one level at a time
            d.mkdir()
        (chain[-1] / "x.fits").write_bytes(b"")
        listing = scan_archive(str(archive))
        deep = [p for p in listing if p.startswith("deep/")]
        assert len(deep) == 1 and deep[0].count("/") == 1101
        lk = run_ingest(tmp_path, archive)
        good_file_reads(lk)
        assert file_row(lk, deep[0])[0] == "error"
    finally:
        (chain[-1] / "x.fits").unlink(missing_ok=True)
        for d in reversed(chain):
            if d.exists():
                d.rmdir()


def test_a_file_in_error_is_retried_whatever_its_mtime(tmp_path: Path) -> None:
    archive = make_archive(tmp_path)
    good = fits_file("iabc01bbq")
    (archive / BAD).write_bytes(b"X" * len(good))
    st = (archive / BAD).stat()
    lk = run_ingest(tmp_path, archive)
    assert file_row(lk, BAD)[0] == "error"
    (archive / BAD).write_bytes(good)  # fixed, same size and mtime (as a chmod would leave it)
    os.utime(archive / BAD, ns=(st.st_atime_ns, st.st_mtime_ns))
    s = ingest(lk, str(archive), scheduler="synchronous")
    assert (s.changed, s.errors) == (1, 0)
    assert file_row(lk, BAD)[0] == "ok"


def test_a_lake_made_before_the_problems_column_still_reads_and_ingests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow as pa

    from lake import schema as sch

    archive = make_archive(tmp_path)
    real = sch.arrow_schema
    old = pa.schema([f for f in real("files") if f.name != "problems"])
    monkeypatch.setattr(sch, "arrow_schema", lambda name: old if name == "files" else real(name))
    lk = run_ingest(tmp_path, archive)  # as the code before files.problems made it
    monkeypatch.setattr(sch, "arrow_schema", real)
    lk_obj = lake.open_lake(lk)
    assert "problems" not in lk_obj.iceberg_schema(lk_obj.pins(), "files").names
    (archive / BAD).write_bytes(fits_file("iabc01bbq", [b"OBJECT  = 'caf\xe9'"]))
    ingest(lk, str(archive), scheduler="synchronous")
    good_file_reads(lk)
    assert file_row(lk, GOOD)[2] is None
    assert "non-ASCII" in (file_row(lk, BAD)[2] or "")


# VmHWM, not getrusage: Linux carries ru_maxrss over exec from the forked copy of the parent (pytest,
# gigabytes late in a full run), while VmHWM belongs to this process's own memory
_PEAK = """
import re, sys
from app.data.preview import render
png = render(sys.argv[1], 0, "zscale", 512)
assert png.startswith(b"\\x89PNG"), png[:8]
status = open("/proc/self/status").read()
print(int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) // 1024)  # MiB
"""


def test_a_preview_reads_only_the_rows_it_draws(tmp_path: Path) -> None:
    """A 4 GiB image (32768 x 32768 float32, written sparse: holes cost no disk) previews at 512 px
    holding a few tens of MiB: one row in 64, block-averaged; it used to load all 4 GiB, and twice that as
    float32 (a public 20 GB mosaic passed 6 GB in 35 s). The pixels drawn are the ones written."""
    import subprocess
    import sys

    import numpy as np

    n = 32768
    cards = [("SIMPLE", "T"), ("BITPIX", "-32"), ("NAXIS", "2"), ("NAXIS1", str(n)), ("NAXIS2", str(n))]
    head = hdu([f"{k:8}= {v:>20}" for k, v in cards])
    path = tmp_path / "mosaic.fits"
    row = np.linspace(0.0, 1.0, n, dtype=">f4").tobytes()
    with open(path, "wb") as f:
        f.write(head)
        for r in range(0, n, 64 * 37):  # some of the rows a 512-px preview reads (every 64th)
            f.seek(len(head) + r * n * 4)
            f.write(row)
        f.truncate(len(head) + -(-(n * n * 4) // 2880) * 2880)
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    run = [sys.executable, "-c", _PEAK, str(path)]
    out = subprocess.run(run, capture_output=True, text=True, timeout=120, env=env, check=True)
    peak_mib = int(out.stdout.split()[-1])
    assert peak_mib < 600, f"{peak_mib} MiB to preview a 4 GiB image"  # imports alone are ~200 MiB
