"""Every page of the site under Streamlit's AppTest (no browser), as team member, outsider and guest."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from lake.access import read_sql

APP = str(Path(__file__).resolve().parent.parent / "app" / "streamlit_app.py")
PAGES = ["home", "browse", "dataset", "search", "query", "keywords", "anomalies", "monitors", "jobs"]
USERS: dict[str, dict[str, Any]] = {
    "team": {"is_logged_in": True, "email": "alice@stsci.edu", "name": "Alice", "groups": ["wfc3-team"]},
    "outsider": {"is_logged_in": True, "email": "bob@example.org", "name": "Bob", "groups": []},
    "guest": {"is_logged_in": False},
}


@pytest.fixture(autouse=True)
def _site_env(site_lake: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("QUICKLAKE_LAKE", str(site_lake["lake"]))
    monkeypatch.setenv("QUICKLAKE_ARCHIVE", str(site_lake["archive"]))
    # AppTest runs the script in this process: caches would leak between tests
    st.cache_data.clear()
    st.cache_resource.clear()
    yield


def page(name: str, who: str = "team", **params: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.user = USERS[who]
    at.run()
    at.switch_page(f"app_pages/{name}.py")
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    parts = [*(m.value for m in at.markdown), *(c.value for c in at.caption), *(i.value for i in at.info)]
    parts += [*(e.value for e in at.error), *(s.value for s in at.success), *(w.value for w in at.warning)]
    return "\n".join(str(p) for p in parts)


def pre(at: AppTest) -> list[str]:
    """The text of each preformatted block (a header, a log: ui.preformatted) of the page."""
    import html
    import re

    blocks = [h.value for h in at.get("html") if 'class="ql-text"' in h.value]
    return [html.unescape(re.sub(r"^<pre[^>]*>|</pre>$", "", b)) for b in blocks]


def secret_root(site_lake: dict[str, Any], detector: str = "UVIS") -> str:
    t = read_sql(
        f"SELECT rootname FROM master WHERE proposid = {site_lake['secret']} AND detector = '{detector}' "
        "AND rootname NOT LIKE '%0' ORDER BY rootname LIMIT 1",
        site_lake["lake"],
    )
    return str(t.column(0)[0].as_py())


def dark_root(site_lake: dict[str, Any]) -> str:
    t = read_sql(
        "SELECT rootname FROM master WHERE detector = 'UVIS' AND imagetyp = 'DARK' ORDER BY rootname LIMIT 1",
        site_lake["lake"],
    )
    return str(t.column(0)[0].as_py())


def _array(v: Any) -> np.ndarray:
    """A plotly JSON array: a list, or ``{dtype, bdata, shape}`` (base64 of the raw numbers)."""
    if not isinstance(v, dict):
        return np.asarray(v)
    a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    return a.reshape([int(n) for n in v["shape"].split(",")]) if "shape" in v else a


def viewer(at: AppTest) -> dict[str, Any]:
    """The preview viewer's heatmap as the browser gets it: z, x, y, limits, colour bar title, hover."""
    charts = at.get("plotly_chart")
    assert len(charts) == 1, texts(at)
    spec = json.loads(charts[0].proto.spec)  # type: ignore[attr-defined]
    trace = spec["data"][0]
    assert trace["type"] == "heatmap"
    return {
        **trace,
        "z": _array(trace["z"]),
        "x": _array(trace["x"]),
        "y": _array(trace["y"]),
        "unit": trace["colorbar"]["title"]["text"],
    }


def assert_file_pixels(h: dict[str, Any], fits_file: Path, hdu: int) -> None:
    """The viewer's values are the file's own pixels at the drawn (1-based) columns x and rows y."""
    import fitsio

    full = fitsio.read(str(fits_file), ext=hdu)
    assert h["z"].shape == (len(h["y"]), len(h["x"]))
    assert np.array_equal(h["z"], full[np.ix_(h["y"] - 1, h["x"] - 1)].astype(np.float32), equal_nan=True)


@pytest.mark.parametrize("who", list(USERS))
@pytest.mark.parametrize("name", PAGES)
def test_every_page_renders(name: str, who: str) -> None:
    at = page(name, who)
    assert at.title[0].value in {"Quicklake", name.capitalize()}


def test_home_totals_depend_on_role() -> None:
    def datasets(at: AppTest) -> int:
        return int(next(m.value for m in at.metric if m.label == "Datasets").replace(",", ""))

    team, guest = page("home", "team"), page("home", "guest")
    assert datasets(guest) < datasets(team)
    assert "Signed in as **alice@stsci.edu**" in "\n".join(m.value for m in team.sidebar.markdown)
    assert "for WFC3 team members" in texts(guest) and "for WFC3 team members" not in texts(team)
    assert any(df.value.shape[0] >= 11 for df in team.dataframe)  # the job board
    # files by detector and type: a bar per detector, coloured by type (a Vega-Lite chart)
    spec = json.loads(team.get("vega_lite_chart")[0].proto.spec)
    assert spec["mark"] == "bar" and spec["encoding"]["color"]["field"] == "filetype"


def test_browse_proposal_visit_datasets(site_lake: dict[str, Any]) -> None:
    at = page("browse")
    prop = site_lake["secret"]
    # proposals: a page of links to each one's Browse (most datasets first), as HTML, not a grid
    listed = small_tables(at)[0]
    assert "browse?browse_proposal=" in listed and not at.dataframe
    at.text_input(key="browse_proposal").input(str(prop)).run()
    visit = at.selectbox(key="browse_visit").options[1]
    at.selectbox(key="browse_visit").set_value(visit).run()
    assert not at.exception
    table = small_tables(at)[-1]
    # (each dataset links to its page, its proposal to its Browse)
    rows = re.findall(r'<a href="dataset\?rootname=(\w+)">', table)
    assert rows and len(rows) == len(re.findall(r"<tr>", table)) - 1
    assert set(re.findall(r'href="(browse\?[^"]+)"', table)) == {f"browse?browse_proposal={prop}"}
    want = read_sql(
        f"SELECT rootname FROM master WHERE proposid = {prop} AND visit = '{visit}'", site_lake["lake"]
    )
    assert set(rows) <= set(want.column(0).to_pylist())
    # a guest cannot pick the proprietary proposal: told so, shown every proposal they may see
    guest = page("browse", "guest", browse_proposal=str(prop))
    assert not guest.exception and f"No proposal '{prop}'" in guest.warning[0].value
    assert f'browse_proposal={prop}"' not in "".join(small_tables(guest))


def small_tables(at: AppTest) -> list[str]:
    """The page's small HTML tables (``ui.small_table``), in order."""
    return [h.value for h in at.get("html") if 'class="ql-small"' in h.value]


def _shown_count(at: AppTest) -> int:
    line = next(c.value for c in at.caption if " datasets · " in c.value)
    return int(line.split()[0].replace(",", ""))


def test_browse_facets_of_many_values_are_drop_downs() -> None:
    """Filter, proposal and target facets are one drop-down each (values with counts): picking one
    narrows the result to its count and puts it in the URL; a new session from the URL shows the same."""
    at = page("browse")
    assert {s.key for s in at.selectbox} >= {"bf_pick_filter", "bf_pick_proposal", "bf_pick_target"}
    assert {p.key for p in at.get("button_group")} == {"bf_pill_detector", "bf_pill_filetype", "bf_pill_year"}
    pick = at.selectbox(key="bf_pick_filter")
    assert pick.options[0] == "any" and pick.value is None
    label = pick.options[1]
    value, n = label.rsplit(" (", 1)
    pick.set_value(value).run()
    assert not at.exception
    assert _shown_count(at) == int(n.rstrip(")").replace(",", ""))
    assert at.query_params["bf_filter"] == value
    again = page("browse", bf_filter=value)
    assert again.selectbox(key="bf_pick_filter").value == value and _shown_count(again) == _shown_count(at)


def test_browse_thumbnails_for_darks() -> None:
    at = page("browse")
    at.toggle(key="browse_filters").set_value(True).run()
    at.selectbox(key="browse_detector").set_value("UVIS").run()
    at.text_input(key="browse_target").input("DARK").run()
    assert not at.exception
    grid = cards(at)
    facts = re.findall(r'<div class="ql-facts">([^<]*)</div>', grid)
    assert facts and all(f.startswith("UVIS") for f in facts)
    # darks have pixels in the sparse archive, so they get thumbnails, their size given (no reflow)
    assert re.search(r'<img src="data:image/png;base64,[^"]+" width="\d+" height="\d+"', grid)
    assert len(re.findall(r'class="ql-card"', grid)) == len(facts)


def test_browse_filters_drawn_on_demand_and_kept_from_the_url() -> None:
    """The filter inputs are drawn only when asked for, or while one is set in the URL: closing them
    keeps the filter, and a link with a filter shows and applies it."""
    at = page("browse")
    everything = _shown_count(at)
    assert "browse_detector" not in {s.key for s in at.selectbox}
    at.toggle(key="browse_filters").set_value(True).run()
    at.selectbox(key="browse_detector").set_value("IR").run()
    ir = _shown_count(at)
    assert 0 < ir < everything
    at.toggle(key="browse_filters").set_value(False).run()
    assert _shown_count(at) == ir and at.selectbox(key="browse_detector").value == "IR"
    shared = page("browse", browse_detector="IR")
    assert _shown_count(shared) == ir and shared.selectbox(key="browse_detector").value == "IR"
    assert "Filters (shown while one is set)" in texts(shared)


def cards(at: AppTest) -> str:
    """Browse's thumbnail cards (one block of HTML)."""
    return next(h.value for h in at.get("html") if 'class="ql-cards"' in h.value)


def test_browse_cards_say_why_there_is_no_picture_and_show_flags(site_lake: dict[str, Any]) -> None:
    """A dataset without pixels says so in words (no broken image); a flagged one has its badge; each
    card links to the Dataset page."""
    from app.data import anomaly
    from app.data.scope import Scope
    from app.data.viewer import Viewer

    blank = (
        read_sql(
            "SELECT rootname FROM files GROUP BY rootname HAVING count(*) FILTER (WHERE filetype IN "
            "('flt', 'flc', 'raw', 'ima')) = 0 AND count(*) FILTER (WHERE filetype IN ('drz', 'drc')) > 0 "
            "ORDER BY 1 LIMIT 1",
            site_lake["lake"],
        )
        .column(0)[0]
        .as_py()
    )
    team = Scope(site_lake["lake"], Viewer("alice@stsci.edu", team=True))
    anomaly.flag(team, blank, "ghost", "a ghost, in words")
    try:
        sql = read_sql(f"SELECT proposid, visit FROM master WHERE rootname = '{blank}'", site_lake["lake"])
        d = sql.to_pylist()[0]
        at = page("browse", browse_proposal=str(d["proposid"]), browse_visit=str(d["visit"]))
        card = next(c for c in cards(at).split('<div class="ql-card">') if f">{blank}</a>" in c)
        assert "no pixels to show" in card and "<img" not in card
        assert "🚩 Ghost" in card and "alice" not in cards(at)
        assert f'href="dataset?rootname={blank}"' in card
    finally:
        anomaly.unflag(team, blank, "ghost", "test over")


def test_dataset_header_search_and_preview(site_lake: dict[str, Any]) -> None:
    root = dark_root(site_lake)
    at = page("dataset", rootname=root)
    assert root in at.subheader[0].value
    header = pre(at)[0]
    assert header.startswith("SIMPLE  =") and f"ROOTNAME= '{root}" in header
    at.text_input(key="hdr_search").input("EXPTIME").run()
    assert all("EXPTIME" in ln for ln in pre(at)[0].splitlines())
    raw = next(o for o in at.selectbox(key="hdr_file").options if o.endswith("_raw.fits"))
    assert not at.image  # previews are drawn only while their tab is open
    assert not at.get("plotly_chart")
    keys = {s.key for s in at.selectbox}
    assert not {"pv_file", "ds_flag_type"} & keys and not any(k.startswith("pv_hdu") for k in keys)
    # the files, and the five facts of the dataset, each as one block
    assert any("<table" in h.value and "_raw.fits" in h.value for h in at.get("html"))
    assert any("EXPTIME" in h.value and "IMAGETYP" in h.value for h in at.get("html"))
    shown = page("dataset", rootname=root, ds_tab="Preview", file=raw)
    assert len(pv_hdu(shown).options) == 2  # the raw's SCI extensions, one per chip
    assert pv_hdu(shown).label == "Extension"  # (a UVIS file has no reads to pick)
    diff = page("dataset", rootname=root, ds_tab="Diff")
    diff.text_input(key="diff_other").input(diff.selectbox(key="diff_a").options[-1]).run()
    assert not diff.exception and "keywords differ" in texts(diff)


def pv_hdu(at: AppTest) -> Any:
    """The preview's extension picker (a widget of each file: its labels are the file's)."""
    return next(s for s in at.selectbox if (s.key or "").startswith("pv_hdu_"))


def test_dataset_preview_viewer(site_lake: dict[str, Any]) -> None:
    """The viewer gets the file's pixels at the drawn positions, at most 512 x 512 of them, with a colour
    bar in BUNIT, a stretch choice and a full-resolution region; a blank file says so in words."""
    import fitsio

    from app.data.preview import row_mask

    root = dark_root(site_lake)
    at = page("dataset", rootname=root, ds_tab="Preview")
    raw = next(o for o in at.selectbox(key="pv_file").options if o.endswith("_raw.fits"))
    at.selectbox(key="pv_file").set_value(raw).run()
    assert at.radio(key="pv_stretch").options == ["zscale", "log", "linear"]
    fits_file = Path(site_lake["archive"]) / raw
    hdu = int(pv_hdu(at).options[1].split(":")[0])  # the second chip ("4: SCI,2 (…)")
    pv_hdu(at).set_value(hdu).run()
    whole = viewer(at)
    ny, nx = fitsio.FITS(str(fits_file))[hdu].get_dims()
    assert max(ny, nx) > 512 and max(whole["z"].shape) <= 512  # decimated, never the whole image
    assert whole["x"][0] == 1 and whole["y"][0] == 1 and whole["x"][1] > 2  # every k-th pixel
    assert_file_pixels(whole, fits_file, hdu)
    head = fitsio.read_header(str(fits_file), ext=hdu)
    bunit = head.get("BUNIT")
    # a generated sparse file says which rows it simulated (the rest is zeros, not a broken image)
    said = [c.value for c in at.caption if "generated sparse file" in c.value]
    if "QLROWS" in head:
        assert len(said) == 1 and f"only rows {head['QLROWS'].strip()} are simulated" in said[0], said
    else:
        assert not said
    assert whole["unit"] == (bunit.strip() if bunit else "(no BUNIT)") and "%{z" in whole["hovertemplate"]
    zscale = (whole["zmin"], whole["zmax"])
    at.radio(key="pv_stretch").set_value("linear").run()
    # (a sparse file's stretch is set on its simulated rows: the rest is an offset of no signal)
    drawn = whole["z"][row_mask(head["QLROWS"], whole["y"])] if "QLROWS" in head else whole["z"]
    finite = drawn[np.isfinite(drawn)]
    assert (viewer(at)["zmin"], viewer(at)["zmax"]) == pytest.approx((finite.min(), finite.max()))
    assert (viewer(at)["zmin"], viewer(at)["zmax"]) != pytest.approx(zscale)
    at.radio(key="pv_stretch").set_value("log").run()
    assert viewer(at)["colorscale"] != [[0.0, "rgb(0,0,0)"], [1.0, "rgb(255,255,255)"]]
    # a region at full resolution: every pixel of it
    at.text_input(key="pv_region").input("101:400,51:250").run()
    cut = viewer(at)
    assert list(cut["x"]) == list(range(101, 401)) and list(cut["y"]) == list(range(51, 251))
    assert_file_pixels(cut, fits_file, hdu)
    # a region larger than 512 x 512 is decimated too
    at.text_input(key="pv_region").input(f"1:{nx},1:{ny}").run()
    assert max(viewer(at)["z"].shape) <= 512
    at.text_input(key="pv_region").input("nonsense").run()
    assert "x0:x1,y0:y1" in texts(at) and not at.get("plotly_chart")
    # a blank (header-only) drizzled file: words, no chart
    drz = next((o for o in at.selectbox(key="pv_file").options if o.endswith("_drz.fits")), None)
    if drz is None:
        drz = (
            read_sql("SELECT path FROM files WHERE filetype = 'drz' ORDER BY path LIMIT 1", site_lake["lake"])
            .column(0)[0]
            .as_py()
        )
        at = page("dataset", rootname=drz.rsplit("/", 1)[-1][:9], ds_tab="Preview", file=drz)
    else:
        at.text_input(key="pv_region").input("").run()
        at.selectbox(key="pv_file").set_value(drz).run()
    assert "nothing to preview" in texts(at) and not at.get("plotly_chart")
    assert any("nothing to preview" in i.value for i in at.info) and not at.error  # (not a fault)


def test_dataset_proprietary_for_guest(site_lake: dict[str, Any]) -> None:
    root = secret_root(site_lake)
    guest = page("dataset", "guest", rootname=root)
    assert "proprietary" in texts(guest) and not pre(guest) and not guest.image
    assert not page("dataset", "guest", rootname=root, ds_tab="Preview").get("plotly_chart")
    outsider = page("dataset", "outsider", rootname=root)
    assert "proprietary" in texts(outsider) and not pre(outsider)
    team = page("dataset", "team", rootname=root)
    assert pre(team) and "proprietary" not in texts(team)


def test_query_console_form_and_plot(site_lake: dict[str, Any]) -> None:
    at = page("query", tab="SQL")  # (only the open tab's result is computed)
    at.button(key="sql_run").click().run()  # the original Quicklook query is the default
    assert not at.exception and "rows in" in texts(at)
    at.text_area(key="sql_text").input("SELECT * FROM read_csv('/etc/passwd')").run()
    at.button(key="sql_run").click().run()
    assert "disabled by configuration" in texts(at)
    at.text_area(key="sql_text").input("SELECT 1; DROP VIEW master").run()
    at.button(key="sql_run").click().run()
    assert "only a single SELECT" in texts(at)
    # a guest's console has no proprietary rows
    root = secret_root(site_lake)
    guest = page("query", "guest", tab="SQL")
    guest.text_area(key="sql_text").input(f"SELECT count(*) AS n FROM cards WHERE rootname = '{root}'").run()
    guest.button(key="sql_run").click().run()
    assert guest.dataframe[-1].value["n"].tolist() == [0]
    # the form
    at = page("query")
    at.selectbox[0].set_value("UVIS").run()
    at.button[0].click().run()  # form submit
    assert not at.exception
    assert any("datasets" in c.value for c in at.caption)
    at = page("query", tab="Plot")
    charts = at.get("vega_lite_chart")
    assert charts and '"x"' in charts[-1].proto.spec


def test_query_plot_colours_by_a_category_on_a_date_axis() -> None:
    import json

    at = page(
        "query", tab="Plot", plot_table="master", plot_x="expstart", plot_y="exptime", plot_colour="filter"
    )
    spec = json.loads(at.get("vega_lite_chart")[-1].proto.spec)
    enc = spec["encoding"]
    assert enc["x"]["type"] == "temporal" and enc["x"]["title"] == "expstart (date, UTC)"
    assert enc["y"]["type"] == "quantitative" and enc["y"]["title"] == "exptime (s)"  # the unit from schemas/
    assert enc["color"]["type"] == "nominal" and enc["color"]["title"] == "filter"
    assert at.selectbox(key="plot_colour").options[1:3] == ["filter", "detector"]  # categories first


def column_help(df: Any) -> dict[str, str]:
    """The header tooltips of a shown table (st.column_config help)."""
    import json

    cols = json.loads(df.proto.columns or "{}")
    return {k: v["help"] for k, v in cols.items() if v.get("help")}


def test_keyword_browser_and_column_help() -> None:
    at = page("keywords", kw_text="EXPTIME")
    assert "**EXPTIME**: exposure duration (seconds)--calculated · unit **s** · type double" in texts(at)
    df = at.dataframe[0].value
    assert df["keyword"].iloc[0] == "EXPTIME" and df["unit"].iloc[0] == "s"
    assert "uvisflt_0" in df["tables"].iloc[0] and "sql_text=SELECT" in df["query"].iloc[0]
    at.text_input(key="kw_text").input("gain").run()
    assert len(at.dataframe[0].value) >= 2 and "EXPTIME" not in set(at.dataframe[0].value["keyword"])
    # result tables carry the keyword docs as column help: Query form, Browse
    q = page("query", find="1", q_detector="UVIS")
    helps = column_help(result_table(q))
    assert helps["exptime"] == "EXPTIME · exposure duration (seconds)--calculated · s · double"
    assert "DATE-OBS" in helps["date_obs"]
    b = page("browse", browse_detector="UVIS")
    assert re.search(r'<th title="TARGNAME · [^"]+">targname</th>', small_tables(b)[-1])


def _in_range(widget: Any, value: tuple[date, date]) -> tuple[date, date]:
    """What Chromium's date picker lets through: a date outside [min, max] is refused ("Date set outside
    allowed range") and never reaches the server, which is how 2015 was silently dropped (#18)."""
    assert all(widget.min <= d <= widget.max for d in value), (widget.min, widget.max)
    return value


def test_query_form_and_browse_search_a_2015_date_range(site_lake: dict[str, Any]) -> None:
    lake = site_lake["lake"]
    jan, dec = date(2015, 1, 1), date(2015, 12, 31)
    want = (
        read_sql(
            "SELECT count(*) FROM master WHERE targname ILIKE '%NGC%' AND date_obs BETWEEN '2015-01-01' "
            "AND '2015-12-31'",
            lake,
        )
        .column(0)[0]
        .as_py()
    )
    every_ngc = (
        read_sql("SELECT count(*) FROM master WHERE targname ILIKE '%NGC%'", lake).column(0)[0].as_py()
    )
    assert 0 < want < every_ngc
    at = page("query")
    dates = at.date_input[0]
    assert dates.min == date(2009, 1, 1) and dates.max >= date.today() + timedelta(days=365)
    dates.set_value(_in_range(dates, (jan, dec)))
    at.text_input[0].input("NGC")
    at.button[0].click().run()  # form submit
    assert not at.exception
    assert f"{want:,} datasets · TARGNAME contains 'NGC', DATE-OBS 2015-01-01 to 2015-12-31" in texts(at)
    assert at.dataframe[0].value["date_obs"].between("2015-01-01", "2015-12-31").all()
    browse_page = page("browse")
    browse_page.toggle(key="browse_filters").set_value(True).run()
    picker = browse_page.date_input(key="browse_dates")
    assert picker.min == date(2009, 1, 1)
    picker.set_value(_in_range(picker, (jan, dec)))
    browse_page.text_input(key="browse_target").input("NGC").run()
    assert f"{want:,} datasets · TARGNAME contains 'NGC', DATE-OBS 2015-01-01 to 2015-12-31" in texts(
        browse_page
    )


def test_search_page_by_target_position_and_proposal(site_lake: dict[str, Any]) -> None:
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    from ingest.archivegen.generate import BOWTIE_PROGRAM

    lake = site_lake["lake"]
    m = read_sql("SELECT rootname, ra_targ, dec_targ, targname, proposid FROM master", lake).to_pandas()
    ngc = m[m.targname == "NGC4485"]
    centre = SkyCoord(ngc.ra_targ.median() * u.deg, ngc.dec_targ.median() * u.deg)
    sep = SkyCoord(m.ra_targ.to_numpy() * u.deg, m.dec_targ.to_numpy() * u.deg).separation(centre)
    want = set(m.rootname[sep <= 30 * u.deg])
    at = page("search")
    at.text_input(key="search_text").input("ngc 4485")
    at.text_input(key="search_radius").input("30 deg")
    at.button[0].click().run()
    assert not at.exception and "median pointing of target NGC4485" in texts(at)
    assert set(at.dataframe[0].value["dataset"].str.extract(r"rootname=(\w+)")[0]) == want
    # the columns ql search prints come first (the distance before the instrument's name)
    cols = list(at.dataframe[0].value.columns)
    assert cols.index("distance_arcsec") < cols.index("instrume") and cols.index("filter") < 8, cols
    assert not at.get("vega_lite_chart")  # (the sky map is drawn in its tab, only while it is open)
    sky = page("search", search_text="ngc 4485", search_radius="30 deg", search_tab="Sky map")
    chart = sky.get("vega_lite_chart")[-1].proto
    assert '"equalEarth"' in chart.spec and "RA in hours" in chart.spec  # (labelled: a map has no axes)
    assert '"type": "text"' in chart.spec and "12h" in str(chart)
    assert "Search results are ringed" in texts(sky) and sky.dataframe  # (the result too, in its tab)
    lamp = page("search", search_text=str(BOWTIE_PROGRAM), search_tab="Sky map")  # (internal flats only)
    assert "none of these points at the sky (internal exposures" in texts(lamp)
    # a position, then a bad one: an error, and no stale result
    at.text_input(key="search_text").input(centre.to_string("hmsdms"))
    at.button[0].click().run()
    assert f"{len(want):,} datasets within 108000 arcsec" in texts(at)
    at.text_input(key="search_text").input("12h30m +95d")
    at.button[0].click().run()
    assert [e.value for e in at.error] == ["position '12h30m +95d': Dec must be between -90 and +90 degrees"]
    assert not at.dataframe
    # the secret proposal: the team sees its datasets, a guest none
    secret = str(site_lake["secret"])
    at.text_input(key="search_text").input(secret)
    at.button[0].click().run()
    assert len(at.dataframe[0].value) == (m.proposid == int(secret)).sum() > 0
    guest = page("search", "guest")
    guest.text_input(key="search_text").input(secret)
    guest.button[0].click().run()
    assert len(guest.dataframe[0].value) == 0


def test_anomaly_flag_and_history(site_lake: dict[str, Any]) -> None:
    root = dark_root(site_lake)
    at = page("anomalies", rootname=root)
    at.selectbox(key="flag_type").set_value("persistence")
    at.text_area(key="flag_note").input("after a saturated star")
    at.button[0].click().run()
    assert not at.exception and f"{root} flagged as Persistence" in texts(at)
    hist = at.dataframe[-1].value
    assert ((hist["rootname"] == root) & (hist["anomaly"] == "persistence")).any()
    assert (hist["user"] == "alice@stsci.edu").all()
    guest = page("anomalies", "guest")
    assert "needs a logged-in WFC3 team member" in texts(guest) and not guest.text_area
    outsider = page("anomalies", "outsider")
    assert not outsider.text_area


def test_monitor_page_chart_and_empty_monitor() -> None:
    import json

    from monitors.registry import get

    at = page("monitors", monitor="uvis-darks")
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    # dates on the axis, the unit in its title (not MJD)
    point = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "point")
    assert point["encoding"]["x"]["type"] == "temporal" and "MJD" not in json.dumps(spec)
    assert point["encoding"]["y"]["title"] == "median dark current (e-/hr)"
    # what it measures in plain words; no method notes; the plots not hidden in a collapsed section
    said = texts(at)
    assert get("uvis-darks").description in said
    assert not any(x in said for x in ("[I]", "docs/background", "ISR", "§")) and not at.expander
    # the trend as a table with units and errors, not JSON; the results with dates
    assert not at.json
    trend = at.dataframe[0].value
    level = trend["dark current in 2009 (e-/hr)"]
    assert list(trend["amp"]) == ["A", "B", "C", "D"] and all(" ± " in v for v in level)
    assert all(len(v.split(" ± ")[1].replace(".", "").strip("0")) <= 2 for v in level)  # 2 figures of error
    results = at.dataframe[-1]
    assert json.loads(results.proto.columns)["median_dark"]["label"] == "median_dark (e-/hr)"  # units
    results = results.value
    assert len(results) >= 1 and str(results["expstart"].dtype).startswith("datetime")
    assert results["expstart"].min().year >= 2009
    # the filters are in the URL: a shared link shows the same rows, and the trend follows them
    one = page("monitors", monitor="uvis-darks", **{"mon_uvis-darks_amp": "A"})
    assert set(one.dataframe[-1].value["amp"]) == {"A"} and list(one.dataframe[0].value["amp"]) == ["A"]
    # filters named as an analyst names them, none on file paths; the line-fit sentence where lines are fitted
    labels = [m.label for m in at.multiselect]
    assert "Amplifier" in labels and not [x for x in labels if "_" in x or x.endswith("path")], labels
    assert "change per year" in said
    empty = page("monitors", monitor="ir-blobs")
    assert "No results yet" in texts(empty)


def test_monitor_page_thins_a_long_trend(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa

    from app.data import monitor_report as report

    def drawn(at: AppTest) -> int:
        c = at.get("vega_lite_chart")[0].proto
        raw = c.datasets[0].data.data if c.datasets else c.data.data
        return int(pa.ipc.open_stream(raw).read_all().num_rows)

    full = page("monitors", monitor="uvis-darks")
    n = drawn(full)
    assert f"Results ({n:,} rows" in " ".join(h.value for h in full.subheader)
    monkeypatch.setattr(report, "CHART_POINTS", max(1, n // 2))
    at = page("monitors", monitor="uvis-darks")
    assert drawn(at) < n and f"of {n:,}, over the whole time range" in texts(at)
    # all of them when asked (and the choice is in the URL)
    every = page("monitors", monitor="uvis-darks", **{"mon_uvis-darks_all": "true"})
    assert drawn(every) == n and "over the whole time range" not in texts(every)


def test_monitor_results_newest_first_then_more(monkeypatch: pytest.MonkeyPatch) -> None:
    """The results table shows the newest few at first; more, or all, when asked (in the URL); the
    trend chart is drawn on a canvas."""
    import re

    from app.data import monitor_report as report

    def shown(at: AppTest) -> list[Any]:
        return list(at.dataframe[-1].value["expstart"])

    full = page("monitors", monitor="uvis-darks")
    n = int(re.sub(r"\D", "", next(h.value for h in full.subheader if h.value.startswith("Results ("))))
    every = shown(page("monitors", monitor="uvis-darks", **{"mon_uvis-darks_rows": "all"}))
    assert len(every) == n >= 3 and every == sorted(every, reverse=True)
    assert shown(full) == every[: report.TABLE_ROWS]
    spec = json.loads(full.get("vega_lite_chart")[0].proto.spec)
    assert spec["usermeta"]["embedOptions"]["renderer"] == "canvas"
    monkeypatch.setattr(report, "TABLE_ROWS", 2)
    at = page("monitors", monitor="uvis-darks")
    assert shown(at) == every[:2]  # the newest
    assert at.get("button_group")[-1].value == "2"
    if n > 20:
        assert shown(page("monitors", monitor="uvis-darks", **{"mon_uvis-darks_rows": "20"})) == every[:20]


def jobs_board(site_lake: dict[str, Any]) -> list[dict[str, Any]]:
    from lake.jobs import board

    return board(site_lake["lake"])


def test_jobs_page_log_viewer(site_lake: dict[str, Any]) -> None:
    at = page("jobs")
    assert pre(at) and pre(at)[0].strip()
    # durations and runs per day, over dates
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    assert [s["encoding"]["x"]["type"] for s in specs] == ["temporal", "temporal"]
    # a run is picked by its job and start, not by its id alone
    job, when, _run_id = at.selectbox(key="jobs_run").options[0].split(" · ")
    assert job in {b["job"] for b in jobs_board(site_lake)} and when.endswith(" UTC")
    at.text_input(key="jobs_search").input("inputs selected").run()
    assert not at.exception
    guest = page("jobs", "guest")
    assert not pre(guest) and "for WFC3 team members" in texts(guest)


def test_pages_on_the_real_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real WFC3/ACS/STIS files: old enough to be public, with real pixels to preview."""
    import fitsio

    from ingest.run import ingest
    from tests.conftest import REAL

    lk = tmp_path / "lake"
    ingest(lk, str(REAL), scheduler="synchronous", template="{dir}/{stem}.fits")
    monkeypatch.setenv("QUICKLAKE_LAKE", str(lk))
    monkeypatch.setenv("QUICKLAKE_ARCHIVE", str(REAL))
    monkeypatch.setenv("QUICKLAKE_LAYOUT", "{dir}/{stem}.fits")
    st.cache_resource.clear()
    for who in ("team", "guest"):
        home = page("home", who)
        assert int(next(m.value for m in home.metric if m.label == "Files")) >= 10
        at = page("dataset", who, rootname="ibxy01z8q", file="wfc3/ibxy01z8q_ima.fits", ds_tab="Preview")
        assert "ROOTNAME= 'ibxy01z8q" in pre(at)[0]
        if who == "team":  # (a guest sees the same public file)
            # an IR ima: one SCI extension per read, picked by EXTVER, in the file's BUNIT
            reads = pv_hdu(at)
            assert reads.label.startswith("Read") and len(reads.options) >= 4
            assert all("EXTVER" in o for o in reads.options)
            ima = REAL / "wfc3" / "ibxy01z8q_ima.fits"
            sci = {h.get_extver(): h.get_extnum() for h in fitsio.FITS(str(ima)) if h.get_extname() == "SCI"}
            last = sci[max(sci)]  # the first read (EXTVER counts back from the last)
            reads.set_value(last).run()
            h = viewer(at)
            assert h["unit"] == "ELECTRONS/S"
            assert_file_pixels(h, ima, last)
        else:
            assert viewer(at)["z"].size
        page("browse", who)


def test_guest_split_follows_the_proposals_file(
    site_lake: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A changed proposals.csv changes what guests see at once, not at the next commit (#21)."""
    import os
    import re

    def datasets(at: AppTest) -> int:
        return int(next(m.value for m in at.metric if m.label == "Datasets").replace(",", ""))

    proposals = tmp_path / "proposals.csv"
    text = (site_lake["archive"] / "proposals.csv").read_text()
    proposals.write_text(text)
    monkeypatch.setenv("QUICKLAKE_PROPOSALS", str(proposals))
    before = datasets(page("home", "guest"))
    secret = site_lake["secret"]
    changed = re.sub(rf"^({secret},.*),1200$", r"\1,0", text, flags=re.MULTILINE)
    assert changed != text
    proposals.write_text(changed)
    os.utime(proposals, ns=(0, proposals.stat().st_mtime_ns + 10**9))  # (a later mtime, whatever the clock)
    after = datasets(page("home", "guest"))
    assert after > before  # the secret proposal's datasets became public


def test_saved_queries_per_user() -> None:
    at = page("query", "team", q_detector="UVIS", q_target="NGC", find="1")
    at.text_input(key="saved_name").input("UVIS  NGC").run()
    at.button(key="saved_save").click().run()
    assert "Saved as “UVIS NGC”" in texts(at)
    mine = saved_list(at)
    row = mine[mine["name"] == "UVIS NGC"].iloc[0]
    assert row["url"].startswith("query?") and "q_detector=UVIS" in row["url"] and "find=1" in row["url"]
    # the saved URL opens the same result in a new session
    params = dict(p.split("=", 1) for p in row["url"].split("?", 1)[1].split("&"))
    again = page("query", "team", **params)
    assert len(result_table(again).value) == len(result_table(at).value) > 0
    # another user has their own list; a guest cannot save
    bob = page("query", "outsider", q_detector="IR")
    bob.text_input(key="saved_name").input("IR").run()
    bob.button(key="saved_save").click().run()
    assert list(saved_list(bob)["name"]) == ["IR"]
    guest = page("query", "guest")
    assert "Log in to save queries" in texts(guest) and not [b for b in guest.button if b.key == "saved_save"]
    # deleted, it is gone
    at.selectbox(key="saved_pick").set_value("UVIS NGC").run()
    at.button(key="saved_delete").click().run()
    assert "“UVIS NGC” deleted" in texts(at) and "UVIS NGC" not in set(saved_list(at)["name"])


def result_table(at: AppTest) -> Any:
    """The last table of datasets on the page (its first column links to the Dataset page)."""
    return [df for df in at.dataframe if "dataset" in df.value.columns][-1]


def saved_list(at: AppTest) -> Any:
    """The Saved queries table (empty when the user has none)."""
    import pandas as pd

    for df in at.dataframe:
        if list(df.value.columns) == ["name", "url", "saved_at"]:
            return df.value
    return pd.DataFrame({"name": []})


def test_dataset_by_rootname_prefix_and_diff_by_file_name(site_lake: dict[str, Any]) -> None:
    roots = read_sql("SELECT rootname FROM master ORDER BY rootname", site_lake["lake"]).column(0).to_pylist()
    unique = next(r[:8] for r in roots if sum(x.startswith(r[:8]) for x in roots) == 1)
    several = next(r[:6] for r in roots if 1 < sum(x.startswith(r[:6]) for x in roots) <= 200)
    one = page("dataset", rootname=unique.upper())
    full = next(r for r in roots if r.startswith(unique))
    assert full in one.subheader[0].value and "the only dataset starting with" in texts(one)
    many = page("dataset", rootname=several)
    listed = result_table(many).value
    assert len(listed) == sum(r.startswith(several) for r in roots) and "pick one" in texts(many)
    # the diff takes a bare file name, as `ql header` does
    root = dark_root(site_lake)
    at = page("dataset", rootname=root, ds_tab="Diff")
    files = read_sql(f"SELECT path FROM files WHERE rootname = '{root}' AND status = 'ok'", site_lake["lake"])
    other = files.column(0).to_pylist()[-1].rsplit("/", 1)[-1]
    at.text_input(key="diff_other").input(other).run()
    assert not at.exception and not at.error and "keywords differ" in texts(at)
    at.text_input(key="diff_other").input("nosuchfile_raw.fits").run()
    assert "'nosuchfile_raw.fits' is not in the lake" in texts(at)


def test_diff_picks_file_b_from_the_visit_or_a_search(site_lake: dict[str, Any]) -> None:
    """File B is picked from a list: this dataset's files, then its visit's (what SQL says they are), or
    the files of the datasets a rootname prefix finds; the caption names both headers compared."""
    lake = site_lake["lake"]
    root = str(
        read_sql(
            "SELECT rootname FROM master WHERE (proposid, visit) IN (SELECT (proposid, visit) FROM master "
            "GROUP BY ALL HAVING count(*) BETWEEN 3 AND 20) ORDER BY rootname LIMIT 1",
            lake,
        )
        .column(0)[0]
        .as_py()
    )
    visit = read_sql(
        "SELECT f.path, f.rootname FROM files f JOIN master m USING (rootname) WHERE f.status = 'ok' AND "
        f"(m.proposid, m.visit) = (SELECT (proposid, visit) FROM master WHERE rootname = '{root}')",
        lake,
    ).to_pylist()
    at = page("dataset", rootname=root, ds_tab="Diff")
    picker = at.selectbox(key="diff_b")
    names = [o.split(" · ")[0] for o in picker.options]  # (a label: name · whose (detector filter date))
    assert sorted(names) == sorted(r["path"].rsplit("/", 1)[-1] for r in visit)
    n_own = sum(r["rootname"] == root for r in visit)
    assert {n.split("_")[0] for n in names[:n_own]} == {root}  # its own files first
    other = next(r["path"] for r in visit if r["rootname"] != root)
    assert " · this visit (" in picker.options[names.index(other.rsplit("/", 1)[-1])]
    a = at.selectbox(key="diff_a").value
    picker.set_value(other).run()
    assert not at.exception and f"keywords differ between {a}[0] and {other}[0]" in texts(at)
    # a search: the first letters of a rootname list every file of the datasets starting with them
    prefix = root[:6]
    want = read_sql(
        f"SELECT path FROM files WHERE status = 'ok' AND rootname LIKE '{prefix}%' ORDER BY path", lake
    )
    at.text_input(key="diff_other").input(prefix).run()
    found = [o.split(" · ")[0] for o in at.selectbox(key="diff_b").options]
    assert sorted(found) == sorted(p.rsplit("/", 1)[-1] for p in want.column(0).to_pylist())
    at.text_input(key="diff_other").input("zz9").run()
    assert "no file of a dataset starting with 'zz9'" in texts(at)


def test_the_year_facet_is_in_calendar_order(site_lake: dict[str, Any]) -> None:
    """The most frequent years (as every facet's values), shown in calendar order."""
    from app.data import facets
    from app.data.browse import DatasetFilter
    from app.data.scope import Scope
    from app.data.viewer import Viewer

    team = Scope(site_lake["lake"], Viewer("alice@stsci.edu", team=True))
    years = [int(v) for v, _ in facets.counts(team, DatasetFilter())["year"]]
    assert len(years) > 2 and years == sorted(years)
    many = facets.counts(team, DatasetFilter(), top=2)["year"]  # the two most frequent, in order
    every = dict(facets.counts(team, DatasetFilter(), top=100)["year"])
    assert [int(v) for v, _ in many] == sorted(int(v) for v in sorted(every, key=lambda v: -every[v])[:2])
    # every year by default (a facet of the dozen most frequent left holes in the mission's timeline)
    got, totals = facets.counts_and_totals(team, DatasetFilter())
    assert len(got["year"]) == totals["year"] == len(every)
    _, cut = facets.counts_and_totals(team, DatasetFilter(), top=2)
    assert cut["year"] == len(every)


def test_a_facet_cut_short_says_so() -> None:
    from app.ui import _facet_label

    assert _facet_label("Proposal", 12, 12) == "Proposal"
    assert _facet_label("Proposal", 300, 4512) == "Proposal (300 most frequent of 4,512)"


def test_the_sky_map_rings_no_internal_exposure() -> None:
    """Lamp flats and darks have RA_TARG = DEC_TARG = 0: a search finding them rings no place."""
    import pandas as pd

    from app.data.search import sky_map

    points = pd.DataFrame({"ra": [150.0], "dec": [2.0], "detector": ["UVIS"], "datasets": [3]})
    internal = pd.DataFrame({"ra": [0.0, 0.0], "dec": [0.0, 0.0]})
    assert len(sky_map(points, internal).layer) == len(sky_map(points).layer)
    pointed = pd.DataFrame({"ra": [0.0, 150.0], "dec": [0.0, 2.0]})
    assert len(sky_map(points, pointed).layer) == len(sky_map(points).layer) + 1


def test_job_board_order_colours_and_times() -> None:
    """Failures first, then running, stale, skipped, fresh, never run; every run status has a chart
    colour (a skipped run had none, and its bar was not drawn); times read in UTC without microseconds."""
    from app.ui import RUN_COLOURS, board_order, utc_time
    from lake.jobs import STATUSES

    board = [
        {"job": j, "latest_status": s, "colour": c}
        for j, s, c in [("a", "success", "green"), ("b", "never", "grey"), ("c", "failed", "red"),
                        ("d", "skipped", "grey"), ("e", "success", "lightgreen"), ("f", "running", "yellow")]
    ]  # fmt: skip
    assert [b["job"] for b in sorted(board, key=board_order)] == ["c", "f", "e", "d", "a", "b"]
    assert set(RUN_COLOURS) == set(STATUSES)
    assert utc_time("2026-12-01T08:30:22.750544+01:00") == "2026-12-01 07:30:22"


def test_preview_stretch_and_caption_follow_the_simulated_rows() -> None:
    """A sparse file's QLROWS (0-based ranges) pick the rows the stretch is set on; a file whose every row
    is simulated is a whole image."""
    import numpy as np

    from app.data.preview import covers, row_mask

    assert row_mask("2:4,6:7", np.arange(1, 9)).tolist() == [0, 0, 1, 1, 0, 0, 1, 0]
    assert covers("0:512,512:1014", 1014) and not covers("0:1014", 1024)
