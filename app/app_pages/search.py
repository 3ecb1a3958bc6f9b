"""Search: one box for a target name, a rootname prefix, a proposal or a sky position, and a sky map
(in its own tab)."""

from typing import Any

import streamlit as st
import ui

from app.data import search
from lake.search import SHOWN

st.title("Search")


def sky(res: Any) -> None:
    """Where the datasets point, with the search result ringed."""
    points = search.pointings(scope).to_pandas()
    hits = None
    if res is not None and "ra_targ" in res.column_names and res.num_rows:
        hits = (
            res.select(["ra_targ", "dec_targ"])
            .to_pandas()
            .rename(columns={"ra_targ": "ra", "dec_targ": "dec"})
        )
    internal = hits is not None and bool(((hits["ra"] == 0) & (hits["dec"] == 0)).all())
    st.caption(
        f"Where the datasets you may see point (RA_TARG, DEC_TARG): {len(points):,} cells of "
        f"{search.SKY_CELL:g}° with their number of datasets, coloured by detector; RA increases to the "
        "left. Search results are ringed"
        + (
            ": none of these points at the sky (internal exposures: lamp flats, darks, biases)."
            if internal
            else "."
        )
    )
    st.altair_chart(search.sky_map(points, hits), width="stretch")


with ui.shown_errors():
    scope = ui.scope()
    # the box and radius live in the URL (?search_text=NGC+4485): a search is a link to share
    with st.form("search_form"), st.container(horizontal=True, vertical_alignment="bottom"):
        text = st.text_input(
            "Target, rootname, proposal or position",
            placeholder="NGC 4485 · ib2c01 · 12345 · 12h30m49s +12d23m28s · 187.70 12.39",
            key="search_text",
            **ui.BOUND,
        )
        radius = st.text_input("Radius", value="180 arcsec", key="search_radius", width=160, **ui.BOUND)
        st.form_submit_button("Search", type="primary", icon=":material/search:")
    res = search.find(scope, text, radius) if text.strip() else None
    # the sky map in its own tab, drawn only while it is open (?search_tab=Sky+map): an all-sky chart
    # of 2,000 cells took the browser ~0.5 s to draw again on every search (#18)
    found_tab, sky_tab = st.tabs(["Results", "Sky map"], key="search_tab", **ui.BOUND)
    with found_tab:
        if res is None:
            st.caption("Type a target name, a rootname or its first letters, a proposal or a position.")
        else:
            st.caption(search.summary(res))
            df = res.to_pandas()
            # the columns ``ql search`` prints first (distance, filter, exposure time), then the rest
            first = [c for c in SHOWN if c in df.columns]
            df = df[first + [c for c in df.columns if c not in first]]
            ui.linked_table(df, height=min(400, 40 + 35 * len(df)))
            st.download_button(
                "CSV", data=lambda: df.to_csv(index=False), file_name="search.csv", mime="text/csv",
                icon=":material/download:", on_click="ignore", key="search_csv",
            )  # fmt: skip
    with sky_tab:
        if sky_tab.open is not False:
            sky(res)
