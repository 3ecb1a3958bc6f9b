"""Nothing left behind (#20): after a rebuild and maintenance, every folder and file of the warehouse is
one a snapshot of the published namespace reads."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from ingest.run import ingest
from lake.cli import main
from lake.maintenance import _referenced
from lake.tables import Lake


def test_rebuild_then_maintain_leaves_only_what_snapshots_read(tmp_path: Path) -> None:
    from ingest.archivegen.generate import generate

    archive, lk = tmp_path / "archive", tmp_path / "lake"
    generate(archive, datasets=4, seed=5)
    ingest(lk, str(archive), scheduler="synchronous")
    first = Lake(lk).pins().namespace
    ingest(lk, str(archive), scheduler="synchronous", rebuild=True)
    lake = Lake(lk)
    pins = lake.pins()
    assert pins.namespace != first and (lk / "warehouse" / first).exists()  # kept for its readers...
    r = CliRunner().invoke(main, ["maintain", "--lake", str(lk), "--keep-hours", "0"])
    assert r.exit_code == 0, r.output
    # ...until maintenance, once retired for keep_hours: only the published namespace's folders remain
    assert {p.name for p in (lk / "warehouse").iterdir()} == {pins.namespace, f"{pins.namespace}.db"}
    lake = Lake(lk)
    read = set().union(*(_referenced(lake.table(pins, t)) for t in pins.tables))
    files = {str(p) for p in (lk / "warehouse").rglob("*") if p.is_file()}
    assert files and files <= read, sorted(files - read)[:5]
    for folder in (p for p in (lk / "warehouse").rglob("*") if p.is_dir()):
        assert any(f.startswith(f"{folder}/") for f in files), f"{folder} holds nothing a snapshot reads"
