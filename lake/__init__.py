"""Quicklake: WFC3 FITS headers as Iceberg tables, read with DuckDB and Polars.

import lake
con = lake.connect("demo/lake")          # DuckDB, every table a view
df = lake.read("master", "demo/lake")     # Polars DataFrame, now
lf = lake.scan("uvisflt", "demo/lake")    # Polars LazyFrame
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lake.access import connect, open_lake, read, read_header, read_sql, scan, snapshot, tables

__all__ = ["connect", "open_lake", "read", "read_header", "read_sql", "scan", "snapshot", "tables"]


def __getattr__(name: str) -> Any:
    # lake.access (DuckDB and pyarrow, a quarter of a second) is imported on first use: `ql --help`, the
    # commands that need neither, and a Dask worker's `import lake.schema` start without it
    if name in __all__:
        from lake import access

        return getattr(access, name)
    raise AttributeError(f"module 'lake' has no attribute {name!r}")


class _Package(types.ModuleType):
    """The ``lake`` package, whose functions ``lake.tables`` and ``lake.snapshot`` stay the functions when
    the submodules of the same names are imported (the import system sets a submodule as an attribute of
    its package, which would hide ``__getattr__``)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in __all__ and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
