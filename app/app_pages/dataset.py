"""Dataset: its files, a header viewer for every HDU (search, repeated/HISTORY cards, diff), previews,
downloads, and its anomaly flags."""

import pandas as pd
import streamlit as st
import ui

from app.data import anomaly, browse, headerview, preview

st.title("Dataset")

with ui.shown_errors():
    scope = ui.scope()
    root = (
        st.text_input(
            "Rootname", value=st.query_params.get("rootname", ""), key="ds_rootname", placeholder="ib6v01ijq"
        )
        .strip()
        .lower()
    )
    if not root:
        st.info("Enter a rootname, or pick a dataset on the Browse or Query page.")
        st.stop()
    st.query_params["rootname"] = root
    d = browse.dataset(scope, root)
    st.subheader(f"{root} · {d['detector']} {d['filter']} · {d['targname']}")
    st.caption(
        f"observed {d['date_obs']} {d['time_obs'] or ''} UT · PI {d['pr_inv_l'] or '?'} · "
        f"OBSTYPE {d['obstype'] or '?'} · association {d['asn_id'] or 'none'}"
    )
    c = st.columns(5)
    c[0].metric("Proposal", d["proposid"])
    c[1].metric("Visit", d["visit"])
    c[2].metric("EXPTIME", f"{d['exptime']:g} s" if d["exptime"] is not None else "?")
    c[3].metric("IMAGETYP", d["imagetyp"] or "?")
    c[4].metric("Aperture", d["aperture"] or "?")
    flags = anomaly.current(scope, rootname=root).to_pandas()
    if len(flags):
        st.warning(
            "Flagged: " + ", ".join(anomaly.ANOMALY_TYPES[a] for a in flags["anomaly"]),
            icon=":material/flag:",
        )
    st.page_link(
        "app_pages/anomalies.py",
        label="Flag an anomaly",
        query_params={"rootname": root},
        icon=":material/flag:",
    )

    files = browse.files(scope, root).to_pandas()
    st.dataframe(
        files.assign(
            size=[ui.human_bytes(s) for s in files["size"]],
            mtime=pd.to_datetime(files["mtime"], unit="s", utc=True).dt.strftime("%Y-%m-%d %H:%M"),
        ),
        hide_index=True,
        width="stretch",
    )
    ok = files[files["status"] == "ok"]["path"].tolist()
    if not ok:
        st.stop()
    # ?file=<path> opens that file in the header and preview tabs (shareable links)
    wanted = st.query_params.get("file")
    first = ok.index(wanted) if wanted in ok else 0

    tab_h, tab_p, tab_d = st.tabs(["Header", "Preview", "Diff"])
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
        st.caption(f"{cards.num_rows} cards")
        st.code(
            "\n".join(
                img[i : i + 80] for img in cards.column("image").to_pylist() for i in range(0, len(img), 80)
            )
            or "(no cards match)",
            language=None,
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
        with st.container(horizontal=True):
            ppath = st.selectbox("File", ok, index=first, key="pv_file")
            images = preview.image_hdus(scope, ppath)
            stretch = st.radio("Stretch", ["zscale", "log"], horizontal=True, key="pv_stretch")
        if not images:
            st.caption("This file has no image extensions.")
        cols = st.columns(max(1, min(len(images), 2)))
        for i, (h, label) in enumerate(images[:4]):
            with cols[i % len(cols)], ui.shown_errors():
                st.image(preview.preview(scope, ppath, h, stretch, 768), caption=label, output_format="PNG")
    with tab_d:
        others = st.text_input(
            "Compare with (path of any file in the lake)",
            key="diff_other",
            value=ok[1] if len(ok) > 1 else ok[0],
        )
        with st.container(horizontal=True):
            a = st.selectbox("File A", ok, key="diff_a")
            ha = st.number_input("HDU A", 0, 100, 0, key="diff_ha")
            hb = st.number_input("HDU B", 0, 100, 0, key="diff_hb")
        kd = headerview.keyword_diff(scope, a, int(ha), others, int(hb))
        st.caption(f"{kd.num_rows} keywords differ")
        st.dataframe(kd.to_pandas(), hide_index=True, width="stretch")
        st.code(headerview.diff(scope, a, int(ha), others, int(hb)) or "(identical)", language="diff")
