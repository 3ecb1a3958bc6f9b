"""Alerts on the site: the open ones, acknowledging and resolving them, and editing the rules file.

All of it is for team members: an alert's rows name datasets of every proposal, and the rules name the
subscribers' addresses. Acknowledgements and resolutions are recorded with the viewer's address
(:func:`lake.alerts.acknowledge`); the rules are validated (:func:`lake.alertrules.parse_rules`) before
the file is replaced, atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lake import alerts
from lake.alertrules import Rule, parse_rules, rules_path
from lake.errors import AccessDenied

if TYPE_CHECKING:
    from app.data.scope import Scope

COLUMNS = ["alert_id", "severity", "status", "rule", "subject", "detail", "opened_at", "acknowledged_by"]


def _team(scope: Scope, what: str) -> None:
    v = scope.viewer
    if not (v.logged_in and v.team):
        raise AccessDenied(f"{what}: only logged-in WFC3 team members may; log in first")


def open_alerts(scope: Scope, subject: str | None = None) -> pa.Table:
    """Open and acknowledged alerts, newest first (for team members; empty for anyone else); ``subject``:
    a monitor's or job's name."""
    if not scope.viewer.team:
        return pa.table({c: pa.array([], pa.string()) for c in COLUMNS})
    return alerts.alerts(scope.lake_root, subject=subject)


def every_alert(scope: Scope) -> pa.Table:
    """Every alert, newest first (team members only)."""
    _team(scope, "the alert history")
    return alerts.alerts(scope.lake_root, open_only=False)


def act(scope: Scope, alert_id: str, action: str, comment: str = "") -> dict[str, Any]:
    """``action`` ('acknowledge' or 'resolve') alert ``alert_id`` as the viewer."""
    _team(scope, f"{action} alert {alert_id}")
    fn = {"acknowledge": alerts.acknowledge, "resolve": alerts.resolve}[action]
    return fn(scope.lake_root, alert_id, scope.viewer.label, comment)


def rules_file(scope: Scope, cfg: dict[str, Any]) -> tuple[Path, str]:
    """The rules file's path and text ('' if it does not exist yet)."""
    _team(scope, "the alert rules")
    p = rules_path(cfg, scope.lake_root)
    return p, p.read_text(encoding="utf-8") if p.exists() else ""


def rules_problem(scope: Scope, cfg: dict[str, Any]) -> str:
    """What is wrong with the rules file in force ('' if nothing): runs only log it, so the page says it."""
    from lake.errors import ConfigError
    from lake.jobs import registry

    path, text = rules_file(scope, cfg)
    try:
        parse_rules(text, str(path), {n: j.monitor for n, j in registry().items()})
    except ConfigError as e:
        return str(e)
    return ""


def save_rules(scope: Scope, cfg: dict[str, Any], text: str) -> list[Rule]:
    """Validate ``text`` and make it the rules file; nothing is written if a rule is wrong."""
    from lake.jobs import registry

    _team(scope, "editing the alert rules")
    p = rules_path(cfg, scope.lake_root)
    rules = parse_rules(text, str(p), {n: j.monitor for n, j in registry().items()})
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, p)
    return rules
