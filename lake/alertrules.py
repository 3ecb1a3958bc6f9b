"""Alert rules as data: a TOML file of ``[[rule]]`` tables, validated with errors naming file, rule and field.

A rule watches either a monitor's results (``monitor = "uvis-bowtie"``: a column of the rows its runs
add, or of all its results) or the recorded runs of a job (``job = "check-mast2lake"``, ``"*"`` for every
job), and has one condition:

- ``above`` / ``below`` (either or both): the metric, aggregated per subject, crosses a threshold;
- ``change`` with ``window_days``: the aggregate of the last window differs from the window before by
  more than this (monitor rules; ``time`` names the results' time column, MJD days);
- ``stale_hours``: the job has not succeeded for this many hours (job rules);
- ``failed``: the job's last N runs all failed (job rules).

``severity`` is ``info``, ``warning`` or ``critical``; ``subscribers`` are e-mail addresses and webhook
URLs; ``digest = true`` sends the rule's alerts once a day (job ``alert-digest``) instead of at once.
``docs/alerts.md`` has an example file; :mod:`lake.alerts` evaluates the rules.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lake.errors import ConfigError

AGGREGATES = ("max", "min", "mean", "median", "sum", "count", "last")
SEVERITIES = ("info", "warning", "critical")
SCOPES = ("run", "all")
CONDITIONS = ("above", "below", "change", "stale_hours", "failed")
FIELDS = (
    "name", "description", "monitor", "job", "metric", "aggregate", "abs", "by", "where", "scope", "time",
    "window_days", *CONDITIONS, "severity", "subscribers", "digest",
)  # fmt: skip
JOB_METRICS = ("duration_s",)  # besides the keys of a run's counts
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$|^[^@\s,;]+@localhost$")


@dataclass(frozen=True)
class Rule:
    name: str
    monitor: str | None = None
    job: str | None = None
    metric: str | None = None
    aggregate: str = "max"
    abs: bool = False
    by: tuple[str, ...] = ()
    where: Mapping[str, Any] = field(default_factory=dict)
    scope: str = "run"
    time: str = "expstart"
    window_days: float | None = None
    above: float | None = None
    below: float | None = None
    change: float | None = None
    stale_hours: float | None = None
    failed: int | None = None
    severity: str = "warning"
    subscribers: tuple[str, ...] = ()
    digest: bool = False
    description: str = ""

    @property
    def emails(self) -> list[str]:
        return [s for s in self.subscribers if not s.startswith(("http://", "https://"))]

    @property
    def webhooks(self) -> list[str]:
        return [s for s in self.subscribers if s.startswith(("http://", "https://"))]

    def condition(self) -> str:
        """The condition in words (messages and listings)."""
        what = f"{self.aggregate}({'|' + str(self.metric) + '|' if self.abs else self.metric})"
        if self.failed is not None:
            return f"failed {self.failed} times in a row"
        if self.stale_hours is not None:
            return f"no success for {self.stale_hours:g} h"
        if self.change is not None:
            return f"{what} changed by more than {self.change:g} over {self.window_days:g} d"
        parts = [f"{k} {v:g}" for k, v in (("above", self.above), ("below", self.below)) if v is not None]
        return f"{what} " + " or ".join(parts)


def rules_path(cfg: Mapping[str, Any], lake_root: str | os.PathLike[str]) -> Path:
    """The rules file: the ``alert_rules`` setting, else ``<lake>/alerts.toml``."""
    return Path(cfg.get("alert_rules") or Path(lake_root) / "alerts.toml")


def load_rules(path: str | os.PathLike[str], jobs: Mapping[str, bool] | None = None) -> list[Rule]:
    """The rules of ``path`` (none if it does not exist). ``jobs`` (name -> is a monitor), if given,
    is what ``monitor`` and ``job`` must name."""
    p = Path(path)
    if not p.exists():
        return []
    return parse_rules(p.read_text(encoding="utf-8"), str(p), jobs)


def parse_rules(text: str, source: str, jobs: Mapping[str, bool] | None = None) -> list[Rule]:
    """Rules from TOML ``text``; :class:`ConfigError` names ``source``, the rule and the field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML ({e})") from None
    extra = set(data) - {"rule"}
    if extra:
        raise ConfigError(f"{source}: unknown key {sorted(extra)[0]!r}; rules are [[rule]] tables")
    tables = data.get("rule", [])
    if not isinstance(tables, list):
        raise ConfigError(f"{source}: 'rule' must be an array of tables ([[rule]])")
    rules: list[Rule] = []
    for i, t in enumerate(tables, 1):
        r = _rule(t, f"{source}: rule {t.get('name') or f'#{i}'!r}", jobs)
        if any(o.name == r.name for o in rules):
            raise ConfigError(f"{source}: rule {r.name!r}: name: two rules have this name")
        rules.append(r)
    return rules


def _rule(t: dict[str, Any], where: str, jobs: Mapping[str, bool] | None) -> Rule:
    for k in t:
        if k not in FIELDS:
            raise ConfigError(f"{where}: unknown field {k!r}; fields: {', '.join(FIELDS)}")
    name = _text(t, "name", where, required=True)
    if not NAME.match(name):
        raise ConfigError(f"{where}: name: {name!r} may hold only letters, digits, '_', '.' and '-'")
    args: dict[str, Any] = {"name": name, "description": _text(t, "description", where)}
    args |= _source(t, where, jobs)
    args |= _condition(t, where, monitor=args.get("monitor") is not None)
    for k, choices in (("aggregate", AGGREGATES), ("severity", SEVERITIES), ("scope", SCOPES)):
        if k in t:
            args[k] = _choice(t, k, choices, where)
    for k in ("abs", "digest"):
        if k in t:
            if not isinstance(t[k], bool):
                raise ConfigError(f"{where}: {k}: must be true or false, not {t[k]!r}")
            args[k] = t[k]
    if "time" in t:
        args["time"] = _text(t, "time", where)
    args["by"] = tuple(_strings(t, "by", where))
    args["subscribers"] = tuple(_subscribers(t, where))
    if "where" in t:
        if not isinstance(t["where"], dict) or not all(
            isinstance(v, str | int | float | bool | list) for v in t["where"].values()
        ):
            raise ConfigError(f"{where}: where: must be a table of column = value (or [values])")
        args["where"] = dict(t["where"])
    return Rule(**args)


def _source(t: dict[str, Any], where: str, jobs: Mapping[str, bool] | None) -> dict[str, Any]:
    """``monitor`` or ``job`` (exactly one), known if ``jobs`` is given, and the metric."""
    if ("monitor" in t) == ("job" in t):
        raise ConfigError(f"{where}: monitor/job: name exactly one of them (a monitor, or a job or '*')")
    key = "monitor" if "monitor" in t else "job"
    value = _text(t, key, where, required=True)
    if jobs is not None and not (key == "job" and value == "*"):
        known = sorted(n for n, m in jobs.items() if m == (key == "monitor"))
        if value not in known:
            raise ConfigError(f"{where}: {key}: no {key} {value!r}; {key}s: {', '.join(known)}")
    out: dict[str, Any] = {key: value}
    if "metric" in t:
        out["metric"] = _text(t, "metric", where, required=True)
    return out


def _condition(t: dict[str, Any], where: str, *, monitor: bool) -> dict[str, Any]:
    present = [c for c in CONDITIONS if c in t]
    if not present:
        raise ConfigError(f"{where}: condition: give one of {', '.join(CONDITIONS)}")
    if len(present) > 1 and set(present) != {"above", "below"}:
        raise ConfigError(f"{where}: {present[1]}: only one condition per rule (above and below may pair)")
    out: dict[str, Any] = {c: _threshold(c, t[c], where) for c in present}
    cond = present[0]
    if cond in ("stale_hours", "failed") and monitor:
        raise ConfigError(f"{where}: {cond}: is a job condition; a monitor rule uses above, below or change")
    if cond == "change":
        if not monitor:
            raise ConfigError(f"{where}: change: is a monitor condition (over its results' time column)")
        if not _number(t.get("window_days")) or t["window_days"] <= 0:
            raise ConfigError(f"{where}: window_days: a change rule needs window_days > 0")
        out["window_days"] = float(t["window_days"])
    elif "window_days" in t:
        raise ConfigError(f"{where}: window_days: only a change rule has a window")
    needs_metric = cond in ("above", "below", "change")
    if needs_metric and "metric" not in t:
        raise ConfigError(f"{where}: metric: a {cond} rule needs a metric (a result column or run count)")
    if not needs_metric and "metric" in t:
        raise ConfigError(f"{where}: metric: a {cond} rule watches runs, not a metric; remove it")
    return out


def _threshold(c: str, v: Any, where: str) -> float | int:
    if c == "failed":
        ok, kind = isinstance(v, int) and not isinstance(v, bool) and v >= 1, "a whole number >= 1"
    elif c in ("stale_hours", "change"):
        ok, kind = _number(v) and v > 0, "a number > 0"
    else:
        ok, kind = _number(v), "a number"
    if not ok:
        raise ConfigError(f"{where}: {c}: must be {kind}, not {v!r}")
    return int(v) if c == "failed" else float(v)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _text(t: dict[str, Any], key: str, where: str, *, required: bool = False) -> str:
    v = t.get(key, "")
    if not isinstance(v, str) or (required and not v.strip()):
        raise ConfigError(f"{where}: {key}: must be a non-empty string, not {v!r}")
    return v.strip()


def _strings(t: dict[str, Any], key: str, where: str) -> list[str]:
    v = t.get(key, [])
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(s, str) and s.strip() for s in v):
        raise ConfigError(f"{where}: {key}: must be a list of strings, not {v!r}")
    return [s.strip() for s in v]


def _choice(t: dict[str, Any], key: str, choices: Collection[str], where: str) -> str:
    v = t[key]
    if v not in choices:
        raise ConfigError(f"{where}: {key}: {v!r} is not one of {', '.join(choices)}")
    return str(v)


def _subscribers(t: dict[str, Any], where: str) -> list[str]:
    out = _strings(t, "subscribers", where)
    for s in out:
        if s.startswith(("http://", "https://")):
            continue
        if not EMAIL.match(s):
            raise ConfigError(
                f"{where}: subscribers: {s!r} is neither an e-mail address nor an http(s) webhook URL"
            )
    return out
