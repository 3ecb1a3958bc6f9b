"""Headers as the site shows them: every card of an HDU from the ``cards`` table, searchable, and diffs.

Cards come back in file order with the exact card image, so what the viewer reads is the header as
written (CONTINUE strings joined, repeated ``DP1``/``D2IM1`` record-valued cards and HISTORY kept).
"""

from __future__ import annotations

import difflib

import pyarrow as pa

from app.data.scope import Scope
from lake.errors import QueryError


def cards(
    scope: Scope,
    path: str,
    hdu: int | None = None,
    search: str = "",
    commentary: bool = True,
    repeated_only: bool = False,
) -> pa.Table:
    """Cards of ``path`` (one HDU or all), in order, with ``repeats`` = how often the keyword occurs.

    ``search`` matches keyword, value or comment (case-insensitive); ``commentary=False`` hides
    HISTORY/COMMENT/blank cards; ``repeated_only`` keeps keywords that occur more than once in the HDU.
    """
    scope.require_file(path)
    conds = ["path = ?"]
    args: list[object] = [path]
    if hdu is not None:
        conds.append("hdu = ?")
        args.append(hdu)
    outer = []
    if search:
        outer.append("image ILIKE ?")
        args.append(f"%{search}%")
    if not commentary:
        outer.append("value_type != 'text'")
    if repeated_only:
        outer.append("repeats > 1 AND keyword NOT IN ('', 'HISTORY', 'COMMENT')")
    # repeats count the whole HDU, so the filters apply outside the window
    return scope.file_sql(
        "cards",
        [path],
        "SELECT * FROM (SELECT hdu, position, keyword, value_type, image, comment, "
        "count(*) OVER (PARTITION BY hdu, keyword) AS repeats FROM {rows} WHERE "
        + " AND ".join(conds)
        + ")"
        + (" WHERE " + " AND ".join(outer) if outer else "")
        + " ORDER BY hdu, position",
        args,
    )


def text(scope: Scope, path: str, hdu: int) -> str:
    """The HDU's header as text, one 80-character card per line (as ``ql header`` prints it)."""
    images = cards(scope, path, hdu).column("image").to_pylist()
    return "\n".join(img[i : i + 80] for img in images for i in range(0, len(img), 80))


def diff(scope: Scope, path_a: str, hdu_a: int, path_b: str, hdu_b: int, context: int = 1) -> str:
    """A unified diff of two HDU headers (card by card)."""
    a = text(scope, path_a, hdu_a).splitlines()
    b = text(scope, path_b, hdu_b).splitlines()
    return "\n".join(
        line.rstrip()
        for line in difflib.unified_diff(
            a, b, f"{path_a}[{hdu_a}]", f"{path_b}[{hdu_b}]", n=context, lineterm=""
        )
    )


def keyword_diff(scope: Scope, path_a: str, hdu_a: int, path_b: str, hdu_b: int) -> pa.Table:
    """Keywords whose values differ, or that only one header has (commentary cards left out)."""
    scope.require_file(path_a)
    scope.require_file(path_b)
    return scope.file_sql(
        "cards",
        [path_a, path_b],
        "WITH a AS (SELECT keyword, string_agg(trim(substr(image, 11, 70)), ' | ' ORDER BY position) AS v "
        "FROM {rows} WHERE path = ? AND hdu = ? AND value_type != 'text' GROUP BY keyword), "
        "b AS (SELECT keyword, string_agg(trim(substr(image, 11, 70)), ' | ' ORDER BY position) AS v "
        "FROM {rows} WHERE path = ? AND hdu = ? AND value_type != 'text' GROUP BY keyword) "
        "SELECT coalesce(a.keyword, b.keyword) AS keyword, a.v AS a, b.v AS b FROM a FULL JOIN b "
        "USING (keyword) WHERE a.v IS DISTINCT FROM b.v ORDER BY keyword",
        [path_a, hdu_a, path_b, hdu_b],
    )


def resolve_file(scope: Scope, name: str) -> str:
    """The archive path of ``name`` (as ``ql header`` accepts it): an archive path, or a bare file name
    such as ``ib6v01ijq_raw.fits`` (or an absolute path), matched on the name among the files the viewer
    may see. Ambiguous or unknown names are errors that say what to give instead."""
    n = name.strip()
    if not n:
        raise QueryError("give a file: its name (ib6v01ijq_raw.fits) or its archive path")
    if scope.sql("SELECT count(*) AS n FROM files WHERE path = ?", [n]).column("n")[0].as_py():
        return n
    base = n.rsplit("/", 1)[-1]
    root = base.split("_", 1)[0].lower()
    found = (
        scope.sql(
            "SELECT path FROM files WHERE rootname = ? AND status = 'ok' "
            "AND (path = ? OR ends_with(path, ?)) ORDER BY path",
            [root, base, "/" + base],
        )
        .column("path")
        .to_pylist()
    )
    if len(found) == 1:
        return str(found[0])
    if found:
        raise QueryError(f"{n}: ambiguous, matches {', '.join(found[:5])}; give the archive path")
    scope.require_file(n)  # (raises: not in the lake, or not for this viewer)
    return n


CANDIDATES = 500  # files offered to compare with: a visit's, or those a search finds


def diff_candidates(scope: Scope, rootname: str, typed: str = "", limit: int = CANDIDATES) -> pa.Table:
    """Files to compare a header of dataset ``rootname`` with (path, rootname, filetype, detector,
    filter, date_obs, whose: ``this dataset``, ``this visit`` or ``found``), for a picker.

    ``typed`` empty: the readable files of the dataset, then of the other datasets of its visit (an
    association's members are there too), in exposure order. Otherwise a search: the file it names
    (:func:`resolve_file`: a bare name or a path), else the files of the datasets whose rootname starts
    with it (``ib6v01``; a file name's rootname part counts); nothing found is an error saying so.
    """
    d = scope.sql("SELECT proposid, visit FROM master WHERE rootname = ?", [rootname]).to_pylist()
    proposid, visit = (d[0]["proposid"], d[0]["visit"]) if d else (None, None)
    cols = (
        "f.path, f.rootname, f.filetype, m.detector, m.filter, m.date_obs, "
        "CASE WHEN f.rootname = $1 THEN 'this dataset' WHEN m.proposid IS NOT DISTINCT FROM $2 "
        "AND m.visit IS NOT DISTINCT FROM $3 THEN 'this visit' ELSE 'found' END AS whose"
    )
    order = f"ORDER BY f.rootname <> $1, m.date_obs, m.time_obs, f.rootname, f.filetype LIMIT {int(limit)}"
    text = typed.strip()
    if not text:
        return scope.sql(
            f"SELECT {cols} FROM files f JOIN master m USING (rootname) WHERE f.status = 'ok' "
            f"AND m.proposid IS NOT DISTINCT FROM $2 AND m.visit IS NOT DISTINCT FROM $3 {order}",
            [rootname, proposid, visit],
        )
    prefix = text.rsplit("/", 1)[-1].split("_", 1)[0].split(".", 1)[0].lower()
    if "_" in text or "/" in text:  # a file's name or path: that file (errors say why not)
        return scope.sql(
            f"SELECT {cols} FROM files f LEFT JOIN master m USING (rootname) WHERE f.path = $4 {order}",
            [rootname, proposid, visit, resolve_file(scope, text)],
        )
    found = scope.sql(
        f"SELECT {cols} FROM files f LEFT JOIN master m USING (rootname) WHERE f.status = 'ok' "
        f"AND $4 <> '' AND starts_with(f.rootname, $4) {order}",
        [rootname, proposid, visit, prefix],
    )
    if not found.num_rows:
        raise QueryError(
            f"no file of a dataset starting with {text!r} that you may see; give a file name "
            "(ib6v01ijq_raw.fits), a rootname or its first letters, or an archive path"
        )
    return found
