"""The site as an analyst's daily tool (#18), in Debian's headless Chromium against a real ``ql app``:
shareable URLs, facets, navigation between associations and members, flagging beside the preview.

The server, OIDC provider and browser are those of ``tests/test_browser.py`` (same fixtures).
"""

from __future__ import annotations

import csv
import io
import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from app.data import anomaly
from app.data.scope import Scope
from app.data.viewer import GUEST, Viewer
from lake.access import read_sql
from tests.test_browser import alert_text, browser, goto, login, server, settle

pytestmark = [pytest.mark.browser, pytest.mark.slow]
__all__ = ["browser", "server"]  # (fixtures, imported for this module)

CAPTION = '[data-testid="stCaptionContainer"]'


def new_page(browser: Any) -> Any:
    return browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True).new_page()


def download(pg: Any, button: str = "CSV") -> str:
    """The text a download button of the page gives (the exact rows of a result)."""
    with pg.expect_download(timeout=60_000) as d:
        pg.get_by_role("button", name=button, exact=True).click()
    return Path(d.value.path()).read_text()


def count_shown(pg: Any) -> int:
    """The 'N datasets · …' caption beside a result ('1 dataset · …' for one)."""
    for text in pg.locator(CAPTION).all_inner_texts():
        m = re.match(r"([\d,]+) datasets? · ", text)
        if m:
            return int(m.group(1).replace(",", ""))
    raise AssertionError(f"no result count among {pg.locator(CAPTION).all_inner_texts()}")


def count_after_rerun(pg: Any, before: int, expected: int, timeout: float = 30.0) -> int:
    """The result count once the rerun a click started has drawn it: on a loaded machine the page
    may still show the previous count (``before``) for a while after it settled."""
    deadline = time.monotonic() + timeout
    while True:
        got = count_shown(pg)
        if got == expected or (got != before and time.monotonic() > deadline - timeout / 2):
            return got
        if time.monotonic() > deadline:
            return got
        pg.wait_for_timeout(250)


_PUBLIC: dict[str, Scope] = {}


def public(server: dict[str, Any]) -> Scope:
    """What a guest may see (the counts a guest's pages must show)."""
    key = str(server["lake"])
    if key not in _PUBLIC:
        _PUBLIC[key] = Scope(server["lake"], GUEST, server["cfg"])
    return _PUBLIC[key]


def test_a_shared_url_reproduces_form_sql_search_and_browse(server: dict[str, Any], browser: Any) -> None:
    base = server["url"]
    pg = new_page(browser)
    goto(pg, f"{base}/query")
    pg.locator('[data-testid="stSelectbox"]').filter(has_text="Detector").first.click()
    pg.get_by_role("option", name="UVIS", exact=True).click()
    pg.get_by_label("Target contains").fill("NGC")
    pg.get_by_role("button", name="Find datasets").click()
    settle(pg)
    rows = download(pg)
    n = count_shown(pg)
    assert "q_detector=UVIS" in pg.url and "q_target=NGC" in pg.url and "find=1" in pg.url
    want = public(server).sql(
        "SELECT count(*) AS n FROM master WHERE detector = 'UVIS' AND targname ILIKE '%NGC%'"
    )
    assert n == want.column("n")[0].as_py() > 0 and rows.count("\n") == n + 1

    # the URL in a fresh session (no cookie, no session state) gives the same rows
    fresh = new_page(browser)
    goto(fresh, pg.url)
    assert count_shown(fresh) == n and download(fresh) == rows

    # SQL: the text and the run are in the URL, and so is the tab
    goto(pg, f"{base}/query")
    pg.get_by_role("tab", name="SQL").click()
    settle(pg)
    box = pg.get_by_role("textbox", name="SQL", exact=True)
    box.fill("SELECT rootname, filter FROM master WHERE detector = 'IR' ORDER BY rootname")
    box.press("Control+Enter")
    settle(pg)
    pg.get_by_role("button", name="Run").click()
    settle(pg)
    pg.get_by_text("rows in").first.wait_for(timeout=30_000)
    sql_rows = download(pg)
    assert "tab=SQL" in pg.url and "run=1" in pg.url and "sql_text=" in pg.url
    fresh = new_page(browser)
    goto(fresh, pg.url)
    fresh.get_by_text("rows in").first.wait_for(timeout=30_000)
    assert download(fresh) == sql_rows and sql_rows.count("\n") > 2

    # Search and Browse: the box and the filters
    goto(pg, f"{base}/search")
    pg.get_by_label("Target, rootname, proposal or position").fill("NGC 4485")
    pg.get_by_role("button", name="Search").click()
    settle(pg)
    said = [t for t in pg.locator(CAPTION).all_inner_texts() if "datasets within" in t]
    fresh = new_page(browser)
    goto(fresh, pg.url)
    assert said and said[0] in fresh.locator(CAPTION).all_inner_texts()
    goto(fresh, f"{base}/browse?browse_detector=IR&browse_target=NGC")
    ir = public(server).sql(
        "SELECT count(*) AS n FROM master WHERE detector = 'IR' AND targname ILIKE '%NGC%'"
    )
    assert count_shown(fresh) == ir.column("n")[0].as_py()


def test_facets_narrow_a_result_to_the_count_shown(server: dict[str, Any], browser: Any) -> None:
    base = server["url"]
    pg = new_page(browser)
    goto(pg, f"{base}/query?q_target=NGC&find=1")
    before = count_shown(pg)
    for facet in ("Detector", "Year", "File type"):
        pill = pg.get_by_role("radiogroup", name=facet).get_by_role("radio").first
        label = pill.inner_text()
        shown = re.fullmatch(r".+ \(([\d,]+)\)", label).group(1)  # type: ignore[union-attr]
        pill.click()
        settle(pg)
        after = count_after_rerun(pg, before, int(shown.replace(",", "")))
        assert after == int(shown.replace(",", "")) <= before, (facet, label)
        assert pg.get_by_role("radiogroup", name=facet).get_by_role("radio", checked=True).count() == 1
        before = after
    # the facets picked are in the URL: a fresh session shows the same narrowed result
    rows = download(pg)
    fresh = new_page(browser)
    goto(fresh, pg.url)
    assert count_shown(fresh) == before and download(fresh) == rows
    # the same on Browse, checked against SQL
    goto(pg, f"{base}/browse")
    everything = count_shown(pg)
    pg.get_by_role("radiogroup", name="Detector").get_by_role("radio", name="IR (").click()
    settle(pg)
    ir = public(server).sql("SELECT count(*) AS n FROM master WHERE detector = 'IR'").column("n")[0]
    # (wait for the click's rerun: a settled page can still show the count before it)
    assert count_after_rerun(pg, everything, ir.as_py()) == ir.as_py()
    pg.wait_for_url("**bf_detector=IR**", timeout=30_000)
    # facets of many values (filter, proposal, target) are drop-downs of values with counts
    # (the last "Filter" drop-down: the first is the form's, in the collapsed Filters section)
    pg.locator('[data-testid="stSelectbox"]').filter(has_text="Filter").last.click()
    option = pg.get_by_role("option").nth(1)  # (the first is "any")
    value, shown = re.fullmatch(r"(.+) \(([\d,]+)\)", option.inner_text()).groups()  # type: ignore[union-attr]
    option.click()
    settle(pg)
    n = int(shown.replace(",", ""))
    assert count_after_rerun(pg, ir.as_py(), n) == n
    pg.wait_for_url(f"**bf_filter={value}**", timeout=30_000)


def _association(server: dict[str, Any]) -> tuple[str, list[str]]:
    """A public association with at least one member, and its members."""
    rows = (
        public(server)
        .sql(
            "SELECT lower(asn_id) AS asn, list(rootname ORDER BY date_obs, time_obs, rootname) AS members "
            "FROM master WHERE asn_id <> 'NONE' AND rootname <> lower(asn_id) "
            "AND lower(asn_id) IN (SELECT rootname FROM master) "
            "GROUP BY 1 ORDER BY len(members) DESC, asn LIMIT 1"
        )
        .to_pylist()
    )
    return rows[0]["asn"], rows[0]["members"]


def test_association_members_both_ways_and_the_visit(server: dict[str, Any], browser: Any) -> None:
    base = server["url"]
    asn, members = _association(server)
    pg = new_page(browser)
    goto(pg, f"{base}/dataset?rootname={asn}")
    pg.get_by_text(f"Association {asn}: {len(members)} members").wait_for(timeout=30_000)
    listed = pg.locator(".st-key-ds_members button").all_inner_texts()
    assert [t.strip().split()[-1] for t in listed] == members
    # a member, and back to its association
    pg.locator(".st-key-ds_members button").first.click()
    # (the click's rerun has run: on a loaded machine a settled page may still be the one before it)
    pg.wait_for_url(f"**/dataset?rootname={members[0]}*", timeout=30_000)
    settle(pg)
    expect(pg.locator("h3").first).to_contain_text(members[0], timeout=30_000)
    pg.get_by_role("button", name=f"Association {asn}").click()
    pg.wait_for_url(f"**/dataset?rootname={asn}*", timeout=30_000)
    settle(pg)
    expect(pg.locator("h3").first).to_contain_text(asn, timeout=30_000)
    # previous/next within the visit, in exposure order
    d = read_sql(f"SELECT proposid, visit FROM master WHERE rootname = '{asn}'", server["lake"]).to_pylist()[
        0
    ]
    visit = (
        public(server)
        .sql(
            f"SELECT rootname FROM master WHERE proposid = {d['proposid']} AND visit = '{d['visit']}' "
            "ORDER BY date_obs, time_obs, rootname"
        )
        .column(0)
        .to_pylist()
    )
    goto(pg, f"{base}/dataset?rootname={visit[0]}")
    for want in visit[1:3]:
        pg.get_by_role("button", name=f"Next: {want}").click()
        pg.wait_for_url(f"**/dataset?rootname={want}*", timeout=30_000)  # the click's rerun has run
        settle(pg)
        expect(pg.locator("h3").first).to_contain_text(want, timeout=30_000)
    # the proposal link goes to Browse with the proposal picked
    pg.get_by_role("link", name=f"Proposal {d['proposid']}").click()
    pg.wait_for_url(f"**browse_proposal={d['proposid']}*", timeout=30_000)
    settle(pg)
    pg.get_by_text(re.compile(r"[\d,]+ datasets? · ")).first.wait_for(timeout=30_000)  # the result drawn
    n = public(server).sql(f"SELECT count(*) AS n FROM master WHERE proposid = {d['proposid']}")
    assert count_shown(pg) == n.column("n")[0].as_py()


def test_flag_beside_the_preview_and_the_badge_in_browse(server: dict[str, Any], browser: Any) -> None:
    base = server["url"]
    root = _association(server)[1][0]
    d = read_sql(f"SELECT proposid, visit FROM master WHERE rootname = '{root}'", server["lake"]).to_pylist()[
        0
    ]
    pg = new_page(browser)
    login(pg, base, "alice")
    goto(pg, f"{base}/dataset?rootname={root}")
    pg.get_by_role("tab", name="Preview").click()
    form = pg.locator('[data-testid="stForm"]').filter(has_text="Anomaly")
    form.locator('[data-testid="stSelectbox"]').click()
    pg.get_by_role("option", name="Ghost", exact=True).click()
    form.get_by_label("Comment").fill("ring below the bright star, chip 2")
    form.get_by_role("button", name="Flag", exact=True).click()
    settle(pg)
    assert f"{root} flagged as Ghost" in alert_text(pg, "Success")
    assert form.get_by_label("Comment").input_value() == ""
    # a re-flag with an empty comment keeps the comment; the history has every version
    form.locator('[data-testid="stSelectbox"]').click()
    pg.get_by_role("option", name="Ghost", exact=True).click()
    form.get_by_role("button", name="Flag", exact=True).click()
    settle(pg)
    assert "ring below the bright star" in alert_text(pg, "Success")
    team = Scope(server["lake"], Viewer("x", team=True), server["cfg"])
    hist = anomaly.history(team, rootname=root, anomaly="ghost").to_pylist()
    assert [h["comment"] for h in hist[:2]] == ["ring below the bright star, chip 2"] * 2
    assert anomaly.current(team, rootname=root).to_pylist()[0]["comment"].startswith("ring below")

    # the Anomalies page keeps what was typed when the flag is refused
    goto(pg, f"{base}/anomalies")
    pg.get_by_label("Rootname").first.fill("nosuchroot")
    pg.get_by_label("Comment").fill("a long comment I do not want to type again")
    pg.get_by_role("button", name="Flag", exact=True).click()
    settle(pg)
    assert "nosuchroot" in alert_text(pg, "Error")
    assert pg.get_by_label("Comment").input_value() == "a long comment I do not want to type again"
    assert pg.get_by_label("Rootname").first.input_value() == "nosuchroot"

    # a guest sees the badge in Browse, and nowhere who flagged it
    guest = new_page(browser)
    goto(guest, f"{base}/browse?browse_proposal={d['proposid']}&browse_visit={d['visit']}")
    card = guest.locator(".ql-card").filter(has=guest.get_by_role("link", name=root, exact=True))
    assert "🚩 Ghost" in card.inner_text()
    assert "alice" not in guest.content()
    goto(guest, f"{base}/anomalies")
    assert "alice" not in guest.content()


def test_monitor_page_reads_as_an_analysts_page(server: dict[str, Any], browser: Any) -> None:
    """Item 7: the description in plain words, the trend plot first (not collapsed), the trend as a
    table (not JSON), no internal notes, in the browser a guest uses."""
    from monitors.registry import get

    pg = new_page(browser)
    goto(pg, f"{server['url']}/monitors?monitor=uvis-darks")
    pg.get_by_role("heading", name="Trend of the results shown").wait_for(timeout=60_000)
    body = pg.locator('[data-testid="stMain"]').inner_text()
    assert " ".join(get("uvis-darks").description.split()) in " ".join(body.split())
    assert not any(x in body for x in ("[I]", "docs/background", "ISR", "§", '"slope"', "MJD"))
    chart = pg.locator('[data-testid="stVegaLiteChart"]').first.bounding_box()
    trend = pg.get_by_role("heading", name="Trend of the results shown").bounding_box()
    results = pg.get_by_role("heading", name=re.compile(r"^Results \(")).bounding_box()
    assert chart and trend and results and chart["y"] < trend["y"] < results["y"]
    assert pg.get_by_text("Dark current per amplifier (a line fitted against time)").count() == 1
    assert (
        not pg.locator('[data-testid="stExpander"]').count()
        and not pg.locator('[data-testid="stJson"]').count()
    )


def type_dates(pg: Any, label: str, start: str, end: str, scope: Any = None) -> None:
    """Type a date range (YYYYMMDD each) into a ``st.date_input``'s year/month/day fields, as a user
    does (the picker refuses a date outside its allowed range: #18's silently dropped 2015)."""
    where = scope if scope is not None else pg
    for which, ymd in (("start", start), ("end", end)):
        where.get_by_role("spinbutton", name=f"year, {label} {which} date").click()
        pg.keyboard.type(ymd)


def test_a_2015_date_range_finds_what_sql_finds(server: dict[str, Any], browser: Any) -> None:
    """Done when (#18): a 2015 date range typed in Chromium gives the count SQL gives, in the Query form
    and in Browse."""
    base = server["url"]
    where = "targname ILIKE '%NGC%' AND date_obs BETWEEN '2015-01-01' AND '2015-12-31'"
    want = public(server).sql(f"SELECT count(*) AS n FROM master WHERE {where}").column("n")[0].as_py()
    every = public(server).sql("SELECT count(*) AS n FROM master WHERE targname ILIKE '%NGC%'")
    assert 0 < want < every.column("n")[0].as_py()  # (the dates narrow the result)
    pg = new_page(browser)
    goto(pg, f"{base}/query")
    type_dates(pg, "DATE-OBS between", "20150101", "20151231")
    pg.get_by_label("Target contains").fill("NGC")
    pg.get_by_role("button", name="Find datasets").click()
    pg.wait_for_url(re.compile(r"q_dates=2015-01-01&q_dates=2015-12-31.*find=1"), timeout=30_000)
    settle(pg)
    said = f"{want:,} datasets · TARGNAME contains 'NGC', DATE-OBS 2015-01-01 to 2015-12-31"
    pg.get_by_text(said).wait_for(timeout=30_000)
    assert count_shown(pg) == want
    rows = download(pg).splitlines()
    assert len(rows) == want + 1 and all(",2015-" in r for r in rows[1:])
    # Browse: the same range in its Filters
    goto(pg, f"{base}/browse")
    pg.get_by_text("Filters", exact=True).click()
    pg.get_by_label("Target contains").fill("NGC")
    pg.get_by_label("Target contains").press("Enter")
    pg.wait_for_url(re.compile(r"browse_target=NGC"), timeout=30_000)
    settle(pg)
    type_dates(pg, "DATE-OBS between", "20150101", "20151231")
    pg.get_by_label("Target contains").click()  # (leaving the date field commits it)
    pg.wait_for_url(re.compile(r"browse_dates=2015-12-31"), timeout=30_000)
    settle(pg)
    pg.get_by_text(said).wait_for(timeout=30_000)
    assert count_shown(pg) == want


def _within(server: dict[str, Any], ra: float, dec: float, radius_deg: float) -> set[str]:
    """The public datasets whose pointing is within the radius, by astropy's separation (not the lake's
    SQL or HEALPix)."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    m = public(server).sql("SELECT rootname, ra_targ, dec_targ FROM master WHERE ra_targ IS NOT NULL")
    m = m.to_pandas()
    sep = SkyCoord(m.ra_targ.to_numpy() * u.deg, m.dec_targ.to_numpy() * u.deg).separation(
        SkyCoord(ra * u.deg, dec * u.deg)
    )
    return set(m.rootname[sep.deg <= radius_deg])


def _search(pg: Any, base: str, text: str, radius: str) -> set[str]:
    """Search in the Search page's box; the rootnames of its CSV download."""
    goto(pg, f"{base}/search")
    pg.get_by_label("Target, rootname, proposal or position").fill(text)
    pg.get_by_label("Radius").fill(radius)
    pg.get_by_role("button", name="Search").click()
    pg.wait_for_url(re.compile(r"search_text="), timeout=30_000)
    settle(pg)
    pg.get_by_text(re.compile(r"[\d,]+ datasets within")).first.wait_for(timeout=30_000)
    return {r["rootname"] for r in csv.DictReader(io.StringIO(download(pg)))}


def test_cone_search_by_coordinates_and_by_name(server: dict[str, Any], browser: Any) -> None:
    """Done when (#18): a cone search by coordinates and by "NGC 4485" in Chromium returns the datasets
    whose pointing is within the radius, checked against astropy's distances; the name resolves to the
    median pointing of the target's datasets."""
    import numpy as np
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    base = server["url"]
    ngc = public(server).sql("SELECT ra_targ, dec_targ FROM master WHERE targname = 'NGC4485'").to_pandas()
    assert len(ngc)
    ra, dec = float(np.median(ngc.ra_targ)), float(np.median(ngc.dec_targ))
    pg = new_page(browser)
    want = _within(server, ra, dec, 0.5)
    assert want and _search(pg, base, "NGC 4485", "30 arcmin") == want
    pg.get_by_text("median pointing of target NGC4485").first.wait_for(timeout=30_000)
    # by coordinates, sexagesimal, a wider cone (other targets too)
    wide = _within(server, ra, dec, 20.0)
    assert len(wide) > len(want)
    centre = SkyCoord(ra * u.deg, dec * u.deg).to_string("hmsdms", precision=3)
    assert _search(pg, base, centre, "20 deg") == wide


def pick(pg: Any, label: str, text: str, option: Any = None) -> None:
    """Pick, in selectbox ``label``, the option ``option`` (a name or pattern; default: ``text``) among
    those that typing ``text`` leaves. The caller waits for the rerun the pick starts."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(3):
        settle(pg)  # (a rerun under way redraws the box and closes its list under the click)
        pg.get_by_role("combobox", name=label).click()
        pg.keyboard.type(text)
        try:
            pg.get_by_role("option", name=option or text).first.click(timeout=10_000)
            return
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            pg.keyboard.press("Escape")


def save_as(pg: Any, name: str) -> None:
    pg.get_by_label("Name").fill(name)
    pg.get_by_role("button", name="Save this query").click()
    pg.get_by_text(f"Saved as “{name}”").wait_for(timeout=30_000)
    settle(pg)


def open_saved_queries(pg: Any) -> None:
    pg.get_by_text("Saved queries", exact=True).click()
    pg.get_by_label("Name").wait_for(timeout=30_000)


def test_a_saved_query_is_listed_and_reruns_in_a_new_session(server: dict[str, Any], browser: Any) -> None:
    """Save the Query form (a 2015 date range: both dates are kept), see it in the user's list, open it
    from that list in a new session of the same user: the same result."""
    base = server["url"]
    stamp = time.monotonic_ns()  # (the lake's saved queries outlive a test)
    decoy, name = f"A decoy {stamp}", f"NGC in 2015 {stamp}"  # (the decoy is listed, and picked, first)
    pg = new_page(browser)
    login(pg, base, "alice")
    goto(pg, f"{base}/query?q_target=NGC&find=1")
    open_saved_queries(pg)
    save_as(pg, decoy)
    type_dates(pg, "DATE-OBS between", "20150101", "20151231")
    pg.get_by_role("button", name="Find datasets").click()
    pg.wait_for_url(re.compile(r"q_dates=2015-12-31"), timeout=30_000)
    settle(pg)
    pg.get_by_text("DATE-OBS 2015-01-01 to 2015-12-31").first.wait_for(timeout=30_000)
    n = count_shown(pg)
    save_as(pg, name)

    # another browser context: a new session, logged in again (tall: the list of saved queries opens
    # below the picker, at the bottom of the page)
    fresh = browser.new_context(viewport={"width": 1400, "height": 1800}).new_page()
    login(fresh, base, "alice")
    goto(fresh, f"{base}/query")
    open_saved_queries(fresh)
    pick(fresh, "Saved query", name, name)
    # (the link is the picked query's once the rerun the pick started has drawn it)
    expect(fresh.get_by_role("link", name="Open")).to_have_attribute(
        "href", re.compile(r"q_dates=2015-01-01&q_dates=2015-12-31"), timeout=30_000
    )
    with fresh.context.expect_page() as opened:
        fresh.get_by_role("link", name="Open").click()
    again = opened.value
    again.bring_to_front()
    again.wait_for_url(re.compile(r"q_dates=2015-01-01&q_dates=2015-12-31"), timeout=30_000)
    settle(again)
    again.get_by_text(re.compile(r"[\d,]+ datasets? · ")).first.wait_for(timeout=30_000)
    assert count_shown(again) == n and "DATE-OBS 2015-01-01 to 2015-12-31" in again.content()
    # (each user sees only their own: tests/test_app.py)


def test_keyword_browser_shows_doc_and_unit(server: dict[str, Any], browser: Any) -> None:
    """The Keywords page: a keyword's doc, unit and type from schemas/, and a search by description
    (among the keywords the lake has)."""
    from lake.keywords import keywords

    top = keywords("EXPTIME").to_pylist()[0]
    pg = new_page(browser)
    goto(pg, f"{server['url']}/keywords")
    box = pg.get_by_label("Keyword, or words of its description")
    box.fill("exptime")
    box.press("Enter")
    pg.wait_for_url(re.compile(r"kw_text=exptime"), timeout=30_000)
    settle(pg)
    pg.get_by_text(f"EXPTIME: {top['doc']}").wait_for(timeout=30_000)
    line = pg.get_by_text(f"EXPTIME: {top['doc']}").inner_text()
    assert top["unit"] == "s" and "unit s" in line and f"type {top['type']}" in line
    box.fill("gain")
    box.press("Enter")
    guest = public(server)  # (the page's viewer: its tables, with their columns)
    n = keywords("gain", present={t: guest.columns(t) for t in guest.tables}).num_rows
    pg.get_by_text(f"{n:,} keywords matching “gain”").wait_for(timeout=30_000)


def test_diff_picks_file_b_from_the_visit_and_by_search(server: dict[str, Any], browser: Any) -> None:
    """The two-header diff: file B picked from a list of the visit's files (no typing), then from the
    files a rootname prefix finds; the diff names both headers and is a link."""
    visit = (
        public(server)
        .sql(
            "SELECT f.path, f.rootname FROM files f JOIN master m USING (rootname) WHERE f.status = 'ok' "
            "AND (m.proposid, m.visit) = (SELECT (proposid, visit) FROM master GROUP BY proposid, visit "
            "HAVING count(*) BETWEEN 3 AND 20 ORDER BY proposid, visit LIMIT 1) ORDER BY f.path"
        )
        .to_pylist()
    )
    root = visit[0]["rootname"]
    other = next(r["path"] for r in visit if r["rootname"] != root)
    pg = new_page(browser)
    goto(pg, f"{server['url']}/dataset?rootname={root}&ds_tab=Diff")
    a = pg.get_by_role("combobox", name="File A").input_value()
    name = other.rsplit("/", 1)[-1]
    pick(pg, f"File B ({len(visit)} to pick from)", name, re.compile(re.escape(name) + " · this visit"))
    pg.wait_for_url(re.compile("diff_b="), timeout=30_000)
    settle(pg)
    expect(pg.get_by_role("combobox", name=re.compile(r"^File B"))).to_have_value(
        re.compile(re.escape(other.rsplit("/", 1)[-1]) + r" · this visit \("), timeout=30_000
    )
    pg.get_by_text(f"keywords differ between {a}[0] and {other}[0]").wait_for(timeout=30_000)
    assert f"+++ {other}[0]" in pg.locator('[data-testid="stCode"]').last.inner_text()
    # a search: a rootname's first letters list the files of every dataset starting with them
    prefix = root[:6]
    n = public(server).sql(
        f"SELECT count(*) AS n FROM files WHERE status = 'ok' AND rootname LIKE '{prefix}%'"
    )
    box = pg.get_by_label(re.compile(r"^Find file B"))
    box.fill(prefix)
    box.press("Enter")
    pg.wait_for_url(re.compile(f"diff_other={prefix}"), timeout=30_000)
    settle(pg)
    pg.get_by_text(f"File B ({n.column('n')[0].as_py()} to pick from)").wait_for(timeout=30_000)
