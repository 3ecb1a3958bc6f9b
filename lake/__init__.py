"""Quicklake: WFC3 FITS headers as Iceberg tables, read with DuckDB and Polars.

import lake
con = lake.connect("demo/lake")          # DuckDB, every table a view
df = lake.read("master", "demo/lake")     # Polars DataFrame, now
lf = lake.scan("uvisflt", "demo/lake")    # Polars LazyFrame
"""

from lake.access import connect, open_lake, read, read_header, read_sql, scan, snapshot, tables

__all__ = ["connect", "open_lake", "read", "read_header", "read_sql", "scan", "snapshot", "tables"]
