"""A monitor's trend summary as tables people read: units in the column names, each value rounded to
its error (a slope of 0.0123 ± 0.0021 e-/DN a year, not 0.012345678901234567).

Each monitor's ``tables`` turns its ``trend()`` summary into ``{title: rows}``; the site shows them
under the trend plot.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

Rows = list[dict[str, Any]]
MJD_EPOCH = date(1858, 11, 17)  # MJD 0
SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)


def mjd_date(mjd: Any) -> str:
    """An MJD as a calendar date (UTC), ``'–'`` when unknown."""
    if not _finite(mjd):
        return "–"
    return (MJD_EPOCH + timedelta(days=float(mjd))).isoformat()


def number(v: Any, digits: int = 4) -> str:
    """``v`` to ``digits`` significant figures (a power of ten beyond 1e-3 ... 1e6)."""
    if not _finite(v):
        return "–"
    if v == 0:
        return "0"
    e = math.floor(math.log10(abs(v)))
    if e < -3 or e >= 6:
        m = v / 10**e
        return f"{m:.{digits - 1}f} × 10{str(e).translate(SUPERSCRIPT)}"
    return f"{v:,.{max(digits - 1 - e, 0)}f}"


def with_error(v: Any, err: Any, digits: int = 2) -> str:
    """``v ± err`` with ``err`` to ``digits`` significant figures and ``v`` to the same decimal place;
    a common power of ten when the numbers are very small or large. No error: ``v`` to 4 figures."""
    if not _finite(v):
        return "–"
    if not _finite(err) or err <= 0:
        return number(v)
    e_err = math.floor(math.log10(err))
    scale = max(abs(v), err)
    e = math.floor(math.log10(scale))
    if e < -3 or e >= 6:
        places = max(e - e_err + digits - 1, 0)
        return f"({v / 10**e:.{places}f} ± {err / 10**e:.{places}f}) × 10{str(e).translate(SUPERSCRIPT)}"
    places = max(digits - 1 - e_err, 0)
    return f"{v:,.{places}f} ± {err:,.{places}f}"


def percent(v: Any, err: Any = None) -> str:
    """A fraction as a percentage (with its error)."""
    if not _finite(v):
        return "–"
    return with_error(100 * v, 100 * err if _finite(err) else None)


def fit_rows(summary: dict[str, Any], group: str, level: str, unit: str) -> Rows:
    """Rows of per-group line fits (``plotting.fits_by_group``): the level at 2009.0 and the change per
    year, each with its 1-sigma error, and the number of points. Groups without points are left out."""
    rows = []
    for key, fit in summary.items():
        if not isinstance(fit, dict) or "slope" not in fit or not fit.get("n"):
            continue
        rows.append(
            {
                group: key,
                f"{level} in 2009 ({unit})": with_error(fit["intercept"], fit.get("intercept_err")),
                f"change per year ({unit}/yr)": with_error(fit["slope"], fit.get("slope_err")),
                "points": int(fit["n"]),
            }
        )
    return rows
