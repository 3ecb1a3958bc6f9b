"""uvis-contam: aperture photometry of the standard stars per filter, fractional change per year.

docs/background/wfc3-monitors.md §6: in each UVIS flt of GRW+70D5824 or GD153 the star is the brightest
source (peak of a smoothed image); flux in a 10-px-radius aperture minus the sigma-clipped sky of a
20-30 px annulus, divided by EXPTIME, is the count rate; per filter the rates are normalised to the fit
at 2009.0 and a line gives the fractional change per year.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from monitors.calibration.fitsdata import read_rows
from monitors.calibration.inputs import UVIS_FLT, check
from monitors.calibration.plotting import fit_line, trend_png, vega_trend, years
from monitors.calibration.summary import Rows, percent, with_error
from monitors.framework import Monitor

R_AP, R_IN, R_OUT = 10.0, 20.0, 30.0

SCHEMA = pa.schema(
    [
        ("rootname", pa.string()),
        ("expstart", pa.float64()),
        ("targname", pa.string()),
        ("filter", pa.string()),
        ("chip", pa.int32()),
        ("x", pa.float64()),
        ("y", pa.float64()),
        ("countrate", pa.float64()),
        ("countrate_err", pa.float64()),
        ("sky", pa.float64()),
    ]
)

SELECT = """
SELECT f.path, f.rootname, m.expstart FROM files f JOIN master m USING (rootname)
WHERE f.filetype = 'flt' AND f.status = 'ok' AND m.detector = 'UVIS'
  AND m.targname IN ('GRW+70D5824', 'GD153') ORDER BY m.expstart
"""


def photometry(rows: np.ndarray, data: np.ndarray) -> tuple[float, float, float, float, float]:
    from scipy import ndimage

    smooth = ndimage.gaussian_filter(data, 2.0)
    r, c = np.unravel_index(np.argmax(smooth), smooth.shape)
    lo, hi = max(0, r - int(R_OUT) - 1), min(data.shape[0], r + int(R_OUT) + 2)
    cut = data[lo:hi, max(0, c - int(R_OUT) - 1) : c + int(R_OUT) + 2]
    yy, xx = np.mgrid[lo:hi, max(0, c - int(R_OUT) - 1) : max(0, c - int(R_OUT) - 1) + cut.shape[1]]
    w = np.clip(cut - np.median(cut), 0, None)
    y0, x0 = float((yy * w).sum() / w.sum()), float((xx * w).sum() / w.sum())
    d = np.hypot(yy - y0, xx - x0)
    ann = cut[(d >= R_IN) & (d < R_OUT)]
    for _ in range(3):
        ann = ann[np.abs(ann - np.median(ann)) < 3 * np.std(ann)]
    sky = float(np.median(ann))
    ap = d < R_AP
    flux = float(cut[ap].sum() - sky * ap.sum())
    err = float(np.sqrt(max(flux, 0) + ap.sum() * np.var(ann)))
    return x0, float(rows[0] + y0), flux, err, sky


def measure(path: str, row: dict[str, Any]) -> list[dict[str, Any]]:
    h = check(path, UVIS_FLT, imagetyp={"EXT"}, exptime=True)
    out = []
    for ext, chip in ((1, 2), (4, 1)):
        try:
            rows, data, _hdr = read_rows(path, ext)
        except (OSError, ValueError, KeyError):
            continue
        if not np.any(data):
            continue  # a chip the sparse archive did not simulate
        x, y, flux, err, sky = photometry(rows, data)
        t = float(h["EXPTIME"])
        out.append(
            {
                "rootname": row["rootname"],
                "expstart": float(row["expstart"]),
                "targname": str(h["TARGNAME"]).strip(),
                "filter": str(h["FILTER"]).strip(),
                "chip": chip,
                "x": x,
                "y": y,
                "countrate": flux / t,
                "countrate_err": err / t,
                "sky": sky,
            }
        )
    return out


def trend(t: pa.Table) -> dict[str, Any]:
    out = {}
    filters = np.asarray(t.column("filter").to_pylist())
    for f in sorted(set(filters)):
        sel = filters == f
        x = years(np.asarray(t.column("expstart").to_numpy(), float)[sel]) - 2009.0
        y = np.asarray(t.column("countrate").to_numpy(), float)[sel]
        err = np.asarray(t.column("countrate_err").to_numpy(zero_copy_only=False), float)[sel]
        out[f] = _relative_slope(fit_line(x, y, err))
        out[f]["n"] = int(sel.sum())
    return out


def _relative_slope(fit: dict[str, float]) -> dict[str, float]:
    """The decline per year relative to the 2009 rate, with its 1-sigma error (the slope's and the
    intercept's errors and their covariance propagated)."""
    s, i = fit["slope"], fit["intercept"]
    rel = s / i if i else float("nan")
    var = (fit["slope_err"] / i) ** 2 + (s * fit["intercept_err"] / i**2) ** 2 - 2 * s * fit["cov"] / i**3
    return {"slope": rel, "slope_err": float(np.sqrt(max(var, 0.0))) if i else float("nan"),
            "rate_2009": i, "rate_2009_err": fit["intercept_err"], "intercept": 1.0}  # fmt: skip


def plot(t: pa.Table, summary: dict[str, Any], out: Path) -> list[Path]:
    filters = t.column("filter").to_pylist()
    ref = np.array([summary[f]["rate_2009"] or np.nan for f in filters], float)
    tt = t.append_column("normalized", pa.array(np.asarray(t.column("countrate").to_numpy(), float) / ref))
    err = np.asarray(t.column("countrate_err").to_numpy(zero_copy_only=False), float) / ref
    tt = tt.append_column("normalized_err", pa.array(err))
    return [
        trend_png(
            tt,
            "normalized",
            "filter",
            "Standard-star count rate, normalised to 2009",
            "relative rate",
            out / "contam.png",
            summary,
            yerr="normalized_err",
        )
    ]


def tables(summary: dict[str, Any]) -> dict[str, Rows]:
    """Per filter: the count rate in 2009 and the change per year relative to it, with their errors."""
    rows = [
        {
            "filter": f,
            "count rate in 2009 (e-/s)": with_error(fit["rate_2009"], fit.get("rate_2009_err")),
            "change per year (%/yr)": percent(fit["slope"], fit.get("slope_err")),
            "exposures": int(fit["n"]),
        }
        for f, fit in summary.items()
        if fit.get("n")
    ]
    return {"Count rate per filter (a line fitted against time)": rows}


MONITOR = Monitor(
    "uvis-contam",
    "UVIS photometric stability (standard stars)",
    SELECT,
    measure,
    SCHEMA,
    trend,
    plot,
    lambda t: vega_trend(
        t, "countrate", "filter", "Standard-star count rate", label="count rate (e-/s)", yerr="countrate_err"
    ),
    __doc__ or "",
    measures="standard-star aperture photometry, fractional change per year per filter",
    claim=(
        "slopes within 11 % (worst filter 10.6 % and 0.1 % on two seeds, bench/claims.py); each within "
        "2 of its reported errors in every filter with >= 4 points (seed 2; seed 1 has no such filter)"
    ),
    description=(
        "The photometric stability of UVIS: the count rate (e-/s) of the standard stars GRW+70D5824 and "
        "GD153, observed again and again in each filter and measured in a fixed aperture. A contaminant "
        "building up on the optics, or a loss of sensitivity, shows as a slow decline, strongest in the "
        "blue and ultraviolet filters. Each point is one exposure with its 1-sigma error bar, coloured by "
        "filter; the table gives each filter's rate in 2009 and its change per year in percent (a few "
        "tenths of a percent a year or less is normal)."
    ),
    tables=tables,
    units={"x": "px", "y": "px", "countrate": "e-/s", "countrate_err": "e-/s"},
)
