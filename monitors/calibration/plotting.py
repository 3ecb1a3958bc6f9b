"""Trend plots drawn from monitor results: PNG (matplotlib) and Vega-Lite specs for the site."""

from __future__ import annotations

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


def fits_by_group(t: pa.Table, y: str, group: str, groups: Any) -> dict[str, dict[str, float]]:
    """A line of ``y`` against years since 2009.0 for each value of ``group``: slope, intercept, n."""
    g = np.asarray(t.column(group).to_pylist())
    x_all = years(np.asarray(t.column("expstart").to_numpy(), float)) - 2009.0
    y_all = np.asarray(t.column(y).to_numpy(zero_copy_only=False), float)
    out = {}
    for k in groups:
        sel = g == k
        slope, icpt = linear_fit(x_all[sel], y_all[sel])
        out[str(k)] = {"slope": slope, "intercept": icpt, "n": int(sel.sum())}
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
) -> Path:
    """``y`` against EXPSTART (as decimal year), one colour per ``group``, with fitted lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    x = years(np.asarray(t.column("expstart").to_numpy(zero_copy_only=False), float))
    v = np.asarray(t.column(y).to_numpy(zero_copy_only=False), float)
    groups = t.column(group).to_pylist() if group else ["all"] * t.num_rows
    for g in sorted(set(groups), key=str):
        sel = np.array([gg == g for gg in groups])
        ax.plot(x[sel], v[sel], "o", ms=4, label=str(g))
        fit = (fits or {}).get(str(g))
        if fit and np.isfinite(fit.get("slope", np.nan)):
            xx = np.array([x[sel].min(), x[sel].max()])
            ax.plot(xx, fit["intercept"] + fit["slope"] * (xx - 2009.0), "-", lw=1)
    ax.set_xlabel("year")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(set(groups)) > 1:
        ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def vega_trend(t: pa.Table, y: str, group: str | None, title: str) -> dict[str, Any]:
    """A Vega-Lite scatter of ``y`` against EXPSTART (the site renders it with st.vega_lite_chart)."""
    cols = ["expstart", y] + ([group] if group else [])
    data = [{k: r[k] for k in cols} for r in t.select(cols).to_pylist()]
    enc: dict[str, Any] = {
        "x": {
            "field": "expstart",
            "type": "quantitative",
            "title": "EXPSTART (MJD)",
            "scale": {"zero": False},
        },
        "y": {"field": y, "type": "quantitative", "scale": {"zero": False}},
    }
    if group:
        enc["color"] = {"field": group, "type": "nominal"}
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": title,
        "data": {"values": data},
        "mark": {"type": "point", "tooltip": True},
        "encoding": enc,
    }
