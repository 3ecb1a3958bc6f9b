"""Every site page in real Chromium and on the server, on a lake of 1M header rows; cone search on 5M.

    python bench/site.py [--rows 1000000] [--cards 10000000] [--cone-rows 5000000] [--repeat 3]

Targets (#18): every page and interaction < 1 s warm, a dataset's first view < 2 s, a cone search
< 100 ms on 5M rows.

The lake is bench/query.py's (--rows primary-header rows of uvisflt and as many ``master`` rows), with
``master`` made to look like an archive's: pointings clustered on 20,000 named targets (NGC, IC, HD; 10%
spread over the sky) with their ``_healpix_29`` cells and sorted by them as ingest writes it, 3,000
proposals, a year and EXPSTART per DATE-OBS; plus a ``files`` row per dataset, a ``cards`` table of
--cards rows (real generated headers under new paths, sorted by path as ingest writes them), anomaly
flags (some on Browse's first page), a few job runs, and the UVIS darks monitor's results as 17 years
of it would be (6,000 rows, with the run's PNGs).

Chromium: ``ql app`` is started twice, for a team member (``local_user``) and for a guest, and driven by
Debian's headless Chromium (Playwright). A page's time runs from the navigation or click to a settled,
drawn page (bench/_chromium.py): "load" is a full page load (``goto``, the browser's cache warm),
"click" the sidebar link from the page before (what a user does between pages). Each page is visited
once first (the server's caches), then --repeat times; the median is checked against the target and
the best shown beside it, with the time the browser's main thread was busy meanwhile (script, layout,
paint; the rest is the wait for the server). A dataset's first view is of a dataset the server has not
shown before. The interactions: the Query form (targets containing "NGC", the classic Quicklook
search), the SQL console's original Quicklook query, opening the Search page's sky map, a cone search
by position and one by the name "NGC 4485". The baseline, measured in the same run and the same way,
is a two-page Streamlit app whose pages only draw a title.

Server: each page with Streamlit's AppTest (the script runs in this process, so the time is the
server's), best of 3 after a warming run, against a title-only page.

Cone search: bench/search.py's measurement on a --cone-rows file (20 cones, best of 5).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from _chromium import Meter, chromium, done, free_port, server, timed
from _util import ROOT, best_of, report
from query import build
from search import measure as cone_measure
from search import sky

PAGES = ["home", "browse", "dataset", "search", "query", "keywords", "anomalies", "monitors", "jobs"]
USERS = {
    "team": {"is_logged_in": True, "email": "alice@stsci.edu", "name": "Alice", "groups": ["wfc3-team"]},
    "guest": {"is_logged_in": False},
}
# Chromium: (page, URL path, its h1, its sidebar link, a text that says the page is complete)
BROWSER_PAGES = [
    ("home", "", "Quicklake", "Home", "Job status"),
    ("browse", "browse", "Browse", "Browse", " datasets · "),
    ("search", "search", "Search", "Search", "Type a target name"),
    ("query", "query", "Query", "Query", None),
    ("keywords", "keywords", "Keywords", "Keywords", " keywords"),
    ("anomalies", "anomalies", "Anomalies", "Anomalies", "History ("),
    ("monitors", "monitors", "Monitors", "Monitors", "Results ("),
    ("jobs", "jobs", "Jobs", "Jobs", None),
]
BASELINE = """import streamlit as st

def a():
    st.title("Baseline A")

def b():
    st.title("Baseline B")

st.navigation([st.Page(a, title="A", url_path="a", default=True), st.Page(b, title="B", url_path="b")]).run()
"""


# ------------------------------------------------------------------------------------------ the lake
def target_names(n: int) -> np.ndarray:
    """``n`` catalogue names: NGC 1-7840, then IC, then HD (NGC4485 among them)."""
    names = [f"NGC{i}" for i in range(1, min(n, 7840) + 1)]
    names += [f"IC{i}" for i in range(1, min(n - len(names), 5386) + 1)]
    names += [f"HD{i}" for i in range(1, n - len(names) + 1)]
    return np.array(names)


def archive_like(master: pa.Table) -> pa.Table:
    """``master`` with clustered pointings on named targets (and their HEALPix cells, sorted by them),
    3,000 proposals, and year, EXPSTART, file types consistent with DATE-OBS."""
    from lake import schema as sch
    from lake.master import with_healpix

    n = master.num_rows
    rng = np.random.default_rng(18)
    ra, dec, which, _, _ = sky(n, rng)
    names = target_names(20_000)
    dates = master.column("date_obs").cast(pa.string()).to_numpy(zero_copy_only=False).astype("datetime64[D]")
    mjd = (dates - np.datetime64("1858-11-17")).astype(np.float64) + rng.uniform(0, 1, n)
    cols = {
        "ra_targ": pa.array(ra),
        "dec_targ": pa.array(dec),
        "targname": pa.array(names[which]),
        "proposid": pa.array(rng.integers(11000, 18000, 3000)[rng.integers(0, 3000, n)]),
        "expstart": pa.array(mjd),
        "year": pa.array(dates.astype("datetime64[Y]").astype(int) + 1970, pa.int32()),
        "filetypes": pa.array(["flt"] * n),
        "n_files": pa.array(np.ones(n, np.int32)),
    }
    t = master.drop_columns(["_healpix_29"]) if "_healpix_29" in master.column_names else master
    for name, values in cols.items():
        t = t.set_column(t.schema.get_field_index(name), name, values.cast(t.schema.field(name).type))
    return with_healpix(t).select(sch.arrow_schema("master").names).cast(sch.arrow_schema("master"))


def files_of(master: pa.Table) -> pa.Table:
    """A ``files`` row per dataset: its flt file, 168 MB, 7 HDUs."""
    from lake import schema as sch

    n = master.num_rows
    schema = sch.arrow_schema("files")
    given = {
        "rootname": master.column("rootname"),
        "proposid": master.column("proposid"),
        "visit": master.column("visit"),
        "path": pc.binary_join_element_wise(
            pc.utf8_slice_codeunits(master["rootname"], 0, 7), "/", master["rootname"], "_flt.fits", ""
        ),
        "filetype": pa.array(["flt"] * n),
        "status": pa.array(["ok"] * n),
        "detector": master.column("detector"),
        "instrume": pa.array(["WFC3"] * n),
        "size": pa.array(np.full(n, 168_000_000)),
        "n_hdus": pa.array(np.full(n, 7, np.int32)),
        # one partition value per Parquet file (Iceberg's add_files needs it): the bench puts all in 2020
        "year": pa.array(np.full(n, 2020, np.int32)),
    }
    return pa.table(
        {f.name: given[f.name].cast(f.type) if f.name in given else pa.nulls(n, f.type) for f in schema},
        schema=schema,
    )


def cards_of(base: Path, roots: list[str], n_cards: int) -> pa.Table:
    """About ``n_cards`` card rows: the generated seed lake's headers under the paths of ``roots``."""
    from lake.tables import Lake

    seed = Lake(base / "seed-lake")
    cards = pa.concat_tables([pq.read_table(f) for f in seed.data_files(seed.pins(), "cards")])
    src_paths = pc.unique(cards["path"]).to_pylist()
    by_path = {p: cards.filter(pc.equal(cards["path"], p)) for p in src_paths}
    rng = np.random.default_rng(7)
    pieces, total = [], 0
    for r in roots:
        t = by_path[src_paths[int(rng.integers(0, len(src_paths)))]]
        t = t.set_column(0, "path", pa.array([f"{r[:7]}/{r}_flt.fits"] * t.num_rows))
        pieces.append(t.set_column(1, "rootname", pa.array([r] * t.num_rows)))
        total += t.num_rows
        if total >= n_cards:
            break
    big = pa.concat_tables(pieces).sort_by(
        [("path", "ascending"), ("hdu", "ascending"), ("position", "ascending")]
    )
    return big.set_column(
        big.schema.get_field_index("year"), "year", pa.array(np.full(big.num_rows, 2020, np.int32))
    )


def write_lake(lake_dir: Path, base: Path, master: pa.Table, n_cards: int) -> list[str]:
    """Replace ``master``, add ``files`` and ``cards``; returns the rootnames whose headers are in cards."""
    from lake import schema as sch
    from lake.tables import Lake

    master = archive_like(master)
    # the datasets with headers: spread over the sky and the years (any rows of the sorted master)
    roots = master.column("rootname").take(np.random.default_rng(3).permutation(master.num_rows)).to_pylist()
    cards = cards_of(base, roots, n_cards)
    lake = Lake(lake_dir)
    with lake.writer():
        pins = lake.init()
        lake.overwrite(pins, "master", master)
        for name, table in (("files", files_of(master)), ("cards", cards)):
            lake.ensure_table(pins, name, sch.arrow_schema(name))
            out = lake.data_dir(pins.namespace, name)
            out.mkdir(parents=True, exist_ok=True)
            paths = []
            for i in range(0, table.num_rows, 2_000_000):
                f = out / f"bench-{i}.parquet"
                pq.write_table(
                    table.slice(i, 2_000_000).cast(sch.arrow_schema(name)),
                    f,
                    compression="zstd",
                    row_group_size=100_000,
                )
                paths.append(str(f))
            lake.commit_files(pins, name, paths)
        lake.publish(pins)
    return sorted(set(cards.column("rootname").to_pylist()))


def flags_and_runs(lake_dir: Path) -> None:
    """Anomaly flags (4 on Browse's first page, 300 elsewhere) and a few job runs with logs."""
    from app.data import anomaly, browse
    from app.data.scope import Scope
    from app.data.viewer import Viewer
    from lake import settings
    from lake.jobs import run_job

    cfg = settings.load()
    s = Scope(lake_dir, Viewer("alice@stsci.edu", team=True), cfg)
    first = browse.datasets(s, limit=12).column("rootname").to_pylist()[::3]
    others = (
        s.sql("SELECT rootname FROM master USING SAMPLE reservoir(300 ROWS) REPEATABLE (5)")
        .column(0)
        .to_pylist()
    )
    kinds = list(anomaly.ANOMALY_TYPES)[:-1]
    for i, r in enumerate([*first, *others]):
        anomaly.flag(s, r, kinds[i % len(kinds)], f"bench flag {i}")
    for _ in range(3):
        for job in ("check-duplicate-proposal-folders", "make-cron-summary"):
            run_job(lake_dir, job, cfg={**cfg, "scheduler": "synchronous"})


def monitor_rows(lake_dir: Path, cards_roots: list[str]) -> int:
    """The UVIS darks monitor's results as 17 years of it would be (the Monitors page opens on it): a
    superdark of 8 frames every 4 days, 4 amps each (dark current rising with time, hot pixels growing
    through each 28-day anneal cycle), stored as a monitor run stores them, and the run's PNGs."""
    from lake import settings
    from lake.jobs import _store_findings
    from monitors.framework import REFUSED, table_name
    from monitors.registry import get

    m = get("uvis-darks")
    rng = np.random.default_rng(11)
    n = 1504
    starts = 54983.0 + 4.0 * np.arange(n) + rng.uniform(0, 0.5, n)
    frames = np.array(cards_roots)[rng.integers(0, len(cards_roots), (n, 8))]
    amps = np.array(["A", "B", "C", "D"])
    anneal = 54983.0 + 28.0 * np.floor((starts - 54983.0) / 28.0)
    npix = 2051 * 2048
    rows: dict[str, list[Any]] = {f.name: [] for f in m.schema} | {"path": [], REFUSED: []}
    for i, t0 in enumerate(starts):
        years = (t0 - 54983.0) / 365.25
        for a, amp in enumerate(amps):
            hot = int(npix * (0.002 + 0.0002 * years + 0.0004 * (t0 - anneal[i]) / 28.0))
            pix = ";".join(f"{x},{y},{v:.1f}" for x, y, v in rng.integers(0, 2048, (40, 3)))
            rows["rootname"].append(frames[i, 0])
            rows["expstart"].append(float(t0))
            rows["window_end"].append(float(t0 + 3.5))
            rows["n_frames"].append(8)
            rows["anneal_mjd"].append(float(anneal[i]))
            rows["chip"].append(1 if a < 2 else 2)
            rows["amp"].append(amp)
            rows["median_dark"].append(float(5.0 + 0.45 * years + 0.3 * a + rng.normal(0, 0.25)))
            rows["n_hot"].append(hot)
            rows["hot_fraction"].append(hot / npix)
            rows["n_pixels"].append(npix)
            rows["hot_pixels"].append(pix)
            rows["inputs"].append(";".join(f"{r[:7]}/{r}_raw.fits" for r in frames[i]))
            rows["left_out"].append(None)
            rows["path"].append(f"{frames[i, 0][:7]}/{frames[i, 0]}_raw.fits")
            rows[REFUSED].append(None)
    schema = m.schema.append(pa.field("path", pa.string())).append(pa.field(REFUSED, pa.string()))
    t = pa.table({f.name: pa.array(rows[f.name], f.type) for f in schema}, schema=schema)
    _store_findings(lake_dir, settings.load(), table_name(m.name), "bench-monitor", t, replace=True)
    measured = t.drop_columns([REFUSED])
    out = lake_dir / "reports" / "monitors" / m.name
    out.mkdir(parents=True, exist_ok=True)
    m.plot(measured, m.trend(measured), out)
    return t.num_rows


def probes(lake_dir: Path, with_cards: list[str]) -> tuple[tuple[str, str], list[str]]:
    """Cones (the median pointing of NGC4000's datasets; the name NGC 4485) and the datasets with headers that
    a guest may see (the guest's first views: other datasets than the team member's)."""
    from app.data.scope import Scope
    from app.data.viewer import GUEST

    guest = Scope(lake_dir, GUEST)
    pt = guest.sql("SELECT median(ra_targ), median(dec_targ) FROM master WHERE targname = 'NGC4000'")
    cone = f"{pt.column(0)[0].as_py():.5f} {pt.column(1)[0].as_py():+.5f}"
    # (a small lake, while developing, may have no NGC4485)
    n = guest.sql("SELECT count(*) FROM master WHERE targname = 'NGC4485'").column(0)[0].as_py()
    name = "NGC 4485" if n else "NGC 4000"
    return (cone, name), [r for r in reversed(with_cards) if guest.visible(r)]


# ------------------------------------------------------------------------------------------- server
def page_time(app: str, page: str, who: str, params: dict[str, str]) -> float:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(app, default_timeout=600)
    at.user = USERS[who]
    at.run()
    at.switch_page(f"app_pages/{page}.py")
    for k, v in params.items():
        at.query_params[k] = v
    at.run()  # warm: caches, imports, the role's sandbox
    assert not at.exception, (page, who, [e.value for e in at.exception])
    return best_of(at.run, 3)


def server_times(base: Path, root: str, cone: str) -> tuple[list[Any], list[Any]]:
    """Each page's server time (AppTest), both roles, and the site's cone search on the scope."""
    from streamlit.testing.v1 import AppTest

    from app.data import search
    from app.data.scope import Scope
    from app.data.viewer import GUEST

    baseline_app = base / "baseline-server.py"
    baseline_app.write_text("import streamlit as st\nst.title('baseline')\n")
    at = AppTest.from_file(str(baseline_app)).run()
    baseline = best_of(at.run, 3)
    app = str(ROOT / "app" / "streamlit_app.py")
    rows: list[Any] = [("baseline: a page with a title only", 1000 * baseline, "ms")]
    checks: list[Any] = []
    for who in USERS:
        for page in PAGES:
            params = {"rootname": root} if page == "dataset" else {}
            t = page_time(app, page, who, params)
            rows.append((f"{page} ({who})  [{t / baseline:,.0f}x baseline]", 1000 * t, "ms"))
            checks.append((f"server {page} ({who}): 1 s / time", 1.0 / t, 1.0, "x"))
    scope = Scope(os.environ["QUICKLAKE_LAKE"], GUEST)
    t = best_of(lambda: search.find(scope, cone, "180 arcsec"), 5)
    rows.append(("cone search, the site's guest scope (1 query)", 1000 * t, "ms"))
    return rows, checks


# ------------------------------------------------------------------------------------------ browser
def app_env(lake_dir: Path, base: Path, team: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUICKLAKE_")}
    env |= {
        "QUICKLAKE_LAKE": str(lake_dir),
        "QUICKLAKE_ARCHIVE": str(base / "archive"),
        "QUICKLAKE_PROPRIETARY_MONTHS": "12",
        "QUICKLAKE_CONFIG": str(base / "none.toml"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "PYTHONWARNINGS": "ignore",
    }
    if team:
        env["QUICKLAKE_LOCAL_USER"] = "alice@stsci.edu"
    return env


def new_page(browser: Any) -> Any:
    return browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()


def nav(pg: Any, label: str) -> Any:
    return pg.locator('[data-testid="stSidebarNav"] a').filter(has_text=label).first


def baseline_times(browser: Any, url: str, repeat: int) -> Meter:
    pg = new_page(browser)
    m = Meter(pg)
    for i in range(repeat + 1):
        # (the first: the browser's cache and the server's first session)
        m.timed("load" if i else None, lambda: pg.goto(f"{url}/"), lambda: done(pg, "Baseline A"))
        m.timed("click" if i else None, lambda: nav(pg, "B").click(), lambda: done(pg, "Baseline B"))
        m.timed("click" if i else None, lambda: nav(pg, "A").click(), lambda: done(pg, "Baseline A"))
    pg.context.close()
    return m


def page_times(m: Meter, url: str, repeat: int) -> None:
    """Each page loaded (after one first visit) and reached by its sidebar link, ``repeat`` times."""
    pg = m.pg
    for name, path, h1, _, text in BROWSER_PAGES:

        def until(h1: str = h1, text: str | None = text) -> None:
            done(pg, h1, text)

        for i in range(repeat + 1):  # (the first visit: not kept)
            m.timed(f"{name} (load)" if i else None, lambda path=path: pg.goto(f"{url}/{path}"), until)
    for _ in range(repeat):
        for name, _, h1, label, text in BROWSER_PAGES:
            m.timed(
                f"{name} (click)",
                lambda label=label: nav(pg, label).click(),
                lambda h1=h1, text=text: done(pg, h1, text),
            )


def dataset_times(m: Meter, url: str, fresh: list[str], repeat: int) -> None:
    """A dataset's first view (loaded; typed in the Rootname box) and warm (loaded again)."""
    pg = m.pg
    for r in fresh[:repeat]:
        m.timed(
            "dataset first view (load)",
            lambda r=r: pg.goto(f"{url}/dataset?rootname={r}"),
            lambda r=r: done(pg, r, "SIMPLE  ="),
        )
    last = fresh[repeat - 1]
    for _ in range(repeat):
        m.timed(
            "dataset warm (load)",
            lambda: pg.goto(f"{url}/dataset?rootname={last}"),
            lambda: done(pg, last, "SIMPLE  ="),
        )
    for r in fresh[repeat : 2 * repeat]:
        box = pg.get_by_label("Rootname")
        box.fill(r)
        m.timed("dataset first view (typed)", lambda box=box: box.press("Enter"),
                lambda r=r: done(pg, r, "SIMPLE  ="))  # fmt: skip


def interaction_times(m: Meter, url: str, cones: tuple[str, str], repeat: int) -> None:
    """Query form, SQL console, the sky map, cone searches: from the click to the result drawn."""
    import re

    pg = m.pg

    def form(label: str | None) -> None:
        pg.goto(f"{url}/query")
        done(pg, "Query")
        pg.get_by_label("Target contains").fill("NGC")

        def until() -> None:
            pg.wait_for_url(re.compile(r"find=1"), timeout=120_000)
            done(pg, text=" datasets · ")

        m.timed(label, lambda: pg.get_by_role("button", name="Find datasets").click(), until)

    def sql(label: str | None) -> None:
        pg.goto(f"{url}/query?tab=SQL")
        done(pg, "Query")
        run = pg.get_by_role("button", name="Run")
        m.timed(label, run.click, lambda: done(pg, text=" rows in "))

    def search(label: str | None, text: str) -> None:
        pg.goto(f"{url}/search")
        done(pg, "Search")
        pg.get_by_label("Target, rootname, proposal or position").fill(text)
        click = pg.get_by_role("button", name="Search")
        m.timed(label, click.click, lambda: done(pg, text="datasets within"))

    def sky(label: str | None) -> None:
        pg.goto(f"{url}/search")
        done(pg, "Search")
        tab = pg.get_by_role("tab", name="Sky map")
        m.timed(label, tab.click, lambda: done(pg, text="are ringed"))

    runs = {
        "query form: targets containing NGC": form,
        "search: the Sky map tab opened": sky,
        "SQL console: the original Quicklook query": sql,
        f"cone search: {cones[0]}, 180 arcsec": lambda label: search(label, cones[0]),
        f"cone search: {cones[1]}, 180 arcsec": lambda label: search(label, cones[1]),
    }
    for name, run in runs.items():
        run(None)  # first: the server's caches
        for _ in range(repeat):
            run(name)


def role_times(
    browser: Any, url: str, role: str, fresh: list[str], cones: tuple[str, str], repeat: int
) -> Meter:
    """One role's server: its first page (the sandbox built), then every page and interaction."""
    pg = new_page(browser)
    m = Meter(pg)
    t0 = time.perf_counter()
    first = timed(lambda: pg.goto(url), lambda: done(pg, "Quicklake", "Job status"))
    print(f"{role}: first page after the server started (its sandbox built) in {first:.1f} s", flush=True)
    page_times(m, url, repeat)
    dataset_times(m, url, fresh, repeat)
    interaction_times(m, url, cones, repeat)
    print(f"{role}: measured in {time.perf_counter() - t0:.0f} s", flush=True)
    pg.context.close()
    return m


def browser_times(
    lake_dir: Path, base: Path, fresh: list[str], public: list[str], cones: tuple[str, str], repeat: int
) -> tuple[Meter, dict[str, Meter]]:
    """Baseline and, per role, every page and interaction in Chromium."""
    from app.site import command
    from lake import settings

    baseline_py = base / "baseline.py"
    baseline_py.write_text(BASELINE)
    cfg = settings.load({"lake": str(lake_dir)})
    by_role: dict[str, Meter] = {}
    with chromium() as browser:
        bcmd = command(cfg, free_port())
        bcmd[bcmd.index(str(ROOT / "app" / "streamlit_app.py"))] = str(baseline_py)
        with server(bcmd, app_env(lake_dir, base, False), base / "baseline.log", cwd=base) as url:
            base_m = baseline_times(browser, url, repeat)
        for role, team in (("team", True), ("guest", False)):
            port = free_port()
            cmd = [str(Path(sys.executable).with_name("ql")), "app", "--port", str(port)]
            with server(cmd, app_env(lake_dir, base, team), base / f"app-{role}.log") as url:
                by_role[role] = role_times(browser, url, role, fresh if team else public, cones, repeat)
    return base_m, by_role


def browser_report(base_m: Meter, by_role: dict[str, Meter]) -> int:
    med = {k: statistics.median(v) for k, v in base_m.wall.items()}
    rows: list[Any] = [
        (f"baseline {k}: title-only page (best {1000 * min(v):,.0f}; "
         f"browser busy {1000 * statistics.median(base_m.busy[k]):,.0f})", 1000 * med[k], "ms")
        for k, v in base_m.wall.items()
    ]  # fmt: skip
    checks: list[Any] = []
    for role, m in by_role.items():
        for name, ts in m.wall.items():
            t = statistics.median(ts)
            kind = "click" if name.endswith(("(click)", "(typed)")) or ":" in name else "load"
            busy = 1000 * statistics.median(m.busy[name])
            said = f"best {1000 * min(ts):,.0f}; busy {busy:,.0f}; {t / med[kind]:.1f}x"
            rows.append((f"{name} ({role}) [{said}]", 1000 * t, "ms"))
            target = 2.0 if "first view" in name else 1.0
            checks.append((f"{name} ({role}) < {target:g} s", target / t, 1.0, "x"))
    return report(
        "Chromium, median ms of the warm runs [best; the browser's main thread busy (script, layout, "
        "paint); median / baseline of the same kind]",
        rows,
        checks,
    )


def loadavg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg()) + f" (1, 5, 15 min; {os.cpu_count()} cores)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--cards", type=int, default=10_000_000)
    ap.add_argument("--cone-rows", type=int, default=5_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-server", action="store_true", help="skip the AppTest server times")
    ap.add_argument("--no-cone", action="store_true", help="skip the cone search on --cone-rows")
    ap.add_argument("--workdir", help="keep the lake here (default: a temporary folder); reused if there")
    ap.add_argument("--build-only", action="store_true", help="build the lake in --workdir and stop")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.workdir or tmp)
        t0 = time.perf_counter()
        os.environ |= {
            k: v for k, v in app_env(base / "lake", base, False).items() if k.startswith("QUICKLAKE_")
        }
        if (base / "bench-lake.txt").exists():  # (--workdir: the lake of an earlier run)
            lake_dir, with_cards = base / "lake", (base / "bench-lake.txt").read_text().split()
        else:
            lake_dir, _big, master = build(base, args.rows)
            with_cards = write_lake(lake_dir, base, master, args.cards)
            flags_and_runs(lake_dir)
            monitor_rows(lake_dir, with_cards)
            (base / "bench-lake.txt").write_text("\n".join(with_cards))
        took = time.perf_counter() - t0
        print(f"built a lake of {args.rows:,} header rows + {args.cards:,} cards in {took:.0f} s", flush=True)
        if args.build_only:
            return 0
        cones, public = probes(lake_dir, with_cards)
        failed = 0
        if not args.no_server:
            rows, checks = server_times(base, with_cards[0], cones[0])
            failed |= report(
                f"server time (AppTest), best of 3 warm, {args.rows:,} header rows", rows, checks
            )
        # (a shared machine: the times follow its load; the baseline of the same run does too)
        print(f"load average before the browser runs: {loadavg()}", flush=True)
        base_m, by_role = browser_times(lake_dir, base, with_cards[1:], public, cones, args.repeat)
        print(f"load average after the browser runs: {loadavg()}", flush=True)
        failed |= browser_report(base_m, by_role)
    if args.no_cone:
        return failed
    said, rows, checks = cone_measure(args.cone_rows, 180.0)
    print(f"\n{said}")
    failed |= report("cone search, ms per cone (warm, best of 5, 20 cones)", rows, checks)
    return failed


if __name__ == "__main__":
    raise SystemExit(main())
