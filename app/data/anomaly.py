"""Image anomaly flags: an append-only history of flag/unflag events per dataset in ``state.sqlite``.

The flags in force are derived (latest event per dataset and type), so nothing is ever lost: an unflag
is one more event with its user, time and comment. Only logged-in team members write; reads are scoped
by :class:`app.data.scope.Scope` like everything else, so a guest sees flags of public datasets only,
and that a dataset is flagged, not who flagged it (users are team members' e-mail addresses).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

import pyarrow as pa

from lake import state
from lake.errors import AccessDenied, QueryError

if TYPE_CHECKING:
    from app.data.scope import Scope

# the WFC3 anomaly vocabulary of the original Quicklook site
ANOMALY_TYPES: dict[str, str] = {
    "satellite_trail": "Satellite trail",
    "ghost": "Ghost",
    "filter_ghost": "Filter ghost",
    "scattered_light": "Scattered light",
    "earth_limb": "Earth limb",
    "guidestar_failure": "Guide-star failure",
    "dragons_breath": "Dragon's breath",
    "crosstalk": "Crosstalk",
    "persistence": "Persistence",
    "blobs": "Blobs",
    "diffraction_spikes": "Diffraction spikes",
    "excessive_saturation": "Excessive saturation",
    "other": "Other (comment required)",
}


def _record(
    scope: Scope, rootname: str, anomaly: str, action: Literal["flag", "unflag"], comment: str
) -> None:
    viewer = scope.viewer
    if not (viewer.logged_in and viewer.team):
        raise AccessDenied(f"{action}ging {rootname}: only logged-in team members may flag; log in first")
    if anomaly not in ANOMALY_TYPES:
        raise QueryError(f"unknown anomaly type {anomaly!r}; one of: {', '.join(ANOMALY_TYPES)}")
    if anomaly == "other" and not comment.strip():
        raise QueryError(f"{rootname}: anomaly type 'other' needs a comment saying what it is")
    scope.require_dataset(rootname)
    with state.connect(scope.lake_root) as con:
        con.execute(
            'INSERT INTO anomaly_events (ts, rootname, anomaly, action, "user", comment) '
            "VALUES (?,?,?,?,?,?)",
            (datetime.now(UTC).isoformat(), rootname, anomaly, action, viewer.label, comment.strip()),
        )


def flag(scope: Scope, rootname: str, anomaly: str, comment: str = "") -> str:
    """Flag dataset ``rootname`` with ``anomaly`` (a key of :data:`ANOMALY_TYPES`); returns the comment
    in force.

    Flagging again with an empty comment keeps the comment in force (it is recorded again with the new
    event, so the history keeps every version and the latest event alone says what is in force)."""
    if not comment.strip() and scope.viewer.team:
        before = [r for r in current(scope, rootname=rootname, anomaly=anomaly).to_pylist() if r["comment"]]
        comment = before[0]["comment"] if before else ""
    _record(scope, rootname, anomaly, "flag", comment)
    return comment.strip()


def unflag(scope: Scope, rootname: str, anomaly: str, comment: str = "") -> None:
    """Withdraw a flag; the history keeps both events."""
    if not any(r["anomaly"] == anomaly for r in current(scope, rootname=rootname).to_pylist()):
        raise QueryError(f"{rootname} is not flagged as {anomaly!r}; nothing to unflag")
    _record(scope, rootname, anomaly, "unflag", comment)


def _visible(scope: Scope, t: pa.Table) -> pa.Table:
    if scope.viewer.team:
        return t

    t = t.drop_columns([c for c in ("user",) if c in t.column_names])
    if not t.num_rows:
        return t
    # row by row against the scope's set: the flags are few, the public datasets a million (a hash set of
    # those, built by is_in at every call, took 0.3 s per page)
    return t.filter(pa.array([scope.visible(r) for r in t.column("rootname").to_pylist()], pa.bool_()))


def history(
    scope: Scope, rootname: str | None = None, anomaly: str | None = None, user: str | None = None
) -> pa.Table:
    """Every flag/unflag event the viewer may see, newest first, optionally filtered."""
    where, args = _filters(scope, rootname, anomaly, user)
    t = state.query(
        scope.lake_root,
        'SELECT event_id, ts, rootname, anomaly, action, "user", comment FROM anomaly_events'
        f"{where} ORDER BY event_id DESC",
        args,
    )
    return _visible(scope, t)


def current(
    scope: Scope, rootname: str | None = None, anomaly: str | None = None, user: str | None = None
) -> pa.Table:
    """The flags in force the viewer may see, newest first."""
    where, args = _filters(scope, rootname, anomaly, user)
    t = state.query(
        scope.lake_root, f"SELECT * FROM ({state.ANOMALIES_SQL}) AS f{where} ORDER BY flagged_at DESC", args
    )
    return _visible(scope, t)


def _filters(
    scope: Scope, rootname: str | None, anomaly: str | None, user: str | None
) -> tuple[str, tuple[object, ...]]:
    if user and not scope.viewer.team:  # (else the filter would tell who flagged what)
        raise AccessDenied("filtering flags by user is for team members; log in with a team account")
    conds, args = [], []
    for col, val in (("rootname", rootname), ("anomaly", anomaly), ("user", user)):
        if val:
            conds.append(f'"{col}" = ?')
            args.append(val)
    return (" WHERE " + " AND ".join(conds) if conds else ""), tuple(args)
