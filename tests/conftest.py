"""Shared fixtures: real files from ../shared/data/real and small generated archives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT.parent / "shared" / "data" / "real"


def real_files() -> list[Path]:
    return sorted(REAL.glob("*/*.fits"))


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # settings must come from the test, never from the developer's environment
    for k in list(os.environ):
        if k.startswith("QUICKLAKE_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("QUICKLAKE_CONFIG", str(tmp_path / "no-config.toml"))


@pytest.fixture(scope="session")
def small_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ingest.archivegen import generate

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
    from ingest.archivegen import generate

    dst = tmp_path / "archive"
    generate(dst, datasets=40, seed=7)
    return dst
