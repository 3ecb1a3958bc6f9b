"""The uncertainties monitors report (#17): fitted trends and rates carry 1-sigma errors that are right,
i.e. the truth lies within them as often as a 1-sigma error says (checked on simulated data here, and on
the generated archive in tests/test_monitors.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from monitors.calibration import ir_snowballs, uvis_contam, uvis_gain
from monitors.calibration.plotting import fit_line


@pytest.mark.parametrize("weighted", [False, True])
def test_fit_line_errors_match_the_scatter_of_fits(weighted: bool) -> None:
    rng = np.random.default_rng(3)
    x = np.linspace(0.0, 15.0, 9)
    # unequal errors for the weighted fit (it must use them); equal ones for the plain fit (it assumes so)
    sigma = np.where(x > 7, 0.5, 0.2) if weighted else np.full(x.size, 0.3)
    pulls_s, pulls_i = [], []
    for _ in range(3000):
        y = 2.0 - 0.3 * x + rng.normal(0.0, sigma)
        f = fit_line(x, y, sigma if weighted else None)
        pulls_s.append((f["slope"] + 0.3) / f["slope_err"])
        pulls_i.append((f["intercept"] - 2.0) / f["intercept_err"])
    # a 1-sigma error: 68 % of fits within it. Errors from the residuals of 9 points follow Student's t
    # with 7 degrees of freedom (65 % within 1 error); known errors, only ever scaled up by the
    # reduced chi-square, cover a little more (never less)
    within = stats.t.cdf(1, 7) - stats.t.cdf(-1, 7)
    for p in (np.array(pulls_s), np.array(pulls_i)):
        if weighted:
            assert 0.67 < np.mean(np.abs(p) < 1) < 0.78
        else:
            assert np.mean(np.abs(p) < 1) == pytest.approx(within, abs=0.03)


def test_fit_line_with_too_few_points_has_no_error() -> None:
    f = fit_line(np.array([0.0, 1.0]), np.array([1.0, 2.0]))
    assert f["slope"] == pytest.approx(1.0) and np.isnan(f["slope_err"]) and f["n"] == 2
    one = fit_line(np.array([3.0]), np.array([5.0]))
    assert np.isnan(one["slope"]) and one["intercept"] == 5.0


def test_weighted_errors_grow_when_points_scatter_more_than_their_errors() -> None:
    rng = np.random.default_rng(4)
    x = np.linspace(0.0, 10.0, 30)
    y = 1.0 + 0.1 * x + rng.normal(0.0, 1.0, x.size)
    claimed = fit_line(x, y, np.full(x.size, 0.01))  # errors 100 x too small
    honest = fit_line(x, y)
    assert claimed["slope_err"] == pytest.approx(honest["slope_err"], rel=0.01)


def test_contamination_relative_slope_error_propagates_the_covariance() -> None:
    rng = np.random.default_rng(5)
    x = np.linspace(0.0, 12.0, 6)
    rate, decline, noise = 2.0e5, -0.002, 0.004  # -0.2 %/yr, 0.4 % photometric scatter
    rel, err = [], []
    for _ in range(3000):
        y = rate * (1 + decline * x) * (1 + rng.normal(0.0, noise, x.size))
        r = uvis_contam._relative_slope(fit_line(x, y, np.full(x.size, noise * rate)))
        rel.append(r["slope"])
        err.append(r["slope_err"])
    assert np.std(rel) == pytest.approx(np.median(err), rel=0.15)
    assert np.mean(np.abs(np.array(rel) - decline) < 2 * np.array(err)) > 0.9


def test_snowball_rate_has_a_poisson_error() -> None:
    def table(n: int, hours: float) -> pa.Table:
        rows = [{"rootname": "a", "exptime": hours * 3600.0, "npix": 20} for _ in range(n)]
        rows = rows or [{"rootname": "a", "exptime": hours * 3600.0, "npix": 0}]
        return pa.Table.from_pylist(rows)

    s = ir_snowballs.trend(table(9, 12.0))["all"]
    assert s["rate_per_hour"] == pytest.approx(0.75) and s["rate_err"] == pytest.approx(0.25)
    none = ir_snowballs.trend(table(0, 10.0))["all"]
    assert none["rate_per_hour"] == 0.0 and none["rate_err"] == pytest.approx(0.1841)


def test_summary_values_are_rounded_to_their_errors() -> None:
    from monitors.calibration.summary import fit_rows, mjd_date, number, percent, with_error

    assert with_error(1.553123456789, 0.0021234) == "1.5531 ± 0.0021"
    assert with_error(0.99995123, 1.1e-5) == "0.999951 ± 0.000011"
    assert with_error(-1.234e-5, 3.1e-6) == "(-1.23 ± 0.31) × 10⁻⁵"
    assert with_error(12.3456, float("nan")) == "12.35" == number(12.3456)
    assert with_error(float("nan"), 1.0) == "–"
    assert percent(-0.0021, 0.00043) == "-0.210 ± 0.043"
    assert mjd_date(57023.7) == "2015-01-01"
    fits = {"A": {"slope": 0.123456, "slope_err": 0.01, "intercept": 2.5, "intercept_err": 0.05, "n": 7},
            "B": {"slope": float("nan"), "n": 0}}  # fmt: skip
    rows = fit_rows(fits, "amp", "dark current", "e-/hr")
    assert rows == [{"amp": "A", "dark current in 2009 (e-/hr)": "2.500 ± 0.050",
                     "change per year (e-/hr/yr)": "0.123 ± 0.010", "points": 7}]  # fmt: skip


def test_every_monitor_tells_analysts_what_it_measures_in_plain_words() -> None:
    from monitors.registry import all_monitors

    for m in all_monitors():
        assert len(m.description) > 200, m.name
        assert m.tables is not None, m.name
        assert m.units and set(m.units) <= set(m.schema.names), m.name  # units of its own result columns
        for internal in ("[I]", "[S]", "ISR", "docs/", "§", ".py"):
            assert internal not in m.description, (m.name, internal)


KERNEL = np.array([[1, 3, 1], [3, 9, 3], [1, 3, 1]]) / 25  # a cosmic ray's charge over 3 x 3 pixels


def _flat(rng: np.random.Generator, pflat: np.ndarray, level: float, gain: float, hits: int) -> np.ndarray:
    """One amp's raw flat in DN (prescan columns first, then the image): bias 2,500 DN, 3.1 e- read
    noise, Poisson charge of ``level`` e- through ``pflat`` and a 3 % lamp fall-off, and ``hits``
    cosmic rays of a few thousand e- spread over 3 x 3 pixels."""
    rows, cols = pflat.shape
    x = np.linspace(0.0, 1.0, cols)
    charge = rng.poisson(level * pflat * (1 - 0.03 * x**2)[None, :]).astype(float)
    for y, c in zip(rng.integers(1, rows - 1, hits), rng.integers(1, cols - 1, hits), strict=True):
        charge[y - 1 : y + 2, c - 1 : c + 2] += rng.uniform(200, 3000) * KERNEL
    frame = np.hstack([np.zeros((rows, 20)), charge]) / gain + 2500
    return np.round(frame + rng.normal(0, 3.1 / gain, frame.shape))


def _pair(rng: np.random.Generator, gain: float, pflat_rms: float) -> tuple[np.ndarray, ...]:
    pflat = 1 + rng.normal(0, pflat_rms, (128, 1024))
    level = float(rng.uniform(2000, 30000))
    # cosmic rays at the on-orbit rate (11 per s over the 16.8 million pixels) in a 300 s flat
    f1, f2 = (_flat(rng, pflat, level, gain, 30) for _ in range(2))
    return f1[:, 20:], f2[:, 20:], f1[:, :20], f2[:, :20]


def test_gain_from_a_flat_pair_is_unbiased_and_its_error_right() -> None:
    """Pairs of flats with 1 % P-flat, a lamp fall-off and cosmic rays: the gain is right to a small
    fraction of a percent, and within its error as often as a 1-sigma error says. One flat's
    adjacent-pixel differences (the old method) see the P-flat as noise: the gain comes out far low."""
    rng = np.random.default_rng(17)
    pulls, single = [], []
    for _ in range(40):
        f1, f2, p1, p2 = _pair(rng, 1.55, 0.01)
        got = uvis_gain._amp_pair(f1, f2, p1, p2)
        assert got is not None and got["n_boxes"] == 2 * 16
        pulls.append((got["gain"] - 1.55) / got["gain_err"])
        img = f1 - p1.mean()  # one flat: var(p[i] - p[i+1]) / 2 = noise + P-flat structure
        single.append(img.mean() / (np.var(np.diff(img, axis=1)) / 2 - p1.var()))
    pulls_a = np.array(pulls)
    assert abs(np.mean(pulls_a)) < 0.4  # unbiased to a fraction of the error (about 0.5 %)
    assert 0.55 < np.mean(np.abs(pulls_a) < 1) < 0.82
    assert np.median(single) < 0.8 * 1.55  # what the pair removes: at 1 % P-flat, a gain 20 %+ low


def test_gain_pair_without_a_partner_is_refused(tmp_path: Path) -> None:
    from astropy.io import fits

    from monitors.framework import Refused

    raw = tmp_path / "ib0202a1q_raw.fits"  # a UVIS raw flat as the pipeline writes it (pixels never read)
    prim = fits.PrimaryHDU(header=fits.Header({"IMAGETYP": "FLAT", "EXPTIME": 100.0, "SUBARRAY": False}))
    header = fits.Header({"BUNIT": "COUNTS"})
    sci = fits.ImageHDU(np.zeros((2070, 4206), np.uint16), header, name="SCI", ver=1)
    fits.HDUList([prim, sci]).writeto(raw)

    rows = [
        {"rootname": "ib0201a1q", "expstart": 60000.0, "exptime": 100.0, "filter": "F814W"},
        {"rootname": "ib0201a2q", "expstart": 60000.0 + 160 / 86400, "exptime": 100.0, "filter": "F814W"},
        {"rootname": "ib0202a1q", "expstart": 60001.0, "exptime": 100.0, "filter": "F814W"},
        {"rootname": "ib0202a2q", "expstart": 60001.0 + 160 / 86400, "exptime": 30.0, "filter": "F814W"},
        {"rootname": "ib0203a1q", "expstart": 60001.0 + 300 / 86400, "exptime": 30.0, "filter": "F814W"},
        {"rootname": "ib0204a1q", "expstart": 60002.0, "exptime": 30.0, "filter": "F814W"},
    ]
    groups = uvis_gain.pairs(rows, {})
    # a pair; a flat whose twin has another exposure time, and two of one exposure time in two visits,
    # are alone once a later flat came; the last waits for a partner that may still come
    assert [[r["rootname"] for r in g] for g in groups] == [["ib0201a1q", "ib0201a2q"], ["ib0202a1q"],
                                                             ["ib0202a2q"], ["ib0203a1q"]]  # fmt: skip
    assert uvis_gain.pairs(rows[2:3], {}) == []  # alone, but its partner may still come
    with pytest.raises(Refused, match="no partner"):
        uvis_gain.measure("x", {**rows[2], "members": [{**rows[2], "abs_path": str(raw)}]})


def test_fractions_are_drawn_in_percent_as_their_tables_give_them() -> None:
    """The bowtie, blob and bad-actor charts draw the percentages their tables list (they drew fractions
    beside tables in %)."""
    from monitors.calibration import ir_bad_actors, ir_blobs, uvis_bowtie

    for m, y in (
        (uvis_bowtie.MONITOR, "amplitude"),
        (ir_blobs.MONITOR, "depth"),
        (ir_bad_actors.MONITOR, "x_1"),
    ):
        one = pa.table({"rootname": ["a"], "expstart": [57000.0], y: [0.004], "amplitude_err": [0.0005],
                        "chip": [1], "filter": ["F110W"], "proposid": [1]})  # fmt: skip
        assert m.vega is not None
        spec = m.vega(one)
        row = spec["data"]["values"][0]
        assert row[y] == pytest.approx(0.4), m.name
        assert "%" in spec["layer"][-1]["encoding"]["y"]["title"], m.name
        if y == "amplitude":
            assert (row["lo"], row["hi"]) == pytest.approx((0.35, 0.45))


def test_the_snowball_chart_draws_snowballs_only() -> None:
    """A dark with no snowball keeps a row (its exposure time counts in the rate) but is no point."""
    t = pa.table(
        {"rootname": ["a", "b"], "expstart": [57000.0, 57001.0], "exptime": [1000.0, 1000.0],
         "read": [3, None], "x": [10.0, None], "y": [20.0, None], "npix": [14, 0],
         "total_e": [3.0e5, 0.0], "peak_e": [5e4, 0.0], "ellipticity": [0.1, None]}
    )  # fmt: skip
    assert ir_snowballs.MONITOR.vega is not None
    assert [r["rootname"] for r in ir_snowballs.MONITOR.vega(t)["data"]["values"]] == ["a"]


def test_chart_colours_are_the_pngs() -> None:
    """The site's trend charts colour groups as the PNGs do (matplotlib's tab10, groups in sorted order)."""
    from monitors.calibration.plotting import vega_trend

    t = pa.table({"rootname": list("abcd"), "expstart": [57000.0] * 4, "v": [1.0] * 4, "amp": list("BADC")})
    color = next(iter(vega_trend(t, "v", "amp", "x")["layer"]))["encoding"]["color"]
    assert color["scale"] == {"scheme": "category10"} and color["legend"]["symbolLimit"] == 0
    assert color["title"] == "amplifier"  # (the legend in words, not the column's name)
    many = pa.table(
        {"rootname": ["r"] * 12, "expstart": [57000.0] * 12, "v": [1.0] * 12, "p": list(range(12))}
    )
    enc = next(iter(vega_trend(many, "v", "p", "x")["layer"]))["encoding"]
    assert enc["color"]["scale"]["scheme"] == "category20" and "shape" not in enc
    # past twenty groups (28 proposals in the bad actors' chart), shapes as well as colours
    lots = pa.table(
        {"rootname": ["r"] * 28, "expstart": [57000.0] * 28, "v": [1.0] * 28, "p": list(range(28))}
    )
    enc = next(iter(vega_trend(lots, "v", "p", "x")["layer"]))["encoding"]
    assert enc["shape"]["field"] == "p" and enc["shape"]["title"] == enc["color"]["title"]
    from monitors.calibration.plotting import _style

    assert len({_style(i, 28) for i in range(28)}) == 28 and _style(3, 12)[1] == "o"


def test_a_monitor_log_gives_its_summary_to_four_figures() -> None:
    from monitors.framework import _to_figures

    got = _to_figures({"A": {"slope": 0.123456789, "n": 12, "fits": [1.0000001, float("nan")]}, "x": "s"})
    assert got["A"]["slope"] == 0.1235 and got["A"]["n"] == 12 and got["A"]["fits"][0] == 1.0
    assert math.isnan(got["A"]["fits"][1]) and got["x"] == "s"


def test_png_groups_take_the_charts_colours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fitted line is drawn in its points' colour, so group k's points are tab10's colour k (as on the
    site's chart), not 2k."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    from monitors.calibration.plotting import trend_png

    monkeypatch.setattr(plt, "close", lambda *_: None)  # (the figure kept to look at)
    t = pa.table(
        {"expstart": [55000.0, 56000.0] * 3, "v": [1.0, 2.0] * 3, "amp": ["A", "A", "B", "B", "C", "C"]}
    )
    fits = {a: {"slope": 0.1, "slope_err": 0.01, "intercept": 1.0, "n": 2} for a in "ABC"}
    trend_png(t, "v", "amp", "t", "v", tmp_path / "t.png", fits=fits)
    ax = plt.gcf().axes[0]
    lines = [to_hex(ln.get_color()) for ln in ax.lines if ln.get_linestyle() == "-"]
    points = [to_hex(ln.get_color()) for ln in ax.lines if ln.get_marker() == "o"]
    tab10 = [to_hex(c) for c in plt.get_cmap("tab10").colors[:3]]
    assert points == lines == tab10
    plt.close("all")
