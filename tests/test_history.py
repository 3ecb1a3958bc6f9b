"""Header versions and time travel (#19), on a generated archive reprocessed with astropy and ingested
again: ``ql history``, the SQL of docs/history.md, reading as of a past commit, and maintenance with
``keep_hours=0`` keeping the history while making the past unreadable, with a clear error.

The tests of this module share one lake and run in order: the last one maintains it.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from astropy.io import fits
from click.testing import CliRunner

import lake
from ingest.run import ingest
from lake.cli import main
from lake.errors import LakeError

ROOT = Path(__file__).resolve().parent.parent
NEW_CAL = "3.7.9 (Jan-01-2026)"


def _edit(
    path: Path, primary: dict[str, object], sci: dict[str, object] | None = None, history: str = ""
) -> None:
    """Reprocess a file's header in place (astropy), and move its mtime on."""
    with fits.open(path, mode="update") as hdul:
        hdul[0].header.update(primary)
        if history:
            hdul[0].header.add_history(history)
        if sci and len(hdul) > 1:
            hdul[1].header.update(sci)
    t = time.time() + 60
    os.utime(path, (t, t))


def _value(path: Path, hdu: int, keyword: str) -> str:
    return str(fits.getheader(path, hdu)[keyword])


@dataclass
class Reprocessed:
    root: Path
    archive: Path
    before: datetime  # after the first ingest, before any reprocessing
    victims: list[str]  # archive paths of the reprocessed flt files
    old_cal: str
    old_crval1: float


@pytest.fixture(scope="module")
def rep(tmp_path_factory: pytest.TempPathFactory) -> Reprocessed:
    from ingest.archivegen.generate import generate

    archive = tmp_path_factory.mktemp("archive")
    generate(archive, datasets=40, seed=7)
    root = tmp_path_factory.mktemp("lake") / "lake"
    ingest(root, str(archive), scheduler="synchronous", batch_files=60)
    time.sleep(0.05)
    before = datetime.now(UTC)
    flts = [p for p in sorted(archive.rglob("*_flt.fits")) if "CRVAL1" in fits.getheader(p, 1)][:3]
    old_cal, old_crval1 = _value(flts[0], 0, "CAL_VER"), float(_value(flts[0], 1, "CRVAL1"))
    refs = {"PFLTFILE": "iref$new2026_pfl.fits", "DARKFILE": "iref$new2026_drk.fits"}
    for p in flts:
        sci = {"CRVAL1": float(_value(p, 1, "CRVAL1")) + 1e-4, "CD1_1": 1.1e-5}
        _edit(p, {"CAL_VER": NEW_CAL, **refs}, sci, history="reprocessed with new flats")
    time.sleep(0.05)
    s = ingest(root, str(archive), scheduler="synchronous")
    assert (s.changed, s.new, s.errors) == (3, 0, 0)
    victims = [p.relative_to(archive).as_posix() for p in flts]
    return Reprocessed(root, archive, before, victims, old_cal, old_crval1)


def test_ql_history_prints_the_versions_and_what_changed(rep: Reprocessed) -> None:
    runner = CliRunner()
    name = Path(rep.victims[0]).name
    out = runner.invoke(main, ["history", name, "--lake", str(rep.root)])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert len(lines) == 1 + 6, lines  # the version, then 6 changes
    assert rep.victims[0] in lines[0] and "status ok -> ok" in lines[0] and "as_of=" in lines[0]
    assert f"  HDU 0 CAL_VER changed: '{rep.old_cal}' -> '{NEW_CAL}'" in lines
    assert any(re.fullmatch(r"  HDU 0 PFLTFILE changed: '.+' -> 'iref\$new2026_pfl.fits'", x) for x in lines)
    assert any(x.startswith("  HDU 0 DARKFILE changed: ") for x in lines)
    assert any(re.fullmatch(r"  HDU 0 HISTORY\[\d+\] added: 'reprocessed with new flats'", x) for x in lines)
    crval = [x for x in lines if "CRVAL1" in x]
    assert len(crval) == 1 and crval[0].startswith("  HDU 1 CRVAL1 changed: ")
    assert float(crval[0].split("'")[1]) == pytest.approx(rep.old_crval1, abs=1e-9)
    assert float(crval[0].split("'")[3]) == pytest.approx(rep.old_crval1 + 1e-4, abs=1e-9)
    assert any(x.startswith("  HDU 1 CD1_1 changed: ") for x in lines)

    only = runner.invoke(main, ["history", rep.victims[0], "-k", "pfltfile", "--lake", str(rep.root)])
    assert only.exit_code == 0 and len(only.output.splitlines()) == 2 and "PFLTFILE" in only.output

    other = next(p for p in lake.read("files", rep.root)["path"] if p not in rep.victims)
    untouched = runner.invoke(main, ["history", other, "--lake", str(rep.root)])
    assert untouched.exit_code == 0 and "no change recorded" in untouched.output

    bad = runner.invoke(main, ["history", "nosuch_flt.fits", "--lake", str(rep.root)])
    assert bad.exit_code == 1 and len(bad.output.strip().splitlines()) == 1
    assert "nosuch_flt.fits: not in the lake" in bad.output and "Traceback" not in bad.output


def _doc_queries() -> list[str]:
    text = (ROOT / "docs" / "history.md").read_text()
    return re.findall(r"```sql\n(.*?)```", text, re.S)


def test_the_sql_of_the_docs_answers_the_questions(rep: Reprocessed) -> None:
    since, every = _doc_queries()
    got = lake.read_sql(since, rep.root).column("path").to_pylist()
    assert got == sorted(rep.victims)
    later = since.replace("2026-01-01", "2999-01-01")
    assert lake.read_sql(later, rep.root).num_rows == 0

    rootname = Path(rep.victims[0]).name.split("_")[0]
    t = lake.read_sql(every.replace("ib000c02q", rootname), rep.root).to_pylist()
    mine = [r for r in t if r["path"] == rep.victims[0]]
    assert [r["cal_ver"] for r in mine] == [rep.old_cal, NEW_CAL]
    assert mine[0]["replaced_at"] is not None and mine[1]["replaced_at"] is None


def test_reading_as_of_a_time_before_the_ingest_gives_the_old_rows(rep: Reprocessed) -> None:
    q = f"SELECT cal_ver FROM uvisflt_0 WHERE path = '{rep.victims[0]}'"
    assert lake.read_sql(q, rep.root).column(0).to_pylist() == [NEW_CAL]
    assert lake.read_sql(q, rep.root, as_of=rep.before).column(0).to_pylist() == [rep.old_cal]
    naive = rep.before.replace(tzinfo=None).isoformat()  # a naive time is UTC
    old = lake.read("uvisflt_1", rep.root, as_of=naive, where=f"path = '{rep.victims[0]}'")
    assert old["crval1"].to_list() == [pytest.approx(rep.old_crval1)]
    header = lake.read_header(rep.victims[0], 0, rep.root, as_of=rep.before)
    assert any(line.startswith("CAL_VER") and rep.old_cal in line for line in header)
    # as of the snapshot a version names: the lake before that change
    sid = lake.read_sql("SELECT any_value(old_snapshot) FROM card_changes", rep.root).column(0)[0].as_py()
    assert lake.read_sql(q, rep.root, as_of=sid).column(0).to_pylist() == [rep.old_cal]
    assert lake.scan("cards", rep.root, as_of=sid, paths=[rep.victims[0]]).collect().height > 0
    out = CliRunner().invoke(main, ["sql", "--as-of", rep.before.isoformat(), q, "--format", "csv",
                                    "--lake", str(rep.root)])  # fmt: skip
    assert out.exit_code == 0 and rep.old_cal in out.output

    with pytest.raises(LakeError, match=r"before the lake's first commit .*earliest readable time is"):
        lake.connect(rep.root, as_of="2001-01-01")
    bad = CliRunner().invoke(main, ["sql", "--as-of", "2001-01-01", q, "--lake", str(rep.root)])
    assert bad.exit_code == 1 and "earliest readable time" in bad.output and "Traceback" not in bad.output
    with pytest.raises(LakeError, match="give a time"):
        lake.read_sql(q, rep.root, as_of="last tuesday")


def test_a_removed_file_is_a_version_too(rep: Reprocessed) -> None:
    gone = rep.archive / rep.victims[2]
    gone.unlink()
    s = ingest(rep.root, str(rep.archive), scheduler="synchronous")
    assert s.removed == 1
    out = CliRunner().invoke(main, ["history", rep.victims[2], "--lake", str(rep.root)])
    assert out.exit_code == 0, out.output
    versions = [x for x in out.output.splitlines() if not x.startswith("  ")]
    assert len(versions) == 2 and "status ok -> missing" in versions[1] and "size" in versions[1]


def test_the_site_shows_history_to_those_who_may_see_the_dataset(rep: Reprocessed) -> None:
    """The Dataset page's History tab and the console's "as of" (team only), through the viewer's
    scope: a guest sees no history of a proprietary dataset and cannot read the past."""
    import csv

    from app.data.history import dataset_history
    from app.data.scope import Scope
    from app.data.viewer import GUEST, Viewer
    from lake import settings
    from lake.errors import AccessDenied

    cfg = {**settings.load({"lake": str(rep.root)}), "archive": str(rep.archive)}
    root = Path(rep.victims[0]).name.split("_")[0]
    team = Scope(rep.root, Viewer(name="alice", team=True), cfg)
    t = dataset_history(team, root).to_pylist()
    assert t[0]["kind"] == "file"
    assert {"CAL_VER", "CRVAL1", "HISTORY"} <= {r["keyword"] for r in t}
    only = dataset_history(team, root, "cal_ver").to_pylist()
    assert [(r["kind"], r["keyword"]) for r in only] == [("file", None), ("changed", "CAL_VER")]

    proposid = int(rep.victims[0].split("/")[0])
    proposals = rep.archive / "proposals.csv"
    kept = proposals.read_text()
    rows = list(csv.DictReader(kept.splitlines()))
    for r in rows:
        r["proprietary_months"] = "1200" if int(r["proposid"]) == proposid else "0"
    with proposals.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    try:
        guest = Scope(rep.root, GUEST, cfg)
        with pytest.raises(AccessDenied, match="proprietary"):
            dataset_history(guest, root)
        seen = guest.console("SELECT DISTINCT rootname FROM card_changes").table.column(0).to_pylist()
        assert root not in seen and set(seen) <= set(guest.public.to_pylist())
        with pytest.raises(AccessDenied, match="team members"):
            Scope(rep.root, GUEST, cfg, as_of=rep.before.isoformat())
    finally:
        proposals.write_text(kept)
    past = Scope(rep.root, Viewer(name="alice", team=True), cfg, resident=False, as_of=rep.before.isoformat())
    q = f"SELECT cal_ver FROM uvisflt_0 WHERE path = '{rep.victims[0]}'"
    assert past.console(q).table.column(0).to_pylist() == [rep.old_cal]
    assert team.console(q).table.column(0).to_pylist() == [NEW_CAL]


def test_the_pages_show_history_and_the_past(rep: Reprocessed, monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("QUICKLAKE_LAKE", str(rep.root))
    monkeypatch.setenv("QUICKLAKE_ARCHIVE", str(rep.archive))
    st.cache_data.clear()
    st.cache_resource.clear()
    team = {"is_logged_in": True, "email": "alice@stsci.edu", "name": "Alice", "groups": ["wfc3-team"]}
    at = AppTest.from_file(str(ROOT / "app" / "streamlit_app.py"), default_timeout=120)
    at.user = team
    at.run()
    at.switch_page("app_pages/dataset.py")
    at.query_params.update(rootname=Path(rep.victims[0]).name.split("_")[0], ds_tab="History")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("versions recorded" in c.value for c in at.caption)
    shown = at.dataframe[-1].value
    assert "CAL_VER" in shown["keyword"].tolist() and NEW_CAL in shown["new_value"].tolist()
    at.switch_page("app_pages/query.py")
    at.query_params.update(tab="SQL")
    at.run()
    q = f"SELECT cal_ver FROM uvisflt_0 WHERE path = '{rep.victims[0]}'"
    at.text_area(key="sql_text").input(q)
    at.text_input(key="sql_as_of").input(rep.before.isoformat())
    at.button(key="sql_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.dataframe[-1].value["cal_ver"].tolist() == [rep.old_cal]
    st.cache_resource.clear()


def test_versions_chain_and_maintenance_keeps_the_history(rep: Reprocessed) -> None:
    """Two more reprocessings of one file (card_changes then has several small files, which compaction
    merges), then maintenance with keep_hours 0: the history stays, the past before it is gone."""
    p = rep.archive / rep.victims[0]
    for v in ("3.8.0 (Mar-01-2026)", "3.8.1 (Jun-01-2026)"):
        _edit(p, {"CAL_VER": v})
        assert ingest(rep.root, str(rep.archive), scheduler="synchronous").changed == 1
    every = _doc_queries()[1].replace("ib000c02q", Path(rep.victims[0]).name.split("_")[0])
    cal = [r["cal_ver"] for r in lake.read_sql(every, rep.root).to_pylist() if r["path"] == rep.victims[0]]
    assert cal == [rep.old_cal, NEW_CAL, "3.8.0 (Mar-01-2026)", "3.8.1 (Jun-01-2026)"]
    history = lake.read("card_changes", rep.root).sort("path", "ingested_at", "hdu", "new_position")
    n_files = len(lake.snapshot(rep.root).tables["card_changes"].files)
    assert n_files >= 4
    before_maint = datetime.now(UTC)

    from lake.maintenance import maintain

    s = maintain(rep.root, keep_hours=0)
    assert "card_changes" in s.compacted
    assert len(lake.snapshot(rep.root).tables["card_changes"].files) < n_files
    after = lake.read("card_changes", rep.root).sort("path", "ingested_at", "hdu", "new_position")
    assert after.equals(history)
    out = CliRunner().invoke(main, ["history", rep.victims[0], "--lake", str(rep.root)])
    assert len([x for x in out.output.splitlines() if not x.startswith("  ")]) == 3  # three versions

    with pytest.raises(
        LakeError, match=r"no longer readable .*expired by maintenance.*earliest readable time is"
    ) as e:
        lake.connect(rep.root, as_of=rep.before)
    earliest = str(e.value).rsplit("earliest readable time is ", 1)[1]
    assert datetime.fromisoformat(earliest) >= before_maint
    q = f"SELECT cal_ver FROM uvisflt_0 WHERE path = '{rep.victims[0]}'"
    assert lake.read_sql(q, rep.root, as_of=earliest).column(0).to_pylist() == ["3.8.1 (Jun-01-2026)"]


def _bytes(files: tuple[str, ...]) -> int:
    return sum(os.path.getsize(f) for f in files)


def test_a_full_reprocessing_costs_under_10_percent_of_cards(tmp_path: Path) -> None:
    """Every file of a generated archive reprocessed (CAL_VER and reference files; CRVAL1 and CD1_1 in
    the first extension where it has them) costs card_changes under a tenth of the cards table."""
    from ingest.archivegen.generate import generate

    archive = tmp_path / "archive"
    generate(archive, datasets=20, seed=3)
    root = tmp_path / "lake"
    ingest(root, str(archive), scheduler="synchronous", batch_files=200)
    files = sorted(archive.rglob("*.fits"))
    for p in files:
        with fits.open(p, mode="update") as hdul:
            # values only, no card added: the header keeps its size, so astropy rewrites it in place
            h0 = hdul[0].header
            for k in ("CAL_VER", "PFLTFILE", "DARKFILE", "BIASFILE"):
                if k in h0:
                    h0[k] = NEW_CAL if k == "CAL_VER" else f"iref$r2026{k[:4].lower()}.fits"
            h1 = hdul[1].header if len(hdul) > 1 else {}
            for k in ("CRVAL1", "CD1_1"):
                if k in h1:
                    h1[k] = float(h1[k]) * 1.000001
        t = time.time() + 60
        os.utime(p, (t, t))
    s = ingest(root, str(archive), scheduler="synchronous", batch_files=200)
    assert s.changed == len(files) and s.errors == 0
    snap = lake.snapshot(root)
    changes = lake.read("card_changes", root)
    assert changes.filter(changes["kind"] == "file").height == len(files)
    with_cal = sum(1 for p in files if "CAL_VER" in fits.getheader(p))
    assert changes.filter(changes["keyword"] == "CAL_VER").height == with_cal > len(files) / 2
    ratio = _bytes(snap.tables["card_changes"].files) / _bytes(snap.tables["cards"].files)
    rows = sum(pq.read_metadata(f).num_rows for f in snap.tables["cards"].files)
    print(f"card_changes {changes.height} rows, {ratio:.1%} of cards ({rows} rows) on disk")
    assert ratio < 0.10
