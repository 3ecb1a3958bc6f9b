"""A lake that moves (#20): a copied or moved lake refuses to open until 'ql relocate', then reads every
table as the original did, from its own files only (the original is renamed away while it is read)."""

from __future__ import annotations

import json
import os
import shutil
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

import lake
from ingest.run import ingest
from lake import jobs, settings
from lake.cli import main
from lake.errors import LakeError, LakeMoved
from lake.relocate import relocate


def _everything(root: Path) -> dict[str, list[str]]:
    """Every readable table's rows (sorted, as text) through DuckDB, and the physical tables' rows
    through Polars (the Snapshot reader)."""
    con = lake.connect(root)
    out = {}
    for name in lake.tables(root):
        rows = con.sql(f'SELECT * FROM "{name}"').to_arrow_table().to_pylist()
        out[name] = sorted(repr(r) for r in rows)
    snap = lake.snapshot(root)
    for name in snap.tables:
        out[f"polars:{name}"] = sorted(repr(r) for r in lake.read(name, path=root).rows())
    return out


def _names_only_its_own_files(root: Path) -> None:
    """Every file the lake's catalog, metadata, manifests, catalog.duckdb and pins.json name is inside it."""
    from lake.maintenance import _referenced
    from lake.snapshot import FILES_TABLE
    from lake.tables import Lake

    lk = Lake(root)
    pins = lk.pins()
    named = set().union(*(_referenced(lk.table(pins, t)) for t in pins.tables))
    named |= {v.removeprefix("file://") for v in pins.locations.values()}
    con = duckdb.connect(str(root / "catalog.duckdb"), read_only=True)
    named |= {p for (p,) in con.execute(f"SELECT path FROM {FILES_TABLE}").fetchall()}
    con.close()
    assert len(named) > 50
    assert all(Path(p).is_relative_to(root) and Path(p).exists() for p in named), sorted(named)[:3]


def _paths(root: Path, at: datetime) -> list[tuple[Any, ...]]:
    return sorted(lake.connect(root, as_of=at).execute("SELECT path, status FROM files").fetchall())


def _make(tmp_path: Path) -> tuple[Path, Path, dict[str, Any], str]:
    from ingest.archivegen.generate import generate

    archive, root = tmp_path / "archive", tmp_path / "lake"
    generate(archive, datasets=4, seed=3)
    ingest(root, str(archive), scheduler="synchronous")
    r = CliRunner().invoke(main, ["cron-line", "--lake", str(root)])
    assert r.exit_code == 0, r.output
    (tmp_path / "first-commit").write_text(json.loads((root / "pins.json").read_text())["committed_at"])
    cfg = {**settings.load({"lake": str(root)}), "archive": str(archive), "scheduler": "synchronous"}
    run = jobs.run_job(root, "check-filesystem", cfg=cfg)
    assert run.status in {"success", "no-work"}, run.error
    return archive, root, cfg, run.run_id


def _relocate(root: Path, *extra: str) -> str:
    r = CliRunner().invoke(main, ["relocate", "--lake", str(root), *extra])
    assert r.exit_code == 0, r.output
    return r.output


def test_copied_lake_reads_only_its_own_files(tmp_path: Path) -> None:
    _archive, orig, _cfg, run_id = _make(tmp_path)
    want = _everything(orig)
    assert len([n for n in want if not n.startswith("polars:")]) > 20
    was_then = _paths(orig, datetime.fromisoformat((tmp_path / "first-commit").read_text()))
    copy = tmp_path / "copy"
    shutil.copytree(orig, copy)

    # read as it is, the copy would read the original's files: it refuses, in one line, naming the fix
    with pytest.raises(LakeMoved, match="ql relocate"):
        lake.connect(copy)
    r = CliRunner().invoke(main, ["sql", "--lake", str(copy), "SELECT count(*) FROM cards"])
    assert r.exit_code == 1 and "ql relocate" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1
    # a lake published before pins.json recorded its root is told apart by its metadata locations
    pins = json.loads((copy / "pins.json").read_text())
    legacy = {k: v for k, v in pins.items() if k != "root"}
    (copy / "pins.json").write_text(json.dumps(legacy))
    with pytest.raises(LakeMoved, match=str(orig)):
        lake.snapshot(copy)

    with pytest.raises(LakeError, match="is the catalog of the lake at"):  # never through the original's
        relocate(copy, catalog_uri=f"sqlite:///{orig / 'catalog.sqlite'}")
    assert "relocated" in _relocate(copy)
    assert "nothing to rewrite" in _relocate(copy)  # idempotent
    _names_only_its_own_files(copy)
    away = tmp_path / "original-renamed-away"
    os.rename(orig, away)  # any open of a file of the original now fails
    try:
        assert _everything(copy) == want
        at = datetime.fromisoformat((tmp_path / "first-commit").read_text())  # time travel, too
        assert _paths(copy, at) == was_then
        text, n = jobs.log_text(copy, run_id)  # the site's job log of the copied lake
        assert n > 0 and "check-filesystem" in text
        # the copy is writable: maintenance compacts, expires and deletes in its own folder
        r = CliRunner().invoke(main, ["maintain", "--lake", str(copy), "--keep-hours", "0"])
        assert r.exit_code == 0, r.output
        assert _everything(copy) == want
    finally:
        os.rename(away, orig)
    assert _everything(orig) == want  # relocating the copy never wrote to the original


def test_moved_lake_and_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive, orig, cfg, run_id = _make(tmp_path)
    want = _everything(orig)
    moved, moved_archive = tmp_path / "elsewhere" / "lake", tmp_path / "elsewhere" / "archive"
    moved.parent.mkdir()
    os.rename(orig, moved)
    os.rename(archive, moved_archive)
    with pytest.raises(LakeMoved):
        ingest(moved, str(moved_archive), scheduler="synchronous")
    said = _relocate(moved, "--from", str(orig))
    # the settings cron runs with ('ql cron-line' writes them into the lake folder) name the new place
    assert "ql cron-line" in said
    cron_cfg = tomllib.loads((moved / "quicklake.toml").read_text())["quicklake"]
    assert cron_cfg["lake"] == str(moved)
    assert _everything(moved) == want
    assert jobs.log_text(moved, run_id)[1] > 0

    # the archive's paths in the lake are relative to it: with the setting changed nothing is new
    monkeypatch.setenv("QUICKLAKE_ARCHIVE", str(moved_archive))
    s = ingest(moved, settings.load()["archive"], scheduler="synchronous")
    assert (s.new, s.changed, s.removed, s.ingested, s.errors) == (0, 0, 0, 0, 0)
    # a new file in the moved archive is ingested into the moved lake's own folder
    some = min(moved_archive.rglob("*.fits"), key=lambda p: p.stat().st_size)  # no sparse holes to fill
    shutil.copy2(some, some.with_name(some.name.split("_")[0] + "_shm.fits"))
    s = ingest(moved, str(moved_archive), scheduler="synchronous")
    assert (s.new, s.ingested, s.errors) == (1, 1, 0)
    for f in lake.snapshot(moved).tables["files"].files:
        assert Path(f).is_relative_to(moved), f
    run = jobs.run_job(
        moved, "check-filesystem", cfg={**cfg, "lake": str(moved), "archive": str(moved_archive)}
    )
    assert run.status in {"success", "no-work"}, run.error
