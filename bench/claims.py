"""The monitors' claims on two seeds: what each monitor measures on a default generated archive
(on-orbit realism, sparse pixels, 300 datasets) against the archive's truth table, next to the claim
the README makes (#17).

    python bench/claims.py [--seeds 1 2] [--datasets 300] [--keep DIR]

Per seed: generate, ingest, run every registered monitor, then score it: hot-pixel recall, false
positives and faint pixels flagged (darks monitors); gain, CTE slope, contamination slopes, bias level
and drift, bowtie amplitudes against the planted values (errors in % or DN, and in units of the error the
monitor reports); blobs recall and false fraction; snowballs found with their read; bad-actor fractions;
persistence. ``--keep DIR`` keeps (and reuses) the archives and lakes under DIR.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _util import ROOT  # noqa: F401  (puts the repository on sys.path)


def _site(base: Path, seed: int, datasets: int) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from ingest.archivegen.generate import TRUTH_FILE, generate
    from ingest.run import ingest
    from lake import settings
    from lake.jobs import monitor_names, run_job

    archive, lk = base / f"seed{seed}" / "archive", base / f"seed{seed}" / "lake"
    if not (archive / ".quicklake-archive").exists():
        generate(archive, datasets, seed=seed, pixels="sparse")
    if not (lk / "pins.json").exists():
        ingest(lk, str(archive), scheduler="synchronous")
    cfg = {**settings.load({"lake": str(lk)}), "archive": str(archive), "scheduler": "synchronous"}
    for m in monitor_names():
        run_job(lk, m, {"rebuild": "1"}, cfg=cfg)
    truth = pq.read_table(archive / TRUTH_FILE).to_pylist()
    return {"lake": lk, "archive": archive, "truth": truth, "seed": seed}


def _summary(site: dict[str, Any], name: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads((site["lake"] / "reports/monitors" / name / "trend.json").read_text())
    return out


def _rows(site: dict[str, Any], table: str) -> list[dict[str, Any]]:
    import lake

    rows: list[dict[str, Any]] = lake.read_sql(f"SELECT * FROM {table}", site["lake"]).to_pylist()
    return [r for r in rows if not r.get("refused")]


def _hot_at(h: dict[str, Any], chip: int, amp: str, a: float, b: float) -> bool:
    """Hot from time ``a`` to ``b`` (``a`` > ``b``: at some time between them)."""
    return bool(h["chip"] == chip and h["amp"] == amp and h["start_mjd"] <= a
                and (h["end_mjd"] is None or h["end_mjd"] > b))  # fmt: skip


def darks(site: dict[str, Any], table: str) -> dict[str, float]:
    """Recall of planted pixels above 54 e-/hr (as the planted CTE leaves them) through a superdark's
    window, the fraction of found pixels that are false, the fraction of pixels planted below 40 flagged,
    and the recall of pixels planted above 54 e-/hr (before CTE)."""
    from ingest.archivegen.features import Instrument

    inst = Instrument(site["seed"])
    hot = [t for t in site["truth"] if t["feature"] == "hot_pixel"]
    n = dict.fromkeys(("hits", "want", "found", "false", "low", "low_found", "true", "true_hits"), 0)
    for r in _rows(site, table):
        t0, t1 = r["expstart"], r["window_end"]
        whole = {
            (int(h["x"]), int(h["y"])): h["value"] for h in hot if _hot_at(h, r["chip"], r["amp"], t0, t1)
        }
        part = {(int(h["x"]), int(h["y"])) for h in hot if _hot_at(h, r["chip"], r["amp"], t1, t0)}
        found = {
            (int(a), int(b)) for a, b, _v in (p.split(",") for p in (r["hot_pixels"] or "").split(";") if p)
        }
        for (x, y), rate in whole.items():
            transfers = y + 1 if r["chip"] == 2 else 2051 - y
            seen = rate * (
                1 - float(inst.cte_fraction(t0, np.array([rate * 0.25]), np.array([transfers]))[0])
            )
            n["want"] += seen > 54
            n["hits"] += seen > 54 and (x, y) in found
            n["true"] += rate > 54
            n["true_hits"] += rate > 54 and (x, y) in found
            n["low"] += rate < 40
            n["low_found"] += rate < 40 and (x, y) in found
        n["found"] += len(found)
        n["false"] += len(found - part)
    return {"recall %": 100 * n["hits"] / max(n["want"], 1), "false %": 100 * n["false"] / max(n["found"], 1),
            "below 40 flagged %": 100 * n["low_found"] / max(n["low"], 1),
            "recall, planted above 54 before CTE %": 100 * n["true_hits"] / max(n["true"], 1)}  # fmt: skip


def gain(site: dict[str, Any]) -> dict[str, float]:
    from ingest.archivegen.features import Instrument

    inst = Instrument(site["seed"])
    out = {}
    for amp, s in sorted(_summary(site, "uvis-gain").items()):
        out[f"amp {amp} error %"] = 100 * (s["gain"] / inst.uvis_gain[amp] - 1)
        out[f"amp {amp} error / gain_err"] = (s["gain"] - inst.uvis_gain[amp]) / s["gain_err"]
    return out


def trends(site: dict[str, Any]) -> dict[str, float]:
    """CTE slope, contamination slopes, IR bias level and drift against the planted values."""
    from ingest.archivegen.features import Instrument

    inst = Instrument(site["seed"])
    cte = _summary(site, "uvis-eper-cte")["all"]
    out = {"eper CTE slope error %": 100 * (-cte["slope"] / inst.CTE_SLOPE - 1)}
    contam = [(f, s) for f, s in _summary(site, "uvis-contam").items() if s.get("n", 0) >= 2]
    errs = [abs(s["slope"] / inst.photometric_decline(f) - 1) for f, s in contam]
    within = [abs(s["slope"] - inst.photometric_decline(f)) <= 2 * s["slope_err"] for f, s in contam
              if s["n"] >= 4]  # fmt: skip
    out["contam worst slope error %"] = 100 * max(errs) if errs else float("nan")
    out["contam filters (>= 4 points) within 2 sigma %"] = (
        100 * float(np.mean(within)) if within else float("nan")
    )
    bias = _summary(site, "ir-bias")
    out["ir-bias worst level error DN"] = max(
        abs(s["intercept"] - inst.ir_bias(q, 54832.0)) for q, s in bias.items()
    )
    out["ir-bias worst drift error %"] = max(
        100 * abs(s["slope"] / inst.ir_bias_drift[q] - 1) for q, s in bias.items()
    )
    return out


def detections(site: dict[str, Any]) -> dict[str, float]:
    """Bowtie amplitudes, blobs, snowballs, bad actors."""
    truth = site["truth"]
    bow = {t["rootname"]: t["value"] for t in truth if t["feature"] == "bowtie"}
    amp = [
        abs(r["amplitude"] - bow[r["rootname"]])
        for r in _rows(site, "monitor_uvis_bowtie")
        if r["rootname"] in bow
    ]
    out = {"bowtie worst amplitude error %": 100 * max(amp) if amp else float("nan")}
    cat = _summary(site, "ir-blobs").get("catalogue", [])
    flats = [r["expstart"] for r in _rows(site, "monitor_ir_blobs")]
    blobs = [t for t in truth if t["feature"] == "blob" and flats and t["start_mjd"] <= max(flats)]
    near = [[np.hypot(c["x"] - t["x"], c["y"] - t["y"]) <= 2 for c in cat] for t in blobs]
    out["ir-blobs recall %"] = 100 * float(np.mean([any(n) for n in near])) if blobs else float("nan")
    false = sum(not any(near[i][j] for i in range(len(blobs))) for j in range(len(cat)))
    out["ir-blobs false %"] = 100 * false / len(cat) if cat else float("nan")
    balls = [t for t in truth if t["feature"] == "snowball"]
    found = [r for r in _rows(site, "monitor_ir_snowballs") if r["npix"]]
    match = [[f for f in found if f["rootname"] == t["rootname"] and f["read"] == t["read"]
              and np.hypot(f["x"] - t["x"], f["y"] - t["y"]) <= 2] for t in balls]  # fmt: skip
    ok = sum(bool(m) for m in match)
    energy = [abs(m[0]["total_e"] / t["value"] - 1) for m, t in zip(match, balls, strict=True) if m]
    out["snowballs worst energy error %"] = 100 * max(energy) if energy else float("nan")
    out["snowballs found with their read"] = ok
    out["snowballs planted"] = len(balls)
    out["snowballs found (all)"] = len(found)
    return out


def ir_pixels(site: dict[str, Any]) -> dict[str, float]:
    """Bad-actor fractions and predicted persistence against what the generator put in the pixels."""
    truth = site["truth"]
    bad = {t["rootname"]: json.loads(t["note"]) for t in truth if t["feature"] == "bad_actor"}
    none = dict.fromkeys(("0.5", "1", "2", "5", "10"), 0.0)
    errs = [
        abs(r["x_" + lv.replace(".", "_")] - frac)
        for r in _rows(site, "monitor_ir_bad_actors")
        for lv, frac in bad.get(r["rootname"], none).items()
    ]
    out = {"bad-actor exposures planted": float(len(bad)),
           "bad-actor worst fraction error": max(errs) if errs else float("nan")}  # fmt: skip
    per = {t["rootname"]: t["value"] for t in truth if t["feature"] == "persistence"}
    rows = {r["rootname"]: r for r in _rows(site, "monitor_ir_persistence")}
    rel = [abs(rows[k]["max"] / v - 1) for k, v in per.items() if k in rows and v > 0]
    out["persistence exposures planted"] = float(len(per))
    out["persistence exposures measured"] = float(len(rel))
    out["persistence worst max error %"] = 100 * max(rel) if rel else float("nan")
    quiet = [r["max"] for k, r in rows.items() if k not in per]
    out["persistence worst without a stimulus e-/s"] = max(quiet) if quiet else float("nan")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--datasets", type=int, default=300)
    ap.add_argument("--keep", type=Path, default=None)
    a = ap.parse_args()
    base = a.keep or Path(tempfile.mkdtemp(prefix="claims-"))
    from monitors.registry import all_monitors

    claims = {m.name: m.claim for m in all_monitors()}
    table: dict[str, list[Any]] = {}
    where = {"uvis-darks": "darks", "uvis-ctecorr-darks": "ctecorr", "uvis-gain": "gain"}
    try:
        for seed in a.seeds:
            site = _site(base, seed, a.datasets)
            scores = {
                "uvis-darks": darks(site, "monitor_uvis_darks"),
                "uvis-ctecorr-darks": darks(site, "monitor_uvis_ctecorr_darks"),
                "uvis-gain": gain(site),
                "trends": trends(site),
                "detections": detections(site),
                "ir pixels": ir_pixels(site),
            }
            for group, vals in scores.items():
                for k, v in vals.items():
                    table.setdefault(f"{where.get(group, group)}: {k}", []).append(v)
    finally:
        if a.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    print(f"\nmonitor figures on default on-orbit archives ({a.datasets} datasets), seeds {a.seeds}")
    for k, vals in table.items():
        print(f"  {k:<58} " + "  ".join(f"{v:10.3f}" for v in vals))
    print("\nclaims (README):")
    for name, claim in claims.items():
        print(f"  {name:<20} {claim}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
