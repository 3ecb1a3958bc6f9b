"""make-log-plots: runs, durations, failures and files ingested per day (``<lake>/reports/job_*.png``)."""

from __future__ import annotations

import json
from datetime import datetime

import pyarrow as pa

from lake.jobs import JobContext, JobResult, runs


def daily(ctx: JobContext) -> pa.Table:
    """Per day and job: runs, failures, total and longest duration (s), files ingested."""
    acc: dict[tuple[str, str], dict[str, float]] = {}
    for r in runs(ctx.lake_root, limit=1_000_000).to_pylist():
        if r["ended"] is None:
            continue
        day = r["started"][:10]
        a = acc.setdefault(
            (day, r["job"]), {"runs": 0, "failed": 0, "seconds": 0.0, "longest": 0.0, "files": 0}
        )
        dt = (datetime.fromisoformat(r["ended"]) - datetime.fromisoformat(r["started"])).total_seconds()
        a["runs"] += 1
        a["failed"] += r["status"] == "failed"
        a["seconds"] += dt
        a["longest"] = max(a["longest"], dt)
        a["files"] += int(json.loads(r["counts"] or "{}").get("ingested", 0))
    keys = sorted(acc)
    return pa.table(
        {
            "day": [k[0] for k in keys],
            "job": [k[1] for k in keys],
            "runs": pa.array([int(acc[k]["runs"]) for k in keys], pa.int64()),
            "failed": pa.array([int(acc[k]["failed"]) for k in keys], pa.int64()),
            "seconds": pa.array([acc[k]["seconds"] for k in keys], pa.float64()),
            "longest_seconds": pa.array([acc[k]["longest"] for k in keys], pa.float64()),
            "files_ingested": pa.array([int(acc[k]["files"]) for k in keys], pa.int64()),
        }
    )


def plot_daily(t: pa.Table, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    days = sorted(set(t.column("day").to_pylist()))
    x = np.array([datetime.fromisoformat(d) for d in days])
    rows = t.to_pylist()

    def per_day(field: str, job: str | None = None) -> list[float]:
        return [
            sum(r[field] for r in rows if r["day"] == d and (job is None or r["job"] == job)) for d in days
        ]

    fig, axes = plt.subplots(4, 1, figsize=(8, 9), sharex=True)
    for job in sorted(set(t.column("job").to_pylist())):
        axes[0].plot(x, per_day("runs", job), marker="o", ms=3, label=job)
        axes[1].plot(x, per_day("seconds", job), marker="o", ms=3)
    axes[0].set_ylabel("runs")
    axes[0].legend(fontsize=6, ncol=3)
    axes[1].set_ylabel("run time (s)")
    axes[2].bar(x, per_day("failed"), color="#c62828")
    axes[2].set_ylabel("failures")
    axes[3].bar(x, per_day("files_ingested"), color="#1565c0")
    axes[3].set_ylabel("files ingested")
    fig.suptitle("Quicklake job runs per day")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def make_log_plots(ctx: JobContext) -> JobResult:
    t = daily(ctx)
    if t.num_rows == 0:
        return JobResult(False, {"days": 0}, None, "no finished runs to plot")
    out = ctx.lake_root / "reports"
    out.mkdir(exist_ok=True)
    png = out / "job_runs.png"
    plot_daily(t, str(png))
    ctx.log.info("wrote %s", png)
    return JobResult(True, {"days": len(set(t.column("day").to_pylist()))}, t, f"plots written to {png}")
