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
        with flag_tab, st.form("flag_form", clear_on_submit=True):
            root = st.text_input("Rootname", value=st.query_params.get("rootname", ""), key="flag_root")
            kind = st.selectbox("Anomaly", list(TYPES), format_func=TYPES.get, key="flag_type")
            note = st.text_area("Comment", key="flag_note", placeholder="where in the image, how strong, …")
            if st.form_submit_button("Flag", type="primary", icon=":material/flag:"):
                anomaly.flag(scope, root.strip().lower(), kind, note)
                st.success(f"{root.strip().lower()} flagged as {TYPES[kind]}")
        with unflag_tab, st.form("unflag_form", clear_on_submit=True):
            root_u = st.text_input("Rootname", value=st.query_params.get("rootname", ""), key="unflag_root")
            kind_u = st.selectbox("Anomaly", list(TYPES), format_func=TYPES.get, key="unflag_type")
            note_u = st.text_area("Why", key="unflag_note")
            if st.form_submit_button("Unflag", icon=":material/flag_circle:"):
                anomaly.unflag(scope, root_u.strip().lower(), kind_u, note_u)
                st.success(f"{root_u.strip().lower()}: {TYPES[kind_u]} flag withdrawn")
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
        ui.linked_table(current, key="anom_current")
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
