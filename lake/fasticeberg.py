"""pyiceberg's slow paths on an ingest driver's way, replaced by equivalent faster ones (:func:`install`).

- **Manifests' count maps.** Every data file a commit adds (or a compaction removes) is written into a
  manifest with its column sizes, value counts and null counts: maps from field id to a number, one entry
  per column, so three maps of some 400 entries for each file of a wide header table. pyiceberg's Avro
  writer encodes each of those numbers through a chain of Python calls (map writer, integer writer, a
  write per varint byte), which made encoding manifests the largest part of the driver's work per data
  file. A map from ints to ints or to bytes (the bounds) is encoded in one go here (numpy for large
  maps), giving the same bytes (tests/test_lake.py checks them against pyiceberg's own writer); any other
  map goes through pyiceberg.
- **Deep copies of immutable objects.** pyiceberg deep-copies a table's metadata at every staged change
  and commit; for a wide table nearly all of that copy is its schema of hundreds of fields (2.7 ms of
  2.8), the rest its snapshots, one more at every commit. pyiceberg's pydantic models are immutable
  (frozen), and its own metadata updates share them between metadata versions, so a deep copy of one is
  the object itself; the table metadata around them is still copied (containers and all).
- **Manifests read again and again.** A compaction's plan reads a table's manifests, and its commit reads
  them twice more (the manifests to keep, the entries to mark deleted), each time decoding every entry
  (a data file's record with its count maps) in Python. A manifest is never changed once written, so the
  entries read from one are kept (:data:`CACHED_ENTRIES` at most, the least recently read go first) and
  handed out again; pyiceberg makes new entries from them and changes none.
- **Table metadata read back at every commit.** pyiceberg's SQL catalog loads a table afresh to commit to
  it, parsing its metadata file (5 ms for a wide table, a third of its commit). A metadata file is never
  changed once written (each version has a new name), so :func:`sql_catalog` keeps the metadata it last
  read or wrote per file and parses a file only once.
"""

from __future__ import annotations

from functools import cache
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pyiceberg.catalog.sql import SqlCatalog

_SHIFTS = np.arange(0, 70, 7, dtype=np.uint64)  # the 7-bit groups of a 64-bit zigzag value
_GROUP = np.arange(10)
_LIMITS = np.array([1 << (7 * k) for k in range(1, 10)], dtype=np.uint64)  # k+1 groups below _LIMITS[k]
SMALL = 32  # maps of fewer entries are encoded faster by a Python loop than by numpy
_installed = False
ORIGINAL: Any = None  # pyiceberg's own MapWriter.write, once installed
ORIGINAL_FETCH: Any = None  # pyiceberg's own ManifestFile.fetch_manifest_entry, once installed


def varints(values: list[int]) -> bytes:
    """Avro's encoding of ``values`` (Iceberg ints and longs): zigzag, then 7 bits a byte, low bits first,
    the top bit set on every byte but a number's last."""
    a = np.array(values, dtype=np.int64)
    z = ((a << 1) ^ (a >> 63)).view(np.uint64)
    n = np.searchsorted(_LIMITS, z, side="right") + 1  # bytes of each number
    m = int(n.max()) if len(n) else 1
    groups = ((z[:, None] >> _SHIFTS[:m]) & np.uint64(0x7F)).astype(np.uint8)
    groups[_GROUP[:m] < (n[:, None] - 1)] |= 0x80
    return groups[_GROUP[:m] < n[:, None]].tobytes()


def install() -> None:
    """Put the faster paths in place (once per process)."""
    global _installed
    if _installed:
        return
    _install_maps()
    _share_frozen()
    _cache_manifests()
    _installed = True


CACHED_ENTRIES = 20_000  # manifest entries kept decoded (a wide table's are some tens of kB each)


def _cache_manifests() -> None:
    """Have ``ManifestFile.fetch_manifest_entry`` keep what it decoded (see the module docstring)."""
    import threading
    from collections import OrderedDict

    from pyiceberg.manifest import ManifestFile

    global ORIGINAL_FETCH
    original = ORIGINAL_FETCH = ManifestFile.fetch_manifest_entry
    kept: OrderedDict[tuple[Any, ...], list[Any]] = OrderedDict()
    lock = threading.Lock()  # pyiceberg reads a commit's manifests on a thread pool
    held = [0]

    def fetch(self: Any, io: Any, discard_deleted: bool = True) -> list[Any]:
        # what an entry inherits from its manifest's record is part of the key
        key = (self.manifest_path, self.sequence_number, self.added_snapshot_id, discard_deleted)
        with lock:
            got = kept.get(key)
            if got is not None:
                kept.move_to_end(key)
                return list(got)
        got = original(self, io, discard_deleted)
        if len(got) <= CACHED_ENTRIES:
            with lock:
                if key not in kept:
                    kept[key] = got
                    held[0] += len(got)
                while held[0] > CACHED_ENTRIES:
                    held[0] -= len(kept.popitem(last=False)[1])
        return list(got)

    ManifestFile.fetch_manifest_entry = fetch  # type: ignore[method-assign]


def _share_frozen() -> None:
    from pydantic import BaseModel
    from pyiceberg.table.metadata import TableMetadataV1, TableMetadataV2, TableMetadataV3
    from pyiceberg.typedef import IcebergBaseModel

    IcebergBaseModel.__deepcopy__ = lambda self, memo=None: self  # type: ignore[method-assign]
    for metadata in (TableMetadataV1, TableMetadataV2, TableMetadataV3):  # copied, as pyiceberg wants
        metadata.__deepcopy__ = BaseModel.__deepcopy__  # type: ignore[method-assign]


def _install_maps() -> None:
    """Have pyiceberg's Avro map writer encode maps from ints to ints (:func:`varints`) or to bytes
    (the bounds) in one go."""
    global ORIGINAL
    from pyiceberg.avro.writer import BinaryWriter, IntegerWriter, MapWriter
    from pyiceberg.utils.lazydict import LazyDict

    original = ORIGINAL = MapWriter.write

    def write(self: Any, encoder: Any, val: dict[Any, Any]) -> None:
        if type(self.key_writer) is not IntegerWriter:
            return original(self, encoder, val)
        if isinstance(val, LazyDict):  # read from a manifest: its dict, not a lookup per key
            val = val.__dict__()
        if type(self.value_writer) is BinaryWriter:
            encoder.write(_bytes_map(val))
        elif type(self.value_writer) is not IntegerWriter:
            original(self, encoder, val)
        else:  # a block count, the pairs, and (after a non-empty block) the zero count that ends the map
            numbers = [len(val), *chain.from_iterable(val.items()), *([0] if val else [])]
            encoder.write(varints(numbers) if len(val) >= SMALL else _varints_py(numbers))
        return None

    MapWriter.write = write  # type: ignore[method-assign]


def _varints_py(values: list[int]) -> bytes:
    """:func:`varints` for a few numbers (numpy's set-up costs more than a loop)."""
    out = bytearray()
    for v in values:
        z = (v << 1) ^ (v >> 63)
        while z > 0x7F:
            out.append((z & 0x7F) | 0x80)
            z >>= 7
        out.append(z)
    return bytes(out)


def _bytes_map(val: dict[int, bytes]) -> bytes:
    """An int-to-bytes map (bounds): the count, each key and its value's length and bytes, the end."""
    out = bytearray(_varints_py([len(val)]))
    for k, v in val.items():
        out += _varints_py([k, len(v)])
        out += v
    if val:
        out.append(0)
    return bytes(out)


KEEP_METADATA = 256  # metadata versions a catalog keeps parsed (the newest; some per table written)


def sql_catalog(name: str, **properties: str) -> SqlCatalog:
    """pyiceberg's SQL catalog, with the table metadata it reads or commits kept by file."""
    catalog: SqlCatalog = _catalog_class()(name, **properties)
    return catalog


@cache
def _catalog_class() -> type:
    from pyiceberg.catalog import Catalog
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.io import load_file_io
    from pyiceberg.table import Table

    class _SqlCatalog(SqlCatalog):
        def __init__(self, name: str, **properties: str) -> None:
            super().__init__(name, **properties)
            self._metadata: dict[str, Any] = {}  # metadata file -> its (immutable) TableMetadata

        def _keep(self, location: str, metadata: Any) -> None:
            self._metadata[location] = metadata
            while len(self._metadata) > KEEP_METADATA:
                del self._metadata[next(iter(self._metadata))]

        def _convert_orm_to_iceberg(self, orm_table: Any) -> Table:
            location = orm_table.metadata_location
            metadata = self._metadata.get(location) if location else None
            if metadata is None:
                table = super()._convert_orm_to_iceberg(orm_table)
                self._keep(table.metadata_location, table.metadata)
                return table
            return Table(
                identifier=(*Catalog.identifier_to_tuple(orm_table.table_namespace), orm_table.table_name),
                metadata=metadata,
                metadata_location=location,
                io=load_file_io(properties=self.properties, location=location),
                catalog=self,
            )

        def _write_metadata(self, metadata: Any, io: Any, metadata_path: str) -> None:  # type: ignore[override]
            super()._write_metadata(metadata, io, metadata_path)
            self._keep(metadata_path, metadata)  # what a table made or committed reads back

    return _SqlCatalog
