"""The parallel-CTE readout model of the darks monitors, measured on a superdark and inverted
(monitors/calibration/pixel_cte.py), on superdarks made here with readout physics of the test's own: a
trail shape and loss law that are neither the generator's nor the monitor's (#17)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from monitors.calibration import pixel_cte

HOURS, FLASH, DARK, SIGMA = 0.25, 12.0, 10.0, 7.0  # e- per frame of post-flash, e-/hr, e-/hr


def _superdark(
    profile: np.ndarray, beta: float, loss160: float = 2e-4
) -> tuple[Any, dict[tuple[int, int], float]]:
    """A UVIS1 superdark (rows 1200-1499, far from the amp at row 2050; 1024 columns) with hot pixels of
    20-800 e-/hr, at most one per column, each losing ``1 - exp(-n loss160 (S/160)^-0.6)`` of its charge
    (and ``beta`` of its background's) into the rows read after it (smaller rows) as ``profile``."""
    rng = np.random.default_rng(0)
    rows = np.arange(1200, 1500)
    excess = np.zeros((len(rows), 1024))
    truth = {}
    for x in np.flatnonzero(rng.random(1024) < 0.5):
        y = int(rng.integers(10, len(rows) - 10))
        t = float(np.exp(rng.uniform(np.log(20), np.log(800))))
        truth[(y, int(x))] = t
        packet = (t + DARK) * HOURS + FLASH
        f = -np.expm1(-(2051 - rows[y]) * loss160 * (packet / 160.0) ** -0.6)
        lost = f * (t + beta * (DARK + FLASH / HOURS))
        excess[y, x] += t - lost
        excess[y - len(profile) : y, x] += lost * profile[::-1]
    rate = (DARK + excess + rng.normal(0, SIGMA, excess.shape)).astype(np.float32)
    return {1: (rows, rate, DARK, np.full(rate.shape, SIGMA, np.float32))}, truth


@pytest.mark.parametrize(
    ("shape", "beta"),
    [("power law, k^-1.5 over 8 rows", 0.0), ("exponential, 2.5 rows", 1.0)],
)
def test_charge_goes_back_to_its_pixel_and_no_trail_pixel_is_a_source(shape: str, beta: float) -> None:
    k = np.arange(1, 9)
    profile = k**-1.5 if shape.startswith("power") else np.exp(-k / 2.5)
    stacks, truth = _superdark(profile / profile.sum(), beta)
    model, found = pixel_cte.corrected_sources(stacks, HOURS, FLASH)
    ys, xs, excess, gain = found[1]
    hot = (DARK + excess > 54) & (np.sqrt(gain) / SIGMA > 5)
    got = {(int(y), int(x)): float(t) for y, x, t in zip(ys[hot], xs[hot], excess[hot], strict=True)}
    bright = {p: t for p, t in truth.items() if t > 100}
    assert model.m > 0 and model.n_fit > 100, model
    if shape.startswith("exp"):
        assert model.tau == pytest.approx(2.5, rel=0.1), model
    # uncorrected, these pixels show 20-25 % less than they hold; corrected, they are found where they
    # are, at their rate (within 5 %: an exponential fitted to a power-law trail misses some of its tail)
    seen = np.median([stacks[1][1][p] - DARK for p in bright]) / np.median(list(bright.values()))
    assert seen < 0.85
    assert np.mean([p in got for p in bright]) >= 0.98
    assert np.median([got[p] / t for p, t in bright.items() if p in got]) == pytest.approx(1.0, abs=0.05)
    false = [p for p in got if p not in truth]
    assert len(false) <= 0.01 * len(got), false
    assert np.mean([p in got for p, t in truth.items() if t < 40]) <= 0.05


def test_no_measurable_trail_no_correction() -> None:
    """Hot pixels that lose nothing: the model loses nothing, and each keeps its observed rate."""
    stacks, truth = _superdark(np.full(8, 1 / 8), 1.0, loss160=0.0)
    model, found = pixel_cte.corrected_sources(stacks, HOURS, FLASH)
    assert model.m == 0.0 and model.n_fit > 100, model
    ys, xs, excess, _gain = found[1]
    assert np.allclose(excess, stacks[1][1][ys, xs] - DARK, atol=1e-3)
    assert {p for p, t in truth.items() if t > 100} <= set(zip(ys.tolist(), xs.tolist(), strict=True))
