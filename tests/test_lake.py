"""End to end: generated and real archives into the lake, queried from DuckDB, Polars and ql."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import lake
from ingest.fitsheader import read_raw_headers
from ingest.run import ingest
from lake.cli import ORIGINAL_QUERY, main
from lake.layout import Layout
from tests.conftest import REAL, real_files


def header_lines(path: Path, hdu: int | None = None) -> list[str]:
    out = []
    for r in read_raw_headers(path):
        if hdu is None or r.hdu == hdu:
            d = r.data.decode()
            out += [d[i : i + 80] for i in range(0, len(d), 80)]
    return out


def test_layout_builds_and_parses() -> None:
    lay = Layout()
    rel = lay.path(14452, "id3101ciq", "raw")
    assert rel == "14452/Visit01/id3101ciq_raw.fits"
    ap = lay.parse(rel)
    assert (ap.proposid, ap.visit, ap.rootname, ap.filetype) == (14452, "01", "id3101ciq", "raw")
    assert lay.parse("11665/Visit06/ib4606c5q_flt_hlet.fits").filetype == "flt_hlet"
    with pytest.raises(Exception, match="does not fit"):
        lay.parse("11665/ib4606c5q_flt.fits")
    with pytest.raises(Exception, match="does not match rootname"):
        lay.parse("11665/Visit07/ib4606c5q_flt.fits")


def test_batches_are_even_and_a_multiple_of_the_workers() -> None:
    from ingest.batch import FileJob
    from ingest.run import split_batches

    todo = [FileJob(f"f{i}", 1, 0.0) for i in range(26549)]
    for workers in (1, 2, 3):
        batches = split_batches(todo, 2000, workers)
        sizes = [len(b) for b in batches]
        assert [j for b in batches for j in b] == todo  # every file once, in order
        full = sizes[: len(sizes) - 2 * workers] if workers > 1 else sizes
        assert len(full) % workers == 0 and max(sizes) <= 2000 and max(full) - min(full) <= 1
        if workers > 1:  # the last round in halves, so that a worker that finishes early takes more
            assert all(abs(2 * s - full[0]) <= 2 for s in sizes[-2 * workers :])
    assert [len(b) for b in split_batches(todo[:3], 2000, 4)] == [1, 1, 1]
    assert [len(b) for b in split_batches(todo[:3000], 2000, 2)] == [1500, 1500]  # one round: no halves
    assert split_batches([], 2000, 2) == []


def _facts(df: Any) -> tuple[Any, ...]:
    """A DataFile's content (one read back from a manifest holds lazy maps, which repr shows as objects)."""
    maps = ("column_sizes", "value_counts", "null_value_counts", "nan_value_counts", "lower_bounds")
    return (
        df.file_path.removeprefix("file://"),
        df.record_count,
        df.file_size_in_bytes,
        df.partition,
        df.split_offsets,
        *(dict(getattr(df, m) or {}) for m in (*maps, "upper_bounds")),
    )


def test_data_files_are_described_as_pyiceberg_describes_them(
    small_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver's own add_files (per-table work done once; from the counts and bounds the workers took
    from the footers they wrote) gives pyiceberg's DataFiles exactly, partition values included."""
    import pyarrow.parquet as pq
    from pyiceberg.io.pyarrow import parquet_file_to_data_file

    from lake.datafile import Describer, data_files, file_counts
    from lake.tables import Lake

    lk = Lake(small_lake)
    pins = lk.pins()
    n = counted = partitioned = 0
    for name in sorted(pins.tables):
        tbl = lk.table(pins, name)
        files = lk.data_files(pins, name)[:2]
        plan = tbl.scan(snapshot_id=pins.tables[name]).plan_files()
        committed = {t.file.file_path.removeprefix("file://"): t.file for t in plan}
        mine = data_files(tbl.metadata, tbl.io, files, tbl.schema().as_arrow())
        counts = {f: file_counts(pq.read_metadata(f), bounds=True) for f in files}
        with monkeypatch.context() as m:  # described without reading a footer
            m.setattr(pq, "read_metadata", lambda *a, **k: pytest.fail("footer read"))
            from_counts = data_files(tbl.metadata, tbl.io, files, tbl.schema().as_arrow(), counts)
        for path, got, got_c in zip(files, mine, from_counts, strict=True):
            want = parquet_file_to_data_file(tbl.io, tbl.metadata, path)
            assert repr(got) == repr(got_c) == repr(want) and got.partition == want.partition, (name, path)
            assert got_c.partition == want.partition and _facts(got_c) == _facts(want), (name, path)
            assert _facts(committed[path]) == _facts(want), (name, path)  # described as the ingest ran
            n += 1
        describer = Describer(tbl.metadata, tbl.io, tbl.schema().as_arrow())
        counted += describer.counts_only and bool(files)
        partitioned += bool(describer.sources) and bool(files)
    assert n > 20 and counted > 5 and partitioned >= 3  # wide tables keep counts, fixed ones bounds


def test_bounds_from_counts_are_pyiceberg_bounds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bounds and partition values made from a writer's counts equal pyiceberg's from the footer, where
    its rules bite: several row groups, truncated strings (upper bounds rounded up, none past the last code
    point), all-null and long columns, signed zeros, timestamps, a null partition."""
    from datetime import UTC, datetime

    import pyarrow.parquet as pq
    from pyiceberg.io.pyarrow import parquet_file_to_data_file
    from pyiceberg.typedef import Record

    from lake import schema as sch
    from lake.datafile import data_files, file_counts
    from lake.tables import Lake

    lk = Lake(tmp_path / "lake")
    with lk.writer():
        pins = lk.init()
        tbl = lk.table(pins, "files")
        schema = sch.arrow_schema("files")
        n = 6
        rows = {f.name: pa.nulls(n, f.type) for f in schema}
        rows["path"] = pa.array(["b/" + "é" * 20, "a/x", "\U0010ffff" * 17, "c", "a/" + "z" * 30, "d"])
        rows["status"] = pa.array(["ok", "error", "ok", "ok", "ok", "missing"])
        rows["tables"] = pa.array(["é" * 20, "a" * 16, "\U0010ffff" * 17, None, "uvisflt", "z" * 17])
        rows["error"] = pa.array([None, "\U0010ffff" * 17, None, None, None, None])
        rows["reader_version"] = pa.array(["é" * 20, "b", "aaa", None, "é" * 17, "c"])
        rows["mtime"] = pa.array([0.0, -0.0, 1.5, -2.5, 0.0, 3.0])
        rows["size"] = pa.array([5, -(2**62), 7, 2**62, 0, 1], pa.int64())
        rows["ingested_at"] = pa.array([datetime(2024, 1, d, tzinfo=UTC) for d in range(1, n + 1)])
        for year in (2016, None):
            rows["year"] = pa.array([year] * n, pa.int32())
            path = tmp_path / f"f{year}.parquet"
            pq.write_table(pa.table(rows, schema), path, row_group_size=2, store_schema=False)
            f = str(path)
            counts = {f: file_counts(pq.read_metadata(f), bounds=True)}
            with monkeypatch.context() as m:  # described without reading a footer
                m.setattr(pq, "read_metadata", lambda *a, **k: pytest.fail("footer read"))
                got = data_files(tbl.metadata, tbl.io, [f], schema, counts)[0]
            want = parquet_file_to_data_file(tbl.io, tbl.metadata, f)
            assert repr(got) == repr(want) and got.partition == want.partition == Record(year)
            assert _facts(got) == _facts(want)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.integers(1, 2**31 - 1), st.integers(-(2**63), 2**63 - 1), max_size=600),
    st.dictionaries(st.integers(1, 2**31 - 1), st.binary(max_size=300), max_size=40),
)
def test_manifest_maps_are_encoded_as_pyiceberg_encodes_them(
    counts: dict[int, int], bounds: dict[int, bytes]
) -> None:
    """The faster encoding of manifests' count and bound maps (lake.fasticeberg) writes pyiceberg's
    bytes."""
    import io

    from pyiceberg.avro.encoder import BinaryEncoder
    from pyiceberg.avro.writer import BinaryWriter, IntegerWriter, MapWriter
    from pyiceberg.utils.lazydict import LazyDict

    from lake import fasticeberg

    fasticeberg.install()
    edges = [0, 1, -1, 63, 64, -64, -65, 127, 128, 2**14, 2**31 - 1, 2**62, 2**63 - 1, -(2**63)]
    wide = {i: edges[i % len(edges)] * (i % 3) // 2 for i in range(1, 442)} | dict(enumerate(edges, 500))
    flat = [x for kv in counts.items() for x in kv]
    for writer, value in [
        *((MapWriter(IntegerWriter(), IntegerWriter()), v) for v in (counts, LazyDict([flat]), wide)),
        (MapWriter(IntegerWriter(), BinaryWriter()), bounds),
    ]:  # built, read back from a manifest, a wide table's; bounds
        want, got = io.BytesIO(), io.BytesIO()
        fasticeberg.ORIGINAL(writer, BinaryEncoder(want), value)
        writer.write(BinaryEncoder(got), value)
        assert got.getvalue() == want.getvalue()


def test_table_metadata_copies_share_the_immutable_parts(small_lake: Path) -> None:
    """A deep copy of a table's metadata is a new object that shares its schemas and snapshots
    (lake.fasticeberg), which are frozen: the copy equals the original, and they cannot be changed."""
    import copy

    import pydantic

    from lake.tables import Lake

    lk = Lake(small_lake)
    md = lk.table(lk.pins(), "files").metadata  # the catalog puts the faster paths in place
    dup = md.model_copy(deep=True)
    assert dup == md and dup is not md and dup.snapshots is not md.snapshots
    assert dup.schemas[0] is md.schemas[0] and dup.snapshots[0] is md.snapshots[0]
    assert copy.deepcopy(md.schema()) is md.schema()
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        md.schema().schema_id = 99
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        md.snapshots[0].snapshot_id = 99


def test_the_catalog_keeps_the_metadata_its_files_hold(small_lake: Path, tmp_path: Path) -> None:
    """The table metadata the catalog keeps (what it read or committed, lake.fasticeberg) is what its
    metadata file holds, as pyiceberg reads it; a file is parsed once."""
    import pyarrow.parquet as pq
    from pyiceberg.serializers import FromInputFile

    from lake import schema as sch
    from lake.tables import Lake

    def on_disk(tbl: Any) -> Any:
        return FromInputFile.table_metadata(tbl.io.new_input(tbl.metadata_location))

    lk = Lake(small_lake)
    pins = lk.pins()
    for name in sorted(pins.tables):
        tbl = lk.catalog.load_table(lk.identifier(pins, name))
        again = lk.catalog.load_table(lk.identifier(pins, name))
        assert again.metadata is tbl.metadata and on_disk(tbl) == tbl.metadata
    new = Lake(tmp_path / "lake")
    with new.writer():  # metadata made or committed, kept without being read back, is the file's
        pins = new.init()
        for name in pins.tables:
            assert on_disk(new.table(pins, name)) == new.table(pins, name).metadata
        rows = {f.name: pa.nulls(2, f.type) for f in sch.arrow_schema("files")}
        rows["path"], rows["year"] = pa.array(["a", "b"]), pa.array([2020, 2020], pa.int32())
        for i in range(2):
            pq.write_table(pa.table(rows, sch.arrow_schema("files")), tmp_path / f"{i}.parquet")
            new.commit_files(pins, "files", [str(tmp_path / f"{i}.parquet")])
            kept = new.catalog.load_table(new.identifier(pins, "files"))
            assert kept.metadata is new.table(pins, "files").metadata and on_disk(kept) == kept.metadata
        assert len(kept.metadata.snapshots) == 2


def test_manifest_entries_kept_are_what_the_manifests_hold(small_lake: Path) -> None:
    """Manifest entries handed out again (lake.fasticeberg) equal what pyiceberg decodes from the file,
    in a new list each time, with deleted entries only when asked for."""
    from pyiceberg.manifest import ManifestEntryStatus

    from lake import fasticeberg
    from lake.tables import Lake

    lk = Lake(small_lake)
    pins = lk.pins()
    tbl = lk.table(pins, "files")  # the catalog puts the faster paths in place
    fresh = fasticeberg.ORIGINAL_FETCH
    seen = 0
    for name in sorted(pins.tables):
        tbl = lk.table(pins, name)
        for snap in tbl.metadata.snapshots:
            for m in snap.manifests(tbl.io):
                for discard in (True, False):
                    first = m.fetch_manifest_entry(tbl.io, discard_deleted=discard)
                    again = m.fetch_manifest_entry(tbl.io, discard_deleted=discard)
                    want = fresh(m, tbl.io, discard_deleted=discard)
                    assert first == want and again == want and again is not first
                    assert all(a is b for a, b in zip(first, again, strict=True))
                    if discard:
                        assert all(e.status != ManifestEntryStatus.DELETED for e in first)
                    seen += len(first)
    assert seen


def test_a_file_described_early_then_rewritten_is_described_again(tmp_path: Path) -> None:
    """Descriptions made as batches arrive are used at the commit only if the file is unchanged."""
    import pyarrow.parquet as pq

    from lake.tables import Lake

    lk = Lake(tmp_path / "lake")
    with lk.writer():
        pins = lk.init()
        schema = pa.schema([("path", pa.string()), ("hdu", pa.int64()), ("exptime", pa.float64())])
        lk.ensure_table(pins, "uvisflt", schema)
        data = tmp_path / "b.parquet"
        pq.write_table(pa.table({"path": ["a"], "hdu": [0], "exptime": [1.0]}, schema), data)
        lk.describe_files(pins, "uvisflt", [str(data)])
        rows = {"path": ["a", "b", "c"], "hdu": [0, 0, 1], "exptime": [1.0, 2.0, 900.0]}
        pq.write_table(pa.table(rows, schema), data)
        lk.commit_files(pins, "uvisflt", [str(data)])
        second = tmp_path / "c.parquet"
        pq.write_table(pa.table({"path": ["d"], "hdu": [2], "exptime": [5.0]}, schema), second)
        lk.commit_files(pins, "uvisflt", [str(second)])
        lk.publish(pins)
        # the file list the commits kept is the one Iceberg plans
        planned = lk._plan_files(pins, "uvisflt", pins.tables["uvisflt"])
        assert sorted(lk.data_files(pins, "uvisflt")) == sorted(planned) == [str(data), str(second)]
    first = [t.file for t in lk.table(pins, "uvisflt").scan().plan_files() if t.file.file_path == str(data)]
    assert first[0].record_count == 3 and first[0].file_size_in_bytes == data.stat().st_size
    assert lake.connect(lk.root).execute("SELECT max(exptime), count(*) FROM uvisflt").fetchone() == (
        900.0,
        4,
    )
    with lk.writer():  # a compaction's swap: the file list kept is again the one Iceberg plans
        both = tmp_path / "both.parquet"
        pq.write_table(pa.concat_tables([pq.read_table(data), pq.read_table(second)]), both)
        lk.replace_files(pins, "uvisflt", [first[0]], [str(both)])
        planned = lk._plan_files(pins, "uvisflt", pins.tables["uvisflt"])
        assert sorted(lk.data_files(pins, "uvisflt")) == sorted(planned) == sorted([str(second), str(both)])


def test_original_query_and_views(small_lake: Path) -> None:
    con = lake.connect(small_lake)
    rows = con.execute(ORIGINAL_QUERY).fetchall()
    assert rows, "the generated archive holds NGC targets observed with UVIS in January 2015"
    for _root, targ, exptime, _ra, _dec, filt in rows:
        assert targ.startswith("NGC") and exptime > 0 and filt.startswith("F")
    names = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
    assert {"files", "cards", "master", "uvisflt_0", "uvisflt_1", "irima_0", "irflt_1"} <= names
    n_master = con.execute("SELECT count(*) FROM master").fetchone()
    assert n_master == con.execute("SELECT count(DISTINCT rootname) FROM files").fetchone()  # + associations


def test_every_card_round_trips(small_lake: Path, small_archive: Path) -> None:
    files = lake.read("files", small_lake)
    assert set(files["status"]) == {"ok"}
    for rel in files["path"].to_list()[::7]:
        assert lake.read_header(rel, path=small_lake) == header_lines(small_archive / rel)


def test_polars_scan_and_read(small_lake: Path) -> None:
    lf = lake.scan("uvisflt", small_lake)
    primary = lf.filter(pl.col("hdu") == 0).select("rootname", "date_obs", "exptime").collect()
    view = lake.connect(small_lake).execute("SELECT count(*) FROM uvisflt_0").fetchone()
    assert primary.height > 0 and view == (primary.height,)
    m = lake.read("master", small_lake, columns=["rootname", "detector"], where="detector = 'IR'")
    assert m.height > 0 and set(m["detector"]) == {"IR"}


def test_duckdb_cli_opens_catalog_from_anywhere(small_lake: Path, tmp_path: Path) -> None:
    cli = Path(sys.executable).parent / "duckdb"
    out = subprocess.run(
        [str(cli), "-readonly", str(small_lake / "catalog.duckdb"), "-csv", "-c", ORIGINAL_QUERY],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "NGC" in out


def test_incremental_noop_change_and_remove(archive_copy: Path, tmp_path: Path) -> None:
    lk = tmp_path / "lake"
    s1 = ingest(lk, str(archive_copy), scheduler="synchronous")
    assert s1.new == s1.scanned and s1.errors == 0
    s2 = ingest(lk, str(archive_copy), scheduler="synchronous")
    assert (s2.new, s2.changed, s2.removed, s2.ingested) == (0, 0, 0, 0)
    victims = sorted(archive_copy.rglob("*_flt.fits"))[:2]
    victims[0].unlink()
    os.utime(victims[1], (time.time() + 100, time.time() + 100))
    s3 = ingest(lk, str(archive_copy), scheduler="synchronous")
    assert (s3.changed, s3.removed) == (1, 1)
    con = lake.connect(lk)
    rel0 = victims[0].relative_to(archive_copy).as_posix()
    assert con.execute("SELECT status FROM files WHERE path = ?", [rel0]).fetchall() == [("missing",)]
    assert con.execute("SELECT count(*) FROM cards WHERE path = ?", [rel0]).fetchone() == (0,)
    rel1 = victims[1].relative_to(archive_copy).as_posix()
    n = con.execute("SELECT count(*) FROM files WHERE path = ?", [rel1]).fetchone()
    assert n == (1,)
    assert lake.read_header(rel1, path=lk) == header_lines(victims[1])
    assert con.execute("SELECT count(DISTINCT hdu) FROM cards WHERE path = ?", [rel1]).fetchone()[0] > 1


def test_master_computed_beside_the_last_commit(
    archive_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The master computed ahead, while the last commit runs, is used when the commit made the file lists
    it assumed, and is the master computed afterwards; a result from other inputs is not used."""
    from concurrent.futures import Future

    from polars.testing import assert_frame_equal

    import ingest.run as run
    from lake.master import compute_master
    from lake.tables import Lake

    calls = []

    def counting(inputs: Any) -> pa.Table:
        calls.append(inputs)
        return compute_master(inputs)

    monkeypatch.setattr(run, "compute_master", counting)
    # an ingest of 8 batches or more into a new lake compacts as it goes and computes master once, on a
    # worker, from the compacted files it committed, and uses it
    compacted = tmp_path / "compacted"
    s = ingest(compacted, str(archive_copy), scheduler="synchronous", batch_files=40, commit_interval=3600.0)
    assert s.batches >= run.COMPACT_BATCHES and len(calls) == 1
    assert run._same_inputs(calls[0], run._master_inputs(Lake(compacted), Lake(compacted).pins()))
    calls.clear()
    root = tmp_path / "lake"
    # no commit before the last (an earlier publish brings master up to date itself)
    s = ingest(root, str(archive_copy), scheduler="synchronous", batch_files=150, commit_interval=3600.0)
    assert s.batches < run.COMPACT_BATCHES and len(calls) == 1  # computed ahead, then used
    lk = Lake(root)
    pins = lk.pins()
    inputs = run._master_inputs(lk, pins)
    assert run._same_inputs(calls[0], inputs)
    fresh = compute_master(inputs)
    want = pl.from_arrow(fresh).sort("rootname")
    assert_frame_equal(lake.read("master", path=root).sort("rootname"), want, check_dtypes=False)
    assert_frame_equal(lake.read("master", path=compacted).sort("rootname"), want, check_dtypes=False)
    assert fresh.num_rows > 5

    stale: Future[pa.Table] = Future()
    stale.set_result(fresh.slice(0, 1))
    other = {**inputs, "files": (inputs["files"][0][:1], inputs["files"][1])}
    with lk.writer():
        run._refresh_master(lk, pins, (other, stale))
    assert len(calls) == 2  # computed again
    assert_frame_equal(lake.read("master", path=root).sort("rootname"), want, check_dtypes=False)


def test_bad_files_are_recorded_and_batch_goes_on(archive_copy: Path, tmp_path: Path) -> None:
    some = sorted(archive_copy.rglob("*_raw.fits"))
    some[0].write_bytes(b"")
    some[1].write_bytes(b"this is not FITS" * 300)
    data = some[2].read_bytes()
    some[2].write_bytes(data[: 2880 * 3])
    (some[3].parent / "notes_raw.fits").write_bytes(some[4].read_bytes())
    lk = tmp_path / "lake"
    s = ingest(lk, str(archive_copy), scheduler="synchronous")
    assert s.errors == 4
    errs = dict(lake.connect(lk).execute("SELECT path, error FROM files WHERE status = 'error'").fetchall())
    assert len(errs) == 4
    msgs = " | ".join(errs.values())
    assert "empty" in msgs and "not a FITS file" in msgs and "does not fit the archive layout" in msgs
    assert any("HDU" in m and "card" in m for m in errs.values())
    result = CliRunner().invoke(main, ["errors", "--lake", str(lk)])
    assert result.exit_code == 0 and "not a FITS file" in result.output


def test_real_files_ingest_and_round_trip(tmp_path: Path) -> None:
    lk = tmp_path / "lake"
    s = ingest(lk, str(REAL), scheduler="synchronous", template="{dir}/{stem}.fits")
    assert s.errors == 0 and s.ingested == len(real_files())
    for p in real_files():
        rel = p.relative_to(REAL).as_posix()
        assert lake.read_header(rel, path=lk) == header_lines(p), rel
    con = lake.connect(lk)
    assert con.execute("SELECT count(*) FROM uvisflc_1").fetchone()[0] >= 1
    assert con.execute("SELECT ccdchip FROM uvisflc_1").fetchone() == (2,)
    # every keyword column of the real files is declared in schemas/headers with that type, and
    # nothing conflicted with the declared types
    from lake import schema as sch

    # ... except where the real headers disagree: CCDCHIP is 1 or 2 in SCI headers but 'DX'/'DY' in the
    # D2IMARR/WCSDVARR extensions of the ACS sample, which are reported, not coerced
    q = "SELECT DISTINCT path, keyword, value_type, column_type FROM conflicts"
    conflicts = con.execute(q).fetchall()
    assert conflicts == [("acs/sample_flc_header.fits", "CCDCHIP", "string", "int64")]
    r = CliRunner().invoke(main, ["conflicts", "--lake", str(lk)])
    assert r.exit_code == 0 and "acs/sample_flc_header.fits[7] CCDCHIP = 'DX'" in r.output
    lk_obj = lake.open_lake(lk)
    pins = lk_obj.pins()
    for table in (t for t in pins.tables if sch.is_header_table(t)):
        declared = sch.header_types(table)
        for f in lk_obj.iceberg_schema(pins, table):
            if f.name not in sch.WIDE_BASE.names:
                got = pa.string() if f.type == pa.large_string() else f.type
                assert declared.get(f.name) == got, (table, f.name, got)


def test_files_refused_by_a_wrong_layout_are_taken_when_it_is_fixed(tmp_path: Path) -> None:
    # the real files do not follow the archive layout: with the default template every one is an error
    lk, n = tmp_path / "lake", len(real_files())
    s1 = ingest(lk, str(REAL), scheduler="synchronous")
    assert (s1.new, s1.errors) == (n, n)
    again = ingest(lk, str(REAL), scheduler="synchronous")  # still refused: nothing to redo, no commit
    assert (again.changed, again.ingested) == (0, 0)
    fixed = ingest(lk, str(REAL), scheduler="synchronous", template="{dir}/{stem}.fits")
    assert (fixed.changed, fixed.ingested, fixed.errors) == (n, n, 0)
    rows = lake.connect(lk).execute("SELECT status, count(*) FROM files GROUP BY ALL").fetchall()
    assert rows == [("ok", n)]
    rel = real_files()[0].relative_to(REAL).as_posix()
    assert lake.read_header(rel, path=lk) == header_lines(real_files()[0])


def test_rebuild_swaps_namespace(archive_copy: Path, tmp_path: Path) -> None:
    lk = tmp_path / "lake"
    ingest(lk, str(archive_copy), scheduler="synchronous")
    before = lake.connect(lk).execute("SELECT count(*) FROM cards").fetchone()
    ns0 = lake.open_lake(lk).pins().namespace
    ingest(lk, str(archive_copy), scheduler="synchronous", rebuild=True)
    assert lake.open_lake(lk).pins().namespace != ns0
    assert lake.connect(lk).execute("SELECT count(*) FROM cards").fetchone() == before


@pytest.mark.slow
def test_kill_9_during_ingest_then_rerun(archive_copy: Path, tmp_path: Path) -> None:
    lk = tmp_path / "lake"
    ingest(lk, str(archive_copy), scheduler="synchronous", batch_files=40)
    before = lake.connect(lk).execute("SELECT count(*), sum(length(image)) FROM cards").fetchone()
    for p in archive_copy.rglob("*_flc.fits"):
        os.utime(p, (time.time() + 50, time.time() + 50))
    code = (
        "from ingest.run import ingest; import sys; "
        f"ingest({str(lk)!r}, {str(archive_copy)!r}, scheduler='synchronous', batch_files=3)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(6)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    con = duckdb.connect()
    con.execute(f"ATTACH '{lk / 'catalog.duckdb'}' AS l (READ_ONLY)")
    total = con.execute("SELECT count(*) FROM l.files").fetchone()
    assert total is not None and total[0] == len(list(archive_copy.rglob("*.fits")))
    s = ingest(lk, str(archive_copy), scheduler="synchronous")
    assert s.errors == 0
    after = lake.connect(lk).execute("SELECT count(*), sum(length(image)) FROM cards").fetchone()
    assert after == before
    assert lake.connect(lk).execute("SELECT count(*) FROM files WHERE status = 'ok'").fetchone() == (
        total[0],
    )


@pytest.mark.slow
def test_local_cluster_and_dask_scheduler(archive_copy: Path, tmp_path: Path) -> None:
    s = ingest(tmp_path / "l1", str(archive_copy), scheduler="local", workers=2, batch_files=50)
    assert s.errors == 0 and s.batches >= 2
    bindir = Path(sys.executable).parent
    sched = subprocess.Popen(
        [
            str(bindir / "dask"),
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(tmp_path / "s.json"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            if (tmp_path / "s.json").exists():
                break
            time.sleep(0.2)
        import json

        addr = json.loads((tmp_path / "s.json").read_text())["address"]
        worker = subprocess.Popen(
            [str(bindir / "dask"), "worker", addr, "--nthreads", "1", "--no-dashboard"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            s2 = ingest(tmp_path / "l2", str(archive_copy), scheduler=addr, batch_files=50)
            assert s2.errors == 0 and s2.ingested == s.ingested
        finally:
            worker.terminate()
            worker.wait(30)
    finally:
        sched.terminate()
        sched.wait(30)
    a = lake.connect(tmp_path / "l1").execute("SELECT count(*) FROM cards").fetchone()
    b = lake.connect(tmp_path / "l2").execute("SELECT count(*) FROM cards").fetchone()
    assert a == b


def test_cli_demo_and_sql(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        main, ["demo", "--out", str(tmp_path / "d"), "--datasets", "24", "--scheduler", "synchronous"]
    )
    assert r.exit_code == 0, r.output
    assert "the original Quicklook example query returns" in r.output
    lk = str(tmp_path / "d" / "lake")
    r = CliRunner().invoke(main, ["sql", "--lake", lk, "--format", "csv", "SELECT count(*) AS n FROM master"])
    n = lake.read_sql("SELECT count(DISTINCT rootname) FROM files", lk).column(0)[0].as_py()
    assert r.exit_code == 0 and r.output.splitlines()[1] == str(n) and n > 24  # datasets + associations
    some = lake.read("files", lk)["path"][0]
    r = CliRunner().invoke(main, ["header", "--lake", lk, some, "--ext", "0", "--raw"])
    assert r.exit_code == 0 and r.output.splitlines() == header_lines(tmp_path / "d" / "archive" / some, 0)
    r = CliRunner().invoke(main, ["header", "--lake", lk, "nope_flt.fits"])
    assert r.exit_code == 1 and "not in the lake" in r.output
    again = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "d"), "--scheduler", "synchronous"])
    assert again.exit_code == 0 and "is there already: not generated again" in again.output, again.output


def test_interactive_sql_shell(small_lake: Path, tmp_path: Path) -> None:
    """`ql sql` with no query is the duckdb shell on catalog.duckdb, read-only, from any directory."""
    ql = Path(sys.executable).parent / "ql"
    script = (
        f".mode csv\n{ORIGINAL_QUERY}\nCREATE TABLE mine (a INTEGER);\nSELECT count(*) FROM master;\n.quit\n"
    )
    r = subprocess.run(
        [str(ql), "sql", "--lake", str(small_lake)],
        input=script,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "NGC" in r.stdout
    assert "read-only" in (r.stdout + r.stderr).lower()  # the shell cannot change the lake
    n_master = lake.connect(small_lake).execute("SELECT count(*) FROM master").fetchone()
    assert n_master is not None and f"\n{n_master[0]}\n" in r.stdout


def test_every_listed_name_reads_as_its_scan(small_lake: Path) -> None:
    """``read`` is ``scan().collect()`` for every name ``ql tables`` lists, with DuckDB's row count."""
    con = lake.connect(small_lake)
    rows = con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    listed = {n for (n,) in rows if not n.startswith("_")}
    assert listed == set(lake.tables(small_lake))
    assert {"uvisflt_0", "job_runs", "cards", "master"} <= listed
    for name in sorted(listed):
        (n,) = con.execute(f'SELECT count(*) FROM "{name}"').fetchone() or (0,)
        df = lake.read(name, small_lake)
        assert df.height == n, name
        assert df.columns == lake.scan(name, small_lake).collect_schema().names()
    ir = lake.read("master", small_lake, columns=["rootname"], where="detector = 'IR'")
    assert ir.columns == ["rootname"] and 0 < ir.height < lake.read("master", small_lake).height


def test_a_per_hdu_view_gives_a_typed_null_where_its_files_lack_a_column(tmp_path: Path) -> None:
    """An older data file lacks a keyword a later one brought (a new column): the per-HDU view still has
    the column, of the table's type, NULL in that file's rows, whichever scan holds the files."""
    import pyarrow.parquet as pq

    from lake.catalog import hdu_view_sql
    from lake.schema import WIDE_BASE

    def rows(n: int, hdus: list[int], **extra: pa.Array) -> pa.Table:
        base = {
            "rootname": [f"iab{n}"] * len(hdus),
            "path": [f"p/{n}"] * len(hdus),
            "hdu": pa.array(hdus, pa.int32()),
            "extname": [None] * len(hdus),
            "extver": pa.array([None] * len(hdus), pa.int64()),
            "year": pa.array([2015] * len(hdus), pa.int32()),
        }
        return pa.table({**base, **extra})

    old = rows(1, [0, 1], exptime=pa.array([1.5, None]))
    new = rows(2, [0], exptime=pa.array([2.5]), newkey=pa.array(["yes"]), bunit=pa.array(["e"]))
    paths = [str(tmp_path / "old.parquet"), str(tmp_path / "new.parquet")]
    pq.write_table(old, paths[0])
    pq.write_table(new, paths[1])
    schema = pa.schema(
        [*WIDE_BASE, ("exptime", pa.float64()), ("newkey", pa.string()), ("nextend", pa.int64())]
    )
    con = duckdb.connect()
    for keys in (["k-old", "k-new"], None):  # two scans by key; one scan matching columns by name
        con.execute(hdu_view_sql("t_0", "t", 0, ["exptime", "newkey", "nextend"], (paths, keys, schema)))
        got = con.execute("SELECT rootname, exptime, newkey, nextend FROM t_0 ORDER BY rootname").fetchall()
        assert got == [("iab1", 1.5, None, None), ("iab2", 2.5, "yes", None)]
        types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE t_0)").fetchall())
        assert (types["newkey"], types["nextend"], types["hdu"]) == ("VARCHAR", "BIGINT", "INTEGER")
        assert "bunit" not in types  # not one of the view's columns


def test_a_commit_writes_manifests_of_bounded_files_by_path_range(tmp_path: Path, monkeypatch: Any) -> None:
    """A commit of many files writes them in manifests of at most MANIFEST_FILES, each a path range, so a
    later copy-on-write delete of one path rewrites one small manifest, not one listing every file."""
    import duckdb
    import pyarrow.parquet as pq
    from pyiceberg.manifest import ManifestEntryStatus

    from lake import manifests
    from lake.tables import Lake

    monkeypatch.setattr(manifests, "MANIFEST_FILES", 10)
    lk = Lake(tmp_path / "lake")
    schema = pa.schema([("path", pa.string()), ("hdu", pa.int64()), ("exptime", pa.float64())])
    names = [f"p/{i:03d}.fits" for i in range(45)]
    files = []
    for i in (7, *range(45)):  # (a file out of order first: pieces follow paths, not the files' order)
        files.append(str(tmp_path / f"d{len(files):03d}.parquet"))
        pq.write_table(pa.table({"path": [names[i]], "hdu": [0], "exptime": [float(i)]}, schema), files[-1])
    with lk.writer():
        pins = lk.init()
        lk.ensure_table(pins, "uvisflt", schema)
        lk.commit_files(pins, "uvisflt", files)
        tbl = lk.table(pins, "uvisflt")

        def pieces(sid: int) -> list[list[str]]:
            got = []
            for m in tbl.metadata.snapshot_by_id(sid).manifests(tbl.io):
                entries = m.fetch_manifest_entry(tbl.io, discard_deleted=False)
                live = [e for e in entries if e.status != ManifestEntryStatus.DELETED]
                cells = [pq.read_table(e.data_file.file_path)["path"][0].as_py() for e in live]
                got.append(sorted(cells))
            return sorted(got)

        first = pieces(pins.tables["uvisflt"])
        assert [len(p) for p in first] == [9, 9, 9, 9, 10] and list(itertools.chain(*first)) == sorted(
            [names[7], *names]
        )
        assert all(a[-1] <= b[0] for a, b in itertools.pairwise(first))  # path ranges apart
        lk.commit_files(pins, "uvisflt", [], delete_paths=[names[20]])
        lk.publish(pins)
        after = pieces(pins.tables["uvisflt"])
        assert names[20] not in list(itertools.chain(*after)) and len(list(itertools.chain(*after))) == 45
        # the one piece that held it, rewritten (and pyiceberg's manifest of the deleted entry)
        assert [p for p in after if p and p not in first] == [[n for n in first[2] if n != names[20]]]
    con = duckdb.connect(str(tmp_path / "lake" / "catalog.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM uvisflt").fetchone()[0] == 45
