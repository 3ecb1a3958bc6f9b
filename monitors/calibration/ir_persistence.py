"""ir-persistence: predicted persistence for IR exposures that follow saturating ones (16 h look-back).

docs/background/wfc3-monitors.md §10 [S subtract_persist.py]: for each IR science exposure, every IR
exposure that ended within the previous 16 hours is a stimulus; its fluence (flt e-/s x EXPTIME) and
the time from its end to the middle of the exposure give the persistence of the modified Fermi model
(norm 0.3 e-/s, alpha 0.159, gamma 1.022, E_f 83,400 e-, kT 18,500 e-); pixels take the maximum over
stimuli. Per exposure: max, median, 90th/99th percentiles and the % of pixels above 0.1, 0.03 and
0.01 e-/s. The predicted map goes to ``<lake>/reports/monitors/ir-persistence/maps/<root>_persist.fits``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from monitors.calibration.fitsdata import read_rows
from monitors.calibration.inputs import IR_FLT, check
from monitors.calibration.plotting import trend_png, vega_trend
from monitors.calibration.summary import Rows
from monitors.framework import Monitor, Refused

LOOKBACK_H = 16.0
MODEL = {"norm": 0.3, "alpha": 0.159, "gamma": 1.022, "e_f": 83400.0, "kt": 18500.0}
LEVELS = (0.1, 0.03, 0.01)

SCHEMA = pa.schema(
    [
        ("rootname", pa.string()),
        ("expstart", pa.float64()),
        ("n_stimuli", pa.int64()),
        ("stimuli", pa.string()),
        ("max", pa.float64()),
        ("median", pa.float64()),
        ("p90", pa.float64()),
        ("p99", pa.float64()),
    ]
    + [(f"pct_above_{str(v).replace('.', '_')}", pa.float64()) for v in LEVELS]
    + [("map_path", pa.string())]
)

# every IR flt with the flt files of the IR exposures that ended in the 16 hours before its start
SELECT = f"""
WITH ir AS (
  SELECT f.path, f.rootname, m.expstart, m.exptime, m.expstart + m.exptime / 86400.0 AS expend
  FROM files f JOIN master m USING (rootname)
  WHERE f.filetype = 'flt' AND f.status = 'ok' AND m.detector = 'IR' AND m.imagetyp = 'EXT')
SELECT a.path, a.rootname, a.expstart, a.exptime,
       list(struct_pack(path := b.path, rootname := b.rootname, expend := b.expend)) AS stimuli
FROM ir a JOIN ir b ON b.expend <= a.expstart AND b.expend > a.expstart - {LOOKBACK_H / 24.0}
GROUP BY ALL ORDER BY a.expstart
"""


def _runs(rows: np.ndarray) -> str:
    """'a:b,c:d' of sorted row numbers (the map holds only these flt rows)."""
    cut = np.flatnonzero(np.diff(rows) != 1) + 1
    return ",".join(f"{r[0]}:{r[-1] + 1}" for r in np.split(rows, cut))


def fermi(fluence: np.ndarray, dt: float) -> Any:
    p = MODEL
    x = np.clip(fluence, 1.0, None)
    f = 1.0 / (np.exp((p["e_f"] - x) / p["kt"]) + 1.0)
    return p["norm"] * f * (x / p["e_f"]) ** p["alpha"] * (max(dt, 1.0) / 1000.0) ** (-p["gamma"])


def _stimulus_exptime(path: str, rel: str) -> float:
    """The exposure time of a stimulus, if it is a full-frame IR flt (its fluence is needed everywhere)."""
    try:
        return float(check(path, IR_FLT, exptime=True)["EXPTIME"])
    except Refused as e:
        raise Refused(f"its stimulus {rel} cannot be used: {e}") from None


def measure(path: str, row: dict[str, Any]) -> list[dict[str, Any]]:
    check(path, IR_FLT, imagetyp={"EXT"}, exptime=True)
    rows, _sci, _h = read_rows(path, 1)
    mid = float(row["expstart"]) + float(row["exptime"]) / 2.0 / 86400.0
    archive = path[: -len(row["path"])]
    best = None
    for s in row["stimuli"]:
        exptime = _stimulus_exptime(archive + s["path"], s["path"])
        srows, sci, _ = read_rows(archive + s["path"], 1)
        fluence = sci * exptime
        common = np.intersect1d(rows, srows)
        pred = fermi(fluence[np.searchsorted(srows, common)], (mid - float(s["expend"])) * 86400.0)
        best = pred if best is None else np.maximum(best, pred)
        rows = common
    assert best is not None
    map_path = ""
    if row.get("_reports"):
        import fitsio

        out_dir = Path(row["_reports"]) / "maps"
        out_dir.mkdir(parents=True, exist_ok=True)
        map_path = str(out_dir / f"{row['rootname']}_persist.fits")
        fitsio.write(
            map_path + ".part",
            best.astype(np.float32),
            header={"QLROWS": _runs(rows)},
            clobber=True,
        )
        os.replace(map_path + ".part", map_path)
        if row.get("_lake"):  # relative to the lake, which may move (lake.relocate)
            map_path = Path(map_path).relative_to(row["_lake"]).as_posix()
    res = {
        "rootname": row["rootname"],
        "expstart": float(row["expstart"]),
        "n_stimuli": len(row["stimuli"]),
        "stimuli": ",".join(s["rootname"] for s in row["stimuli"]),
        "max": float(best.max()),
        "median": float(np.median(best)),
        "p90": float(np.percentile(best, 90)),
        "p99": float(np.percentile(best, 99)),
        "map_path": map_path,
    }
    for v in LEVELS:
        res[f"pct_above_{str(v).replace('.', '_')}"] = float(100 * np.mean(best > v))
    return [res]


def trend(t: pa.Table) -> dict[str, Any]:
    mx = np.asarray(t.column("max").to_numpy(), float)
    return {"all": {"exposures": t.num_rows, "with_persistence_above_0_01": int(np.sum(mx > 0.01))}}


def plot(t: pa.Table, summary: dict[str, Any], out: Path) -> list[Path]:
    return [
        trend_png(
            t,
            "pct_above_0_01",
            None,
            "IR predicted persistence: % pixels > 0.01 e-/s",
            "%",
            out / "persistence.png",
        )
    ]


def tables(summary: dict[str, Any]) -> dict[str, Rows]:
    """The exposures checked and those with persistence above 0.01 e-/s."""
    s = summary.get("all") or {}
    if not s:
        return {}
    row = {"exposures": s["exposures"], "with persistence above 0.01 e-/s": s["with_persistence_above_0_01"]}
    return {"Exposures with persistence": [row]}


MONITOR = Monitor(
    "ir-persistence",
    "IR persistence (16 h look-back)",
    SELECT,
    measure,
    SCHEMA,
    trend,
    plot,
    lambda t: vega_trend(t, "max", None, "IR predicted persistence", label="worst pixel (e-/s)"),
    __doc__ or "",
    measures="predicted persistence (Fermi model, 16 h look-back, max over stimuli): maps and statistics",
    claim=(
        "within 10 % of the injected persistence (worst 0.07 % over 21 and 18 exposures after a "
        "stimulus on two seeds; none predicted without one, bench/claims.py)"
    ),
    description=(
        "Predicted persistence: for each IR exposure, the afterglow expected from bright exposures taken "
        "in the 16 hours before it (a model of how trapped charge leaks out over time), in e-/s. Each "
        "point is one exposure's worst pixel; above about 0.01 e-/s persistence can bias faint sources, "
        "and the table counts those exposures. Look up an exposure's dataset to see what came before it."
    ),
    tables=tables,
    units={"max": "e-/s", "median": "e-/s", "p90": "e-/s", "p99": "e-/s"},
)
