"""Alerts (team only): open alerts to acknowledge or resolve, every alert, and the rules file to edit."""

import streamlit as st
import ui

from app.data import alerts

st.title("Alerts")

with ui.shown_errors():
    scope = ui.scope()
    if not ui.team_only(scope.viewer, "Alerts"):
        st.stop()
    current = alerts.open_alerts(scope).to_pylist()
    st.subheader(f"Open ({len(current)})")
    if current:
        st.dataframe([{c: a[c] for c in alerts.COLUMNS} for a in current], hide_index=True, width="stretch")
        with st.form("alert_form", clear_on_submit=True):
            labels = {a["alert_id"]: f"{a['alert_id']} · {a['rule']}: {a['subject']}" for a in current}
            chosen = st.selectbox("Alert", list(labels), format_func=labels.get, key="alert_id")
            action = st.radio("Action", ["acknowledge", "resolve"], horizontal=True, key="alert_action")
            note = st.text_input("Comment", key="alert_note", placeholder="what is being done, or was done")
            if st.form_submit_button("Record", type="primary", icon=":material/done:") and chosen:
                a = alerts.act(scope, chosen, action, note)
                st.success(f"alert {chosen} {a['status']} by {scope.viewer.label}")
    else:
        st.caption("No open alerts.")
    st.subheader("History")
    st.dataframe(alerts.every_alert(scope).to_pandas(), hide_index=True, width="stretch", key="alert_history")

    st.subheader("Rules")
    path, text = alerts.rules_file(scope, ui.cfg())
    st.caption(f"{path} · fields and an example: docs/alerts.md")
    problem = alerts.rules_problem(scope, ui.cfg())
    if problem:
        st.error(
            f"The rules in force are not valid, so no rule is evaluated: {problem}", icon=":material/error:"
        )
    edited = st.text_area("Rules (TOML)", text, height=320, key="alert_rules")
    if st.button("Save rules", icon=":material/save:", key="alert_rules_save"):
        with ui.shown_errors():
            saved = alerts.save_rules(scope, ui.cfg(), edited)
            st.success(f"{len(saved)} rules saved to {path.name}")
