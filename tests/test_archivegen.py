"""The generated archive: valid FITS everywhere, real keyword sets, and pixels that hold the truth table."""

from __future__ import annotations

import itertools
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import fitsio
import numpy as np
import pyarrow.parquet as pq
import pytest
from astropy.io import fits

from ingest.archivegen import pixels as px
from ingest.archivegen.features import Instrument, years_since_2009
from ingest.archivegen.generate import TRUTH_FILE, Exposure, generate, plan
from lake.errors import GeneratorError
from tests.conftest import REAL

SEED = 5


@pytest.fixture(scope="module")
def pixel_archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("pixarchive")
    generate(out, datasets=110, seed=SEED, pixels="sparse")
    yield out
    shutil.rmtree(out)  # free the disk for the modules after this one


def _files(root: Path, pattern: str = "*.fits") -> list[Path]:
    return sorted(root.rglob(pattern))


def _primary(path: Path) -> fits.Header:
    return fits.getheader(path, 0)


def test_every_file_opens_in_astropy_and_fitsio_without_warnings(pixel_archive: Path) -> None:
    files = _files(pixel_archive)
    # 110 exposures x 5 files (raw, flt/ima, flc/flt, spt, trl) plus each association's products
    assert len(files) > 110 * 5 and any(f.name.endswith("_asn.fits") for f in files)
    read: set[str] = set()  # the pixels of the first file of each type (all of them: a third of the test)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for f in files:
            with fits.open(f) as hl:
                hl.verify("exception")
                kind = f.name.rsplit("_", 1)[-1]
                for h in hl:
                    if h.header.get("QLROWS") and kind not in read:
                        assert h.data is not None
                if any(h.header.get("QLROWS") for h in hl):
                    read.add(kind)
            with fitsio.FITS(str(f)) as ff:
                for h in ff:
                    h.read_header()
    assert {"raw.fits", "flt.fits"} <= read


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    generate(tmp_path / "a", 14, seed=3, pixels="sparse")
    # the bytes do not depend on where or in which order the chunks run: here, or on two Dask workers
    generate(tmp_path / "b", 14, seed=3, pixels="sparse", scheduler="local", workers=2)
    fa = [p.relative_to(tmp_path / "a") for p in _files(tmp_path / "a")]
    assert fa == [p.relative_to(tmp_path / "b") for p in _files(tmp_path / "b")]
    for rel in fa:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    ta, tb = (pq.read_table(tmp_path / d / TRUTH_FILE) for d in "ab")
    assert ta.equals(tb)


def _keywords(h: fits.Header) -> set[str]:
    return {k for k in h if k not in {"", "HISTORY", "COMMENT"}}


ADDED = {"QLROWS", "BZERO", "BSCALE"}  # what the generator may add to a real template


@pytest.mark.parametrize(
    ("generated", "real", "ext"),
    [("*_flc.fits", "wfc3/sample_ipppssoot_flc.fits", 0), ("*_flc.fits", "wfc3/sample_ipppssoot_flc.fits", 1),
     ("*_ima.fits", "wfc3/iccz11q4q_ima.fits", 0), ("*_ima.fits", "wfc3/iccz11q4q_ima.fits", 1)],
)  # fmt: skip
def test_keyword_sets_match_real_files(pixel_archive: Path, generated: str, real: str, ext: int) -> None:
    mine = _keywords(fits.getheader(_files(pixel_archive, generated)[0], ext))
    theirs = _keywords(fits.getheader(REAL / real, ext))
    assert theirs - mine == set()
    assert mine - theirs <= ADDED | {"EXPNAME", "ROOTNAME"}


def _raw_dark(pixel_archive: Path) -> Path:
    for f in _files(pixel_archive, "*_raw.fits"):
        h = _primary(f)
        if h["DETECTOR"] == "UVIS" and h["IMAGETYP"] == "DARK":
            return f
    raise AssertionError("no UVIS raw dark")


def test_planted_hot_pixels_are_hot_in_the_raw_dark(pixel_archive: Path) -> None:
    inst = Instrument(SEED)
    truth = pq.read_table(pixel_archive / TRUTH_FILE).to_pylist()
    f = _raw_dark(pixel_archive)
    t = _primary(f)["EXPSTART"]
    with fits.open(f) as hl:
        sci = hl[1].data.astype(float)  # SCI,1 = UVIS2 = chip 2; raw row = image row, col + 25 / + 85
    # the brighter ones (>= 120 e-/hr, 30 e- in 900 s): fainter ones are planted too, around 54 e-/hr
    hot = [r for r in truth if r["feature"] == "hot_pixel" and r["chip"] == 2 and r["start_mjd"] <= t
           and (r["end_mjd"] is None or r["end_mjd"] > t) and r["value"] >= 120]  # fmt: skip
    assert len(hot) > 10
    xs = np.array([int(r["x"]) for r in hot])
    ys = np.array([int(r["y"]) for r in hot])
    cols = np.where(xs < 2048, xs + 25, xs + 85)
    bias = np.where(xs < 2048, inst.uvis_bias["C"], inst.uvis_bias["D"])
    excess = sci[ys, cols] - bias
    assert np.mean(excess > 9) > 0.95  # hot: > 9 DN in a 900 s dark (54 e-/hr)
    # the other pixels of a planted row are dark current plus noise only
    row = sci[ys[0], 25:2073]
    dark_e = inst.dark_rate(t) * 0.25 + inst.flash_level("DARK", t)
    assert abs(np.median(row) - inst.uvis_bias["C"] - dark_e / inst.uvis_gain["C"]) < 1.5
    # rows the sparse archive did not simulate are holes, and the header says which rows hold data
    assert np.all(sci[600] == 32768)
    assert "256:320" in fits.getheader(f, 1)["QLROWS"]


def test_eper_trail_follows_the_truth(pixel_archive: Path) -> None:
    inst = Instrument(SEED)
    for f in _files(pixel_archive, "*_raw.fits"):
        h = _primary(f)
        # a flat well below full well (a bowtie visit's saturating flat has a trail of its own regime)
        if h["DETECTOR"] == "UVIS" and h["IMAGETYP"] == "FLAT" and 100 <= h["EXPTIME"] <= 1000:
            break
    else:
        raise AssertionError("no UVIS raw flat")
    with fits.open(f) as hl:
        sci = hl[1].data.astype(float)  # chip 2: parallel overscan rows 2051..2069 follow image row 2050
    left = slice(25 + 100, 25 + 1900)
    bias = inst.uvis_bias["C"]
    signal_e = np.median(sci[2040:2051, left] - bias) * inst.uvis_gain["C"]
    # means, not medians: the trail's rows hold a few DN, and a median of integer DN is quantised (it put
    # the loss 4-10 % low)
    deferred_e = np.sum(np.mean(sci[2051:2066, left], axis=1) - bias) * inst.uvis_gain["C"]
    cte = 1 - deferred_e / (signal_e * inst.N_PARALLEL)
    expect = 1 - inst.cte_loss(h["EXPSTART"], signal_e)
    assert abs(cte - expect) < 0.1 * (1 - expect)


def test_ir_zeroth_read_and_blobs_follow_the_truth(pixel_archive: Path) -> None:
    inst = Instrument(SEED)
    raws = [f for f in _files(pixel_archive, "*_raw.fits") if _primary(f)["DETECTOR"] == "IR"]
    checked = 0
    for f in raws:
        h = _primary(f)
        with fits.open(f) as hl:
            if "QLROWS" not in hl[1].header:
                continue
            nsamp = h["NSAMP"]
            zeroth = hl[("SCI", nsamp)].data.astype(float)
        t = h["EXPSTART"]
        for q, (ys, xs) in {
            "A": (slice(200, 240), slice(10, 500)),
            "C": (slice(700, 740), slice(524, 1014)),
        }.items():
            assert abs(np.median(zeroth[ys, xs]) - inst.ir_bias(q, t)) < 3, (f.name, q)
        checked += 1
    assert checked >= 3
    # blobs: an IR flat after a blob's first date shows the central loss
    truth = [r for r in pq.read_table(pixel_archive / TRUTH_FILE).to_pylist() if r["feature"] == "blob"]
    for f in _files(pixel_archive, "*_flt.fits"):
        h = _primary(f)
        if h["DETECTOR"] != "IR" or h["IMAGETYP"] != "FLAT" or h["EXPTIME"] < 100:
            continue
        present = [b for b in truth if b["start_mjd"] <= h["EXPSTART"]]
        if not present:
            continue
        sci = fits.getdata(f, 1)
        b = present[0]
        yc, xc = round(b["y"]), round(b["x"])
        # the level around the blob (an on-orbit flat's illumination varies across the array)
        yy, xx = np.mgrid[0 : sci.shape[0], 0 : sci.shape[1]]
        ring = (np.hypot(yy - b["y"], xx - b["x"]) > b["size"] + 2) & (
            np.hypot(yy - b["y"], xx - b["x"]) < 30
        )
        level = np.median(sci[ring])
        core = sci[yc - 1 : yc + 2, xc - 1 : xc + 2].mean()  # within 1.4 px of the centre: ~98 % of the depth
        assert 1 - core / level == pytest.approx(b["value"], abs=0.015)
        return
    pytest.fail("no IR flat with a blob")


def test_snowballs_land_where_the_truth_says() -> None:
    inst = Instrument(SEED)
    e = Exposure(
        "iabc01x1q", 12695, "IR", "DARK", "DARK", 0.0, 0.0, "BLANK", 36000.0, 57000.0, "NONE", "x", ()
    )
    rows = px.ir_rows("sparse")
    rng = np.random.default_rng(1)
    cum, _gain, balls, _fluence = px.ir_ramp(inst, e, 16, rows, rng)
    assert len(balls) >= 2  # 0.6 per hour over 10 hours
    for b in balls:
        read = 16 - b["read"]
        r = int(np.flatnonzero(rows == round(b["y"]) + 5)[0])
        x = round(b["x"]) + 5
        jump = cum[read, r, x] - cum[read - 1, r, x]
        assert jump > 1e4  # the charge arrives in that read, not before
        assert cum[read - 1, r, x] - cum[0, r, x] < 3e3  # dark current only: 0.048 e-/s for up to 10 h


def test_ir_dark_programme_takes_16_read_ramps_in_every_sample_sequence() -> None:
    """IR darks as the dark programme takes them (a reference dark per sample sequence, DHB 7.4): every
    full-frame sequence with all 16 reads, visits of back-to-back ramps that never overlap, and enough
    hours of dark exposure that a snowball rate of order one an hour leaves several to find."""
    sequences = {"RAPID", "SPARS10", "SPARS25", "SPARS50", "SPARS100", "SPARS200",
                 "STEP25", "STEP50", "STEP100", "STEP200", "STEP400"}  # fmt: skip
    for seed in (5, 11):
        darks = sorted((e for e in plan(200, seed) if e.detector == "IR" and e.imagetyp == "DARK"),
                       key=lambda e: e.expstart)  # fmt: skip
        assert {e.samp_seq for e in darks} == sequences
        assert {e.nsamp for e in darks} == {16} and {e.filter for e in darks} == {"BLANK"}
        for a, b in itertools.pairwise(darks):
            assert a.expstart + a.exptime / 86400.0 < b.expstart, (a.rootname, b.rootname)
        visits: dict[str, list[float]] = {}
        for e in darks:
            visits.setdefault(e.rootname[:6], []).append(e.expstart)
        assert all(max(t) - min(t) < 0.5 for t in visits.values())  # a visit lasts hours, not days
        assert sum(e.exptime for e in darks) / 3600.0 > 12.0


def test_a_proposal_has_one_pi() -> None:
    """Every exposure of a proposal names the same PI (PR_INV_L), as the proposals file does."""
    for seed in (5, 11):
        pis: dict[int, set[str]] = {}
        for e in plan(200, seed):
            pis.setdefault(e.proposid, set()).add(e.pi)
        assert {p: v for p, v in pis.items() if len(v) > 1} == {}


def test_photometric_decline_of_standard_stars(pixel_archive: Path) -> None:
    inst = Instrument(SEED)
    seen = 0
    for f in _files(pixel_archive, "*_flt.fits"):
        h = _primary(f)
        if h["TARGNAME"] not in {"GRW+70D5824", "GD153"} or h["DETECTOR"] != "UVIS":
            continue
        sci = fits.getdata(f, 1)
        x, y = px.STAR_POS
        stamp = sci[int(y) - 12 : int(y) + 13, int(x) - 12 : int(x) + 13]
        sky = np.median(sci[int(y) + 20 : int(y) + 30, :])
        rate = (stamp.sum() - sky * stamp.size) / h["EXPTIME"]
        expect = px.STAR_RATE * (1 + inst.photometric_decline(h["FILTER"]) * years_since_2009(h["EXPSTART"]))
        assert rate == pytest.approx(expect, rel=0.01)
        seen += 1
    assert seen >= 2


def test_bad_options_change_nothing(tmp_path: Path) -> None:
    with pytest.raises(GeneratorError, match="pixels"):
        generate(tmp_path / "x", 3, pixels="some")
    with pytest.raises(GeneratorError, match="at least 1"):
        plan(-2)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(GeneratorError, match="not a generated archive"):
        generate(tmp_path / "mine", 3)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]


def test_bias_and_subarray_exposures(pixel_archive: Path) -> None:
    from ingest.archivegen.generate import BIAS_PROGRAM, SUBARRAY_APERTURE, SUBARRAY_PROGRAM

    biases = _files(pixel_archive / str(BIAS_PROGRAM), "*_raw.fits")
    assert len(biases) >= 4
    for f in biases:
        h = _primary(f)
        assert (h["IMAGETYP"], h["TARGNAME"], h["EXPTIME"], h["SUBARRAY"]) == ("BIAS", "BIAS", 0.0, False)
    subs = _files(pixel_archive / str(SUBARRAY_PROGRAM), "*_fl?.fits")
    assert len(subs) >= 8
    for f in subs:
        with fits.open(f) as hl:
            hl.verify("exception")
            assert hl[0].header["SUBARRAY"] is True and hl[0].header["APERTURE"] == SUBARRAY_APERTURE
            sci = [h for h in hl if h.name == "SCI"]
            assert len(sci) == 1 and sci[0].data.shape == (1024, 1024)  # one chip
            assert hl[0].header["NEXTEND"] == len(hl) - 1
    # the proposals file gives the bias programme no proprietary period
    assert f"{BIAS_PROGRAM},Baggett,0" in (pixel_archive / "proposals.csv").read_text()


def test_gain_programme_takes_its_flats_in_back_to_back_pairs() -> None:
    for seed in (1, 5):
        flats = sorted((e for e in plan(200, seed) if e.proposid == 12690), key=lambda e: e.expstart)
        assert len(flats) >= 8 and len(flats) % 2 == 0
        assert len({e.rootname for e in flats}) == len(flats)
        for a, b in zip(flats[::2], flats[1::2], strict=True):  # the second starts after the buffer dump
            assert (a.rootname[:6], a.filter, a.exptime, a.imagetyp) == (
                b.rootname[:6],
                b.filter,
                b.exptime,
                "FLAT",
            )
            assert 60 <= (b.expstart - a.expstart) * 86400 - a.exptime <= 150
