"""Iceberg DataFiles (statistics, partition) of the Parquet files an ingest writes, as add_files makes them.

pyiceberg's add_files redoes the table-level work for every file (the schema-compatibility check, the
statistics plan, the column-id mapping), which for header tables of hundreds of columns was most of the
driver's time at a commit. Here that is done once per table and schema version. The writer hands over
what the footer it has just written says (:class:`FileCounts`: counts, and for the fixed tables every
column's smallest and largest value), so the driver neither reads the footer back nor walks pyiceberg's
per-column statistics objects; bounds and partition values are made from them with pyiceberg's own
serialisation and truncation, set up once per column.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lake import schema as sch

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq


@dataclass(frozen=True)
class FileCounts:
    """A Parquet footer's facts that Iceberg metrics need: rows, split offsets, and per column its name,
    Arrow type (as :func:`lake.schema.plain_type` text), compressed size, value count and null count (None
    when the footer has none); with ``bounds``, per column its smallest and largest value as pyiceberg
    takes them from the row groups' statistics (None where it keeps none)."""

    num_rows: int
    split_offsets: list[int]
    columns: list[tuple[str, str, int, int, int | None]]
    path_bounds: tuple[str, str] | None = None  # smallest and largest ``path`` (see PATH_METRICS)
    bounds: list[tuple[Any, Any] | tuple[()] | None] | None = None  # per column (min, max), if taken


def file_counts(meta: pq.FileMetaData, bounds: bool = False) -> FileCounts:
    """The counts of a footer, summed over its row groups as pyiceberg sums them; with ``bounds``, every
    column's smallest and largest value too (what a table that keeps bounds of all its columns needs)."""
    arrow = meta.schema.to_arrow_schema()
    n = meta.num_columns
    sizes, values = [0] * n, [0] * n
    nulls: list[int | None] = [None] * n
    invalid = [False] * n
    offsets = []
    for r in range(meta.num_row_groups):
        rg = meta.row_group(r)
        first = rg.column(0)
        dictionary, data = first.dictionary_page_offset, first.data_page_offset
        offsets.append(dictionary if first.has_dictionary_page and dictionary < data else data)
        for i in range(n):
            col = rg.column(i)
            sizes[i] += col.total_compressed_size
            values[i] += col.num_values
            if not col.is_stats_set:
                invalid[i] = True  # pyiceberg then drops the column's null count
                continue
            stats = col.statistics
            if stats.has_null_count:
                nulls[i] = (nulls[i] or 0) + stats.null_count
    cols = [
        (f.name, str(sch.plain_type(f.type)), sizes[i], values[i], None if invalid[i] else nulls[i])
        for i, f in enumerate(arrow)
    ]
    path = _path_bounds(meta, arrow.names.index("path")) if "path" in arrow.names else None
    minmax = [None if invalid[i] else _min_max(meta, i) for i in range(n)] if bounds else None
    return FileCounts(meta.num_rows, sorted(offsets), cols, path, minmax)


UNREADABLE: tuple[()] = ()  # bounds pyarrow cannot give: the driver reads such a file's footer itself


def hdu_counts(path: str) -> dict[int, int]:
    """Rows per HDU of a wide header table's data file, counted from its ``hdu`` column (one narrow
    column of one file)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    counts = pc.value_counts(pq.read_table(path, columns=["hdu"]).column("hdu").combine_chunks())
    hdus, ns = (a.to_pylist() for a in counts.flatten())
    return {int(h): int(n) for h, n in zip(hdus, ns, strict=True) if h is not None}


def _min_max(meta: pq.FileMetaData, i: int) -> tuple[Any, Any] | tuple[()]:
    """Column ``i``'s smallest and largest value over the row groups, taken in the order and with the
    comparisons of pyiceberg's StatsAggregator (a row group without them adds nothing; None where none
    has them), or :data:`UNREADABLE`."""
    lo = hi = None
    for r in range(meta.num_row_groups):
        try:
            stats = meta.row_group(r).column(i).statistics
            vmin, vmax = stats.min, stats.max
        except NotImplementedError:  # pyarrow's ArrowNotImplementedError
            return UNREADABLE
        lo = vmin if lo is None else (min(vmin, lo) if vmin is not None else lo)
        hi = vmax if hi is None else (max(vmax, hi) if vmax is not None else hi)
    return lo, hi


def _path_bounds(meta: pq.FileMetaData, i: int) -> tuple[str, str] | None:
    """The smallest and largest ``path`` of a footer, from its row groups' statistics (None if one
    row group has none)."""
    lo: list[str] = []
    hi: list[str] = []
    for r in range(meta.num_row_groups):
        col = meta.row_group(r).column(i)
        if not col.is_stats_set or not col.statistics.has_min_max:
            return None
        lo.append(col.statistics.min)
        hi.append(col.statistics.max)
    return (min(lo), max(hi)) if lo else None


# Bloom filters on the columns lookups select by: DuckDB skips a row group whose filter rules the value
# out, so one archive file's rows are read from the row group holding them, not from one row group per
# year partition whose path range merely spans the path (lake.snapshot, a cron ingest's reads).
BLOOM_COLUMNS = ("path", "rootname")
ROW_GROUP = 256 * 1024  # rows per Parquet row group, as the ingest and compaction write them
# ``files`` is also read by path range (the known files of the folders a cron ingest scans, which no Bloom
# filter answers): its row groups are smaller, so their path statistics narrow a range to a few thousand
# rows per year partition
_ROW_GROUPS = {"files": 32 * 1024}


def row_group_rows(table: str) -> int:
    """Rows per Parquet row group of ``table``'s data files."""
    return _ROW_GROUPS.get(table, ROW_GROUP)


BLOOM_FPP = 0.01


def bloom_filters(t: pa.Table, row_group: int) -> dict[str, dict[str, float]]:
    """pyarrow's ``bloom_filter_options`` for the lookup columns of ``t`` (rows as they will be written in
    row groups of ``row_group`` rows), each sized for the distinct values of a row group."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out: dict[str, dict[str, float]] = {}
    for c in BLOOM_COLUMNS:
        if c in t.column_names and t.num_rows:
            col = t.column(c)
            if pa.types.is_dictionary(col.type):  # (the ingest writes ``path`` of cards so)
                col = col.cast(col.type.value_type)
            distinct = int(pc.count_distinct(col).as_py())
            per_group = distinct * min(1.0, row_group / t.num_rows)
            out[c] = {"ndv": max(64, int(per_group) + 1), "fpp": BLOOM_FPP}
    return out


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def rewrite_without(
    paths: list[str], table: str, column: str, values: list[str]
) -> dict[str, tuple[int, str | None]]:
    """Copy-on-write of data files of ``table``: for each of ``paths`` holding rows whose ``column`` is one
    of ``values``, a new file beside it with every other row, in the same order and with the same column
    types. Returns, per file holding such rows, (rows dropped, the new file; None when every row goes).

    One DuckDB query finds the files holding the values (skipping row groups by statistics and Bloom
    filters); DuckDB then copies each (several times faster than decoding and encoding it with pyarrow,
    in bounded memory), in row groups of :func:`row_group_rows` rows with Bloom filters on its
    dictionary-encoded columns (``path`` included; in ``files`` the dictionary may hold a row group's
    worth). A file is written under a temporary name and renamed, so a half-written file is never
    mistaken for a finished one (and one no snapshot refers to is deleted by ``ql maintain``)."""
    import duckdb

    srcs = [p.removeprefix("file://") for p in paths]
    if not srcs or not values:
        return {}
    col = '"' + column.replace('"', '""') + '"'
    gone = f"{col} IN ({', '.join(_sql_str(v) for v in sorted(set(values)))})"
    files = f"[{', '.join(_sql_str(p) for p in srcs)}]"
    con = duckdb.connect(config={"threads": 1, "preserve_insertion_order": True})  # (2: slower, more memory)
    try:
        # (wide tables have a FILENAME keyword column)
        scan = (
            f"read_parquet({files}, filename = '_data_file', hive_partitioning = false, union_by_name = true)"
        )
        held = con.execute(f"SELECT _data_file, count(*) FROM {scan} WHERE {gone} GROUP BY 1").fetchall()
        copies: list[str] = []
        out: dict[str, tuple[int, str | None]] = {}
        for src, dropped in held:
            got = con.execute(f"SELECT num_rows FROM parquet_file_metadata({_sql_str(src)})").fetchone()
            out[src] = (int(dropped), None)
            if dropped < (int(got[0]) if got else 0):
                copies.append(src)
    finally:
        con.close()
    for src, new in zip(copies, _copy_all(copies, table, gone), strict=True):
        out[src] = (out[src][0], new)
    return out


def _copy_all(srcs: list[str], table: str, gone: str) -> list[str]:
    """:func:`_copy_without` of each of ``srcs``, side by side (a changed UVIS file's rows are in two
    files of its wide table: one thread each, on a connection of its own)."""
    from concurrent.futures import ThreadPoolExecutor

    import duckdb

    def one(src: str) -> str:
        con = duckdb.connect(config={"threads": 1, "preserve_insertion_order": True})
        try:
            return _copy_without(con, src, table, gone)
        finally:
            con.close()

    if len(srcs) < 2:
        return [one(s) for s in srcs]
    with ThreadPoolExecutor(max_workers=min(len(srcs), os.cpu_count() or 1)) as pool:
        return list(pool.map(one, srcs))


def _copy_without(con: Any, src: str, table: str, gone: str) -> str:
    """``src`` copied beside it without the rows ``gone`` holds (see :func:`rewrite_without`)."""
    import uuid

    d = os.path.dirname(src)
    new = os.path.join(d, f"cow-{uuid.uuid4().hex[:16]}.parquet")
    tmp = os.path.join(d, f".{os.path.basename(new)}.tmp")
    scan = f"read_parquet({_sql_str(src)}, hive_partitioning = false)"
    keep = f"SELECT * FROM {scan} WHERE NOT coalesce({gone}, false)"
    rg = row_group_rows(table)
    opts = f"ROW_GROUP_SIZE {rg}"
    if table == "files":  # one path per row: a dictionary (and Bloom filter) only if it may hold them all
        opts += f", DICTIONARY_SIZE_LIMIT {rg}"  # (not for wide tables: gigabytes for 400 columns)
    con.execute(f"COPY ({keep}) TO {_sql_str(tmp)} (FORMAT parquet, COMPRESSION zstd, {opts})")
    os.replace(tmp, new)
    return new


# Every table keeps full bounds of ``path`` (whatever its other columns keep): a copy-on-write delete of
# one file's rows then rewrites only the data files whose path range holds it, and readers locate a
# file's rows without opening every footer (lake.snapshot).
PATH_METRICS = {"write.metadata.metrics.column.path": "full"}


class Describer:
    """The DataFiles of one table's new Parquet files (one table, one schema version, one spec).

    Each file's columns are checked against the table by name and type; a file that does not match
    exactly goes through pyiceberg's own conversion, which accepts the promotions it allows and raises on
    the rest.
    """

    def __init__(self, metadata: Any, io: Any, arrow_schema: pa.Schema) -> None:
        from pyiceberg.io.pyarrow import MetricModeTypes, compute_statistics_plan, parquet_path_to_id_mapping

        self.metadata, self.io = metadata, io
        self.schema = metadata.schema()
        self.spec = metadata.spec()
        self.want = {f.name: sch.plain_type(f.type) for f in arrow_schema}
        self.want_text = {k: str(v) for k, v in self.want.items()}
        self.plan = compute_statistics_plan(self.schema, metadata.properties)
        self.ids = parquet_path_to_id_mapping(self.schema)
        self.key = describer_key(metadata)
        self.counted = {fid for fid, c in self.plan.items() if c.mode.type != MetricModeTypes.NONE}
        self.path_id = self.ids.get("path")
        self.bounds = {
            fid: _bound_writers(c)
            for fid, c in self.plan.items()
            if c.mode.type not in (MetricModeTypes.NONE, MetricModeTypes.COUNTS)
        }
        self.sources = {f.source_id for f in self.spec.fields}  # columns partition values come from
        # without the writer's bounds of every column, its counts are enough when no partition value is
        # taken from bounds and no column keeps bounds but ``path`` in full (the writer hands those over)
        path_full = self.path_id is not None and self.plan[self.path_id].mode.type == MetricModeTypes.FULL
        self.counts_only = not self.sources and set(self.bounds) <= ({self.path_id} if path_full else set())
        self.from_bounds = all(w is not None for w in self.bounds.values())  # else: from the footer

    def exact(self, path: str, counts: FileCounts | None = None) -> Any | None:
        """The DataFile of a file whose columns are all the table's, with the table's types; else None.
        ``counts`` (from the writer) spares reading the footer where they hold all the table keeps."""
        if counts is not None and (self.counts_only or (counts.bounds is not None and self.from_bounds)):
            got = self._from_counts(path, counts)
            if got is not _FOOTER:
                return got
        import pyarrow.parquet as pq
        from pyiceberg.io.pyarrow import data_file_statistics_from_parquet_metadata

        meta = pq.read_metadata(path)
        if any(self.want.get(f.name) != sch.plain_type(f.type) for f in meta.schema.to_arrow_schema()):
            return None
        stats = data_file_statistics_from_parquet_metadata(
            parquet_metadata=meta, stats_columns=self.plan, parquet_column_mapping=self.ids
        )
        return self._data_file(path, stats.to_serialized_dict(), stats.partition(self.spec, self.schema))

    def _from_counts(self, path: str, counts: FileCounts) -> Any:
        """The DataFile from the writer's ``counts``; None if a column's type is not the table's,
        :data:`_FOOTER` if the counts lack what the table keeps (then it is described from the file)."""
        from pyiceberg.io.fileformat import DataFileStatistics

        if any(self.want_text.get(name) != typ for name, typ, *_ in counts.columns):
            return None
        sizes, values, nulls = {}, {}, {}
        for name, _, size, n_values, n_nulls in counts.columns:
            fid = self.ids[name]
            sizes[fid] = size
            if fid in self.counted:
                values[fid] = n_values
                if n_nulls is not None:
                    nulls[fid] = n_nulls
        got = self._bounds(counts) if counts.bounds is not None else self._path_bounds(counts)
        if got is None:
            return _FOOTER
        lower, upper, aggregates = got
        stats = DataFileStatistics(
            record_count=counts.num_rows,
            column_sizes=sizes,
            value_counts=values,
            null_value_counts=nulls,
            nan_value_counts={},
            column_aggregates=aggregates,
            split_offsets=list(counts.split_offsets),
        )
        serialized = {
            "record_count": counts.num_rows,
            "column_sizes": sizes,
            "value_counts": values,
            "null_value_counts": nulls,
            "nan_value_counts": {},
            "lower_bounds": lower,
            "upper_bounds": upper,
            "split_offsets": stats.split_offsets,
        }
        return self._data_file(path, serialized, stats.partition(self.spec, self.schema))

    def _path_bounds(self, counts: FileCounts) -> Bounds | None:
        """Bounds of a table that keeps them of ``path`` only (None if the footer had none)."""
        if not self.bounds:
            return {}, {}, {}
        if counts.path_bounds is None or self.path_id is None:
            return None
        lo, hi = counts.path_bounds
        return {self.path_id: lo.encode()}, {self.path_id: hi.encode()}, {}

    def _bounds(self, counts: FileCounts) -> Bounds | None:
        """Lower and upper bounds of the bounded columns and the partition columns' smallest and largest
        values, as pyiceberg makes them from the footer (None if pyarrow could not give a column's)."""
        lower: dict[int, bytes] = {}
        upper: dict[int, bytes] = {}
        aggregates: dict[int, Any] = {}
        for (name, *_), minmax in zip(counts.columns, counts.bounds or [], strict=True):
            fid = self.ids[name]
            writers = self.bounds.get(fid)
            if writers is None or minmax is None:  # not kept, or dropped (a row group had no statistics)
                continue
            if len(minmax) != 2:  # UNREADABLE
                return None
            lo, hi = minmax
            if fid in self.sources:
                aggregates[fid] = _Aggregate(lo, hi)
            low, high = writers[0](lo), writers[1](hi)
            if low is not None:
                lower[fid] = low
            if high is not None:
                upper[fid] = high
        return lower, upper, aggregates

    def _data_file(self, path: str, serialized: dict[str, Any], partition: Any) -> Any:
        from pyiceberg.manifest import DataFile, DataFileContent, FileFormat

        return DataFile.from_args(
            content=DataFileContent.DATA,
            file_path=path,
            file_format=FileFormat.PARQUET,
            partition=partition,
            file_size_in_bytes=os.path.getsize(path.removeprefix("file://")),
            sort_order_id=None,
            spec_id=self.metadata.default_spec_id,
            equality_ids=None,
            key_metadata=None,
            **serialized,
        )

    def __call__(self, path: str) -> Any:
        from pyiceberg.io.pyarrow import parquet_file_to_data_file

        return self.exact(path) or parquet_file_to_data_file(self.io, self.metadata, path)


_FOOTER = object()  # the writer's counts are not enough: describe from the footer
# lower bounds, upper bounds (field id → serialised value) and the partition columns' smallest and largest
Bounds = tuple[dict[int, bytes], dict[int, bytes], dict[int, Any]]


@dataclass
class _Aggregate:
    """What pyiceberg's partition inference reads of a column's statistics."""

    current_min: Any
    current_max: Any


BoundWriter = Callable[[Any], bytes | None]


def _bound_writers(collector: Any) -> tuple[BoundWriter, BoundWriter] | None:
    """A column's lower- and upper-bound serialisers, as pyiceberg's StatsAggregator serialises (its
    truncation made once, not per file); None where pyiceberg would refuse the metrics mode."""
    from pyiceberg.conversions import to_bytes
    from pyiceberg.transforms import TruncateTransform
    from pyiceberg.types import BinaryType, StringType
    from pyiceberg.utils.truncate import truncate_upper_bound_binary_string, truncate_upper_bound_text_string

    kind, width = collector.iceberg_type, collector.mode.length
    string, binary = isinstance(kind, StringType), isinstance(kind, BinaryType)
    if width is not None and not (string or binary):
        return None  # pyiceberg raises: described from the footer, where it does so itself
    cut = TruncateTransform(width=width).transform(kind) if width is not None else None
    upper_cut = truncate_upper_bound_text_string if string else truncate_upper_bound_binary_string

    def lower(v: Any) -> bytes | None:
        bound = v if cut is None or v is None else cut(v)
        return None if bound is None else to_bytes(kind, bound)

    def upper(v: Any) -> bytes | None:
        bound = upper_cut(v, width) if (string or binary) and v is not None else v
        return None if bound is None else to_bytes(kind, bound)

    return lower, upper


def describer_key(metadata: Any) -> tuple[Any, ...]:
    """What a description depends on besides the file itself."""
    metrics = tuple(sorted((k, v) for k, v in metadata.properties.items() if k.startswith("write.metadata.")))
    return (metadata.table_uuid, metadata.current_schema_id, metadata.default_spec_id, metrics)


def data_files(
    metadata: Any,
    io: Any,
    paths: list[str],
    arrow_schema: pa.Schema,
    counts: dict[str, FileCounts] | None = None,
) -> list[Any]:
    """The DataFiles of ``paths`` (see :class:`Describer`)."""
    describe = Describer(metadata, io, arrow_schema)
    counts = counts or {}
    return [describe.exact(p, counts.get(p)) or describe(p) for p in paths]


def file_stamp(path: str) -> tuple[int, int]:
    st = os.stat(path.removeprefix("file://"))
    return st.st_size, st.st_mtime_ns
