"""A dataset's header history for the Dataset page: the ``card_changes`` rows of its files.

The rows come through the viewer's :class:`~app.data.scope.Scope`, whose ``card_changes`` holds guests'
public datasets only (it has a ``rootname``), and the dataset is checked first, so a guest sees the
history of the datasets they may see and nothing else.
"""

from __future__ import annotations

import pyarrow as pa

from app.data.scope import Scope

COLUMNS = (
    "ingested_at", "path", "kind", "hdu", "keyword", "occurrence", "old_value", "new_value",
    "old_size", "new_size", "old_snapshot",
)  # fmt: skip


def dataset_history(scope: Scope, rootname: str, keyword: str = "") -> pa.Table:
    """The versions of ``rootname``'s files, newest first: each version's ``file`` row, then its card
    changes in header order; with ``keyword``, only the versions that changed it and only its rows."""
    scope.require_dataset(rootname)
    if not scope.has("card_changes"):
        return pa.table({c: pa.array([], pa.string()) for c in COLUMNS})
    cols = ", ".join(COLUMNS)
    where, args = "rootname = ?", [rootname]
    if keyword.strip():
        kw = keyword.strip().upper()
        where += (
            " AND (keyword = ? OR kind = 'file') AND (path, ingested_at) IN "
            "(SELECT (path, ingested_at) FROM card_changes WHERE rootname = ? AND keyword = ?)"
        )
        args += [kw, rootname, kw]
    return scope.sql(
        f"SELECT {cols} FROM card_changes WHERE {where} "
        "ORDER BY ingested_at DESC, path, kind <> 'file', hdu, coalesce(new_position, old_position)",
        args,
    )
