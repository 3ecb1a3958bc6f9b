"""The uncertainties monitors report (#17): fitted trends and rates carry 1-sigma errors that are right,
i.e. the truth lies within them as often as a 1-sigma error says (checked on simulated data here, and on
the generated archive in tests/test_monitors.py)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from monitors.calibration import ir_snowballs, uvis_contam
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
