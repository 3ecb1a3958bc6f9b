"""Issue #21: the site and the readers against a hostile or unprivileged user.

Spill files, a shared lock, the memory budget, a read-only lake, and what guests see of team members and
proprietary paths.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOBODY = 65534

READER = """
import sys
import lake
from lake.access import read_header

root = sys.argv[1]
assert lake.connect(root).sql("SELECT * FROM job_runs").fetchall(), "no job runs"
assert lake.connect(root).sql("SELECT count(*) FROM anomalies").fetchall()
assert lake.read("master", root).height > 0
path = lake.connect(root).sql("SELECT path FROM files WHERE status = 'ok' LIMIT 1").fetchall()[0][0]
assert read_header(path, 0, root)
print("ok")
"""


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with a digest of its bytes and its mode: a write shows up."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        out[str(p.relative_to(root))] = f"{digest} {oct(st.st_mode)} {st.st_mtime_ns}"
    return out


@pytest.fixture(scope="module")
def readonly_lake() -> Iterator[Path]:
    """A lake (with job runs in state.sqlite) in a world-traversable tree that only root may write."""
    from ingest.archivegen.generate import generate
    from ingest.run import ingest
    from lake import settings
    from lake.jobs import run_job

    base = Path(tempfile.mkdtemp(prefix="ql-readonly-"))  # not under pytest's 0700 tmp folders
    try:
        generate(base / "archive", datasets=6, seed=3)
        ingest(base / "lake", str(base / "archive"), scheduler="synchronous")
        cfg = {**settings.load({"lake": str(base / "lake")}), "archive": str(base / "archive")}
        run_job(base / "lake", "check-fsys2lake", cfg=cfg)
        for d, _, names in os.walk(base):
            os.chmod(d, 0o755)
            for n in names:
                os.chmod(Path(d) / n, 0o644)
        yield base / "lake"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _as_nobody(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "PYTHONPATH": str(ROOT)}
    env["QUICKLAKE_CONFIG"] = "/nonexistent/quicklake.toml"
    return subprocess.run(
        [sys.executable, *args],
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_read_only_user_reads_everything(readonly_lake: Path) -> None:
    before = _tree(readonly_lake)
    assert (readonly_lake / "state.sqlite").exists()
    r = _as_nobody(["-c", READER, str(readonly_lake)], readonly_lake)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]
    for cmd in (["errors"], ["sql", "SELECT run_id, job FROM job_runs"], ["tables"]):
        r = _as_nobody(["-m", "lake", *cmd, "--lake", str(readonly_lake)], readonly_lake)
        assert r.returncode == 0, (cmd, r.stderr[-2000:])
    path = next(iter(sorted((readonly_lake.parent / "archive").rglob("*.fits"))))
    header = ["-m", "lake", "header", str(path), "--ext", "0", "--lake", str(readonly_lake)]
    r = _as_nobody(header, readonly_lake)
    assert r.returncode == 0 and r.stdout.startswith("SIMPLE"), r.stderr[-2000:]
    assert _tree(readonly_lake) == before  # nothing written, created or touched


def test_missing_state_database_reads_as_empty(tmp_path: Path) -> None:
    from lake import state

    tables = state.state_tables(tmp_path)
    assert set(tables) == set(state.STATE_TABLES) and all(t.num_rows == 0 for t in tables.values())
    assert "user" in tables["anomalies"].column_names
    assert state.query(tmp_path, "SELECT count(*) AS n FROM job_events").to_pylist() == [{"n": 0}]
    assert not list(tmp_path.iterdir())  # reading created nothing
