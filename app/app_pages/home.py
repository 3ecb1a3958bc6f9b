"""Home: archive totals, ingest freshness, open alerts, the job status board, recent anomalies."""

import pandas as pd
import streamlit as st
import ui

from app.data import alerts, anomaly, browse
from lake import jobs

st.title("Quicklake")
st.caption("WFC3 archive headers, monitors and anomalies, from the lake")

with ui.shown_errors():
    scope = ui.scope()
    t = browse.totals(scope)
    c = st.columns(5)
    c[0].metric("Files", f"{t['files']:,}")
    c[1].metric("Datasets", f"{t['datasets']:,}")
    c[2].metric("Proposals", f"{t['proposals']:,}")
    c[3].metric("Bytes", ui.human_bytes(t["bytes"]))
    c[4].metric("Unreadable files", f"{t['errors']:,}")
    st.caption(
        f"Last ingest {ui.age(t['last_ingest'])} · "
        f"lake snapshot committed {ui.age(t['snapshot_committed_at'])}"
        + ("" if scope.viewer.team else " · totals of public data")
    )

    left, right = st.columns([3, 2])
    with left:
        st.subheader("Files by detector and type")
        by = browse.by_detector_and_type(scope).to_pandas()
        if len(by):
            # (a Vega-Lite spec as it is: Altair validated its chart against the schema on every load,
            # ~0.1 s of the page's server time, #18)
            st.vega_lite_chart(
                by,
                {
                    "mark": "bar",
                    "height": 160,
                    "encoding": {
                        "x": {"field": "files", "type": "quantitative", "title": "files"},
                        "y": {"field": "detector", "type": "nominal", "title": None},
                        # 20 colours for a dozen file types (10 repeated), the legend whole in two columns
                        "color": {
                            "field": "filetype",
                            "type": "nominal",
                            "title": "type",
                            "scale": {"scheme": "tableau20"},
                            "legend": {"columns": 2, "symbolLimit": 0},
                        },
                        "tooltip": ui.tooltip(
                            ("detector", "nominal"),
                            ("filetype", "nominal"),
                            ("files", "quantitative"),
                            ("bytes", "quantitative"),
                        ),
                    },
                },
                width="stretch",
            )
    with right:
        st.subheader("Recent anomalies")
        flags = anomaly.current(scope).to_pandas().head(10)
        if len(flags):
            # (guests get no "user" column: who flagged is a team member's address)
            cols = [c for c in ("anomaly", "user", "flagged_at") if c in flags.columns]
            ui.linked_table(flags, columns=cols, badges=False)
        else:
            st.caption("No datasets flagged.")

    if scope.viewer.team:  # (an alert's rows name datasets of every proposal)
        opened = alerts.open_alerts(scope).to_pylist()
        st.subheader(f"Open alerts ({len(opened)})")
        if opened:
            st.dataframe(
                [{c: a[c] for c in alerts.COLUMNS} for a in opened], hide_index=True, width="stretch"
            )
            st.page_link(
                "app_pages/alerts.py", label="Acknowledge or resolve", icon=":material/notifications:"
            )
        else:
            st.caption("No open alerts.")

    st.subheader("Job status")
    if ui.team_only(scope.viewer, "The job status board"):
        board = jobs.board(scope.lake_root)
        rows = [
            {
                "colour": b["colour"],
                "job": b["job"],
                "latest": b["latest_status"],
                "started": ui.age(b["latest_start"]),
                "last success": ui.age(b["last_success"]),
            }
            for b in sorted(board, key=ui.board_order)  # (what needs attention first)
        ]
        st.dataframe(
            ui.job_board_style(pd.DataFrame(rows)),
            hide_index=True,
            width="stretch",
            column_order=["job", "latest", "started", "last success"],
        )
        st.caption(ui.BOARD_LEGEND)
