"""uvis-ctecorr-darks: the uvis-darks statistics on CTE-corrected darks.

shared/docs/wfc3-monitors.md §2. The correction model [I] is a per-pixel trail re-attribution, not
calwf3's full pixel-based reverse model: for every pixel more than 5 sigma above the frame's dark level
that is not itself in the trail of a brighter pixel, the excess over the dark level in the 8 pixels read
after it along its column is added back to it. Hot pixels far from the amplifier, which parallel CTE
dims, are then counted at their true rate; trends and hot pixels are reported as in uvis-darks.
"""

from __future__ import annotations

from typing import Any

from monitors.framework import Monitor
from monitors.plotting import vega_trend
from monitors.uvis_darks import SCHEMA, SELECT, frame, plot, trend


def measure(path: str, row: dict[str, Any]) -> list[dict[str, Any]]:
    return frame(path, row, correct_cte=True)


MONITOR = Monitor(
    "uvis-ctecorr-darks",
    "UVIS dark current and hot pixels, CTE-corrected",
    SELECT,
    measure,
    SCHEMA,
    trend,
    plot,
    lambda t: vega_trend(t, "median_dark", "chip", "UVIS median dark, CTE-corrected (e-/hr)"),
    __doc__ or "",
)
