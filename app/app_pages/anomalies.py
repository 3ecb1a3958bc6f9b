"""Anomalies: flag and unflag datasets with WFC3 anomaly types; the full history, filtered and exported."""

import streamlit as st
import ui

from app.data import anomaly

st.title("Anomalies")
TYPES = anomaly.ANOMALY_TYPES

with ui.shown_errors():
    scope = ui.scope()
    v = scope.viewer
    if v.logged_in and v.team:
        flag_tab, unflag_tab = st.tabs(["Flag", "Unflag"])
        with flag_tab:
            ui.anomaly_form("flag")
        with unflag_tab:
            ui.anomaly_form("unflag", action="unflag")
    else:
        st.info(
            "Flagging needs a logged-in WFC3 team member. You can browse the flags below.",
            icon=":material/lock:",
        )

    with st.container(horizontal=True):
        f_root = st.text_input("Dataset", key="anom_f_root").strip().lower() or None
        f_type = st.selectbox(
            "Type",
            [None, *TYPES],
            format_func=lambda k: "all types" if k is None else TYPES[k],
            key="anom_f_type",
        )
        # who flagged is a team member's e-mail address: team members only
        f_user = st.text_input("User", key="anom_f_user").strip() or None if scope.viewer.team else None
    current = anomaly.current(scope, f_root, f_type, f_user).to_pandas()
    st.subheader(f"In force ({len(current)})")
    if len(current):
        ui.linked_table(current, key="anom_current", badges=False)
    hist = anomaly.history(scope, f_root, f_type, f_user).to_pandas()
    st.subheader(f"History ({len(hist)} events)")
    st.dataframe(hist, hide_index=True, width="stretch", key="anom_history")
    st.download_button(
        "Export history (CSV)",
        data=hist.to_csv(index=False),
        file_name="anomaly_history.csv",
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
    )
