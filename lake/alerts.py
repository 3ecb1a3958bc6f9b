"""Alerts: the rules (:mod:`lake.alertrules`) evaluated after every recorded run, kept in ``state.sqlite``.

:func:`evaluate_run` is called by :func:`lake.jobs.run_job` once a run has ended: each rule that watches
the run's monitor or job (and every ``stale_hours`` rule) is evaluated per subject (a monitor, or a group
of its results by the rule's ``by`` columns, or a job). A subject whose condition holds opens an alert
unless one is open for that rule and subject already, so a condition that stays true is told once, not
on every run; when a later evaluation finds the condition no longer holds, the alert is cleared and its
subscribers get a clear message. Acknowledging and resolving (:func:`acknowledge`, :func:`resolve`; ``ql
alerts``, the site) are events too, with who and when: ``alert_events`` is append-only and ``alerts``
derives one row per alert from it. Rules with ``digest = true`` are not sent at once: the daily job
``alert-digest`` sends each subscriber one message with them (:func:`digest_job`).

Evaluating or delivering never fails the run: a broken rules file, a rule naming a column the results
lack, or an unreachable SMTP server or webhook is written to the run's log, and every delivery attempt,
sent or not, to ``alert_deliveries``.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pyarrow as pa

from lake import state
from lake.alertrules import Rule, load_rules, rules_path
from lake.errors import ConfigError, LakeError

if TYPE_CHECKING:
    from lake.jobs import JobContext, JobResult

ROWS_KEPT = 50  # triggering rows stored with an alert (and 10 of them in its message)
COUNTED = ("success", "no-work", "failed")  # runs that say whether a job works (skipped ones do not)
OPEN = ("open", "acknowledged")


@dataclass
class RunInfo:
    """What an evaluation sees of the run that just ended."""

    job: str
    run_id: str
    status: str
    counts: Mapping[str, Any] = field(default_factory=dict)
    findings: pa.Table | None = None  # the rows the run added to its results table
    table: str | None = None  # that table
    plots: Sequence[str] = ()  # the plots the run drew (a monitor's)


@dataclass
class Finding:
    """One rule's verdict on one subject."""

    rule: Rule
    subject: str
    triggered: bool
    value: float
    detail: str
    rows: list[dict[str, Any]] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------------------ evaluation


def evaluate_run(
    lake_root: str | os.PathLike[str],
    cfg: Mapping[str, Any],
    run: RunInfo,
    log: logging.Logger | None = None,
    now: datetime | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """Evaluate the rules after ``run``; returns the alerts opened and cleared, as (event, alert)."""
    root = Path(lake_root)
    log = log or logging.getLogger("quicklake.alerts")
    rules = load_rules(rules_path(cfg, root))
    changes = []
    for rule in rules:
        try:
            found = _findings(rule, run, root, now or _now())
        except (ConfigError, LakeError, KeyError, TypeError, ValueError) as e:
            log.warning("alert rule %s: %s", rule.name, e)
            continue
        for f in found:
            change = _apply(root, cfg, f, run)
            if change is None:
                continue
            changes.append(change)
            kind, alert = change
            log.info("alert %s %s: %s: %s", alert["alert_id"], kind, f.subject, f.detail)
            if not rule.digest:
                deliver(root, cfg, rule, kind, alert, log)
    return changes


def _findings(rule: Rule, run: RunInfo, root: Path, now: datetime) -> list[Finding]:
    if rule.monitor is not None:
        return _monitor_findings(rule, run, root) if rule.monitor == run.job else []
    if rule.stale_hours is not None:  # any run may be the one that notices another job went quiet
        return _stale_findings(rule, root, now)
    if rule.job not in ("*", run.job) or run.status not in COUNTED:
        return []
    if rule.failed is not None:
        return _failed_findings(rule, run, root)
    return _job_metric_findings(rule, run, root)


def _monitor_findings(rule: Rule, run: RunInfo, root: Path) -> list[Finding]:
    """Per group of the results (the run's new rows, or all of them): the metric against the rule."""
    t: pa.Table | None = run.findings
    if rule.scope == "all" or rule.change is not None:
        if not run.table:
            return []  # the run stored nothing: nothing changed since the last evaluation
        from lake.access import read_sql

        t = read_sql(f'SELECT * FROM "{run.table}"', root)
    if t is None or not t.num_rows:
        return []
    where = f"{run.table or rule.monitor}"
    for col in (rule.metric, *rule.by, *rule.where):
        if col not in t.column_names:
            raise ConfigError(f"{col!r} is not a column of {where}; columns: {', '.join(t.column_names)}")
    rows = [r for r in t.to_pylist() if _matches(r, rule.where)]
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[c] for c in rule.by), []).append(r)
    out = []
    for key, grp in sorted(groups.items(), key=lambda kv: str(kv[0])):
        subject = " ".join([str(rule.monitor), *(f"{c}={v}" for c, v in zip(rule.by, key, strict=True))])
        f = _change(rule, subject, grp) if rule.change is not None else _level(rule, subject, grp)
        if f is not None:
            out.append(f)
    return out


def _matches(row: Mapping[str, Any], where: Mapping[str, Any]) -> bool:
    return all(row[c] in v if isinstance(v, list) else row[c] == v for c, v in where.items())


def _metric(rule: Rule, row: Mapping[str, Any]) -> float | None:
    v = row.get(str(rule.metric))
    if v is None or isinstance(v, str):
        return None
    x = float(v)
    if x != x:  # NaN: a measurement that failed says nothing about the threshold
        return None
    return abs(x) if rule.abs else x


def _aggregate(rule: Rule, rows: list[dict[str, Any]]) -> float | None:
    pairs = [(r, x) for r in rows if (x := _metric(rule, r)) is not None]
    if not pairs:
        return None
    xs = [x for _, x in pairs]
    if rule.aggregate == "last":
        return max(pairs, key=lambda p: (p[0].get(rule.time) is not None, p[0].get(rule.time) or 0))[1]
    fn: dict[str, Callable[[list[float]], float]] = {
        "max": max, "min": min, "mean": statistics.fmean, "median": statistics.median, "sum": sum,
    }  # fmt: skip
    return float(len(xs)) if rule.aggregate == "count" else float(fn[rule.aggregate](xs))


def _crosses(rule: Rule, x: float) -> bool:
    return (rule.above is not None and x > rule.above) or (rule.below is not None and x < rule.below)


def _level(rule: Rule, subject: str, rows: list[dict[str, Any]]) -> Finding | None:
    value = _aggregate(rule, rows)
    if value is None:
        return None
    hit = _crosses(rule, value)
    # the rows that crossed on their own, or (a mean, a count…) the group that did
    crossing = [r for r in rows if (x := _metric(rule, r)) is not None and _crosses(rule, x)]
    label = f"{rule.aggregate}({'|' + str(rule.metric) + '|' if rule.abs else rule.metric})"
    detail = f"{label} = {value:.6g}: " + (rule.condition().split(" ", 1)[1] if hit else "within limits")
    return Finding(rule, subject, hit, value, detail, (crossing or rows)[:ROWS_KEPT] if hit else [])


def _change(rule: Rule, subject: str, rows: list[dict[str, Any]]) -> Finding | None:
    """The aggregate over the latest ``window_days`` of ``time`` minus that over the window before."""
    timed = [r for r in rows if isinstance(r.get(rule.time), int | float)]
    if not timed:
        raise ConfigError(f"change: no numeric time column {rule.time!r} in the results (set 'time')")
    end = max(float(r[rule.time]) for r in timed)
    w = float(rule.window_days or 0)
    last = [r for r in timed if end - w < float(r[rule.time]) <= end]
    before = [r for r in timed if end - 2 * w < float(r[rule.time]) <= end - w]
    a, b = _aggregate(rule, last), _aggregate(rule, before)
    if a is None or b is None:
        return None
    delta = a - b
    hit = abs(delta) > float(rule.change or 0)
    detail = f"{rule.aggregate}({rule.metric}) went from {b:.6g} to {a:.6g} ({delta:+.6g}) over {w:g} d"
    return Finding(rule, subject, hit, delta, detail, last[:ROWS_KEPT] if hit else [])


def _counted_runs(root: Path, job: str | None = None) -> list[dict[str, Any]]:
    """Runs that finished (newest first), skipped-locked ones left out."""
    where, args = (" AND s.job = ?", (job,)) if job else ("", ())
    sql = state.RUNS_SQL + where + " AND e.status NOT IN ('skipped-locked') ORDER BY started DESC"
    return state.query(root, sql, args).to_pylist()


def _run_row(r: Mapping[str, Any]) -> dict[str, Any]:
    return {k: r[k] for k in ("run_id", "job", "started", "ended", "status", "error")}


def _failed_findings(rule: Rule, run: RunInfo, root: Path) -> list[Finding]:
    runs = [r for r in _counted_runs(root, run.job) if r["status"] in COUNTED]
    streak = 0
    for r in runs:
        if r["status"] != "failed":
            break
        streak += 1
    if not runs:
        return []
    n = int(rule.failed or 1)
    hit = streak >= n
    detail = f"the last {streak} runs failed" if streak else f"the latest run {runs[0]['status']}"
    rows = [_run_row(r) for r in runs[:streak]] if hit else []
    return [
        Finding(rule, run.job, hit, float(streak), detail + (f" (alert at {n})" if not hit else ""), rows)
    ]


def _stale_findings(rule: Rule, root: Path, now: datetime) -> list[Finding]:
    by_job: dict[str, list[dict[str, Any]]] = {}
    for r in _counted_runs(root, None if rule.job == "*" else rule.job):
        by_job.setdefault(r["job"], []).append(r)
    out = []
    for job, runs in sorted(by_job.items()):
        if runs[0]["status"] in ("skipped", "running"):
            continue  # not configured, or running now: neither says the job stopped working
        ok = [r for r in runs if r["status"] in ("success", "no-work")]
        since = datetime.fromisoformat((ok[0] if ok else runs[-1])["started"])
        hours = (now - since).total_seconds() / 3600
        hit = hours > float(rule.stale_hours or 0)
        what = "last success" if ok else "never succeeded; first run"
        detail = f"{what} {hours:.1f} h ago" + (f", over {rule.stale_hours:g} h" if hit else "")
        out.append(Finding(rule, job, hit, hours, detail, [_run_row(runs[0])] if hit else []))
    return out


def _job_metric_findings(rule: Rule, run: RunInfo, root: Path) -> list[Finding]:
    if rule.metric == "duration_s":
        r = state.query(root, state.RUNS_SQL + " AND s.run_id = ?", (run.run_id,)).to_pylist()
        if not r or not r[0]["ended"]:
            return []
        value = (
            datetime.fromisoformat(r[0]["ended"]) - datetime.fromisoformat(r[0]["started"])
        ).total_seconds()
    elif isinstance(run.counts.get(str(rule.metric)), int | float):
        value = float(run.counts[str(rule.metric)])
    else:
        return []  # the run did not count this (a failed run counts nothing)
    value = abs(value) if rule.abs else value
    hit = _crosses(rule, value)
    detail = f"{rule.metric} = {value:.6g}: " + (
        rule.condition().split(" ", 1)[1] if hit else "within limits"
    )
    row = {"run_id": run.run_id, "job": run.job, "status": run.status, **dict(run.counts)}
    return [Finding(rule, run.job, hit, value, detail, [row] if hit else [])]


# ------------------------------------------------------------------------------------------ records


def _insert(con: Any, **row: Any) -> None:
    cols = list(row)
    con.execute(
        f"INSERT INTO alert_events ({state.columns(cols)}) VALUES ({', '.join('?' * len(cols))})",
        tuple(row.values()),
    )


def _link(cfg: Mapping[str, Any], f: Finding, run: RunInfo) -> str:
    base = str(cfg.get("site_url") or "").rstrip("/")
    if not base:
        return ""
    return f"{base}/monitors?monitor={f.rule.monitor}" if f.rule.monitor else f"{base}/jobs?run={run.run_id}"


def _apply(root: Path, cfg: Mapping[str, Any], f: Finding, run: RunInfo) -> tuple[str, dict[str, Any]] | None:
    """Open or clear ``f``'s alert in one transaction (a concurrent evaluation waits), or do nothing."""
    # the check and the insert are one step: never two open alerts
    with state.connect(root) as con, con.exclusive("alert_events"):
        cur = con.execute(
            f"SELECT alert_id FROM ({state.ALERTS_SQL}) AS a WHERE rule = ? AND subject = ? "
            f"AND status IN {OPEN}",
            (f.rule.name, f.subject),
        ).fetchone()
        common = {"ts": _now().isoformat(), "rule": f.rule.name, "subject": f.subject,
                  "value": f.value, "detail": f.detail, "run_id": run.run_id}  # fmt: skip
        if f.triggered and cur is None:
            alert_id, kind = uuid.uuid4().hex[:8], "open"
            rows = json.dumps(f.rows, default=str)
            plot = next((str(p) for p in run.plots if str(p).endswith(".png")), "")
            _insert(con, alert_id=alert_id, event="open", severity=f.rule.severity, rows=rows, plot=plot,
                    link=_link(cfg, f, run), **common)  # fmt: skip
        elif not f.triggered and cur is not None:
            alert_id, kind = cur[0], "clear"
            _insert(con, alert_id=alert_id, event="clear", severity=f.rule.severity, **common)
        else:
            return None  # (the transaction ends with nothing written)
    return kind, get(root, alert_id)


def get(lake_root: str | os.PathLike[str], alert_id: str) -> dict[str, Any]:
    """One alert (a row of ``alerts``); :class:`LakeError` if there is none."""
    sql = f"SELECT * FROM ({state.ALERTS_SQL}) AS a WHERE alert_id = ?"
    t = state.query(Path(lake_root), sql, (alert_id,))
    if not t.num_rows:
        raise LakeError(f"no alert {alert_id!r}; 'ql alerts list --all' lists them")
    return t.to_pylist()[0]


def alerts(
    lake_root: str | os.PathLike[str],
    *,
    open_only: bool = True,
    rule: str | None = None,
    subject: str | None = None,
) -> pa.Table:
    """Alerts, newest first: open ones (open or acknowledged) unless ``open_only`` is false; ``subject``
    matches a subject or its first word (a monitor's alerts of every group)."""
    conds, args = [], []
    if open_only:
        conds.append(f"status IN {OPEN}")
    if rule:
        conds.append("rule = ?")
        args.append(rule)
    if subject:
        conds.append("(subject = ? OR subject LIKE ?)")
        args += [subject, subject + " %"]
    where = " WHERE " + " AND ".join(conds) if conds else ""
    sql = f"SELECT * FROM ({state.ALERTS_SQL}) AS a{where} ORDER BY opened_at DESC"
    return state.query(Path(lake_root), sql, tuple(args))


def _mark(root: str | os.PathLike[str], alert_id: str, event: str, user: str, comment: str) -> dict[str, Any]:
    a = get(root, alert_id)
    done = {"ack": ("acknowledged", "acknowledged_by", "acknowledged_at"),
            "resolve": ("resolved", "resolved_by", "resolved_at")}[event]  # fmt: skip
    if a[done[1]]:
        raise LakeError(f"alert {alert_id} was {done[0]} by {a[done[1]]} at {a[done[2]]}")
    if not user.strip():
        raise LakeError(f"alert {alert_id}: say who {done[0]} it")
    try:
        with state.connect(Path(root)) as con:
            _insert(con, alert_id=alert_id, event=event, ts=_now().isoformat(), rule=a["rule"],
                    subject=a["subject"], user=user.strip(), comment=comment.strip())  # fmt: skip
    except state.integrity_errors():  # someone else did it meanwhile
        a = get(root, alert_id)
        raise LakeError(f"alert {alert_id} was {done[0]} by {a[done[1]]} at {a[done[2]]}") from None
    return get(root, alert_id)


def acknowledge(
    lake_root: str | os.PathLike[str], alert_id: str, user: str, comment: str = ""
) -> dict[str, Any]:
    """Record that ``user`` has seen the alert (it stays open until it clears or is resolved)."""
    return _mark(lake_root, alert_id, "ack", user, comment)


def resolve(lake_root: str | os.PathLike[str], alert_id: str, user: str, comment: str = "") -> dict[str, Any]:
    """Close the alert by hand: it leaves the open list; if its condition still holds after the next run,
    a new alert opens."""
    return _mark(lake_root, alert_id, "resolve", user, comment)


# ------------------------------------------------------------------------------------------ delivery


def _redacted(url: str) -> str:
    """A webhook URL without its path and query, which are its secret (Slack's, Teams')."""
    u = urlsplit(url)
    return f"{u.scheme}://{u.netloc}/…" if u.path not in ("", "/") or u.query else url


def _record(
    root: Path, alert_id: str | None, kind: str, channel: str, target: str, error: str | None
) -> None:
    with state.connect(root) as con:
        con.execute(
            "INSERT INTO alert_deliveries (ts, alert_id, kind, channel, target, ok, error) "
            "VALUES (?,?,?,?,?,?,?)",
            (_now().isoformat(), alert_id, kind, channel, target, int(error is None), error),
        )


def message(rule: Rule, kind: str, a: Mapping[str, Any]) -> tuple[str, str]:
    """The (subject line, body) of an open or clear message."""
    if kind == "open":
        head = f"[Quicklake {a['severity']}] {rule.name}: {a['subject']}: {a['detail']}"
    else:
        head = f"[Quicklake cleared] {rule.name}: {a['subject']}: {a['cleared_detail']}"
    about = f": {rule.description}" if rule.description else ""
    cleared = f", cleared {a['cleared_at']}" if a["cleared_at"] else ""
    lines = [
        head,
        "",
        f"Rule:      {rule.name} ({rule.condition()}){about}",
        f"Alert:     {a['alert_id']}, opened {a['opened_at']}{cleared}",
        f"Run:       {a['run_id']}",
    ]
    lines += [f"Link:      {a['link']}"] * bool(a["link"]) + [f"Plot:      {a['plot']}"] * bool(a["plot"])
    if kind == "open":
        rows = json.loads(a["rows"] or "[]")
        if rows:
            lines += ["", f"Triggering rows ({len(rows)}{'+' if len(rows) >= ROWS_KEPT else ''}):"]
            lines += [json.dumps(r, default=str) for r in rows[:10]]
        lines += [
            "",
            f"Acknowledge: ql alerts ack {a['alert_id']}   Resolve: ql alerts resolve {a['alert_id']}",
        ]
    return head, "\n".join(lines) + "\n"


def deliver(
    root: Path, cfg: Mapping[str, Any], rule: Rule, kind: str, a: Mapping[str, Any], log: logging.Logger
) -> int:
    """Send an open or clear message to the rule's subscribers: one e-mail to all its addresses and one
    POST per webhook. Every attempt is recorded; failures are logged, never raised. Returns failures."""
    from lake.delivery import DeliveryError, post_webhook, send_email

    head, body = message(rule, kind, a)
    failures = 0
    if rule.emails:
        error = None
        try:
            send_email(cfg, rule.emails, head, body, attach=a["plot"] if kind == "open" else None)
        except DeliveryError as e:
            error = str(e)
        except Exception as e:  # whatever else goes wrong is recorded too, never the run's failure
            error = f"{type(e).__name__}: {e}"
        _record(root, a["alert_id"], kind, "email", ", ".join(rule.emails), error)
        failures += error is not None
    fields = {k: a[k] for k in ("alert_id", "rule", "subject", "severity", "status", "value", "link")}
    for url in rule.webhooks:
        error = None
        try:
            post_webhook(url, head + (f"\n{a['link']}" if a["link"] else ""), {**fields, "event": kind})
        except Exception as e:  # (a DeliveryError, or anything else: recorded, never raised)
            error = str(e).replace(url, _redacted(url))
        _record(root, a["alert_id"], kind, "webhook", _redacted(url), error)
        failures += error is not None
    if failures:
        log.warning("alert %s: %d of its %s messages not delivered (alert_deliveries says why)",
                    a["alert_id"], failures, kind)  # fmt: skip
    return failures


def digest_job(ctx: JobContext) -> JobResult:
    """Job ``alert-digest``: per subscriber of the ``digest`` rules, one message with their alerts opened
    or cleared since the last digest, and those still open."""
    from lake.delivery import DeliveryError, post_webhook, send_email
    from lake.jobs import JobResult

    rules = {r.name: r for r in load_rules(rules_path(ctx.cfg, ctx.lake_root)) if r.digest}
    since = (ctx.last_success() or _now() - timedelta(days=1)).isoformat()
    every = alerts(ctx.lake_root, open_only=False).to_pylist()
    mine = [a for a in every if a["rule"] in rules and (a["status"] in OPEN or max(
        a["opened_at"], a["cleared_at"] or "", a["resolved_at"] or "") >= since)]  # fmt: skip
    per_target: dict[str, list[dict[str, Any]]] = {}
    for a in mine:
        for s in rules[a["rule"]].subscribers:
            per_target.setdefault(s, []).append(a)
    failed = 0
    for target, items in sorted(per_target.items()):
        head = f"[Quicklake digest] {len(items)} alerts ({sum(a['status'] in OPEN for a in items)} open)"
        lines = [f"{a['status']:12} {a['severity']:8} {a['rule']}: {a['subject']}: {a['detail']} "
                 f"(alert {a['alert_id']}, opened {a['opened_at'][:16]})" for a in items]  # fmt: skip
        web = target.startswith(("http://", "https://"))
        error = None
        try:
            if web:
                post_webhook(target, "\n".join([head, *lines]), {"event": "digest", "alerts": len(items)})
            else:
                send_email(ctx.cfg, [target], head, "\n".join([head, "", *lines]) + "\n")
        except DeliveryError as e:
            error = str(e).replace(target, _redacted(target))
            ctx.log.warning("digest to %s: %s", _redacted(target), error)
        _record(ctx.lake_root, None, "digest", "webhook" if web else "email", _redacted(target), error)
        failed += error is not None
    counts = {"alerts": len(mine), "messages": len(per_target) - failed, "undelivered": failed}
    if failed:
        raise LakeError(f"{failed} of {len(per_target)} digests not delivered (alert_deliveries says why)")
    return JobResult(bool(per_target), counts, summary=f"{len(per_target)} digests sent")
