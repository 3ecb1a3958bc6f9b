"""uvis-gain: UVIS gain per amp from internal flats (photon transfer), docs/background/wfc3-monitors.md §4.

Per amp of each raw tungsten flat: the bias is the median of the amp's serial prescan and the read noise
its standard deviation; in 64 x 64 boxes of the image the mean mu and the variance of differences of
horizontally adjacent pixels, var(p[i] - p[i+1]) / 2, which cancels the smooth lamp pattern as a pair
of flats would ([I]: one frame instead of a pair). Then g = mu / (var - RN^2) per box; the amp's gain
is the median over boxes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from monitors.calibration.fitsdata import read_rows
from monitors.calibration.inputs import UVIS_RAW, check
from monitors.calibration.plotting import fits_by_group, trend_png, vega_trend
from monitors.calibration.summary import Rows, with_error
from monitors.calibration.uvis_darks import AMPS
from monitors.framework import Monitor

BOX = 64

SCHEMA = pa.schema(
    [
        ("rootname", pa.string()),
        ("expstart", pa.float64()),
        ("chip", pa.int32()),
        ("amp", pa.string()),
        ("signal_dn", pa.float64()),
        ("gain", pa.float64()),
        ("gain_err", pa.float64()),
        ("n_boxes", pa.int64()),
    ]
)

SELECT = """
SELECT f.path, f.rootname, m.expstart FROM files f JOIN master m USING (rootname)
WHERE f.filetype = 'raw' AND f.status = 'ok' AND m.detector = 'UVIS' AND m.imagetyp = 'FLAT'
  AND m.exptime >= 30 ORDER BY m.expstart
"""


def measure(path: str, row: dict[str, Any]) -> list[dict[str, Any]]:
    check(path, UVIS_RAW, imagetyp={"FLAT"}, exptime=True)
    out = []
    for ext, chip in ((1, 2), (4, 1)):
        rows, raw, _h = read_rows(path, ext)
        img_rows = rows - 19 if chip == 1 else rows
        keep = (img_rows >= 0) & (img_rows < 2051)
        for side, amp in enumerate(AMPS[chip]):
            pre = raw[keep][:, 2:24] if side == 0 else raw[keep][:, 4183:4204]
            bias, rn = float(np.median(pre)), float(np.std(pre))
            img = raw[keep][:, 25 + 100 : 2073 - 100] if side == 0 else raw[keep][:, 2133 + 100 : 4181 - 100]
            img = img - bias
            gains, mus = [], []
            for r0 in range(0, img.shape[0] - BOX + 1, BOX):
                for c0 in range(0, img.shape[1] - BOX, BOX):
                    b = img[r0 : r0 + BOX, c0 : c0 + BOX + 1]
                    mu = float(b[:, :-1].mean())
                    var = float(np.var(np.diff(b, axis=1)) / 2)
                    if mu > 50 and var > rn**2:
                        gains.append(mu / (var - rn**2) * 1.0)
                        mus.append(mu)
            if gains:
                g = np.array(gains)
                out.append(
                    {
                        "rootname": row["rootname"],
                        "expstart": float(row["expstart"]),
                        "chip": chip,
                        "amp": amp,
                        "signal_dn": float(np.median(mus)),
                        "gain": float(np.median(g)),
                        "gain_err": float(1.2533 * g.std() / np.sqrt(len(g))),
                        "n_boxes": len(g),
                    }
                )
    return out


def trend(t: pa.Table) -> dict[str, Any]:
    """Per amp: the median gain with its statistical 1-sigma error (from the files' scatter, or the one
    file's own error), and a weighted line against time (slope, slope_err per year). The error leaves out
    the method's systematics: adjacent-pixel differences in one flat see its pixel-to-pixel structure
    (about -1 % in the generated archive's amp A, 5 times this error)."""
    out: dict[str, Any] = fits_by_group(t, "gain", "amp", "ABCD", yerr="gain_err")
    amps = np.asarray(t.column("amp").to_pylist())
    gains = np.asarray(t.column("gain").to_numpy(), float)
    errs = np.asarray(t.column("gain_err").to_numpy(zero_copy_only=False), float)
    for a, fit in out.items():
        g = gains[amps == a]
        fit["gain"] = float(np.median(g)) if len(g) else float("nan")
        one = float(errs[amps == a][0]) if len(g) == 1 else float("nan")
        fit["gain_err"] = float(1.2533 * np.std(g, ddof=1) / np.sqrt(len(g))) if len(g) > 1 else one
    return out


def plot(t: pa.Table, summary: dict[str, Any], out: Path) -> list[Path]:
    return [
        trend_png(
            t,
            "gain",
            "amp",
            "UVIS gain per amplifier (photon transfer)",
            "e-/DN",
            out / "gain.png",
            summary,
            yerr="gain_err",
        )
    ]


def tables(summary: dict[str, Any]) -> dict[str, Rows]:
    """Per amp: the median gain and its change per year, with their errors."""
    rows = [
        {
            "amp": amp,
            "gain (e-/DN)": with_error(fit.get("gain"), fit.get("gain_err")),
            "change per year (e-/DN/yr)": with_error(fit["slope"], fit.get("slope_err")),
            "flats": int(fit["n"]),
        }
        for amp, fit in summary.items()
        if fit.get("n")
    ]
    return {"Gain per amplifier (median of the flats; change from a line fitted against time)": rows}


MONITOR = Monitor(
    "uvis-gain",
    "UVIS gain per amplifier",
    SELECT,
    measure,
    SCHEMA,
    trend,
    plot,
    lambda t: vega_trend(t, "gain", "amp", "UVIS gain per amp", label="gain (e-/DN)", yerr="gain_err"),
    __doc__ or "",
    measures="gain per amp, photon transfer on internal flats",
    claim="within 2 %",
    description=(
        "The gain of each UVIS amplifier (A-D): how many electrons one count (DN) stands for, in e-/DN. "
        "It is measured from the noise in internal lamp flats (photon transfer: the larger the gain, the "
        "smaller the noise in DN for a given signal). Each point is one flat and amplifier with its "
        "1-sigma error bar. The gain should stay flat to a percent or so; a drift or a step means the "
        "electronics changed and the calibration may need an update."
    ),
    tables=tables,
    units={"signal_dn": "DN", "gain": "e-/DN", "gain_err": "e-/DN"},
)
