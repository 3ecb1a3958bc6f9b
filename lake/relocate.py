"""A lake that was moved or copied: found out when it is opened (:func:`check_place`), made whole by
:func:`relocate` (``ql relocate``).

Iceberg names every file by its absolute location (the SQL catalog names each table's metadata file,
which names its manifest lists, which name manifests, which name data files), and so do ``pins.json``
and ``catalog.duckdb``. A copy of the lake folder therefore still points into the original: read as it
is, it would read the original's files. ``pins.json`` records where the lake was published
(``root``; older lakes: the folder their metadata files lie under), so a lake opened anywhere else
refuses with one line naming the command that fixes it, and never reads the original's files.

:func:`relocate` writes, under the lake's new place, a new manifest list per snapshot, new manifests
and a new metadata file per table with every location moved; then, in one catalog transaction, points
every table at its new metadata file; then publishes ``catalog.duckdb`` and ``pins.json`` (atomic
renames) with the new root. Until ``pins.json`` names the new root, the lake still refuses to open,
so a relocation that was killed is simply run again. Nothing of the old place is written or deleted.
Paths inside the lake that need no rewrite are kept relative to it (job logs: ``logs/<job>/<run>.log``).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from lake.errors import LakeError, LakeMoved

WAREHOUSE = "warehouse"


def recorded_root(pins: dict[str, Any]) -> str | None:
    """Where the lake was when ``pins`` (``pins.json``) was published: its ``root``, else (a lake
    published before ``root`` was recorded) the folder its tables' metadata files lie under."""
    if pins.get("root"):
        return str(pins["root"])
    for loc in (pins.get("locations") or {}).values():
        head, sep, _ = _local(loc).rpartition(f"/{WAREHOUSE}/")
        if sep:
            return head
    return None


def check_place(root: Path, pins: dict[str, Any]) -> None:
    """Raise :class:`LakeMoved` if the lake at ``root`` was published somewhere else."""
    was = recorded_root(pins)
    if was is not None and Path(was) != root:
        raise LakeMoved(
            f"the lake at {root} was written at {was} (moved or copied); run 'ql relocate --lake {root}' "
            "once to make it read its own files"
        )


def _local(location: str) -> str:
    """A ``file://`` URI or a local path, as a local path."""
    return unquote(location.removeprefix("file://")) if location.startswith("file://") else location


class _Mover:
    """Maps a location under the old root (a local path or a ``file://`` URI) to the same one under the
    new root; anything else is returned unchanged."""

    def __init__(self, old: Path, new: Path) -> None:
        self.old, self.new = str(old).rstrip("/"), str(new).rstrip("/")
        self.old_uri, self.new_uri = old.as_uri().rstrip("/"), new.as_uri().rstrip("/")
        self.old_file = "file://" + self.old  # a URI written without percent-encoding

    def __call__(self, s: str) -> str:
        for before, after in ((self.old_uri, self.new_uri), (self.old_file, self.new_uri),
                              (self.old, self.new)):  # fmt: skip
            if s == before or s.startswith(before + "/"):
                return after + s[len(before) :]
        return s

    def walk(self, value: Any) -> Any:
        """Every string of a JSON value moved."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, list):
            return [self.walk(v) for v in value]
        if isinstance(value, dict):
            return {k: self.walk(v) for k, v in value.items()}
        return value


@dataclass
class Relocation:
    """What :func:`relocate` did."""

    old_root: str
    new_root: str
    tables: int = 0
    snapshots: int = 0
    manifests: int = 0
    log_paths: int = 0
    config: bool = False  # <lake>/quicklake.toml (written by 'ql cron-line') had paths moved
    namespaces: list[str] = field(default_factory=list)

    def line(self) -> str:
        if not self.tables:
            return f"{self.new_root}: already in place, nothing to rewrite"
        cron = (
            f"; {self.new_root}/quicklake.toml moved too: run 'ql cron-line --lake {self.new_root}' for "
            "the crontab entry (and again after changing the archive setting if the archive moved)"
            if self.config
            else ""
        )
        return (
            f"relocated {self.new_root} (was {self.old_root}): {self.tables} tables, {self.snapshots} "
            f"snapshots, {self.manifests} manifests rewritten; {self.log_paths} job log paths; "
            f"catalog.duckdb and pins.json published{cron}"
        )


def relocate(
    root: str | os.PathLike[str],
    old_root: str | None = None,
    catalog_uri: str = "",
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Relocation:
    """Make the lake at ``root`` read its own files after it was moved or copied from ``old_root``
    (default: where ``pins.json`` says it was published). See the module docstring.
    ``progress(tables_done, tables)`` is called after each table."""
    from lake.tables import Lake

    lake = Lake(root, catalog_uri)
    lake.relocating = True  # its pins name the old place: opening it must not refuse
    lake.require()
    with lake.writer():
        pins_doc = json.loads(lake.pins_path.read_text())
        was = old_root or recorded_root(pins_doc)
        out = Relocation(str(was), str(lake.root))
        if was is None or Path(was) == lake.root:
            return out
        _own_catalog(lake, Path(was))
        move = _Mover(Path(was), lake.root)
        rows = _rewrite_tables(lake, move, out, progress)
        _point_catalog(lake, rows, move)
        out.log_paths = _relative_logs(lake.root, move)
        out.config = _move_config(lake.root, move)
        _publish(lake, pins_doc)
    return out


def _own_catalog(lake: Any, was: Path) -> None:
    """Refuse to relocate through the original's catalog (a ``catalog_uri`` naming its SQLite file):
    that would point the original's tables at the copy's files."""
    uri = str(lake.catalog_uri)
    db = Path(uri.removeprefix("sqlite:///"))
    if uri.startswith("sqlite:///") and db.is_relative_to(was) and not db.is_relative_to(lake.root):
        raise LakeError(
            f"catalog_uri {uri} is the catalog of the lake at {was}; set catalog_uri to the moved lake's "
            f"own catalog ({lake.root / 'catalog.sqlite'}) or leave it empty, then run 'ql relocate' again"
        )


def _rewrite_tables(
    lake: Any, move: _Mover, out: Relocation, progress: Callable[[int, int], None] | None
) -> list[tuple[str, str, str, str | None]]:
    """A new metadata file (and manifest lists and manifests) per table of every namespace; returns the
    catalog rows to point: (namespace, table, new metadata location, previous location moved)."""
    from pyiceberg.catalog.sql import IcebergTables
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    cat: Any = lake.catalog
    with Session(cat.engine) as session:
        rows = session.execute(
            select(
                IcebergTables.table_namespace, IcebergTables.table_name,
                IcebergTables.metadata_location, IcebergTables.previous_metadata_location,
            ).where(IcebergTables.catalog_name == cat.name)
        ).all()  # fmt: skip
    done = []
    for ns, name, loc, prev in rows:
        if not loc:
            continue
        new_loc = _rewrite_table(cat, move(loc), move, out)
        done.append((ns, name, new_loc, move(prev) if prev else None))
        out.tables += 1
        if ns not in out.namespaces:
            out.namespaces.append(ns)
        if progress:
            progress(out.tables, len(rows))
    return done


def _rewrite_table(cat: Any, metadata_location: str, move: _Mover, out: Relocation) -> str:
    """Write the moved copy of one table's metadata (read from the new place); returns its location."""
    from pyiceberg.table.metadata import TableMetadataUtil

    path = Path(_local(metadata_location))
    if not path.exists():
        raise LakeError(
            f"{path} is missing: copy the whole lake folder (warehouse/ included), then run 'ql relocate'"
        )
    doc = json.loads(path.read_text())
    meta = TableMetadataUtil.parse_raw(path.read_text())
    io = cat._load_file_io(location=metadata_location)
    moved = move.walk(doc)
    manifests: dict[str, Any] = {}  # old manifest path → its moved ManifestFile (shared by snapshots)
    for snap_doc, snap in zip(moved.get("snapshots", []), meta.snapshots, strict=True):
        snap_doc["manifest-list"] = _rewrite_manifest_list(io, meta, snap, move, manifests)
        out.snapshots += 1
    out.manifests += len(manifests)
    version = cat._parse_metadata_version(metadata_location) + 1
    new = path.with_name(f"{version:05d}-{uuid.uuid4()}.metadata.json")
    _write_new(new, json.dumps(moved).encode())
    return new.as_uri()


def _rewrite_manifest_list(io: Any, meta: Any, snap: Any, move: _Mover, manifests: dict[str, Any]) -> str:
    """A moved copy of a snapshot's manifest list (and of the manifests it names); returns its URI."""
    from pyiceberg.manifest import ManifestFile, read_manifest_list, write_manifest_list

    listed = list(read_manifest_list(io.new_input(move(snap.manifest_list))))
    new_files = []
    for mf in listed:
        if mf.manifest_path not in manifests:
            manifests[mf.manifest_path] = _rewrite_manifest(io, meta, mf, move)
        new_files.append(manifests[mf.manifest_path])
    folder = Path(_local(move(snap.manifest_list))).parent
    target = folder / f"snap-{snap.snapshot_id}-relocated-{uuid.uuid4()}.avro"
    with write_manifest_list(
        format_version=meta.format_version,
        output_file=io.new_output(target.as_uri()),
        snapshot_id=snap.snapshot_id,
        parent_snapshot_id=snap.parent_snapshot_id,
        sequence_number=snap.sequence_number,
        avro_compression="deflate",
    ) as writer:
        writer.add_manifests([ManifestFile(*f._data) for f in new_files])
    return target.as_uri()


def _rewrite_manifest(io: Any, meta: Any, mf: Any, move: _Mover) -> Any:
    """A moved copy of one manifest (its data files' paths moved); returns its ManifestFile."""
    from pyiceberg.manifest import ManifestFile, write_manifest

    here = ManifestFile(*mf._data)
    here[0] = move(mf.manifest_path)
    entries = here.fetch_manifest_entry(io, discard_deleted=False)
    target = Path(_local(here.manifest_path)).with_name(f"{uuid.uuid4()}-relocated.avro")
    spec = meta.specs()[mf.partition_spec_id]
    writer = write_manifest(meta.format_version, spec, meta.schema(), io.new_output(target.as_uri()),
                            mf.added_snapshot_id, "deflate")  # fmt: skip
    with writer:
        for e in entries:
            e.data_file[1] = move(e.data_file.file_path)  # DataFile field 1: file_path
            writer.add_entry(e)
    new = ManifestFile(*mf._data)
    new[0], new[1] = target.as_uri(), len(writer._writer.output_file)
    return new


def _write_new(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _point_catalog(lake: Any, rows: list[tuple[str, str, str, str | None]], move: _Mover) -> None:
    """Every table at its new metadata file, and namespace locations moved: one catalog transaction."""
    from pyiceberg.catalog.sql import IcebergNamespaceProperties, IcebergTables
    from sqlalchemy import update
    from sqlalchemy.orm import Session

    cat: Any = lake.catalog
    with Session(cat.engine) as session, session.begin():
        for ns, name, loc, prev in rows:
            session.execute(
                update(IcebergTables)
                .where(IcebergTables.catalog_name == cat.name, IcebergTables.table_namespace == ns,
                       IcebergTables.table_name == name)
                .values(metadata_location=loc, previous_metadata_location=prev)
            )  # fmt: skip
        for prop in session.query(IcebergNamespaceProperties).filter_by(catalog_name=cat.name):
            prop.property_value = move(prop.property_value)


def _relative_logs(root: Path, move: _Mover) -> int:
    """Job log paths recorded absolute (before they were kept relative) made relative to the lake."""
    from lake import state

    if not state.path_of(root).exists():
        return 0
    n = 0
    with state.connect(root) as con:
        for (p,) in con.execute(
            "SELECT DISTINCT log_path FROM job_events WHERE log_path LIKE '/%'"
        ).fetchall():
            moved = move(p)
            if moved != p and Path(moved).is_relative_to(root):
                rel = Path(moved).relative_to(root).as_posix()
                n += con.execute("UPDATE job_events SET log_path = ? WHERE log_path = ?", (rel, p)).rowcount
    return n


def _move_config(root: Path, move: _Mover) -> bool:
    """The settings 'ql cron-line' wrote into the lake folder, with paths under the old root moved (else
    cron would run the copy's schedule on the original); kept readable by its owner only."""
    import tomllib

    from lake import settings

    path = root / "quicklake.toml"
    if not path.exists():
        return False
    table = tomllib.loads(path.read_text())
    table = table.get("quicklake", table)
    moved = move.walk(table)
    if moved == table:
        return False
    defaults = {s.name: s.default for s in settings.REGISTRY}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(settings.toml_for({**defaults, **moved}))
    os.replace(tmp, path)
    return True


def _publish(lake: Any, pins_doc: dict[str, Any]) -> None:
    """catalog.duckdb for the moved tables, then pins.json naming the new root (the commit point)."""
    from lake.catalog import write_duckdb_catalog
    from lake.tables import Pins, _atomic_write

    pins = Pins(pins_doc["namespace"], dict(pins_doc["tables"]), pins_doc.get("committed_at", ""))
    now = lake._locations(pins.namespace)
    pins.locations = {t: now[t] for t in pins.tables if t in now}
    pins.root = str(lake.root)
    write_duckdb_catalog(lake, pins)
    _atomic_write(lake.pins_path, pins.to_json().encode())
