"""Manifests of a bounded number of data files, each holding a narrow range of archive paths.

pyiceberg writes the files a commit adds into one manifest, and a later commit that deletes one of them
(a changed file's copy-on-write) rewrites that whole manifest without it. A compaction or a stand-in's
build commits thousands of files at once: at 4M archive files, every cron ingest then read and wrote
again the 2,463 entries of ``cards``' one manifest, and as many of the other tables', a third of its
commits' time. A snapshot made here writes its new manifests in pieces of at most
:data:`MANIFEST_FILES` files, by partition and then path range, so such a commit rewrites one piece.
A manifest written before is split the first time a commit rewrites it.

See Also
--------
lake.tables.Lake.commit_files : the commits that use these snapshots.
"""

from __future__ import annotations

from functools import cache
from itertools import pairwise
from typing import Any

MANIFEST_FILES = 100  # data files per manifest a commit writes (the others are left as they are)


def append(tx: Any, properties: dict[str, str] | None = None) -> Any:
    """A fast append to ``tx`` (pyiceberg's) whose new manifests are bounded."""
    return _producer("append", tx, properties)


def overwrite(tx: Any, properties: dict[str, str] | None = None) -> Any:
    """An overwrite of ``tx`` (pyiceberg's) whose new and rewritten manifests are bounded."""
    return _producer("overwrite", tx, properties)


def _producer(kind: str, tx: Any, properties: dict[str, str] | None) -> Any:
    made = tx.update_snapshot(snapshot_properties=properties or {})
    producer = made.fast_append() if kind == "append" else made.overwrite()
    # pyiceberg's producer as it made it, but for the hook its manifests pass through before they are
    # listed (its own subclasses override only that hook)
    producer.__class__ = _bounded(producer.__class__.__name__, producer.__class__)
    return producer


def _split(producer: Any, manifests: list[Any]) -> list[Any]:
    """``manifests``, those this snapshot wrote with more than :data:`MANIFEST_FILES` files each in
    pieces (the others as they are)."""
    from pyiceberg.manifest import ManifestContent

    out = []
    for m in manifests:
        n = (m.added_files_count or 0) + (m.existing_files_count or 0) + (m.deleted_files_count or 0)
        mine = m.added_snapshot_id == producer.snapshot_id and m.content == ManifestContent.DATA
        out.extend(_pieces(producer, m) if mine and n > MANIFEST_FILES else [m])
    return out


def _pieces(producer: Any, manifest: Any) -> list[Any]:
    """``manifest``'s entries written again in manifests of at most :data:`MANIFEST_FILES`, in order of
    partition and of the lower bound of ``path`` (the entries' statuses kept)."""
    from pyiceberg.manifest import ManifestEntryStatus

    path = producer.schema().find_field("path").field_id
    entries = producer.fetch_manifest_entry(manifest=manifest, discard_deleted=False)
    entries.sort(key=lambda e: (repr(e.data_file.partition), (e.data_file.lower_bounds or {}).get(path, b"")))
    k = -(-len(entries) // MANIFEST_FILES)
    cuts = [len(entries) * i // k for i in range(k + 1)]  # pieces of even sizes
    out = []
    for lo, hi in pairwise(cuts):
        with producer.new_manifest_writer(producer.spec(manifest.partition_spec_id)) as writer:
            for e in entries[lo:hi]:
                mine = e.snapshot_id == producer.snapshot_id
                if e.status == ManifestEntryStatus.ADDED and mine:
                    writer.add(e)
                elif e.status == ManifestEntryStatus.DELETED and mine:
                    writer.delete(e)
                elif e.status != ManifestEntryStatus.DELETED:
                    writer.existing(e)
        out.append(writer.to_manifest_file())
    return out


@cache
def _bounded(name: str, base: Any) -> type:
    """``base`` (a pyiceberg snapshot producer) with its manifests bounded."""

    def process(self: Any, manifests: list[Any]) -> list[Any]:
        return _split(self, manifests)

    return type(f"Bounded{name}", (base,), {"_process_manifests": process})
