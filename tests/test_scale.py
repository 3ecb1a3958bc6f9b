"""Costs that grow with the work, not with the lake (#16): located reads, bounded rewrites, incremental
master, the known-files join. Each test checks the result against the plain computation over all files."""

from __future__ import annotations

import itertools
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from astropy.io import fits
from polars.testing import assert_frame_equal

import lake
from ingest.run import _master_inputs, ingest
from lake.master import compute_master
from lake.tables import Lake


@pytest.fixture(scope="module")
def batch_lake(small_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake as an ingest of many batches writes it before compaction (one data file per batch)."""
    from ingest import run

    root = tmp_path_factory.mktemp("batch-lake")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run, "COMPACT_BATCHES", 10**9)
        ingest(root, str(small_archive), scheduler="synchronous", batch_files=60)
    return root


def _summary(root: Path, table: str) -> dict[str, str]:
    lk = Lake(root)
    pins = lk.pins()
    snap = lk.table(pins, table).metadata.snapshot_by_id(pins.tables[table])
    return dict(snap.summary.additional_properties) if snap.summary else {}


def test_every_data_file_has_its_path_range_recorded(batch_lake: Path) -> None:
    small_lake = batch_lake
    snap = lake.snapshot(small_lake)
    for name in ("files", "cards", "uvisflt"):
        tf = snap.tables[name]
        assert len(tf.files) > 1 and all(lo is not None and hi is not None for lo, hi in tf.bounds)
        assert tf.num_rows() == lake.read(name, small_lake).height  # counted from the record
        # the recorded range is the file's own
        first = pl.read_parquet(tf.files[0], columns=["path"])["path"]
        assert tf.bounds[0] == (first.min(), first.max())


def test_rows_per_hdu_are_recorded_and_counted_without_reading_a_file(
    batch_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snap = lake.snapshot(batch_lake)
    flt = snap.tables["uvisflt"]
    assert len(flt.files) > 1 and flt.rows_per_hdu() is not None
    want = {n: lake.read(n, batch_lake).height for n in ("uvisflt", "uvisflt_0", "uvisflt_1", "irraw_0")}
    import duckdb

    from lake import access

    def no_reads(*_a: object, **_k: object) -> None:
        raise AssertionError("ql tables read a data file")

    connect = duckdb.connect
    monkeypatch.setattr(access.duckdb, "connect", lambda *a, **k: _NoParquet(connect(*a, **k)))
    monkeypatch.setattr("pyarrow.parquet.read_table", no_reads)
    t = access.row_counts(batch_lake)
    got = dict(zip(t.column("table").to_pylist(), t.column("rows").to_pylist(), strict=True))
    assert {n: got[n] for n in want} == want


class _NoParquet:
    """A DuckDB connection that fails any query reading Parquet."""

    def __init__(self, con: object) -> None:
        self.con = con

    def execute(self, sql: str, *args: object) -> object:
        assert "parquet" not in sql.lower(), sql
        return self.con.execute(sql, *args)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.con, name)


def test_a_located_read_is_the_full_read_from_a_few_files(batch_lake: Path) -> None:
    small_lake = batch_lake
    snap = lake.snapshot(small_lake)
    paths = lake.read("files", small_lake, where="status = 'ok'")["path"].sort().to_list()
    some = [paths[0], paths[len(paths) // 2], paths[-1]]
    cards = snap.tables["cards"]
    assert len(cards.holding(some[:1])) < len(cards.files) / 4
    got = lake.scan("cards", small_lake, paths=some).sort("path", "hdu", "position").collect()
    want = lake.scan("cards", small_lake).filter(pl.col("path").is_in(some)).sort("path", "hdu", "position")
    assert_frame_equal(got, want.collect())
    # per-HDU tables too
    flt = [p for p in paths if p.endswith("_flt.fits")][:2]
    got1 = lake.scan("uvisflt_1", small_lake, paths=flt).collect()
    assert sorted(got1["path"].to_list()) == sorted(
        lake.scan("uvisflt_1", small_lake).filter(pl.col("path").is_in(flt)).collect()["path"].to_list()
    )
    assert got1.height >= 1


def _edit(path: Path, **cards: object) -> None:
    with fits.open(path, mode="update") as hdul:
        for k, v in cards.items():
            hdul[0].header[k] = v
    t = time.time() + 50
    os.utime(path, (t, t))


def test_a_changed_file_rewrites_only_the_data_files_holding_it(
    archive_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingest import run

    monkeypatch.setattr(run, "COMPACT_BATCHES", 10**9)  # many data files per table, as between compactions
    root = tmp_path / "lake"
    ingest(root, str(archive_copy), scheduler="synchronous", batch_files=30)
    before = {t: len(lake.snapshot(root).tables[t].files) for t in ("cards", "uvisflt")}
    victim = sorted(archive_copy.rglob("*_flt.fits"))[0]
    rel = victim.relative_to(archive_copy).as_posix()
    if lake.read("files", root, where=f"path = '{rel}'")["tables"][0] != "uvisflt":
        pytest.skip("first flt is not a UVIS file in this archive")
    _edit(victim, TARGNAME="MOVED-TARGET")
    import threading

    from lake import datafile

    copied: list[tuple[str, bool]] = []  # (the tables' copies are made side by side, ahead of commits)
    real = datafile.rewrite_without

    def spy(paths: list[str], table: str, *args: Any) -> Any:
        copied.append((table, threading.current_thread() is threading.main_thread()))
        return real(paths, table, *args)

    monkeypatch.setattr(datafile, "rewrite_without", spy)
    s = ingest(root, str(archive_copy), scheduler="synchronous")
    assert (s.changed, s.new) == (1, 0)
    # each once, the three a changed file's rows are in side by side (master's: its refresh, after)
    assert sorted(copied) == [("cards", False), ("files", False), ("master", True), ("uvisflt", False)]
    for table in ("cards", "uvisflt"):
        summary = _summary(root, table)
        assert int(summary.get("deleted-data-files", 0)) <= 2 < before[table]
    assert lake.read("uvisflt_0", root, where=f"path = '{rel}'")["targname"].to_list() == ["MOVED-TARGET"]
    assert any("MOVED-TARGET" in line for line in lake.read_header(rel, path=root))


def _changed_uvis_file(archive: Path, root: Path) -> str:
    victim = sorted(archive.rglob("*_flt.fits"))[0]
    rel = victim.relative_to(archive).as_posix()
    if lake.read("files", root, where=f"path = '{rel}'")["tables"][0] != "uvisflt":
        pytest.skip("first flt is not a UVIS file in this archive")
    _edit(victim, TARGNAME="EARLY-TARGET")
    return rel


def _copies_taken(root: Path) -> None:
    """Every copy-on-write file in the warehouse is a data file of a current snapshot (none left over)."""
    current = {f for t in lake.snapshot(root).tables.values() for f in t.files}
    cows = {str(p) for p in (root / "warehouse").rglob("cow-*.parquet")}
    assert cows and cows <= current


@pytest.mark.parametrize("years_span_the_archive", [False, True])
def test_a_cron_ingest_copies_a_changed_files_tables_before_opening_the_catalog(
    archive_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, years_span_the_archive: bool
) -> None:
    from lake import datafile

    root = tmp_path / "lake"
    ingest(root, str(archive_copy), scheduler="synchronous")
    rel = _changed_uvis_file(archive_copy, root)
    if years_span_the_archive:
        # every year's files span the paths (as where programs run for years): only the year partition
        # of the changed file narrows its cards and files rows to one data file each
        monkeypatch.setattr(Lake, "holding", lambda self, pins, table, paths: self.data_files(pins, table))
        assert len(Lake(root).data_files(Lake(root).pins(), "cards")) > tables_module().EARLY_FILES
    events: list[str] = []
    real_copy, real_recover = datafile.rewrite_without, Lake.recover
    monkeypatch.setattr(datafile, "rewrite_without", lambda p, t, *a: events.append(t) or real_copy(p, t, *a))
    started: list[list[str]] = []  # the copies under way when the catalog is opened

    def recover(self: Lake) -> Any:
        started.append(sorted(table for table, *_ in self._early))
        return real_recover(self)

    monkeypatch.setattr(Lake, "recover", recover)
    s = ingest(root, str(archive_copy), scheduler="synchronous", under=[rel.rsplit("/", 1)[0]])
    assert (s.changed, s.new) == (1, 0)
    # the changed file's three tables copied once each, started before the catalog was opened
    assert started == [["cards", "files", "uvisflt"]]
    assert sorted(events) == ["cards", "files", "master", "uvisflt"]
    _copies_taken(root)
    assert lake.read("uvisflt_0", root, where=f"path = '{rel}'")["targname"].to_list() == ["EARLY-TARGET"]
    assert len(lake.read("cards", root, where=f"path = '{rel}' AND keyword = 'TARGNAME'")) == 1


def tables_module() -> Any:
    return sys.modules["lake.tables"]  # (lake.tables is also a function of the package)


def test_early_copies_pyiceberg_does_not_plan_alike_are_made_again_and_deleted(
    archive_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingest import run

    monkeypatch.setattr(run, "COMPACT_BATCHES", 10**9)  # many data files per table
    root = tmp_path / "lake"
    ingest(root, str(archive_copy), scheduler="synchronous", batch_files=30)
    rel = _changed_uvis_file(archive_copy, root)
    real = Lake._holding

    def more(self: Lake, pins: Any, table: str, where: Any) -> dict[str, Any]:
        got = real(self, pins, table, where)
        if table != "cards":
            return got
        every = real(self, pins, table, "True")  # a file the early copies did not consider
        extra = next(f for f in every if f not in got)
        return {**got, extra: every[extra]}

    tables = sys.modules["lake.tables"]  # (lake.tables is also a function of the package)
    dropped: list[list[str]] = []
    real_drop = tables._drop_copies
    monkeypatch.setattr(tables, "_drop_copies", lambda done: dropped.append(list(done)) or real_drop(done))
    monkeypatch.setattr(Lake, "_holding", more)
    s = ingest(root, str(archive_copy), scheduler="synchronous", under=[rel.rsplit("/", 1)[0]])
    assert (s.changed, s.new) == (1, 0)
    assert len(dropped) == 1 and len(dropped[0]) == 1  # cards' early copy, made again after the plan
    _copies_taken(root)
    got = lake.read("cards", root, where=f"path = '{rel}' AND keyword = 'TARGNAME'")
    assert got["value_str"].to_list() == ["EARLY-TARGET"]


def test_incremental_master_is_the_full_master(archive_copy: Path, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    ingest(root, str(archive_copy), scheduler="synchronous", batch_files=30)
    raws = sorted(archive_copy.rglob("*_raw.fits"))  # the raw file's header is the dataset's first choice
    _edit(raws[1], TARGNAME="RENAMED", RA_TARG=123.25, DEC_TARG=-12.5)  # a changed dataset
    gone = raws[5].name.split("_")[0]
    for f in raws[5].parent.glob(f"{gone}_*.fits"):  # a dataset removed whole
        f.unlink()
    raws[3].unlink()  # a dataset losing its first-choice file
    s = ingest(root, str(archive_copy), scheduler="synchronous")
    assert s.changed == 1 and s.removed >= 2
    got = lake.read("master", root)
    lk = Lake(root)
    want = pl.from_arrow(compute_master(_master_inputs(lk, lk.pins())))
    assert isinstance(want, pl.DataFrame)
    assert_frame_equal(got.sort("rootname"), want.sort("rootname"), check_dtypes=False)
    assert gone not in got["rootname"].to_list()
    row = got.filter(pl.col("targname") == "RENAMED")
    assert row.height == 1 and row["ra_targ"][0] == pytest.approx(123.25)


def _estimated_rows(con: Any, view: str) -> int:
    """DuckDB's estimate of a view's rows (the plan's top operator)."""
    plan = con.execute(f'EXPLAIN SELECT * FROM "{view}"').fetchall()[0][1]
    return int(re.findall(r"~([\d,]+) rows", plan)[0].replace(",", ""))


def test_views_estimate_their_rows_after_a_cron_ingest(archive_copy: Path, tmp_path: Path) -> None:
    """DuckDB estimates a scan's rows from its first file: a cron ingest's file of one dataset listed
    first made master look 40,000 times smaller at 4M files, and the original query's join slow."""
    import duckdb

    root = tmp_path / "lake"
    ingest(root, str(archive_copy), scheduler="synchronous", batch_files=30)  # compacted as written
    _edit(sorted(archive_copy.rglob("*_raw.fits"))[2], TARGNAME="RENAMED")
    assert ingest(root, str(archive_copy), scheduler="synchronous").changed == 1
    snap = lake.snapshot(root)
    con = duckdb.connect(str(root / "catalog.duckdb"), read_only=True)
    for view in ("master", "files", "cards", "uvisflt", "irraw"):
        files = snap.tables[view].files
        assert len(files) >= 2 and min(snap.tables[view].rows) < max(snap.tables[view].rows) / 2
        rows = con.execute(f'SELECT count(*) FROM "{view}"').fetchone()[0]
        assert rows / 2 <= _estimated_rows(con, view) <= rows * 2, view
        # after the first file, the rest in path order: an unordered query's rows in archive order
        lows = [snap.tables[view].bounds[i][0] or "" for i in range(1, len(files))]
        assert lows == sorted(lows), view
    con.close()


def test_a_noop_rescan_builds_no_python_row_per_known_file(small_archive: Path, tmp_path: Path) -> None:
    from ingest import run
    from lake.archive import scan_archive

    root = tmp_path / "lake"
    ingest(root, str(small_archive), scheduler="synchronous")
    lk = Lake(root)
    listing = scan_archive(str(small_archive))
    known, new = run._known_files(lk, lk.pins(), listing)
    assert (known, new) == ({}, [])
    extra = type(listing)()
    extra.update(listing)
    first = next(iter(listing))
    extra[first] = (listing[first][0] + 1, listing[first][1])
    extra["99999/Visit01/ib9999aaq_flt.fits"] = (10, 1.0)
    del extra[sorted(listing)[-1]]
    known, new = run._known_files(lk, lk.pins(), extra)
    assert set(known) == {first, sorted(listing)[-1]}
    assert new == ["99999/Visit01/ib9999aaq_flt.fits"]
    assert pa.array(new).type == pa.string()


def test_an_ingest_of_some_folders_leaves_the_rest_alone(archive_copy: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from lake.cli import main

    root = tmp_path / "lake"
    ingest(root, str(archive_copy), scheduler="synchronous")
    n_files = lake.read("files", root).height
    folders = sorted({p.parent for p in archive_copy.rglob("*.fits")})
    a, b = folders[0], folders[-1]
    victim = sorted(a.glob("*_flt.fits"))[0]
    _edit(victim, TARGNAME="IN-SCOPE")
    gone = sorted(b.glob("*.fits"))[0]
    gone.unlink()  # outside the scope: not noticed yet
    rel_a = a.relative_to(archive_copy).as_posix()
    s = ingest(root, str(archive_copy), scheduler="synchronous", under=[rel_a])
    assert (s.scanned, s.changed, s.removed) == (len(list(a.glob("*.fits"))), 1, 0)
    assert lake.read("files", root).height == n_files
    # the CLI takes absolute paths inside the archive; one outside it is a one-line error
    run = CliRunner().invoke(
        main, ["ingest", "--lake", str(root), "--archive", str(archive_copy), str(b)], catch_exceptions=False
    )
    assert run.exit_code == 0, run.output
    assert "1 removed" in run.output
    bad = CliRunner().invoke(main, ["ingest", "--lake", str(root), "--archive", str(archive_copy), "/etc"])
    assert bad.exit_code != 0 and "not inside the archive" in bad.output
    assert len(bad.output.strip().splitlines()) <= 2


def test_a_large_ingest_leaves_a_compacted_lake(archive_copy: Path, tmp_path: Path) -> None:
    """An ingest of many batches compacts what it wrote before it publishes: few files per table and
    partition, each a narrow path range, every card still there."""
    from ingest import run

    root = tmp_path / "lake"
    s = ingest(root, str(archive_copy), scheduler="synchronous", batch_files=10)
    assert s.batches >= run.COMPACT_BATCHES
    snap = lake.snapshot(root)
    assert len(snap.tables["uvisflt"].files) < s.batches / 2
    cards = snap.tables["cards"]
    # compacted in path order: the files' path ranges do not overlap within a year partition
    by_year: dict[str, list[tuple[str, str]]] = {}
    for f, (lo, hi) in zip(cards.files, cards.bounds, strict=True):
        assert lo is not None and hi is not None
        by_year.setdefault(Path(f).parent.name, []).append((lo, hi))
    for ranges in by_year.values():
        ranges.sort()
        assert all(a[1] < b[0] for a, b in itertools.pairwise(ranges))
    n = lake.read("files", root).height
    assert n == s.ingested
    some = sorted(archive_copy.rglob("*_raw.fits"))[2]
    from tests.test_lake import header_lines

    assert lake.read_header(some.relative_to(archive_copy).as_posix(), path=root) == header_lines(some)


@pytest.mark.parametrize("scheduler", ["synchronous", "local"])
def test_master_is_in_step_with_files_at_every_publish(
    scheduler: str, archive_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ingest that publishes after every batch: at each publish, what readers see of ``master`` is the
    master computed from what they see of ``files`` and the header tables (it lagged for most of an ingest:
    1,082 files visible, master empty). On a cluster, the master of every commit is computed on a worker
    (as for a commit of many files), and the commit is published when it is back."""
    from ingest import run

    if scheduler == "local":
        monkeypatch.setattr(run, "INCREMENTAL_MASTER", 0)
        monkeypatch.setattr(run, "COMMIT_SHARE", 0)
    root = tmp_path / "lake"
    seen: list[int] = []
    publish = Lake.publish

    def checked(self: Lake, pins: Any, *a: Any, **kw: Any) -> Any:
        out = publish(self, pins, *a, **kw)
        got = lake.read("master", root)
        want = pl.from_arrow(compute_master(_master_inputs(self, self.pins())))
        assert isinstance(want, pl.DataFrame)
        assert_frame_equal(got.sort("rootname"), want.sort("rootname"), check_dtypes=False)
        seen.append(got.height)
        return out

    monkeypatch.setattr(Lake, "publish", checked)
    # (a new lake is published once, when whole: a first proposal makes it a lake with rows)
    first = sorted(p.name for p in archive_copy.iterdir() if p.name.isdigit())[0]
    ingest(root, str(archive_copy), scheduler="synchronous", under=[first])
    ingest(root, str(archive_copy), scheduler=scheduler, workers=2, batch_files=25, commit_interval=0.0)
    assert len(seen) >= 4 and seen == sorted(seen) and 0 < seen[-3] < seen[-2] < seen[-1], seen


def test_a_batch_over_its_cards_bound_is_written_in_parts_with_the_same_rows(
    small_archive: Path, small_lake: Path, tmp_path: Path
) -> None:
    """A worker holding ``batch_cards`` cards writes what it has and goes on: more data files, the same
    rows in every table (every card exact)."""
    root = tmp_path / "lake"
    s = ingest(root, str(small_archive), scheduler="synchronous", batch_files=60, batch_cards=20_000)
    assert s.batches > 2 * -(-s.ingested // 60)  # parts are committed as batches are
    for name in ("files", "cards", "irima", "uvisflt", "master"):
        drop = [c for c in ("ingested_at",) if c in lake.read(name, root).columns]
        a = lake.read(name, root).drop(drop)
        b = lake.read(name, small_lake).drop(drop)
        key = [c for c in ("path", "hdu", "position", "rootname") if c in a.columns]
        assert_frame_equal(a.sort(key), b.sort(key), check_column_order=False)


def test_a_new_lake_is_compacted_as_it_is_written_and_published_once(
    archive_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large ingest into a new lake compacts the batch files while the batches are parsed and commits
    only the compacted files (no batch file is ever in a snapshot, and none is left on disk); it is
    published once, when whole, with every card there."""
    from ingest import run

    root = tmp_path / "lake"
    published: list[int] = []
    publish = Lake.publish

    def counted(self: Lake, pins: Any, *a: Any, **kw: Any) -> Any:
        published.append(sum(1 for t in pins.tables.values() if t is not None))
        return publish(self, pins, *a, **kw)

    monkeypatch.setattr(Lake, "publish", counted)
    s = ingest(root, str(archive_copy), scheduler="synchronous", batch_files=10, commit_interval=0.0)
    assert s.batches >= run.COMPACT_BATCHES
    assert len(published) == 2  # the new lake's empty tables, then the whole lake
    from pyiceberg.manifest import ManifestEntryStatus

    lk = Lake(root)
    pins = lk.pins()
    for table in ("cards", "files", "uvisflt"):
        tbl = lk.table(pins, table)
        live = set(lk.data_files(pins, table))
        for snap in tbl.metadata.snapshots:  # no file was committed, then compacted away
            for m in snap.manifests(tbl.io):
                for e in m.fetch_manifest_entry(tbl.io, discard_deleted=False):
                    assert e.status != ManifestEntryStatus.DELETED, (table, e.data_file.file_path)
        if table == "uvisflt":  # primary headers apart from extensions: every file rewritten
            assert all(Path(f).name.startswith("compact-") for f in live)
        on_disk = {str(p) for p in lk.data_dir(pins.namespace, table).rglob("*.parquet")}
        assert on_disk == live, sorted(on_disk - live)[:3]  # the batch files compacted are gone
    assert lake.read("files", root).height == s.ingested
    some = sorted(archive_copy.rglob("*_flt.fits"))[3]
    from tests.test_lake import header_lines

    assert lake.read_header(some.relative_to(archive_copy).as_posix(), path=root) == header_lines(some)


def test_compacted_files_described_from_the_workers_counts(archive_copy: Path, tmp_path: Path) -> None:
    """A large ingest's compaction describes its new files from the counts its workers send back (no
    footer read again in the driver): their Iceberg metrics are those a footer read gives."""
    from ingest import run

    root = tmp_path / "lake"
    s = ingest(root, str(archive_copy), scheduler="synchronous", batch_files=10)
    assert s.batches >= run.COMPACT_BATCHES
    lk = Lake(root)
    pins = lk.pins()
    fields = (
        "record_count",
        "column_sizes",
        "value_counts",
        "null_value_counts",
        "lower_bounds",
        "upper_bounds",
    )
    checked = 0
    for table in ("cards", "files", "uvisflt"):
        tbl = lk.table(pins, table)
        describe = lk._describer(pins, table, tbl.metadata)
        for task in tbl.scan(snapshot_id=pins.tables[table]).plan_files():
            path = task.file.file_path.removeprefix("file://")
            if not Path(path).name.startswith("compact-"):
                continue
            footer = describe.exact(path)
            assert footer is not None
            for name in fields:
                assert getattr(task.file, name) == getattr(footer, name), (table, name)
            assert task.file.partition == footer.partition
            checked += 1
    assert checked >= 3


def _catalog_content(path: Path) -> tuple[list[Any], ...]:
    """What catalog.duckdb holds for readers: its views' SQL and its records, in a fixed order."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        views = "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY 1"
        return tuple(
            con.execute(q).fetchall()
            for q in (
                views,
                "SELECT * FROM _quicklake_files ORDER BY table_name, seq",
                "SELECT * FROM _quicklake_tables ORDER BY table_name",
                "SELECT * FROM _quicklake_pins ORDER BY table_name",
            )
        )
    finally:
        con.close()


def test_a_publish_writes_the_views_of_changed_tables_only_and_the_same_catalog(
    archive_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cron ingest copies catalog.duckdb and replaces the views of the tables it changed (creating
    them all parsed megabytes of file lists at 4M files); the result is the catalog written whole."""
    from lake import catalog

    root = tmp_path / "lake"
    ingest(root, str(archive_copy), scheduler="synchronous")
    made: list[str] = []
    real = catalog.view_sql
    monkeypatch.setattr(catalog, "view_sql", lambda name, *a, **k: made.append(name) or real(name, *a, **k))
    before = Lake(root).pins().tables
    _edit(sorted(archive_copy.rglob("*_flt.fits"))[0], TARGNAME="RENAMED")
    assert ingest(root, str(archive_copy), scheduler="synchronous").changed == 1
    after = Lake(root).pins().tables
    changed = sorted(t for t in after if after[t] != before.get(t))
    assert {"cards", "files", "master"} <= set(changed) and len(changed) < len(after) / 3
    assert sorted(set(made)) == changed
    kept = _catalog_content(root / "catalog.duckdb")
    renamed = "SELECT path FROM cards WHERE keyword = 'TARGNAME' AND value_str = 'RENAMED'"
    assert lake.read_sql(renamed, root).num_rows == 1

    lk = Lake(root)
    with lk.writer():  # the same pins again (a clone's publish, a writer with nothing to commit)
        catalog.write_duckdb_catalog(lk, lk.pins())
    assert _catalog_content(root / "catalog.duckdb") == kept and lake.read_sql(renamed, root).num_rows == 1

    made.clear()
    monkeypatch.setattr(catalog, "_format", lambda: "other code")  # written whole
    with lk.writer():
        catalog.write_duckdb_catalog(lk, lk.pins())
    assert sorted(made) == sorted(after)
    assert _catalog_content(root / "catalog.duckdb") == kept


def test_a_views_first_file_is_the_same_whatever_order_the_files_come_in() -> None:
    """Of files as near the mean, the first in path order leads: an ingest's writer (files known as it
    went) and a fresh reader of the manifests (Iceberg's order) then write the same view."""
    from lake.catalog import mean_first

    rows = [59, 59, 70, 48]  # mean 59: files 0 and 1 as near
    assert mean_first([1, 0, 2, 3], rows) == [1, 0, 2, 3]
    assert mean_first([0, 1, 2, 3], rows) == [0, 1, 2, 3]
    assert mean_first([2, 3, 1, 0], rows) == [1, 2, 3, 0]


def test_a_views_first_file_is_nearest_the_mean_in_ratio() -> None:
    """DuckDB's estimate is the first file's rows times their number, so its error is a factor: of a
    primary-header file of 134 rows and an extensions' file of 3,070 (mean 1,602, as near in rows), the
    larger leads, which the estimate misses by 1.9x rather than 12x."""
    from lake.catalog import mean_first

    assert mean_first([0, 1], [134, 3070]) == [1, 0]
    assert mean_first([1, 0], [134, 3070]) == [1, 0]
    assert mean_first([0, 1, 2], [0, 0, 30]) == [2, 0, 1]  # empty files: no log of zero


def test_a_catalog_is_written_whole_when_mostly_free_blocks_not_when_grown(
    small_lake: Path, tmp_path: Path
) -> None:
    """An incremental publish keeps a catalog that grew with its lake (a 4M stand-in's grew 4.6x from
    its first whole write, all of it views it needed, and its next publish took 15 s rewriting them all),
    and writes whole one whose file is mostly blocks DuckDB freed."""
    import shutil

    import duckdb

    from lake import catalog

    pins = Lake(small_lake).pins()
    old, tmp = tmp_path / "old.duckdb", tmp_path / "new.duckdb"

    def reused() -> bool:
        con, before = catalog._reusable(old, tmp, pins)
        con.close()
        tmp.unlink()
        return before is not None

    shutil.copyfile(small_lake / "catalog.duckdb", old)
    assert reused()
    con = duckdb.connect(str(old))
    con.execute("CREATE TABLE grown AS SELECT range AS i, range::VARCHAR AS s FROM range(3000000)")
    con.execute("CHECKPOINT")
    con.close()
    assert old.stat().st_size > 5 * (small_lake / "catalog.duckdb").stat().st_size and reused()
    con = duckdb.connect(str(old))
    con.execute("DROP TABLE grown")
    con.execute("CHECKPOINT")
    con.close()
    assert not reused()
