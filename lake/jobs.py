"""Recorded job runs: the registry of jobs, the runner, per-job locks, logs, and the cron schedule.

Every run (from ``ql run``, ``ql run-due`` under cron, or a notebook calling :func:`run_job`) appends a
``start`` and an ``end`` event to ``<lake>/state.sqlite`` and writes a log to
``<lake>/logs/<job>/<run-id>.log``. Status is ``success`` (work done), ``no-work`` (ran, nothing to do:
jwql could not tell these apart), ``failed`` (the job raised, or its process died), ``skipped`` (a setting
the job needs is not set: :class:`lake.errors.NotConfigured`) or ``skipped-locked`` (another run of the
job held its lock). A job's findings go to the lake table :func:`findings_table` names
(``findings_check_filesystem`` for ``check-filesystem``).

One run per job at a time: ``<lake>/locks/<job>.lock`` is held with ``flock`` (a PostgreSQL advisory lock
when the state is in PostgreSQL: :func:`lake.state.lock`), released when the holder dies, so a stale
lock recovers itself; the dead run's ``start`` event without an ``end``
is closed as ``failed`` by the next run of that job.

Jobs live in other packages (``monitors``, ``ingest``) and in :mod:`lake.maintenance`; each package
contributes its own through the ``register_jobs`` hook (:mod:`lake.plugins`), so this package imports
none of them, and :func:`registry` is the one list of jobs and monitors.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa

from lake import state
from lake.errors import ConfigError, LakeError, LakeLocked, NotConfigured

STATUSES = ("success", "no-work", "failed", "skipped", "skipped-locked", "running")
LOG_KEEP_DAYS = 30
LAKE_WAIT = 600.0  # seconds a job waits for the lake's writer lock (an ingest may hold it) to store findings


@dataclass
class JobContext:
    """What a job gets: the lake, the settings, its parameters, a logger and its run id."""

    lake_root: Path
    cfg: dict[str, Any]
    params: dict[str, Any]
    log: logging.Logger
    run_id: str
    job: str
    log_path: Path

    def last_success(self) -> datetime | None:
        """When the previous successful run of this job started (for "new since last run")."""
        t = state.query(
            self.lake_root,
            state.RUNS_SQL
            + " AND s.job = ? AND e.status = 'success' AND s.run_id <> ? ORDER BY started DESC LIMIT 1",
            (self.job, self.run_id),
        )
        return datetime.fromisoformat(t.column("started")[0].as_py()) if t.num_rows else None


@dataclass
class JobResult:
    """What a job returns: did it do anything, how much, and what it found (a table, may be empty)."""

    worked: bool
    counts: dict[str, int] = field(default_factory=dict)
    findings: pa.Table | None = None
    summary: str = ""
    table: str | None = None  # where the findings go (default findings_<job>)
    replace: bool = False  # replace the table's rows instead of appending (a monitor's --rebuild)
    plots: list[str] = field(default_factory=list)  # plots drawn (a monitor's: alerts name the first)
    # rows of the table whose ``path`` is one of these are replaced by the findings (in one commit): a
    # monitor's group of inputs that grew and was measured again
    supersede: list[str] = field(default_factory=list)


@dataclass
class Run:
    run_id: str
    job: str
    status: str
    counts: dict[str, int]
    error: str | None
    log_path: Path
    findings: int = 0


@dataclass(frozen=True)
class Job:
    """A recorded job, as a plugin contributes it (:mod:`lake.plugins`).

    ``run`` is the job itself; ``schedule`` its default cron expression (UTC; ``None``: run on demand,
    ``ql run JOB``); ``monitor`` marks the calibration monitors, which ``ql monitor`` runs and the board
    lists after the maintenance jobs.
    """

    name: str
    run: Callable[[JobContext], JobResult]
    schedule: str | None = None
    help: str = ""
    monitor: bool = False
    claim: str = ""  # a monitor's: what it is checked against in a generated archive (README)
    findings: bool = True  # it stores findings (in the table findings_table() names)


@cache
def registry() -> dict[str, Job]:
    """Every job the plugins contribute, by name: the maintenance jobs by name, then the monitors in the
    order their registry gives. The one list the runner, the schedule and the board read."""
    from lake.plugins import hook

    found: dict[str, Job] = {}
    for contributed in reversed(hook().register_jobs()):  # pluggy calls the last registered first
        for j in contributed:
            if j.name in found:
                raise ConfigError(f"two plugins contribute a job named {j.name!r}")
            found[j.name] = j
    jobs = sorted((j for j in found.values() if not j.monitor), key=lambda j: j.name)
    return {j.name: j for j in [*jobs, *(j for j in found.values() if j.monitor)]}


def monitor_names() -> list[str]:
    """The calibration monitors, in their registry's order."""
    return [n for n, j in registry().items() if j.monitor]


def job_function(name: str) -> Callable[[JobContext], JobResult]:
    jobs = registry()
    if name not in jobs:
        plain = ", ".join(n for n, j in jobs.items() if not j.monitor)
        raise ConfigError(f"no job {name!r}; jobs: {plain}; monitors: {', '.join(monitor_names())}")
    return jobs[name].run


def default_schedule() -> dict[str, str]:
    """Cron expressions (UTC) of the jobs that have one."""
    return {n: j.schedule for n, j in registry().items() if j.schedule}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _event(lake_root: Path, **row: Any) -> None:
    cols = (
        "run_id",
        "job",
        "event",
        "ts",
        "host",
        "user",
        "pid",
        "params",
        "status",
        "counts",
        "error",
        "log_path",
    )
    with state.connect(lake_root) as con:
        con.execute(
            f"INSERT INTO job_events ({state.columns(cols)}) VALUES ({', '.join('?' * len(cols))})",
            tuple(row.get(c) for c in cols),
        )


@contextmanager
def _job_lock(lake_root: Path, job: str) -> Iterator[bool]:
    """True if this process now holds the job's lock (released if the process dies)."""
    with state.lock(lake_root, f"job:{job}", lake_root / "locks" / f"{job}.lock") as got:
        yield got.held


def _close_stale_runs(lake_root: Path, job: str) -> int:
    """Runs of ``job`` with a start but no end, whose process is gone (we hold the lock): mark failed."""
    open_runs = state.query(
        lake_root, state.RUNS_SQL + " AND s.job = ? AND e.run_id IS NULL", (job,)
    ).to_pylist()
    for r in open_runs:
        _event(
            lake_root,
            run_id=r["run_id"],
            job=job,
            event="end",
            ts=_now(),
            status="failed",
            error=f"the run's process ({r['host']} pid {r['pid']}) died before it finished; recovered",
            log_path=r["log_path"],
        )
    return len(open_runs)


def _logger(run_id: str, path: Path) -> tuple[logging.Logger, logging.Handler]:
    path.parent.mkdir(parents=True, exist_ok=True)
    log = logging.getLogger(f"quicklake.job.{run_id}")
    log.setLevel(logging.INFO)
    log.propagate = False
    h = logging.FileHandler(path, encoding="utf-8")
    h.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%Y-%m-%dT%H:%M:%S"))
    log.addHandler(h)
    return log, h


def prune_logs(lake_root: Path, keep_days: int = LOG_KEEP_DAYS) -> int:
    """Delete job logs older than ``keep_days`` days; returns how many."""
    cutoff = time.time() - keep_days * 86400
    n = 0
    for p in (lake_root / "logs").glob("*/*.log"):
        if p.stat().st_mtime < cutoff:
            p.unlink()
            n += 1
    return n


def run_job(
    lake_root: str | os.PathLike[str],
    job: str,
    params: dict[str, Any] | None = None,
    cfg: dict[str, Any] | None = None,
    *,
    work: Callable[[JobContext], JobResult] | None = None,
) -> Run:
    """Run ``job`` now, recorded. Never raises for a failing job (its run says ``failed``); raises
    :class:`ConfigError` for an unknown job. ``work`` runs instead of the job's registered function under
    the same record and lock (``ql ingest`` is a ``run-ingest`` run that shows its progress)."""
    from lake import settings

    root = Path(lake_root).resolve()
    fn = work or job_function(job)
    cfg = cfg or settings.load({"lake": str(root)})
    params = params or {}
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    log_path = root / "logs" / job / f"{run_id}.log"
    common = {
        "run_id": run_id,
        "job": job,
        "host": socket.gethostname(),
        "user": getpass.getuser(),
        "pid": os.getpid(),
        "params": json.dumps(params, default=str, sort_keys=True),
        "log_path": log_path.relative_to(root).as_posix(),  # relative: the lake may move (lake.relocate)
    }
    with _job_lock(root, job) as mine:
        if not mine:
            _event(root, **common, event="start", ts=_now(), status="running")
            _event(
                root,
                **common,
                event="end",
                ts=_now(),
                status="skipped-locked",
                error="another run of this job holds its lock",
            )
            return Run(run_id, job, "skipped-locked", {}, "another run holds the lock", log_path)
        _close_stale_runs(root, job)
        _event(root, **common, event="start", ts=_now(), status="running")
        log, handler = _logger(run_id, log_path)
        log.info("job %s run %s on %s as %s, params %s", job, run_id, common["host"], common["user"], params)
        ctx = JobContext(root, cfg, params, log, run_id, job, log_path)
        outcome = _Outcome()
        try:
            outcome = _execute(ctx, fn)
        finally:
            _event(
                root,
                **{**common, "pid": os.getpid()},
                event="end",
                ts=_now(),
                status=outcome.status,
                counts=json.dumps(outcome.counts, sort_keys=True),
                error=outcome.error,
            )
            _evaluate_alerts(ctx, outcome)
            log.removeHandler(handler)
            handler.close()
        prune_logs(root)
        return Run(run_id, job, outcome.status, outcome.counts, outcome.error, log_path, outcome.found)


@dataclass
class _Outcome:
    status: str = "failed"
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    found: int = 0
    findings: pa.Table | None = None
    table: str | None = None
    plots: list[str] = field(default_factory=list)


def _evaluate_alerts(ctx: JobContext, out: _Outcome) -> None:
    """The alert rules after the run has ended (:mod:`lake.alerts`); whatever goes wrong there is logged,
    never the run's failure."""
    try:
        from lake.alerts import RunInfo, evaluate_run

        run = RunInfo(ctx.job, ctx.run_id, out.status, out.counts, out.findings, out.table, out.plots)
        evaluate_run(ctx.lake_root, ctx.cfg, run, ctx.log)
    except Exception as e:  # a broken rules file or a bug must not turn a good run into a failed one
        ctx.log.warning("alerts not evaluated: %s: %s", type(e).__name__, e)


def _execute(ctx: JobContext, fn: Callable[[JobContext], JobResult]) -> _Outcome:
    """Run the job's function and store its findings; what the ``end`` event records."""
    out = _Outcome()
    try:
        res = fn(ctx)
        out.counts = dict(res.counts)
        out.plots = [str(p) for p in res.plots]
        if res.findings is not None:
            out.found = res.findings.num_rows
            table = res.table or findings_table(ctx.job)
            _store_findings(ctx.lake_root, ctx.cfg, table, ctx.run_id, res.findings, res.replace,
                            res.supersede)  # fmt: skip
            out.counts.setdefault("findings", out.found)
            out.findings, out.table = res.findings, table
        out.status = "success" if res.worked else "no-work"
        ctx.log.info("%s: %s %s", out.status, res.summary or "done", json.dumps(out.counts, sort_keys=True))
    except NotConfigured as e:  # nothing to do until a setting is set: said, not a failure
        out.status, out.error = "skipped", str(e)
        ctx.log.info("skipped: %s", e)
    except LakeLocked as e:  # another writer (manual ingest, maintenance) holds the lake: not a failure
        out.status, out.error = "skipped-locked", str(e)
        ctx.log.info("skipped: %s", e)
    except Exception as e:  # a job's failure is recorded, not raised: cron needs the record
        out.error = f"{type(e).__name__}: {e}"
        ctx.log.exception("failed: %s", out.error)
    return out


def findings_table(job: str) -> str:
    return "findings_" + job.replace("-", "_")


def _store_findings(
    root: Path,
    cfg: dict[str, Any],
    name: str,
    run_id: str,
    findings: pa.Table,
    replace: bool = False,
    supersede: list[str] | None = None,
) -> None:
    """Append the run's findings (tagged with run id and time) to the table ``name`` and publish; rows
    whose ``path`` is in ``supersede`` go in the same commit."""
    from lake.tables import Lake

    n = findings.num_rows
    # a column of nulls has no type Iceberg accepts; strings are what such a column would hold
    findings = findings.cast(
        pa.schema(
            [pa.field(f.name, pa.string() if pa.types.is_null(f.type) else f.type) for f in findings.schema]
        )
    )
    tagged = findings.add_column(0, "run_id", pa.array([run_id] * n, pa.string()))
    tagged = tagged.add_column(1, "found_at", pa.array([datetime.now(UTC)] * n, pa.timestamp("us", tz="UTC")))
    lake = Lake(root, cfg.get("catalog_uri", ""))
    with lake.transaction(wait=LAKE_WAIT) as pins:  # published at the end
        lake.ensure_table(pins, name, tagged.schema)
        lake.evolve(pins, name, tagged.schema)
        if replace:
            lake.overwrite(pins, name, tagged)
        elif supersede:
            lake.replace_rows(pins, name, tagged, supersede)
        else:
            lake.append(pins, name, tagged)


# ------------------------------------------------------------------------------------------ reading


def runs(lake_root: str | os.PathLike[str], job: str | None = None, limit: int = 200) -> pa.Table:
    """Recorded runs, newest first."""
    where = " AND s.job = ?" if job else ""
    args: tuple[object, ...] = (job,) if job else ()
    return state.query(
        Path(lake_root), state.RUNS_SQL + where + f" ORDER BY started DESC LIMIT {int(limit)}", args
    )


def board(lake_root: str | os.PathLike[str], now: datetime | None = None) -> list[dict[str, Any]]:
    """The status board: per job its latest run, last success and a colour by age.

    green: succeeded (or had no work) within a day; lightgreen: last success older than a day;
    red: the latest run failed; grey: never run, or skipped because a setting it needs is not set;
    yellow: running now.
    """
    now = now or datetime.now(UTC)
    all_runs = runs(lake_root, limit=100000).to_pylist()
    out = []
    for job in registry():
        mine = [r for r in all_runs if r["job"] == job and r["status"] != "skipped-locked"]
        latest = mine[0] if mine else None
        ok = [r for r in mine if r["status"] in {"success", "no-work"}]
        last_ok = datetime.fromisoformat(ok[0]["started"]) if ok else None
        if latest is None or latest["status"] == "skipped":
            colour = "grey"
        elif latest["status"] == "running":
            colour = "yellow"
        elif latest["status"] == "failed":
            colour = "red"
        elif last_ok is not None and now - last_ok <= timedelta(days=1):
            colour = "green"
        else:
            colour = "lightgreen"
        out.append(
            {
                "job": job,
                "latest_status": latest["status"] if latest else "never",
                "latest_start": latest["started"] if latest else None,
                "last_success": last_ok.isoformat() if last_ok else None,
                "age_days": round((now - last_ok).total_seconds() / 86400, 2) if last_ok else None,
                "colour": colour,
                "run_id": latest["run_id"] if latest else None,
            }
        )
    return out


def log_of(lake_root: str | os.PathLike[str], run_id: str) -> Path:
    t = state.query(Path(lake_root), "SELECT log_path FROM job_events WHERE run_id = ? LIMIT 1", (run_id,))
    if not t.num_rows:
        raise LakeError(f"no job run {run_id!r}; 'ql jobs' lists runs")
    return Path(lake_root) / t.column("log_path")[0].as_py()  # relative to the lake; older runs absolute


def history(lake_root: str | os.PathLike[str], job: str | None = None, limit: int = 5000) -> pa.Table:
    """Recorded runs, newest first, with ``duration_s`` (None while running)."""
    t = runs(lake_root, job, limit)
    dur = []
    for a, b in zip(t.column("started").to_pylist(), t.column("ended").to_pylist(), strict=True):
        dur.append(
            (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds() if a and b else None
        )
    return t.append_column("duration_s", pa.array(dur, pa.float64()))


def log_text(
    lake_root: str | os.PathLike[str], run_id: str, tail: int | None = 200, search: str = ""
) -> tuple[str, int]:
    """The last ``tail`` lines of a run's log (lines containing ``search`` only, if given) and the total
    number of lines. The path is checked to lie inside ``<lake>/logs``."""
    path = log_of(lake_root, run_id).resolve()
    logs = (Path(lake_root) / "logs").resolve()
    if not path.is_relative_to(logs):
        raise LakeError(f"log of {run_id} is outside {logs}; refusing to read {path}")
    if not path.exists():
        raise LakeError(f"log of {run_id} ({path}) is gone (logs are kept {LOG_KEEP_DAYS} days)")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if search:
        needle = search.lower()
        lines = [ln for ln in lines if needle in ln.lower()]
    n = len(lines)
    return "\n".join(lines[-tail:] if tail else lines), n


# ------------------------------------------------------------------------------------------ schedule


def schedule(path: str | os.PathLike[str] | None) -> dict[str, str]:
    """Cron expressions per job: the defaults, overridden by a TOML file of ``job = "m h dom mon dow"``."""
    import tomllib

    from cronsim import CronSim, CronSimError

    sched = default_schedule()
    known = registry()
    if path and Path(path).exists():
        data = tomllib.loads(Path(path).read_text())
        data = data.get("schedule", data)
        for job, expr in data.items():
            if job not in known:
                raise ConfigError(f"{path}: no job {job!r}; jobs: {', '.join(known)}")
            sched[job] = str(expr)
    for job, expr in sched.items():
        try:
            CronSim(expr, datetime.now(UTC))
        except CronSimError as e:
            raise ConfigError(f"schedule of {job}: {expr!r} is not a cron expression ({e})") from None
    return sched


def due(lake_root: str | os.PathLike[str], sched: dict[str, str], now: datetime | None = None) -> list[str]:
    """Jobs never run, or with a scheduled time between their last run and ``now``."""
    from cronsim import CronSim

    now = now or datetime.now(UTC)
    last = {r["job"]: r for r in reversed(runs(lake_root, limit=100000).to_pylist())}
    out = []
    for job, expr in sched.items():
        r = last.get(job)
        if r is None:  # never run: due now
            out.append(job)
            continue
        since = datetime.fromisoformat(r["started"])
        if next(CronSim(expr, since)) <= now:
            out.append(job)
    return out
