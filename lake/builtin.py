"""``lake``'s own contributions through the plugin hooks (:mod:`lake.plugins`): the ``maintain-lake`` and
``alert-digest`` jobs, the ``ql alerts`` commands and ``ql relocate``.

The core commands (``sql``, ``header``, ``tables``, ``jobs``, ...) are defined on the ``ql`` group itself
in :mod:`lake.cli`.
"""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING, Any

import click

from lake.cli import cfg_from, handle_errors, lake_option
from lake.plugins import hookimpl

if TYPE_CHECKING:
    from lake.jobs import Job, JobContext, JobResult


def _maintain_lake(ctx: JobContext) -> JobResult:
    from lake.maintenance import maintain_lake_job

    return maintain_lake_job(ctx)


def _alert_digest(ctx: JobContext) -> JobResult:
    from lake.alerts import digest_job

    return digest_job(ctx)


@hookimpl
def register_jobs() -> list[Job]:
    from lake.jobs import Job

    return [
        Job(
            "maintain-lake",
            _maintain_lake,
            "50 4 * * *",
            "`ql maintain`, daily: per table, data files before and after compaction, snapshots expired, "
            "files and bytes deleted",
        ),
        Job(
            "alert-digest",
            _alert_digest,
            "0 7 * * *",
            "daily: one message per subscriber of the alert rules with `digest = true` (docs/alerts.md)",
            findings=False,
        ),
    ]


# ------------------------------------------------------------------------------------------ ql alerts


@click.group("alerts", invoke_without_command=True)
@lake_option
@click.pass_context
@handle_errors
def alerts_cmd(ctx: click.Context, lake: str | None) -> None:
    """Monitor and job alerts: the open ones (see docs/alerts.md for the rules file)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(alerts_list_cmd, lake=lake)


def _line(a: dict[str, Any]) -> str:
    who = f" (ack {a['acknowledged_by']})" if a["acknowledged_by"] else ""
    return (f"{a['alert_id']}  {a['opened_at'][:16]}  {a['severity']:8} {a['status'] + who:24} "
            f"{a['rule']}: {a['subject']}: {a['detail']}")  # fmt: skip


@alerts_cmd.command("list")
@lake_option
@click.option("--all", "every", is_flag=True, help="Cleared and resolved alerts too.")
@click.option("--rule", default=None, help="Only this rule's alerts.")
@handle_errors
def alerts_list_cmd(lake: str | None, every: bool = False, rule: str | None = None) -> None:
    """Alerts, newest first: open and acknowledged ones (--all: every alert)."""
    from lake.alerts import alerts

    rows = alerts(cfg_from(lake=lake)["lake"], open_only=not every, rule=rule).to_pylist()
    for a in rows:
        click.echo(_line(a))
    if not rows:
        click.echo("no open alerts" if not every else "no alerts")


def _mark(what: str, alert_id: str, lake: str | None, by: str | None, comment: str) -> None:
    from lake import alerts

    fn = alerts.acknowledge if what == "ack" else alerts.resolve
    a = fn(cfg_from(lake=lake)["lake"], alert_id, by or getpass.getuser(), comment)
    click.echo(_line(a))


@alerts_cmd.command("ack")
@click.argument("alert_id")
@lake_option
@click.option("--by", default=None, help="Who (default: your login name).")
@click.option("--comment", "-m", default="", help="What is being done about it.")
@handle_errors
def alerts_ack_cmd(alert_id: str, lake: str | None, by: str | None, comment: str) -> None:
    """Acknowledge ALERT_ID: seen, being looked at (it stays open until it clears or is resolved)."""
    _mark("ack", alert_id, lake, by, comment)


@alerts_cmd.command("resolve")
@click.argument("alert_id")
@lake_option
@click.option("--by", default=None, help="Who (default: your login name).")
@click.option("--comment", "-m", default="", help="What was done.")
@handle_errors
def alerts_resolve_cmd(alert_id: str, lake: str | None, by: str | None, comment: str) -> None:
    """Resolve ALERT_ID by hand (if its condition still holds, the next run opens a new alert)."""
    _mark("resolve", alert_id, lake, by, comment)


@alerts_cmd.command("check")
@lake_option
@handle_errors
def alerts_check_cmd(lake: str | None) -> None:
    """Validate the rules file (setting alert_rules) and list its rules."""
    from lake.alertrules import load_rules, rules_path
    from lake.jobs import registry

    cfg = cfg_from(lake=lake)
    path = rules_path(cfg, cfg["lake"])
    if not path.exists():
        raise click.ClickException(f"no rules file {path}; set alert_rules or write {path} (docs/alerts.md)")
    rules = load_rules(path, {n: j.monitor for n, j in registry().items()})
    for r in rules:
        to = ", ".join(r.subscribers) or "nobody (shown on the site only)"
        click.echo(f"{r.name}: {r.monitor or r.job}: {r.condition()} [{r.severity}"
                   f"{', daily digest' if r.digest else ''}] -> {to}")  # fmt: skip
    click.echo(f"{path}: {len(rules)} rules, valid")


# ------------------------------------------------------------------------------------------ ql relocate


@click.command("relocate")
@lake_option
@click.option(
    "--from",
    "old",
    default=None,
    help="Where the lake was (default: the folder its pins.json was published in).",
)
@handle_errors
def relocate_cmd(lake: str | None, old: str | None) -> None:
    """Make a moved or copied lake read its own files: rewrite the locations Iceberg, catalog.duckdb and
    pins.json hold (new metadata versions, published atomically). Move the archive by changing the
    archive setting; its paths in the lake are relative to it."""
    import sys

    from tqdm import tqdm

    from lake.relocate import relocate

    cfg = cfg_from(lake=lake)
    bar = tqdm(unit="tables", desc="relocate", disable=not (cfg["progress"] and sys.stderr.isatty()))

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        done = relocate(cfg["lake"], old, cfg["catalog_uri"], progress=progress)
    finally:
        bar.close()
    click.echo(done.line())


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(alerts_cmd)
    cli.add_command(relocate_cmd)
