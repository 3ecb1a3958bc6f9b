"""Monitors: one view per calibration monitor for analysts: what it measures and how to read it, the
trend plots first (dates on the axis, units, error bars), the trend as a table with units and errors,
then the results."""

from datetime import date
from typing import Any

import pyarrow.compute as pc
import streamlit as st
import ui

from app.data import alerts
from app.data import monitor_report as report
from app.data.scope import Scope
from monitors.registry import MODULES, get

MISSION_START = date(2009, 1, 1)


def date_range(name: str, everything: Any) -> tuple[float, float]:
    """The dates picked (EXPSTART, whole days) as an MJD range; the whole mission when nothing is."""
    if "expstart" not in everything.column_names:
        return (0.0, 1e6)
    span = pc.min_max(everything.column("expstart")).as_py()
    lo, hi = report.date_of(span["min"]), report.date_of(span["max"])
    picked = st.date_input(
        "Dates (EXPSTART, UTC)",
        (lo, hi),
        min_value=min(MISSION_START, lo),
        max_value=max(date.today(), hi),
        key=f"mon_{name}_dates",
        width=ui.DATE_RANGE_WIDTH,
        **ui.BOUND,
    )
    start = picked[0] if len(picked) > 0 else lo
    end = picked[1] if len(picked) > 1 else hi
    return report.mjd_of(start), report.mjd_of(end) + 1.0


def trend_plots(scope: Scope, rep: report.Report, key: tuple[Any, ...]) -> None:
    """The trend chart (of at most :data:`report.CHART_POINTS` points unless all are asked for), then
    the last run's PNGs."""
    n = rep.results.num_rows
    every = n > report.CHART_POINTS and st.toggle(
        f"Draw all {n:,} results", key=f"mon_{rep.monitor.name}_all", **ui.BOUND
    )
    limit = None if every or n <= report.CHART_POINTS else report.CHART_POINTS
    spec = scope.memo(("monitor_chart", *key, limit), lambda: report.chart(rep, limit))
    if spec:
        if limit:
            shown = len(spec.get("data", {}).get("values", ())) or limit
            st.caption(
                f"One result in {-(-n // limit)} of each series drawn ({shown:,} of {n:,}, over the whole "
                "time range); the table below has them all."
            )
        st.vega_lite_chart(ui.canvas(spec), width="stretch")
    if rep.pngs:  # (drawn from every input by the last run: team members only)
        st.caption("The last run's plots, from all inputs (not filtered); dates as decimal years.")
        cols = st.columns(2)
        for i, p in enumerate(rep.pngs):
            cols[i % 2].image(str(p), caption=p.stem.replace("_", " "), output_format="PNG")


def trend_tables(rep: report.Report) -> None:
    if not rep.tables:
        return
    st.subheader("Trend of the results shown")
    fitted = any(k.startswith("change per year") for rows in rep.tables.values() for r in rows for k in r)
    st.caption(
        "1-sigma errors"
        + ("; a line fitted against time gives the level in 2009 and the change per year." if fitted else ".")
    )
    for title, rows in rep.tables.items():
        st.markdown(f"**{title}**")
        if rows:
            st.dataframe(rows, hide_index=True, width="stretch")
        else:
            st.caption("none")


def results_table(rep: report.Report) -> None:
    """The newest :data:`report.TABLE_ROWS` results, more or all when asked (in the URL)."""
    n = rep.results.num_rows
    st.subheader(f"Results ({n:,} rows, newest first)")
    few = report.TABLE_ROWS
    sizes = {str(k): k for k in (few, 10 * few) if k < n} | {"all": n}
    limit = min(few, n)
    if n > few:
        kept = st.segmented_control(
            "Rows shown (newest first)",  # (the options as they are: the URL holds the one shown)
            list(sizes),
            default=str(few),
            key=f"mon_{rep.monitor.name}_rows",
            **ui.BOUND,
        )
        limit = sizes.get(kept or "", few)
    df = report.shown(rep.results.slice(0, limit), first=rep.monitor.schema.names).to_pandas()
    config: dict[str, Any] = {}
    units = rep.monitor.units
    for c in df.columns:
        label = f"{c} ({units[c]})" if c in units else c
        if str(df[c].dtype).startswith("datetime"):
            config[c] = st.column_config.DatetimeColumn(label, format="YYYY-MM-DD HH:mm")
        elif str(df[c].dtype).startswith("float"):
            config[c] = st.column_config.NumberColumn(label, format="%.6g")
        elif c in units:
            config[c] = st.column_config.Column(label)
    ui.linked_table(df, label="input", column_config=config)


st.title("Monitors")

with ui.shown_errors():
    scope = ui.scope()
    names = list(MODULES)
    want = st.query_params.get("monitor", names[0])
    name = st.segmented_control("Monitor", names, default=want if want in names else names[0], key="mon_name")
    name = name or names[0]
    st.query_params["monitor"] = name
    m = get(name)
    st.subheader(m.title)
    if m.description:
        st.markdown(m.description)
    for a in alerts.open_alerts(scope, subject=name).to_pylist():  # (team members only)
        said = f"**{a['severity']}** alert {a['alert_id']}, {a['rule']}: {a['subject']}: {a['detail']}"
        st.warning(
            f"{said} (opened {ui.age(a['opened_at'])}, {a['status']})", icon=":material/notifications:"
        )
    everything = report.results(scope, name)
    if not everything.num_rows:
        st.info(f"No results yet: run 'ql monitor run {name}'.")
        st.stop()
    where = {}
    with st.container(horizontal=True):
        rng = date_range(name, everything)
        for col, values in report.group_columns(everything).items():
            where[col] = st.multiselect(report.label(col), values, key=f"mon_{name}_{col}", **ui.BOUND)
    rep = report.report(scope, name, rng, where)
    trend_plots(scope, rep, (name, rng, report.choice_key(where)))
    trend_tables(rep)
    results_table(rep)
