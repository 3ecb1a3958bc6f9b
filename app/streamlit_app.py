"""The Quicklake site: entry point (page config, login box, navigation). Run with ``ql app``."""

import streamlit as st
import ui

st.set_page_config(page_title="Quicklake · WFC3", page_icon=":material/satellite_alt:", layout="wide")

PAGES = {
    "Lake": [
        st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("app_pages/browse.py", title="Browse", icon=":material/folder_open:"),
        st.Page("app_pages/dataset.py", title="Dataset", icon=":material/image:"),
        st.Page("app_pages/search.py", title="Search", icon=":material/travel_explore:"),
        st.Page("app_pages/query.py", title="Query", icon=":material/search:"),
        st.Page("app_pages/keywords.py", title="Keywords", icon=":material/menu_book:"),
    ],
    "Quality": [
        st.Page("app_pages/anomalies.py", title="Anomalies", icon=":material/flag:"),
        st.Page("app_pages/monitors.py", title="Monitors", icon=":material/monitoring:"),
    ],
    "Operations": [
        st.Page("app_pages/jobs.py", title="Jobs", icon=":material/schedule:"),
        st.Page("app_pages/alerts.py", title="Alerts", icon=":material/notifications:"),
    ],
}

with st.sidebar:
    v = ui.viewer()
    if v.logged_in:
        st.markdown(f"Signed in as **{v.label}**")
        st.caption("WFC3 team: all data" if v.team else "Public data only (not a team member)")
        if ui.auth_configured():
            st.button("Log out", on_click=st.logout, icon=":material/logout:")
    else:
        st.caption("Guest: public data only")
        if ui.auth_configured():
            st.button("Log in", on_click=st.login, icon=":material/login:", type="primary")

st.navigation(PAGES).run()
