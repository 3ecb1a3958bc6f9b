"""uvis-eper-cte: CTE from the Extended Pixel Edge Response in the parallel overscan, trend per year.

docs/background/wfc3-monitors.md §3: per amp of each raw tungsten flat, bias from the far overscan rows,
signal S (e-) = mean of the last image rows before the parallel overscan, deferred charge S_D = the
excess in the first overscan rows; CTE = 1 - S_D / (S N_P), N_P = 2051. With the stable power law
1 - CTE = m S^rho (rho = -0.72 [S]), each measurement gives m, i.e. the loss at 160 e-, whose trend
against time is fitted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from monitors.calibration.fitsdata import read_rows
from monitors.calibration.inputs import UVIS_RAW, check
from monitors.calibration.plotting import fit_line, trend_png, vega_trend, years
from monitors.calibration.summary import Rows, with_error
from monitors.calibration.uvis_darks import AMPS
from monitors.framework import Monitor

N_P = 2051
RHO = -0.72
LAST_ROWS = 8
TRAIL_ROWS = 12

SCHEMA = pa.schema(
    [
        ("rootname", pa.string()),
        ("expstart", pa.float64()),
        ("chip", pa.int32()),
        ("amp", pa.string()),
        ("exptime", pa.float64()),
        ("signal_e", pa.float64()),
        ("deferred_e", pa.float64()),
        ("cte", pa.float64()),
        ("loss160", pa.float64()),
    ]
)

SELECT = """
SELECT f.path, f.rootname, m.expstart FROM files f JOIN master m USING (rootname)
WHERE f.filetype = 'raw' AND f.status = 'ok' AND m.detector = 'UVIS' AND m.imagetyp = 'FLAT'
ORDER BY m.expstart
"""


def measure(path: str, row: dict[str, Any]) -> list[dict[str, Any]]:
    h = check(path, UVIS_RAW, imagetyp={"FLAT"}, exptime=True)
    out = []
    for ext, chip in ((1, 2), (4, 1)):
        rows, raw, _h = read_rows(path, ext)
        # readout order away from the amp: chip 2 (ext 1) ends at image row 2050, overscan 2051-2069;
        # chip 1 (ext 4) ends at raw row 19, overscan rows 18 down to 0
        if chip == 2:
            last, over = np.arange(2051 - LAST_ROWS, 2051), np.arange(2051, 2070)
        else:
            last, over = np.arange(19, 19 + LAST_ROWS), np.arange(18, -1, -1)
        at = {int(r): i for i, r in enumerate(rows)}
        if not all(int(r) in at for r in np.r_[last, over]):
            continue
        for side, amp in enumerate(AMPS[chip]):
            cols = np.r_[25 + 50 : 2073 - 50] if side == 0 else np.r_[2133 + 50 : 4181 - 50]
            gain = float(h.get(f"ATODGN{amp}", 1.5))
            bias = float(np.median(raw[[at[int(r)] for r in over[-6:]]][:, cols]))
            signal = float(np.mean(raw[[at[int(r)] for r in last]][:, cols]) - bias) * gain
            trail = np.median(raw[[at[int(r)] for r in over[:TRAIL_ROWS]]][:, cols], axis=1) - bias
            deferred = float(np.sum(trail)) * gain
            if signal <= 0:
                continue
            loss = deferred / (signal * N_P)
            out.append(
                {
                    "rootname": row["rootname"],
                    "expstart": float(row["expstart"]),
                    "chip": chip,
                    "amp": amp,
                    "exptime": float(h["EXPTIME"]),
                    "signal_e": signal,
                    "deferred_e": deferred,
                    "cte": 1 - loss,
                    "loss160": loss / (signal / 160.0) ** RHO,
                }
            )
    return out


def trend(t: pa.Table) -> dict[str, Any]:
    x = years(np.asarray(t.column("expstart").to_numpy(), float)) - 2009.0
    y = np.asarray(t.column("loss160").to_numpy(), float)
    ok = np.asarray(t.column("signal_e").to_numpy(), float) > 1000  # the trail is well above the noise
    fit = fit_line(x[ok], y[ok])
    return {
        "all": {"slope": -fit["slope"], "slope_err": fit["slope_err"], "intercept": 1 - fit["intercept"],
                "intercept_err": fit["intercept_err"], "n": int(ok.sum()), "note": "CTE at 160 e- per year"}
    }  # fmt: skip


def plot(t: pa.Table, summary: dict[str, Any], out: Path) -> list[Path]:
    cte160 = pa.compute.subtract(1.0, t.column("loss160"))
    tt = t.append_column("cte160", cte160)
    s = summary.get("all", {})
    # CTE = 1 - loss: its line is the summary's (slope is the CTE's change per year, negative as it falls)
    fits = {"all": {k: s.get(k, float("nan")) for k in ("slope", "slope_err", "intercept")}} if s else None
    return [
        trend_png(tt, "cte160", None, "UVIS CTE at 160 e- (EPER)", "CTE per transfer", out / "cte.png", fits)
    ]


def tables(summary: dict[str, Any]) -> dict[str, Rows]:
    """The CTE at 160 e- in 2009 and its change per year, with their errors."""
    rows = [
        {
            "CTE at 160 e- in 2009": with_error(fit["intercept"], fit.get("intercept_err")),
            "change per year (/yr)": with_error(fit["slope"], fit.get("slope_err")),
            "measurements (flat x amp, signal above 1,000 e-)": int(fit["n"]),
        }
        for fit in summary.values()
        if fit.get("n")
    ]
    return {"CTE at 160 e- (a line fitted against time)": rows}


MONITOR = Monitor(
    "uvis-eper-cte",
    "UVIS CTE from EPER",
    SELECT,
    measure,
    SCHEMA,
    trend,
    plot,
    lambda t: vega_trend(
        t, "loss160", "amp", "UVIS charge loss per transfer at 160 e-", label="1 - CTE at 160 e-"
    ),
    __doc__ or "",
    measures="CTE from the EPER trail in the parallel overscan, loss at 160 e- per year",
    claim="slope within 10 % (+0.3 % and -0.5 % on two seeds, bench/claims.py)",
    description=(
        "Charge transfer efficiency (CTE) of UVIS: the fraction of its charge a pixel keeps at each of "
        "the about 2,000 transfers on the way to the amplifier. Radiation damage lowers it year after "
        "year, and faint sources lose the most. It is measured in internal flats from the charge that "
        "trails into the overscan after the last row, and scaled to a faint signal of 160 electrons. Each "
        "point is one flat and amplifier: the loss per transfer (1 - CTE) at 160 e-, which should grow "
        "steadily with time; the table gives the CTE in 2009 and its change per year."
    ),
    tables=tables,
    units={"exptime": "s", "signal_e": "e-", "deferred_e": "e-"},
)
