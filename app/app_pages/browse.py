"""Browse: proposals → visits → datasets, with filters, facets and thumbnails; every choice in the URL."""

from typing import Any

import streamlit as st
import ui

from app.data import browse, counted, preview, search

st.title("Browse")
PAGE = 12
PROPOSALS = 20  # proposals listed per page (the most datasets first)


FILTER_KEYS = ("browse_detector", "browse_filter", "browse_obstype", "browse_target", "browse_dates")


def filter_inputs() -> tuple[Any, Any, Any, str, Any]:
    """Detector, filter, OBSTYPE, target and dates inputs, bound to the URL."""
    with st.container(horizontal=True):
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
            width=ui.DATE_RANGE_WIDTH,
            min_value=search.MISSION_START,
            max_value=search.mission_end(),
            **ui.BOUND,
        )
    return det, filt, obst, target, dates


def proposal(typed: str, props: Any) -> int | None:
    """The proposal typed (None for all); one the viewer cannot see (or a typo) is said, not an error."""
    text = (typed or "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) not in set(props["proposid"]):
        st.warning(
            f"No proposal {text!r} among the {len(props):,} you can see.", icon=":material/search_off:"
        )
        return None
    return int(text)


def filters(props: Any) -> browse.DatasetFilter:
    """The proposal, visit and filter widgets (bound to the URL) as a filter."""
    with st.container(horizontal=True):
        # a box, not a drop-down of every proposal: its 3,000 options cost the browser ~0.16 s per load
        # and repeat the proposals list and the proposal facet (#18); links keep ?browse_proposal=N
        typed = st.text_input("Proposal", key="browse_proposal", placeholder="all proposals", **ui.BOUND)
        prop = proposal(typed, props)
        visit = None
        if prop is not None:
            vis = browse.visits(scope, prop).to_pandas()
            visit = st.selectbox(
                "Visit",
                [None, *vis["visit"].tolist()],
                key="browse_visit",
                format_func=lambda v: "all visits" if v is None else v,
                **ui.BOUND,
            )
    det = filt = obst = None
    target, dates = "", []
    # the five inputs are drawn only when asked for or when one is set in the URL (so a shared link
    # shows them, and closing never drops a filter): closed, they were ~0.2 s of the browser's work
    # on every load (#18)
    in_use = any(st.query_params.get(k) or st.session_state.get(k) for k in FILTER_KEYS)
    opened = st.toggle("Filters", key="browse_filters", **ui.BOUND)
    if opened or in_use:
        if not opened:
            st.caption("Filters (shown while one is set)")
        det, filt, obst, target, dates = filter_inputs()
    return ui.dataset_filter(prop, dates, target, visit=visit, detector=det, filter=filt, obstype=obst)


# the cards as one block of HTML: 12 cards of 4-5 Streamlit elements in 4 columns were most of the
# browser's work on this page (#18); an image's width and height reserve its place before it decodes
CARDS_STYLE = """<style>
.ql-cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(14rem, 1fr)); gap: 1rem; }
.ql-card { border: 1px solid rgba(128, 128, 128, 0.3); border-radius: 0.5rem; padding: 0.75rem;
  display: flex; flex-direction: column; gap: 0.4rem; font-size: 0.875rem; }
.ql-card img { width: 100%; height: auto; border-radius: 0.25rem; background: #000; }
.ql-card .ql-none, .ql-card .ql-facts { opacity: 0.65; font-size: 0.8rem; }
.ql-card a { font-weight: 600; }
.ql-badge { align-self: flex-start; color: rgb(189, 64, 67); background: rgba(255, 43, 43, 0.1);
  border-radius: 0.5rem; padding: 0 0.4rem; font-size: 0.8rem; }
</style>"""


def card(r: object, png: bytes | None, badge: str | None) -> str:
    """One dataset's card: its thumbnail (or why there is none), its link, its anomaly badge, its facts."""
    from base64 import b64encode
    from html import escape

    root = escape(str(r.rootname))  # type: ignore[attr-defined]
    if png:
        w, h = preview.png_size(png)
        pic = (
            f'<img src="data:image/png;base64,{b64encode(png).decode()}" width="{w}" height="{h}" '
            f'alt="{root}: first SCI extension, zscale" decoding="async">'
        )
    else:
        pic = '<div class="ql-none">no pixels to show (headers-only or blank file)</div>'
    facts = escape(f"{r.detector} {r.filter} · {r.targname} · {r.date_obs} · {r.exptime:g} s")  # type: ignore[attr-defined]
    flag = f'<span class="ql-badge">{escape(badge)}</span>' if badge else ""
    return (
        f'<div class="ql-card">{pic}<a href="{ui.dataset_url(root)}">{root}</a>{flag}'
        f'<div class="ql-facts">{facts}</div></div>'
    )


def cards(ds: object, flagged: dict[str, str]) -> None:
    """A thumbnail card per dataset, with its link, its anomaly badge and one line of facts."""
    rows = list(ds.itertuples())  # type: ignore[attr-defined]
    thumbs = preview.dataset_thumbnails(scope, [r.rootname for r in rows], size=256)
    body = "".join(card(r, thumbs.get(r.rootname), flagged.get(r.rootname)) for r in rows)
    st.html(f'{CARDS_STYLE}<div class="ql-cards">{body}</div>')


def proposals_list(props: Any) -> None:
    """A page of proposals (most datasets first) as small HTML with links to each one's Browse: a
    3,000-row grid was ~0.3 s of the browser's work, mostly loading the grid itself (#18)."""
    pages = max(1, -(-len(props) // PROPOSALS))
    st.subheader("Proposals")
    page = st.number_input(
        f"Proposals page (of {pages}; {len(props):,} proposals)",
        1,
        pages,
        1,
        key="browse_props_page",
        **ui.BOUND,
    )
    top = props.sort_values(["datasets", "proposid"], ascending=[False, True])
    start = (int(page) - 1) * PROPOSALS
    ui.small_table(top.iloc[start : start + PROPOSALS], links={"proposid": ui.browse_url})


def datasets_table(ds: Any, flagged: dict[str, str]) -> None:
    """The page's datasets as a small HTML table: links to each dataset and its proposal, flags second."""
    rest = [c for c in ds.columns if c != "rootname"]
    shown = ds.assign(flags=[flagged.get(r, "") for r in ds["rootname"]])[["rootname", "flags", *rest]]
    ui.small_table(shown, links={"rootname": ui.dataset_url, "proposid": ui.browse_url})


with ui.shown_errors():
    scope = ui.scope()
    props = browse.proposals(scope).to_pandas()
    f = filters(props)
    if f.proposid is not None:
        pi = props.set_index("proposid").loc[f.proposid, "pi"]
        st.caption(f"Proposal {f.proposid}: PI {pi}")
    with st.expander("Facets", expanded=True):
        f = ui.facet_bar(f, "bf_")
    n = browse.count_datasets(scope, f)
    pages = max(1, -(-n // PAGE))
    st.caption(f"{counted(n, 'dataset')} · {f.describe()}")
    page = st.number_input(
        f"Page (of {pages}; {counted(n, 'dataset')})", 1, pages, 1, key="browse_page", **ui.BOUND
    )
    ds = browse.datasets(scope, f, limit=PAGE, offset=(int(page) - 1) * PAGE).to_pandas()

    if f.proposid is None:
        proposals_list(props)

    st.subheader("Datasets")
    flagged = ui.anomaly_badges(ds["rootname"])
    cards(ds, flagged)
    datasets_table(ds, flagged)
