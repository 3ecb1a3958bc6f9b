"""Lake maintenance on a lake grown by cron-like incremental ingests and job runs: fewer files, no row
changed, readers of the previous state served until ``keep_hours``, and the lake still writable."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import lake
from ingest.run import ingest
from lake.cli import main
from lake.errors import LakeError
from lake.jobs import run_job
from lake.maintenance import _referenced, maintain
from lake.schema import WIDE_BASE
from lake.tables import Lake, hdu_columns_of

TABLES = ("files", "cards", "master", "uvisflt", "uvisflt_0", "irraw_1", "findings_check_lake2fsys")


def rows(lk: Path) -> dict[str, pa.Table]:
    con = lake.connect(str(lk))
    try:
        return {t: con.sql(f'SELECT * FROM "{t}" ORDER BY ALL').to_arrow_table() for t in TABLES}
    finally:
        con.close()


def data_files(lk: Path) -> dict[str, list[str]]:
    lkobj = Lake(lk)
    pins = lkobj.pins()
    return {t: lkobj.data_files(pins, t) for t in sorted(pins.tables)}


def on_disk(lk: Path) -> set[str]:
    return {str(p) for p in (lk / "warehouse").rglob("*") if p.is_file()}


@pytest.fixture
def grown(archive_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A lake after one full ingest, six one-file-changed ingests and three job runs with findings."""
    lk = tmp_path / "lake"
    monkeypatch.setenv("QUICKLAKE_ARCHIVE", str(archive_copy))
    monkeypatch.setenv("QUICKLAKE_SCHEDULER", "synchronous")
    ingest(lk, str(archive_copy), scheduler="synchronous", batch_files=60)
    flts = sorted(archive_copy.rglob("*_flt.fits"))
    for i in range(6):
        os.utime(flts[i], (time.time(), time.time() + 10 + i))
        assert ingest(lk, str(archive_copy), scheduler="synchronous").changed == 1
    (archive_copy / flts[7].relative_to(archive_copy)).unlink()  # a finding for check-lake2fsys
    for _ in range(3):
        assert run_job(lk, "check-lake2fsys").status == "success"
    return {"lake": lk, "archive": archive_copy, "flt": flts[8]}


def test_maintain_compacts_expires_and_keeps_every_row(grown: dict[str, Any], tmp_path: Path) -> None:
    lk = grown["lake"]
    before_rows, before_files = rows(lk), data_files(lk)
    header = CliRunner().invoke(
        main, ["header", str(grown["flt"].relative_to(grown["archive"])), "--lake", str(lk)]
    )
    assert header.exit_code == 0, header.output
    # a DuckDB user who opened the catalog before maintenance
    reader_copy = tmp_path / "old.duckdb"
    shutil.copy(lk / "catalog.duckdb", reader_copy)

    s = maintain(lk, keep_hours=24)
    assert s.compacted_tables >= 3 and s.files_after < s.files_before
    after_files = data_files(lk)
    assert sum(map(len, after_files.values())) == s.files_after
    for t in ("files", "cards", "uvisflt"):
        assert len(after_files[t]) < len(before_files[t]), t
    assert rows(lk) == before_rows
    again = CliRunner().invoke(
        main, ["header", str(grown["flt"].relative_to(grown["archive"])), "--lake", str(lk)]
    )
    assert again.output == header.output
    # compacted files: beside the partition's files (DuckDB reads `year` from the folder), rows sorted
    new = [f for f in after_files["cards"] if Path(f).name.startswith("compact-")]
    assert new and all(Path(f).parent.name.startswith("year=") for f in new)
    t = pq.read_table(new[0], columns=["path", "hdu", "position"]).to_pylist()
    assert t == sorted(t, key=lambda r: (r["path"], r["hdu"], r["position"]))
    # wide tables: primary headers (HDU 0) in files of their own, in date order; uvisflt_0 reads those
    wide = [f for f in after_files["uvisflt"] if Path(f).name.startswith("compact-")]
    hdus = [set(pq.read_table(f, columns=["hdu"]).column("hdu").to_pylist()) for f in wide]
    primary = [f for f, h in zip(wide, hdus, strict=True) if h == {0}]
    assert primary and all(h == {0} or 0 not in h for h in hdus), hdus
    dates = pq.read_table(primary[0], columns=["date_obs"]).column("date_obs").to_pylist()
    assert dates == sorted(dates, key=lambda d: (d is None, d))
    # each part's files hold its HDUs' keyword columns only (the views show every other as NULL)
    per_hdu = hdu_columns_of(Lake(lk).table(Lake(lk).pins(), "uvisflt"))
    table_cols = set(before_rows["uvisflt"].column_names)
    only_ext = set().union(*(c for h, c in per_hdu.items() if h)) - set(per_hdu[0])
    assert only_ext and set(pq.read_schema(primary[0]).names) == set(WIDE_BASE.names) | set(per_hdu[0])
    ext = next(f for f in wide if f not in primary)
    assert set(per_hdu[0]) - set(pq.read_schema(ext).names) and only_ext <= set(pq.read_schema(ext).names)
    assert set(pq.read_schema(ext).names) < table_cols
    con = duckdb.connect(str(lk / "catalog.duckdb"), read_only=True)
    (sql,) = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'uvisflt_0'").fetchone() or ("",)
    con.close()
    assert all(f in sql for f in primary) and not any(f in sql for f in set(wide) - set(primary)), sql
    # nothing was deleted yet that a reader of the old state needs
    assert s.files_deleted == 0 and s.snapshots_expired == 0
    old = duckdb.connect(str(reader_copy), read_only=True)
    assert old.execute("SELECT count(*) FROM cards").fetchone() == (before_rows["cards"].num_rows,)
    old.close()

    # keep_hours=0: every superseded snapshot goes, and every file only they read
    result = CliRunner().invoke(main, ["maintain", "--lake", str(lk), "--keep-hours", "0"])
    assert result.exit_code == 0, result.output
    deleted = re.search(r"deleted (\d+) unreferenced", result.output)  # not "0 unreferenced": 540 has it
    assert "expired" in result.output and deleted and int(deleted.group(1)) > 0, result.output
    assert rows(lk) == before_rows
    lkobj = Lake(lk)
    pins = lkobj.pins()
    referenced: set[str] = set()
    for name in pins.tables:
        tbl = lkobj.table(pins, name)
        assert [sn.snapshot_id for sn in tbl.metadata.snapshots] == [pins.tables[name]] or pins.tables[
            name
        ] is None
        referenced |= _referenced(tbl)
    assert on_disk(lk) <= referenced | {str(p) for p in (lk / "warehouse").rglob("*.json") if p.is_file()}
    unreferenced = {f for f in on_disk(lk) if f not in referenced and not f.endswith(".metadata.json")}
    assert unreferenced == set()

    # the lake goes on: a changed file is ingested, the job finds nothing new to do
    os.utime(grown["flt"], (time.time(), time.time() + 100))
    assert ingest(lk, str(grown["archive"]), scheduler="synchronous").changed == 1
    rel = str(grown["flt"].relative_to(grown["archive"]))
    assert CliRunner().invoke(main, ["header", rel, "--lake", str(lk)]).output == header.output
    run = run_job(lk, "maintain-lake", params={"keep_hours": "0"})
    assert run.status == "success" and run.findings >= 1


def test_maintain_deletes_old_leftovers_only(grown: dict[str, Any]) -> None:
    """Files no snapshot refers to (a killed writer's) go once older than keep_hours, not before."""
    lk = grown["lake"]
    lkobj = Lake(lk)
    pins = lkobj.pins()
    data = lkobj.data_dir(pins.namespace, "uvisflt")
    old_stray, young_stray = data / "killed-old.parquet", data / "killed-young.parquet"
    for p in (old_stray, young_stray):
        pq.write_table(pa.table({"x": [1]}), p)
    os.utime(old_stray, (time.time() - 3 * 3600, time.time() - 3 * 3600))
    before = rows(lk)
    s = maintain(lk, keep_hours=2)
    assert not old_stray.exists() and young_stray.exists()
    assert s.files_deleted >= 1
    assert rows(lk) == before


def test_compacted_files_take_nullability_from_the_table(tmp_path: Path) -> None:
    """A cron ingest's file whose column held no nulls says "not null"; compacted first in a bin with
    files holding nulls there, the new file still takes them (the column is nullable in the table)."""
    from lake.maintenance import _file_schema, _rewrite

    strict = pa.schema([pa.field("path", pa.string()), pa.field("proposid", pa.int64(), nullable=False)])
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pq.write_table(pa.table({"path": ["1/a"], "proposid": [1]}, schema=strict), first)
    pq.write_table(pa.table({"path": ["2/b"], "proposid": pa.array([None], pa.int64())}), second)
    table = pa.schema([pa.field("path", pa.string()), pa.field("proposid", pa.int64())])
    out = _rewrite([str(first), str(second)], _file_schema(table, str(first)), "files", tmp_path)
    assert pq.read_table(out).column("proposid").to_pylist() == [1, None]


def test_compaction_keeps_a_value_the_hdu_record_lacks(grown: dict[str, Any]) -> None:
    """A part's file leaves out the other HDUs' keyword columns: if the table's record of an HDU's keywords
    lacked one that holds values, compaction refuses (naming the file and column) and changes nothing."""
    from lake.tables import HDU_COLUMNS

    lk = grown["lake"]
    before = rows(lk)
    lkobj = Lake(lk)
    pins = lkobj.pins()
    tbl = lkobj.table(pins, "uvisflt")
    per_hdu = hdu_columns_of(tbl)
    per_hdu[0] = [c for c in per_hdu[0] if c != "targname"]
    with tbl.transaction() as tx:
        tx.set_properties({HDU_COLUMNS: json.dumps({str(k): v for k, v in per_hdu.items()})})
    with pytest.raises(LakeError, match=r"uvisflt data file .*\.parquet: column 'targname' holds values"):
        maintain(lk, keep_hours=24)
    assert rows(lk) == before


def test_a_full_extension_file_is_not_rewritten(
    grown: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file is small by its own part's rows: an extension file full at its rows (fewer than a primary
    file's, which has fewer columns) is left as it is (maintenance at 4M files rewrote every one)."""
    import lake.maintenance as m

    lk = grown["lake"]
    files = data_files(lk)["uvisflt"]
    metas = {f: pq.read_metadata(f) for f in files}
    ext = max((f for f in files if 0 not in set(pq.read_table(f, columns=["hdu"])["hdu"].to_pylist())),
              key=lambda f: metas[f].num_rows)  # fmt: skip
    lkobj = Lake(lk)
    pins = lkobj.pins()
    schema = m._plain_schema(lkobj.current_schema(pins, "uvisflt"))
    per_hdu = hdu_columns_of(lkobj.table(pins, "uvisflt"))
    n_ext, n_primary = (len(m.part_schema(schema, per_hdu, p)) for p in (m.EXTENSIONS, m.PRIMARY))
    assert n_primary < n_ext
    # cells that make the file just full for its part, and small by a primary file's rows
    monkeypatch.setattr(m, "MAX_CELLS", int(metas[ext].num_rows * n_ext / m.SMALL_SHARE))
    maintain(lk, keep_hours=24)
    assert ext in data_files(lk)["uvisflt"]
