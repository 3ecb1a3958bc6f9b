"""ir-bias: IR zeroth-read level per quadrant over time (docs/background/wfc3-monitors.md §7, [I] design).

Inputs: IR raw darks (IMAGETYP DARK). The zeroth read is the last IMSET of a raw file ([SCI, NSAMP]);
per quadrant, the sigma-clipped median and mean of its science pixels (the 5-px reference border
excluded) are the bias level; a line per quadrant through the means against time gives the drift, with
1-sigma errors from the points' scatter about it (each point's own error, std / sqrt(n), counts the
fixed pixel pattern too, which does not change from frame to frame).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from monitors.calibration.fitsdata import read_rows
from monitors.calibration.inputs import IR_RAW, check
from monitors.calibration.plotting import fits_by_group, trend_png, vega_trend
from monitors.calibration.summary import Rows, fit_rows
from monitors.framework import Monitor

QUADS = {"A": (False, False), "B": (False, True), "C": (True, True), "D": (True, False)}  # (top, right)

SCHEMA = pa.schema(
    [
        ("rootname", pa.string()),
        ("expstart", pa.float64()),
        ("samp_seq", pa.string()),
        ("nsamp", pa.int32()),
        ("quad", pa.string()),
        ("zeroth_median", pa.float64()),
        # the clipped mean and its 1-sigma error: the median of integer DN is itself an integer, so it
        # moves in whole DN steps; the mean (read noise dithers the DN) follows a drift of a DN a year
        ("zeroth_mean", pa.float64()),
        ("zeroth_err", pa.float64()),
        ("zeroth_std", pa.float64()),
        ("n_pixels", pa.int64()),
    ]
)

SELECT = """
SELECT f.path, f.rootname, m.expstart FROM files f JOIN master m USING (rootname)
WHERE f.filetype = 'raw' AND f.status = 'ok' AND m.detector = 'IR' AND m.imagetyp = 'DARK'
ORDER BY m.expstart
"""


def clipped(v: np.ndarray, k: float = 3.0) -> tuple[float, float, float, int]:
    """(median, mean, std, n) of ``v`` after clipping at ``k`` sigma about the median."""
    for _ in range(5):
        med, std = np.median(v), np.std(v)
        keep = np.abs(v - med) <= k * std
        if keep.all() or keep.sum() < 10:
            break
        v = v[keep]
    return float(np.median(v)), float(np.mean(v)), float(np.std(v)), len(v)


def measure(path: str, row: dict[str, Any]) -> list[dict[str, Any]]:
    h = check(path, IR_RAW, imagetyp={"DARK"})
    nsamp = int(h.get("NSAMP", 1))
    rows, data, _hdr = read_rows(path, ("SCI", nsamp))
    n = data.shape[1]
    cols = np.arange(n)
    out = []
    for q, (top, right) in QUADS.items():
        rsel = ((rows >= n // 2) if top else (rows < n // 2)) & (rows >= 5) & (rows < n - 5)
        csel = ((cols >= n // 2) if right else (cols < n // 2)) & (cols >= 5) & (cols < n - 5)
        v = data[np.ix_(rsel, csel)].ravel()
        if not v.size:
            continue
        med, mean, std, n_kept = clipped(v)
        out.append(
            {
                "rootname": row["rootname"],
                "expstart": float(row["expstart"]),
                "samp_seq": str(h.get("SAMP_SEQ", "")),
                "nsamp": nsamp,
                "quad": q,
                "zeroth_median": med,
                "zeroth_mean": mean,
                "zeroth_err": std / np.sqrt(n_kept),
                "zeroth_std": std,
                "n_pixels": int(v.size),
            }
        )
    return out


def trend(t: pa.Table) -> dict[str, Any]:
    """Level (intercept at 2009.0) and drift (DN per year) per quadrant, with 1-sigma errors."""
    return fits_by_group(t, "zeroth_mean", "quad", QUADS)


def plot(t: pa.Table, summary: dict[str, Any], out: Path) -> list[Path]:
    return [
        trend_png(
            t,
            "zeroth_mean",
            "quad",
            "IR zeroth-read level per quadrant",
            "DN",
            out / "zeroth.png",
            summary,
            yerr="zeroth_err",
        )
    ]


def tables(summary: dict[str, Any]) -> dict[str, Rows]:
    """Per quadrant: the level in 2009 and its change per year."""
    return {
        "Zeroth-read level per quadrant (a line fitted against time)": fit_rows(
            summary, "quadrant", "level", "DN"
        )
    }


MONITOR = Monitor(
    "ir-bias",
    "IR zeroth-read bias per quadrant",
    SELECT,
    measure,
    SCHEMA,
    trend,
    plot,
    lambda t: vega_trend(
        t,
        "zeroth_mean",
        "quad",
        "IR zeroth-read level per quadrant",
        label="zeroth read (DN)",
        yerr="zeroth_err",
    ),
    __doc__ or "",
    measures="zeroth-read level per quadrant, drift per year",
    claim=("level within 3 DN, drift within 10 % (worst 0.15 DN and 0.16 % on two seeds, bench/claims.py)"),
    description=(
        "The IR detector's bias: the level, in counts (DN), of the first (zeroth) read of each dark, for "
        "each of the four quadrants. It is set by the electronics and the detector's temperature and "
        "should change only slowly. Each point is one dark and quadrant with its 1-sigma error bar; a "
        "jump, or a quadrant drifting apart from the others, is worth a look."
    ),
    tables=tables,
    units={"zeroth_median": "DN", "zeroth_mean": "DN", "zeroth_err": "DN", "zeroth_std": "DN"},
)
