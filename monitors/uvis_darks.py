"""uvis-darks: UVIS dark current per chip over time and hot pixels (> 54 e-/hr) per frame.

Follows shared/docs/wfc3-monitors.md §1, simplified to single frames [I]: each raw dark (TARGNAME DARK,
EXPTIME 900/1800) is bias-subtracted per amp from its serial prescan, converted to e- with the amp's
ATODGN, the post-flash (FLASHLVL e-) removed; the clipped mean of the image pixels is the dark current;
pixels above 54 e-/hr *and* 5 sigma above the frame's dark level are hot. (The legacy superdarks combine
frames in 4-day windows to push the noise down; single 900 s frames need the 5-sigma guard instead.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from monitors.fitsdata import primary, read_rows
from monitors.framework import Monitor
from monitors.plotting import fits_by_group, trend_png, vega_trend

HOT = 54.0  # e-/hr
TRAIL_ROWS = 8
TRAIL_TAU = 1.5  # rows [I]: the exponential profile the correction assumes for a trail
READ_NOISE_E = 3.15
AMPS = {1: ("A", "B"), 2: ("C", "D")}

SCHEMA = pa.schema(
    [
        ("rootname", pa.string()),
        ("expstart", pa.float64()),
        ("chip", pa.int32()),
        ("median_dark", pa.float64()),
        ("n_hot", pa.int64()),
        ("hot_fraction", pa.float64()),
        ("n_pixels", pa.int64()),
        ("hot_pixels", pa.string()),
    ]
)

SELECT = """
SELECT f.path, f.rootname, m.expstart, m.exptime FROM files f JOIN master m USING (rootname)
WHERE f.filetype = 'raw' AND f.status = 'ok' AND m.detector = 'UVIS' AND m.targname LIKE 'DARK%'
  AND m.exptime IN (900, 1800) ORDER BY m.expstart
"""


def clipped_mean(v: np.ndarray, k: float = 3.0) -> float:
    """Mean after iterative k-sigma clipping (hot pixels and cosmic rays out)."""
    v = np.asarray(v, float).ravel()
    for _ in range(5):
        m, sd = v.mean(), v.std()
        keep = np.abs(v - m) <= k * sd
        if keep.all() or keep.sum() < 10:
            break
        v = v[keep]
    return float(v.mean())


def image_of_raw(raw: np.ndarray, chip: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw chip rows (DN, full 4206 columns) -> image columns (4096) and a per-column amp index (0/1)."""
    cols = np.r_[25:2073, 2133:4181]
    return raw[:, cols], (np.arange(4096) >= 2048).astype(int)


def _trail_step(chip: int) -> int:
    """+1 if a pixel's CTE trail lies at larger rows (UVIS2, amp at row 0), -1 if at smaller (UVIS1)."""
    return 1 if chip == 2 else -1


def along(rate: np.ndarray, rows: np.ndarray, ys: np.ndarray, xs: np.ndarray, step: int) -> np.ndarray:
    """Values ``step`` rows after (``step`` < 0: before) each pixel (ys, xs) in row numbers; nan where that
    row was not read. ``rows`` (the row number of each line of ``rate``) is ascending."""
    want = rows[ys] + step
    idx = np.clip(np.searchsorted(rows, want), 0, len(rows) - 1)
    ok = rows[idx] == want
    out = np.full(len(ys), np.nan)
    out[ok] = rate[idx[ok], xs[ok]]
    return out


def frame(path: str, row: dict[str, Any], correct_cte: bool) -> list[dict[str, Any]]:
    """Per chip: dark level and hot pixels of one raw dark; with ``correct_cte``, each candidate's CTE
    trail (the excess over the dark level in the 8 pixels read after it) is added back to it first."""
    hdr0 = primary(path)
    exptime = float(hdr0["EXPTIME"])
    flash = float(hdr0.get("FLASHLVL", 0) or 0)
    out = []
    for ext, chip in ((1, 2), (4, 1)):
        rows, raw, _h = read_rows(path, ext)
        img_rows = rows - 19 if chip == 1 else rows
        keep = (img_rows >= 0) & (img_rows < 2051)
        left, right = raw[:, 2:24], raw[:, 4183:4204]  # prescan columns of each amp
        gains = [float(hdr0.get(f"ATODGN{a}", 1.5)) for a in AMPS[chip]]
        img, amp = image_of_raw(raw[keep], chip)
        # clipped means, not medians: raw DN are integers, and a median of integers moves in whole DN
        # (6 e-/hr in a 900 s dark), coarser than the dark current's yearly change
        bias = np.array([clipped_mean(left[keep]), clipped_mean(right[keep])])
        e = (img - bias[amp][None, :]) * np.array(gains)[amp][None, :] - flash
        rate = e * 3600.0 / exptime  # e-/hr
        med = clipped_mean(rate)
        sigma = np.sqrt(READ_NOISE_E**2 + max(med * exptime / 3600.0, 0) + flash) * 3600.0 / exptime
        r_rows = img_rows[keep]
        step = _trail_step(chip)
        # only pixels well above the dark level can be hot: the CTE logic looks at those alone
        ys, xs = np.nonzero(rate > med + 4 * sigma)
        v = rate[ys, xs]
        # a pixel in the trail of a brighter one read just before it is not hot itself
        in_trail = np.zeros(len(ys), bool)
        for k in range(1, TRAIL_ROWS + 1):
            in_trail |= np.nan_to_num(along(rate, r_rows, ys, xs, -step * k), nan=-np.inf) > v
        value = v.copy()
        if correct_cte:
            # matched filter for the trail's exponential profile; its charge is added back only where
            # the trail itself is detected (> 3.5 sigma), so noise around faint pixels adds nothing
            w = (1 - np.exp(-1 / TRAIL_TAU)) * np.exp(-np.arange(TRAIL_ROWS) / TRAIL_TAU)
            trail = np.array([along(rate, r_rows, ys, xs, step * k) for k in range(1, TRAIL_ROWS + 1)])
            amp_hat = (w[:, None] * (np.nan_to_num(trail, nan=med) - med)).sum(axis=0) / float(np.sum(w**2))
            sigma_d = sigma / np.sqrt(float(np.sum(w**2)))
            fix = ~in_trail & (amp_hat > 3.5 * sigma_d)
            value[fix] += amp_hat[fix]
        keep_hot = (value > HOT) & (value > med + 5 * sigma) & ~in_trail
        hot = np.zeros(rate.shape, bool)
        hot[ys[keep_hot], xs[keep_hot]] = True
        vals = np.zeros(rate.shape)
        vals[ys, xs] = value
        hy, hx = np.nonzero(hot)
        pix = ";".join(f"{int(x)},{int(r_rows[y])},{vals[y, x]:.0f}" for y, x in zip(hy, hx, strict=True))
        out.append(
            {
                "rootname": row["rootname"],
                "expstart": float(row["expstart"]),
                "chip": chip,
                "median_dark": med,
                "n_hot": int(hot.sum()),
                "hot_fraction": float(hot.mean()),
                "n_pixels": int(hot.size),
                "hot_pixels": pix,
            }
        )
    return out


def measure(path: str, row: dict[str, Any]) -> list[dict[str, Any]]:
    return frame(path, row, correct_cte=False)


def trend(t: pa.Table) -> dict[str, Any]:
    return fits_by_group(t, "median_dark", "chip", (1, 2))


def plot(t: pa.Table, summary: dict[str, Any], out: Path) -> list[Path]:
    return [
        trend_png(
            t,
            "median_dark",
            "chip",
            "UVIS median dark current per chip",
            "e-/hr",
            out / "median_dark.png",
            summary,
        ),
        trend_png(
            t,
            "hot_fraction",
            "chip",
            "UVIS hot pixels (> 54 e-/hr)",
            "fraction of pixels",
            out / "hot_fraction.png",
        ),
    ]


MONITOR = Monitor(
    "uvis-darks",
    "UVIS dark current and hot pixels",
    SELECT,
    measure,
    SCHEMA,
    trend,
    plot,
    lambda t: vega_trend(t, "median_dark", "chip", "UVIS median dark (e-/hr)"),
    __doc__ or "",
)
