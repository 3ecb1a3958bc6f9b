"""Cosmic rays in simulated UVIS exposures, from the on-orbit rate and the physics of a hit.

Numbers (docs/background/wfc3-monitors.md §0): 11 +- 1.5 cosmic rays per second over the whole
detector (IHB 7.9.2); the spread is taken as the exposure-to-exposure variation (orbital position).
A hit is a straight track through the CCD's sensitive layer: for an isotropic flux through a plane,
cos^2 of the incidence angle is uniform, so the projected length (thickness x tan angle) is short for
most hits and tens of pixels for a few, at a uniform azimuth. The charge is that of a minimum-ionising
particle, ~75 e- per um of silicon at the most probable value, Landau-distributed (here its Moyal
approximation) and proportional to the path length; it diffuses over a few pixels. Everything is drawn
from a stream of its own, so a ``clean`` archive is the ``on-orbit`` one without its cosmic rays.

Only :mod:`ingest.archivegen` uses this: the monitors find cosmic rays in the pixels, never here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

RATE = 11.0  # per s over the UVIS array
RATE_SD = 1.5
UVIS_AREA = 2 * 4096 * 2051  # image pixels of the two chips
THICKNESS_PX = 1.0  # [I] sensitive layer ~15 um, one 15 um pixel pitch
MPV_PER_PX = 75.0 * 15.0  # e- per pixel pitch of path at the most probable (Landau) deposit
LANDAU_WIDTH = 0.12  # Moyal scale / MPV [I]: FWHM ~ 0.43 MPV, as thin silicon layers show
DIFFUSION = 0.45  # px, sigma of the charge cloud
MAX_LENGTH = 60.0  # px: grazing tracks (tan > 60, ~0.03 % of hits) are cut there
STEPS_PER_PX = 2  # charge deposited every half pixel along a track


def rate_of(rng: np.random.Generator) -> float:
    """This exposure's cosmic-ray rate (per s over the array)."""
    return max(float(rng.normal(RATE, RATE_SD)), 0.0)


def _regions(rows: np.ndarray, nrows: int) -> list[tuple[int, int]]:
    """Row intervals where a track can start and still reach a simulated row: each run of ``rows``
    widened by the longest track, merged, clipped to the chip."""
    out: list[list[int]] = []
    for y in np.unique(rows):
        a, b = max(int(y) - int(MAX_LENGTH), 0), min(int(y) + int(MAX_LENGTH) + 1, nrows)
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def tracks(
    rng: np.random.Generator, exptime: float, rows: np.ndarray, nrows: int = 2051, ncols: int = 4096
) -> dict[str, Any]:
    """Tracks of the cosmic rays that can reach the image rows ``rows`` of one chip during ``exptime``:
    start (x, y), direction, length (px) and charge (e-). The density per pixel is the on-orbit rate
    over the whole array whatever part of it is simulated."""
    per_px = rate_of(rng) * exptime / UVIS_AREA
    xs, ys = [], []
    for a, b in _regions(rows, nrows):
        n = int(rng.poisson(per_px * (b - a) * ncols))
        xs.append(rng.uniform(0, ncols, n))
        ys.append(rng.uniform(a, b, n))
    x0, y0 = np.concatenate(xs), np.concatenate(ys)
    n = len(x0)
    cos2 = rng.uniform(1e-6, 1.0, n)
    tan = np.sqrt(1.0 / cos2 - 1.0)
    length = np.minimum(THICKNESS_PX * tan, MAX_LENGTH)
    path = THICKNESS_PX / np.sqrt(cos2)  # through the layer, px
    moyal = -np.log(rng.standard_normal(n) ** 2)  # -ln(chi2_1) is Moyal-distributed
    charge = path * MPV_PER_PX * np.clip(1.0 + LANDAU_WIDTH * moyal, 0.3, None)
    return {"x": x0, "y": y0, "phi": rng.uniform(0, 2 * np.pi, n), "length": length, "charge": charge}


def _samples(t: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(track index, x, y, e-) of points every half pixel along each track, sharing its charge."""
    steps = np.maximum(1, np.ceil(t["length"] * STEPS_PER_PX)).astype(int)
    which = np.repeat(np.arange(len(steps)), steps)
    frac = (np.arange(len(which)) - np.repeat(np.cumsum(steps) - steps, steps) + 0.5) / steps[which]
    along = t["length"][which] * frac
    px = t["x"][which] + np.cos(t["phi"][which]) * along
    py = t["y"][which] + np.sin(t["phi"][which]) * along
    return which, px, py, t["charge"][which] / steps[which]


def deposit(
    t: dict[str, Any], rows: np.ndarray, ncols: int = 4096
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(index into ``rows``, column, e-, track) of the charge the tracks leave in the simulated rows,
    and nothing elsewhere. Each sample of a track spreads over the 3 x 3 pixels around it with a
    Gaussian of the diffusion width."""
    which, px, py, q = _samples(t)
    cx, cy = np.floor(px).astype(int), np.floor(py).astype(int)
    d = np.arange(-1, 2)
    gx = np.exp(-0.5 * ((cx[:, None] + d + 0.5 - px[:, None]) / DIFFUSION) ** 2)
    gy = np.exp(-0.5 * ((cy[:, None] + d + 0.5 - py[:, None]) / DIFFUSION) ** 2)
    w = gy[:, :, None] * gx[:, None, :]
    w /= w.sum(axis=(1, 2), keepdims=True)
    yy = np.broadcast_to(cy[:, None, None] + d[None, :, None], w.shape).ravel()
    xx = np.broadcast_to(cx[:, None, None] + d[None, None, :], w.shape).ravel()
    ee = (q[:, None, None] * w).ravel()
    track = np.repeat(which, 9)
    rows = np.asarray(rows)
    idx = np.clip(np.searchsorted(rows, yy), 0, len(rows) - 1)
    ok = (rows[idx] == yy) & (xx >= 0) & (xx < ncols)
    return idx[ok], xx[ok], ee[ok], track[ok]
