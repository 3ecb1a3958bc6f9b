"""The archive layout: one template that both builds and parses archive paths.

The default template is ``{proposid}/Visit{visit}/{rootname}_{filetype}.fits`` (``visit`` is
``rootname[4:6]``, two base-36 characters). Paths may be local or any fsspec URL; the layout works on
the part below the archive root, always with ``/`` separators.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lake.errors import LayoutError, MisfiledError

DEFAULT_TEMPLATE = "{proposid}/Visit{visit}/{rootname}_{filetype}.fits"

# File types of HST/WFC3 archive products (suffix after the rootname). Anything else is kept as written.
FILETYPES: dict[str, str] = {
    "raw": "uncalibrated exposure",
    "flt": "calibrated exposure",
    "flc": "calibrated, CTE-corrected exposure (UVIS)",
    "ima": "intermediate MULTIACCUM reads (IR)",
    "drz": "drizzled product",
    "drc": "drizzled, CTE-corrected product",
    "crj": "cosmic-ray rejected (UVIS CR-SPLIT)",
    "crc": "cosmic-ray rejected, CTE-corrected",
    "spt": "support / telemetry",
    "jif": "jitter images",
    "jit": "jitter tables",
    "trl": "trailer (processing log)",
    "asn": "association table",
    "flt_hlet": "headerlet of an flt",
    "flc_hlet": "headerlet of an flc",
    "rac": "CTE-corrected raw (UVIS)",
    "blv_tmp": "bias-subtracted temporary",
    "blc_tmp": "bias-subtracted CTE-corrected temporary",
    "dkc": "CTE-corrected dark reference",
    "sfl": "super-flat",
    "shm": "standard header packet",
    "spr": "support data",
    "jwf": "jitter (wide)",
    "jwt": "jitter (table)",
}

_FIELD_RE = {
    "proposid": r"(?P<proposid>\d{1,6})",
    "visit": r"(?P<visit>[0-9A-Za-z]{2})",
    "rootname": r"(?P<rootname>[a-z0-9]{9})",
    "filetype": r"(?P<filetype>[A-Za-z0-9]+(?:_[A-Za-z0-9]+)*)",
    "dir": r"(?P<dir>(?:[^/]+/)*[^/]+)",
    "stem": r"(?P<stem>[^/_]+(?:_[^/_]+)*?)",
}


@dataclass(frozen=True)
class ArchivePath:
    """What a path says about the file it names; fields the template lacks are None."""

    relpath: str
    proposid: int | None
    visit: str | None
    rootname: str | None
    filetype: str | None


class Layout:
    """A path template such as ``{proposid}/Visit{visit}/{rootname}_{filetype}.fits``."""

    def __init__(self, template: str = DEFAULT_TEMPLATE) -> None:
        self.template = template
        pattern = ""
        pos = 0
        for m in re.finditer(r"\{(\w+)\}", template):
            if m.group(1) not in _FIELD_RE:
                raise LayoutError(
                    f"layout template {template!r}: unknown field {{{m.group(1)}}}; "
                    f"use {', '.join('{' + f + '}' for f in _FIELD_RE)}"
                )
            pattern += re.escape(template[pos : m.start()]) + _FIELD_RE[m.group(1)]
            pos = m.end()
        pattern += re.escape(template[pos:])
        self._re = re.compile(pattern + r"\Z")
        self.fields = set(re.findall(r"\{(\w+)\}", template))

    def path(self, proposid: int, rootname: str, filetype: str) -> str:
        """The archive-relative path of a file (the inverse of :meth:`parse`)."""
        if not re.fullmatch(r"[a-z0-9]{9}", rootname):
            raise LayoutError(f"rootname {rootname!r} is not a 9-character ipppssoot")
        return self.template.format(
            proposid=proposid, visit=rootname[4:6].upper(), rootname=rootname, filetype=filetype
        )

    def parse(self, relpath: str) -> ArchivePath:
        """Split an archive-relative path into its fields; raise :class:`LayoutError` if it does not fit."""
        m = self._re.match(relpath)
        if m is None:
            raise LayoutError(
                f"{relpath}: path does not fit the archive layout {self.template!r}; move the file, or set "
                "the layout setting (QUICKLAKE_LAYOUT) if the whole archive is laid out differently"
            )
        d = m.groupdict()
        rootname = d.get("rootname")
        visit = d.get("visit")
        if rootname and visit and rootname[4:6].lower() != visit.lower():
            raise MisfiledError(
                f"{relpath}: visit folder Visit{visit} does not match rootname {rootname} "
                f"(visit {rootname[4:6].upper()}); move the file to Visit{rootname[4:6].upper()}"
            )
        filetype = d.get("filetype")
        if filetype is None and d.get("stem"):
            filetype = split_filetype(d["stem"])[1]
        if visit is None and rootname:
            visit = rootname[4:6]
        return ArchivePath(
            relpath=relpath,
            proposid=int(d["proposid"]) if d.get("proposid") else None,
            visit=visit.upper() if visit else None,
            rootname=rootname,
            filetype=filetype.lower() if filetype else None,
        )

    def matches(self, relpath: str) -> bool:
        return self._re.match(relpath) is not None


def split_filetype(stem: str) -> tuple[str, str]:
    """``'ib4606c5q_flt_hlet'`` → ``('ib4606c5q', 'flt_hlet')``: the longest known suffix wins."""
    parts = stem.split("_")
    for k in range(1, len(parts)):
        suffix = "_".join(parts[k:]).lower()
        if suffix in FILETYPES:
            return "_".join(parts[:k]), suffix
    if len(parts) > 1:
        return "_".join(parts[:-1]), parts[-1].lower()
    return stem, ""
