"""Browse: proposals → visits → datasets, with filters and thumbnails."""

import streamlit as st
import ui

from app.data import browse, preview, search

st.title("Browse")
PAGE = 12

with ui.shown_errors():
    scope = ui.scope()
    props = browse.proposals(scope).to_pandas()
    with st.container(horizontal=True):
        prop = st.selectbox(
            "Proposal",
            [None, *props["proposid"].tolist()],
            format_func=lambda p: (
                "all proposals" if p is None else f"{p} ({props.set_index('proposid').loc[p, 'pi']})"
            ),
            key="browse_proposal",
        )
        visit = None
        if prop is not None:
            vis = browse.visits(scope, int(prop)).to_pandas()
            visit = st.selectbox(
                "Visit",
                [None, *vis["visit"].tolist()],
                key="browse_visit",
                format_func=lambda v: "all visits" if v is None else v,
            )
    with st.expander("Filters", expanded=False), st.container(horizontal=True):
        det = st.selectbox(
            "Detector",
            [None, *browse.choices(scope, "detector")],
            format_func=ui.any_value,
            key="browse_detector",
        )
        filt = st.selectbox(
            "Filter", [None, *browse.choices(scope, "filter")], format_func=ui.any_value, key="browse_filter"
        )
        obst = st.selectbox(
            "OBSTYPE",
            [None, *browse.choices(scope, "obstype")],
            format_func=ui.any_value,
            key="browse_obstype",
        )
        target = st.text_input("Target contains", key="browse_target")
        dates = st.date_input(
            "DATE-OBS between",
            value=[],
            key="browse_dates",
            min_value=search.MISSION_START,
            max_value=search.mission_end(),
        )
    f = ui.dataset_filter(prop, dates, target, visit=visit, detector=det, filter=filt, obstype=obst)
    n = browse.count_datasets(scope, f)
    pages = max(1, -(-n // PAGE))
    st.caption(f"{n:,} datasets · {f.describe()}")
    page = st.number_input(f"Page (of {pages}; {n:,} datasets)", 1, pages, 1, key="browse_page")
    ds = browse.datasets(scope, f, limit=PAGE, offset=(int(page) - 1) * PAGE).to_pandas()

    if prop is None:
        st.subheader("Proposals")
        st.dataframe(props, hide_index=True, width="stretch", height=220)

    st.subheader("Datasets")
    cols = st.columns(4)
    for i, r in enumerate(ds.itertuples()):
        with cols[i % 4], st.container(border=True):
            png = preview.dataset_thumbnail(scope, r.rootname, size=256)
            if png:
                st.image(png, output_format="PNG", width="stretch")
            else:
                st.caption(":material/hide_image: no pixels to show (headers-only or blank file)")
            st.page_link(
                ui.DATASET_PAGE,
                label=r.rootname,
                query_params={"rootname": r.rootname},
                icon=":material/open_in_new:",
            )
            st.caption(f"{r.detector} {r.filter} · {r.targname} · {r.date_obs} · {r.exptime:g} s")
    ui.linked_table(ds)
