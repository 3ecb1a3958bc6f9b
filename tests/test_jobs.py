"""The job layer and the eleven maintenance jobs, on a generated archive with planted problems."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner

import lake
from ingest.archivegen.generate import DAYS_PER_MONTH, datetime_to_mjd, generate, plan, proprietary_months
from ingest.fetch import write_sparse
from ingest.run import ingest
from lake import jobs, settings
from lake.cli import main
from lake.jobs import JobContext, JobResult, run_job

SEED, N = 7, 40
ROOT = Path(__file__).resolve().parent.parent


def findings(lk: Path, job: str, run_id: str) -> list[tuple[str, str]]:
    t = lake.read_sql(
        f"SELECT path, problem FROM {jobs.findings_table(job)} WHERE run_id = '{run_id}' ORDER BY path", lk
    )
    return [(r["path"], r["problem"]) for r in t.to_pylist()]


def _copy_sparse(src: str, dst: str) -> str:
    """shutil.copy2 that keeps the generated files' holes (a dense copy is ~170 MB of zeros each)."""
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while chunk := fin.read(1 << 22):
            write_sparse(fout, chunk)
        fout.truncate()
    shutil.copystat(src, dst)
    return dst


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """An ingested archive, its mirror, a MAST listing, and the planted problems."""
    archive, mirror, lk = tmp_path / "archive", tmp_path / "mirror", tmp_path / "lake"
    generate(archive, N, seed=SEED)
    generate(mirror, N, seed=SEED)
    ingest(lk, str(archive), scheduler="synchronous")
    files = sorted(p.relative_to(archive).as_posix() for p in archive.rglob("*.fits"))
    exps = plan(N, SEED)
    now = datetime_to_mjd(datetime.now(UTC))
    # proprietary: observed within the proposal's period (the generator's proposals.csv)
    secret = sorted(
        {e.proposid for e in exps if now < e.expstart + proprietary_months(e.proposid, SEED) * DAYS_PER_MONTH}
    )
    public = sorted({e.proposid for e in exps} - set(secret))
    assert secret and len(public) > 2

    def pick(suffix: str, k: int = 0, avoid: tuple[str, ...] = ()) -> str:
        return [f for f in files if f.endswith(suffix) and not f.startswith(avoid)][k]

    gone = pick("_flt.fits", 0)  # deleted here and in the mirror
    fetchable = pick("_flt.fits", 1)  # deleted here, still in the mirror
    (archive / gone).unlink()
    (mirror / gone).unlink()
    (archive / fetchable).unlink()
    moved = pick("_spt.fits", 0, (gone.split("/")[0],))
    prop, visit, name = moved.split("/")
    other_visit = next(p.name for p in (archive / prop).iterdir() if p.name != visit)
    moved_to = f"{prop}/{other_visit}/{name}"
    os.replace(archive / moved, archive / moved_to)
    (archive / str(secret[0])).chmod(0o755)
    truncated = pick("_raw.fits", 2, (prop, gone.split("/")[0], fetchable.split("/")[0]))
    with open(archive / truncated, "r+b") as f:
        f.truncate((archive / truncated).stat().st_size - 1000)
    src_prop = public[-1]
    src_visit = sorted((archive / str(src_prop)).iterdir())[0]
    dst_prop = next(p for p in public if p != src_prop and str(p) not in {prop, truncated.split("/")[0]})
    copied = [f"{dst_prop}/{src_visit.name}/{f.name}" for f in sorted(src_visit.iterdir())]
    shutil.copytree(src_visit, archive / str(dst_prop) / src_visit.name, copy_function=_copy_sparse)
    listing = tmp_path / "mast.csv"
    names = [f.rsplit("/", 1)[1] for f in files] + ["ibzz99aaq_flt.fits"]
    listing.write_text("filename\n" + "\n".join(names) + "\n")
    monkeypatch.setenv("QUICKLAKE_ARCHIVE", str(archive))
    monkeypatch.setenv("QUICKLAKE_LAKE", str(lk))
    monkeypatch.setenv("QUICKLAKE_MIRROR", str(mirror))
    monkeypatch.setenv("QUICKLAKE_MAST_LISTING", str(listing))
    monkeypatch.setenv("QUICKLAKE_SCHEDULER", "synchronous")
    return {
        "lake": lk,
        "archive": archive,
        "mirror": mirror,
        "gone": gone,
        "fetchable": fetchable,
        "moved": moved,
        "moved_to": moved_to,
        "secret": str(secret[0]),
        "truncated": truncated,
        "copied": copied,
        "dup_roots": sorted({c.rsplit("/", 1)[1].split("_")[0] for c in copied}),
    }


def test_each_job_reports_exactly_the_planted_problems(site: dict[str, Any]) -> None:
    lk = site["lake"]
    copied = site["copied"]

    r = run_job(lk, "check-lake2fsys")
    assert r.status == "success"
    assert findings(lk, "check-lake2fsys", r.run_id) == sorted(
        [
            (site["gone"], "vanished"),
            (site["fetchable"], "vanished"),
            (site["moved"], "vanished"),
            (site["truncated"], "changed"),
        ]
    )

    r = run_job(lk, "check-fsys2lake")
    assert findings(lk, "check-fsys2lake", r.run_id) == sorted(
        [(site["moved_to"], "not-in-lake"), (site["truncated"], "changed")]
        + [(c, "not-in-lake") for c in copied]
    )

    r = run_job(lk, "check-filesystem")
    assert findings(lk, "check-filesystem", r.run_id) == sorted(
        [
            (site["secret"], "world-accessible"),
            (site["moved_to"], "wrong-folder"),
            (site["truncated"], "truncated"),
        ]
        + [(c, "wrong-folder") for c in copied]
    )

    r = run_job(lk, "check-duplicate-proposal-folders")
    assert findings(lk, "check-duplicate-proposal-folders", r.run_id) == [
        (root, "duplicate-proposal-folders") for root in site["dup_roots"]
    ]

    r = run_job(lk, "check-mast2lake")
    assert findings(lk, "check-mast2lake", r.run_id) == [("ibzz99aaq_flt.fits", "missing-from-lake")]

    r = run_job(lk, "get-proposal-status")
    status = (
        lake.read_sql(
            "SELECT sum(expected_files - present_files) FROM findings_get_proposal_status "
            f"WHERE run_id = '{r.run_id}'",
            lk,
        )
        .column(0)[0]
        .as_py()
    )
    assert status == 0  # nothing is missing from the lake yet: the ingest has not seen the changes

    # get-missing-files: the lake learns of the vanished files, fetches the one the mirror has
    assert run_job(lk, "run-ingest").status == "success"
    r = run_job(lk, "get-missing-files")
    # fetched: the deleted file, the moved file's original, and a good copy over the truncated one
    assert r.status == "success" and r.counts["fetched"] == 3
    got = findings(lk, "get-missing-files", r.run_id)
    assert got == sorted(
        [
            (site["fetchable"], "fetched"),
            (site["moved"], "fetched"),
            (site["truncated"], "fetched"),
            (site["gone"], "not-fetched"),
        ]
    )
    got_file, mirror_file = site["archive"] / site["fetchable"], site["mirror"] / site["fetchable"]
    assert got_file.read_bytes() == mirror_file.read_bytes()
    # the generated file's zeros stay holes: no more disk than the mirror's copy
    assert got_file.stat().st_blocks <= mirror_file.stat().st_blocks + 64
    ok = (
        lake.read_sql(f"SELECT status FROM files WHERE path = '{site['fetchable']}'", lk)
        .column(0)
        .to_pylist()
    )
    assert ok == ["ok"]  # ingested again
    r = run_job(lk, "check-lake2fsys")
    assert findings(lk, "check-lake2fsys", r.run_id) == []
    # a second ingest has nothing to do, and says so
    assert run_job(lk, "run-ingest").status == "no-work"


def test_new_datasets_board_and_plots(site: dict[str, Any]) -> None:
    lk = site["lake"]
    r = run_job(lk, "get-new-datasets")
    n_datasets = lake.read_sql("SELECT count(*) FROM master", lk).column(0)[0].as_py()
    assert r.status == "success" and r.counts["new_datasets"] == n_datasets >= N
    assert run_job(lk, "get-new-datasets").status == "no-work"
    r = run_job(lk, "make-cron-summary")
    assert r.status == "success" and (lk / "reports" / "cron_summary.png").stat().st_size > 5000
    b = {x["job"]: x for x in jobs.board(lk)}
    assert b["get-new-datasets"]["colour"] == "green" and b["check-mast2lake"]["colour"] == "grey"
    later = datetime.now(UTC) + timedelta(days=3)
    assert {x["job"]: x for x in jobs.board(lk, later)}["get-new-datasets"]["colour"] == "lightgreen"
    r = run_job(lk, "make-log-plots")
    assert r.status == "success" and (lk / "reports" / "job_runs.png").stat().st_size > 5000
    # runs are readable from DuckDB with the lake
    n = lake.connect(lk).execute("SELECT count(*) FROM job_runs WHERE job = 'get-new-datasets'").fetchone()
    assert n == (2,)


def test_failure_is_recorded_and_config_errors_name_the_setting(
    site: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # a job with nothing configured is skipped, naming the setting: not red on every run (#20)
    monkeypatch.delenv("QUICKLAKE_MAST_LISTING")
    r = run_job(site["lake"], "check-mast2lake")
    assert r.status == "skipped" and "set 'mast_listing'" in (r.error or "")
    assert "mast_listing" in r.log_path.read_text()
    res = CliRunner().invoke(main, ["run", "check-mast2lake"])
    assert res.exit_code == 0 and "skipped" in res.output and "mast_listing" in res.output
    board = {b["job"]: b for b in jobs.board(site["lake"])}
    assert board["check-mast2lake"]["colour"] == "grey"
    # a listing that cannot be read is a failure, recorded and red
    monkeypatch.setenv("QUICKLAKE_MAST_LISTING", str(tmp_path / "no-such-listing.csv"))
    r = run_job(site["lake"], "check-mast2lake")
    assert r.status == "failed" and "no-such-listing.csv" in (r.error or "")
    res = CliRunner().invoke(main, ["run", "check-mast2lake"])
    assert res.exit_code == 1 and "failed" in res.output
    assert {b["job"]: b for b in jobs.board(site["lake"])}["check-mast2lake"]["colour"] == "red"
    res = CliRunner().invoke(main, ["run", "no-such-job"])
    assert res.exit_code == 1 and "no job 'no-such-job'" in res.output


def test_concurrent_runs_one_success_one_skipped(
    site: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(ctx: JobContext) -> JobResult:
        started.set()
        release.wait(30)
        return JobResult(True, {"n": 1})

    monkeypatch.setattr(jobs, "job_function", lambda name: slow)  # the runner resolves jobs through it
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(run_job(site["lake"], "check-filesystem")))
    t.start()
    assert started.wait(30)
    second = run_job(site["lake"], "check-filesystem")
    release.set()
    t.join(30)
    assert second.status == "skipped-locked" and out[0].status == "success"


@pytest.mark.slow
def test_killed_run_is_recovered_by_the_next(tmp_path: Path) -> None:
    archive, lk = tmp_path / "archive", tmp_path / "lake"
    generate(archive, 150, seed=2)
    env = {
        **os.environ,
        "QUICKLAKE_ARCHIVE": str(archive),
        "QUICKLAKE_LAKE": str(lk),
        "QUICKLAKE_SCHEDULER": "synchronous",
        "QUICKLAKE_BATCH_FILES": "50",
        "PYTHONPATH": str(ROOT),
    }
    p = subprocess.Popen([sys.executable, "-m", "lake", "run", "run-ingest"], env=env, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and not list((lk / "warehouse").rglob("*.parquet")):
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    before = jobs.runs(lk).to_pylist()
    assert [r["status"] for r in before] == ["running"]  # the dead run's start, no end
    r = subprocess.run(
        [sys.executable, "-m", "lake", "run", "run-ingest"], env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    after = {x["run_id"]: x for x in jobs.runs(lk).to_pylist()}
    assert after[before[0]["run_id"]]["status"] == "failed" and "died" in after[before[0]["run_id"]]["error"]
    assert sorted(x["status"] for x in after.values()) == ["failed", "success"]
    on_disk = len(list(archive.rglob("*.fits")))
    assert lake.read_sql("SELECT count(*) FROM files WHERE status = 'ok'", lk).column(0)[0].as_py() == on_disk


def test_schedule_due_and_cron_line(site: dict[str, Any], tmp_path: Path) -> None:
    lk = site["lake"]
    sched = jobs.schedule(None)
    every = set(jobs.registry())  # the monitors are scheduled too (#20)
    assert set(sched) == every
    now = datetime.now(UTC)
    assert set(jobs.due(lk, sched, now)) == every  # never run: everything is due
    run_job(lk, "make-cron-summary")
    assert "make-cron-summary" not in jobs.due(lk, {"make-cron-summary": "0 0 1 1 *"}, now)
    f = tmp_path / "s.toml"
    f.write_text('[schedule]\n"check-filesystem" = "not cron"\n')
    with pytest.raises(Exception, match="not a cron expression"):
        jobs.schedule(f)
    res = CliRunner().invoke(main, ["cron-line"])
    assert res.exit_code == 0 and "*/5 * * * *" in res.output
    assert (lk / "quicklake.toml").stat().st_mode & 0o077 == 0  # it may hold secrets: the owner's only
    # cron's entry works from another directory with a fresh environment: every job succeeds or is
    # skipped for a reason it names; the settings travel in the quicklake.toml the entry names (#20)
    entry = next(line for line in res.output.splitlines() if line.startswith("*/5 "))
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    done = subprocess.run(["bash", "-c", entry.split(" ", 5)[5]], cwd=home, env=env, timeout=900)
    assert done.returncode == 0, (lk / "logs" / "cron.log").read_text()[-3000:]
    board = {b["job"]: b for b in jobs.board(lk)}
    assert set(board) == every
    assert {b["latest_status"] for b in board.values()} <= {"success", "no-work", "skipped"}, board
    assert board["run-ingest"]["colour"] == "green"
    # every findings table the README names exists once its job has run
    have = set(lake.tables(lk))
    for name, job in jobs.registry().items():
        if job.findings and not job.monitor and board[name]["latest_status"] == "success":
            assert jobs.findings_table(name) in have, name
    res = CliRunner().invoke(main, ["jobs"])
    assert res.exit_code == 0 and "make-cron-summary" in res.output
    res = CliRunner().invoke(main, ["jobs", "--job", "make-cron-summary"])  # its board row and runs only
    assert res.exit_code == 0 and "run-ingest" not in res.output, res.output
    assert res.output.splitlines()[0].startswith("make-cron-summary") and " ago" in res.output
    res = CliRunner().invoke(main, ["jobs", "--job", "nosuch"])
    assert res.exit_code == 1 and res.output.startswith("Error: no job 'nosuch'; the jobs are "), res.output
    rid = jobs.runs(lk, "make-cron-summary").column("run_id")[0].as_py()
    res = CliRunner().invoke(main, ["jobs", "log", rid])
    assert res.exit_code == 0 and "board written" in res.output


def test_state_tables_in_catalog_duckdb(site: dict[str, Any]) -> None:
    lk = site["lake"]
    run_job(lk, "check-duplicate-proposal-folders")  # stores findings: publishes catalog.duckdb
    import duckdb

    con = duckdb.connect(str(lk / "catalog.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM job_runs").fetchone()[0] >= 1
    assert pa.table({"a": [1]}).num_rows == 1


def test_run_ingest_while_another_writer_holds_the_lake_is_skipped_locked(tmp_path: Path) -> None:
    """A cron run-ingest during a manual ingest or maintenance (the lake's writer lock held by another
    writer) is `skipped-locked`, naming the holder; it was recorded `failed`."""
    from lake.tables import Lake

    archive, lk = tmp_path / "archive", tmp_path / "lake"
    generate(archive, 2, seed=SEED)
    cfg = {**settings.load({"lake": str(lk)}), "archive": str(archive), "scheduler": "synchronous"}
    with Lake(lk).writer():
        r = run_job(lk, "run-ingest", cfg=cfg)
    assert r.status == "skipped-locked" and "being written by another process" in (r.error or ""), r
    assert {b["job"]: b for b in jobs.board(lk)}["run-ingest"]["colour"] != "red"
    assert run_job(lk, "run-ingest", cfg=cfg).status == "success"
