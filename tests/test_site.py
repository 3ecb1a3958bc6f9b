"""The site's logic (issue #6): who sees what, the SQL sandbox, anomalies, browse/header/preview queries.

Everything runs on a real generated lake (``site_lake``) with real DuckDB, Parquet and SQLite.
"""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from app.data import anomaly, browse, headerview, preview
from app.data.scope import Scope
from app.data.viewer import GUEST, Viewer, viewer_from_claims
from lake import jobs, proprietary
from lake.access import read_header
from lake.errors import AccessDenied, ConfigError, FitsError, QueryError

TEAM = Viewer(name="Alice", email="alice@stsci.edu", groups=("wfc3-team",), team=True)
OUTSIDER = Viewer(name="Bob", email="bob@example.org")


@pytest.fixture(scope="module")
def scopes(site_lake: dict[str, Any]) -> dict[str, Scope]:
    cfg = site_lake["cfg"]
    return {
        "team": Scope(site_lake["lake"], TEAM, cfg),
        "guest": Scope(site_lake["lake"], GUEST, cfg),
        "outsider": Scope(site_lake["lake"], OUTSIDER, cfg),
    }


def secret_rootnames(s: Scope, proposid: int) -> set[str]:
    return set(s.sql("SELECT rootname FROM master WHERE proposid = ?", [proposid]).column(0).to_pylist())


def test_viewer_from_claims() -> None:
    cfg = {"team_group": "wfc3-team", "team_members": "carol@stsci.edu, dave-sub"}
    assert viewer_from_claims({"is_logged_in": False}, cfg) == GUEST
    assert viewer_from_claims(None, cfg) == GUEST
    a = viewer_from_claims({"is_logged_in": True, "email": "a@x.org", "groups": ["wfc3-team"]}, cfg)
    assert a.team and a.logged_in and a.role == "team"
    b = viewer_from_claims({"is_logged_in": True, "email": "b@x.org", "groups": ["other"]}, cfg)
    assert b.logged_in and not b.team and b.role == "public"
    assert viewer_from_claims({"is_logged_in": True, "email": "Carol@stsci.edu"}, cfg).team
    assert viewer_from_claims({"is_logged_in": True, "sub": "dave-sub"}, cfg).team
    assert viewer_from_claims({"is_logged_in": True, "email": "e@x.org", "groups": "a, wfc3-team"}, cfg).team


def test_proprietary_periods(tmp_path: Path) -> None:
    (tmp_path / "proposals.csv").write_text("proposid,proprietary_months\n1,0\n2,12\n")
    cfg = {"archive": str(tmp_path), "proprietary_months": 6}
    assert proprietary.periods(cfg) == {1: 0.0, 2: 12.0}
    now = proprietary.now_mjd()
    master = pa.table(
        {
            "rootname": ["a", "b", "c", "d", "e"],
            "proposid": [1, 2, 2, 3, 3],
            "expstart": [now - 1, now - 300, now - 400, now - 100, None],
        }
    )
    # 1: no period; 2: 12 months (365.25 d); 3: default 6 months; unknown EXPSTART is never public
    assert sorted(proprietary.public_rootnames(master, cfg).to_pylist()) == ["a", "c"]
    (tmp_path / "proposals.csv").write_text("proposid,proprietary_months\nx,12\n")
    with pytest.raises(ConfigError, match="line 2"):
        proprietary.periods(cfg)
    with pytest.raises(ConfigError, match="not found"):
        proprietary.periods({"proposals": str(tmp_path / "nope.csv")})


def test_generator_writes_proposal_periods(site_lake: dict[str, Any]) -> None:
    from ingest.archivegen.generate import CAL_PROGRAMS

    per = proprietary.periods({"archive": str(site_lake["archive"])})
    assert per[site_lake["secret"]] == 1200
    assert all(per[p] == 0 for p, _ in CAL_PROGRAMS if p in per)
    assert set(per.values()) <= {0, 6, 12, 24, 1200}


def test_guest_sees_no_proprietary_row_in_any_table(
    scopes: dict[str, Scope], site_lake: dict[str, Any]
) -> None:
    team, guest = scopes["team"], scopes["guest"]
    secret = secret_rootnames(team, site_lake["secret"])
    assert secret and not secret & set(guest.public.to_pylist())
    secret_paths = set(
        team.sql("SELECT path FROM files WHERE rootname IN (SELECT unnest(?))", [list(secret)])
        .column(0)
        .to_pylist()
    )
    checked = 0
    for t in guest.tables:
        cols = guest.columns(t)
        if "rootname" in cols:
            got = set(guest.sql(f'SELECT DISTINCT rootname FROM "{t}"').column(0).to_pylist())
            assert not got & secret, t
            checked += 1
        if "path" in cols:
            got = set(guest.sql(f'SELECT DISTINCT path FROM "{t}"').column(0).to_pylist())
            assert not got & secret_paths, t
    assert checked >= 10
    # the team sees them, in the same tables
    for t in ("files", "cards", "uvisflt_0"):
        assert secret & set(team.sql(f"SELECT DISTINCT rootname FROM {t}").column(0).to_pylist()), t
    assert "job_runs" in team.tables and "job_runs" not in guest.tables
    # a logged-in user outside the team sees what a guest sees
    assert scopes["outsider"].public.to_pylist() == guest.public.to_pylist()
    assert browse.totals(guest)["datasets"] <= browse.totals(team)["datasets"] - len(secret)


HOSTILE = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM read_parquet('{lake}/warehouse/*/master/data/*/*.parquet')",
    "SELECT * FROM sqlite_scan('{lake}/state.sqlite', 'anomaly_events')",
    "COPY master TO '{tmp}/stolen.csv'",
    "EXPORT DATABASE '{tmp}/dump'",
    "ATTACH '{lake}/catalog.duckdb' AS c",
    "ATTACH ':memory:' AS m",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "RESET threads",
    "INSTALL httpfs",
    "LOAD httpfs",
    "CREATE TABLE t AS SELECT 1",
    "DROP VIEW master",
    "PRAGMA show_tables",
    "EXPLAIN ANALYZE COPY master TO '{tmp}/x.csv'",
    "SELECT 1; COPY master TO '{tmp}/y.csv'",
    "CALL pragma_version()",
]


@pytest.mark.parametrize("who", ["guest", "team"])
def test_hostile_sql_is_refused(
    scopes: dict[str, Scope], site_lake: dict[str, Any], tmp_path: Path, who: str
) -> None:
    s = scopes[who]
    for q in HOSTILE:
        sql = q.format(lake=site_lake["lake"], tmp=tmp_path)
        with pytest.raises((AccessDenied, QueryError)):
            s.console(sql)
    assert not list(tmp_path.iterdir())  # nothing was written
    assert s.console("SELECT count(*) AS n FROM master").table.num_rows == 1  # the connection still works


def test_console_row_cap_and_timeout(scopes: dict[str, Scope]) -> None:
    s = scopes["guest"]
    r = s.console("SELECT * FROM range(100)", max_rows=10)
    assert r.table.num_rows == 10 and r.truncated
    assert not s.console("SELECT * FROM range(5)", max_rows=10).truncated
    with pytest.raises(QueryError, match="interrupted"):
        s.console("SELECT count(*) FROM range(100000000) a, range(1000000) b", timeout=0.5)
    assert s.console("SELECT 42 AS x").table.column("x").to_pylist() == [42]


def test_guest_cannot_reach_proprietary_files(scopes: dict[str, Scope], site_lake: dict[str, Any]) -> None:
    team, guest = scopes["team"], scopes["guest"]
    root = sorted(secret_rootnames(team, site_lake["secret"]))[0]
    path = (
        team.sql("SELECT path FROM files WHERE rootname = ? ORDER BY path LIMIT 1", [root])
        .column(0)[0]
        .as_py()
    )
    for call in (
        lambda: browse.dataset(guest, root),
        lambda: browse.files(guest, root),
        lambda: browse.hdus(guest, path),
        lambda: browse.file_bytes(guest, path),
        lambda: headerview.cards(guest, path, 0),
        lambda: preview.preview(guest, path, 1),
        lambda: anomaly.current(guest, root).num_rows or guest.require_dataset(root),
    ):
        with pytest.raises(AccessDenied, match="proprietary"):
            call()
    assert browse.dataset(team, root)["proposid"] == site_lake["secret"]
    assert len(browse.file_bytes(team, path)) == team.require_file(path)["size"]


def test_anomaly_flags_history_and_rights(scopes: dict[str, Scope], site_lake: dict[str, Any]) -> None:
    team, guest = scopes["team"], scopes["guest"]
    public_root = sorted(guest.public.to_pylist())[0]
    secret_root = sorted(secret_rootnames(team, site_lake["secret"]))[0]
    with pytest.raises(AccessDenied, match="team members"):
        anomaly.flag(guest, public_root, "ghost")
    with pytest.raises(QueryError, match="unknown anomaly"):
        anomaly.flag(team, public_root, "martians")
    with pytest.raises(QueryError, match="needs a comment"):
        anomaly.flag(team, public_root, "other")
    with pytest.raises(AccessDenied, match="not in the lake"):
        anomaly.flag(team, "nosuch00q", "ghost")
    anomaly.flag(team, public_root, "satellite_trail", "across chip 1")
    anomaly.flag(team, public_root, "ghost")
    anomaly.flag(team, secret_root, "dragons_breath")
    anomaly.unflag(team, public_root, "ghost", "was a filter ghost")
    with pytest.raises(QueryError, match="nothing to unflag"):
        anomaly.unflag(team, public_root, "ghost")
    now = {(r["rootname"], r["anomaly"]) for r in anomaly.current(team).to_pylist()}
    assert (public_root, "satellite_trail") in now and (public_root, "ghost") not in now
    hist = anomaly.history(team, rootname=public_root).to_pylist()
    assert [(h["anomaly"], h["action"]) for h in hist][:3] == [
        ("ghost", "unflag"),
        ("ghost", "flag"),
        ("satellite_trail", "flag"),
    ]
    assert all(h["user"] == "alice@stsci.edu" and h["ts"] for h in hist)
    # guests see flags of public datasets only
    assert secret_root not in anomaly.history(guest).column("rootname").to_pylist()
    assert public_root in anomaly.current(guest).column("rootname").to_pylist()
    # the history cannot be edited, even directly
    con = sqlite3.connect(site_lake["lake"] / "state.sqlite")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE anomaly_events SET user = 'mallory'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM anomaly_events")
    con.close()


def test_browse_listing_and_filters(scopes: dict[str, Scope]) -> None:
    s = scopes["team"]
    props = browse.proposals(s).to_pylist()
    assert props and all(p["datasets"] >= 1 for p in props)
    p0 = props[0]["proposid"]
    v = browse.visits(s, p0).to_pylist()
    assert sum(x["datasets"] for x in v) == props[0]["datasets"]
    f = browse.DatasetFilter(detector="uvis", imagetyp="dark")
    rows = browse.datasets(s, f).to_pylist()
    assert rows and all(r["detector"] == "UVIS" and r["imagetyp"] == "DARK" for r in rows)
    assert browse.count_datasets(s, f) == len(rows)
    ngc = browse.datasets(
        s, browse.DatasetFilter(target="ngc", date_from=__import__("datetime").date(2015, 1, 1))
    ).to_pylist()
    assert all("NGC" in r["targname"] and r["date_obs"] >= "2015-01-01" for r in ngc)
    assert "UVIS" in browse.choices(s, "detector")
    with pytest.raises(QueryError):
        browse.choices(s, "path; DROP")
    by = browse.by_detector_and_type(s).to_pylist()
    assert sum(r["files"] for r in by) == browse.totals(s)["files"]


def test_header_view_matches_the_file(scopes: dict[str, Scope], site_lake: dict[str, Any]) -> None:
    from astropy.io import fits

    s = scopes["team"]
    path = (
        s.sql("SELECT path FROM files WHERE filetype = 'flt' AND detector = 'UVIS' ORDER BY path LIMIT 1")
        .column(0)[0]
        .as_py()
    )
    for hdu in (0, 1):
        text = headerview.text(s, path, hdu)
        assert text.splitlines() == read_header(path, hdu, site_lake["lake"])
        with fits.open(site_lake["archive"] / path) as hl:
            raw = hl[hdu].header.tostring(sep="\n", endcard=False, padding=False)
        assert text.splitlines() == [ln for ln in raw.splitlines()]
    hits = headerview.cards(s, path, 0, search="exptime").column("keyword").to_pylist()
    assert "EXPTIME" in hits
    rep = headerview.cards(s, path, 1, repeated_only=True).to_pylist()
    assert rep and all(r["repeats"] > 1 for r in rep)
    plain = headerview.cards(s, path, 0, commentary=False).column("value_type").to_pylist()
    assert "text" not in plain
    flc = path.replace("_flt.fits", "_flc.fits")
    d = headerview.diff(s, path, 0, flc, 0)
    assert "-FILENAME" in d and "+FILENAME" in d
    kd = headerview.keyword_diff(s, path, 0, flc, 0).to_pylist()
    assert "FILENAME" in [r["keyword"] for r in kd]


def test_a_preview_opens_a_file_with_an_image_first() -> None:
    """An association's files start with its asn table (no image): its preview opens the drizzled one."""
    from app.data.preview import first_image

    asn = ["1/V/ib0901010_asn.fits", "1/V/ib0901010_drc.fits", "1/V/ib0901010_drz.fits"]
    assert first_image(asn) == 1
    assert first_image(["1/V/x_flc.fits", "1/V/x_flt.fits", "1/V/x_raw.fits"]) == 0
    assert first_image(["1/V/x_spt.fits", "1/V/x_trl.fits"]) == 0


def test_preview_png_cached_and_blank(scopes: dict[str, Scope], site_lake: dict[str, Any]) -> None:
    from PIL import Image

    s = scopes["team"]
    path = (
        s.sql(
            "SELECT f.path FROM files f JOIN master m USING (rootname) WHERE f.filetype = 'raw' AND "
            "m.detector = 'UVIS' AND m.imagetyp = 'DARK' ORDER BY f.path LIMIT 1"
        )
        .column(0)[0]
        .as_py()
    )
    hdus = preview.image_hdus(s, path)
    assert [h for h, _ in hdus] == [1, 4]
    png = preview.preview(s, path, 1, "zscale", 256)
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and max(img.size) <= 256
    lo, hi = img.getextrema()
    assert hi > lo  # the dark's pixels show, not a flat image
    cached = list((site_lake["lake"] / "thumbnails").rglob("*.png"))
    assert cached and preview.preview(s, path, 1, "zscale", 256) == png
    assert preview.preview(s, path, 1, "log", 256) != png
    with pytest.raises(QueryError):
        preview.preview(s, path, 1, "sqrt", 256)  # type: ignore[arg-type]
    spt = path.replace("_raw.fits", "_spt.fits")
    assert preview.image_hdus(s, spt) == []
    blank = s.sql("SELECT path FROM files WHERE filetype = 'drz' ORDER BY path LIMIT 1").column(0)[0].as_py()
    with pytest.raises(FitsError, match="nothing to preview"):
        preview.preview(s, blank, 1)


def test_dataset_thumbnails_of_a_page(scopes: dict[str, Scope], site_lake: dict[str, Any]) -> None:
    """A Browse page's thumbnails from one query of their files: the same image as a dataset's own, its
    size read from the PNG; None for a dataset without pixels (only header-only drizzled products) and
    for one the viewer may not see."""
    from PIL import Image

    team, guest = scopes["team"], scopes["guest"]
    dark = (
        team.sql(
            "SELECT rootname FROM master WHERE detector = 'UVIS' AND imagetyp = 'DARK' ORDER BY 1 LIMIT 1"
        )
        .column(0)[0]
        .as_py()
    )
    blank = (
        team.sql(
            "SELECT rootname FROM files GROUP BY rootname HAVING count(*) FILTER (WHERE filetype IN "
            "('flt', 'flc', 'raw', 'ima')) = 0 AND count(*) FILTER (WHERE filetype IN ('drz', 'drc')) > 0 "
            "ORDER BY 1 LIMIT 1"
        )
        .column(0)[0]
        .as_py()
    )
    secret = sorted(secret_rootnames(team, site_lake["secret"]))[0]
    got = preview.dataset_thumbnails(team, [dark, blank, secret])
    assert list(got) == [dark, blank, secret]
    png = got[dark]
    assert png and png == preview.dataset_thumbnail(team, dark)
    assert preview.png_size(png) == Image.open(io.BytesIO(png)).size
    assert got[blank] is None and preview.dataset_thumbnail(team, blank) is None
    assert (
        got[secret] is not None
        or not team.sql(
            "SELECT 1 FROM files WHERE rootname = ? AND filetype IN ('flt', 'raw')", [secret]
        ).num_rows
    )
    assert preview.dataset_thumbnails(guest, [secret]) == {secret: None}  # its files are not the guest's
    with pytest.raises(AccessDenied):
        preview.dataset_thumbnail(guest, secret)
    with pytest.raises(ValueError, match="not a PNG"):
        preview.png_size(b"GIF89a" + bytes(30))


def test_jobs_history_and_log(site_lake: dict[str, Any]) -> None:
    lk = site_lake["lake"]
    h = jobs.history(lk).to_pylist()
    assert {r["job"] for r in h} >= {"uvis-darks", "check-filesystem"}
    assert all(r["duration_s"] is not None and r["duration_s"] >= 0 for r in h)
    run = site_lake["runs"]["uvis-darks"]
    text, n = jobs.log_text(lk, run.run_id, tail=3)
    assert n >= 1 and len(text.splitlines()) <= 3
    found, m = jobs.log_text(lk, run.run_id, tail=None, search="inputs selected")
    assert m >= 1 and all("inputs selected" in ln for ln in found.splitlines())
    board = {b["job"]: b for b in jobs.board(lk)}
    assert board["uvis-darks"]["colour"] == "green"


def test_monitor_report_scoped(scopes: dict[str, Scope]) -> None:
    from app.data import monitor_report as report

    team = report.report(scopes["team"], "uvis-darks")
    guest = report.report(scopes["guest"], "uvis-darks")
    assert team.results.num_rows > 0 and team.summary and team.pngs
    # the PNGs are drawn from every input: team only; the trend summary is of the rows each may see
    assert guest.results.num_rows <= team.results.num_rows and not guest.pngs
    own = report.get("uvis-darks").trend(guest.measured) if guest.measured.num_rows else {}
    assert json.dumps(guest.summary, default=float) == json.dumps(own, default=float)
    assert team.tables["Dark current per amplifier (a line fitted against time)"]
    spec = report.chart(team)
    assert spec is not None and len(spec["data"]["values"]) == team.results.num_rows
    assert all(v["date"] >= "2009" for v in spec["data"]["values"])  # EXPSTART as a date, not an MJD
    assert "chip" in team.groups
    one = report.report(scopes["team"], "uvis-darks", where={"chip": [1]})
    assert set(one.results.column("chip").to_pylist()) == {1}
    e = team.results.column("expstart").to_pylist()
    mid = sorted(e)[len(e) // 2]
    late = report.report(scopes["team"], "uvis-darks", mjd_range=(mid, max(e)))
    assert 0 < late.results.num_rows < team.results.num_rows
    assert report.results(scopes["team"], "ir-blobs").num_rows == 0  # never run here: empty, not an error


def test_monitor_chart_thinned(scopes: dict[str, Scope]) -> None:
    from app.data import monitor_report as report

    team = report.report(scopes["team"], "uvis-darks")
    t = team.results
    series = ["chip", "amp"]

    def by_series(tt: Any) -> dict[Any, list[float]]:
        out: dict[Any, list[float]] = {}
        for r in tt.select([*series, "expstart"]).to_pylist():
            out.setdefault((r["chip"], r["amp"]), []).append(r["expstart"])
        return out

    full, step = by_series(t), 3
    thin = report.thinned(t, series, -(-t.num_rows // step))
    assert thin.num_rows < t.num_rows and report.thinned(t, series, t.num_rows) is t
    # every series keeps every step-th of its rows, from its first (the newest): its share, its span
    for key, kept in by_series(thin).items():
        assert kept == full[key][::step]
    assert set(by_series(thin)) == set(full)
    spec = report.chart(team, max_points=thin.num_rows)
    assert spec is not None and len(spec["data"]["values"]) == thin.num_rows
    assert report.chart(team) is not None and len(report.chart(team)["data"]["values"]) == t.num_rows  # type: ignore[index]


def test_ql_app_command_line(site_lake: dict[str, Any], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from app import site
    from lake import settings
    from lake.cli import main

    cfg = {**settings.load({"lake": str(site_lake["lake"])}), "app_port": 8765}
    cmd = site.command(cfg)
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.port") + 1] == "8765"
    assert cmd[cmd.index("--client.showErrorDetails") + 1] == "none"
    # (a full GC after each run delayed every page; nothing on the site relies on magic)
    assert cmd[cmd.index("--runner.postScriptGC") + 1] == "false"
    assert cmd[cmd.index("--runner.magicEnabled") + 1] == "false"
    assert "--secrets.files" not in cmd
    secrets = tmp_path / "secrets.toml"
    secrets.write_text("[auth]\n")
    cmd = site.command({**cfg, "auth_secrets": str(secrets)})
    assert cmd[cmd.index("--secrets.files") + 1] == str(secrets)
    with pytest.raises(ConfigError, match="not a file"):
        site.command({**cfg, "auth_secrets": str(tmp_path / "nope.toml")})
    env = site.environment({**cfg, "lake": "relative/lake"})
    assert Path(env["QUICKLAKE_LAKE"]).is_absolute() and env["QUICKLAKE_APP_PORT"] == "8765"
    res = CliRunner().invoke(main, ["app", "--lake", str(tmp_path / "nolake")])
    assert res.exit_code == 1 and "no lake at" in res.output
    import socket

    with socket.socket() as taken:  # a port another program listens on: said in one line
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port} is in use"):
            site.require_free(port)
    site.require_free(port)  # (free again once closed)


def test_scope_judges_periods_at_its_time(site_lake: dict[str, Any]) -> None:
    from datetime import UTC, datetime

    cfg = site_lake["cfg"]
    later = Scope(site_lake["lake"], GUEST, cfg, now=datetime(2150, 1, 1, tzinfo=UTC), resident=False)
    earlier = Scope(site_lake["lake"], GUEST, cfg, now=datetime(2009, 1, 1, tzinfo=UTC))
    everything = Scope(site_lake["lake"], TEAM, cfg)
    n_all = everything.sql("SELECT count(*) AS n FROM master").column("n")[0].as_py()
    # by 2150 even the century-long period is over; before launch nothing was public
    assert later.sql("SELECT count(*) AS n FROM master").column("n")[0].as_py() == n_all
    assert earlier.sql("SELECT count(*) AS n FROM master").column("n")[0].as_py() == 0
    assert later.console("SELECT count(*) AS n FROM cards").table.column("n")[0].as_py() > 0
