"""Dataset: its files, a header viewer for every HDU (search, repeated/HISTORY cards, diff), previews
with the anomaly flag beside them, the header history across reprocessings, downloads, and links to its
proposal, visit, association and the datasets before and after it in its visit."""

import pandas as pd
import plotly.graph_objects as pgo
import streamlit as st
import ui

from app.data import anomaly, browse, counted, headerview, history, preview

st.title("Dataset")
DIFF_KEYS = ("diff_a", "diff_ha", "diff_other", "diff_b", "diff_hb")


def go(rootname: str) -> None:
    """Show another dataset on this page (the rootname box is bound to ?rootname=)."""
    st.session_state["rootname"] = rootname
    for k in ("file", *DIFF_KEYS):  # (another dataset's files)
        st.query_params.pop(k, None)
        st.session_state.pop(k, None)


def heading(d: dict) -> None:
    root = d["rootname"]
    st.subheader(f"{root} · {d['detector']} {d['filter']} · {d['targname']}")
    st.caption(
        f"observed {d['date_obs']} {d['time_obs'] or ''} UT · PI {d['pr_inv_l'] or '?'} · "
        + (f"OBSTYPE {d['obstype']} · " if d["obstype"] else "")
        + f"association {d['asn_id'] or 'none'}"
    )
    ui.facts(
        {
            "Proposal": d["proposid"],
            "Visit": d["visit"] or "—",
            "EXPTIME": f"{d['exptime']:g} s" if d["exptime"] is not None else "?",
            "IMAGETYP": d["imagetyp"] or "?",
            "Aperture": d["aperture"] or "?",
        }
    )
    flags = anomaly.current(scope, rootname=root).to_pandas()
    if len(flags):
        st.warning(
            "Flagged: " + ", ".join(anomaly.ANOMALY_TYPES[a] for a in flags["anomaly"]),
            icon=":material/flag:",
        )


def navigation(d: dict) -> None:
    """Proposal → visit links, previous/next in the visit, the association and its members."""
    prev, nxt, i, n = browse.visit_neighbours(scope, d)
    with st.container(horizontal=True, vertical_alignment="center"):
        st.page_link(
            ui.BROWSE_PAGE, label=f"Proposal {d['proposid']}", icon=":material/folder_open:",
            query_params={"browse_proposal": str(d["proposid"])},
        )  # fmt: skip
        st.page_link(
            ui.BROWSE_PAGE, label=f"Visit {d['visit']}", icon=":material/folder:",
            query_params={"browse_proposal": str(d["proposid"]), "browse_visit": d["visit"]},
        )  # fmt: skip
        st.button(
            f"Previous: {prev}" if prev else "Previous", disabled=prev is None, key="ds_prev",
            icon=":material/chevron_left:", on_click=go, args=(prev,),
        )  # fmt: skip
        st.caption(f"{i} of {n} in the visit")
        st.button(
            f"Next: {nxt}" if nxt else "Next", disabled=nxt is None, key="ds_next",
            icon=":material/chevron_right:", icon_position="right", on_click=go, args=(nxt,),
        )  # fmt: skip
    asn = browse.association_of(d)
    if asn and asn != d["rootname"]:
        st.button(f"Association {asn}", key="ds_asn", icon=":material/workspaces:", on_click=go, args=(asn,))
    elif asn:
        mem = browse.members(scope, asn).to_pandas()
        st.markdown(f"**Association {asn}: {counted(len(mem), 'member')}**")
        with st.container(horizontal=True, key="ds_members"):
            for r in mem["rootname"].head(50):
                st.button(r, key=f"ds_member_{r}", icon=":material/image:", on_click=go, args=(r,))
        ui.linked_table(mem, key="ds_members_table", height=min(300, 40 + 35 * len(mem)))


def figure(v: preview.View, stretch: str, title: str, rows: str | None = None) -> pgo.Figure:
    """A heatmap of the file's values at their FITS pixel positions (row 1 at the bottom), grey on the
    chosen stretch (from the simulated ``rows`` of a sparse file only, if given), with a colour bar in
    the file's BUNIT and the value under the cursor."""
    sample = v.data[preview.row_mask(rows, v.y)] if rows else v.data
    lo, hi = preview.limits(sample if sample.size else v.data, stretch)
    unit = v.bunit or "(no BUNIT)"
    # a plot area of the image's shape at about 700 px wide, so the colour bar (as tall as the plot
    # area) is about as tall as the image: a UVIS chip (2:1) in a square area had a bar twice its height
    ny, nx = v.data.shape[:2]
    area = int(min(590, max(300, 700 * ny / max(nx, 1))))
    fig = pgo.Figure(
        pgo.Heatmap(
            z=v.data, x=v.x, y=v.y, zmin=lo, zmax=hi, colorscale=preview.colorscale(stretch),
            colorbar={"title": {"text": unit}},
            hovertemplate=f"x %{{x}}, y %{{y}}: %{{z:.6g}} {unit}<extra></extra>",
        )
    )  # fmt: skip
    fig.update_layout(
        title={"text": title}, dragmode="zoom", height=area + 50, margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis={"title": {"text": "x (column)"}, "constrain": "domain"},
        yaxis={"title": {"text": "y (row)"}, "scaleanchor": "x", "constrain": "domain"},
    )  # fmt: skip
    return fig


def zoom_to_selection() -> None:
    """A box drawn on the image (box-select tool) becomes the full-resolution region."""
    boxes = st.session_state["pv_chart"].selection.get("box") or []
    if boxes:
        xs, ys = boxes[-1]["x"], boxes[-1]["y"]
        st.session_state["pv_region"] = f"{round(min(xs))}:{round(max(xs))},{round(min(ys))}:{round(max(ys))}"


def previews(ok: list[str], first: int, detector: str) -> None:
    with st.container(horizontal=True):
        ppath = st.selectbox("File", ok, index=first, key="pv_file")
        images = preview.image_hdus(scope, ppath)
        stretch = st.radio("Stretch", preview.STRETCHES, horizontal=True, key="pv_stretch")
        # an IR ima/raw holds one SCI extension per non-destructive read (EXTVER 1 is the last one)
        reads = detector == "IR" and ppath.endswith(("_ima.fits", "_raw.fits"))
        labels = {h: (f"read EXTVER {lb.split(',')[1]}" if reads else lb) for h, lb in images}
        hdu = st.selectbox(
            "Read (SCI, EXTVER n; 1 is the last)" if reads else "Extension", list(labels),
            format_func=lambda h: labels.get(h, str(h)), key=f"pv_hdu_{ppath}",
        )  # fmt: skip
    region = st.text_input(
        "Full-resolution region x0:x1,y0:y1 (or draw a box with the box-select tool)",
        key="pv_region", placeholder="empty: the whole image",
    )  # fmt: skip
    if hdu is None:
        st.caption("This file has no image extensions.")
        return
    rows = preview.simulated_rows(scope, ppath, int(hdu))
    with ui.shown_errors():
        try:
            v = preview.view(scope, ppath, int(hdu), region)
        except preview.BlankImage as e:
            st.info(f"HDU {hdu}: {e.reason}")
            return
    if rows and preview.covers(rows, v.shape[0]):
        rows = None  # (every row simulated: a whole image)
    if rows:
        st.caption(
            f"A generated sparse file: only rows {rows} are simulated (the ones the monitors read); the "
            "other rows hold no signal (0 as stored, shown with the file's BZERO added) and the stretch "
            "is set on the simulated rows. `ql generate --pixels full` simulates whole images."
        )
    with ui.shown_errors():
        ny, nx = v.shape
        st.plotly_chart(
            figure(v, stretch, f"{ppath.rsplit('/', 1)[-1]} [{labels.get(hdu, hdu)}]", rows),
            key="pv_chart", on_select=zoom_to_selection, selection_mode="box",
            config={"scrollZoom": True, "displaylogo": False},
        )  # fmt: skip
        x0, x1, y0, y1 = v.box
        st.caption(
            f"{nx}x{ny} pixels; drawn [{x0}:{x1},{y0}:{y1}] "
            + ("at full resolution" if v.step == 1 else f"one pixel in {v.step} (not averaged)")
            + f" · {stretch} · values in {v.bunit or 'the file’s units (no BUNIT)'} · scroll or drag to zoom"
        )


def hdu_picker(label: str, path: str, key: str) -> int:
    """An HDU of ``path`` to pick, by index, EXTNAME and EXTVER."""
    hd = browse.hdus(scope, path).to_pylist()
    names = {
        r["hdu"]: f"{r['hdu']}: "
        + (f"{r['extname']},{r['extver'] or 1}" if r["extname"] and r["hdu"] else "PRIMARY")
        for r in hd
    }
    return int(
        st.selectbox(
            label, list(names) or [0], key=key, format_func=lambda h: names.get(h, str(h)), **ui.BOUND
        )
    )


def diff_tab(d: dict, ok: list[str]) -> None:
    """Two headers as a diff: A, a file of this dataset; B, picked from this dataset's and its visit's
    files, or from the files a search finds (a name, a rootname or its first letters, a path). The
    choices are in the URL (a diff is a link to share)."""
    with st.container(horizontal=True):
        a = st.selectbox("File A", ok, key="diff_a", **ui.BOUND)
        ha = hdu_picker("HDU A", a, "diff_ha")
    typed = st.text_input(
        "Find file B: a file name (ib6v01ijq_raw.fits), a rootname or its first letters, or an archive "
        "path; empty: this dataset's and its visit's files",
        key="diff_other",
        **ui.BOUND,
    )
    found = headerview.diff_candidates(scope, d["rootname"], typed)
    where = {r["path"]: r for r in found.to_pylist()}
    paths = list(where)
    if not paths:
        st.caption("No other readable file to compare with.")
        return

    def label(p: str) -> str:
        r = where.get(p, {})
        about = " ".join(str(r[k]) for k in ("detector", "filter", "date_obs") if r.get(k))
        return f"{p.rsplit('/', 1)[-1]} · {r.get('whose', '')}" + (f" ({about})" if about else "")

    default = next((i for i, p in enumerate(paths) if p != a), 0)
    with st.container(horizontal=True):
        b = st.selectbox(f"File B ({len(paths)} to pick from)", paths, index=default, key="diff_b",
                         format_func=label, **ui.BOUND)  # fmt: skip
        hb = hdu_picker("HDU B", b, "diff_hb")
    kd = headerview.keyword_diff(scope, a, ha, b, hb)
    differ = "keyword differs" if kd.num_rows == 1 else "keywords differ"
    st.caption(f"{kd.num_rows:,} {differ} between {a}[{ha}] and {b}[{hb}]")
    st.dataframe(kd.to_pandas(), hide_index=True, width="stretch")
    st.code(headerview.diff(scope, a, ha, b, hb) or "(identical)", language="diff")


def pick_dataset(typed: str) -> str:
    """The dataset ``typed`` names: itself, or the one rootname starting with it; several: a list of
    them to pick from (and the page stops there)."""
    if scope.visible(typed):
        return typed
    found = browse.datasets_starting(scope, typed, limit=201)
    if found.num_rows == 1:
        root = str(found.column("rootname")[0].as_py())
        st.caption(f"{root}: the only dataset starting with “{typed}”")
        return root
    if not found.num_rows:
        return typed  # (the Dataset page says why it is not there)
    many = "the first 200 datasets" if found.num_rows > 200 else counted(found.num_rows, "dataset")
    st.markdown(f"**{many} start with “{typed}”**: pick one")
    ui.linked_table(found.slice(0, 200).to_pandas(), key="ds_prefix_table")
    st.stop()


with ui.shown_errors():
    scope = ui.scope()
    root = st.text_input("Rootname", key="rootname", placeholder="ib6v01ijq", **ui.BOUND).strip().lower()
    if not root:
        st.info("Enter a rootname, or pick a dataset on the Browse or Query page.")
        st.stop()
    root = pick_dataset(root)
    d = browse.dataset(scope, root)
    heading(d)
    navigation(d)

    files = browse.files(scope, root).to_pandas()
    ui.small_table(
        files.assign(
            size=[ui.human_bytes(s) for s in files["size"]],
            mtime=pd.to_datetime(files["mtime"], unit="s", utc=True).dt.strftime("%Y-%m-%d %H:%M"),
        )
    )
    ok = files[files["status"] == "ok"]["path"].tolist()
    if not ok:
        st.stop()
    # ?file=<path> opens that file in the header and preview tabs (shareable links)
    wanted = st.query_params.get("file")
    first = ok.index(wanted) if wanted in ok else 0

    # the open tab is in the URL (?ds_tab=Preview) and stays open across reruns (a flag, a new file);
    # previews are drawn only while their tab is open
    tab_h, tab_p, tab_d, tab_v = st.tabs(["Header", "Preview", "Diff", "History"], key="ds_tab", **ui.BOUND)
    with tab_h:
        with st.container(horizontal=True):
            path = st.selectbox("File", ok, index=first, key="hdr_file")
            hd = browse.hdus(scope, path).to_pylist()
            names = {r["hdu"]: r["extname"] for r in hd}
            vers = {r["hdu"]: r["extver"] for r in hd}
            hdu = st.selectbox(
                "HDU",
                list(names),
                key="hdr_hdu",
                format_func=lambda h: f"{h}: {names.get(h) or 'PRIMARY'},{vers.get(h) or 1}",
            )
            search = st.text_input("Search cards", key="hdr_search", placeholder="EXPTIME, CRDS, …")
        with st.container(horizontal=True):
            commentary = st.toggle("HISTORY / COMMENT cards", value=True, key="hdr_commentary")
            repeated = st.toggle("Repeated keywords only", value=False, key="hdr_repeated")
        cards = headerview.cards(
            scope, path, int(hdu), search=search, commentary=commentary, repeated_only=repeated
        )
        st.caption(counted(cards.num_rows, "card"))
        ui.preformatted(
            "\n".join(
                img[i : i + 80] for img in cards.column("image").to_pylist() for i in range(0, len(img), 80)
            )
            or "(no cards match)"
        )
        st.download_button(
            f"Download {path.rsplit('/', 1)[-1]}",
            data=lambda: browse.file_bytes(scope, path),
            file_name=path.rsplit("/", 1)[-1],
            mime="application/fits",
            icon=":material/download:",
            key="download_file",
            on_click="ignore",
        )
    with tab_p:
        # (its widgets, pixels and flag form only while it is open: hidden, they were a fifth of the
        # browser's work on every Dataset page, #18)
        if tab_p.open is not False:
            pictures, flagging = st.columns([3, 1])
            with pictures:
                previews(ok, first if wanted in ok else preview.first_image(ok), str(d["detector"]))
            with flagging:
                st.markdown("**Flag an anomaly**")
                if scope.viewer.logged_in and scope.viewer.team:
                    ui.anomaly_form("ds_flag", rootname=root)
                else:
                    st.caption("Flagging needs a logged-in WFC3 team member.")
    with tab_d:
        if tab_d.open is not False:  # (its queries run only while it is open)
            diff_tab(d, ok)
    with tab_v:
        if tab_v.open is False:
            st.stop()  # (the last tab: its query runs only while it is open)
        kw = st.text_input("Keyword", key="hist_kw", placeholder="CAL_VER, PFLTFILE, CRVAL1, …")
        hist = history.dataset_history(scope, root, kw).to_pandas()
        versions = hist[hist["kind"] == "file"] if len(hist) else hist
        st.caption(
            f"{len(versions)} versions recorded, {len(hist) - len(versions)} card changes · a version is "
            "an ingest that found the file changed; old_snapshot reads the lake before it (ql sql --as-of)"
            if len(hist)
            else "No change recorded since these files were first ingested."
        )
        if len(hist):
            st.dataframe(hist, hide_index=True, width="stretch")
