"""An ingest's interim batch files (``BatchTask.interim``): written cheaply, compacted to exactly the files
that final batch files compact to."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.batch import INTERIM_STATISTICS, BatchResult, BatchTask, FileJob, process_batch
from lake.archive import scan_archive
from lake.layout import DEFAULT_TEMPLATES
from lake.maintenance import EXTENSIONS, PRIMARY, _file_schema, _rewrite, in_order, read_part, split_primary


def _batches(archive: Path, root: Path, interim: bool) -> list[BatchResult]:
    listing = scan_archive(str(archive))
    jobs = [FileJob(rel, *listing[rel]) for rel in sorted(listing)]
    half = len(jobs) // 2
    out: list[BatchResult] = []
    for i, part in enumerate((jobs[:half], jobs[half:])):
        out += process_batch(
            BatchTask(f"b{i}", str(archive), part, str(root), DEFAULT_TEMPLATES, {}, interim=interim)
        )
    return out


def _rows(path: str) -> pa.Table:
    t = pq.read_table(path)
    return t.drop_columns(["ingested_at"]) if "ingested_at" in t.column_names else t  # (the clock's)


def _compacted(results: list[BatchResult], root: Path) -> dict[tuple[str, str, str | None], pa.Table]:
    """Every table's (and partition's) batch files rewritten as compaction rewrites them."""
    by_part: dict[tuple[str, str], list[str]] = {}
    for res in results:
        for table, paths in res.files.items():
            for p in paths:
                by_part.setdefault((table, str(Path(p).parent.relative_to(root))), []).append(p)
    out = {}
    for (table, sub), paths in sorted(by_part.items()):
        names = pq.read_schema(paths[0]).names
        fields = {f.name: f for p in paths for f in pq.read_schema(p)}
        schema = _file_schema(pa.schema([fields[n].with_nullable(True) for n in fields]), paths[0])
        for part in (PRIMARY, EXTENSIONS) if split_primary(table, names) else (None,):
            done = _rewrite(paths, schema, table, root / sub, part)
            out[(table, sub, part)] = _rows(done)
    return out


def test_interim_batch_files_hold_the_rows_and_compact_to_the_same_files(
    small_archive: Path, tmp_path: Path
) -> None:
    final = _batches(small_archive, tmp_path / "final", interim=False)
    interim = _batches(small_archive, tmp_path / "interim", interim=True)
    assert [sorted(r.files) for r in final] == [sorted(r.files) for r in interim]
    for f, i in zip(final, interim, strict=True):
        assert (f.n_files, f.n_cards, f.schemas, f.hdu_columns) == (
            i.n_files,
            i.n_cards,
            i.schemas,
            i.hdu_columns,
        )
        for table in f.files:
            for a, b in zip(f.files[table], i.files[table], strict=True):
                assert _rows(a).equals(_rows(b)), (table, a)  # the same rows, in the same order
                got = i.counts[b]
                assert got.num_rows == f.counts[a].num_rows == pq.read_metadata(b).num_rows
                if table in ("cards", "files", "conflicts"):
                    continue  # (never interim: a lone one is committed as it is, see ingest.compacting)
                # a wide table's rows per HDU
                hdus, n = np.unique(pq.read_table(b, columns=["hdu"]).column("hdu"), return_counts=True)
                assert i.hdu_rows[b] == f.hdu_rows[a] == dict(zip(hdus.tolist(), n.tolist(), strict=True))
                meta = duckdb.sql(
                    f"SELECT path_in_schema, bloom_filter_offset, compression, stats_min IS NOT NULL OR "
                    f"stats_null_count IS NOT NULL FROM parquet_metadata('{b}')"
                ).fetchall()
                assert all(off is None for _, off, _, _ in meta), b  # no Bloom filters
                assert {c for _, _, c, _ in meta} == {"LZ4_RAW"}
                assert {col for col, _, _, stats in meta if stats} <= set(INTERIM_STATISTICS)
                # the primary headers in row groups of their own
                groups = pq.ParquetFile(b)
                for r in range(groups.metadata.num_row_groups):
                    hdu = groups.read_row_group(r, columns=["hdu"]).column("hdu").to_numpy()
                    assert (hdu == 0).all() or (hdu != 0).all()
    # the batches' final files carry Bloom filters on their lookup columns (as before), and cards files
    # are final ones in either batch
    for some in (final[0].files["cards"][0], interim[0].files["cards"][0]):
        blooms = duckdb.sql(
            f"SELECT path_in_schema FROM parquet_metadata('{some}') WHERE bloom_filter_offset IS NOT NULL"
        ).fetchall()
        assert {"path", "rootname"} <= {c for (c,) in blooms}
    a = _compacted(final, tmp_path / "final")
    b = _compacted(interim, tmp_path / "interim")
    assert a.keys() == b.keys()
    assert any(part == PRIMARY for _, _, part in a)
    for key in a:
        assert a[key].schema == b[key].schema and a[key].equals(b[key]), key


def test_read_part_reads_the_rows_of_its_part(tmp_path: Path) -> None:
    rows = pa.table({"hdu": pa.array([0, 0, 1, 2, None, 0, 3], pa.int32()), "x": list(range(7))})
    for groups in ([7], [2, 3, 2], [1, 1, 1, 1, 1, 1, 1]):
        p = tmp_path / f"t{len(groups)}.parquet"
        with pq.ParquetWriter(p, rows.schema) as w:
            start = 0
            for n in groups:
                w.write_table(rows.slice(start, n))
                start += n
        assert read_part(str(p), PRIMARY).column("x").to_pylist() == [0, 1, 5]
        assert read_part(str(p), EXTENSIONS).column("x").to_pylist() == [2, 3, 4, 6]
        assert read_part(str(p), None).equals(rows)
    plain = tmp_path / "plain.parquet"
    pq.write_table(rows.slice(2, 3), plain, write_statistics=False)
    assert read_part(str(plain), PRIMARY).num_rows == 0
    assert read_part(str(plain), EXTENSIONS).column("x").to_pylist() == [2, 3, 4]


@pytest.mark.parametrize("seed", range(20))
def test_in_order_agrees_with_sort_by(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 40))
    t = pa.table(
        {
            "hdu": pa.array(rng.integers(0, 3, n), pa.int32()),
            "date_obs": pa.array(
                [None if rng.random() < 0.2 else f"2016-0{rng.integers(1, 4)}" for _ in range(n)]
            ),
            "path": pa.array([f"p{rng.integers(0, 5)}" for _ in range(n)]),
        }
    )
    keys = ["hdu", "date_obs", "path"]
    for table in (t, t.sort_by([(k, "ascending") for k in keys])):
        assert in_order(table, keys) == table.equals(table.sort_by([(k, "ascending") for k in keys]))
    assert not in_order(pa.table({"f": [1.0, float("nan"), 2.0]}), ["f"])  # (floats: left to sort_by)
