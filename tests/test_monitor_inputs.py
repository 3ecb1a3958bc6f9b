"""Monitors refuse inputs they must not measure, with a reason in the run and no numbers (#17).

Wrong inputs are made from the real files in tests/data/real: cut-outs (10 x 10 and 11 x 11 flt), a
256 x 256 subarray ima, a stripped 8-bit copy, each relabelled (IMAGETYP, ROOTNAME, EXPSTART) so that a
monitor's selection picks it up.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits

import lake
from ingest.run import ingest
from lake import settings
from lake.jobs import run_job
from monitors.calibration import inputs
from monitors.framework import Refused
from tests.conftest import REAL

WFC3 = REAL / "wfc3"
IR_MONITORS = ("ir-bias", "ir-snowballs", "ir-blobs", "ir-bad-actors", "ir-persistence")
UVIS_MONITORS = ("uvis-darks", "uvis-ctecorr-darks", "uvis-gain", "uvis-eper-cte", "uvis-bowtie",
                 "uvis-contam")  # fmt: skip
MONITORS = IR_MONITORS + UVIS_MONITORS


def _copy(src: str, dst: Path, eight_bit: bool = False, **cards: Any) -> None:
    """A copy of a real file with primary cards changed (and its SCI data as 8-bit integers)."""
    with fits.open(WFC3 / src) as h:
        for k, v in cards.items():
            h[0].header[k] = v
        if eight_bit:
            sci = h["SCI", 1]
            sci.data = np.clip(sci.data, 0, 255).astype(np.uint8)
            for k in ("BSCALE", "BZERO"):
                sci.header.remove(k, ignore_missing=True)
        h.writeto(dst)


@pytest.fixture(scope="module")
def refusals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("refusals")
    archive, lk = base / "archive", base / "lake"
    (archive / "wfc3").mkdir(parents=True)
    d = archive / "wfc3"
    _copy("ibxy01z8q_ima.fits", d / "iqdark01q_ima.fits", ROOTNAME="iqdark01q", IMAGETYP="DARK")  # subarray
    _copy("ibxy01z8q_ima.fits", d / "iqdark01q_raw.fits", ROOTNAME="iqdark01q", IMAGETYP="DARK")  # not a raw
    _copy("test_drizzlepac_flt.fits", d / "iqflat01q_flt.fits", ROOTNAME="iqflat01q", IMAGETYP="FLAT")
    _copy("test_drizzlepac_flt.fits", d / "iqsci001q_flt.fits", ROOTNAME="iqsci001q")  # cut-out
    # a stripped 8-bit flt an hour after it (the persistence monitor's target)
    t = fits.getval(WFC3 / "test_drizzlepac_flt.fits", "EXPSTART") + 2400.0 / 86400.0
    _copy("test_drizzlepac_flt.fits", d / "iqsci002q_flt.fits", eight_bit=True, ROOTNAME="iqsci002q",
          EXPSTART=t)  # fmt: skip
    # UVIS: a 10 x 10 flc cut-out as raw darks (two windows: the first is closed), a bowtie/EPER flat,
    # gain flats and a standard star's flt
    flc = "sample_ipppssoot_flc.fits"
    t0 = fits.getval(WFC3 / flc, "EXPSTART")
    for k, t in enumerate((t0, t0 + 5.0)):
        _copy(flc, d / f"iqudk00{k}q_raw.fits", ROOTNAME=f"iqudk00{k}q", IMAGETYP="DARK", TARGNAME="DARK",
              EXPTIME=900.0, EXPSTART=t)  # fmt: skip
    # bowtie flats of two visits a day apart (the first visit is closed once the second began; it waits)
    for k, root in enumerate(("iquflat1q", "iqubowt1q")):
        _copy(flc, d / f"{root}_raw.fits", ROOTNAME=root, IMAGETYP="FLAT", PROPOSID=12688, EXPTIME=100.0,
              EXPSTART=t0 + k)  # fmt: skip
    # two gain-programme flats a day apart (no pair: the first is alone once the second came; it waits)
    for k in range(2):
        _copy(flc, d / f"iqugain{k}q_raw.fits", ROOTNAME=f"iqugain{k}q", IMAGETYP="FLAT", PROPOSID=12690,
              EXPTIME=100.0, EXPSTART=t0 + k)  # fmt: skip
    _copy(flc, d / "iqustar1q_flt.fits", ROOTNAME="iqustar1q", TARGNAME="GD153")
    ingest(lk, str(archive), scheduler="synchronous", template="{dir}/{stem}.fits")
    cfg = {**settings.load({"lake": str(lk)}), "archive": str(archive), "layout": "{dir}/{stem}.fits",
           "scheduler": "synchronous"}  # fmt: skip
    runs = {m: run_job(lk, m, cfg=cfg) for m in MONITORS}
    again = {m: run_job(lk, m, cfg=cfg) for m in MONITORS}
    yield {"lake": lk, "runs": runs, "again": again}
    shutil.rmtree(base)


@pytest.mark.parametrize("name", MONITORS)
def test_monitors_refuse_wrong_inputs_with_reasons_and_no_numbers(
    refusals: dict[str, Any], name: str
) -> None:
    r = refusals["runs"][name]
    assert r.status == "success" and r.counts["errors"] == 0, (r.error, r.counts)
    assert (
        r.counts["refused"] == r.counts["inputs"] - r.counts["waiting"] > 0  # darks, gain, bowtie: one waits
        and r.counts["measured"] == 0
        and r.counts["rows"] == 0
    )
    table = "monitor_" + name.replace("-", "_")
    rows = lake.read_sql(f"SELECT * FROM {table}", refusals["lake"]).to_pylist()
    assert len(rows) == r.counts["refused"]
    for row in rows:
        why = row["refused"]
        assert why.startswith(row["path"] + ": ") and ("[SCI,1]" in why or "[0]" in why), why
        assert "rebuild" in why  # what to do
        numbers = [v for k, v in row.items() if isinstance(v, float) and k != "expstart"]
        assert not numbers, row  # no measurement
    assert refusals["again"][name].status == "no-work"  # a refused file is not tried again


def test_reasons_name_the_keyword_and_value(refusals: dict[str, Any]) -> None:
    def why(name: str, rootname: str) -> str:
        t = "monitor_" + name.replace("-", "_")
        rows = lake.read_sql(f"SELECT rootname, refused FROM {t}", refusals["lake"]).to_pylist()
        return next(str(r["refused"]) for r in rows if r["rootname"] == rootname)

    snow = why("ir-snowballs", "iqdark01q")
    assert "[0] SUBARRAY = T (APERTURE 'GRISM256')" in snow and "266 x 266, not the 1024 x 1024" in snow
    bias = why("ir-bias", "iqdark01q")
    assert "BITPIX = -32, not 16" in bias and "BUNIT = ELECTRONS/S, not COUNTS" in bias
    assert "NAXIS1 x NAXIS2 = 11 x 11, not the 1014 x 1014" in why("ir-blobs", "iqflat01q")
    assert "BITPIX = 8, not -32" in why("ir-bad-actors", "iqsci002q")
    persist = why("ir-persistence", "iqsci002q")
    assert "BITPIX = 8" in persist  # the target itself is refused first


def test_persistence_refuses_a_cut_out_target_and_names_a_refused_stimulus(tmp_path: Path) -> None:
    from monitors.calibration import ir_persistence

    cut = tmp_path / "x_flt.fits"
    _copy("test_drizzlepac_flt.fits", cut)
    with pytest.raises(Refused, match=r"cut-out"):
        ir_persistence.measure(str(cut), {"path": "x_flt.fits", "rootname": "x", "expstart": 0.0,
                                          "exptime": 1.0, "stimuli": []})  # fmt: skip
    with pytest.raises(Refused, match=r"its stimulus s_flt.fits cannot be used: .*11 x 11"):
        ir_persistence._stimulus_exptime(str(cut), "s_flt.fits")


def test_problems_of_real_and_generated_headers() -> None:
    def probs(path: Path, kind: inputs.Kind, **kw: Any) -> list[str]:
        with fits.open(path) as h:
            return inputs.problems(h[0].header, h["SCI", 1].header, kind, **kw)

    assert len(probs(WFC3 / "sample_ipppssoot_flt.fits", inputs.IR_FLT, imagetyp={"EXT"}, exptime=True)) == 1
    ima = probs(WFC3 / "iccz11q4q_ima.fits", inputs.IR_IMA, imagetyp={"DARK"})
    assert len(ima) == 3 and "IMAGETYP = EXT, not DARK" in ima[2]
    # a full-frame IR flt header as the pipeline writes it passes
    prim = {"SUBARRAY": False, "IMAGETYP": "EXT", "EXPTIME": 1202.9}
    sci = {"BITPIX": -32, "BUNIT": "ELECTRONS/S", "NAXIS1": 1014, "NAXIS2": 1014}
    assert inputs.problems(prim, sci, inputs.IR_FLT, imagetyp={"EXT"}, exptime=True) == []
    assert inputs.problems({**prim, "EXPTIME": 0.0}, sci, inputs.IR_FLT, exptime=True) == [
        "[0] EXPTIME = 0.0, not a positive exposure time in seconds"
    ]


def test_a_bad_frame_is_left_out_of_its_superdark_window(tmp_path: Path) -> None:
    """One cut-out among the frames of a window does not sink it: the superdark is made of the others and
    its rows say which frame was left out and why."""
    from ingest.archivegen.features import Instrument
    from ingest.archivegen.generate import _file_hdus, plan, write_file
    from monitors.calibration import uvis_darks

    e = next(e for e in plan(60, 5) if e.detector == "UVIS" and e.imagetyp == "DARK")
    good = tmp_path / f"{e.rootname}_raw.fits"
    write_file(good, _file_hdus(e, "raw", Instrument(5), "sparse")[0])
    bad = tmp_path / "iqcut001q_raw.fits"
    _copy("sample_ipppssoot_flc.fits", bad, IMAGETYP="DARK", TARGNAME="DARK", EXPTIME=900.0)
    members = [{"rootname": r, "expstart": e.expstart, "abs_path": str(p), "path": p.name}
               for r, p in ((e.rootname, good), ("iqcut001q", bad))]  # fmt: skip
    kept, headers, left = uvis_darks.usable(members)
    assert [m["rootname"] for m in kept] == [e.rootname] and list(headers) == [str(good)]
    assert len(left) == 1 and left[0].startswith("iqcut001q_raw.fits: [SCI,1] BITPIX = -32, not 16")
    rows = uvis_darks.window({**members[0], "members": members})
    assert rows and all(r["n_frames"] == 1 and r["left_out"] == left[0] for r in rows)
    assert all(r["median_dark"] > 0 for r in rows)
    with pytest.raises(Refused, match=r"no frame of the window can be used: iqcut001q_raw\.fits"):
        uvis_darks.usable(members[1:])


def test_a_run_whose_every_input_failed_is_failed_and_says_why(tmp_path: Path) -> None:
    """An archive setting that points elsewhere (cron without its settings) makes every read fail: the
    run is red and names a file, not "success: 1 files measured" with nothing measured."""
    archive, lk = tmp_path / "archive", tmp_path / "lake"
    (archive / "wfc3").mkdir(parents=True)
    _copy("sample_ipppssoot_flc.fits", archive / "wfc3" / "iqustar1q_flt.fits", ROOTNAME="iqustar1q",
          TARGNAME="GD153")  # fmt: skip
    ingest(lk, str(archive), scheduler="synchronous", template="{dir}/{stem}.fits")
    cfg = {**settings.load({"lake": str(lk)}), "archive": str(tmp_path / "elsewhere"),
           "layout": "{dir}/{stem}.fits", "scheduler": "synchronous"}  # fmt: skip
    r = run_job(lk, "uvis-contam", cfg=cfg)
    assert r.status == "failed" and r.counts == {}, (r.status, r.counts)
    assert r.error and "all 1 inputs failed" in r.error and "iqustar1q_flt.fits" in r.error, r.error
    (tmp_path / "elsewhere").symlink_to(archive)  # the setting put right: the next run measures it
    assert run_job(lk, "uvis-contam", cfg=cfg).status == "success"
