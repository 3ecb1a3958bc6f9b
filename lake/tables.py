"""The lake on disk: Iceberg tables in a SQL catalog, the pin set that makes batches atomic, the writer lock.

Layout of ``<lake>``::

    catalog.sqlite     Iceberg SQL catalog (default; any SQLAlchemy URL by setting)
    warehouse/         Iceberg metadata and the data files workers write
    pins.json          the lake's commit point: namespace + snapshot id of every table
    catalog.duckdb     DuckDB views pinned to those snapshots (regenerated after every commit)
    .lock              writer lock (flock: released by the kernel when a writer dies; a PostgreSQL
                       advisory lock instead when the state is in PostgreSQL, setting state_url)

Iceberg commits are per table, so a batch touching several tables is made visible by rewriting
``pins.json`` (atomic rename) after all its table commits. Readers going through Quicklake use the pinned
snapshots, so they never see half a batch; a writer that dies leaves tables ahead of their pins, and the
next writer rolls them back before it starts (:meth:`Lake.recover`).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pyarrow as pa

from lake import manifests
from lake import schema as sch
from lake.datafile import PATH_METRICS, Describer, FileCounts, describer_key, file_stamp
from lake.errors import LakeError, LakeLocked, LakeNotFound
from lake.faults import point

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from pyiceberg.catalog import Catalog

# pyiceberg (and SQLAlchemy under it) is imported on first use: readers going through catalog.duckdb
# (`ql sql`, lake.connect) never need it, and it takes a second or two to import.

PINS_VERSION = 1
RETIRED_AT = "quicklake.retired-at"  # namespace property: when a rebuild swapped it out
HDU_COLUMNS = "quicklake.hdu-columns"
# Every commit writes a metadata.json; Iceberg keeps this many previous ones per table and deletes older
# ones at each commit (lake.maintenance sets the same on tables made before).
METADATA_PROPERTIES = {
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "10",
}


def hdu_columns_of(tbl: Any) -> dict[int, list[str]]:
    """Keyword columns per HDU index recorded on a wide table."""
    raw = tbl.properties.get(HDU_COLUMNS)
    return {int(k): list(v) for k, v in json.loads(raw).items()} if raw else {}


@cache
def _transaction_class() -> Any:
    from pyiceberg.table import Transaction

    class _Transaction(Transaction):
        """pyiceberg's Transaction with the staged metadata computed once per staged change.

        pyiceberg recomputes (deep-copies) the metadata on every access, some twenty times per add_files;
        for wide header tables of hundreds of columns that was most of the ingest time. The metadata
        objects are immutable (frozen pydantic models), so sharing one result between accesses is safe,
        and with nothing staged yet the table's own metadata is the result (half the deep copies of a
        commit, some 3-9 ms each for a wide table).
        """

        _cached: tuple[Any, Any, Any] | None = None

        @property
        def table_metadata(self) -> Any:
            if not self._updates:
                return self._table.metadata
            c = self._cached
            if c is not None and c[0] is self._table.metadata and c[1] is self._updates:
                return c[2]
            md = super().table_metadata
            self._cached = (self._table.metadata, self._updates, md)
            return md

    return _Transaction


def _no_such_table() -> type[Exception]:
    from pyiceberg.exceptions import NoSuchTableError

    return NoSuchTableError


def _commit_failed() -> type[Exception]:
    from pyiceberg.exceptions import CommitFailedException

    return CommitFailedException


_NO_YEAR = object()


def _delete_filter(paths: list[str], years: Mapping[str, int | None] | None) -> Any:
    """``path IN paths``, per year partition when every path's year is known."""
    from functools import reduce

    from pyiceberg.expressions import And, EqualTo, IsNull, Or

    by_year: dict[Any, list[str]] = {}
    for p in paths:
        by_year.setdefault((years or {}).get(p, _NO_YEAR), []).append(p)
    if _NO_YEAR in by_year:
        return _path_in(paths)
    parts: list[Any] = [
        And(IsNull("year") if y is None else EqualTo("year", y), _path_in(ps))  # type: ignore[call-arg,arg-type]
        for y, ps in sorted(by_year.items(), key=lambda kv: str(kv[0]))
    ]
    return reduce(lambda a, b: Or(a, b), parts)


def _in_years(files: list[str], years: list[Any]) -> list[str]:
    """The data files of a year-partitioned table that may be in one of ``years`` by their folder
    (``year=2012``, ``year=null``); all of them when a year is not known."""
    if _NO_YEAR in years:
        return files
    want = {f"year={'null' if y is None else y}" for y in years}
    return [f for f in files if not (parts := _hive_years(f)) or parts & want]


def _hive_years(file: str) -> set[str]:
    return {part for part in file.split("/") if part.startswith("year=")}


def _record_hdu_columns(tbl: Any, tx: Any, hdu_columns: dict[int, list[str]]) -> None:
    """Add ``hdu_columns`` to the table's record of the keyword columns each HDU has (staged in ``tx``)."""
    merged = hdu_columns_of(tbl)
    for h, cols in hdu_columns.items():
        have = merged.setdefault(int(h), [])
        have.extend(c for c in cols if c not in set(have))
    record = json.dumps({str(k): v for k, v in sorted(merged.items())})
    if record != tbl.properties.get(HDU_COLUMNS):  # usually no new keyword
        tx.set_properties({HDU_COLUMNS: record})


def _path_in(values: list[str]) -> Any:
    from pyiceberg.expressions import In

    return In("path", values)  # type: ignore[call-arg,arg-type]


class FileInfo(NamedTuple):
    """A data file's rows and the smallest and largest ``path`` in it (None where not known), and for a
    wide header table its rows per HDU (None where not known)."""

    rows: int
    min_path: str | None
    max_path: str | None
    hdu_rows: dict[int, int] | None = None
    columns: str | None = None  # its columns and their types, as a key (see Lake.columns_key)


@dataclass
class Pins:
    namespace: str
    tables: dict[str, int | None]
    committed_at: str = ""
    # each table's Iceberg metadata file when the pins were published: a writer that finds them all
    # unchanged knows no table ran ahead of its pin without reading any table's metadata
    locations: dict[str, str] = field(default_factory=dict)
    # the lake folder when published: a lake opened elsewhere was moved or copied (lake.relocate)
    root: str = ""

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": PINS_VERSION,
                "root": self.root,
                "namespace": self.namespace,
                "tables": self.tables,
                "committed_at": self.committed_at,
                "locations": self.locations,
            },
            indent=1,
            sort_keys=True,
        )


# At most this many data files of a table may hold a cron ingest's paths for their copies to start early
# (Lake.rewrite_early): files written in path order hold one path in one or two
EARLY_FILES = 4


def _drop_copies(done: Mapping[str, tuple[int, str | None]]) -> None:
    """Delete the files :func:`lake.datafile.rewrite_without` wrote (copies no snapshot will take)."""
    for _, new in done.values():
        if new:
            Path(new).unlink(missing_ok=True)


def _namespace_number(namespace: str) -> int | None:
    """``n`` of a Quicklake namespace ``lake_<n>`` (None for any other name)."""
    head, _, tail = namespace.rpartition("_")
    return int(tail) if head == "lake" and tail.isdigit() else None


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class Lake:
    """A Quicklake lake directory."""

    def __init__(self, root: str | os.PathLike[str], catalog_uri: str = "") -> None:
        self.root = Path(root).resolve()
        self.catalog_uri = catalog_uri or f"sqlite:///{self.root / 'catalog.sqlite'}"
        self.warehouse = self.root / "warehouse"
        self.pins_path = self.root / "pins.json"
        self.duckdb_path = self.root / "catalog.duckdb"
        self._catalog: Catalog | None = None
        # loaded tables, reused while this process holds the writer lock (nobody else commits then)
        self._tables: dict[str, Any] = {}
        self._writing = False
        self._snapshot_files: dict[tuple[str, int], list[str]] = {}  # a snapshot's files never change
        # what catalog.duckdb recorded of a pinned snapshot (schema, per-HDU columns): never changes either
        self._recorded: dict[tuple[str, int], Any] = {}
        self._arrow_schemas: dict[tuple[Any, int], pa.Schema] = {}
        self._describers: dict[tuple[Any, ...], Describer] = {}
        self._descriptions: dict[str, tuple[Any, tuple[int, int], Any]] = {}  # path → (key, stamp, DataFile)
        self._unpublished = False  # a table or pin changed since the last publish (see transaction)
        # data file → (rows, smallest path, largest path), from the DataFiles this process has seen: what
        # catalog.duckdb records for readers to locate a file's rows (lake.snapshot)
        self._file_info: dict[str, FileInfo] = {}
        # (table, pinned snapshot, deleted paths) → the copy-on-write done ahead (rewrite_ahead)
        self._ahead: dict[tuple[str, int | None, tuple[str, ...]], tuple[dict[str, Any], dict[str, Any]]] = {}
        self._early: dict[tuple[str, int, tuple[str, ...]], tuple[frozenset[str], Future[Any]]] = {}
        self._early_pool: ThreadPoolExecutor | None = None
        self._seeded: tuple[str, dict[str, int | None]] | None = None  # the pins seed_from_record took
        self.relocating = False  # set by lake.relocate: the pins name another place, on purpose

    # ---------------------------------------------------------------- existence and catalog
    def exists(self) -> bool:
        return self.pins_path.exists()

    def require(self) -> None:
        """Raise :class:`LakeNotFound` if there is no lake here, :class:`LakeMoved` if it was published
        somewhere else (moved or copied: its files would be the original's until 'ql relocate')."""
        self._pins_doc()

    def _pins_doc(self) -> dict[str, Any]:
        try:
            d: dict[str, Any] = json.loads(self.pins_path.read_text())
        except FileNotFoundError:
            raise LakeNotFound.at(self.root, "pins.json") from None
        if not self.relocating:
            from lake.relocate import check_place

            check_place(self.root, d)
        return d

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self.warehouse.mkdir(exist_ok=True)
            from lake import fasticeberg

            fasticeberg.install()  # manifests encoded, metadata copied faster: the same results
            self._catalog = fasticeberg.sql_catalog(
                "quicklake", uri=self.catalog_uri, warehouse=self.warehouse.as_uri()
            )
            # a server's pooled connections are closed when this Lake goes (SQLite's hold no server)
            weakref.finalize(self, self._catalog.engine.dispose)
        return self._catalog

    def pins(self) -> Pins:
        d = self._pins_doc()
        return Pins(
            d["namespace"], dict(d["tables"]), d.get("committed_at", ""), dict(d.get("locations") or {}),
            d.get("root", ""),
        )  # fmt: skip

    def tables(self) -> list[str]:
        return sorted(self.pins().tables) if self.exists() else []

    def data_dir(self, namespace: str, table: str) -> Path:
        return self.warehouse / f"{namespace}.db" / table / "data"

    # ---------------------------------------------------------------- writer side
    @contextmanager
    def writer(self, wait: float = 0.0) -> Iterator[None]:
        """Hold the lake's writer lock; raise :class:`LakeLocked` if another process holds it.

        ``<lake>/.lock`` (flock) with the state in SQLite; a PostgreSQL advisory lock with the state in
        PostgreSQL (:func:`lake.state.lock`), which hosts sharing the lake's folder all see."""
        from lake import state

        self.root.mkdir(parents=True, exist_ok=True)
        with state.lock(self.root, "writer", self.root / ".lock", wait=wait) as got:
            if not got.held:
                raise LakeLocked(
                    f"{self.root} is being written by another process ({got.holder or 'unknown'}); "
                    "wait for it to finish"
                )
            self._clear_temporaries()
            self._tables.clear()
            self._writing = True
            try:
                yield
            finally:
                self._end_early()
                self._writing = False
                self._tables.clear()

    def _clear_temporaries(self) -> None:
        """Delete the temporary files of a publish a killed writer left (``catalog.duckdb`` and
        ``pins.json`` under their temporary names): only the lock holder writes them."""
        for pattern in (".catalog.*.duckdb", ".catalog.*.duckdb.wal", ".pins.json.*.tmp"):
            for p in self.root.glob(pattern):
                p.unlink(missing_ok=True)

    @contextmanager
    def transaction(
        self, *, wait: float = 0.0, early: Callable[[Pins], None] | None = None
    ) -> Iterator[Pins]:
        """One writer's session: hold the writer lock (waiting up to ``wait`` seconds for it), roll back
        what a dead writer left (:meth:`recover`), create the lake if it is new, and yield the pins.

        On a normal exit the pins are published if anything changed since the last publish; a caller
        that published its last change itself (an ingest publishes as it goes, a rebuild swaps the
        namespace in and then drops the old one) or changed nothing leaves nothing to publish. On an
        exception nothing is published: the tables are ahead of their pins, and the next writer's
        :meth:`recover` rolls them back. Callers may :meth:`publish` inside as often as they need.

        ``early(pins)``, once the lock is held and before the catalog is opened, is given the published
        pins (what every reader sees) to start work that needs nothing else (:meth:`rewrite_early`).
        """
        with self.writer(wait):
            if early is not None and self.exists():
                early(self.pins())
            self.recover()
            pins = self.init()
            if not pins.locations:  # published by a version before path bounds (see _path_metrics)
                self._path_metrics(pins)
            if not self.seed_from_record(pins):
                # catalog.duckdb ran ahead of pins.json (a writer died between the two renames): write it
                # again for the pins, so that what reads it directly (the duckdb CLI) sees the commit
                from lake.catalog import write_duckdb_catalog

                write_duckdb_catalog(self, pins)
            self._unpublished = False
            yield pins
            if self._unpublished:
                self.publish(pins)

    def init(self, namespace: str | None = None) -> Pins:
        """Create an empty lake (or return the existing pins)."""
        if self.exists():
            return self.pins()
        pins = Pins(namespace or "lake_1", {}, datetime.now(UTC).isoformat())
        self.catalog.create_namespace_if_not_exists(pins.namespace)
        for name in (*sch.FIXED_TABLES, *sch.HISTORY_TABLES):
            self.ensure_table(pins, name, sch.arrow_schema(name))
        self.publish(pins)
        return pins

    def identifier(self, pins: Pins, table: str) -> str:
        return f"{pins.namespace}.{table}"

    def ensure_table(self, pins: Pins, table: str, schema: pa.Schema) -> None:
        """Create a table if it does not exist and register it in ``pins``.

        The fixed tables (files, cards, master, conflicts) are partitioned by identity(year): queries
        and monitors select by date, and an incremental ingest of new data touches one partition. Wide
        header tables are not partitioned: a batch writes one file per table, which keeps commits cheap
        and files large; their files are sorted by HDU and date so Parquet statistics prune instead.
        """
        ident = self.identifier(pins, table)
        try:
            self.catalog.load_table(ident)
        except _no_such_table():
            # Wide tables are read through DuckDB/Polars, which prune with the Parquet statistics; Iceberg
            # min/max bounds of hundreds of keyword columns only cost the driver time at every commit.
            props = {**METADATA_PROPERTIES, **PATH_METRICS}
            if table not in sch.FIXED_TABLES:
                props["write.metadata.metrics.default"] = "counts"
            tbl = self.catalog.create_table(ident, schema=schema, properties=props)
            if table in sch.FIXED_TABLES:
                with tbl.update_spec() as spec:
                    spec.add_identity("year")
        if table not in pins.tables:
            pins.tables[table] = None
            self._unpublished = True

    def _path_metrics(self, pins: Pins) -> None:
        """Give tables made before every table kept ``path`` bounds (:data:`PATH_METRICS`) the property:
        their new files then have bounds (compaction gives old files theirs)."""
        for name in pins.tables:
            tbl = self.table(pins, name)
            if any(tbl.properties.get(k) != v for k, v in PATH_METRICS.items()):
                with tbl.transaction() as tx:
                    tx.set_properties(PATH_METRICS)
                self.forget(self.identifier(pins, name))

    def _locations(self, namespace: str) -> dict[str, str]:
        """Table name → its current metadata file, as the SQL catalog has them (one query)."""
        from pyiceberg.catalog.sql import IcebergTables
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        cat: Any = self.catalog
        with Session(cat.engine) as session:
            rows = session.execute(
                select(IcebergTables.table_name, IcebergTables.metadata_location).where(
                    IcebergTables.catalog_name == cat.name, IcebergTables.table_namespace == namespace
                )
            ).all()
        return {name: loc for name, loc in rows if loc}

    def table(self, pins: Pins, table: str) -> Any:
        ident = self.identifier(pins, table)
        tbl = self._tables.get(ident)
        if tbl is None:
            tbl = self.catalog.load_table(ident)
            if self._writing:
                self._tables[ident] = tbl
        return tbl

    def forget(self, ident: str | None = None) -> None:
        """Drop cached table objects (after a failed commit or a drop)."""
        if ident is None:
            self._tables.clear()
        else:
            self._tables.pop(ident, None)

    def recover(self) -> list[str]:
        """Roll every table back to its pinned snapshot (undo a writer that died mid-batch).

        Tables created after the last pin are dropped. Returns the names of the tables touched.
        """
        if not self.exists():
            return []
        pins = self.pins()
        touched = []
        now = self._locations(pins.namespace)
        for ident in self.catalog.list_tables(pins.namespace):
            name = ident[-1]
            if name in pins.tables and pins.locations.get(name, "?") == now.get(name):
                continue  # not committed to since the pins were published
            tbl = self.catalog.load_table(ident)
            current = tbl.metadata.current_snapshot_id
            if name not in pins.tables:
                self.catalog.drop_table(ident)
                self.forget(".".join(ident))
                touched.append(name)
                continue
            pinned = pins.tables[name]
            if current == pinned:
                continue
            if pinned is None:
                # created and pinned empty, then written: empty it again
                tbl.delete("True")
                pins.tables[name] = None
            else:
                tbl.manage_snapshots().set_current_snapshot(snapshot_id=pinned).commit()
            touched.append(name)
        return touched

    def evolve(self, pins: Pins, table: str, schema: pa.Schema) -> None:
        """Add the columns of ``schema`` the table lacks (new keywords)."""
        tbl = self.table(pins, table)
        have = set(tbl.schema().column_names)
        new = [f for f in schema if f.name not in have]
        if new:
            with tbl.update_schema() as upd:
                upd.union_by_name(pa.schema(new))
            self._unpublished = True

    def describe_files(
        self, pins: Pins, table: str, files: list[str], counts: dict[str, FileCounts] | None = None
    ) -> None:
        """Read the statistics of data files ahead of their commit (an ingest driver does this as batches
        arrive, while the workers are busy, so that the commit after the last batch has less to do);
        ``counts`` are the writer's (see :class:`lake.datafile.FileCounts`). A description is used only if
        neither the file nor the table's schema changed since."""
        if table not in pins.tables:
            return  # made by the commit
        describe = self._describer(pins, table, self.table(pins, table).metadata)
        counts = counts or {}
        for f in files:
            df = describe.exact(f, counts.get(f))
            if df is not None:
                self._descriptions[f] = (describe.key, file_stamp(f), df)

    def _describer(self, pins: Pins, table: str, metadata: Any) -> Describer:
        key = describer_key(metadata)
        got = self._describers.get(key)
        if got is None:
            got = self._describers[key] = Describer(
                metadata, self.table(pins, table).io, self.current_schema(pins, table)
            )
        return got

    def _described(self, describe: Describer, path: str) -> Any | None:
        got = self._descriptions.pop(path, None)
        if got is None or got[0] != describe.key or got[1] != file_stamp(path):
            return None
        return got[2]

    def commit_files(
        self,
        pins: Pins,
        table: str,
        files: list[str],
        delete_paths: Iterable[str] = (),
        properties: dict[str, str] | None = None,
        hdu_columns: dict[int, list[str]] | None = None,
        years: Mapping[str, int | None] | None = None,
    ) -> None:
        """One snapshot: delete the rows of ``delete_paths``, then register the Parquet ``files``.

        ``years`` (path → the year its rows are in) lets the delete of a year-partitioned table look in
        those partitions only: each partition has a data file whose path range holds any path.

        ``hdu_columns`` (wide tables) adds to the table's record of which keyword columns each HDU has,
        from which the per-HDU views (``uvisflt_1``) are made.
        """
        delete_paths = list(delete_paths)
        for attempt in range(5):
            tbl = self.table(pins, table)
            try:
                with _transaction_class()(tbl) as tx:
                    if hdu_columns:
                        _record_hdu_columns(tbl, tx, hdu_columns)
                        ident = self.identifier(pins, table)  # (the record's per-HDU columns may be stale)
                        self._recorded = {k: v for k, v in self._recorded.items() if k[0] != ident}
                    gone: list[Any] = []
                    rewritten: list[str] = []
                    if delete_paths:
                        where = _delete_filter(delete_paths, years if table in sch.FIXED_TABLES else None)
                        gone, rewritten = self._copy_on_write(pins, table, where, "path", delete_paths)
                    if files or gone:
                        self._add_files(pins, table, tx, [*files, *rewritten], gone, properties)
                    point("table.staged")
                point("table.committed")
                break
            except _commit_failed():
                self.forget(self.identifier(pins, table))
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
        tbl = self.table(pins, table)
        before = pins.tables.get(table)
        pins.tables[table] = sid = tbl.metadata.current_snapshot_id
        self._unpublished = True
        ident = self.identifier(pins, table)
        old = [] if before is None else self._snapshot_files.get((ident, before))
        if old is not None and sid is not None:
            # the new snapshot's files are known without reading its manifests: the pinned ones but
            # those rewritten, and the new ones
            dropped = {df.file_path.removeprefix("file://") for df in gone}
            new = [f.removeprefix("file://") for f in [*files, *rewritten]]
            self._snapshot_files[(ident, sid)] = [f for f in old if f not in dropped] + new

    def _copy_on_write(
        self, pins: Pins, table: str, where: Any, column: str, values: list[str]
    ) -> tuple[list[Any], list[str]]:
        """Delete the rows whose ``column`` is one of ``values`` (``where`` says the same to Iceberg): the
        pinned DataFiles that may hold them (by partition and bounds) are each rewritten without those
        rows (:func:`lake.datafile.rewrite_without`, which leaves a file holding none alone). Returns the
        DataFiles that go and the files replacing them (none for a file whose every row goes)."""
        from lake.datafile import rewrite_without

        sid = pins.tables.get(table)
        if sid is None:
            return [], []
        ahead = self._ahead.pop((table, sid, tuple(values)), None) if column == "path" else None
        if ahead is not None:
            tasks, done = ahead
        else:
            tasks = self._holding(pins, table, where)
            done = rewrite_without(list(tasks), table, column, values)
        gone = [tasks[f] for f in done]
        return gone, [new for _, new in done.values() if new]

    def _holding(self, pins: Pins, table: str, where: Any) -> dict[str, Any]:
        """The pinned DataFiles of ``table`` that may hold rows ``where`` takes (partition and bounds)."""
        scan = self.table(pins, table).scan(row_filter=where, snapshot_id=pins.tables[table])
        return {t.file.file_path.removeprefix("file://"): t.file for t in scan.plan_files()}

    def rewrite_ahead(
        self,
        pins: Pins,
        tables: Iterable[str],
        delete_paths: list[str],
        years: Mapping[str, int | None] | None = None,
    ) -> None:
        """The copy-on-write deletes of ``delete_paths`` in each of ``tables``, side by side (one thread
        each: DuckDB copies without the GIL), for :meth:`commit_files` to take up: a changed file's rows
        are in four tables, whose copies one after the other were a quarter of a cron ingest."""
        from concurrent.futures import ThreadPoolExecutor

        from lake.datafile import rewrite_without

        plans = {}
        for table in tables:
            if pins.tables.get(table) is not None and delete_paths:  # (pyiceberg planning: this thread)
                where = _delete_filter(delete_paths, years if table in sch.FIXED_TABLES else None)
                plans[table] = self._holding(pins, table, where)
        for table in self._take_early(pins, plans, delete_paths):
            del plans[table]
        if len(plans) < 2:
            return  # nothing to do side by side
        with ThreadPoolExecutor(max_workers=min(len(plans), os.cpu_count() or 1)) as pool:
            futures = {
                t: pool.submit(rewrite_without, list(f), t, "path", delete_paths) for t, f in plans.items()
            }
            for table, tasks in plans.items():
                key = (table, pins.tables[table], tuple(delete_paths))
                self._ahead[key] = (tasks, futures[table].result())

    def rewrite_early(
        self,
        pins: Pins,
        tables: Iterable[str],
        delete_paths: list[str],
        years: Mapping[str, int | None] | None = None,
    ) -> None:
        """Start the copy-on-write deletes of ``delete_paths`` in ``tables`` from what catalog.duckdb
        records of the pinned files (their ``path`` bounds), before pyiceberg is even imported: the
        copies (DuckDB's, without the GIL) run while it loads, which is most of a one-file cron ingest's
        start. :meth:`rewrite_ahead` takes a table's copies if pyiceberg's plan of the delete agrees;
        copies not taken are deleted. Tables whose files are not recorded, or where more than
        :data:`EARLY_FILES` may hold the paths, are left to :meth:`rewrite_ahead`. ``years``: the year
        partition of each path, as for :meth:`rewrite_ahead` (in a partitioned table every year's files
        span the archive's paths; a file's year is read from its folder, ``year=2012``)."""
        from concurrent.futures import ThreadPoolExecutor

        from lake.datafile import rewrite_without

        if not delete_paths or not self.seed_from_record(pins):
            return
        key = tuple(sorted(set(delete_paths)))
        todo = {}
        for table in tables:
            sid = pins.tables.get(table)
            if sid is not None and (self.identifier(pins, table), sid) in self._recorded:
                files = self.holding(pins, table, delete_paths)
                if years is not None and table in sch.FIXED_TABLES:
                    files = _in_years(files, [years.get(p, _NO_YEAR) for p in delete_paths])
                if 0 < len(files) <= EARLY_FILES:
                    todo[(table, sid, key)] = files
        if not todo:
            return
        pool = self._early_pool  # (one pool per writer session: _end_early closes it)
        if pool is None:
            pool = self._early_pool = ThreadPoolExecutor(max_workers=min(len(todo), os.cpu_count() or 1))
        for k, files in todo.items():
            job = pool.submit(rewrite_without, files, k[0], "path", list(key))
            self._early[k] = (frozenset(files), job)

    def _take_early(self, pins: Pins, plans: dict[str, dict[str, Any]], delete_paths: list[str]) -> list[str]:
        """The tables of ``plans`` whose early copies (:meth:`rewrite_early`) stand: pyiceberg planned no
        file they did not consider, and every file they copied is one it planned."""
        key = tuple(sorted(set(delete_paths)))
        taken = []
        for table, tasks in plans.items():
            got = self._early.pop((table, pins.tables[table] or 0, key), None)
            if got is None:
                continue
            considered, job = got
            done = job.result()
            if set(tasks) <= considered and set(done) <= set(tasks):
                self._ahead[(table, pins.tables[table], tuple(delete_paths))] = (tasks, done)
                taken.append(table)
            else:
                _drop_copies(done)
        return taken

    def _end_early(self) -> None:
        """Wait for the early copies nobody took, and delete them (the writer is done)."""
        for _, job in self._early.values():
            # (a failed copy left nothing to delete but its temporary, which ``ql maintain`` deletes)
            with contextlib.suppress(Exception):
                _drop_copies(job.result())
        self._early.clear()
        pool, self._early_pool = self._early_pool, None
        if pool is not None:
            pool.shutdown()

    def _add_files(
        self,
        pins: Pins,
        table: str,
        tx: Any,
        files: list[str],
        gone: list[Any],
        properties: dict[str, str] | None,
    ) -> None:
        """Stage one snapshot in ``tx`` that registers ``files`` and drops the DataFiles ``gone``: what
        tx.add_files does, with the per-table work done once (see lake.datafile); file names are unique
        (uuid), so no scan for files already referenced."""
        if tx.table_metadata.name_mapping() is None:
            mapping = tx.table_metadata.schema().name_mapping.model_dump_json()
            tx.set_properties({"schema.name-mapping.default": mapping})
        describe = self._describer(pins, table, tx.table_metadata)
        data_files = [self._described(describe, f) or describe(f) for f in files]
        self._remember(tx.table_metadata.schema(), data_files)
        with manifests.overwrite(tx, properties) if gone else manifests.append(tx, properties) as snap:
            for df in gone:
                snap.delete_data_file(df)
            for df in data_files:
                snap.append_data_file(df)

    def replace_files(
        self,
        pins: Pins,
        table: str,
        old: list[Any],
        files: list[str],
        properties: dict[str, str] | None = None,
    ) -> None:
        """One snapshot that swaps the DataFiles ``old`` for the Parquet ``files`` holding the same rows
        (compaction: no row added or removed, so no file is read but the new ones' footers, and not
        those described ahead by :meth:`describe_files`)."""
        tbl = self.table(pins, table)
        with _transaction_class()(tbl) as tx:
            describe = self._describer(pins, table, tx.table_metadata)
            data_files = [self._described(describe, f) or describe(f) for f in files]
            self._remember(tx.table_metadata.schema(), data_files)
            with manifests.overwrite(tx, properties) as snap:
                for df in old:
                    snap.delete_data_file(df)
                for df in data_files:
                    snap.append_data_file(df)
            point("table.staged")
        point("table.committed")
        ident, before = self.identifier(pins, table), pins.tables.get(table)
        pins.tables[table] = sid = tbl.metadata.current_snapshot_id
        self._unpublished = True
        had = None if before is None else self._snapshot_files.get((ident, before))
        if had is not None and sid is not None:  # the new snapshot's files, without reading its manifests
            gone = {df.file_path.removeprefix("file://") for df in old}
            self._snapshot_files[(ident, sid)] = [f for f in had if f not in gone] + [
                f.removeprefix("file://") for f in files
            ]

    def overwrite(self, pins: Pins, table: str, data: pa.Table) -> None:
        """Replace the table's rows with ``data`` (one snapshot); columns the table lacks are added
        first (a lake made before ``master`` had ``_healpix_29`` gets it at its next ingest)."""
        self.evolve(pins, table, data.schema)
        tbl = self.table(pins, table)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Delete operation did not match any records")
            tbl.overwrite(data)
        point("table.committed")
        pins.tables[table] = self.table(pins, table).metadata.current_snapshot_id
        self._unpublished = True

    def replace_rows(self, pins: Pins, table: str, data: pa.Table, paths: list[str]) -> None:
        """Delete the rows whose ``path`` is one of ``paths`` and append ``data`` (one snapshot)."""
        self.evolve(pins, table, data.schema)
        tbl = self.table(pins, table)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Delete operation did not match any records")
            tbl.overwrite(data, overwrite_filter=_path_in(sorted(set(paths))))
        point("table.committed")
        pins.tables[table] = self.table(pins, table).metadata.current_snapshot_id
        self._unpublished = True

    def replace_datasets(self, pins: Pins, table: str, data: pa.Table, rootnames: list[str]) -> None:
        """Delete the rows of the datasets ``rootnames`` and append ``data`` (one commit): the delete
        rewrites only the data files holding those rows (the others are ruled out by their ``rootname``
        Bloom filters, see :meth:`_copy_on_write`), not the table: ``master`` at a cron ingest."""
        from pyiceberg.expressions import In

        self.evolve(pins, table, data.schema)
        tbl = self.table(pins, table)
        with _transaction_class()(tbl) as tx:
            if rootnames:
                where = In("rootname", rootnames)  # type: ignore[call-arg,arg-type]
                gone, rewritten = self._copy_on_write(pins, table, where, "rootname", rootnames)
                if gone:
                    self._add_files(pins, table, tx, rewritten, gone, None)
            if data.num_rows:
                tx.append(data)
            point("table.staged")
        point("table.committed")
        pins.tables[table] = self.table(pins, table).metadata.current_snapshot_id
        self._unpublished = True

    def append(self, pins: Pins, table: str, data: pa.Table) -> None:
        """Append rows (one snapshot), e.g. a job run's findings."""
        tbl = self.table(pins, table)
        tbl.append(data)
        point("table.committed")
        pins.tables[table] = tbl.metadata.current_snapshot_id
        self._unpublished = True

    def publish(self, pins: Pins) -> None:
        """Make ``pins`` the lake's visible state: catalog.duckdb first, then pins.json (the commit point)."""
        from lake.catalog import write_duckdb_catalog

        pins.committed_at = datetime.now(UTC).isoformat()
        now = self._locations(pins.namespace)
        pins.locations = {t: now[t] for t in pins.tables if t in now}
        pins.root = str(self.root)
        write_duckdb_catalog(self, pins)
        point("publish.catalog")
        _atomic_write(self.pins_path, pins.to_json().encode())
        point("publish.done")
        self._unpublished = False
        from lake.timetravel import record_commit

        record_commit(self.root, pins.namespace, pins.tables, pins.committed_at)

    def mark_missing(
        self,
        pins: Pins,
        removed_paths: list[str],
        tables_of: dict[str, str],
        years: Mapping[str, int | None] | None = None,
    ) -> None:
        """Files gone from the archive: delete their rows from ``cards`` and the header tables they were
        in (``tables_of``: path → comma-separated table names, as in ``files.tables``), and set their
        ``files`` rows to status ``missing``. One snapshot per table; nothing is published."""
        tables = {t for p in removed_paths for t in tables_of[p].split(",") if t}
        self.rewrite_ahead(pins, sorted(tables | {"cards"}), removed_paths, years)
        for t in sorted(tables | {"cards"}):
            self.commit_files(pins, t, [], delete_paths=removed_paths, years=years)
        old = (
            self.table(pins, "files")
            .scan(row_filter=_delete_filter(removed_paths, years), snapshot_id=pins.tables["files"])
            .to_arrow()
        )
        n = old.num_rows
        for column, values in (
            ("status", pa.array(["missing"] * n)),
            ("error", pa.array(["file no longer in the archive"] * n)),
            ("tables", pa.array([""] * n)),
            ("ingested_at", pa.array([datetime.now(UTC)] * n, pa.timestamp("us", tz="UTC"))),
        ):
            old = old.set_column(old.schema.get_field_index(column), column, values)
        tbl = self.table(pins, "files")
        with warnings.catch_warnings(), tbl.transaction() as tx:
            warnings.filterwarnings("ignore", "Delete operation did not match any records")
            tx.delete(_delete_filter(removed_paths, years))
            tx.append(old.cast(tbl.schema().as_arrow()))
            point("table.staged")
        point("table.committed")
        pins.tables["files"] = self.table(pins, "files").metadata.current_snapshot_id
        self._unpublished = True

    # ---------------------------------------------------------------- rebuild
    def begin_rebuild(self, pins: Pins) -> Pins:
        """Start a complete new set of tables beside the published ones: the pins of a fresh namespace
        (``lake_<n+1>`` after ``lake_<n>``) holding the empty fixed tables and, carried over as they are,
        the result tables (job findings, monitor results; header tables are re-extracted). A namespace of
        that name left by a rebuild that was killed is dropped first. Nothing is published: readers see
        the old lake until the caller publishes the new pins, then calls :meth:`finish_rebuild`."""
        tail = pins.namespace.rsplit("_", 1)[-1]
        new = Pins(f"lake_{int(tail) + 1 if tail.isdigit() else 1}", {})
        if (new.namespace,) in self.catalog.list_namespaces():
            self.drop_namespace(new.namespace)  # left by a rebuild that was killed
        self.catalog.create_namespace_if_not_exists(new.namespace)
        for name in sch.FIXED_TABLES:
            self.ensure_table(new, name, sch.arrow_schema(name))
        self._carry_results(Pins(pins.namespace, self.pins().tables), new)
        point("rebuild.begun")
        return new

    def finish_rebuild(self, old_namespace: str) -> None:
        """End a rebuild whose new pins are published: mark the old namespace retired now. Its tables and
        files stay for readers that pinned it (a DuckDB session, a notebook, a Polars scan opened before
        the swap) until :meth:`drop_retired` finds it retired for longer than ``keep_hours``."""
        self.catalog.update_namespace_properties(
            old_namespace, updates={RETIRED_AT: datetime.now(UTC).isoformat()}
        )
        point("rebuild.retired")

    def drop_retired(self, keep_hours: float) -> list[str]:
        """Drop the namespaces a rebuild retired more than ``keep_hours`` ago and those a killed rebuild
        left unpublished, and delete warehouse folders no namespace or table of the catalog owns (what a
        killed drop or a killed writer's new tables left); returns the namespaces dropped.

        A namespace older than the published one (``lake_<n>``, lower ``n``) was published before: if a
        rebuild was killed before marking it retired, it is marked now and kept ``keep_hours`` from now.
        A newer one was never published, so no reader can have it pinned."""
        pins = self.pins()
        current = _namespace_number(pins.namespace)
        dropped = []
        for (ns,) in self.catalog.list_namespaces():
            n = _namespace_number(ns)
            if ns == pins.namespace or n is None:
                continue
            if current is not None and n < current:
                retired = self.catalog.load_namespace_properties(ns).get(RETIRED_AT)
                if retired is None:
                    self.finish_rebuild(ns)
                    retired = datetime.now(UTC).isoformat()
                if time.time() - datetime.fromisoformat(retired).timestamp() < keep_hours * 3600:
                    continue
            self.drop_namespace(ns)
            dropped.append(ns)
        self._drop_orphan_folders(pins)
        return dropped

    def _drop_orphan_folders(self, pins: Pins) -> None:
        """Delete ``warehouse/lake_<n>.db`` folders of namespaces the catalog no longer has, and table
        folders of the published namespace the catalog has no table for (a table a killed writer made,
        dropped by :meth:`recover`, keeps its folder)."""
        import shutil

        namespaces = {ns for (ns,) in self.catalog.list_namespaces()}
        for folder in self.warehouse.glob("lake_*"):
            ns = folder.name.removesuffix(".db")
            if _namespace_number(ns) is not None and ns not in namespaces:
                shutil.rmtree(folder, ignore_errors=True)
        tables = {ident[-1] for ident in self.catalog.list_tables(pins.namespace)}
        for top in self._namespace_folders(pins.namespace):
            for folder in top.glob("*"):
                if folder.is_dir() and folder.name not in tables:
                    shutil.rmtree(folder, ignore_errors=True)

    def _namespace_folders(self, namespace: str) -> list[Path]:
        """A namespace's two folders: ``lake_<n>`` (Iceberg metadata, where pyiceberg's SQL catalog puts
        tables) and ``lake_<n>.db`` (the data files the ingest's workers write, :meth:`data_dir`)."""
        return [self.warehouse / namespace, self.warehouse / f"{namespace}.db"]

    def _carry_results(self, old: Pins, new: Pins) -> None:
        """Copy the result tables (not header or fixed tables) of ``old`` into ``new``, rows as they are."""
        import pyarrow.parquet as pq

        for name in sorted(old.tables):
            if sch.is_header_table(name) or name in sch.FIXED_TABLES or old.tables[name] is None:
                continue
            files = self.data_files(old, name)
            data = pq.ParquetDataset(files, partitioning=None).read() if files else None
            self.ensure_table(new, name, self.iceberg_schema(old, name))
            if data is not None and data.num_rows:
                self.append(new, name, data.cast(self.iceberg_schema(old, name)))

    def drop_namespace(self, namespace: str) -> None:
        """Drop every table of ``namespace``, the namespace, and its warehouse folders (a drop that is
        killed halfway leaves folders that :meth:`drop_retired` deletes)."""
        import shutil

        for ident in self.catalog.list_tables(namespace):
            self.catalog.drop_table(ident)
            self.forget(".".join(ident))
            point("namespace.dropping")
        self.catalog.drop_namespace(namespace)
        for folder in self._namespace_folders(namespace):
            shutil.rmtree(folder, ignore_errors=True)

    # ---------------------------------------------------------------- reader side
    def data_files(self, pins: Pins, table: str) -> list[str]:
        """Local paths of the Parquet files of the table's pinned snapshot."""
        sid = pins.tables.get(table)
        if sid is None:
            return []
        key = (self.identifier(pins, table), sid)
        if key not in self._snapshot_files:
            self._snapshot_files[key] = self._plan_files(pins, table, sid)
        return self._snapshot_files[key]

    def _plan_files(self, pins: Pins, table: str, sid: int) -> list[str]:
        tbl = self.table(pins, table)
        tasks = list(tbl.scan(snapshot_id=sid).plan_files())
        if any(t.delete_files for t in tasks):
            # views over plain Parquet would show deleted rows; pyiceberg itself never writes these
            raise LakeError(f"table {table} has Iceberg delete files, which the DuckDB views cannot apply")
        self._remember(tbl.schema(), [t.file for t in tasks])
        files = [t.file.file_path for t in tasks]
        return [f[len("file://") :] if f.startswith("file://") else f for f in files]

    def _remember(self, schema: Any, data_files: list[Any]) -> None:
        try:
            pid = schema.find_field("path").field_id
        except ValueError:
            pid = None
        for df in data_files:
            lo, hi = (df.lower_bounds or {}).get(pid), (df.upper_bounds or {}).get(pid)
            self._file_info[df.file_path.removeprefix("file://")] = FileInfo(
                int(df.record_count),
                lo.decode("utf-8", "replace") if lo is not None else None,
                hi.decode("utf-8", "replace") if hi is not None else None,
            )

    def holding(self, pins: Pins, table: str, paths: list[str]) -> list[str]:
        """The pinned data files of ``table`` that may hold rows of ``paths`` (by their path bounds)."""
        from lake.snapshot import holding

        files = self.data_files(pins, table)
        infos = [self.file_info(f) for f in files]
        return holding(files, [(i.min_path, i.max_path) for i in infos], paths)

    def file_info(self, path: str) -> FileInfo:
        """Rows and ``path`` bounds of a data file of a pinned snapshot (bounds None if not kept)."""
        got = self._file_info.get(path)
        if got is None:
            import pyarrow.parquet as pq

            got = FileInfo(pq.read_metadata(path).num_rows, None, None)  # not seen in this process
        return got

    def hdu_rows(self, path: str) -> dict[int, int]:
        """Rows per HDU of a wide table's data file: known from the record, else counted from its ``hdu``
        column (one narrow column of one file, read once per new file)."""
        info = self.file_info(path)
        if info.hdu_rows is None:
            from lake.datafile import hdu_counts

            info = self._file_info[path] = info._replace(hdu_rows=hdu_counts(path))
        return dict(info.hdu_rows or {})

    def know_hdu_rows(self, path: str, rows: dict[int, int]) -> None:
        """Record a data file's rows per HDU as its writer counted them (see :meth:`hdu_rows`)."""
        self._file_info[path] = self.file_info(path)._replace(hdu_rows=dict(rows))

    def columns_key(self, path: str) -> str:
        """A key of a data file's column names and types (from the record, else from its footer): files
        with the same key can be read as one scan, without DuckDB's union by name."""
        info = self.file_info(path)
        if info.columns is None:
            import hashlib

            import pyarrow.parquet as pq

            text = ",".join(f"{f.name}:{f.type}" for f in pq.read_schema(path))
            info = self._file_info[path] = info._replace(columns=hashlib.sha1(text.encode()).hexdigest()[:16])
        return str(info.columns)

    def seed_from_record(self, pins: Pins) -> bool:
        """Take the file lists of the pinned snapshots from what catalog.duckdb records of them (when it
        records exactly these pins), so that a writer does not read every table's manifests: a cron
        ingest of one file then costs the same in a lake of a thousand files or of millions. Returns
        whether catalog.duckdb records exactly these pins."""
        from lake.snapshot import recorded

        if self._seeded == (pins.namespace, pins.tables):
            return True  # (the early start of a transaction read them: Lake.rewrite_early)
        got = recorded(self.root, {"namespace": pins.namespace, "tables": pins.tables})
        for table, tf in (got or {}).items():
            sid = pins.tables.get(table)
            if sid is None or tf.num_rows() is None:
                continue
            self._recorded[(self.identifier(pins, table), sid)] = tf
            self._snapshot_files[(self.identifier(pins, table), sid)] = list(tf.files)
            per_hdu = tf.hdu_rows or (None,) * len(tf.files)
            keys = tf.column_keys or (None,) * len(tf.files)
            for f, rows, (lo, hi), hdus, key in zip(tf.files, tf.rows, tf.bounds, per_hdu, keys, strict=True):
                self._file_info[f] = FileInfo(int(rows or 0), lo, hi, hdus, key)
        self._seeded = (pins.namespace, dict(pins.tables)) if got is not None else None
        return got is not None

    def table_facts(self, pins: Pins, table: str) -> tuple[pa.Schema, dict[int, list[str]]]:
        """The Arrow schema of the table's pinned snapshot and its keyword columns per HDU: as
        catalog.duckdb recorded them for that snapshot if it did (a publish after a cron ingest then
        loads the metadata of the tables it changed only), else from the table."""
        sid = pins.tables.get(table)
        got = self._recorded.get((self.identifier(pins, table), sid)) if sid is not None else None
        if got is not None:
            return got.schema, dict(got.hdu_columns)
        return self.iceberg_schema(pins, table), hdu_columns_of(self.table(pins, table))

    def iceberg_schema(self, pins: Pins, table: str) -> pa.Schema:
        """The Arrow schema of the table's pinned snapshot (the current schema when nothing is pinned)."""
        tbl = self.table(pins, table)
        sid = pins.tables.get(table)
        schema_id = tbl.metadata.current_schema_id
        if sid is not None:
            snap = tbl.metadata.snapshot_by_id(sid)
            if snap is not None and snap.schema_id is not None:
                schema_id = snap.schema_id
        return self._arrow_schema(tbl, schema_id)

    def current_schema(self, pins: Pins, table: str) -> pa.Schema:
        """The Arrow schema of the table as it is now (new columns included)."""
        tbl = self.table(pins, table)
        return self._arrow_schema(tbl, tbl.metadata.current_schema_id)

    def _arrow_schema(self, tbl: Any, schema_id: int) -> pa.Schema:
        # Converting an Iceberg schema of hundreds of columns takes milliseconds, and the driver asks for
        # each table's schema several times per commit; a schema id never changes meaning within a table
        # (the uuid tells a table apart from one dropped and made again under the same name).
        key = (tbl.metadata.table_uuid, schema_id)
        out = self._arrow_schemas.get(key)
        if out is None:
            found = [s for s in tbl.metadata.schemas if s.schema_id == schema_id]
            out = (found[0] if found else tbl.schema()).as_arrow()
            self._arrow_schemas[key] = out
        return out

    def column_types(self, pins: Pins) -> dict[str, dict[str, pa.DataType]]:
        """Column types of every table as pinned (what workers must write; a column a batch adds meanwhile
        is reconciled at its commit): from catalog.duckdb's record where it has them, so that a cron
        ingest does not load the metadata of every table."""
        return {name: {f.name: f.type for f in self.table_facts(pins, name)[0]} for name in pins.tables}
