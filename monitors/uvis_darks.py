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


def trailing(rate: np.ndarray, rows: np.ndarray, chip: int, k: int) -> np.ndarray:
    """``rate`` shifted so that entry [i] is the pixel k rows after row i in readout order (nan if that row
    was not read)."""
    step = _trail_step(chip) * k
    out = np.full_like(rate, np.nan)
    pos = {int(r): n for n, r in enumerate(rows)}
    for n, r in enumerate(rows):
        m = pos.get(int(r) + step)
        if m is not None:
            out[n] = rate[m]
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
        trail = [trailing(rate, r_rows, chip, k) for k in range(1, TRAIL_ROWS + 1)]
        before = [trailing(rate, r_rows, chip, -k) for k in range(1, TRAIL_ROWS + 1)]
        # a pixel in the trail of a brighter one read just before it is not hot itself
        in_trail = np.zeros(rate.shape, bool)
        for b in before:
            in_trail |= np.nan_to_num(b, nan=-np.inf) > np.maximum(rate, med + 5 * sigma)
        value = rate.copy()
        if correct_cte:
            # matched filter for the trail's exponential profile; its charge is added back only where
            # the trail itself is detected (> 3.5 sigma), so noise around faint pixels adds nothing
            w = np.array([np.exp(-k / TRAIL_TAU) for k in range(TRAIL_ROWS)])
            w *= 1 - np.exp(-1 / TRAIL_TAU)
            amp_hat = sum(wk * (np.nan_to_num(t, nan=med) - med) for wk, t in zip(w, trail, strict=True))
            amp_hat /= float(np.sum(w**2))
            sigma_d = sigma / np.sqrt(float(np.sum(w**2)))
            cand = (rate > med + 4 * sigma) & ~in_trail & (amp_hat > 3.5 * sigma_d)
            value[cand] += amp_hat[cand]
        hot = (value > HOT) & (value > med + 5 * sigma) & ~in_trail
        ys, xs = np.nonzero(hot)
        pix = ";".join(f"{int(x)},{int(r_rows[y])},{value[y, x]:.0f}" for y, x in zip(ys, xs, strict=True))
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
