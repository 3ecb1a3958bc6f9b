"""``ql header``: each HDU after a line naming it; ``--raw`` prints the 80-character cards only."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import lake
from lake.cli import _hdu_label, main


def test_hdu_label() -> None:
    sci = ["XTENSION= 'IMAGE   '", "EXTNAME = 'SCI     '           / extension name", "EXTVER  =  2 / ver"]
    assert _hdu_label(4, sci) == "# HDU 4 (SCI, ver 2)"
    assert _hdu_label(7, sci[:2]) == "# HDU 7 (SCI)"
    assert _hdu_label(0, ["SIMPLE  =                    T"]) == "# HDU 0 (PRIMARY)"
    assert _hdu_label(3, ["XTENSION= 'BINTABLE'"]) == "# HDU 3"
    assert _hdu_label(1, ["XTENSION= 'IMAGE'", "EXTNAME = 'O''NEIL'"]) == "# HDU 1 (O''NEIL)"


def test_header_separates_hdus_and_raw_prints_cards(small_lake: Path) -> None:
    flt = lake.read("files", small_lake, where="filetype = 'flt' AND status = 'ok'")["path"][0]
    cards = lake.read_header(flt, path=small_lake)
    raw = CliRunner().invoke(main, ["header", flt, "--lake", str(small_lake), "--raw"])
    assert raw.exit_code == 0 and raw.output.splitlines() == cards  # what `ql header` printed before
    r = CliRunner().invoke(main, ["header", flt, "--lake", str(small_lake)])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    labels = [line for line in lines if line.startswith("# HDU")]
    assert labels[:3] == ["# HDU 0 (PRIMARY)", "# HDU 1 (SCI, ver 1)", "# HDU 2 (ERR, ver 1)"]
    assert [x for x in lines if x and not x.startswith("# HDU")] == [c for c in cards if c]
    assert lines[lines.index("# HDU 1 (SCI, ver 1)") - 1] == ""  # a blank line between HDUs
    assert lines[lines.index("# HDU 1 (SCI, ver 1)") + 1].startswith("XTENSION=")
    one = CliRunner().invoke(main, ["header", flt, "--lake", str(small_lake), "--ext", "2"])
    assert one.output.splitlines()[0] == "# HDU 2 (ERR, ver 1)"
    assert one.output.splitlines()[1:] == lake.read_header(flt, 2, small_lake)
    # an extension by name, as astropy names them: the first SCI, the second chip's SCI
    sci = CliRunner().invoke(main, ["header", flt, "--lake", str(small_lake), "--ext", "sci"])
    assert sci.output.splitlines()[0] == "# HDU 1 (SCI, ver 1)"
    two = CliRunner().invoke(main, ["header", flt, "--lake", str(small_lake), "--ext", "SCI,2"])
    assert two.output.splitlines()[0] == "# HDU 4 (SCI, ver 2)"
    assert two.output.splitlines()[1:] == lake.read_header(flt, 4, small_lake)
    bad = CliRunner().invoke(main, ["header", flt, "--lake", str(small_lake), "--ext", "SCI,9"])
    assert bad.exit_code == 2 and "has no HDU 'SCI,9'; its HDUs: 0 (PRIMARY), 1 (SCI, ver 1)" in bad.output


def test_header_of_a_bare_name_is_located_by_its_rootname(
    small_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bare name or an absolute path is found through the rootname's Bloom filters of ``files``, without
    reading every path (``_named``, the fallback for names whose rootname comes from the header)."""
    from lake import access

    flt = lake.read("files", small_lake, where="filetype = 'flt' AND status = 'ok'")["path"][0]
    cards = lake.read_header(flt, path=small_lake)
    name = Path(flt).name

    def scanned(*_: object) -> list[str]:
        raise AssertionError("every path read")

    with monkeypatch.context() as m:
        m.setattr(access, "_named", scanned)
        assert lake.read_header(name, path=small_lake) == cards
        assert lake.read_header(f"/somewhere/archive/{flt}", path=small_lake) == cards
        r = CliRunner().invoke(main, ["header", name, "--lake", str(small_lake), "--raw"])
        assert r.exit_code == 0 and r.output.splitlines() == cards
        assert lake.read_header(name.removesuffix(".fits"), path=small_lake) == cards  # (no .fits)
        # a dataset's name: its files, to pick one (from the rootname's files, every path unread)
        r = CliRunner().invoke(main, ["header", name[:9], "--lake", str(small_lake)])
        assert r.exit_code == 1 and f"{name[:9]} is a dataset; give one of its files: " in r.output
        assert name in r.output and "Traceback" not in r.output
    snap = lake.snapshot(small_lake)
    assert access._named(snap, name) == [flt]  # the fallback finds it too
    assert access._named(snap, "nothere_flt.fits") == []
    r = CliRunner().invoke(main, ["header", "nothere_flt.fits", "--lake", str(small_lake)])
    assert r.exit_code == 1 and "not in the lake" in r.output and "Traceback" not in r.output


# A `ql` process that runs these, then says whether pandas was imported (pyarrow imports it at the first
# pa.array call: a third of a reading command's time, and they have no use for it)
_NO_PANDAS = """
import runpy, sys
sys.argv = ["ql", *sys.argv[1:]]
try:
    runpy.run_module("lake", run_name="__main__")
except SystemExit as e:
    assert not e.code, e.code
assert "pandas" not in sys.modules, "pandas was imported"
"""


def test_reading_commands_import_no_pandas(small_lake: Path) -> None:
    import subprocess
    import sys

    from lake.cli import ORIGINAL_QUERY

    flt = lake.read("files", small_lake, where="filetype = 'flt' AND status = 'ok'")["path"][0]
    state = "SELECT count(*) FROM job_runs"
    for args in (["header", flt], ["sql", ORIGINAL_QUERY], ["sql", state], ["tables"]):
        cmd = [sys.executable, "-c", _NO_PANDAS, *args, "--lake", str(small_lake)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        assert r.returncode == 0, (args, r.stderr[-2000:])


def test_column_gives_what_pa_array_gives() -> None:
    import pyarrow as pa
    import pytest

    from lake.pylist import column

    for values in ([], ["a", None, "é"], [1, None, -3], [1, 2.5, None], [None, None], [2.5], [True, None]):
        want = pa.array(values, pa.string() if not values else None)
        got = column(values)
        got.validate(full=True)
        assert got.type == want.type and got.equals(want), values
    for bad in ([2**70], [1, "a"]):
        with pytest.raises((OverflowError, pa.ArrowInvalid)):
            pa.array(bad)
        with pytest.raises((OverflowError, pa.ArrowInvalid)):
            column(bad)
