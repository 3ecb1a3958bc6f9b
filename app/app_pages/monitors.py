"""Monitors: one view per calibration monitor: trend plot with filters, latest results, input links."""

import streamlit as st
import ui

from app.data import alerts
from app.data import monitor_report as report
from lake.proprietary import now_mjd
from monitors.registry import MODULES, get

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
    if m.doc:
        st.caption(m.doc)
    for a in alerts.open_alerts(scope, subject=name).to_pylist():  # (team members only)
        said = f"**{a['severity']}** alert {a['alert_id']}, {a['rule']}: {a['subject']}: {a['detail']}"
        st.warning(
            f"{said} (opened {ui.age(a['opened_at'])}, {a['status']})", icon=":material/notifications:"
        )
    everything = report.results(scope, name)
    if not everything.num_rows:
        st.info(f"No results yet: run 'ql monitor run {name}'.")
        st.stop()
    groups = report.group_columns(everything)
    where = {}
    with st.container(horizontal=True):
        if "expstart" in everything.column_names:
            lo = float(min(everything.column("expstart").to_pylist()))
            hi = float(max(everything.column("expstart").to_pylist()))
            if hi > lo:
                rng = st.slider("EXPSTART (MJD)", lo, hi, (lo, hi), key=f"mon_{name}_mjd")
            else:
                rng = (lo, hi)
        else:
            rng = (0.0, now_mjd())
        for col, values in groups.items():
            where[col] = st.multiselect(col, values, key=f"mon_{name}_{col}")
    rep = report.report(scope, name, rng, where)
    spec = report.chart(rep)
    if spec:
        st.vega_lite_chart(spec, width="stretch")
    if rep.summary:
        with st.expander("Trend summary (all inputs)"):
            st.json(rep.summary)
    st.subheader(f"Latest results ({rep.results.num_rows:,} rows)")
    df = rep.results.to_pandas()
    ui.linked_table(df.head(500), label="input")
    if rep.pngs:
        with st.expander(f"Report plots ({len(rep.pngs)})"):
            for p in rep.pngs:
                st.image(str(p), caption=p.name, output_format="PNG")
