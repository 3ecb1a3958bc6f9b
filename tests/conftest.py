"""Shared fixtures: the real files in tests/data/real (see its PROVENANCE.md) and small generated archives."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT / "tests" / "data" / "real"  # in the repository: a fresh clone tests them
MPLBACKEND = os.environ.get("MPLBACKEND")  # before anything imports streamlit, which sets it to Agg


def real_files() -> list[Path]:
    return sorted(REAL.glob("*/*.fits"))


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    # settings must come from the test, never from the developer's environment
    for k in list(os.environ):
        if k.startswith("QUICKLAKE_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("QUICKLAKE_CONFIG", str(tmp_path / "no-config.toml"))
    # importing streamlit sets MPLBACKEND=Agg (a notebook kernel would then draw nothing), and AppTest
    # installs the app script as __main__ (multiprocessing's spawn, used by LocalCluster, re-runs it)
    if MPLBACKEND is None:
        monkeypatch.delenv("MPLBACKEND", raising=False)
    else:
        monkeypatch.setenv("MPLBACKEND", MPLBACKEND)
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(scope="session")
def small_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ingest.archivegen.generate import generate

    out = tmp_path_factory.mktemp("archive")
    generate(out, datasets=40, seed=7)
    return out


@pytest.fixture(scope="session")
def small_lake(small_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ingest.run import ingest

    lake = tmp_path_factory.mktemp("lake")
    ingest(lake, str(small_archive), scheduler="synchronous", batch_files=60)
    return lake


@pytest.fixture
def archive_copy(tmp_path: Path) -> Path:
    """A private archive to damage; generated again (copying would fill the sparse files' holes)."""
    from ingest.archivegen.generate import generate

    dst = tmp_path / "archive"
    generate(dst, datasets=40, seed=7)
    return dst


@pytest.fixture(scope="session")
def site_lake(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A lake for the site: sparse pixels, a monitor's results, job runs with logs, and known access.

    One GO proposal gets a century-long proprietary period (``secret``), so its datasets are certainly
    proprietary; every other period comes from the generator's ``proposals.csv``.
    """
    import csv

    from ingest.archivegen.generate import generate
    from ingest.run import ingest
    from lake import settings
    from lake.access import read_sql
    from lake.jobs import run_job

    base = tmp_path_factory.mktemp("site")
    archive, lake = base / "archive", base / "lake"
    generate(archive, 100, seed=11, pixels="sparse")
    ingest(lake, str(archive), scheduler="synchronous")
    go = read_sql(
        "SELECT proposid, count(*) AS n FROM master WHERE proposid >= 14000 AND proposid NOT IN "
        "(14529, 15725) AND detector = 'UVIS' GROUP BY proposid ORDER BY n DESC, proposid",
        lake,
    ).to_pylist()
    secret = int(go[0]["proposid"])
    with (archive / "proposals.csv").open() as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        if int(r["proposid"]) == secret:
            r["proprietary_months"] = "1200"
    with (archive / "proposals.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    cfg = {**settings.load({"lake": str(lake)}), "archive": str(archive), "scheduler": "synchronous"}
    runs = {job: run_job(lake, job, cfg=cfg) for job in ("uvis-darks", "check-filesystem")}
    return {"archive": archive, "lake": lake, "cfg": cfg, "secret": secret, "runs": runs}
