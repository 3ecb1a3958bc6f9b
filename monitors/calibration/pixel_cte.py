"""Parallel CTE of UVIS superdarks: a readout model measured on the superdark's own hot pixels, and its
inversion (what uvis-ctecorr-darks corrects with).

docs/background/wfc3-monitors.md §2 (calwf3's pixel-based correction) and §3 (the loss law). The model
[I], per column, in read order: a hot pixel's packet of S e- per frame (its own charge, the dark charge and
the post-flash every pixel holds) loses the fraction ``F = 1 - exp(-n m S^rho)`` over its ``n`` parallel
transfers (``CTE = 1 - m S^rho`` per transfer, the law the EPER monitor fits on flats, §3); of the
background's share only ``beta`` goes (``beta`` 1: the whole packet; 0: the background keeps its own traps
filled). The lost charge comes out in the pixels read after it, ``p_k ~ exp(-k / tau)`` for k = 1..12 (the
release of one trap species, exponential in time, so in rows). ``tau``, ``m``, ``rho`` and ``beta`` are
fitted on the superdark itself (:func:`measure_readout`): its bright hot pixels with no other source in
the 12 rows read before them give the trail's shape (``tau``) and, pixel by pixel, the charge lost against
the charge and the distance to the amplifier (``m``, ``rho``, ``beta``). Nothing of it is assumed.

The inversion (:func:`invert`) then explains each column of the superdark as a sum of sources, each with its
trail, by a matching pursuit: among the candidate pixels of a column (pixels above 3 sigma and the two
read before each, since far from the amplifier a faint hot pixel can lose more than half its charge and
show less than its first trail pixel) the one whose modelled signature (the pixel and its 12 trail rows)
explains the most of the data is taken, its true excess fitted, and its model taken out of the column;
then the next, until no candidate explains more than a 4-sigma source. A trail pixel is explained by its
source and is never a source of its own; each source's excess is its charge before readout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

TRAIL_MAX = 12  # rows of a trail modelled and fitted [I]; a fitted profile makes the far ones ~0
# candidates: pixels this far above the dark level and the LEAD rows read before each
CANDIDATE_SIGMA = 3.0
LEAD = 2
ACCEPT_SIGMA = 4.0  # a candidate is a source if its model explains more than a source this many sigma bright
FIT_SIGMA = 10.0  # hot pixels this bright (and isolated) measure the readout model
FIT_MAX = 500  # at most this many of them
ISOLATION_SIGMA = 4.0  # nothing above this in the TRAIL_MAX rows read before a pixel that measures the model
TRAIL_SNR = 5.0  # a stacked trail below this is no measurable CTE: no correction
SOLVE_ITER = 4
# the fit's grid: rho, the loss per transfer at 160 e- (m 160^rho), beta
RHOS = np.linspace(-1.5, 0.0, 31)
LOSS160 = np.geomspace(1e-7, 1e-2, 81)
BETAS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
TAUS = np.geomspace(0.3, 8.0, 49)


@dataclass(frozen=True)
class Readout:
    """A measured parallel-CTE model (see the module): trail e-folding ``tau`` (rows), loss per transfer
    ``m S^rho``, the share ``beta`` of the background that is lost; ``hours`` per frame and ``background``
    (e- per frame in every pixel) turn a superdark's e-/hr into packets; ``n_fit`` hot pixels measured it."""

    tau: float
    m: float
    rho: float
    beta: float
    hours: float
    background: float
    n_fit: int

    def profile(self) -> np.ndarray:
        p = np.exp(-np.arange(1, TRAIL_MAX + 1) / self.tau)
        out: np.ndarray = p / p.sum()
        return out

    def lost(self, excess: np.ndarray, n: np.ndarray) -> np.ndarray:
        """Fraction of a packet lost over ``n`` transfers, for pixels ``excess`` e-/hr above dark level."""
        s = np.maximum(excess * self.hours + self.background, 1.0)
        out: np.ndarray = -np.expm1(-n * self.m * s**self.rho)
        return out


def typical_sigma(sigmas: np.ndarray) -> float:
    """The median of a superdark's per-pixel sigmas, from every third pixel of every third row of a large
    one (they take a few values only, by the number of frames a pixel kept)."""
    return float(np.median(sigmas[::3, ::3] if sigmas.size > 1_000_000 else sigmas))


def transfers(rows: np.ndarray, chip: int) -> np.ndarray:
    """Parallel transfers of image row ``rows`` to the serial register: UVIS2 reads at row 0, UVIS1 at
    row 2050 (wfc3-monitors.md §0.1)."""
    out: np.ndarray = (rows + 1 if chip == 2 else 2051 - rows).astype(float)
    return out


def trail_step(chip: int) -> int:
    """+1 if a pixel's trail lies at larger rows (UVIS2, amp at row 0), -1 if at smaller (UVIS1)."""
    return 1 if chip == 2 else -1


def ahead(
    img: np.ndarray, rows: np.ndarray, ys: np.ndarray, xs: np.ndarray, step: int, lo: int, hi: int
) -> np.ndarray:
    """Values ``k`` rows after each pixel (ys: indices into ``img``'s lines, whose row numbers ``rows``
    ascend) in read order, k = lo..hi-1 (negative: before), one column per k; nan where a row was not read."""
    out = np.full((len(ys), hi - lo), np.nan, np.float32)
    for j, k in enumerate(range(lo, hi)):
        want = rows[ys] + step * k
        idx = np.clip(np.searchsorted(rows, want), 0, len(rows) - 1)
        ok = rows[idx] == want
        out[ok, j] = img[idx[ok], xs[ok]]
    return out


def bright(resid: np.ndarray, rows: np.ndarray, sigma: float, chip: int) -> tuple[np.ndarray, np.ndarray]:
    """(each pixel and its TRAIL_MAX trail rows, transfers) of the bright hot pixels with nothing above
    ISOLATION_SIGMA in the rows read before them and at least half their trail rows read."""
    step = trail_step(chip)
    ys, xs = np.nonzero(resid > FIT_SIGMA * sigma)
    before = ahead(resid, rows, ys, xs, step, -TRAIL_MAX, 0)
    w = ahead(resid, rows, ys, xs, step, 0, TRAIL_MAX + 1)
    ok = (np.nan_to_num(before, nan=np.inf) < ISOLATION_SIGMA * sigma).all(axis=1)
    ok &= (~np.isnan(w[:, 1:])).sum(axis=1) >= TRAIL_MAX // 2
    return w[ok], transfers(rows[ys[ok]], chip)


def fit_tau(w: np.ndarray, sigma: float) -> tuple[float, float]:
    """(tau, signal-to-noise of the stacked trail): the exponential that best fits the mean trail of the
    bright pixels ``w`` (rows 1.. of each), weighted by how many pixels each row has."""
    tr = w[:, 1:]
    count = (~np.isnan(tr)).sum(axis=0)
    mean = np.nansum(tr, axis=0) / np.maximum(count, 1)
    wt = count / sigma**2
    p = np.exp(-np.arange(1, TRAIL_MAX + 1)[None, :] / TAUS[:, None])
    p /= p.sum(axis=1, keepdims=True)
    amp = (p * mean * wt).sum(axis=1) / (p * p * wt).sum(axis=1)
    chi = ((mean - amp[:, None] * p) ** 2 * wt).sum(axis=1)
    best = int(np.argmin(chi))
    snr = float(amp[best] * np.sqrt((p[best] ** 2 * wt).sum()))
    return float(TAUS[best]), snr


def _trail_charge(w: np.ndarray, sigma: float, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """(charge e-/hr, its sigma) of each pixel's trail in ``w`` (rows 1..): least squares with the profile."""
    p = np.exp(-np.arange(1, TRAIL_MAX + 1) / tau)
    p /= p.sum()
    tr = w[:, 1:]
    pp = (np.where(np.isnan(tr), 0.0, p) ** 2).sum(axis=1)
    return np.nansum(tr * p, axis=1) / pp, sigma / np.sqrt(pp)


def _loss_chi(w: np.ndarray, n: np.ndarray, sigma: float, packet: Any, rho: float) -> np.ndarray:
    """chi^2 of each bright pixel over the (loss160, beta) grid at one ``rho``: its observed excess and
    its trail's charge against the model, the true excess of each fitted in closed form. ``packet``:
    (hours per frame, background e-, each trail's charge and its sigma (:func:`_trail_charge`), each
    pixel's packet in e-: the charge it and its trail hold plus the background)."""
    hours, background, trail, s_trail, size = packet
    own = w[:, 0].astype(float)
    m = LOSS160[:, None, None] * 160.0**-rho
    c = -np.expm1(-n * m * size**rho)
    e = c * BETAS[None, :, None] * background / hours
    t = ((1 - c) * (own + e) / sigma**2 + c * (trail - e) / s_trail**2) / (
        (1 - c) ** 2 / sigma**2 + c**2 / s_trail**2
    )
    out: np.ndarray = (own + e - (1 - c) * t) ** 2 / sigma**2 + (trail - e - c * t) ** 2 / s_trail**2
    return out


def fit_loss(
    w: np.ndarray, n: np.ndarray, sigma: float, hours: float, background: float, tau: float
) -> tuple[float, float, float]:
    """(m, rho, beta) of the least chi^2 over the grid, once more without the pixels more than 4 sigma
    off it (a second hot pixel inside a trail)."""
    trail, s_trail = _trail_charge(w, sigma, tau)
    size = np.maximum((w[:, 0] + trail) * hours + background, 1.0)
    keep = np.ones(len(w), bool)
    for _ in range(2):
        packet = (hours, background, trail[keep], s_trail[keep], size[keep])
        total = np.array([_loss_chi(w[keep], n[keep], sigma, packet, r).sum(axis=-1) for r in RHOS])
        i, j, k = np.unravel_index(np.argmin(total), total.shape)
        worst = _loss_chi(w[keep], n[keep], sigma, packet, float(RHOS[i]))[j, k] > 16.0
        if not worst.any():
            break
        keep[np.flatnonzero(keep)[worst]] = False
    rho = float(RHOS[i])
    return float(LOSS160[j] * 160.0**-rho), rho, float(BETAS[k])


def measure_readout(
    stacks: dict[int, tuple[np.ndarray, np.ndarray, float, float]], hours: float, flash: float
) -> Readout:
    """The readout model of a superdark from its bright isolated hot pixels, both chips together.

    ``stacks``: per chip (row numbers, excess image e-/hr, dark level e-/hr, sigma of a pixel e-/hr);
    ``hours`` and ``flash`` (e-): the frames' mean exposure and post-flash. With no trail measurable the
    model loses nothing (m = 0)."""
    ws, ns = [], []
    sigma = float(np.median([s[3] for s in stacks.values()]))
    level = float(np.mean([s[2] for s in stacks.values()]))
    for chip, (rows, resid, _med, sig) in stacks.items():
        w, n = bright(resid, rows, sig, chip)
        ws.append(w)
        ns.append(n)
    w, n = np.concatenate(ws), np.concatenate(ns)
    if len(w) > FIT_MAX:  # every k-th by brightness: the whole range of charge, in bounded memory and time
        pick = np.argsort(np.nansum(w, axis=1))[:: -(-len(w) // FIT_MAX)]
        w, n = w[pick], n[pick]
    background = max(level, 0.0) * hours + flash
    if len(w) < 3:
        return Readout(1.0, 0.0, 0.0, 0.0, hours, background, len(w))
    tau, snr = fit_tau(w, sigma)
    if snr < TRAIL_SNR:
        return Readout(tau, 0.0, 0.0, 0.0, hours, background, len(w))
    m, rho, beta = fit_loss(w, n, sigma, hours, background, tau)
    return Readout(tau, m, rho, beta, hours, background, len(w))


def solve(y: np.ndarray, n: np.ndarray, model: Readout) -> tuple[np.ndarray, np.ndarray]:
    """(true excess, model of the window) of sources at the first pixel of each
    window ``y`` (the pixel and its TRAIL_MAX trail rows, nan where not read): least squares, the lost
    fraction refreshed from the excess a few times."""
    ok = ~np.isnan(y)
    y0 = np.where(ok, y, 0.0).astype(float)
    p = model.profile()
    bg = model.beta * model.background / model.hours
    t = np.maximum(y0.sum(axis=1), 0.0)  # all the charge back in the pixel: where the solution starts
    for _ in range(SOLVE_ITER):
        f = model.lost(t, n)[:, None]
        a = np.where(ok, np.concatenate([1 - f, f * p], axis=1), 0.0)
        e = np.where(ok, np.concatenate([-f * bg, f * bg * p], axis=1), 0.0)
        t = np.maximum(((y0 - e) * a).sum(axis=1) / np.maximum((a * a).sum(axis=1), 1e-12), 0.0)
    return t, e + a * t[:, None]


def _candidates(
    resid: np.ndarray, rows: np.ndarray, sigma: float, step: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pixels above CANDIDATE_SIGMA and the LEAD rows read before each, unique, as (line index, column)."""
    cy, cx = np.nonzero(resid > CANDIDATE_SIGMA * sigma)
    ys, xs = [cy], [cx]
    for k in range(1, LEAD + 1):
        want = rows[cy] - step * k
        idx = np.clip(np.searchsorted(rows, want), 0, len(rows) - 1)
        ok = rows[idx] == want
        ys.append(idx[ok])
        xs.append(cx[ok])
    key = np.unique(np.concatenate(ys).astype(np.int64) * resid.shape[1] + np.concatenate(xs))
    return (key // resid.shape[1]).astype(np.intp), (key % resid.shape[1]).astype(np.intp)


def _subtract(
    resid: np.ndarray, rows: np.ndarray, ys: np.ndarray, xs: np.ndarray, step: int, model: np.ndarray
) -> None:
    for k in range(TRAIL_MAX + 1):
        want = rows[ys] + step * k
        idx = np.clip(np.searchsorted(rows, want), 0, len(rows) - 1)
        ok = rows[idx] == want
        resid[idx[ok], xs[ok]] -= model[ok, k].astype(resid.dtype)


def invert(
    resid: np.ndarray, rows: np.ndarray, sigma: float, chip: int, model: Readout
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The sources of a superdark chip (``resid``: e-/hr above the dark level, changed in place into what
    the sources leave) by matching pursuit along each column (module docstring).

    Returns (line indices, columns, true excess e-/hr, what each one's model takes off the sum of squares of
    its window, (e-/hr)^2: its detection's chi^2)."""
    step = trail_step(chip)
    cy, cx = _candidates(resid, rows, sigma, step)
    n_all = transfers(rows, chip)
    found: list[tuple[np.ndarray, ...]] = []
    while len(cy):
        y = ahead(resid, rows, cy, cx, step, 0, TRAIL_MAX + 1)
        t, mod = solve(y, n_all[cy], model)
        y0 = np.nan_to_num(y, nan=0.0)
        gain = (y0**2).sum(axis=1) - ((y0 - mod) ** 2).sum(axis=1)
        order = np.lexsort((-gain, cx))
        _u, first = np.unique(cx[order], return_index=True)
        best = order[first]
        take = best[(gain[best] > (ACCEPT_SIGMA * sigma) ** 2) & (t[best] > 0)]
        if not len(take):
            break
        _subtract(resid, rows, cy[take], cx[take], step, mod[take])
        found.append((cy[take], cx[take], t[take], gain[take]))
        keep = np.isin(cx, cx[take])
        keep[take] = False
        cy, cx = cy[keep], cx[keep]
    if not found:
        e = np.zeros(0, np.intp)
        return e, e, np.zeros(0), np.zeros(0)
    ys, xs, ts, gains = (np.concatenate(v) for v in zip(*found, strict=True))
    return ys, xs, ts, gains


def corrected_sources(
    stacks: dict[int, tuple[np.ndarray, np.ndarray, float, np.ndarray]], hours: float, flash: float
) -> tuple[Readout, dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]]:
    """The readout model of a superdark and, per chip, its sources (line indices, columns, true excess
    e-/hr, what each one's model takes off the window's sum of squares: (e-/hr)^2, to compare with a
    pixel's variance). ``stacks``: per chip (row numbers, e-/hr image, dark level, per-pixel sigma)."""
    resid = {c: (r, (img - np.float32(med)).astype(np.float32), med, typical_sigma(sig))
             for c, (r, img, med, sig) in stacks.items()}  # fmt: skip
    model = measure_readout(resid, hours, flash)
    out: dict[int, Any] = {}
    for chip, (rows, res, _med, sigma) in resid.items():
        out[chip] = invert(res, rows, sigma, chip, model)
    return model, out
