"""The site end to end: a real ``ql app`` server, a real local OIDC provider, Debian's headless Chromium.

Recipes: ``docs/background/streamlit-recipe.md`` §3b (playwright with /usr/bin/chromium and the idle
selectors) and §4.1 (``st.login`` against ``oidc-provider-mock``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.data import anomaly
from app.data.scope import Scope
from app.data.viewer import Viewer
from lake.access import read_sql

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"][data-test-connection-state="CONNECTED"]'
SETTLED = (
    "() => !document.querySelector('[data-stale=\"true\"]') && "
    "!document.querySelector('[data-testid=\"stSkeleton\"]')"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 90) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{what} did not answer at {url} within {timeout} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def server(site_lake: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "Debian's chromium is missing: 'python3 dev.py test' installs it (apt-get install chromium)"
        )
    tmp = tmp_path_factory.mktemp("server")
    idp_port, app_port = _free_port(), _free_port()
    users = [
        '{"sub": "alice", "email": "alice@stsci.edu", "name": "Alice", "groups": ["wfc3-team"]}',
        '{"sub": "bob", "email": "bob@example.org", "name": "Bob", "groups": []}',
    ]
    idp_log, app_log = (tmp / "idp.log").open("wb"), (tmp / "app.log").open("wb")
    idp = subprocess.Popen(
        [sys.executable, "-W", "ignore", "-m", "oidc_provider_mock", "--port", str(idp_port),
         "--require-nonce", "true", *[a for u in users for a in ("--user-claims", u)]],
        stdout=idp_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    secrets_toml = tmp / "secrets.toml"  # outside the repository, as in production
    secrets_toml.write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{app_port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(16)}"\n'
        'client_id = "quicklake"\nclient_secret = "test-only"\n'
        f'server_metadata_url = "http://127.0.0.1:{idp_port}/.well-known/openid-configuration"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUICKLAKE_")}
    env |= {
        "QUICKLAKE_LAKE": str(site_lake["lake"]),
        "QUICKLAKE_ARCHIVE": str(site_lake["archive"]),
        "QUICKLAKE_AUTH_SECRETS": str(secrets_toml),
        "QUICKLAKE_CONFIG": str(tmp / "none.toml"),
        "PYTHONWARNINGS": "ignore",
    }
    ql = str(Path(sys.executable).with_name("ql"))
    app = subprocess.Popen(
        [ql, "app", "--port", str(app_port)], env=env, stdout=app_log, stderr=subprocess.STDOUT
    )
    try:
        _wait_http(f"http://127.0.0.1:{idp_port}/.well-known/openid-configuration", idp, "oidc-provider-mock")
        _wait_http(f"http://127.0.0.1:{app_port}/_stcore/health", app, "ql app")
        yield {"url": f"http://127.0.0.1:{app_port}", "log": tmp / "app.log", **site_lake}
    finally:
        _stop(app)
        _stop(idp)
        idp_log.close()
        app_log.close()


@pytest.fixture(scope="module")
def browser(server: dict[str, Any]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
            ],
        )
        yield b
        b.close()


def goto(pg: Any, url: str) -> None:
    pg.goto(url)
    settle(pg)


def settle(pg: Any) -> None:
    pg.wait_for_selector(IDLE, state="attached", timeout=90_000)
    pg.wait_for_function(SETTLED, timeout=90_000)


def login(pg: Any, base: str, sub: str) -> None:
    goto(pg, base + "/")
    pg.get_by_role("button", name="Log in").click()
    pg.wait_for_selector("input[name=sub]", timeout=30_000)
    pg.fill("input[name=sub]", sub)
    pg.get_by_role("button", name="Authorize").click()
    pg.wait_for_url(base + "/**", timeout=30_000)
    settle(pg)
    pg.get_by_text("Signed in as").wait_for(timeout=30_000)


def alert_text(pg: Any, kind: str) -> str:
    loc = pg.locator(f'[data-testid="stAlertContent{kind}"]')
    loc.first.wait_for(timeout=30_000)
    return str(" ".join(loc.all_inner_texts()))


def _roots(server: dict[str, Any]) -> tuple[str, str]:
    secret = (
        read_sql(
            f"SELECT rootname FROM master WHERE proposid = {server['secret']} AND rootname NOT LIKE '%0' "
            "ORDER BY rootname LIMIT 1",
            server["lake"],
        )
        .column(0)[0]
        .as_py()
    )
    dark = (
        read_sql(
            "SELECT rootname FROM master WHERE detector = 'UVIS' AND imagetyp = 'DARK' "
            "ORDER BY rootname LIMIT 1",
            server["lake"],
        )
        .column(0)[0]
        .as_py()
    )
    return str(secret), str(dark)


def test_team_member_journey(server: dict[str, Any], browser: Any, tmp_path: Path) -> None:
    base = server["url"]
    secret, dark = _roots(server)
    pg = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    login(pg, base, "alice")
    assert "alice@stsci.edu" in pg.locator('[data-testid="stSidebar"]').inner_text()

    # browse: pick the proprietary proposal, then click one of its datasets (a team member sees them)
    goto(pg, f"{base}/browse")
    box = pg.get_by_role("textbox", name="Proposal", exact=True)  # (a box: not the facet's drop-down)
    box.fill(str(server["secret"]))
    box.press("Enter")
    pg.get_by_text(f"Proposal {server['secret']}: PI").wait_for(timeout=30_000)  # (the rerun is done)
    settle(pg)
    first = pg.locator(".ql-card a").first  # (a card's link)
    first.wait_for(timeout=30_000)
    first.click()
    pg.wait_for_url("**/dataset?rootname=*", timeout=30_000)
    settle(pg)
    picked = pg.url.split("rootname=")[1].split("&")[0]
    assert picked in pg.locator("h3").first.inner_text()
    owner = read_sql(f"SELECT proposid FROM master WHERE rootname = '{picked}'", server["lake"])
    assert owner.column(0)[0].as_py() == int(server["secret"])
    goto(pg, f"{base}/dataset?rootname={secret}")
    assert secret in pg.locator("h3").first.inner_text()
    header = pg.locator("pre.ql-text").first.inner_text()
    assert "SIMPLE  =" in header and f"ROOTNAME= '{secret}" in header

    # a preview of a dark's SCI extension (the dark has pixels in the sparse archive)
    raw = (
        read_sql(f"SELECT path FROM files WHERE rootname = '{dark}' AND filetype = 'raw'", server["lake"])
        .column(0)[0]
        .as_py()
    )
    goto(pg, f"{base}/dataset?rootname={dark}&file={raw}")
    pg.get_by_role("tab", name="Preview").click()
    # the interactive viewer (plotly): drawn, with its colour bar
    pg.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=30_000)
    pg.wait_for_function(
        "() => document.querySelector('[data-testid=\"stPlotlyChart\"] .main-svg .colorbar') !== null",
        timeout=30_000,
    )

    # run the original Quicklook query in the SQL console
    goto(pg, f"{base}/query")
    pg.get_by_role("tab", name="SQL").click()
    pg.get_by_role("button", name="Run").click()
    settle(pg)
    pg.get_by_text("rows in").first.wait_for(timeout=30_000)

    # flag an anomaly and see it in the history
    goto(pg, f"{base}/anomalies?rootname={dark}")
    pg.get_by_label("Comment").fill("trail across both chips")
    pg.get_by_role("button", name="Flag").first.click()
    settle(pg)
    assert f"{dark} flagged as Satellite trail" in alert_text(pg, "Success")
    team = Scope(server["lake"], Viewer("x", team=True), server["cfg"])
    hist = anomaly.history(team, rootname=dark).to_pylist()
    assert hist[0]["anomaly"] == "satellite_trail" and hist[0]["user"] == "alice@stsci.edu"
    assert hist[0]["comment"] == "trail across both chips"
    pg.get_by_text("History (").first.wait_for()

    # open a job log
    goto(pg, f"{base}/jobs")
    log = pg.locator("pre.ql-text").first.inner_text()
    assert "inputs selected" in log or "check-filesystem" in log or log.strip()
    pg.screenshot(path=str(tmp_path / "jobs.png"), full_page=True)

    # a reload keeps the login (cookie); logging out makes a guest again
    goto(pg, f"{base}/")
    assert "Signed in as" in pg.locator('[data-testid="stSidebar"]').inner_text()


def test_guest_cannot_see_proprietary_data(server: dict[str, Any], browser: Any, tmp_path: Path) -> None:
    base = server["url"]
    secret, _ = _roots(server)
    pg = browser.new_context().new_page()
    goto(pg, f"{base}/dataset?rootname={secret}")
    assert "proprietary" in alert_text(pg, "Error")
    assert pg.locator("pre.ql-text").count() == 0
    path = (
        read_sql(f"SELECT path FROM files WHERE rootname = '{secret}' LIMIT 1", server["lake"])
        .column(0)[0]
        .as_py()
    )
    goto(pg, f"{base}/dataset?rootname={secret}&file={path}")
    assert pg.get_by_role("tab", name="Preview").count() == 0  # no preview tab at all
    assert pg.locator('[data-testid="stImage"], [data-testid="stPlotlyChart"]').count() == 0
    goto(pg, f"{base}/jobs")
    assert "for WFC3 team members" in pg.locator('[data-testid="stAlertContentInfo"]').first.inner_text()

    # SQL: a proprietary row would raise, so the absence of the error proves there is none
    goto(pg, f"{base}/query")
    pg.get_by_role("tab", name="SQL").click()
    box = pg.get_by_role("textbox", name="SQL", exact=True)
    for sql, expect in (
        (f"SELECT error('LEAK ' || rootname) FROM cards WHERE rootname = '{secret}'", "0 rows in"),
        ("SELECT * FROM read_csv('/etc/passwd')", "disabled by configuration"),
        (f"COPY master TO '{tmp_path / 'stolen.csv'}'", "only a single SELECT"),
        (f"ATTACH '{tmp_path / 'x.duckdb'}' AS x", "only a single SELECT"),
        ("SET enable_external_access = true", "only a single SELECT"),
        ("INSTALL httpfs", "only a single SELECT"),
        ("SELECT 1; SELECT 2", "only a single SELECT"),
    ):
        box.fill(sql)
        box.press("Control+Enter")
        pg.get_by_role("button", name="Run").click()
        settle(pg)
        pg.get_by_text(expect).first.wait_for(timeout=30_000)
        assert f"LEAK {secret}" not in pg.content()
    assert not list(tmp_path.iterdir())  # nothing was written


def test_logged_in_outsider_sees_public_data_only(server: dict[str, Any], browser: Any) -> None:
    base = server["url"]
    secret, dark = _roots(server)
    pg = browser.new_context().new_page()
    login(pg, base, "bob")
    assert "Public data only" in pg.locator('[data-testid="stSidebar"]').inner_text()
    goto(pg, f"{base}/dataset?rootname={secret}")
    assert "proprietary" in alert_text(pg, "Error")
    goto(pg, f"{base}/anomalies?rootname={dark}")
    assert pg.get_by_role("button", name="Flag").count() == 0


def _page_time(pg: Any, url: str) -> float:
    t0 = time.perf_counter()
    goto(pg, url)
    pg.get_by_text("datasets").first.wait_for(timeout=30_000)
    return time.perf_counter() - t0


def test_a_guest_heavy_query_leaves_another_guest_page_time(server: dict[str, Any], browser: Any) -> None:
    """Two guests in two browsers: while one runs a console query that takes many seconds, the other's
    Home, timed in Chromium from navigation to a settled page, stays under twice its idle time."""
    import statistics

    base = server["url"]
    other, heavy = browser.new_page(), browser.new_page()
    _page_time(other, base + "/")  # first visit: the server's caches
    idle = statistics.median(_page_time(other, base + "/") for _ in range(3))
    goto(heavy, f"{base}/query")
    heavy.get_by_role("tab", name="SQL").click()
    box = heavy.get_by_role("textbox", name="SQL", exact=True)
    box.fill("SELECT sum(hash(a.range * b.range)) FROM range(100000000) a, range(100) b")
    box.press("Control+Enter")
    t_run = time.perf_counter()
    heavy.get_by_role("button", name="Run").click()
    time.sleep(1.0)  # the query is running
    busy = min(_page_time(other, base + "/") for _ in range(3))  # other load on 2 cores takes turns too
    still = time.perf_counter() - t_run
    heavy.get_by_text("interrupted").first.wait_for(timeout=90_000)  # it ran to the console's time limit
    assert time.perf_counter() - t_run > still, "the heavy query ended before the measurement"
    print(f"Home in Chromium: {idle:.2f} s idle, {busy:.2f} s beside a heavy query ({busy / idle:.2f}x)")
    assert busy < 2 * idle
    other.close()
    heavy.close()
