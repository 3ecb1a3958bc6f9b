"""The archive layout: an ordered list of path templates; the first builds archive paths, and a path is
parsed by the first template it fits.

The default list (:data:`DEFAULT_TEMPLATES`) is the archive's own layout,
``{proposid}/Visit{visit}/{rootname}_{filetype}.fits`` (``visit`` is ``rootname[4:6]``, two base-36
characters), then the names of the Hubble Advanced Products anywhere in the archive: single-visit
(``hst_11665_06_wfc3_uvis_f555w_ib4606c6_flc.fits``: proposal, visit, instrument, detector, filter,
dataset) and multi-visit sky cells (``hst_skycell-p2429x12y01_acs_wfc_f435w_all_drc.fits``). What a
name does not give (a HAP product's rootname, a sky cell's proposal) the ingest takes from the file's
primary header (ROOTNAME, PROPOSID). Paths may be local or any fsspec URL; the layout works on the part
below the archive root, always with ``/`` separators.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from lake.errors import LayoutError, MisfiledError

DEFAULT_TEMPLATE = "{proposid}/Visit{visit}/{rootname}_{filetype}.fits"
# HAP single-visit products: exposures name their dataset's ipppssoo, filter and total products its ipppss
HAP_SINGLE_VISIT = (
    "{folders}hst_{proposid}_{visit}_{instrument}_{detector}_{filter}_{dataset}_{filetype}.fits"
)
# HAP multi-visit mosaics: sky cell, instrument, detector, filter, layer (all, coarse-all)
HAP_SKYCELL = "{folders}hst_skycell-{skycell}_{instrument}_{detector}_{filter}_{layer}_{filetype}.fits"
DEFAULT_TEMPLATES = (DEFAULT_TEMPLATE, HAP_SINGLE_VISIT, HAP_SKYCELL)

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
    "folders": r"(?P<folders>(?:[^/]+/)*)",
    "stem": r"(?P<stem>[^/_]+(?:_[^/_]+)*?)",
    "instrument": r"(?P<instrument>[a-z0-9]+)",
    "detector": r"(?P<detector>[a-z0-9]+)",
    "filter": r"(?P<filter>[a-z0-9-]+)",
    "dataset": r"(?P<dataset>[a-z0-9]{6,9})",
    "skycell": r"(?P<skycell>p\d{4}x\d{2}y\d{2})",
    "layer": r"(?P<layer>[a-z0-9-]+)",
}


@dataclass(frozen=True)
class ArchivePath:
    """What a path says about the file it names; fields the template lacks are None."""

    relpath: str
    proposid: int | None
    visit: str | None
    rootname: str | None
    filetype: str | None
    template: str = DEFAULT_TEMPLATE  # the template it fitted


def templates_of(spec: str | Sequence[str]) -> tuple[str, ...]:
    """Templates from a setting: a list, or one string of templates separated by ``;``."""
    items = spec.split(";") if isinstance(spec, str) else list(spec)
    out = tuple(t.strip() for t in items if t.strip())
    if not out:
        raise LayoutError("the layout setting names no template; set it to one or more path templates")
    return out


class Layout:
    """An ordered list of path templates such as ``{proposid}/Visit{visit}/{rootname}_{filetype}.fits``
    (one string may hold several, separated by ``;``)."""

    def __init__(self, templates: str | Sequence[str] = DEFAULT_TEMPLATES) -> None:
        self.templates = templates_of(templates)
        self.template = self.templates[0]  # the one that builds paths
        self._res = [(t, self._compile(t)) for t in self.templates]

    @staticmethod
    def _compile(template: str) -> re.Pattern[str]:
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
        return re.compile(pattern + r"\Z")

    def path(self, proposid: int, rootname: str, filetype: str) -> str:
        """The archive-relative path of a file (the inverse of :meth:`parse`)."""
        if not re.fullmatch(r"[a-z0-9]{9}", rootname):
            raise LayoutError(f"rootname {rootname!r} is not a 9-character ipppssoot")
        return self.template.format(
            proposid=proposid, visit=rootname[4:6].upper(), rootname=rootname, filetype=filetype
        )

    def parse(self, relpath: str) -> ArchivePath:
        """Split an archive-relative path into its fields by the first template it fits; raise
        :class:`LayoutError` if it fits none (:class:`MisfiledError` if its visit folder is wrong)."""
        for template, rx in self._res:
            m = rx.match(relpath)
            if m is not None:
                return _fields(relpath, template, m.groupdict())
        which = " or ".join(repr(t) for t in self.templates)
        raise LayoutError(
            f"{relpath}: path does not fit the archive layout {which}; rename or move the file, or add "
            "a template that fits it to the layout setting (QUICKLAKE_LAYOUT, templates separated by ';')"
        )

    def matches(self, relpath: str) -> bool:
        return any(rx.match(relpath) is not None for _t, rx in self._res)


def _fields(relpath: str, template: str, d: dict[str, str | None]) -> ArchivePath:
    """What one template's match says about the file."""
    rootname = d.get("rootname")
    visit = d.get("visit")
    if rootname and visit and rootname[4:6].lower() != visit.lower():
        raise MisfiledError(
            f"{relpath}: visit folder Visit{visit} does not match rootname {rootname} "
            f"(visit {rootname[4:6].upper()}); move the file to Visit{rootname[4:6].upper()}"
        )
    filetype = d.get("filetype")
    if filetype is None and d.get("stem"):
        filetype = split_filetype(str(d["stem"]))[1]
    if visit is None and rootname:
        visit = rootname[4:6]
    return ArchivePath(
        relpath=relpath,
        proposid=int(str(d["proposid"])) if d.get("proposid") else None,
        visit=visit.upper() if visit else None,
        rootname=rootname,
        filetype=filetype.lower() if filetype else None,
        template=template,
    )


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
