"""Who is looking: a logged-in team member, another logged-in user, or an anonymous guest.

Team members (a group claim of the OIDC provider, or the ``team_members`` allow-list) see everything;
everyone else sees public data only (:mod:`lake.proprietary`). The site turns ``st.user`` claims into a
:class:`Viewer` with :func:`viewer_from_claims`; notebooks and tests build one directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Viewer:
    name: str = ""  # "" for an anonymous guest
    email: str = ""
    groups: tuple[str, ...] = ()
    team: bool = False

    @property
    def logged_in(self) -> bool:
        return bool(self.name or self.email)

    @property
    def role(self) -> str:
        """``team`` or ``public``: what cached, shareable results may be keyed on."""
        return "team" if self.team else "public"

    @property
    def label(self) -> str:
        return self.email or self.name or "guest"


GUEST = Viewer()


def _groups(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(g.strip() for g in value.replace(";", ",").split(",") if g.strip())
    return tuple(str(g) for g in value)


def viewer_from_claims(claims: Mapping[str, Any] | None, cfg: Mapping[str, Any]) -> Viewer:
    """A viewer from identity claims (``st.user``: email, name, sub, groups); none or logged out → guest.

    ``cfg['team_group']`` names the group claim value that makes a team member; ``cfg['team_members']``
    is a comma-separated allow-list of emails or subjects.
    """
    if not claims or claims.get("is_logged_in") is False:
        return GUEST
    email = str(claims.get("email") or "")
    sub = str(claims.get("sub") or "")
    name = str(claims.get("name") or claims.get("preferred_username") or sub or email)
    if not (email or name):
        return GUEST
    groups = _groups(claims.get("groups"))
    allow = {m.strip().lower() for m in str(cfg.get("team_members") or "").split(",") if m.strip()}
    team_group = str(cfg.get("team_group") or "")
    team = (bool(team_group) and team_group in groups) or bool({email.lower(), sub.lower()} & allow - {""})
    return Viewer(name=name, email=email, groups=groups, team=team)
