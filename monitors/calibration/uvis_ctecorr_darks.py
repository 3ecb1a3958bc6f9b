"""uvis-ctecorr-darks: the uvis-darks statistics on CTE-corrected superdarks.

docs/background/wfc3-monitors.md §2. As calwf3's pixel-based correction does for each raw, each superdark
is corrected with a model of its parallel readout before the hot pixels are counted, but here the model is
measured on the superdark itself (monitors/calibration/pixel_cte.py): the trail profile and the
charge-dependent loss per transfer are fitted on its bright isolated hot pixels, then the superdark is
inverted column by column, each source fitted with its trail and its charge put back in its own pixel. A
trail pixel is never counted as a hot pixel, even far from the amplifier where a faint hot pixel shows
less than its trail; a hot pixel counts at its rate before readout. The fitted model goes with each row
(``cte_*``). Trends and hot pixels are reported as in uvis-darks. Simplified [I]: calwf3 corrects each raw
with a model calibrated on years of data (about 60-row trails, read-noise mitigation); here one superdark
at a time, on its own hot pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from monitors.calibration.pixel_cte import corrected_sources
from monitors.calibration.plotting import vega_trend
from monitors.calibration.uvis_darks import (
    SCHEMA as DARKS_SCHEMA,
)
from monitors.calibration.uvis_darks import (
    SELECT,
    Found,
    Stacks,
    plot,
    tables,
    trend,
    window,
    windows,
)
from monitors.framework import Monitor

SCHEMA = (
    DARKS_SCHEMA.append(pa.field("cte_tau", pa.float64()))  # rows: the trail's e-folding length
    .append(pa.field("cte_loss160", pa.float64()))  # 1 - CTE per transfer of a 160 e- packet
    .append(pa.field("cte_rho", pa.float64()))  # 1 - CTE = m S^rho
    .append(
        pa.field("cte_beta", pa.float64())
    )  # share of the dark and post-flash charge lost with a hot pixel
    .append(pa.field("cte_pixels", pa.int64()))  # bright isolated hot pixels the model was fitted on
)


def corrected(stacks: Stacks, hours: float, flash: float) -> tuple[Found, dict[str, Any]]:
    """Each chip's sources at their rate before readout, with the significance of their detection, and the
    readout model as columns."""
    model, found = corrected_sources(stacks, hours, flash)
    out: Found = {}
    for chip, (ys, xs, excess, gain) in found.items():
        _rows, _rate, med, sigmas = stacks[chip]
        out[chip] = (ys, xs, med + excess, np.sqrt(np.maximum(gain, 0.0)) / sigmas[ys, xs])
    return out, {
        "cte_tau": model.tau,
        "cte_loss160": model.m * 160.0**model.rho,
        "cte_rho": model.rho,
        "cte_beta": model.beta,
        "cte_pixels": model.n_fit,
    }


def measure(path: str, row: dict[str, Any]) -> list[dict[str, Any]]:
    return window(row, corrected)


MONITOR = Monitor(
    "uvis-ctecorr-darks",
    "UVIS dark current and hot pixels, CTE-corrected",
    SELECT,
    measure,
    SCHEMA,
    trend,
    plot,
    lambda t: vega_trend(
        t,
        "median_dark",
        "amp",
        "UVIS dark current per amplifier, CTE-corrected",
        label="median dark current (e-/hr)",
    ),
    __doc__ or "",
    windows,
    measures=(
        "uvis-darks on CTE-corrected superdarks: a parallel readout model (trail profile, loss per "
        "transfer against charge and distance to the amp) fitted on each superdark's bright isolated hot "
        "pixels and inverted column by column; hot pixels at their rate before readout; the fitted model "
        "with each result"
    ),
    claim=(
        "on darks with cosmic rays: recall >= 95 % of planted hot pixels above 54 e-/hr as CTE leaves "
        "them (measured 99.6 % on two seeds, bench/claims.py), false positives <= 5 % (1.7-2.1 %), <= 5 % "
        "of pixels planted below 40 e-/hr flagged (1.8-2.1 %), median rate within 10 % of the planted one "
        "(5 %, the dark current included); of pixels planted above 54 e-/hr before CTE 91-92 % are found "
        "(uvis-darks: 77 %)"
    ),
    description=(
        "The uvis-darks measurements (dark current per amplifier in e-/hr, hot pixels above 54 e-/hr) on "
        "superdarks corrected for charge transfer: how much charge a hot pixel loses into its trail while "
        "it is read out is measured on the superdark's own bright hot pixels, and each hot pixel gets its "
        "charge back, so hot pixels far from the amplifier count at their true rate. Read it as "
        "uvis-darks; expect more hot pixels here than there, most of all on the side of each chip far "
        "from its amplifier. Each result also gives the fitted CTE model (cte_loss160: the fraction lost "
        "per transfer by a 160 e- packet)."
    ),
    tables=tables,
    units={"median_dark": "e-/hr"},
)
