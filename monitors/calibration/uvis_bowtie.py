"""uvis-bowtie: UVIS QE hysteresis ("bowtie") in the bowtie programme's internal flats.

docs/background/wfc3-monitors.md §5 ([I] design): in each raw flat of the bowtie programme (PROPOSID 12688 or
17666), bias-subtracted per amp and converted to e-, the median level inside the two opposite wedges
(|v| < |u| / 2 about the chip centre) is compared with the median outside them; the amplitude is their
ratio minus 1 (the smooth lamp pattern is symmetric and cancels), and a flat whose |amplitude| exceeds
0.5 % crosses the threshold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from monitors.calibration.fitsdata import read_rows
from monitors.calibration.inputs import UVIS_RAW, check
from monitors.calibration.plotting import trend_png, vega_trend
from monitors.calibration.summary import Rows, percent
from monitors.calibration.uvis_darks import AMPS, clipped_mean
from monitors.framework import Monitor, Refused

LIMIT = 0.005

SCHEMA = pa.schema(
    [
        ("rootname", pa.string()),
        ("expstart", pa.float64()),
        ("chip", pa.int32()),
        ("amplitude", pa.float64()),
        ("level_e", pa.float64()),
        ("over_limit", pa.bool_()),
    ]
)

SELECT = """
SELECT f.path, f.rootname, m.expstart FROM files f JOIN master m USING (rootname)
WHERE f.filetype = 'raw' AND f.status = 'ok' AND m.detector = 'UVIS' AND m.imagetyp = 'FLAT'
  AND m.proposid IN (12688, 17666) ORDER BY m.expstart
"""


def wedges(rows: np.ndarray, ncols: int = 4096) -> np.ndarray:
    u = (np.arange(ncols) - (ncols - 1) / 2) / (ncols / 2)
    v = (np.asarray(rows, float) - 1025.0) / 1025.0
    return np.abs(v)[:, None] < 0.5 * np.abs(u)[None, :]


def measure(path: str, row: dict[str, Any]) -> list[dict[str, Any]]:
    h = check(path, UVIS_RAW, imagetyp={"FLAT"}, exptime=True)
    out = []
    for ext, chip in ((1, 2), (4, 1)):
        rows, raw, _h = read_rows(path, ext)
        img_rows = rows - 19 if chip == 1 else rows
        keep = (img_rows >= 0) & (img_rows < 2051)
        cols = np.r_[25:2073, 2133:4181]
        bias = [clipped_mean(raw[keep][:, 2:24]), clipped_mean(raw[keep][:, 4183:4204])]
        gain = [float(h.get(f"ATODGN{a}", 1.5)) for a in AMPS[chip]]
        amp = (np.arange(4096) >= 2048).astype(int)
        e = (raw[keep][:, cols] - np.array(bias)[amp]) * np.array(gain)[amp]
        w = wedges(img_rows[keep])
        if not w.any() or w.all():
            continue
        inside, outside = float(np.median(e[w])), float(np.median(e[~w]))
        if not outside > 0:  # no lamp signal (a headers-only or blank flat): nothing to measure
            raise Refused(f"{path}: [SCI,{chip}] has no lamp signal outside the wedges; not a usable flat")
        a = inside / outside - 1
        out.append(
            {
                "rootname": row["rootname"],
                "expstart": float(row["expstart"]),
                "chip": chip,
                "amplitude": a,
                "level_e": outside,
                "over_limit": bool(abs(a) > LIMIT),
            }
        )
    return out


def trend(t: pa.Table) -> dict[str, Any]:
    over = sorted({r["rootname"] for r in t.to_pylist() if r["over_limit"]})
    return {"all": {"flats": len(set(t.column("rootname").to_pylist())), "over_limit": over, "limit": LIMIT}}


def plot(t: pa.Table, summary: dict[str, Any], out: Path) -> list[Path]:
    return [
        trend_png(
            t,
            "amplitude",
            "chip",
            f"UVIS bowtie amplitude (limit {LIMIT:.1%})",
            "wedge / rest - 1",
            out / "bowtie.png",
        )
    ]


def tables(summary: dict[str, Any]) -> dict[str, Rows]:
    """The flats measured and those over the limit."""
    s = summary.get("all") or {}
    if not s:
        return {}
    over = s.get("over_limit") or []
    row = {"flats": s.get("flats"), "limit (%)": percent(s.get("limit")), "over the limit": len(over),
           "flats over the limit": ", ".join(over) or "none"}  # fmt: skip
    return {"Flats against the limit": [row]}


MONITOR = Monitor(
    "uvis-bowtie",
    "UVIS QE hysteresis (bowtie)",
    SELECT,
    measure,
    SCHEMA,
    trend,
    plot,
    lambda t: vega_trend(
        t, "amplitude", "chip", "UVIS bowtie amplitude", label="amplitude (wedges / rest - 1)"
    ),
    __doc__ or "",
    measures="QE-hysteresis amplitude (wedges vs rest) in the bowtie programme's flats; threshold crossings",
    claim="within 0.05 %; exactly the planted crossings",
    description=(
        "QE hysteresis (the bowtie): after a long time in the dark, UVIS pixels can be a little less "
        "sensitive to faint light, in a bowtie-shaped pattern across each chip, until they have been "
        "exposed. Internal flats of the bowtie programme check for it: the amplitude is how much the two "
        "opposite wedges of a chip differ from the rest (0: no pattern; 0.005: half a percent). Each "
        "point is one flat and chip; flats beyond plus or minus 0.5 % cross the limit and are listed in "
        "the table."
    ),
    tables=tables,
    units={"level_e": "e-"},
)
