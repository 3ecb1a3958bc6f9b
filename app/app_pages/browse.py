"""Browse: proposals → visits → datasets, with filters, facets and thumbnails; every choice in the URL."""

import streamlit as st
import ui

from app.data import browse, preview, search

st.title("Browse")
PAGE = 12


def filters(props: list[int]) -> browse.DatasetFilter:
    """The proposal, visit and filter widgets (bound to the URL) as a filter."""
    with st.container(horizontal=True):
        prop = st.selectbox(
            "Proposal",
            [None, *props],
            format_func=lambda p: "all proposals" if p is None else str(p),
            key="browse_proposal",
            **ui.BOUND,
        )
        visit = None
        if prop is not None:
            vis = browse.visits(scope, int(prop)).to_pandas()
            visit = st.selectbox(
                "Visit",
                [None, *vis["visit"].tolist()],
                key="browse_visit",
                format_func=lambda v: "all visits" if v is None else v,
                **ui.BOUND,
            )
    with st.expander("Filters", expanded=False), st.container(horizontal=True):
        det, filt, obst = (
            st.selectbox(
                label,
                [None, *browse.choices(scope, column)],
                format_func=ui.any_value,
                key=f"browse_{column}",
                **ui.BOUND,
            )
            for label, column in (("Detector", "detector"), ("Filter", "filter"), ("OBSTYPE", "obstype"))
        )
        target = st.text_input("Target contains", key="browse_target", **ui.BOUND)
        dates = st.date_input(
            "DATE-OBS between",
            value=[],
            key="browse_dates",
            min_value=search.MISSION_START,
            max_value=search.mission_end(),
            **ui.BOUND,
        )
    return ui.dataset_filter(prop, dates, target, visit=visit, detector=det, filter=filt, obstype=obst)


def cards(ds: object, flagged: dict[str, str]) -> None:
    """A thumbnail card per dataset, with its link, its anomaly badge and one line of facts."""
    cols = st.columns(4)
    for i, r in enumerate(ds.itertuples()):  # type: ignore[attr-defined]
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
            if r.rootname in flagged:
                st.badge(flagged[r.rootname], color="red")
            st.caption(f"{r.detector} {r.filter} · {r.targname} · {r.date_obs} · {r.exptime:g} s")


with ui.shown_errors():
    scope = ui.scope()
    props = browse.proposals(scope).to_pandas()
    f = filters(props["proposid"].tolist())
    if f.proposid is not None:
        pi = props.set_index("proposid").loc[f.proposid, "pi"]
        st.caption(f"Proposal {f.proposid}: PI {pi}")
    with st.expander("Facets", expanded=True):
        f = ui.facet_bar(f, "bf_")
    n = browse.count_datasets(scope, f)
    pages = max(1, -(-n // PAGE))
    st.caption(f"{n:,} datasets · {f.describe()}")
    page = st.number_input(f"Page (of {pages}; {n:,} datasets)", 1, pages, 1, key="browse_page", **ui.BOUND)
    ds = browse.datasets(scope, f, limit=PAGE, offset=(int(page) - 1) * PAGE).to_pandas()

    if f.proposid is None:
        st.subheader("Proposals")
        ui.linked_table(props, height=220, key="browse_props")

    st.subheader("Datasets")
    flagged = ui.anomaly_badges(ds["rootname"])
    cards(ds, flagged)
    ui.linked_table(ds, badges=flagged, key="browse_ds")
