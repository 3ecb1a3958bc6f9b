"""How the lake's costs grow with the archive (#16): one real lake and stand-ins of millions of files.

    python bench/scale.py [--base-datasets 300] [--sizes 70000,4000000] [--rescan 1000000] [--work DIR]
                          [--json OUT] [--build-only] [--jobs 2]

A generated archive of --base-datasets exposures is ingested into a real lake (the base). For each size N a
stand-in of an N-file lake is built from it: the base lake's rows replicated with new proposal numbers and
rootnames (every path and rootname distinct, every table's rows N / base files times the base's) and their
dates moved to the replica's cycle (:class:`Cycles`: as in HST's archive, where proposal numbers are given
out cycle by cycle, the replicas' proposals, in path order, fill the archive's years in order; replica k's
dates are also moved k months within the year, so that a month holds a month's share of the exposures,
not the base's densest month times every replica), written as a compacted lake is (per table and year
partition, in path order, files of at most MAX_CELLS cells) and committed to Iceberg with the lake's own
code (the tables' and year partitions' files written by --jobs processes, the largest first, with
progress); and the archive files the measurements touch, as hard links to the base files under the new
names (for the largest size also the --rescan files of a no-op rescan).

Measured in each, with the growth ratio between the largest and the smallest size:
point lookup of one file's cards (in-process warm, and `ql header` as a process), the original Quicklook
query (warm, and `ql sql`), `ql tables`, the Dataset page's data (every query the page makes, for a team
member), a one-file cron ingest of a changed UVIS file and of a new file (`ql ingest FOLDER`: wall time and
the process's peak RSS), a no-op rescan of --rescan files, and `ql maintain`. Also printed: the base ingest's
driver CPU per file (bench/driver.py measures it against a baseline and projects a 4M-file rebuild on 16
workers from it).

Each stand-in is built once (in ``lake-N``, kept as ``standin-N``) and measured in a fresh clone of it put
back in its place (the data files hard-linked, since a lake never changes a data file in place; everything
else copied), so runs before and after a change measure the same lake; the archive's measured folder is
relinked for every run. Each figure is printed as it is measured, in the order of #16's "done when" list;
a process (`ql header`, `ql sql`, `ql tables`, the cron ingests) is the median of three runs, all printed;
the three changed-file ingests change three files spread over the path range (a second change of one
file would find its rows in the small file the first wrote, not in a compacted data file).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from _util import ROOT, best_of, compile_project

B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def b36(n: int, width: int) -> str:
    s = ""
    for _ in range(width):
        n, r = divmod(n, 36)
        s = B36[r] + s
    assert n == 0, "too many replicas for three base-36 characters"
    return s


class Renamer:
    """Replica ``k`` of a base path or rootname: proposal ``100000 + 64 k + i`` (i: the base proposal's
    rank) and the rootname's program code replaced by one unique to (k, base code). Order is kept: the
    replicas' paths sort as replica, then base path."""

    def __init__(self, paths: list[str]) -> None:
        props = sorted({p.split("/", 1)[0] for p in paths})
        assert len(props) < 64, "base archive has too many proposals"
        self.prop_rank = {p: i for i, p in enumerate(props)}
        self.codes = sorted({p.rsplit("/", 1)[1][1:4] for p in paths})
        self.code_rank = {c: i for i, c in enumerate(self.codes)}

    def prop(self, k: int, prop: str) -> str:
        return str(100000 + 64 * k + self.prop_rank[prop])

    def rootname(self, k: int, root: str) -> str:
        return root[0] + b36(k * len(self.codes) + self.code_rank[root[1:4]], 3) + root[4:]

    def path(self, k: int, path: str) -> str:
        prop, visit, name = path.split("/")
        return f"{self.prop(k, prop)}/{visit}/{self.rootname(k, name[:9])}{name[9:]}"


class Rolling:
    """Parquet files of at most ``max_rows`` rows, written in order under ``out`` as compaction writes
    them (:func:`lake.maintenance._rewrite`): row groups of its table's size, each chunk sorted like the
    table's files, with Bloom filters, a wide header table's primary headers in files of their own
    (:data:`lake.maintenance.PRIMARY`); ``master`` as an ingest writes it (sorted by HEALPix cell, no
    Bloom filters: pyiceberg writes it)."""

    def __init__(
        self,
        out: Path,
        schema: pa.Schema,
        max_rows: int,
        tag: str,
        table: str,
        presorted: bool = False,
        hdu_columns: dict[int, list[str]] | None = None,
    ) -> None:
        from lake.datafile import row_group_rows
        from lake.maintenance import EXTENSIONS, MAX_CELLS, PRIMARY, _sort_keys, part_schema, split_primary

        self.out, self.schema, self.max_rows, self.tag = out, schema, max_rows, tag
        self.primary = None
        if split_primary(table, schema.names) and hdu_columns is not None:
            # each part's files hold the columns of its HDUs, and MAX_CELLS of them (as compaction does)
            first = part_schema(schema, hdu_columns, PRIMARY)
            self.primary = Rolling(out, first, MAX_CELLS // len(first), f"{tag}-primary", table, presorted)
            self.schema = part_schema(schema, hdu_columns, EXTENSIONS)
            self.max_rows = MAX_CELLS // len(self.schema)
        self.master = table == "master"
        keys = ["_healpix_29", "rootname"] if self.master else _sort_keys(table, self.schema.names)
        # rows already in the order of the keys (cards, files: by path) are not sorted again (the same
        # rows in the same order: most of the time of writing cards went to sorting sorted chunks)
        self.keys = [] if presorted else [(c, "ascending") for c in keys]
        self.group = row_group_rows(table)
        self.files: list[str] = []
        self.writer: pq.ParquetWriter | None = None
        self.pending: list[pa.Table] = []
        self.pending_rows = self.rows = 0
        out.mkdir(parents=True, exist_ok=True)

    def write(self, t: pa.Table) -> None:
        from lake.maintenance import EXTENSIONS, PRIMARY, part_rows

        if self.primary is not None:
            self.primary.write(part_rows(t, PRIMARY))
            t = part_rows(t, EXTENSIONS)
        t = t.select(self.schema.names).cast(self.schema)
        while t.num_rows:
            take = min(t.num_rows, self.max_rows - self.rows)
            self.pending.append(t.slice(0, take))
            self.pending_rows += take
            self.rows += take
            t = t.slice(take)
            if self.rows >= self.max_rows:
                self.roll()
            elif self.pending_rows >= self.group:
                self.flush()

    def flush(self) -> None:
        from lake.datafile import bloom_filters

        if not self.pending:
            return
        chunk = pa.concat_tables(self.pending)
        chunk = chunk.sort_by(self.keys) if self.keys else chunk
        if self.writer is None:
            path = self.out / f"{self.tag}-{len(self.files):06d}.parquet"
            self.files.append(str(path))
            blooms = None if self.master else bloom_filters(chunk, self.group)
            self.writer = pq.ParquetWriter(
                path, self.schema, compression="zstd", store_schema=False, bloom_filter_options=blooms
            )
        self.writer.write_table(chunk, row_group_size=self.group)
        self.pending, self.pending_rows = [], 0

    def roll(self) -> None:
        """Finish the file being written (the next rows go to a new one)."""
        self.flush()
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        self.rows = 0

    def close(self) -> None:
        self.roll()
        if self.primary is not None:
            self.primary.close()
            self.files += self.primary.files
            self.primary = None


def _lookups(t: pa.Table) -> dict[str, tuple[list[Any], pa.Array]]:
    """Per renamed (or re-dated) column: its distinct values and each row's position among them."""
    out = {}
    for col in ("path", "rootname", "date_obs"):
        if col in t.column_names:
            uniq = pc.unique(t.column(col)).to_pylist()
            out[col] = (uniq, pc.index_in(t.column(col), pa.array(uniq, t.schema.field(col).type)))
    return out


# how a stand-in's rows are made from the base's (see Cycles) and laid out (each part of a wide table
# holds its HDUs' columns)
MODEL = "cycles, part columns"


class Cycles:
    """The year of each of ``k_total`` replicas: the base's years in order, each taken by a run of
    consecutive replicas. HST gives out proposal numbers cycle by cycle, so in the archive a proposal
    number (and a path) says roughly when its data were taken; the base archive's generator spreads a
    program's exposures over all the years, which no path order can prune by date."""

    def __init__(self, years: list[int], k_total: int) -> None:
        self.years = sorted(years)
        self.k_total = k_total

    def year(self, k: int) -> int:
        return self.years[k * len(self.years) // self.k_total]

    def replicas(self, year: int) -> range:
        """The replicas whose exposures are in ``year`` (consecutive, so in path order)."""
        ks = [k for k in range(self.k_total) if self.year(k) == year]
        return range(ks[0], ks[-1] + 1) if ks else range(0)


def moved(date: str, k: int, year: int) -> tuple[str, int]:
    """``date`` (YYYY-MM-DD) moved to ``year`` and ``k`` months on within it (day kept, at most 28) and
    the days it moved: replica ``k``'s exposures fall in its cycle's year, and in other months than the
    replica before it, so a month of the stand-in holds about as many exposures as any other month
    instead of the base archive's one crowded January 2015 times every replica."""
    import datetime as dt

    try:
        old = dt.date.fromisoformat(date)
    except ValueError:
        return date, 0
    new = dt.date(year, (old.month - 1 + k) % 12 + 1, min(old.day, 28))
    return new.isoformat(), (new - old).days


def _redate(t: pa.Table, k: int, year: int, uniq: list[Any], where: pa.Array) -> pa.Table:
    """Replica ``k``'s ``date_obs`` moved by :func:`moved`, and its MJD columns by as many days."""
    pairs = [moved(u, k, year) if isinstance(u, str) else (u, 0) for u in uniq]
    dates = pa.array([d for d, _ in pairs], pa.string()).take(where)
    t = t.set_column(t.schema.get_field_index("date_obs"), "date_obs", dates)
    shift = pa.array([float(n) for _, n in pairs], pa.float64()).take(where)
    for col in ("expstart", "expend"):
        i = t.schema.get_field_index(col)
        if i >= 0 and pa.types.is_floating(t.schema.field(col).type):
            t = t.set_column(i, col, pc.add(t.column(col), pc.cast(shift, t.schema.field(col).type)))
    return t


def _replica(
    t: pa.Table, k: int, year: int, ren: Renamer, idx: dict[str, tuple[list[Any], pa.Array]]
) -> pa.Table:
    """Rows of replica ``k`` of a base table: path, rootname and proposid renamed through lookup tables,
    dates moved to ``year`` (:func:`moved`)."""
    i = t.schema.get_field_index("year")
    if i >= 0:
        t = t.set_column(i, "year", pa.nulls(t.num_rows, t.schema.field(i).type).fill_null(year))
    for col, (uniq, where) in idx.items():
        if col == "date_obs":
            t = _redate(t, k, year, uniq, where)
            continue
        fn = ren.path if col == "path" else ren.rootname
        new = pa.array([fn(k, u) if u is not None else None for u in uniq], pa.string())
        t = t.set_column(t.schema.get_field_index(col), col, new.take(where))
    if "proposid" in t.column_names and "path" in t.column_names:
        props = pc.utf8_slice_codeunits(t.column("path"), 0, 6)
        t = t.set_column(
            t.schema.get_field_index("proposid"), "proposid", pc.cast(props, t.schema.field("proposid").type)
        )
    return t


ORDER = ("path", "rootname", "hdu", "position")  # a base table's rows, as replicas are written


def _presorted(table: str, names: list[str]) -> bool:
    """Whether rows in :data:`ORDER` are in the order of ``table``'s sort keys (``rootname`` is the
    path's: a key list starting with ``path`` needs no ``rootname``)."""
    from lake.maintenance import _sort_keys

    keys = _sort_keys(table, names)
    order = [c for c in ORDER if c in names and c != "rootname"]
    return table != "master" and bool(keys) and keys[0] == "path" and keys == order[: len(keys)]


def _build_part(
    name: str,
    year: int | None,
    files: list[str],
    plain: pa.Schema,
    sub: str,
    cycles: Cycles,
    ren: Renamer,
    hdu_columns: dict[int, list[str]],
) -> tuple[str, int | None, list[str], int, float]:
    """One table's (year partition's) data files of a stand-in: its base rows, replicated for every
    replica (of ``year``'s cycle, for a partitioned table); returns the table, the year, the files
    written, their rows and the seconds it took (run in a worker process)."""
    from lake.maintenance import MAX_CELLS

    t0 = time.perf_counter()
    data = pq.ParquetDataset(files, partitioning=None).read()
    if year is not None:  # every dated base row, moved to the year (rows of no year are left out)
        data = data.filter(pc.is_valid(data.column("year")))
    data = data.select(plain.names).cast(plain)
    sort = [c for c in ORDER if c in data.column_names]
    data = data.sort_by([(c, "ascending") for c in sort])  # replicas in path order
    roll = Rolling(
        Path(sub),
        plain,
        max(1, MAX_CELLS // len(plain)),
        f"standin-{year}",
        name,
        _presorted(name, sort),
        hdu_columns or None,
    )
    idx = _lookups(data)
    ks = cycles.replicas(year) if year is not None else range(cycles.k_total)
    for k in ks:
        roll.write(_replica(data, k, cycles.year(k), ren, idx))
    roll.close()
    return name, year, roll.files, data.num_rows * len(ks), time.perf_counter() - t0


PARTITIONED = ("files", "cards", "master", "conflicts")  # by year, as in the lake


def build_standin(base_lake: Path, out: Path, n_files: int, jobs: int = 2) -> tuple[Path, int, Renamer]:
    """A lake standing in for ``n_files`` archive files (see the module docstring); returns it, the number
    of replicas and the renamer. Each table (year partition, for the partitioned ones) is written by one
    of ``jobs`` processes, the largest first; the tables are then committed in the lake's own way."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from lake.tables import Lake, hdu_columns_of

    src = Lake(base_lake)
    sp = src.pins()
    base_files = pq.ParquetDataset(src.data_files(sp, "files"), partitioning=None).read(
        columns=["path", "year"]
    )
    paths = base_files.column("path").to_pylist()
    k_total = max(1, round(n_files / len(paths)))
    ren = Renamer(paths)
    cycles = Cycles(pc.unique(base_files.column("year").drop_null()).to_pylist(), k_total)
    lk = Lake(out)
    with lk.writer():
        pins = lk.init()
        work: list[tuple[int, tuple[Any, ...]]] = []  # (cells, task)
        schemas: dict[str, pa.Schema] = {}
        for name in sorted(sp.tables):
            schema = src.iceberg_schema(sp, name)
            files = src.data_files(sp, name)
            if not files:
                continue
            plain = pa.schema([pa.field(f.name, f.type) for f in schema])
            if name in PARTITIONED:  # every dated row in every year, for that year's replicas
                years = pq.ParquetDataset(files, partitioning=None).read(columns=["year"])["year"]
                dated = len(years) - years.null_count
                parts = [(y, dated * len(cycles.replicas(y))) for y in cycles.years]
            else:
                parts = [(None, k_total * sum(pq.read_metadata(f).num_rows for f in files))]
            parts = [(y, n) for y, n in parts if n]
            if not parts:
                continue
            lk.ensure_table(pins, name, plain)
            schemas[name] = plain
            for y, n in parts:
                sub = lk.data_dir(pins.namespace, name) / (f"year={y}" if y is not None else "")
                per_hdu = hdu_columns_of(src.table(sp, name))
                work.append((n * len(plain), (name, y, files, plain, str(sub), cycles, ren, per_hdu)))
        work.sort(key=lambda w: -w[0])
        done: dict[str, dict[Any, tuple[list[str], int]]] = {name: {} for name in schemas}
        t0, total, so_far = time.perf_counter(), sum(w[0] for w in work), 0
        ctx = multiprocessing.get_context("spawn")  # (no fork of a process whose pyarrow threads run)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            futures = {pool.submit(_build_part, *task): cells for cells, task in work}
            for f in as_completed(futures):
                name, y, written, rows, took = f.result()
                done[name][y] = (written, rows)
                so_far += futures[f]
                spent = time.perf_counter() - t0
                print(
                    f"    {name}{'' if y is None else f' year={y}'}: {rows:,} rows in {len(written)} files "
                    f"({took:.0f} s); {100 * so_far / total:.0f} % of the cells after {spent:.0f} s",
                    flush=True,
                )
        for name in sorted(done):
            parts_done = sorted(done[name].items(), key=lambda kv: str(kv[0]))
            written = [p for _, (fs, _) in parts_done for p in fs]
            cols = hdu_columns_of(src.table(sp, name))
            lk.commit_files(pins, name, written, hdu_columns=cols or None)
            rows = sum(r for _, (_, r) in parts_done)
            print(f"  {name}: {rows:,} rows in {len(written)} files", flush=True)
        lk.publish(pins)
    return out, k_total, ren


def link_archive(base_arch: Path, arch: Path, ren: Renamer, replicas: range, only: str = "") -> int:
    """Hard links to the base archive's files under replica names (only paths containing ``only``)."""
    n = 0
    for d, _dirs, names in os.walk(base_arch):
        for name in names:
            if not name.endswith(".fits"):
                continue
            rel = os.path.relpath(os.path.join(d, name), base_arch)
            if only and only not in rel:
                continue
            for k in replicas:
                dst = arch / ren.path(k, rel)
                dst.parent.mkdir(parents=True, exist_ok=True)
                if not dst.exists():
                    os.link(os.path.join(d, name), dst)
                    n += 1
    return n


def clone_lake(src: Path, dst: Path, publish: bool = False) -> None:
    """A fresh copy of a stand-in: Parquet data files hard-linked, all else copied; with ``publish``,
    published again by the code measured (catalog.duckdb's views are then that code's)."""
    if dst.exists():
        shutil.rmtree(dst)
    for d, _dirs, names in os.walk(src):
        out = dst / os.path.relpath(d, src)
        out.mkdir(parents=True, exist_ok=True)
        for name in names:
            a, b = os.path.join(d, name), out / name
            if name.endswith(".parquet"):
                os.link(a, b)
            else:
                shutil.copy2(a, b)
    if publish:
        from lake.tables import Lake

        lk = Lake(dst)
        with lk.transaction() as pins:
            lk.publish(pins)


def timed_process(args: list[str]) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MB) and CPU seconds (user + system) of a command (GNU time). The CPU time
    is what the wall time would be on an idle core: on cores shared with other work, the wall time
    follows their load."""
    t0 = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", *args], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")
    rss, user, system = r.stderr.strip().splitlines()[-1].split()
    return wall, int(rss) / 1024, float(user) + float(system)


RUNS = 3  # each process is timed this many times: one run of a few seconds on shared cores varies by 10-20 %


def timed(
    out: dict[str, float],
    key: str,
    args: list[str],
    rss_key: str = "",
    *,
    runs: int = RUNS,
    before: Callable[[int], object] | None = None,
) -> None:
    """``out[key]``: a command's wall seconds, the median of ``runs`` runs (``before(i)`` called before
    run ``i``); beside it the same run's CPU seconds (and the largest peak RSS). Every run's wall time is
    printed."""
    got = []
    for i in range(runs):
        if before is not None:
            before(i)
        got.append(timed_process(args))
    print(f"    ({key}: runs " + ", ".join(f"{w:.2f}" for w, _, _ in got) + ")", flush=True)
    wall, _, cpu = sorted(got)[len(got) // 2]
    out[key] = wall
    out[key.replace(" (s)", ": CPU (s)")] = cpu
    if rss_key:
        out[rss_key] = max(rss for _, rss, _ in got)


def ql(*args: str) -> list[str]:
    return [sys.executable, "-m", "lake", *args]


def dataset_page(lake_dir: Path, rootname: str) -> float:
    """Every query the Dataset page makes for one dataset (team member), best of 3, warm."""
    from app.data import anomaly, browse, headerview
    from app.data.scope import Scope
    from app.data.viewer import Viewer

    scope = Scope(lake_dir, Viewer(name="bench", team=True))

    def page() -> None:
        browse.dataset(scope, rootname)
        anomaly.current(scope, rootname=rootname)
        files = browse.files(scope, rootname).column("path").to_pylist()
        browse.hdus(scope, files[0])
        headerview.cards(scope, files[0], 0)

    return best_of(page, 3)


class Shown(dict[str, float]):
    """Results printed as they come (a run cut short still says what it measured)."""

    def __setitem__(self, key: str, value: float) -> None:
        print(f"    {key}: {value:.3f}", flush=True)
        super().__setitem__(key, value)


def measure(lake_dir: Path, arch: Path, base_arch: Path, ren: Renamer, k_total: int) -> dict[str, float]:
    import lake as ql_lake
    from lake.cli import ORIGINAL_QUERY

    out: dict[str, float] = Shown()
    k = k_total - 1  # the last replica: the victims sit at the end of the path range
    import fitsio

    uvis = sorted(x.relative_to(base_arch).as_posix() for x in base_arch.rglob("*_flt.fits"))
    uvis = [p for p in uvis if "Visit" in p and fitsio.read_header(base_arch / p, 0)["DETECTOR"] == "UVIS"]
    # one changed file per cron run, spread over the path range: a second change of one file would find
    # its rows in the small file the first change wrote, not in a compacted data file
    picks = [uvis[i * (len(uvis) - 1) // (RUNS - 1)] for i in range(RUNS)]
    victims = [ren.path(k, p) for p in picks]
    victim = victims[0]
    for v, p in zip(victims, picks, strict=True):  # the folders afresh: a previous run changed files
        shutil.rmtree(arch / v.rsplit("/", 1)[0], ignore_errors=True)
        link_archive(base_arch, arch, ren, range(k, k + 1), only=p.rsplit("/", 1)[0] + "/")
    out["point lookup, warm (ms)"] = 1000 * best_of(lambda: ql_lake.read_header(victim, path=lake_dir))
    timed(out, "`ql header` process (s)", ql("header", "--lake", str(lake_dir), victim))
    con = ql_lake.connect(lake_dir)
    out["original query, warm (ms)"] = 1000 * best_of(lambda: con.execute(ORIGINAL_QUERY).fetchall())
    timed(out, "`ql sql` original query process (s)", ql("sql", "--lake", str(lake_dir), ORIGINAL_QUERY))
    timed(out, "`ql tables` process (s)", ql("tables", "--lake", str(lake_dir)))
    out["Dataset page data, warm (ms)"] = 1000 * dataset_page(lake_dir, victim.rsplit("/", 1)[1][:9])
    cron(out, lake_dir, arch, [arch / v for v in victims])
    return out


def cron(out: dict[str, float], lake_dir: Path, arch: Path, victims: list[Path]) -> None:
    """One-file cron ingests (``ql ingest`` of the victims' folders): run ``i`` finds ``victims[i]``
    changed, then run ``i`` of the new-file ingests finds one new file beside ``victims[0]``."""
    from astropy.io import fits

    import lake as ql_lake

    def change(i: int) -> None:
        # its own inode first (the hard link is shared with the base and every replica)
        shutil.copyfile(victims[i], victims[i].with_suffix(".tmp"))
        os.replace(victims[i].with_suffix(".tmp"), victims[i])
        with fits.open(victims[i], mode="update") as h:
            h[0].header["TARGNAME"] = f"BENCH-CHANGED-{i}"

    folders = sorted({str(v.parent) for v in victims})
    ingest = ql("ingest", "--lake", str(lake_dir), "--archive", str(arch), *folders)
    timed(
        out,
        "cron ingest, changed UVIS file (s)",
        ingest,
        "cron ingest, changed: peak RSS (MB)",
        before=change,
    )
    for i, v in enumerate(victims):
        where = f"path = '{v.relative_to(arch).as_posix()}'"
        got = ql_lake.read("uvisflt_0", lake_dir, where=where)["targname"].to_list()
        assert got == [f"BENCH-CHANGED-{i}"], got

    def add(i: int) -> None:  # rootnames no replica uses
        v = victims[0]
        shutil.copyfile(v, v.parent / (f"izz{'zyx'[i % 3]}" + v.name[4:]))

    timed(out, "cron ingest, new file (s)", ingest, "cron ingest, new: peak RSS (MB)", before=add)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-datasets", type=int, default=300)
    ap.add_argument("--sizes", default="70000,4000000")
    ap.add_argument("--rescan", type=int, default=1_000_000)
    ap.add_argument("--work", default="")
    ap.add_argument("--json", default="", help="also write the results to this JSON file")
    ap.add_argument("--build-only", action="store_true", help="build the stand-ins, measure nothing")
    ap.add_argument("--jobs", type=int, default=2, help="processes writing a stand-in's data files")
    args = ap.parse_args()
    work = Path(args.work or ROOT / "bench-scale")
    work.mkdir(parents=True, exist_ok=True)
    compile_project()
    base_arch, base_lake = work / "base-archive", work / "base-lake"
    if not (base_arch / ".quicklake-archive").exists():
        from ingest.archivegen.generate import generate

        generate(base_arch, datasets=args.base_datasets, seed=11, pixels="none")
    from ingest.run import ingest

    if not (base_lake / "pins.json").exists():
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        s = ingest(base_lake, str(base_arch), batch_files=1000, workers=2)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        took = time.perf_counter() - t0
        print(f"base: {s.ingested} files in {took:.1f} s; driver CPU {1000 * cpu / s.ingested:.3f} ms/file")
    results: dict[int, dict[str, float]] = {}
    sizes = [int(x) for x in args.sizes.split(",")]
    for n in sizes:
        standin, lake_dir, arch = work / f"standin-{n}", work / f"lake-{n}", work / f"archive-{n}"
        model = work / f"standin-{n}.model"  # a stand-in built by older code is built again
        if not (standin / "pins.json").exists() or not model.exists() or model.read_text() != MODEL:
            shutil.rmtree(lake_dir, ignore_errors=True)
            t0 = time.perf_counter()
            _, k_total, ren = build_standin(base_lake, lake_dir, n, args.jobs)
            clone_lake(lake_dir, standin)  # the lake records its place: built there, kept here
            model.write_text(MODEL)
            print(f"stand-in of {n:,} files built in {time.perf_counter() - t0:.0f} s", flush=True)
        else:
            paths = pq.ParquetDataset(
                [str(p) for p in (base_lake / "warehouse").rglob("files/data/**/*.parquet")],
                partitioning=None,
            ).read(columns=["path"])
            ren = Renamer(paths.column("path").to_pylist())
            k_total = max(1, round(n / paths.num_rows))
        if args.build_only:
            continue
        clone_lake(standin, lake_dir, publish=True)
        results[n] = measure(lake_dir, arch, base_arch, ren, k_total)
        print(f"  {n:,} files: {json.dumps(results[n])}", flush=True)
        if n == max(sizes) and args.rescan:
            reps = range(max(1, round(args.rescan / (n / k_total))))
            linked = link_archive(base_arch, arch, ren, reps)
            folders = sorted({ren.prop(k, p) for k in reps for p in ren.prop_rank})
            rescan = ql("ingest", "--lake", str(lake_dir), "--archive", str(arch), *folders)
            timed(results[n], f"no-op rescan of {len(reps) * (n // k_total):,} files (s)", rescan, runs=1)
            print(f"  ({linked:,} links made)")
        maintain = ql("maintain", "--lake", str(lake_dir))
        rss_key = "`ql maintain`: peak RSS (MB)"
        # once: a second run finds the work done
        timed(results[n], "`ql maintain` after the cron ingests (s)", maintain, rss_key, runs=1)
        if args.json:  # after each size: a run cut short keeps what it measured
            Path(args.json).write_text(json.dumps({str(n): r for n, r in results.items()}, indent=1))
    if args.build_only:
        return 0
    small, big = min(sizes), max(sizes)
    print(f"\n{'measure':<48} " + " ".join(f"{n:>12,}" for n in sizes) + f" {'growth':>8}  target (#16)")
    for key in results[big]:
        vals = [results[n].get(key, float("nan")) for n in sizes]
        growth = results[big][key] / results[small][key] if key in results[small] else float("nan")
        print(f"{key:<48} " + " ".join(f"{v:>12.3f}" for v in vals) + f" {growth:>7.2f}x  {_verdict(key)}")
    return 0


# #16's "done when" limits at the largest size (each also at most 2x its value at the smallest)
TARGETS = {
    "point lookup, warm (ms)": 100,
    "`ql header` process (s)": 0.5,
    "original query, warm (ms)": 100,
    "`ql sql` original query process (s)": 0.5,
    "`ql tables` process (s)": 1,
    "Dataset page data, warm (ms)": 1000,
    "cron ingest, changed UVIS file (s)": 5,
    "cron ingest, changed: peak RSS (MB)": 1024,
    "no-op rescan": 60,  # of 1M files (s)
}


def _verdict(key: str) -> str:
    limit = next((v for k, v in TARGETS.items() if key.startswith(k)), None)
    return "" if limit is None else f"< {limit:g}, growth <= 2x"


if __name__ == "__main__":
    raise SystemExit(main())
