"""Reference tables generated from the code: the README's commands, jobs and monitors.

Each table sits in ``README.md`` between ``<!-- ql:NAME -->`` and ``<!-- /ql:NAME -->``;
``ql reference --write README.md`` regenerates them, and a test fails when the README and the
registries disagree (datasette's way: the docs are made from the code and checked against it).
The sources are ``ql``'s command group (plugins' commands included), :func:`lake.jobs.registry` (the
maintenance jobs and the calibration monitors, whose ``measures`` and ``claim`` the monitors declare).
``docs/settings.md`` is generated the same way from :data:`lake.settings.REGISTRY` (``ql settings
--markdown``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import click


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _usage(name: str, cmd: click.Command) -> str:
    """``ql NAME ARG [--option VALUE] [--flag]``, as a person types it."""
    ctx = click.Context(cmd, info_name=f"ql {name}")
    pieces = [f"ql {name}"]
    for p in cmd.get_params(ctx):
        if isinstance(p, click.Argument):
            pieces.append(p.make_metavar(ctx))  # click brackets an optional one itself
        elif isinstance(p, click.Option) and "--help" not in p.opts:
            flag = max(p.opts, key=len)
            value = p.make_metavar(ctx) if isinstance(p.type, click.Choice) else (p.name or "").upper()
            pieces.append(f"[{flag}]" if p.is_flag else f"[{flag} {value}]")
    return " ".join(pieces)


def commands_table() -> str:
    from lake.cli import main

    ctx = click.Context(main, info_name="ql")
    lines = ["| command | what it does |", "|---|---|"]
    for name in main.list_commands(ctx):
        cmd = main.get_command(ctx, name)
        assert cmd is not None
        subs = cmd.commands if isinstance(cmd, click.Group) else {}
        if not subs or (isinstance(cmd, click.Group) and cmd.invoke_without_command):
            lines.append(f"| `{_cell(_usage(name, cmd))}` | {_cell(cmd.get_short_help_str(200))} |")
        for sub_name, sub in sorted(subs.items()):
            usage = _cell(_usage(f"{name} {sub_name}", sub))
            lines.append(f"| `{usage}` | {_cell(sub.get_short_help_str(200))} |")
    return "\n".join(lines)


def jobs_table() -> str:
    from lake.jobs import findings_table, registry

    lines = ["| job | schedule (UTC) | finds / does | findings table |", "|---|---|---|---|"]
    for name, job in registry().items():
        if not job.monitor:
            when = job.schedule or "on demand"
            table = f"`{findings_table(name)}`" if job.findings else "none"
            lines.append(f"| `{name}` | `{when}` | {_cell(job.help)} | {table} |")
    return "\n".join(lines)


def monitors_table() -> str:
    from lake.jobs import registry

    lines = ["| monitor | measures | checked against the truth table |", "|---|---|---|"]
    for name, job in registry().items():
        if job.monitor:
            lines.append(f"| `{name}` | {_cell(job.help)} | {_cell(job.claim)} |")
    return "\n".join(lines)


TABLES: dict[str, Callable[[], str]] = {
    "commands": commands_table,
    "jobs": jobs_table,
    "monitors": monitors_table,
}


def render(text: str) -> str:
    """``text`` with every generated table replaced by its current contents."""
    for name, make in TABLES.items():
        pattern = re.compile(rf"(<!-- ql:{name} -->\n).*?(\n<!-- /ql:{name} -->)", re.S)
        if not pattern.search(text):
            raise click.ClickException(f"no <!-- ql:{name} --> ... <!-- /ql:{name} --> block to fill")
        table = make()
        text = pattern.sub(lambda m: m.group(1) + table + m.group(2), text)  # noqa: B023 (used at once)
    return text


def write(path: str | Path) -> bool:
    """Regenerate the tables in ``path``; True if anything changed."""
    p = Path(path)
    old = p.read_text()
    new = render(old)
    if new != old:
        p.write_text(new)
    return new != old
