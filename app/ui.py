"""Shared UI helpers of the site: settings, the viewer, their scope of the lake, formatting.

UI only: what is visible to whom is decided in ``app.data.scope`` / ``app.data.viewer``; this module only
caches those objects per role and lake snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import streamlit as st

from app.data.browse import DatasetFilter
from app.data.scope import Scope
from app.data.viewer import GUEST, Viewer, viewer_from_claims
from lake import settings
from lake.errors import QuicklakeError

DATASET_PAGE = "app_pages/dataset.py"


def cfg() -> dict[str, Any]:
    return settings.load()


def auth_configured() -> bool:
    try:
        return "auth" in st.secrets
    except FileNotFoundError:
        return False
    except Exception:  # no secrets file at all
        return False


def viewer() -> Viewer:
    """Who is looking: from the OIDC claims of ``st.user``, else the ``local_user`` setting, else a guest."""
    c = cfg()
    claims = st.user.to_dict()
    if claims.get("is_logged_in"):
        return viewer_from_claims(claims, c)
    if c["local_user"] and not auth_configured():
        return Viewer(name=c["local_user"], team=True)
    return GUEST


@st.cache_resource(max_entries=4, show_spinner=False)
def _scope(lake: str, role: str, pins_text: str, hour: str, proposals: str) -> Scope:
    # one sandbox per role and lake snapshot (and hour: datasets leave their proprietary period; and
    # proposals file version: a changed period changes what guests may see at once)
    return Scope(lake, Viewer(name=role, team=role == "team"), cfg())


def proposals_version(c: dict[str, Any]) -> str:
    """The proposals file's modification time and size ('' if there is none): part of a scope's key."""
    import fsspec

    from lake.proprietary import proposals_file

    try:
        fs, _, (p,) = fsspec.get_fs_token_paths(proposals_file(c))
        info = fs.info(p)
    except (OSError, ValueError):
        return ""
    return f"{info.get('mtime', info.get('LastModified', ''))} {info.get('size', '')}"


def lake_root() -> Path:
    return Path(cfg()["lake"]).resolve()


def scope() -> Scope:
    """The viewer's scope of the lake (shared by sessions of the same role; queries are serialized)."""
    v = viewer()
    pins = (lake_root() / "pins.json").read_text() if (lake_root() / "pins.json").exists() else ""
    hour = datetime.now(UTC).strftime("%Y%m%d%H")
    return _scope(str(lake_root()), v.role, pins, hour, proposals_version(cfg())).as_viewer(v)


def console_scope() -> Scope:
    """The scope the SQL console runs on: the viewer's own; :meth:`Scope.console` gives every query a
    connection of its own to the server's shared query pool (no per-session database, no shared lock)."""
    return scope()


@contextmanager
def shown_errors() -> Iterator[None]:
    """Show Quicklake errors (bad input, access denied) as an error box instead of a traceback."""
    try:
        yield
    except QuicklakeError as e:
        st.error(str(e), icon=":material/error:")


def human_bytes(n: float | None) -> str:
    n = float(n or 0)
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} PB"


def age(ts: datetime | str | None) -> str:
    if ts is None or ts == "":
        return "never"
    t = datetime.fromisoformat(ts) if isinstance(ts, str) else ts
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    s = (datetime.now(UTC) - t).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s / size:.1f} {unit} ago"
    return f"{s:.0f} s ago"


def dataset_url(rootname: str) -> str:
    return f"dataset?rootname={rootname}"


def linked_table(df: Any, label: str = "dataset", columns: list[str] | None = None, **kwargs: Any) -> None:
    """A table whose ``rootname`` column becomes a first column of links to the Dataset page."""
    if "rootname" in df.columns:
        df = df.assign(**{label: [dataset_url(r) for r in df["rootname"]]})
        rest = [c for c in (columns or list(df.columns)) if c not in {"rootname", label}]
        df = df[[label, *rest]]
    link = st.column_config.LinkColumn(label, display_text=r"rootname=(.*)")
    st.dataframe(df, column_config={label: link}, hide_index=True, width="stretch", **kwargs)


def dataset_filter(proposid: Any, dates: Any, target: str, **fields: Any) -> DatasetFilter:
    """The Browse/Query form values as a filter: a ``st.date_input`` range gives (from, to), each None
    while not picked; empty text means no condition."""
    return DatasetFilter(
        proposid=int(proposid) if proposid is not None else None,
        target=target or None,
        date_from=dates[0] if len(dates) > 0 else None,
        date_to=dates[1] if len(dates) > 1 else None,
        **fields,
    )


def team_only(v: Viewer, what: str) -> bool:
    """True if the viewer may see ``what``; otherwise says so and returns False."""
    if v.team:
        return True
    st.info(f"{what} is for WFC3 team members. Log in with a team account to see it.", icon=":material/lock:")
    return False


def any_value(v: object) -> str:
    """Drop-down label of an optional filter: None reads as 'any'."""
    return "any" if v is None else str(v)
