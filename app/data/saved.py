"""Saved queries: a signed-in user's names for Query page states (the page's URL parameters: form, SQL,
plot, facets), kept in ``state.sqlite`` as an append-only event log; each user sees only their own.

A saved query holds no data, only the parameters, so opening it runs it in the viewer's scope of the
lake as it is now.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import pyarrow as pa

from lake import state
from lake.errors import AccessDenied, QueryError

if TYPE_CHECKING:
    from app.data.scope import Scope

NAME_MAX = 80
PAGE = "query"


def _user(scope: Scope, what: str) -> str:
    v = scope.viewer
    if not v.logged_in:
        raise AccessDenied(f"{what}: only signed-in users may save queries; log in first")
    return str(v.label)


def _name(name: str) -> str:
    n = " ".join(name.split())
    if not n:
        raise QueryError("a saved query needs a name; type one")
    if len(n) > NAME_MAX:
        raise QueryError(f"query name {n[:20]!r}…: at most {NAME_MAX} characters")
    return n


def save(scope: Scope, name: str, params: dict[str, Any]) -> str:
    """Save ``params`` (the Query page's URL parameters: a value, or a list of them for a parameter
    given more than once, such as a date range's two dates) under ``name`` for the viewer (a name
    already used is replaced); returns the name as kept (spaces collapsed)."""
    n = _name(name)
    user = _user(scope, f"saving {n!r}")
    keep: dict[str, str | list[str]] = {}
    for k, v in params.items():
        values = [str(x) for x in (v if isinstance(v, list | tuple) else [v]) if x not in (None, "")]
        if values:
            keep[str(k)] = values if len(values) > 1 else values[0]
    if not keep:
        raise QueryError(f"saving {n!r}: the page has nothing to save yet; fill the form, SQL or plot first")
    with state.connect(scope.lake_root) as con:
        con.execute(
            "INSERT INTO saved_query_events (ts, \"user\", name, action, params) VALUES (?, ?, ?, 'save', ?)",
            (datetime.now(UTC).isoformat(), user, n, json.dumps(keep, sort_keys=True)),
        )
    return n


def delete(scope: Scope, name: str) -> None:
    """Forget the viewer's saved query ``name``."""
    user = _user(scope, f"deleting {name!r}")
    if name not in {r["name"] for r in mine(scope).to_pylist()}:
        raise QueryError(f"no saved query {name!r}; pick one of your saved queries")
    with state.connect(scope.lake_root) as con:
        con.execute(
            "INSERT INTO saved_query_events (ts, \"user\", name, action) VALUES (?, ?, ?, 'delete')",
            (datetime.now(UTC).isoformat(), user, name),
        )


def mine(scope: Scope) -> pa.Table:
    """The viewer's saved queries (name, saved_at, url: the Query page with their parameters), by name;
    empty for a guest."""
    v = scope.viewer
    rows = []
    if v.logged_in:
        rows = state.query(scope.lake_root, state.SAVED_QUERIES_SQL, (v.label,)).to_pylist()
    return pa.Table.from_pylist(
        [{"name": r["name"], "saved_at": r["saved_at"], "url": url(json.loads(r["params"]))} for r in rows],
        schema=pa.schema([("name", pa.string()), ("saved_at", pa.string()), ("url", pa.string())]),
    )


def url(params: dict[str, str | list[str]]) -> str:
    """The Query page's address with ``params`` (relative, as the site's links are; a list gives the
    parameter once per value)."""
    return f"{PAGE}?{urlencode(params, doseq=True)}"
