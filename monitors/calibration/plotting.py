"""Trend plots drawn from monitor results: PNG (matplotlib) and Vega-Lite specs for the site."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

MJD_COOLDOWN = 54993.0  # 2009-06-11: the monitors' day 0


def linear_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) of a least-squares line; nan when fewer than two distinct x."""
    ok = np.isfinite(x) & np.isfinite(y)
    if len(np.unique(x[ok])) < 2:
        return float("nan"), float(np.nanmean(y)) if len(y) else float("nan")
    slope, icpt = np.polyfit(x[ok], y[ok], 1)
    return float(slope), float(icpt)


def fit_line(x: np.ndarray, y: np.ndarray, sigma: np.ndarray | None = None) -> dict[str, float]:
    """Least-squares line with its 1-sigma errors: slope, slope_err, intercept, intercept_err, their
    covariance ``cov`` and ``n``.

    With ``sigma`` (per-point 1-sigma errors) the fit is weighted and the errors come from them, scaled
    up by sqrt(reduced chi-square) when the points scatter more than their errors say; without, the
    errors come from the residual scatter. Errors are nan with fewer than three points (no scatter to
    measure; two points fit any line exactly). Slope nan with fewer than two distinct x.

    See Also
    --------
    linear_fit : the line alone.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    w = np.ones_like(x) if sigma is None else 1.0 / np.asarray(sigma, float) ** 2
    ok &= np.isfinite(w) & (w > 0)
    x, y, w = x[ok], y[ok], w[ok]
    nan = float("nan")
    out = {"slope": nan, "slope_err": nan, "intercept": nan, "intercept_err": nan, "cov": nan, "n": len(x)}
    if len(np.unique(x)) < 2:
        out["intercept"] = float(np.mean(y)) if len(y) else nan
        return out
    a = np.vstack([x, np.ones_like(x)]).T
    cov = np.linalg.inv(a.T @ (a * w[:, None]))
    slope, icpt = cov @ (a.T @ (w * y))
    out.update(slope=float(slope), intercept=float(icpt))
    dof = len(x) - 2
    if dof < 1:
        return out
    chi2 = float(np.sum(w * (y - slope * x - icpt) ** 2)) / dof
    cov = cov * (chi2 if sigma is None else max(chi2, 1.0))
    out.update(slope_err=float(np.sqrt(cov[0, 0])), intercept_err=float(np.sqrt(cov[1, 1])),
               cov=float(cov[0, 1]))  # fmt: skip
    return out


def fits_by_group(
    t: pa.Table, y: str, group: str, groups: Any, yerr: str | None = None
) -> dict[str, dict[str, float]]:
    """A line of ``y`` against years since 2009.0 for each value of ``group``: slope and intercept with
    their 1-sigma errors (:func:`fit_line`; weighted by the column ``yerr`` if given), and n."""
    g = np.asarray(t.column(group).to_pylist())
    x_all = years(np.asarray(t.column("expstart").to_numpy(), float)) - 2009.0
    y_all = np.asarray(t.column(y).to_numpy(zero_copy_only=False), float)
    e_all = np.asarray(t.column(yerr).to_numpy(zero_copy_only=False), float) if yerr else None
    out = {}
    for k in groups:
        sel = g == k
        fit = fit_line(x_all[sel], y_all[sel], None if e_all is None else e_all[sel])
        out[str(k)] = {key: fit[key] for key in ("slope", "slope_err", "intercept", "intercept_err", "n")}
    return out


def years(mjd: np.ndarray) -> np.ndarray:
    return 2009.0 + (np.asarray(mjd, float) - 54832.0) / 365.25


def trend_png(
    t: pa.Table,
    y: str,
    group: str | None,
    title: str,
    ylabel: str,
    path: Path,
    fits: dict[str, Any] | None = None,
    yerr: str | None = None,
    scale: float = 1.0,
) -> Path:
    """``y`` against EXPSTART (as decimal year), one colour per ``group``, with fitted lines (their slope
    and its error in the legend) and error bars from the column ``yerr``; ``scale`` multiplies the
    values, errors and fits (100: a fraction drawn in percent)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    x = years(np.asarray(t.column("expstart").to_numpy(zero_copy_only=False), float))
    v = scale * np.asarray(t.column(y).to_numpy(zero_copy_only=False), float)
    err = scale * np.asarray(t.column(yerr).to_numpy(zero_copy_only=False), float) if yerr else None
    groups = t.column(group).to_pylist() if group else ["all"] * t.num_rows
    ordered = sorted(set(groups), key=str)
    for i, g in enumerate(ordered):
        sel = np.array([gg == g for gg in groups])
        fit = (fits or {}).get(str(g))
        label = str(g)
        if fit and np.isfinite(fit.get("slope_err", np.nan)):
            label += f": {scale * fit['slope']:.3g} ± {scale * fit['slope_err']:.2g} /yr"
        colour, marker = _style(i, len(ordered))
        drawn = ax.errorbar(x[sel], v[sel], yerr=None if err is None else err[sel], fmt=marker, ms=4,
                            capsize=2, label=label, color=colour)  # fmt: skip
        if fit and np.isfinite(fit.get("slope", np.nan)):
            xx = np.array([x[sel].min(), x[sel].max()])
            # (in its points' colour: a line of its own would take the next one, and group k's points
            # colour 2k, not the site chart's k)
            ax.plot(xx, scale * (fit["intercept"] + fit["slope"] * (xx - 2009.0)), "-", lw=1,
                    color=drawn[0].get_color())  # fmt: skip
    ax.set_xlabel("year")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(set(groups)) > 1 or fits:
        # beside the axes, not on them: a legend of four columns of slopes was wider than the figure
        # and hid the highest points
        cols = 1 if len(ordered) <= 16 else 2
        ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncol=cols, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


# a legend's words for the columns results are grouped by
GROUP_TITLES = {"amp": "amplifier", "proposid": "proposal", "pr_inv_l": "PI"}


# Vega-Lite's shapes in its order, as matplotlib markers (circle, square, cross, diamond, triangles)
_MARKERS = ("o", "s", "P", "D", "^", "v", ">", "<")


def _style(i: int, n: int) -> tuple[Any, str]:
    """The colour and marker of group ``i`` of ``n`` (in sorted order), as :func:`vega_trend` draws it:
    tab10 (category10), tab20 past ten groups, and past twenty a shape per group as well."""
    import matplotlib

    cmap = matplotlib.colormaps["tab20" if n > 10 else "tab10"]
    return cmap(i % cmap.N), _MARKERS[i % len(_MARKERS)] if n > 20 else "o"


def vega_trend(
    t: pa.Table,
    y: str,
    group: str | None,
    title: str,
    *,
    label: str = "",
    yerr: str | None = None,
    scale: float = 1.0,
) -> dict[str, Any]:
    """A Vega-Lite scatter of ``y`` against the date of EXPSTART (UTC), one colour per ``group``, with
    error bars from the column ``yerr``; ``label`` (with its unit) titles the y axis. ``scale``
    multiplies ``y`` and its error (100: a fraction drawn in percent, as the tables give it). The
    tooltip gives the dataset, date and value (the site renders it with st.vega_lite_chart)."""
    from monitors.calibration.summary import MJD_EPOCH

    epoch = datetime(MJD_EPOCH.year, MJD_EPOCH.month, MJD_EPOCH.day)
    cols = [c for c in ("rootname", "expstart", y, yerr, group) if c and c in t.column_names]
    data = []
    for r in t.select(cols).to_pylist():
        if r["expstart"] is None or r[y] is None:
            continue  # (a refused input has no numbers)
        r["date"] = (epoch + timedelta(days=float(r.pop("expstart")))).isoformat(timespec="seconds")
        r[y] *= scale
        if yerr and r.get(yerr) is not None:
            r[yerr] *= scale
            r["lo"], r["hi"] = r[y] - r[yerr], r[y] + r[yerr]
        data.append(r)
    x = {"field": "date", "type": "temporal", "title": "date (EXPSTART, UTC)", "axis": {"format": "%Y-%m-%d"}}
    enc: dict[str, Any] = {
        "x": x,
        "y": {"field": y, "type": "quantitative", "title": label or y, "scale": {"zero": False}},
        "tooltip": [
            *([{"field": "rootname", "title": "dataset"}] if "rootname" in cols else []),
            {"field": "date", "type": "temporal", "format": "%Y-%m-%d %H:%M", "title": "date"},
            {"field": y, "type": "quantitative", "format": ".4~g", "title": label or y},
            *(
                [{"field": yerr, "type": "quantitative", "format": ".2~g", "title": "± (1 sigma)"}]
                if yerr
                else []
            ),
            *([{"field": group, "type": "nominal"}] if group else []),
        ],
    }
    if group:
        # the PNGs' colours (matplotlib's tab10 = category10, groups in sorted order); more groups than ten
        # get twenty colours rather than ten repeated, and a legend with all of them
        n = len({r.get(group) for r in data})
        title = GROUP_TITLES.get(group, group.replace("_", " "))
        legend = {"symbolLimit": 0, "columns": 2 if n > 10 else 1}
        enc["color"] = {
            "field": group,
            "type": "nominal",
            "title": title,
            "scale": {"scheme": "category20" if n > 10 else "category10"},
            "legend": legend,
        }
        if n > 20:  # and eight shapes beside them: 40 groups told apart (one legend: same field and title)
            enc["shape"] = {"field": group, "type": "nominal", "title": title, "legend": legend}
    layers: list[dict[str, Any]] = [{"mark": {"type": "point", "filled": True}, "encoding": enc}]
    if yerr:
        bars = {"x": x, "y": {"field": "lo", "type": "quantitative"}, "y2": {"field": "hi"}}
        if group:
            bars["color"] = enc["color"]
        layers.insert(0, {"mark": {"type": "rule", "opacity": 0.6}, "encoding": bars})
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": title,
        "data": {"values": data},
        "layer": layers,
    }
