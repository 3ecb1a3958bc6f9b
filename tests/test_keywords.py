"""Keyword documentation from ``schemas/`` (#18): doc, unit, type and the tables that have a keyword."""

from __future__ import annotations

import json

from lake import keywords
from lake.schema import SCHEMA_DIR


def test_units_come_from_the_header_comments() -> None:
    assert keywords.unit_of("exposure duration (seconds)--calculated") == "s"
    assert keywords.unit_of("right ascension of the target (deg) (J2000)") == "deg"
    assert keywords.unit_of("exposure start time (Modified Julian Date)") == "MJD"
    assert keywords.unit_of("commanded gain of CCD") == ""
    assert keywords.unit_of("calibration switch (PERFORM, OMIT)") == ""  # a list of values is no unit
    assert keywords.unit("expstart") == "MJD" and keywords.unit("EXPTIME") == "s"
    assert keywords.unit("nope") == ""


def test_search_a_keyword_and_where_it_is() -> None:
    found = keywords.keywords("exptime").to_pylist()
    top = found[0]
    assert top["keyword"] == "EXPTIME" and top["unit"] == "s" and top["type"] == "double"
    assert "exposure duration" in top["doc"]
    where = top["tables"].split(", ")
    assert {"uvisflt_0", "irraw_0", "master"} <= set(where)
    # every table named has the keyword declared in that HDU of its schema file
    for t in where:
        if t == "master":
            continue
        table, hdu = t.rsplit("_", 1)
        spec = json.loads((SCHEMA_DIR / "headers" / f"{table}.json").read_text())
        assert any(c["keyword"] == "EXPTIME" and int(hdu) in c["hdus"] for c in spec["columns"]), t
    # words of the doc find it too; a table narrows the search
    assert "CCDGAIN" in keywords.keywords("gain of CCD").column("keyword").to_pylist()
    ir = keywords.keywords("", table="irraw").column("tables").to_pylist()
    assert ir and all("irraw_" in t for t in ir)
    assert keywords.keywords("no such keyword at all").num_rows == 0


def test_column_help_names_keyword_doc_unit_and_type() -> None:
    help_ = keywords.column_help(["expstart", "FILTER", "path", "not_a_keyword"])
    assert help_["expstart"] == "EXPSTART · exposure start time (Modified Julian Date) · MJD · double"
    assert help_["FILTER"].startswith("FILTER · ") and help_["path"]  # (a fixed table's column)
    assert "not_a_keyword" not in help_


def test_ql_keywords_command() -> None:
    from click.testing import CliRunner

    from lake.cli import main

    r = CliRunner().invoke(main, ["keywords", "EXPTIME"])
    assert r.exit_code == 0 and r.output.startswith(
        "EXPTIME    double  exposure duration (seconds)--calculated [s]"
    )
    assert "uvisflt_0" in r.output.splitlines()[1]
    r = CliRunner().invoke(main, ["keywords", "DELTATIM", "--table", "irraw_1"])
    assert r.exit_code == 0 and "DELTATIM" in r.output
    r = CliRunner().invoke(main, ["keywords", "no such thing"])
    assert r.exit_code == 1 and r.output == "Error: no keyword matches 'no such thing'\n"


def test_a_lake_lists_only_its_own_tables() -> None:
    """The schemas declare ACS and STIS tables too: a lake's listing names the tables it has with the
    keyword's column, and leaves out keywords it has nowhere."""
    everywhere = keywords.keywords("exptime").to_pylist()[0]["tables"].split(", ")
    assert any(t.startswith(("acs_", "stis_")) for t in everywhere)
    lake_tables = {
        "uvisflt_0": ["path", "hdu", "exptime", "ccdgain"],
        "irdrz_0": ["path", "exptime"],  # (a table the schemas do not name for EXPTIME)
        "uvisflt": ["path", "exptime"],  # (all HDUs: not listed, its HDUs are)
        "master": ["rootname", "exptime"],
    }
    mine = keywords.keywords("exptime", present=lake_tables).to_pylist()[0]["tables"]
    assert mine == "irdrz_0, master, uvisflt_0"
    assert keywords.keywords("path", present=lake_tables).num_rows == 0  # (a header table's own column)
    assert (
        "CCDGAIN"
        not in keywords.keywords("gain of CCD", present={"irdrz_0": ["exptime"]})
        .column("keyword")
        .to_pylist()
    )
    assert keywords.keywords("", table="irdrz_0", present=lake_tables).column("keyword").to_pylist() == [
        "EXPTIME"
    ]
