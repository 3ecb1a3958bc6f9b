"""``monitors``' contributions to ``ql`` (:mod:`lake.plugins`): the ``monitor`` commands, the maintenance
jobs of the original system, and every calibration monitor of :mod:`monitors.registry` as a job."""

from __future__ import annotations

import sys
from functools import partial
from typing import TYPE_CHECKING, Any

import click

from lake.cli import cfg_from, handle_errors, lake_option
from lake.plugins import hookimpl

if TYPE_CHECKING:
    from lake.jobs import Job, JobContext, JobResult


@click.group("monitor")
def monitor_cmd() -> None:
    """The calibration monitors (each runs as a recorded job)."""


@monitor_cmd.command("list")
def monitor_list_cmd() -> None:
    """The monitors and what they watch."""
    from monitors.registry import all_monitors

    for m in all_monitors():
        click.echo(f"{m.name:20} {m.title}")


@monitor_cmd.command("run")
@click.argument("names", nargs=-1)
@click.option("--all", "run_all", is_flag=True, help="Run every monitor.")
@click.option("--rebuild", is_flag=True, help="Recompute from all inputs, not only new ones.")
@lake_option
@handle_errors
def monitor_run_cmd(names: tuple[str, ...], run_all: bool, rebuild: bool, lake: str | None) -> None:
    """Run monitors NAMES (or --all): measure new inputs, update the result table and plots."""
    from lake.jobs import run_job
    from monitors.registry import MODULES, get

    chosen = list(MODULES) if run_all else list(names)
    if not chosen:
        raise click.UsageError("name a monitor or use --all ('ql monitor list' lists them)")
    for name in chosen:
        get(name)  # an unknown name is refused before anything runs
    cfg = cfg_from(lake=lake)
    failed = 0
    for name in chosen:
        r = run_job(cfg["lake"], name, {"rebuild": rebuild} if rebuild else {}, cfg)
        counts = ", ".join(f"{k}={v}" for k, v in sorted(r.counts.items()))
        click.echo(f"{name} {r.run_id}: {r.status}" + (f" ({counts})" if counts else ""))
        if r.error:
            click.echo(f"  {r.error}", err=True)
        failed += r.status == "failed"
    if failed:
        sys.exit(1)


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(monitor_cmd)


def _lazy(target: str, ctx: JobContext, **kwargs: Any) -> JobResult:
    """Import the job's module only when it runs (``ql --help`` and the board need no numpy or scipy)."""
    import importlib

    module, func = target.split(":")
    result: JobResult = getattr(importlib.import_module(module), func)(ctx, **kwargs)
    return result


# name -> (module:function, default cron expression, what it finds or does)
MAINTENANCE_JOBS: dict[str, tuple[str, str, str]] = {
    "check-filesystem": (
        "monitors.jobs.filesystem:check_filesystem",
        "15 2 * * *",
        "world-accessible proprietary folders (`proprietary_mode`), misfiled files, bad names, empty, "
        "truncated or unreadable files, unexpected files",
    ),
    "check-fsys2lake": (
        "monitors.jobs.consistency:check_fsys2lake",
        "20 2 * * *",
        "files on disk the lake lacks or has stale",
    ),
    "check-lake2fsys": (
        "monitors.jobs.consistency:check_lake2fsys",
        "25 2 * * *",
        "lake rows whose file vanished or changed",
    ),
    "check-mast2lake": (
        "monitors.jobs.mast:check_mast2lake",
        "30 3 * * *",
        "the lake against a MAST listing (`mast_listing`: CSV or VOTable, path or URL)",
    ),
    "get-new-datasets": (
        "monitors.jobs.datasets:get_new_datasets",
        "0 * * * *",
        "datasets new since the last successful run",
    ),
    "get-proposal-status": (
        "monitors.jobs.datasets:get_proposal_status",
        "0 4 * * *",
        "per proposal: visits, datasets, first/last observation, expected vs present files",
    ),
    "check-duplicate-proposal-folders": (
        "monitors.jobs.filesystem:check_duplicate_proposal_folders",
        "10 4 * * 0",
        "datasets filed under two proposal folders",
    ),
    "make-cron-summary": (
        "monitors.jobs.cronsummary:make_cron_summary",
        "*/15 * * * *",
        "the status board as a table and a PNG in `<lake>/reports/`",
    ),
    "make-log-plots": (
        "monitors.jobs.logplots:make_log_plots",
        "30 4 * * *",
        "run, failure and ingest plots as PNG in `<lake>/reports/`",
    ),
}


@hookimpl
def register_jobs() -> list[Job]:
    from lake.jobs import Job
    from monitors.registry import all_monitors

    jobs = [
        Job(name, partial(_lazy, target), schedule, help)
        for name, (target, schedule, help) in MAINTENANCE_JOBS.items()
    ]
    run = "monitors.framework:run_monitor"
    jobs += [
        Job(m.name, partial(_lazy, run, name=m.name), None, m.title, monitor=True, claim=m.claim)
        for m in all_monitors()
    ]
    return jobs
