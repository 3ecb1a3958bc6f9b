"""Calibration monitors: plain functions registered in one place, run incrementally on Dask.

A :class:`Monitor` declares its input selection (SQL over the lake), a per-file measurement that runs
in Dask workers and returns a few result rows, the result schema, a trend summary computed from all
results, and plots drawn from the results (PNG for reports, a Vega-Lite spec for the site). Results
accumulate in the lake table ``monitor_<name>``; a run measures only inputs that table does not have
yet (``rebuild`` recomputes all) and is recorded by the job layer like any other job. A monitor that
measures inputs in groups (superdark windows, flat pairs) groups all its inputs at every run and
measures the groups that are new or changed, replacing the results of a group that grew: a rebuild and
any sequence of incremental runs over the same inputs give the same rows (tests/test_monitor_chunking.py).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lake.access import read_sql, tables
from lake.jobs import JobContext, JobResult

SMALL = 64
REFUSED = "refused"  # result column: why an input was refused (null on measured rows)


class Refused(Exception):
    """An input a monitor must not measure (a cut-out, a subarray, a converted copy...). The message
    names the HDU, keyword and value and says what to do; the run records it in the result table's
    ``refused`` column, with no numbers, and does not measure the file again (``rebuild`` does)."""


@dataclass(frozen=True)
class Monitor:
    name: str
    title: str
    select: str  # SQL over the lake: must return path and rootname, plus what measure() needs
    measure: Callable[[str, dict[str, Any]], list[dict[str, Any]]]  # (absolute path, input row) -> rows
    schema: pa.Schema  # result rows; path is added
    trend: Callable[[pa.Table], dict[str, Any]]  # summary of all results (fits, levels)
    plot: Callable[[pa.Table, dict[str, Any], Path], list[Path]]
    vega: Callable[[pa.Table], dict[str, Any]] | None = None
    doc: str = ""
    # Inputs measured together (superdarks): the new selected rows -> the groups ready to measure, each
    # a list of rows. measure() then gets the first row with ``members`` (all rows, with abs_path), and
    # the result schema must have ``inputs``: the members' paths, so that they count as done.
    # (the configuration is passed too: settings such as the anneal list shape the groups)
    group: Callable[[list[dict[str, Any]], dict[str, Any]], list[list[dict[str, Any]]]] | None = None
    # the README's table of monitors is generated from these (lake.reference)
    measures: str = ""  # what it measures, in a sentence or two
    claim: str = ""  # what it is checked against in the generated archive's truth table
    # for the site's analysts: what it measures and how to read its plot, in plain words (no method notes)
    description: str = ""
    # the trend() summary as titled tables people read (units in column names, values rounded to their
    # errors; monitors/calibration/summary.py)
    tables: Callable[[dict[str, Any]], dict[str, list[dict[str, Any]]]] | None = None
    units: dict[str, str] = field(default_factory=dict)  # result column -> unit, for the site's tables


def table_name(name: str) -> str:
    return "monitor_" + name.replace("-", "_")


def done_paths(old: pa.Table | None) -> set[str]:
    """Paths already measured: each result's path and, for grouped monitors, every path in ``inputs``."""
    if old is None:
        return set()
    done = set(old.column("path").to_pylist())
    if "inputs" in old.column_names:
        done.update(p for v in old.column("inputs").to_pylist() if v for p in v.split(";"))
    return done


def _items(m: Monitor, rows: list[dict[str, Any]], cfg: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """What measure() is called on: one row per input, or one per ready group; and inputs left waiting."""
    if m.group is None:
        return rows, 0
    groups = m.group(rows, cfg)
    items = [{**g[0], "members": g, "inputs": ";".join(r["path"] for r in g)} for g in groups]
    return items, len(rows) - sum(len(g) for g in groups)


def regroup(
    m: Monitor, rows: list[dict[str, Any]], old: pa.Table | None, cfg: dict[str, Any]
) -> tuple[list[dict[str, Any]], int, list[str]]:
    """A grouped monitor's groups over *all* its selected inputs, so that the results do not depend on
    how runs were chunked: (the groups to measure, inputs waiting, paths of old results they replace).

    A ready group whose inputs are those of an old result is not measured again; one that is new or has
    changed (a superdark window that grew with frames that came later) is measured, and the old results
    that share an input with it are replaced (a window that grows is measured again, not split)."""
    items, waiting = _items(m, rows, cfg)
    old_sets: list[tuple[str, frozenset[str]]] = []
    if old is not None:
        for path, inputs in zip(
            old.column("path").to_pylist(), old.column("inputs").to_pylist(), strict=True
        ):
            old_sets.append((path, frozenset(inputs.split(";")) if inputs else frozenset([path])))
    known = {s for _p, s in old_sets}
    todo = [i for i in items if frozenset(i["inputs"].split(";")) not in known]
    touched = {p for i in todo for p in i["inputs"].split(";")}
    return todo, waiting, sorted({p for p, s in old_sets if s & touched})


def _safe(
    measure: Callable[[str, dict[str, Any]], list[dict[str, Any]]], item: dict[str, Any]
) -> list[dict[str, Any]]:
    """One file's rows; a file that cannot be measured becomes one error row, not a failed run."""
    extra = {"path": item["path"]} | ({"inputs": item["inputs"]} if "inputs" in item else {})
    try:
        return [{**r, **extra} for r in measure(item["abs_path"], item)]
    except Refused as e:  # a row that says why, and counts the input as done
        keep: dict[str, Any] = {k: item[k] for k in ("rootname", "expstart") if k in item}
        return [{**keep, **extra, REFUSED: f"{item['path']}: {e}"}]
    except Exception as e:  # one bad file never sinks the batch
        return [{"__error__": f"{item['path']}: {type(e).__name__}: {e}", "__path__": item["path"]}]


def _chunk(
    key: str, fn: Callable[[dict[str, Any]], list[dict[str, Any]]], i: int, chunk: list[dict[str, Any]]
) -> tuple[int, list[dict[str, Any]]]:
    """One task: ``fn`` over a chunk of items, tagged with the chunk's index (``key`` names the task)."""
    return i, [row for item in chunk for row in fn(item)]


def dask_map(
    fn: Callable[[dict[str, Any]], list[dict[str, Any]]], items: list[dict[str, Any]], cfg: dict[str, Any]
) -> list[dict[str, Any]]:
    """``fn`` over ``items`` on the configured scheduler (:class:`lake.executor.Executor`, the one Dask
    runner, shared with ingest and the generator), in coarse chunks; rows flattened, in input order."""
    import uuid

    from lake.executor import Executor

    workers = int(cfg.get("workers") or os.cpu_count() or 1)
    scheduler = cfg.get("scheduler", "local")
    # a local cluster takes seconds to start: below SMALL files the work is done in this process
    if scheduler == "local" and len(items) < SMALL:
        scheduler = "synchronous"
    n = max(1, min(len(items), workers * 4))
    bounds = [len(items) * k // n for k in range(n + 1)]
    run = uuid.uuid4().hex[:12]  # task keys unique per run: a long-lived scheduler keeps old results
    tasks = [(f"{run}-{k}", fn, k, items[bounds[k] : bounds[k + 1]]) for k in range(n)]
    done: dict[int, list[dict[str, Any]]] = {}
    with Executor(scheduler, workers) as ex:
        for group in ex.map(_chunk, tasks, name="monitor"):
            done.update(group)
    return [row for k in sorted(done) for row in done[k]]


def _todo(
    m: Monitor, sel: list[dict[str, Any]], old: pa.Table | None, ctx: JobContext
) -> tuple[list[dict[str, Any]], int, list[str]]:
    """What this run measures: inputs not measured yet, or (grouped monitors) the groups that are new or
    changed over all inputs (:func:`regroup`); inputs waiting; old results' paths to replace."""
    archive = Path(ctx.cfg["archive"])
    reports = ctx.lake_root / "reports" / "monitors" / m.name  # where a measurement may write products
    lake = str(ctx.lake_root)
    rows = [{**r, "abs_path": str(archive / r["path"]), "_reports": str(reports), "_lake": lake} for r in sel]
    if m.group is not None:
        return regroup(m, rows, old, ctx.cfg)
    done = done_paths(old)
    return [r for r in rows if r["path"] not in done], 0, []


def _to_figures(value: Any, figures: int = 4) -> Any:
    """``value`` (a summary: dicts, lists, numbers) with its floats to ``figures`` significant figures."""
    if isinstance(value, dict):
        return {k: _to_figures(v, figures) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_figures(v, figures) for v in value]
    if isinstance(value, float) and math.isfinite(value) and value:
        return float(f"{value:.{figures}g}")
    return value


def run_monitor(ctx: JobContext, name: str) -> JobResult:
    from functools import partial

    from monitors.registry import get

    m = get(name)
    rebuild = str(ctx.params.get("rebuild", "")).lower() in {"1", "true", "yes"}
    sel = read_sql(m.select, ctx.lake_root).to_pylist()
    table = table_name(name)
    schema = m.schema.append(pa.field("path", pa.string())).append(pa.field(REFUSED, pa.string()))
    old = None
    if not rebuild and table in tables(ctx.lake_root):
        # any failure to read the results must stop the run: treating it as "nothing measured yet"
        # would measure every input again and append duplicates
        old = read_sql(f"SELECT * EXCLUDE (run_id, found_at) FROM {table}", ctx.lake_root)
    if old is not None and set(schema.names) - set(old.column_names):
        ctx.log.info("%s: the result table lacks %s: recomputing all", name,
                     sorted(set(schema.names) - set(old.column_names)))  # fmt: skip
        old, rebuild = None, True
    todo, waiting, superseded = _todo(m, sel, old, ctx)
    ctx.log.info("%s: %d inputs selected, %d to measure", name, len(sel),
                 sum(len(i.get("members") or [i]) for i in todo))  # fmt: skip
    if superseded:
        ctx.log.info("%s: %d results measured again with inputs that came later", name, len(superseded))
    if waiting:
        ctx.log.info("%s: %d inputs wait for the rest of their group", name, waiting)
    if not todo:
        why = f"{waiting} inputs wait for their group" if waiting else "no new inputs"
        return JobResult(False, {"inputs": len(sel), "measured": 0, "waiting": waiting}, None, why)
    rows = dask_map(partial(_safe, m.measure), todo, ctx.cfg)
    errors = [r["__error__"] for r in rows if "__error__" in r]
    for e in errors:
        ctx.log.warning("%s", e)
    good = [r for r in rows if "__error__" not in r]
    new = pa.table({f.name: pa.array([r.get(f.name) for r in good], f.type) for f in schema}, schema=schema)
    if old is not None and superseded:
        old = old.filter(pc.invert(pc.is_in(old.column("path"), pa.array(superseded, pa.string()))))
    everything = pa.concat_tables([old.select(schema.names).cast(schema), new]) if old is not None else new
    refused = new.filter(pc.is_valid(new.column(REFUSED))).column(REFUSED).to_pylist()
    for why in refused:
        ctx.log.warning("refused %s", why)
    # trends and plots see measurements only
    everything = everything.filter(pc.is_null(everything.column(REFUSED))).drop_columns([REFUSED])
    summary = m.trend(everything) if everything.num_rows else {}
    out = ctx.lake_root / "reports" / "monitors" / name
    out.mkdir(parents=True, exist_ok=True)
    pngs = m.plot(everything, summary, out) if everything.num_rows else []
    (out / "trend.json").write_text(json.dumps(summary, indent=1, default=float))
    if m.vega is not None and everything.num_rows:
        (out / "plot.vl.json").write_text(json.dumps(m.vega(everything), default=str))
    # (for people reading the log: 4 significant figures, one entry per line; trend.json keeps them all)
    ctx.log.info("summary:\n%s", json.dumps(_to_figures(summary), indent=1, default=float))
    ctx.log.info("plots: %s", ", ".join(str(p) for p in pngs) or "none")
    failed = {r["__path__"] for r in rows if "__error__" in r} | {r["path"] for r in good if r.get(REFUSED)}
    counts = {
        "inputs": len(sel),
        # files, also for grouped monitors (whose groups are counted apart)
        "measured": sum(len(i.get("members") or [i]) for i in todo if i["path"] not in failed),
        "errors": len(errors),
        "rows": new.num_rows - len(refused),
        "refused": len(refused),
        "waiting": waiting,
    }
    if m.group is not None:
        counts["groups"] = len(todo)
    if errors and len(errors) == len(todo):
        # a run that measured nothing because every input failed is a failure, not a quiet success
        raise RuntimeError(f"all {len(errors)} inputs failed; the first: {errors[0]}")
    what = "groups" if m.group is not None else "files"
    said = f"{len(todo) - len(refused) - len(errors)} {what} measured"
    said += (f", {len(refused)} refused" if refused else "") + (f", {len(errors)} failed" if errors else "")
    return JobResult(True, counts, new, said, table=table, replace=rebuild, plots=[str(p) for p in pngs],
                     supersede=superseded)  # fmt: skip
