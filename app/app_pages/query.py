"""Query: a form on common keywords, a sandboxed SQL console, downloads, and keyword-vs-keyword plots."""

import io
from collections.abc import Callable
from typing import Any

import altair as alt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import streamlit as st
import ui

from app.data import browse, counted, saved, search
from app.data.scope import Scope

st.title("Query")

ORIGINAL = (
    "SELECT master.rootname, uvisflt_0.targname, uvisflt_0.exptime, uvisflt_0.ra_targ, uvisflt_0.dec_targ,\n"
    "       uvisflt_0.filter\nFROM master JOIN uvisflt_0 ON master.rootname = uvisflt_0.rootname\n"
    "WHERE uvisflt_0.targname LIKE 'NGC%' AND uvisflt_0.date_obs > '2015-01-01'\n"
    "  AND uvisflt_0.date_obs < '2015-01-30'"
)


def downloads(t: pa.Table | Callable[[], pa.Table], stem: str) -> None:
    """CSV and Parquet of ``t`` (or of what ``t()`` gives, computed only when a button is clicked)."""

    def table() -> pa.Table:
        return t() if callable(t) else t

    def parquet() -> bytes:
        buf = io.BytesIO()
        pq.write_table(table(), buf)
        return buf.getvalue()

    with st.container(horizontal=True):
        st.download_button(
            "CSV",
            data=lambda: table().to_pandas().to_csv(index=False),
            file_name=f"{stem}.csv",
            mime="text/csv",
            icon=":material/download:",
            on_click="ignore",
            key=f"{stem}_csv",
        )
        st.download_button(
            "Parquet",
            data=parquet,
            file_name=f"{stem}.parquet",
            on_click="ignore",
            mime="application/vnd.apache.parquet",
            icon=":material/download:",
            key=f"{stem}_pq",
        )


# rows of a form result drawn in the page, and given by its downloads (computed only when clicked): the
# newest 10,000 of a million datasets take DuckDB 0.5 s to sort and the browser a 1.5 MB table (#18)
SHOWN, DOWNLOADED = 1000, 10000


def _choice(scope: Scope, label: str, column: str) -> Any:
    """A master column's values to pick one of (or none), its value kept in the URL (``q_<column>``)."""
    return st.selectbox(
        label,
        [None, *browse.choices(scope, column)],
        format_func=ui.any_value,
        key=f"q_{column}",
        **ui.BOUND,
    )


def form_section(shown: bool) -> None:
    """The form; its fields, the facets picked and whether it was run live in the URL (?find=1).
    The result is computed only while the tab is ``shown``."""
    with st.form("query_form"):
        with st.container(horizontal=True):
            det, filt, imt, obst = (
                _choice(scope, label, column)
                for label, column in (
                    ("Detector", "detector"),
                    ("Filter", "filter"),
                    ("IMAGETYP", "imagetyp"),
                    ("OBSTYPE", "obstype"),
                )
            )
        with st.container(horizontal=True):
            target = st.text_input("Target contains", key="q_target", **ui.BOUND)
            prop = st.number_input("Proposal", value=None, step=1, key="q_proposal", **ui.BOUND)
            dates = st.date_input(
                "DATE-OBS between",
                value=[],
                min_value=search.MISSION_START,
                max_value=search.mission_end(),
                key="q_dates",
                width=ui.DATE_RANGE_WIDTH,
                **ui.BOUND,
            )
            min_exp = st.number_input("EXPTIME at least (s)", value=None, key="q_min_exptime", **ui.BOUND)
        if st.form_submit_button("Find datasets", type="primary"):
            st.query_params["find"] = "1"
    if not shown or st.query_params.get("find") != "1":
        return
    f = ui.dataset_filter(
        prop, dates, target, detector=det, filter=filt, imagetyp=imt, obstype=obst, min_exptime=min_exp
    )  # fmt: skip
    with st.expander("Facets", expanded=True):
        f = ui.facet_bar(f, "qf_")
    n = browse.count_datasets(scope, f)
    shown = browse.datasets(scope, f, limit=SHOWN)
    more = f" · the newest {SHOWN:,} shown; the downloads give up to {DOWNLOADED:,}" if n > SHOWN else ""
    st.caption(f"{counted(n, 'dataset')} · {f.describe()}{more}")
    ui.linked_table(shown.to_pandas(), key="query_form_df")
    downloads((lambda: browse.datasets(scope, f, limit=DOWNLOADED)) if n > SHOWN else shown, "datasets")


def sql_section(shown: bool) -> None:
    """The console; its text (?sql_text=) and whether it was run (?run=1) live in the URL."""
    st.caption(
        f"One SELECT on the lake's tables ({len(scope.tables)} visible to you); at most "
        f"{scope.cfg['console_rows']:,} rows; interrupted after {scope.cfg['console_timeout']:g} s."
    )
    sql = st.text_area("SQL", value=ORIGINAL, height=160, key="sql_text", **ui.BOUND)
    with st.container(horizontal=True, vertical_alignment="bottom"):
        run = st.button("Run", type="primary", key="sql_run", icon=":material/play_arrow:")
        st.popover("Tables").dataframe({"table": scope.tables}, hide_index=True)
        as_of = ""
        if scope.viewer.team:  # reproducing a past analysis: the lake as it was (docs/history.md)
            as_of = st.text_input(
                "As of (UTC time or snapshot id)", key="sql_as_of", placeholder="2026-01-01T12:00", **ui.BOUND
            ).strip()
    done = st.session_state.get("sql_result")
    if not shown:
        return
    asked = f"{sql}\n-- as of {as_of}" if as_of else sql
    if run or (st.query_params.get("run") == "1" and (done is None or done[0] != asked)):
        st.session_state["sql_result"] = None  # an error leaves no stale result
        st.session_state["sql_result"] = done = (asked, ui.console_scope(as_of).console(sql))
        st.query_params["run"] = "1"
    if done is None:
        return
    if done[0] != asked:
        st.caption("The SQL changed: Run it to see its result.")
        st.query_params.pop("run", None)
        return
    r = done[1]
    st.caption(
        f"{r.table.num_rows:,} rows in {r.seconds * 1000:.0f} ms"
        + (" (truncated at the row cap)" if r.truncated else "")
        + (f" · the lake as of {as_of}" if as_of else "")
    )
    ui.linked_table(r.table.to_pandas(), key="sql_df")
    downloads(r.table, "query")


@st.fragment
def sql_fragment(shown: bool) -> None:
    """:func:`sql_section` as a fragment: a Run reruns the console alone, not the whole page (the form's
    and the plot's widgets, the sidebar), which the browser then redraws (#18)."""
    with ui.shown_errors():  # (a fragment's rerun is outside the page's own)
        sql_section(shown)


CATEGORIES = 20  # a colour column with at most this many values is a category (one colour each)


def plot_channel(pts: Any, field: str, name: str, kind: type = alt.X) -> Any:
    """An axis for column ``name`` (data in ``pts[field]``): dates for MJD and date columns (converted
    in ``pts``), the unit from the keyword's schema doc in the title."""
    from lake.keywords import unit

    u = unit(name)
    data = pts[field]
    if u == "MJD" and data.dtype.kind in "iuf":
        pts[field] = mjd_to_datetime(data)
        return kind(f"{field}:T", title=f"{name} (date, UTC)")
    if data.dtype.kind == "M" or u.startswith("date"):
        pts[field] = pd.to_datetime(data, errors="coerce", utc=True)
        return kind(f"{field}:T", title=f"{name} (date, UTC)")
    title = f"{name} ({u})" if u else name
    if data.dtype.kind in "iuf":
        return kind(f"{field}:Q", title=title, scale=alt.Scale(zero=False))
    return kind(f"{field}:N", title=title)


def mjd_to_datetime(mjd: Any) -> Any:
    return pd.to_datetime(mjd - 40587.0, unit="D", utc=True)  # (MJD 40587 = 1970-01-01)


def colour_channel(pts: Any, name: str) -> Any:
    """One colour per value of a category (a string, or a number with few values); a colour scale
    for a number with many."""
    data = pts["colour"]
    if data.dtype.kind in "iuf" and data.nunique() > CATEGORIES:
        return alt.Color("colour:Q", title=name, scale=alt.Scale(scheme="viridis"))
    pts["colour"] = data.astype("string").fillna("(none)")
    return alt.Color("colour:N", title=name, scale=alt.Scale(scheme="category20"))


def plot_section(shown: bool) -> None:
    """Keyword against keyword, coloured by a category (FILTER, DETECTOR, …); MJD and dates as dates;
    every choice lives in the URL."""
    tables = [t for t in scope.tables if t not in {"cards"}]
    default = tables.index("uvisflt_0") if "uvisflt_0" in tables else 0
    with st.container(horizontal=True):
        table = st.selectbox("Table", tables, index=default, key="plot_table", **ui.BOUND)
        cols = browse.numeric_columns(scope, table)
        x = st.selectbox(
            "X", cols, index=cols.index("expstart") if "expstart" in cols else 0, key="plot_x", **ui.BOUND
        )
        y = st.selectbox(
            "Y", cols, index=cols.index("exptime") if "exptime" in cols else 0, key="plot_y", **ui.BOUND
        )
        # categories first: what one colours by
        firsts = [c for c in ("filter", "detector", "filetype", "imagetyp", "obstype", "aperture", "proposid")
                  if c in cols]  # fmt: skip
        colour = st.selectbox(
            "Colour by", [None, *firsts, *(c for c in cols if c not in firsts)], key="plot_colour", **ui.BOUND
        )
    where = st.text_input(
        "Where (SQL condition)", key="plot_where", placeholder="filter = 'F606W'", **ui.BOUND
    )
    if not shown:
        return
    pts = browse.keyword_plot(scope, table, x, y, where=where, colour=colour).to_pandas()
    st.caption(f"{len(pts):,} rows of {table}")
    enc = {"x": plot_channel(pts, "x", x), "y": plot_channel(pts, "y", y, alt.Y)}
    if colour:
        enc["color"] = colour_channel(pts, colour)
    tips = {"rootname": "rootname", "x": x, "y": y, "colour": colour}
    enc["tooltip"] = [
        alt.Tooltip(f"{c}:T", title=tips[c], format="%Y-%m-%d %H:%M")
        if pts[c].dtype.kind == "M"
        else alt.Tooltip(c, title=tips[c])
        for c in pts.columns
    ]
    st.altair_chart(
        alt.Chart(pts).mark_circle(size=30, opacity=0.7).encode(**enc).interactive(), width="stretch"
    )


def _save_query() -> None:
    from lake.errors import QuicklakeError

    try:
        # (every value of a parameter given twice: a date range's two dates)
        params = {k: st.query_params.get_all(k) for k in st.query_params}
        name = saved.save(ui.scope(), st.session_state.get("saved_name", ""), params)
    except QuicklakeError as e:
        st.session_state["saved_said"] = ("error", str(e))  # the name stays as typed
        return
    st.session_state["saved_said"] = ("ok", f"Saved as “{name}”")


def _delete_query() -> None:
    name = st.session_state.get("saved_pick")
    if name:
        saved.delete(ui.scope(), name)
        st.session_state["saved_said"] = ("ok", f"“{name}” deleted")


def saved_section() -> None:
    """Save the page as it is (its URL parameters) under a name; open or delete one's saved queries.
    Signed-in users only: each sees their own."""
    with st.expander("Saved queries", icon=":material/bookmark:"):
        if not scope.viewer.logged_in:
            st.caption("Log in to save queries. The page's address can be shared as it is.")
            return
        with st.container(horizontal=True, vertical_alignment="bottom"):
            st.text_input("Name", key="saved_name", placeholder="NGC darks in 2015")
            st.button(
                "Save this query", key="saved_save", icon=":material/bookmark_add:", on_click=_save_query
            )
        kind, text = st.session_state.pop("saved_said", (None, ""))
        if kind:
            (st.success if kind == "ok" else st.error)(text)
        mine = saved.mine(scope).to_pandas()
        if not len(mine):
            st.caption("No saved queries yet.")
            return
        st.dataframe(
            mine[["name", "url", "saved_at"]],
            column_config={"url": st.column_config.LinkColumn("open", display_text="open")},
            hide_index=True,
            key="saved_df",
        )
        with st.container(horizontal=True, vertical_alignment="bottom"):
            pick = st.selectbox("Saved query", list(mine["name"]), key="saved_pick")
            link = str(mine.set_index("name").loc[pick, "url"]) if pick else ""
            st.link_button("Open", link, icon=":material/open_in_new:", disabled=not link)
            st.button("Delete", key="saved_delete", icon=":material/delete:", on_click=_delete_query)


with ui.shown_errors():
    scope = ui.scope()
    # the open tab is in the URL too (?tab=SQL); every tab's fields are drawn (their values stay in the
    # URL) but only the open tab's result is computed
    form_tab, sql_tab, plot_tab = st.tabs(["Form", "SQL", "Plot"], key="tab", **ui.BOUND)
    for tab, section in ((form_tab, form_section), (sql_tab, sql_fragment), (plot_tab, plot_section)):
        with tab, ui.shown_errors():
            section(tab.open is not False)
    saved_section()
