"""Calibration monitors against the generated archive's truth table (never against their own output)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

import lake
from ingest.archivegen.features import Instrument, years_since_2009
from ingest.archivegen.generate import TRUTH_FILE, generate
from ingest.run import ingest
from lake.jobs import monitor_names, run_job
from monitors.calibration import uvis_darks
from tests.conftest import REAL

SEED = 5


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("monitors")
    archive, lk = base / "archive", base / "lake"
    generate(archive, 200, seed=SEED, pixels="sparse")
    ingest(lk, str(archive), scheduler="synchronous")
    cfg = {"archive": str(archive), "scheduler": "synchronous"}
    runs = {}
    for m in monitor_names():
        runs[m] = run_job(lk, m, cfg={**_cfg(lk), **cfg})
    truth = pq.read_table(archive / TRUTH_FILE).to_pylist()
    yield {"lake": lk, "archive": archive, "runs": runs, "truth": truth, "cfg": {**_cfg(lk), **cfg}}
    shutil.rmtree(base)  # free the disk for the modules after this one


def _cfg(lk: Path) -> dict[str, Any]:
    from lake import settings

    return settings.load({"lake": str(lk)})


def summary(site: dict[str, Any], name: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(
        (site["lake"] / "reports" / "monitors" / name / "trend.json").read_text()
    )
    return out


def test_every_monitor_ran_and_a_second_run_has_no_work(site: dict[str, Any]) -> None:
    for name, r in site["runs"].items():
        assert r.status == "success" and r.counts["errors"] == 0, (name, r.error, r.counts)
        assert list((site["lake"] / "reports" / "monitors" / name).glob("*.png"))
    assert run_job(site["lake"], "ir-bias", cfg=site["cfg"]).status == "no-work"
    again = run_job(site["lake"], "uvis-darks", cfg=site["cfg"])  # a grouped monitor: its inputs count
    assert again.status == "no-work" and again.counts["waiting"] == 0


def test_superdark_windows_wait_until_closed_or_full() -> None:
    def frames(*days: float) -> list[dict[str, Any]]:
        return [{"path": f"d{t}", "expstart": 60000.0 + t} for t in days]

    # three frames of a window still open: they wait; once a frame 4+ days later exists, it is closed
    none = np.zeros(0)
    assert uvis_darks.split_windows(frames(0, 0.5, 1.0), none) == []
    got = uvis_darks.split_windows(frames(0, 0.5, 1.0, 6.0), none)
    assert [[f["path"] for f in w] for w in got] == [["d0", "d0.5", "d1.0"]]
    # eight frames make a window ready at once; frames more than 4 days after its start open the next
    got = uvis_darks.split_windows(frames(0, 0.4, 0.9, 1.3, 1.8, 2.2, 2.7, 3.1, 4.5), none)
    assert [len(w) for w in got] == [8]
    assert uvis_darks.split_windows(frames(0, 0.4, 0.9, 1.3, 1.8), none) == []  # five wait for more
    # an anneal closes a window: frames after it open the next cycle's
    got = uvis_darks.split_windows(frames(0, 0.5, 1.0, 1.5), np.array([59990.0, 60001.2]))
    assert [[f["path"] for f in w] for w in got] == [["d0", "d0.5", "d1.0"]]
    assert {f["anneal_mjd"] for f in got[0]} == {59990.0}


def test_darks_results_per_anneal_cycle(site: dict[str, Any]) -> None:
    anneals = np.sort([t["start_mjd"] for t in site["truth"] if t["feature"] == "anneal"])
    rows = lake.read_sql("SELECT * FROM monitor_uvis_darks", site["lake"]).to_pylist()
    for r in rows:  # the cycle is the truth's, and no window spans an anneal
        i = np.searchsorted(anneals, r["expstart"], side="right")
        assert r["anneal_mjd"] == pytest.approx(anneals[i - 1]) and r["window_end"] < anneals[i]
    cycles = summary(site, "uvis-darks")["cycles"]
    assert len(cycles) == len({r["anneal_mjd"] for r in rows})
    for c in cycles:
        mine = [r for r in rows if r["anneal_mjd"] == c["anneal_mjd"] and r["chip"] == 1]
        assert c["hot_fraction_uvis1"] == pytest.approx(
            sum(r["n_hot"] for r in mine) / sum(r["n_pixels"] for r in mine)
        )


def _hot_pixel_scores(site: dict[str, Any], table: str, degraded: bool) -> dict[str, Any]:
    """Recall, false-positive fraction, the fraction of faint planted pixels flagged, and found/true rate
    ratios of a darks monitor against the truth.

    Each result is a superdark of the frames from ``expstart`` to ``window_end``: a planted pixel hot
    through the whole window and above 54 e-/hr must be found; one hot for part of it, or planted below
    54 e-/hr, may be found (it is neither missed nor false); any other found pixel is false. Pixels
    planted below 40 e-/hr count in ``below_40``, the fraction of them flagged. With ``degraded`` a
    pixel's rate is first dimmed by the planted parallel CTE (what a monitor sees before correcting)."""
    inst = Instrument(SEED)
    rows = lake.read_sql(f"SELECT * FROM {table}", site["lake"]).to_pylist()
    hot = [t for t in site["truth"] if t["feature"] == "hot_pixel"]

    def hot_at(h: dict[str, Any], chip: int, amp: str, a: float, b: float) -> bool:
        """Hot from time ``a`` to ``b`` (``a`` > ``b``: at some time between them)."""
        return bool(
            h["chip"] == chip
            and h["amp"] == amp
            and h["start_mjd"] <= a
            and (h["end_mjd"] is None or h["end_mjd"] > b)
        )

    n = {"hits": 0, "want": 0, "found": 0, "false": 0, "low": 0, "low_found": 0}
    ratios = []
    for r in rows:
        t0, t1 = r["expstart"], r["window_end"]
        whole = {
            (int(h["x"]), int(h["y"])): h["value"] for h in hot if hot_at(h, r["chip"], r["amp"], t0, t1)
        }
        part = {(int(h["x"]), int(h["y"])) for h in hot if hot_at(h, r["chip"], r["amp"], t1, t0)}
        found = {
            (int(a), int(b)): float(v) for a, b, v in (p.split(",") for p in r["hot_pixels"].split(";") if p)
        }
        for (x, y), rate in whole.items():
            seen = rate
            if degraded:
                transfers = y + 1 if r["chip"] == 2 else 2051 - y
                lost = inst.cte_fraction(t0, np.array([rate * 0.25]), np.array([transfers]))
                seen = rate * (1 - float(lost[0]))
            if seen > 54:
                n["want"] += 1
                n["hits"] += (x, y) in found
            if rate < 40:
                n["low"] += 1
                n["low_found"] += (x, y) in found
            if (x, y) in found:
                ratios.append(found[(x, y)] / rate)
        n["found"] += len(found)
        n["false"] += len(set(found) - part)
    return {
        "recall": n["hits"] / n["want"],
        "false": n["false"] / n["found"],
        "below_40": n["low_found"] / n["low"],
        "ratios": ratios,
        "counts": n,
    }


def test_darks_are_stacked_in_superdark_windows(site: dict[str, Any]) -> None:
    r = lake.read_sql(
        "SELECT n_frames, window_end - expstart AS span, inputs FROM monitor_uvis_darks", site["lake"]
    ).to_pylist()
    assert r and all(x["n_frames"] >= 5 and 0 < x["span"] <= 4 for x in r)
    frames = [p for x in r for p in x["inputs"].split(";")]
    darks = lake.read_sql(uvis_darks.SELECT, site["lake"]).column("path").to_pylist()
    assert len(frames) == 4 * len(set(frames)) and set(frames) == set(darks)  # one window each, per amp


def test_uvis_darks_trend_and_hot_pixels(site: dict[str, Any]) -> None:
    inst = Instrument(SEED)
    s = summary(site, "uvis-darks")
    for amp in "ABCD":
        assert s[amp]["slope"] == pytest.approx(inst.DARK_SLOPE, rel=0.1), amp
        assert s[amp]["intercept"] == pytest.approx(inst.dark_rate(54832.0), rel=0.1), amp
    # planted pixels above 54 e-/hr as CTE leaves them are found through cosmic rays; pixels planted
    # below 40 are not; nothing else is (no trail pixel, no cosmic ray)
    got = _hot_pixel_scores(site, "monitor_uvis_darks", degraded=True)
    assert got["counts"]["want"] > 500 and got["counts"]["low"] > 300, got["counts"]
    assert got["recall"] >= 0.95 and got["false"] <= 0.05 and got["below_40"] <= 0.05, got["counts"]
    assert np.median(got["ratios"]) < 0.97  # uncorrected, CTE dims the hot pixels


def test_uvis_ctecorr_darks_find_every_planted_hot_pixel(site: dict[str, Any]) -> None:
    got = _hot_pixel_scores(site, "monitor_uvis_ctecorr_darks", degraded=True)
    assert got["recall"] >= 0.95 and got["false"] <= 0.05 and got["below_40"] <= 0.05, got["counts"]
    # corrected rates are within 10 % of the truth, and closer to it than the uncorrected monitor's;
    # more of the pixels truly above 54 e-/hr are found
    raw = _hot_pixel_scores(site, "monitor_uvis_darks", degraded=True)
    assert np.median(got["ratios"]) == pytest.approx(1.0, abs=0.1)
    assert abs(np.median(got["ratios"]) - 1) < abs(np.median(raw["ratios"]) - 1)
    true, true_raw = (_hot_pixel_scores(site, t, degraded=False) for t in ("monitor_uvis_ctecorr_darks",
                                                                           "monitor_uvis_darks"))  # fmt: skip
    assert true["recall"] > true_raw["recall"]


def test_uvis_gain_per_amp_from_flat_pairs(site: dict[str, Any]) -> None:
    inst = Instrument(SEED)
    for amp, s in summary(site, "uvis-gain").items():
        # the target (#17): within 1 %; and the truth within 3 of the reported errors (the
        # one-flat method sat about 1 %, 5 sigma, low here: its cosmic rays and flat structure)
        assert s["gain"] == pytest.approx(inst.uvis_gain[amp], rel=0.01), (amp, s)
        assert 0 < s["gain_err"] < 0.005 * s["gain"], (amp, s)
        assert abs(s["gain"] - inst.uvis_gain[amp]) < 3 * s["gain_err"], (amp, s)
    rows = lake.read_sql("SELECT * FROM monitor_uvis_gain", site["lake"]).to_pylist()
    assert rows and all(r["refused"] is None for r in rows)
    for r in rows:  # each result is a pair: two flats of one visit, filter and exposure time
        first, second = r["inputs"].split(";")
        assert Path(first).name.startswith(r["rootname"]) and Path(second).name.startswith(r["partner"])
        assert r["partner"][:6] == r["rootname"][:6] and r["partner"] != r["rootname"]
    run = site["runs"]["uvis-gain"]
    assert run.counts["measured"] == 2 * run.counts["groups"] == run.counts["inputs"], run.counts


def test_uvis_eper_cte_trend(site: dict[str, Any]) -> None:
    inst = Instrument(SEED)
    s = summary(site, "uvis-eper-cte")["all"]
    assert -s["slope"] == pytest.approx(inst.CTE_SLOPE, rel=0.1)
    assert s["slope_err"] > 0 and abs(-s["slope"] - inst.CTE_SLOPE) < 3 * s["slope_err"], s


def test_uvis_contam_decline_per_filter(site: dict[str, Any]) -> None:
    inst = Instrument(SEED)
    checked = 0
    within = []
    for filt, s in summary(site, "uvis-contam").items():
        if s["n"] >= 2:
            assert s["slope"] == pytest.approx(inst.photometric_decline(filt), rel=0.1), filt
            checked += 1
        # the reported error holds: the truth within 2 sigma in >= 90 % of filters (#17 asks this of
        # filters with >= 4 points; this archive has filters with 3, 2 or fewer)
        if s["n"] >= 3:
            within.append(abs(s["slope"] - inst.photometric_decline(filt)) <= 2 * s["slope_err"])
    assert checked >= 2 and within and np.mean(within) >= 0.9, summary(site, "uvis-contam")


def test_ir_bias_levels_and_drift(site: dict[str, Any]) -> None:
    inst = Instrument(SEED)
    for q, s in summary(site, "ir-bias").items():
        assert s["slope"] == pytest.approx(inst.ir_bias_drift[q], rel=0.1), q
        assert s["intercept"] == pytest.approx(inst.ir_bias(q, 54832.0), abs=3), q
        assert abs(s["slope"] - inst.ir_bias_drift[q]) < 3 * s["slope_err"], (q, s)


def test_ir_blobs_found_with_first_seen_dates(site: dict[str, Any]) -> None:
    cat = summary(site, "ir-blobs")["catalogue"]
    flats = lake.read_sql("SELECT expstart FROM monitor_ir_blobs", site["lake"]).column(0).to_pylist()
    last = max(flats)
    truth = [t for t in site["truth"] if t["feature"] == "blob" and t["start_mjd"] <= last]
    assert len(truth) >= 5
    matched = [c for c in cat if any(np.hypot(c["x"] - t["x"], c["y"] - t["y"]) <= 2 for t in truth)]
    recall = sum(any(np.hypot(c["x"] - t["x"], c["y"] - t["y"]) <= 2 for c in cat) for t in truth) / len(
        truth
    )
    assert recall >= 0.95
    assert (len(cat) - len(matched)) / len(cat) <= 0.05
    for t in truth:  # first seen: the first flat after the blob appeared
        c = min(cat, key=lambda c: np.hypot(c["x"] - t["x"], c["y"] - t["y"]))
        earlier = [f for f in flats if t["start_mjd"] <= f < c["first_seen"]]
        assert c["first_seen"] >= t["start_mjd"] and not earlier


def test_monitors_run_on_the_real_files(tmp_path: Path) -> None:
    lk = tmp_path / "lake"
    ingest(lk, str(REAL), scheduler="synchronous", template="{dir}/{stem}.fits")
    cfg = {**_cfg(lk), "archive": str(REAL), "layout": "{dir}/{stem}.fits", "scheduler": "synchronous"}
    for m in monitor_names():
        r = run_job(lk, m, cfg=cfg)
        assert r.status in {"success", "no-work"} and not r.counts.get("errors"), (m, r.error, r.counts)


def test_years_helper_matches_generator() -> None:
    assert float(years_since_2009(54832.0 + 365.25)) == pytest.approx(1.0)


@pytest.mark.slow
def test_local_cluster_gives_the_same_results(site: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from monitors import framework

    monkeypatch.setattr(framework, "SMALL", 0)  # use the cluster even for a few files
    before = lake.read_sql(
        "SELECT rootname, quad, zeroth_median FROM monitor_ir_bias ORDER BY ALL", site["lake"]
    )
    r = run_job(
        site["lake"], "ir-bias", {"rebuild": "true"}, {**site["cfg"], "scheduler": "local", "workers": 2}
    )
    assert r.status == "success" and r.counts["errors"] == 0
    after = lake.read_sql(
        "SELECT rootname, quad, zeroth_median FROM monitor_ir_bias ORDER BY ALL", site["lake"]
    )
    assert after.equals(before)


def test_ir_snowballs_found_with_their_read(site: dict[str, Any]) -> None:
    truth = [t for t in site["truth"] if t["feature"] == "snowball"]
    found = [
        r for r in lake.read_sql("SELECT * FROM monitor_ir_snowballs", site["lake"]).to_pylist() if r["npix"]
    ]
    # ~16 hours of IR darks at the generator's rate: a dozen snowballs in this archive
    assert len(truth) >= 5, "the test archive should hold several snowballs"
    for t in truth:
        near = [
            f
            for f in found
            if f["rootname"] == t["rootname"] and np.hypot(f["x"] - t["x"], f["y"] - t["y"]) <= 2
        ]
        assert len(near) == 1 and near[0]["read"] == t["read"], t
        assert near[0]["total_e"] == pytest.approx(t["value"], rel=0.1)
    assert len(found) == len(truth)  # nothing else
    s = summary(site, "ir-snowballs")["all"]
    assert s["snowballs"] == len(truth) and s["hours"] > 1
    assert s["rate_err"] == pytest.approx(np.sqrt(len(truth)) / s["hours"])


def test_ir_bad_actors_fractions_and_ranking(site: dict[str, Any]) -> None:
    truth = {t["rootname"]: json.loads(t["note"]) for t in site["truth"] if t["feature"] == "bad_actor"}
    rows = lake.read_sql("SELECT * FROM monitor_ir_bad_actors", site["lake"]).to_pylist()
    assert len(truth) >= 3
    for r in rows:
        want = truth.get(r["rootname"], {"0.5": 0.0, "1": 0.0, "2": 0.0, "5": 0.0, "10": 0.0})
        for level, frac in want.items():
            assert r["x_" + level.replace(".", "_")] == pytest.approx(frac, abs=1e-9), (r["rootname"], level)
    ranked = summary(site, "ir-bad-actors")["programs"]
    means = [p["mean_sat"] for p in ranked]
    assert means == sorted(means, reverse=True) and means[0] > 0


def test_ir_persistence_predicts_the_injected_persistence(site: dict[str, Any]) -> None:
    truth = {t["rootname"]: json.loads(t["note"]) for t in site["truth"] if t["feature"] == "persistence"}
    rows = {
        r["rootname"]: r
        for r in lake.read_sql("SELECT * FROM monitor_ir_persistence", site["lake"]).to_pylist()
    }
    assert truth and set(truth) <= set(rows)
    for root, t in truth.items():
        r = rows[root]
        assert t["stimulus"] in r["stimuli"].split(",")
        assert r["max"] == pytest.approx(max(t["per_level"].values()), rel=0.1), root
        # the map predicts what the pixels hold: (flt - sky) where the stimulus was brightest
        from astropy.io import fits

        from monitors.calibration.fitsdata import read_rows

        pred = fits.getdata(site["lake"] / r["map_path"])  # relative to the lake
        flt = lake.read_sql(
            f"SELECT path FROM files WHERE rootname = '{root}' AND filetype = 'flt'", site["lake"]
        )
        _rows, sci, _h = read_rows(str(site["archive"] / flt.column(0)[0].as_py()), 1)
        hot = pred > 0.5 * pred.max()
        assert sci[hot].mean() - 1.5 == pytest.approx(float(pred[hot].mean()), rel=0.25), root
    others = [r for k, r in rows.items() if k not in truth]
    assert all(r["max"] < 0.01 for r in others)  # no stimulus, no persistence


def test_uvis_bowtie_amplitude_and_threshold(site: dict[str, Any]) -> None:
    truth = {t["rootname"]: t["value"] for t in site["truth"] if t["feature"] == "bowtie"}
    rows = lake.read_sql("SELECT * FROM monitor_uvis_bowtie", site["lake"]).to_pylist()
    assert len(truth) >= 6 and {r["rootname"] for r in rows} == set(truth)
    for r in rows:
        assert r["amplitude"] == pytest.approx(truth[r["rootname"]], abs=0.0005), r["rootname"]
    over = summary(site, "uvis-bowtie")["all"]["over_limit"]
    assert over == sorted(k for k, v in truth.items() if v > 0.005) and over
