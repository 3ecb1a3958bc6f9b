"""Jobs: runs with status colours by age, durations and failures over time, and a log viewer."""

import pandas as pd
import streamlit as st
import ui

from lake import jobs

st.title("Jobs")

with ui.shown_errors():
    scope = ui.scope()
    if not ui.team_only(scope.viewer, "Job runs and logs"):
        st.stop()
    root = scope.lake_root
    board = pd.DataFrame(sorted(jobs.board(root), key=ui.board_order))  # (what needs attention first)
    for column in ("latest_start", "last_success"):  # (as the latest status says)
        if column in board:
            board[column] = [ui.utc_time(v) if isinstance(v, str) else "never" for v in board[column]]
    st.dataframe(
        ui.job_board_style(board),
        hide_index=True,
        width="stretch",
        column_order=["job", "latest_status", "latest_start", "last_success", "age_days"],
        column_config={
            "job": "Job",
            "latest_status": "Latest run",
            "latest_start": "Started (UTC)",
            "last_success": "Last success (UTC)",
            "age_days": st.column_config.NumberColumn("Days since success", format="%.1f"),
        },
    )
    st.caption(ui.BOARD_LEGEND)
    hist = jobs.history(root).to_pandas()
    if not len(hist):
        st.info("No job has run yet: 'ql run JOB' or 'ql run-due' from cron.")
        st.stop()
    hist["started"] = pd.to_datetime(hist["started"], utc=True)
    with st.container(horizontal=True):
        job = st.selectbox(
            "Job",
            [None, *sorted(hist["job"].unique())],
            key="jobs_job",
            format_func=lambda j: "all jobs" if j is None else j,
        )
        status = st.multiselect("Status", sorted(hist["status"].unique()), key="jobs_status")
    sel = hist[(hist["job"] == job) if job else hist["job"].notna()]
    if status:
        sel = sel[sel["status"].isin(status)]
    left, right = st.columns(2)
    with left:
        st.caption("Duration of each run")
        # (Vega-Lite specs as they are: Altair validated each chart against the schema on every load)
        st.vega_lite_chart(
            sel.dropna(subset=["duration_s"])[["job", "status", "started", "duration_s", "run_id"]],
            {
                "mark": {"type": "circle", "size": 40},
                "encoding": {
                    "x": {
                        "field": "started",
                        "type": "temporal",
                        "title": "started (UTC)",
                        "scale": {"type": "utc"},  # (else the viewer's zone, on a 12-hour clock)
                        "axis": {"format": "%b %d %H:%M"},
                    },
                    "y": {"field": "duration_s", "type": "quantitative", "title": "seconds"},
                    # a colour per job (a dozen: 10 colours repeated), every job in the legend below
                    "color": {
                        "field": "job",
                        "type": "nominal",
                        "scale": {"scheme": "tableau20"},
                        "legend": {"orient": "bottom", "columns": 3, "symbolLimit": 0},
                    },
                    "tooltip": ui.tooltip(
                        ("job", "nominal"),
                        ("status", "nominal"),
                        ("started", "temporal"),
                        ("duration_s", "quantitative"),
                        ("run_id", "nominal"),
                    ),
                },
            },
            width="stretch",
        )
    with right:
        st.caption("Runs per day by status")
        daily = (
            sel.assign(day=sel["started"].dt.floor("D"))
            .groupby(["day", "status"])
            .size()
            .reset_index(name="runs")
        )
        st.vega_lite_chart(
            daily,
            {
                "mark": "bar",
                "encoding": {
                    "x": {
                        "field": "day",
                        "type": "temporal",
                        "title": "day (UTC)",
                        "scale": {"type": "utc"},
                        "axis": {"format": "%b %d"},
                    },
                    "y": {"field": "runs", "type": "quantitative"},
                    "color": {
                        "field": "status",
                        "type": "nominal",
                        # every status a run can have (a skipped run left out was drawn in no colour)
                        "scale": {"domain": list(ui.RUN_COLOURS), "range": list(ui.RUN_COLOURS.values())},
                    },
                },
            },
            width="stretch",
        )
    shown = sel.head(500)
    st.dataframe(
        shown[["run_id", "job", "status", "started", "duration_s", "user", "host", "error"]].fillna(
            {"error": ""}
        ),
        hide_index=True,
        width="stretch",
        key="jobs_runs",
        column_config={
            "run_id": "Run",
            "job": "Job",
            "status": "Status",
            "started": st.column_config.DatetimeColumn("Started (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "duration_s": st.column_config.NumberColumn("Duration (s)", format="%.1f"),
            "user": "User",
            "host": "Host",
            "error": "Error",
        },
    )
    label = {
        r: f"{j} · {t:%Y-%m-%d %H:%M} UTC · {r}"
        for r, j, t in zip(shown["run_id"], shown["job"], shown["started"], strict=True)
    }
    st.subheader("Log")
    with st.container(horizontal=True):
        run_id = st.selectbox(
            "Run",
            shown["run_id"].tolist(),
            format_func=lambda r: label.get(r, r),
            key="jobs_run",
            index=0
            if st.query_params.get("run") is None
            else max(
                0,
                shown["run_id"].tolist().index(st.query_params["run"])
                if st.query_params["run"] in shown["run_id"].tolist()
                else 0,
            ),
        )
        tail = st.number_input("Last lines", 10, 100000, 200, step=100, key="jobs_tail")
        needle = st.text_input("Search", key="jobs_search")
    text, n = jobs.log_text(root, run_id, int(tail), needle)
    st.caption(f"{n:,} lines" + (f" containing {needle!r}" if needle else ""))
    ui.preformatted(text or "(empty)")
    st.download_button(
        "Full log",
        data=lambda: jobs.log_text(root, run_id, None)[0],
        file_name=f"{run_id}.log",
        icon=":material/download:",
        on_click="ignore",
    )
