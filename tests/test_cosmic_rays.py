"""Cosmic rays in the generated UVIS exposures, and the darks monitors' rejection of them (#17)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fitsio
import numpy as np
import pytest

from ingest.archivegen import cosmics
from ingest.archivegen import pixels as px
from ingest.archivegen.features import UVIS_BANDS, Instrument, band_rows
from ingest.archivegen.generate import Exposure, _file_hdus, plan, write_file
from monitors.calibration import uvis_darks
from monitors.calibration.fitsdata import primary

SEED = 5


def _dark(seed: int = SEED) -> Exposure:
    return next(e for e in plan(60, seed) if e.detector == "UVIS" and e.imagetyp == "DARK")


def test_cosmic_rays_at_the_on_orbit_rate_in_sparse_and_full_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tracks start at 11 +- 1.5 per s over the two chips, whatever rows are simulated; most are a few
    pixels long, a few tens of pixels; charges are hundreds to thousands of e-; a seed gives the same
    hits."""
    rng = np.random.default_rng(1)
    rates = [cosmics.rate_of(rng) for _ in range(400)]
    assert np.mean(rates) == pytest.approx(11.0, rel=0.03) and np.std(rates) == pytest.approx(1.5, rel=0.15)
    monkeypatch.setattr(cosmics, "RATE_SD", 0.0)  # the density alone
    sparse, full = band_rows(UVIS_BANDS), np.arange(2051)
    per_px = []
    lengths, charges = [], []
    for rows in [sparse] * 40 + [full] * 4:
        t = cosmics.tracks(rng, 900.0, rows)
        inside = np.isin(np.floor(t["y"]).astype(int), rows)
        per_px.append(inside.sum() / (len(rows) * 4096 * 900.0) * cosmics.UVIS_AREA)
        lengths.append(t["length"])
        charges.append(t["charge"])
    assert np.mean(per_px[:40]) == pytest.approx(11.0, rel=0.05)  # sparse: the same areal density
    assert np.mean(per_px[40:]) == pytest.approx(11.0, rel=0.05)
    length, charge = np.concatenate(lengths), np.concatenate(charges)
    assert np.median(length) < 2 and 0.005 < np.mean(length > 10) < 0.05 and length.max() > 20
    assert 500 < np.median(charge) < 5000 and np.percentile(charge, 99) > 5000
    e = _dark()
    a, b = (px.cosmic_rays(Instrument(SEED), e, 2, sparse) for _ in range(2))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_clean_and_on_orbit_raws_differ_by_the_cosmic_rays_alone(tmp_path: Path) -> None:
    e = _dark()
    data = {}
    for realism in ("clean", "on-orbit"):
        path = tmp_path / f"{realism}.fits"
        hdus, truth = _file_hdus(e, "raw", Instrument(SEED, realism), "sparse")
        write_file(path, hdus)
        with fitsio.FITS(str(path)) as f:
            data[realism] = f[1][0:320, :].astype(float)  # UVIS2, rows of the first band
        if realism == "on-orbit":
            rows = [t for t in truth if t["feature"] == "cosmic_rays" and t["chip"] == 2]
            assert len(rows) == 1 and rows[0]["value"] > 100  # ~300 tracks in the bands of a 900 s dark
        else:
            assert not truth
    diff = data["on-orbit"] - data["clean"]
    assert diff.min() >= 0 and 0.001 < np.mean(diff[256:320] > 10) < 0.02
    assert not diff[:256].any()  # rows not simulated stay holes


def _window(tmp_path: Path, realism: str, seed: int) -> tuple[list[dict[str, Any]], Instrument]:
    """The raw darks of the first superdark window of a 200-dataset plan, written with sparse pixels."""
    inst = Instrument(seed, realism)
    darks = [e for e in plan(200, seed) if e.detector == "UVIS" and e.imagetyp == "DARK"]
    window = sorted((e for e in darks if abs(e.expstart - darks[0].expstart) < 4), key=lambda e: e.expstart)
    members = []
    for e in window:
        path = tmp_path / realism / f"{e.rootname}_raw.fits"
        path.parent.mkdir(exist_ok=True)
        write_file(path, _file_hdus(e, "raw", inst, "sparse")[0])
        members.append(
            {"rootname": e.rootname, "expstart": e.expstart, "abs_path": str(path), "path": path.name}
        )
    return members, inst


def _found(rows: list[dict[str, Any]]) -> set[tuple[int, int, int]]:
    pix = [(r["chip"], p.split(",")) for r in rows for p in r["hot_pixels"].split(";") if p]
    return {(chip, int(xy[0]), int(xy[1])) for chip, xy in pix}


def _hot_ever(inst: Instrument, t0: float, t1: float) -> set[tuple[int, int, int]]:
    h = inst.hot
    sel = (h["start"] <= t1) & (h["end"] > t0)
    return set(zip(h["chip"][sel].tolist(), h["x"][sel].tolist(), h["y"][sel].tolist(), strict=True))


def _highest_left_out(members: list[dict[str, Any]], chip: int) -> tuple[np.ndarray, np.ndarray, float]:
    """The superdark before #17: the mean of the frames, a pixel's highest value left out where it stands
    5 sigma above the mean of the others. (rows, stack, sigma of a stacked pixel)"""
    frames = [uvis_darks.chip_rate(m["abs_path"], chip, primary(m["abs_path"])) for m in members]
    stack = np.array([f[1] for f in frames])
    n = len(frames)
    top = stack.max(axis=0)
    rest = (stack.sum(axis=0) - top) / (n - 1)
    one = float(np.sqrt(frames[0][2] + 2.5) * 4)  # e-/hr of one 900 s sample at the dark level
    combined = np.where(top > rest + 5 * one, rest, stack.mean(axis=0))
    return frames[0][0], combined, one / np.sqrt(n)


@pytest.mark.parametrize("seed", [SEED, 11])
def test_superdarks_reject_cosmic_rays(tmp_path: Path, seed: int) -> None:
    """On the frames of a window, with and without cosmic rays: the monitor's hot pixels are the same
    ones, and none of them is made by cosmic rays; the old rule (leave out a pixel's highest value)
    flags hundreds of cosmic-ray pixels on the same frames."""
    clean, _inst = _window(tmp_path, "clean", seed)
    orbit, inst = _window(tmp_path, "on-orbit", seed)
    got = {k: _found(uvis_darks.measure(m[0]["abs_path"], {**m[0], "members": m})) for k, m in
           (("clean", clean), ("on-orbit", orbit))}  # fmt: skip
    planted = _hot_ever(inst, orbit[0]["expstart"], orbit[-1]["expstart"])
    made_by_crs = got["on-orbit"] - planted
    assert got["on-orbit"] and len(made_by_crs) <= 0.05 * len(got["on-orbit"])
    assert len(got["on-orbit"] ^ got["clean"]) <= 0.05 * len(got["clean"])
    old = 0
    for chip in (1, 2):
        rows, stack, sigma = _highest_left_out(orbit, chip)
        med = float(np.median(stack))
        ys, xs = np.nonzero((stack > uvis_darks.HOT) & (stack - med > 5 * sigma))
        old += len({(chip, int(x), int(rows[y])) for y, x in zip(ys, xs, strict=True)} - planted)
    assert old > 10 * max(len(made_by_crs), 1)
