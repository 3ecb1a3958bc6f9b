"""make-cron-summary: the job status board as a table and a PNG (``<lake>/reports/cron_summary.png``)."""

from __future__ import annotations

import pyarrow as pa

from lake.jobs import JobContext, JobResult, board

COLOURS = {
    "green": "#2e7d32",
    "lightgreen": "#a5d6a7",
    "red": "#c62828",
    "yellow": "#f9a825",
    "grey": "#bdbdbd",
}


def plot_board(rows: list[dict[str, object]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(rows) + 0.8))
    for i, r in enumerate(rows):
        y = len(rows) - 1 - i
        ax.barh(y, 1, color=COLOURS[str(r["colour"])], edgecolor="white")
        age = f"{r['age_days']:.1f} d" if r["age_days"] is not None else "never"
        ax.text(0.02, y, f"{r['job']}", va="center", fontsize=9)
        ax.text(0.98, y, f"{r['latest_status']} · last success {age}", va="center", ha="right", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_axis_off()
    ax.set_title("Quicklake jobs: green = succeeded today, light green = earlier, red = failed", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def make_cron_summary(ctx: JobContext) -> JobResult:
    rows = board(ctx.lake_root)
    out = ctx.lake_root / "reports"
    out.mkdir(exist_ok=True)
    png = out / "cron_summary.png"
    plot_board(rows, str(png))
    ctx.log.info("wrote %s", png)
    table = pa.table(
        {
            "job": pa.array([r["job"] for r in rows], pa.string()),
            "latest_status": pa.array([r["latest_status"] for r in rows], pa.string()),
            "last_success": pa.array([r["last_success"] for r in rows], pa.string()),
            "age_days": pa.array([r["age_days"] for r in rows], pa.float64()),
            "colour": pa.array([r["colour"] for r in rows], pa.string()),
        }
    )
    return JobResult(True, {"jobs": len(rows)}, table, f"board written to {png}")
