"""Iceberg manifests written faster: the count maps of a data file encoded in one go.

Every data file a commit adds (or a compaction removes) is written into a manifest with its column sizes,
value counts and null counts: maps from field id to a number, one entry per column, so three maps of
some 400 entries for each file of a wide header table. pyiceberg's Avro writer encodes each of those
numbers through a chain of Python calls (map writer, integer writer, a write of each varint byte), which
made encoding manifests the largest part of an ingest driver's work per data file. :func:`install`
replaces the map writer's ``write`` with one that encodes an int-to-int map's numbers together (numpy),
giving the same bytes (tests/test_lake.py checks them against pyiceberg's own writer); any other map goes
through pyiceberg's code as before.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

import numpy as np

_SHIFTS = np.arange(0, 70, 7, dtype=np.uint64)  # the 7-bit groups of a 64-bit zigzag value
_GROUP = np.arange(10)
_LIMITS = np.array([1 << (7 * k) for k in range(1, 10)], dtype=np.uint64)  # k+1 groups below _LIMITS[k]
SMALL = 32  # maps of fewer entries cost less through pyiceberg's writer than through numpy
_installed = False
ORIGINAL: Any = None  # pyiceberg's own MapWriter.write, once installed


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
    """Have pyiceberg's Avro map writer encode int-to-int maps with :func:`varints` (once per process)."""
    global _installed, ORIGINAL
    if _installed:
        return
    from pyiceberg.avro.writer import IntegerWriter, MapWriter
    from pyiceberg.utils.lazydict import LazyDict

    original = ORIGINAL = MapWriter.write

    def write(self: Any, encoder: Any, val: dict[Any, Any]) -> None:
        if (
            len(val) < SMALL
            or type(self.key_writer) is not IntegerWriter
            or type(self.value_writer) is not IntegerWriter
        ):
            return original(self, encoder, val)
        if isinstance(val, LazyDict):  # read from a manifest: its dict, not a lookup per key
            val = val.__dict__()
        # a block count, the pairs, and (after a non-empty block) the zero count that ends the map
        encoder.write(varints([len(val), *chain.from_iterable(val.items()), *([0] if val else [])]))
        return None

    MapWriter.write = write  # type: ignore[method-assign]
    _installed = True
