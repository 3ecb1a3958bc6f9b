"""ir-bad-actors: IR exposures and programs likely to leave persistence, ranked.

docs/background/wfc3-monitors.md §11 [S bad_actor.py]: each IR flt is turned into fluence (e-/s x EXPTIME);
per exposure the median and the fraction of pixels above 0.5, 1, 2, 5 and 10 x saturation (70,000 e-);
per program the number of images, mean and worst fractions and the worst target; programs ranked by
their mean fraction above saturation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from monitors.calibration.fitsdata import read_rows
from monitors.calibration.inputs import IR_FLT, check
from monitors.calibration.plotting import vega_trend
from monitors.calibration.summary import Rows, percent
from monitors.framework import Monitor

SATURATION = 70000.0
LEVELS = (0.5, 1, 2, 5, 10)

SCHEMA = pa.schema(
    [
        ("rootname", pa.string()),
        ("expstart", pa.float64()),
        ("proposid", pa.int64()),
        ("pr_inv_l", pa.string()),
        ("targname", pa.string()),
        ("filter", pa.string()),
        ("exptime", pa.float64()),
        ("median_flux", pa.float64()),
    ]
    + [(f"x_{str(m).replace('.', '_')}", pa.float64()) for m in LEVELS]
)

SELECT = """
SELECT f.path, f.rootname, m.expstart, m.proposid, m.pr_inv_l, m.targname, m.filter, m.exptime
FROM files f JOIN master m USING (rootname)
WHERE f.filetype = 'flt' AND f.status = 'ok' AND m.detector = 'IR' AND m.imagetyp = 'EXT'
ORDER BY m.expstart
"""


def column(m: float) -> str:
    return f"x_{str(m).replace('.', '_')}"


def measure(path: str, row: dict[str, Any]) -> list[dict[str, Any]]:
    h = check(path, IR_FLT, imagetyp={"EXT"}, exptime=True)
    _rows, sci, _h = read_rows(path, 1)
    exptime = float(h["EXPTIME"])
    fluence = sci * exptime
    out = {
        "rootname": row["rootname"],
        "expstart": float(row["expstart"]),
        "proposid": row.get("proposid"),
        "pr_inv_l": row.get("pr_inv_l"),
        "targname": row.get("targname"),
        "filter": row.get("filter"),
        "exptime": exptime,
        "median_flux": float(np.median(sci)),
    }
    for m in LEVELS:
        out[column(m)] = float(np.mean(fluence > m * SATURATION))
    return [out]


def ranking(t: pa.Table) -> list[dict[str, Any]]:
    """Programs by mean fraction of pixels above saturation, worst first."""
    by: dict[int, list[dict[str, Any]]] = {}
    for r in t.to_pylist():
        by.setdefault(int(r["proposid"] or 0), []).append(r)
    out = []
    for prop, rs in by.items():
        worst = max(rs, key=lambda r: r[column(1)])
        out.append(
            {
                "proposid": prop,
                "pi": rs[0]["pr_inv_l"],
                "n_images": len(rs),
                "mean_2x": float(np.mean([r[column(2)] for r in rs])),
                "mean_sat": float(np.mean([r[column(1)] for r in rs])),
                "mean_half": float(np.mean([r[column(0.5)] for r in rs])),
                "worst_sat": worst[column(1)],
                "worst_target": worst["targname"],
            }
        )
    return sorted(out, key=lambda r: (-r["mean_sat"], r["proposid"]))


def trend(t: pa.Table) -> dict[str, Any]:
    return {"programs": ranking(t)}


def plot(t: pa.Table, summary: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    n = t.num_rows
    for m in LEVELS:
        v = np.sort(np.asarray(t.column(column(m)).to_numpy(), float))[::-1] * 100
        ax.plot(np.arange(1, n + 1) / n * 100, v, label=f"> {m} x saturation")
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_xlabel("% of IR images (sorted)")
    ax.set_ylabel("% of pixels")
    ax.set_title("IR bad actors: pixels above multiples of saturation")
    ax.legend(fontsize=8)
    fig.tight_layout()
    p = out / "bad_actors.png"
    fig.savefig(p, dpi=100)
    plt.close(fig)
    return [p]


def tables(summary: dict[str, Any]) -> dict[str, Rows]:
    """The programmes ranked by their mean fraction of pixels above saturation, worst first."""
    rows = [
        {
            "proposid": p["proposid"],
            "PI": p["pi"],
            "images": p["n_images"],
            "mean above saturation (%)": percent(p["mean_sat"]),
            "mean above 2 x saturation (%)": percent(p["mean_2x"]),
            "worst image above saturation (%)": percent(p["worst_sat"]),
            "worst target": p["worst_target"],
        }
        for p in summary.get("programs", [])
    ]
    return {"Programmes, worst first": rows}


MONITOR = Monitor(
    "ir-bad-actors",
    "IR bad actors (persistence-causing exposures)",
    SELECT,
    measure,
    SCHEMA,
    trend,
    plot,
    lambda t: vega_trend(
        t, "x_1", "proposid", "IR pixels above saturation", label="% of pixels above saturation", scale=100
    ),
    __doc__ or "",
    measures="per exposure the fraction of pixels above 0.5-10 x saturation; programs ranked",
    claim=(
        "exact fractions (27 bad-actor exposures per seed, worst fraction error 0 on two seeds, "
        "bench/claims.py)"
    ),
    description=(
        "Exposures likely to leave persistence: an IR pixel that receives more light than it can hold "
        "(saturation, about 70,000 electrons) keeps a faint ghost image for hours. Each point is one IR "
        "exposure: the fraction of its pixels above saturation, coloured by proposal. The table ranks the "
        "programmes by that fraction, worst first, so that the exposures taken after theirs can be "
        "checked for ghosts."
    ),
    tables=tables,
    units={"exptime": "s"},
)
