"""Alerts (#19): rules evaluated after real monitor and job runs, delivered to a real SMTP server (STARTTLS,
login) and a real HTTP webhook receiver, both started here on 127.0.0.1.

The monitor case plants nothing of its own: the generated archive's bowtie flats (truth table: planted
hysteresis amplitudes) are ingested in three steps, clean flats first, then the ones over the limit, then
clean ones again, and uvis-bowtie runs after each step.
"""

from __future__ import annotations

import email
import email.policy
import json
import shutil
import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import lake
from lake import alerts, settings
from lake.alertrules import parse_rules
from lake.cli import main
from lake.errors import ConfigError
from lake.jobs import registry, run_job

# aiosmtpd 1.4 sets its own deprecated Session.login_data after a login (in the server's thread)
pytestmark = pytest.mark.filterwarnings("ignore:Session.login_data is deprecated:DeprecationWarning")

TEAM = "wfc3-team@example.org"
DIGEST = "digest@example.org"
SITE = "https://quicklake.example.org"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An SMTP server that requires STARTTLS (certificate from a test CA) and a login."""
    import trustme
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    cafile = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    inbox: list[tuple[list[str], EmailMessage, bool]] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            inbox.append((list(envelope.rcpt_tos), msg, bool(session.authenticated)))
            return "250 OK"

    def login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        return AuthResult(success=(data.login, data.password) == (b"quicklake", b"s3cret"))

    port = _free_port()
    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=port,
        tls_context=server_ctx,
        require_starttls=True,
        authenticator=login,
        auth_require_tls=True,
    )
    controller.start()
    cfg = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_starttls": True,
        "smtp_cafile": str(cafile),
        "smtp_user": "quicklake",
        "smtp_password": "s3cret",
        "smtp_from": "quicklake@example.org",
    }
    yield {"inbox": inbox, "cfg": cfg}
    controller.stop()


@pytest.fixture(scope="module")
def webhook() -> Iterator[dict[str, Any]]:
    """An HTTP server taking JSON POSTs: ``/hook`` answers 200, ``/fail`` 500."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append({"path": self.path, "type": self.headers["Content-Type"], "body": body})
            self.send_response(500 if self.path == "/fail" else 200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield {"received": received, "url": f"http://127.0.0.1:{server.server_address[1]}"}
    server.shutdown()
    server.server_close()


RULES = """
[[rule]]
name = "bowtie-over-limit"
description = "UVIS QE hysteresis over its 0.5 % limit"
monitor = "uvis-bowtie"
metric = "amplitude"
abs = true
above = 0.005
severity = "critical"
subscribers = ["{team}", "{hook}/hook"]

[[rule]]
name = "bowtie-per-chip"
monitor = "uvis-bowtie"
metric = "over_limit"
aggregate = "sum"
by = ["chip"]
above = 0
digest = true
subscribers = ["{digest}"]

[[rule]]
name = "mast-check-failing"
job = "check-mast2lake"
failed = 2
subscribers = ["{team}", "{hook}/hook"]
"""


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, smtp: dict[str, Any], webhook: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """A generated archive whose bowtie flats are held back in two groups, its lake, and the rules."""
    from ingest.archivegen.generate import TRUTH_FILE, generate

    base = tmp_path_factory.mktemp("alerts")
    archive, lk, held = base / "archive", base / "lake", base / "held"
    generate(archive, 30, seed=5, pixels="sparse")
    truth = [t for t in pq.read_table(archive / TRUTH_FILE).to_pylist() if t["feature"] == "bowtie"]
    clean = sorted(t["rootname"] for t in truth if t["value"] == 0)
    over = {t["rootname"]: t["value"] for t in truth if t["value"] > 0.005}
    assert len(clean) >= 3 and over, truth
    groups = {"over": sorted(over), "late-clean": clean[1:]}
    for name, roots in groups.items():
        for r in roots:
            (visit,) = {p.parent for p in archive.glob(f"*/Visit*/{r}_raw.fits")}
            (held / name / visit.parent.name).mkdir(parents=True, exist_ok=True)
            visit.rename(held / name / visit.parent.name / visit.name)

    def release(name: str) -> None:
        for prop in (held / name).iterdir():
            for visit in prop.iterdir():
                visit.rename(archive / prop.name / visit.name)
        ingest(lk, str(archive), scheduler="synchronous")

    from ingest.run import ingest

    ingest(lk, str(archive), scheduler="synchronous")
    rules = base / "alerts.toml"
    rules.write_text(RULES.format(team=TEAM, digest=DIGEST, hook=webhook["url"]))
    cfg = {
        **settings.load({"lake": str(lk)}),
        "archive": str(archive),
        "scheduler": "synchronous",
        "alert_rules": str(rules),
        "site_url": SITE,
        **smtp["cfg"],
    }
    yield {"lake": lk, "archive": archive, "cfg": cfg, "over": over, "release": release, "base": base}
    shutil.rmtree(base)


def mails(smtp: dict[str, Any], rule: str) -> list[tuple[list[str], EmailMessage, bool]]:
    return [m for m in smtp["inbox"] if f"] {rule}:" in str(m[1]["Subject"])]


def hooks(webhook: dict[str, Any], rule: str) -> list[dict[str, Any]]:
    return [h["body"] for h in webhook["received"] if h["body"].get("quicklake", {}).get("rule") == rule]


def test_monitor_threshold_opens_one_alert_and_clears(
    world: dict[str, Any], smtp: dict[str, Any], webhook: dict[str, Any]
) -> None:
    lk, cfg, rule = world["lake"], world["cfg"], "bowtie-over-limit"
    # clean flats only: nothing crosses
    assert run_job(lk, "uvis-bowtie", cfg=cfg).status == "success"
    assert not alerts.alerts(lk, open_only=False).num_rows and not smtp["inbox"] and not webhook["received"]

    # flats with planted hysteresis arrive: one alert, one e-mail, one webhook
    world["release"]("over")
    run = run_job(lk, "uvis-bowtie", cfg=cfg)
    assert run.status == "success", run.error
    opened = alerts.alerts(lk, rule=rule).to_pylist()
    assert len(opened) == 1, run.log_path.read_text()
    a = opened[0]
    assert a["subject"] == "uvis-bowtie" and a["severity"] == "critical" and a["status"] == "open"
    assert a["value"] == pytest.approx(max(world["over"].values()), abs=0.0005)
    assert {r["rootname"] for r in json.loads(a["rows"])} == set(world["over"])
    assert a["plot"].endswith(".png") and Path(a["plot"]).exists() and a["run_id"] == run.run_id
    assert a["link"] == f"{SITE}/monitors?monitor=uvis-bowtie"
    ((to, msg, logged_in),) = mails(smtp, rule)
    assert to == [TEAM] and logged_in and str(msg["Subject"]).startswith(f"[Quicklake critical] {rule}: ")
    assert a["alert_id"] in msg.get_body(("plain",)).get_content()
    assert [p.get_content_type() for p in msg.iter_attachments()] == ["image/png"]
    (hook,) = hooks(webhook, rule)
    assert hook["text"].startswith(f"[Quicklake critical] {rule}: uvis-bowtie")
    assert hook["quicklake"]["alert_id"] == a["alert_id"] and hook["quicklake"]["event"] == "open"
    assert all(h["type"] == "application/json" for h in webhook["received"])

    # the digest rule opened one alert per chip and sent nothing yet; the daily digest sends one message
    digest = alerts.alerts(lk, rule="bowtie-per-chip").to_pylist()
    assert sorted(d["subject"] for d in digest) == ["uvis-bowtie chip=1", "uvis-bowtie chip=2"]
    assert not [m for m in smtp["inbox"] if DIGEST in m[0]]
    assert run_job(lk, "alert-digest", cfg=cfg).status == "success"
    ((to, msg, _),) = [m for m in smtp["inbox"] if DIGEST in m[0]]
    body = msg.get_body(("plain",)).get_content()
    assert "2 alerts (2 open)" in str(msg["Subject"]) and all(d["alert_id"] in body for d in digest)

    # the next run has nothing new: no repeat
    assert run_job(lk, "uvis-bowtie", cfg=cfg).status == "no-work"
    assert len(mails(smtp, rule)) == 1 and len(hooks(webhook, rule)) == 1

    # later flats are clean: the alert clears, with one clear message each way
    world["release"]("late-clean")
    assert run_job(lk, "uvis-bowtie", cfg=cfg).status == "success"
    a = alerts.get(lk, a["alert_id"])
    assert a["status"] == "cleared" and a["cleared_at"] and abs(a["cleared_value"]) < 0.005
    sent = mails(smtp, rule)
    assert len(sent) == 2 and str(sent[1][1]["Subject"]).startswith(
        f"[Quicklake cleared] {rule}: uvis-bowtie"
    )
    assert [h["quicklake"]["event"] for h in hooks(webhook, rule)] == ["open", "clear"]
    assert not alerts.alerts(lk, rule=rule).num_rows
    # every delivery was recorded as sent
    deliveries = lake.read("alert_deliveries", lk)
    assert deliveries.height >= 5 and set(deliveries["ok"].to_list()) == {1}


def _listing(world: dict[str, Any], extra: tuple[str, ...] = ()) -> str:
    files = lake.read_sql("SELECT path FROM files WHERE status = 'ok'", world["lake"]).column(0).to_pylist()
    p = world["base"] / f"mast{len(extra)}.csv"
    p.write_text("filename\n" + "".join(f"{f.rsplit('/', 1)[-1]}\n" for f in [*files, *extra]))
    return str(p)


def test_job_failures_alert_once_ack_and_clear(
    world: dict[str, Any], smtp: dict[str, Any], webhook: dict[str, Any]
) -> None:
    lk, rule = world["lake"], "mast-check-failing"
    good = {**world["cfg"], "mast_listing": _listing(world)}
    bad = {**world["cfg"], "mast_listing": str(world["base"] / "moved-away.csv")}
    assert run_job(lk, "check-mast2lake", cfg=good).status == "success"
    assert run_job(lk, "check-mast2lake", cfg=bad).status == "failed"
    assert not alerts.alerts(lk, rule=rule).num_rows  # one failure is not two
    r2 = run_job(lk, "check-mast2lake", cfg=bad)
    (a,) = alerts.alerts(lk, rule=rule).to_pylist()
    assert (
        a["subject"] == "check-mast2lake" and a["value"] == 2 and a["link"] == f"{SITE}/jobs?run={r2.run_id}"
    )
    assert [r["status"] for r in json.loads(a["rows"])] == ["failed", "failed"]
    assert "moved-away.csv" in json.loads(a["rows"])[0]["error"]
    assert len(mails(smtp, rule)) == 1 and len(hooks(webhook, rule)) == 1
    assert run_job(lk, "check-mast2lake", cfg=bad).status == "failed"  # still failing: no repeat
    assert len(mails(smtp, rule)) == 1 and len(hooks(webhook, rule)) == 1

    # acknowledged from the CLI, kept in the lake with who and when
    res = CliRunner().invoke(
        main,
        [
            "alerts",
            "ack",
            a["alert_id"],
            "--lake",
            str(lk),
            "--by",
            "alice@stsci.edu",
            "-m",
            "listing moved; fixing the path",
        ],
    )
    assert res.exit_code == 0 and "acknowledged" in res.output, res.output
    row = lake.read("alerts", lk).filter(alert_id=a["alert_id"]).to_dicts()[0]
    assert (
        row["acknowledged_by"] == "alice@stsci.edu"
        and row["acknowledged_at"]
        and row["status"] == "acknowledged"
    )
    sql = "SELECT user, comment FROM alert_events WHERE alert_id = ? AND event = 'ack'"
    assert lake.connect(lk).execute(sql, [a["alert_id"]]).fetchall() == [
        ("alice@stsci.edu", "listing moved; fixing the path")
    ]
    again = CliRunner().invoke(main, ["alerts", "ack", a["alert_id"], "--lake", str(lk)])
    assert again.exit_code == 1 and "was acknowledged by alice@stsci.edu" in again.output
    assert len(again.output.strip().splitlines()) == 1
    listed = CliRunner().invoke(main, ["alerts", "--lake", str(lk)])
    assert a["alert_id"] in listed.output and "acknowledged" in listed.output

    # the job works again: cleared, one clear message each way; then resolved by hand
    assert run_job(lk, "check-mast2lake", cfg=good).status == "success"
    assert alerts.get(lk, a["alert_id"])["status"] == "cleared"
    assert str(mails(smtp, rule)[-1][1]["Subject"]).startswith(f"[Quicklake cleared] {rule}: check-mast2lake")
    assert [h["quicklake"]["event"] for h in hooks(webhook, rule)] == ["open", "clear"]
    res = CliRunner().invoke(main, ["alerts", "resolve", a["alert_id"], "--lake", str(lk), "--by", "bob"])
    assert res.exit_code == 0 and alerts.get(lk, a["alert_id"])["resolved_by"] == "bob"
    unknown = CliRunner().invoke(main, ["alerts", "ack", "nope", "--lake", str(lk)])
    assert unknown.exit_code == 1 and "no alert 'nope'" in unknown.output


def test_undeliverable_alerts_are_recorded_and_never_fail_the_run(
    world: dict[str, Any], webhook: dict[str, Any]
) -> None:
    lk = world["lake"]
    rules = world["base"] / "undeliverable.toml"
    rules.write_text(f"""
[[rule]]
name = "mast-problems"
job = "check-mast2lake"
metric = "problems"
above = 0
subscribers = ["ops@example.org", "{webhook["url"]}/fail", "http://127.0.0.1:{_free_port()}/secret-token"]
""")
    cfg = {
        **world["cfg"],
        "alert_rules": str(rules),
        "smtp_port": _free_port(),
        "mast_listing": _listing(world, ("ib0z99zzq_raw.fits",)),
    }
    run = run_job(lk, "check-mast2lake", cfg=cfg)
    assert run.status == "success" and run.counts["problems"] == 1
    (a,) = alerts.alerts(lk, rule="mast-problems").to_pylist()
    got = lake.read("alert_deliveries", lk).filter(alert_id=a["alert_id"]).sort("channel").to_dicts()
    assert [(d["channel"], d["ok"]) for d in got] == [("email", 0), ("webhook", 0), ("webhook", 0)]
    assert "SMTP 127.0.0.1" in got[0]["error"] and "HTTP 500" in got[1]["error"]
    assert all("secret-token" not in (d["target"] + (d["error"] or "")) for d in got)  # a webhook's secret
    assert "not delivered" in run.log_path.read_text()


def test_stale_job(world: dict[str, Any]) -> None:
    lk = world["lake"]
    rules = world["base"] / "stale.toml"
    rules.write_text('[[rule]]\nname = "mast-stale"\njob = "check-mast2lake"\nstale_hours = 24\n')
    cfg = {**world["cfg"], "alert_rules": str(rules)}
    last = run_job(lk, "check-mast2lake", cfg={**cfg, "mast_listing": _listing(world)})
    info = alerts.RunInfo("make-cron-summary", "r-later", "success")  # any later run notices
    opened = alerts.evaluate_run(lk, cfg, info, now=datetime.now(UTC) + timedelta(hours=30))
    assert [(k, a["subject"], a["rule"]) for k, a in opened] == [("open", "check-mast2lake", "mast-stale")]
    assert opened[0][1]["value"] == pytest.approx(30, abs=0.1) and last.status == "success"
    assert alerts.evaluate_run(lk, cfg, info, now=datetime.now(UTC) + timedelta(hours=31)) == []
    cleared = alerts.evaluate_run(lk, cfg, info)
    assert [(k, a["alert_id"]) for k, a in cleared] == [("clear", opened[0][1]["alert_id"])]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[rule]]\nname = "a"\nmonitor = "uvis-bowtie"\nmetric = "x"\nabove = "high"\n',
            "rule 'a': above: must be a number, not 'high'",
        ),
        ('[[rule]]\nname = "a"\nmonitor = "uvis-bowtie"\nmetric = "x"\n', "rule 'a': condition: give one of"),
        (
            '[[rule]]\nname = "a"\nmonitor = "no-such"\nmetric = "x"\nabove = 1\n',
            "rule 'a': monitor: no monitor 'no-such'; monitors: ",
        ),
        ('[[rule]]\nname = "a"\njob = "check-filesystem"\nfailed = 0\n', "rule 'a': failed: must be a whole"),
        (
            '[[rule]]\nname = "a"\nmonitor = "uvis-bowtie"\nfailed = 2\n',
            "rule 'a': failed: is a job condition",
        ),
        (
            '[[rule]]\nname = "a"\njob = "*"\nstale_hours = 2\nsubscribers = ["nobody"]\n',
            "rule 'a': subscribers: 'nobody' is neither an e-mail address nor",
        ),
        (
            '[[rule]]\nname = "a"\njob = "*"\nstale_hours = 2\nseverity = "urgent"\n',
            "rule 'a': severity: 'urgent' is not one of info, warning, critical",
        ),
        (
            '[[rule]]\nname = "a"\njob = "*"\nstale_hours = 2\ncolour = "red"\n',
            "rule 'a': unknown field 'colour'",
        ),
        (
            '[[rule]]\nmonitor = "uvis-bowtie"\nmetric = "x"\nabove = 1\n',
            "rule '#1': name: must be a non-empty",
        ),
        ('[[rule]]\nname = "a"\nmonitor = "ir-bias"\nmetric = "x"\nchange = 1\n', "rule 'a': window_days:"),
        (
            '[[rule]]\nname = "a"\njob = "*"\nstale_hours = 1\n[[rule]]\nname = "a"\njob = "*"\nfailed = 1\n',
            "rule 'a': name: two rules have this name",
        ),
        ("rule = 3", "'rule' must be an array of tables"),
        ("[[rule]\n", "not valid TOML"),
    ],
)
def test_rule_errors_name_file_rule_and_field(text: str, message: str) -> None:
    known = {n: j.monitor for n, j in registry().items()}
    with pytest.raises(ConfigError) as e:
        parse_rules(text, "site/alerts.toml", known)
    assert str(e.value).startswith("site/alerts.toml: ") and message in str(e.value), str(e.value)


def test_ql_alerts_check(tmp_path: Path) -> None:
    (tmp_path / "alerts.toml").write_text(
        '[[rule]]\nname = "darks"\nmonitor = "uvis-darks"\nmetric = "n_hot"\naggregate = "mean"\n'
        'change = 50\nwindow_days = 90\nsubscribers = ["a@example.org"]\n'
    )
    res = CliRunner().invoke(main, ["alerts", "check", "--lake", str(tmp_path)])
    assert (
        res.exit_code == 0
        and "darks: uvis-darks: mean(n_hot) changed by more than 50 over 90 d" in res.output
    )
    (tmp_path / "alerts.toml").write_text(
        '[[rule]]\nname = "darks"\nmonitor = "uvis-dark"\nmetric = "n"\nabove = 1\n'
    )
    res = CliRunner().invoke(main, ["alerts", "check", "--lake", str(tmp_path)])
    assert res.exit_code == 1 and "rule 'darks': monitor: no monitor 'uvis-dark'" in res.output
    assert "Traceback" not in res.output


def test_site_shows_alerts_and_team_members_act_on_them(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    lk = world["lake"]
    rules = world["base"] / "site.toml"
    rules.write_text(
        '[[rule]]\nname = "bowtie-history"\nmonitor = "uvis-bowtie"\nmetric = "amplitude"\nabs = true\n'
        'scope = "all"\nabove = 0.005\nseverity = "critical"\n'
    )
    cfg = {**world["cfg"], "alert_rules": str(rules)}
    # all of uvis-bowtie's results (the flats over the limit among them), as its next run would see them
    ((kind, a),) = alerts.evaluate_run(
        lk, cfg, alerts.RunInfo("uvis-bowtie", "r1", "success", table="monitor_uvis_bowtie")
    )
    assert kind == "open" and a["subject"] == "uvis-bowtie"
    for k, v in (("LAKE", lk), ("ARCHIVE", world["archive"]), ("ALERT_RULES", rules)):
        monkeypatch.setenv(f"QUICKLAKE_{k}", str(v))
    team = {"is_logged_in": True, "email": "alice@stsci.edu", "name": "Alice", "groups": ["wfc3-team"]}

    def page(name: str, user: dict[str, Any], **params: str) -> AppTest:
        st.cache_data.clear()
        st.cache_resource.clear()
        at = AppTest.from_file(
            str(Path(__file__).resolve().parent.parent / "app" / "streamlit_app.py"), default_timeout=120
        )
        at.user = user
        at.run()
        at.switch_page(f"app_pages/{name}.py")
        for k, v in params.items():
            at.query_params[k] = v
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    home = page("home", team)
    assert any(s.value.startswith("Open alerts (") for s in home.subheader)
    assert a["alert_id"] in set(home.dataframe[0].value["alert_id"])
    mon = page("monitors", team, monitor="uvis-bowtie")
    assert any(a["alert_id"] in w.value for w in mon.warning)
    guest = {"is_logged_in": False}
    assert not any(s.value.startswith("Open alerts") for s in page("home", guest).subheader)
    assert not page("monitors", guest, monitor="uvis-bowtie").warning
    assert "for WFC3 team members" in page("alerts", guest).info[0].value
    from app.data.scope import Scope
    from app.data.viewer import GUEST

    assert not {"alerts", "alert_events", "alert_deliveries"} & set(Scope(lk, GUEST, cfg).tables)

    # acknowledge from the site: recorded with the member's address
    at = page("alerts", team)
    at.selectbox(key="alert_id").set_value(a["alert_id"])
    at.radio(key="alert_action").set_value("acknowledge")
    at.text_input(key="alert_note").input("looking at the flats")
    next(b for b in at.button if b.label == "Record").click().run()
    assert not at.exception and any("acknowledged by alice@stsci.edu" in s.value for s in at.success)
    got = alerts.get(lk, a["alert_id"])
    assert (got["acknowledged_by"], got["status"]) == ("alice@stsci.edu", "acknowledged")

    # edit the rules: a wrong rule is refused, naming rule and field, and the file is kept
    before = rules.read_text()
    at.text_area(key="alert_rules").input(before.replace("0.005", '"half a percent"'))
    at.button(key="alert_rules_save").click().run()
    assert any("rule 'bowtie-history': above: must be a number" in e.value for e in at.error)
    assert rules.read_text() == before
    rules.write_text(before.replace("0.005", "[0.005]"))  # broken by hand: the page says so
    broken = page("alerts", team)
    assert any(
        "no rule is evaluated" in e.value and "above: must be a number" in e.value for e in broken.error
    )
    rules.write_text(before)
    at.text_area(key="alert_rules").input(before.replace("0.005", "0.006"))
    at.button(key="alert_rules_save").click().run()
    assert any("1 rules saved" in s.value for s in at.success) and "0.006" in rules.read_text()


def test_docs_example_rules_are_valid_and_name_real_columns() -> None:
    """docs/alerts.md's example file: valid, and its monitor rules name columns their results have."""
    import re

    from monitors.registry import get

    text = (Path(__file__).resolve().parent.parent / "docs" / "alerts.md").read_text()
    (example,) = re.findall(r"```toml\n(.*?)```", text, re.S)
    rules = parse_rules(example, "docs/alerts.md", {n: j.monitor for n, j in registry().items()})
    assert len(rules) == 6
    for r in rules:
        if r.monitor:
            names = get(r.monitor).schema.names
            assert {r.metric, *r.by, *r.where, r.time} <= set(names), (r.name, names)


def test_change_over_a_window_of_all_results(world: dict[str, Any]) -> None:
    """A change rule over all of uvis-bowtie's results (chip 1 only): last window against the one before."""
    lk = world["lake"]
    rows = lake.read_sql("SELECT expstart, amplitude FROM monitor_uvis_bowtie WHERE chip = 1", lk).to_pylist()
    end, w = max(r["expstart"] for r in rows), 2500.0
    last = [abs(r["amplitude"]) for r in rows if end - w < r["expstart"] <= end]
    before = [abs(r["amplitude"]) for r in rows if end - 2 * w < r["expstart"] <= end - w]
    assert last and before
    delta = max(last) - max(before)
    rules = world["base"] / "change.toml"
    cfg = {**world["cfg"], "alert_rules": str(rules)}
    info = alerts.RunInfo("uvis-bowtie", "r-change", "success", table="monitor_uvis_bowtie")
    for limit, opens in ((abs(delta) * 0.9, True), (abs(delta) * 1.1, False)):
        rules.write_text(
            f'[[rule]]\nname = "bowtie-jump-{opens}"\nmonitor = "uvis-bowtie"\nmetric = "amplitude"\n'
            f"abs = true\nwhere = {{ chip = 1 }}\nchange = {limit}\nwindow_days = {w}\n"
        )
        got = alerts.evaluate_run(lk, cfg, info)
        assert [k for k, _ in got] == (["open"] if opens else [])
        if opens:
            assert got[0][1]["value"] == pytest.approx(delta) and got[0][1]["subject"] == "uvis-bowtie"
