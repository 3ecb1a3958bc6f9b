"""Every real file ingests (#20): the layout is an ordered list of templates (the archive's own, HAP
single-visit and sky-cell names), identity the name does not give comes from the header, and files
sharing a rootname and type in different folders are both kept and reported as duplicates."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from astropy.io import fits
from click.testing import CliRunner

import lake
from ingest.run import ingest
from lake import settings
from lake.cli import main
from lake.errors import LayoutError, MisfiledError
from lake.layout import DEFAULT_TEMPLATES, Layout
from tests.conftest import REAL, real_files

HAP_FLC = "hst_11665_06_wfc3_uvis_f555w_ib4606c5_flc.fits"  # what HAP names the sample flc ib4606c5q


def test_default_layouts_parse_archive_and_hap_names() -> None:
    lay = Layout()
    ap = lay.parse("11665/Visit06/" + HAP_FLC)
    assert (ap.proposid, ap.visit, ap.rootname, ap.filetype) == (11665, "06", None, "flc")
    ap = lay.parse("hst_11665_06_wfc3_uvis_total_ib4606_drc.fits")
    assert (ap.proposid, ap.visit, ap.filetype) == (11665, "06", "drc")
    ap = lay.parse("skycells/hst_skycell-p2429x12y01_acs_wfc_f435w_all_drc.fits")
    assert (ap.proposid, ap.rootname, ap.filetype, ap.template) == (None, None, "drc", DEFAULT_TEMPLATES[2])
    assert lay.parse("14452/Visit01/id3101ciq_raw.fits").template == DEFAULT_TEMPLATES[0]
    with pytest.raises(MisfiledError):  # the first template that fits decides, its checks included
        lay.parse("11665/Visit07/ib4606c5q_flt.fits")
    with pytest.raises(LayoutError, match="does not fit the archive layout"):
        lay.parse("notes/readme_raw.fits")
    assert Layout("{dir}/{stem}.fits; {proposid}/{rootname}_{filetype}.fits").templates[1].startswith("{pro")


def test_layout_setting_is_a_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.load()["layout"] == list(DEFAULT_TEMPLATES)
    monkeypatch.setenv("QUICKLAKE_LAYOUT", "{dir}/{stem}.fits;{proposid}/{rootname}_{filetype}.fits")
    assert settings.load()["layout"] == ["{dir}/{stem}.fits", "{proposid}/{rootname}_{filetype}.fits"]
    monkeypatch.delenv("QUICKLAKE_LAYOUT")
    cfg = tmp_path / "q.toml"
    cfg.write_text(
        settings.toml_for({**settings.load(), "layout": [*DEFAULT_TEMPLATES, "{dir}/{stem}.fits"]})
    )
    monkeypatch.setenv("QUICKLAKE_CONFIG", str(cfg))
    assert settings.load()["layout"] == [*DEFAULT_TEMPLATES, "{dir}/{stem}.fits"]
    # the site gets the settings as variables: the list survives the trip
    from app.site import environment

    monkeypatch.setenv("QUICKLAKE_LAYOUT", environment(settings.load())["QUICKLAKE_LAYOUT"])
    assert settings.load()["layout"] == [*DEFAULT_TEMPLATES, "{dir}/{stem}.fits"]


def _archive_of_real_names(archive: Path) -> dict[str, str]:
    """The real files under the names the archive gives them (their FILENAME card), standard products in
    ``<PROPOSID>/Visit<NN>/``, the sky cell in a folder of its own, and the sample flc once more under
    its HAP single-visit name in another folder. Returns archive path → real file."""
    placed = {}
    for f in real_files():
        h = fits.getheader(f, 0)
        name = h.get("FILENAME") or f.name
        if name.startswith("hst_"):
            rel = f"skycells/{name}"
        elif h.get("PROPOSID") is not None:
            rel = f"{h['PROPOSID']}/Visit{name[4:6].upper()}/{name}"
        else:  # the headerlet's primary names no proposal: filed by its name's visit, proposal unknown
            rel = f"0/Visit{name[4:6].upper()}/{name}"
        placed[rel] = f.relative_to(REAL).as_posix()
    placed[f"hap/11665/{HAP_FLC}"] = "wfc3/sample_ipppssoot_flc.fits"
    for rel, src in placed.items():
        (archive / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REAL / src, archive / rel)
    return placed


def test_every_real_file_ingests_under_its_archive_name(tmp_path: Path) -> None:
    archive, lk = tmp_path / "archive", tmp_path / "lake"
    placed = _archive_of_real_names(archive)
    s = ingest(lk, str(archive), scheduler="synchronous")  # the default layouts
    assert (s.ingested, s.errors) == (len(placed), 0) == (len(real_files()) + 1, 0)
    rows = {r["path"]: r for r in lake.read("files", path=lk).to_dicts()}
    assert set(rows) == set(placed) and {r["status"] for r in rows.values()} == {"ok"}
    hap = rows[f"hap/11665/{HAP_FLC}"]
    want = ("ib4606c5q", 11665, "06", "flc")
    assert (hap["rootname"], hap["proposid"], hap["visit"], hap["filetype"]) == want
    cell = rows["skycells/hst_skycell-p1749x18y06_wfc3_uvis_f658n_all_drc.fits"]
    assert (cell["rootname"], cell["proposid"]) == ("hst_skycell-p1749x18y06_wfc3_uvis_f658n_all", 16492)
    # every card of every file reached the lake
    n_cards = lake.connect(lk).execute("SELECT path, count(*) FROM cards GROUP BY path").fetchall()
    assert {p for p, n in n_cards if n > 0} == set(placed)
    # both copies of ib4606c5q's flc are kept, and reported
    r = CliRunner().invoke(main, ["errors", "--lake", str(lk)])
    assert r.exit_code == 0, r.output
    dup = [ln for ln in r.output.splitlines() if ln.startswith("duplicate")]
    assert dup == [f"duplicate ib4606c5q flc: 2 files, all ingested: 11665/Visit06/ib4606c5q_flc.fits, "
                   f"hap/11665/{HAP_FLC}"]  # fmt: skip
    assert "1 datasets with duplicate files" in r.output
    # HAP names give no rootname: they are not one dataset 'hst' filed under two proposal folders
    from lake.jobs import run_job

    cfg = {**settings.load({"lake": str(lk)}), "archive": str(archive), "scheduler": "synchronous"}
    run = run_job(lk, "check-duplicate-proposal-folders", cfg=cfg)
    assert (run.status, run.counts["problems"]) == ("success", 0), (run.error, run.counts)


def test_real_files_as_they_are_with_a_catch_all_template(tmp_path: Path) -> None:
    lk = tmp_path / "lake"
    s = ingest(lk, str(REAL), scheduler="synchronous", template=[*DEFAULT_TEMPLATES, "{dir}/{stem}.fits"])
    assert (s.ingested, s.errors) == (len(real_files()), 0)
    got = dict(lake.connect(lk).execute("SELECT path, rootname FROM files").fetchall())
    assert got["wfc3/test_drizzlepac_flt.fits"] == "ib3y01c6q"  # from ROOTNAME, not the name
    assert got["wfc3/ia1d23dmq_flt_hlet.fits"] == "ia1d23dmq"  # no ROOTNAME: from the name
