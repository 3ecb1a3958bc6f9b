"""What a monitor measures, checked before it measures (#17): the monitors' one policy for bad input.

A monitor measures full-frame WFC3 files of one kind (IR flt, ima or raw; UVIS raw): their SCI
extension must have the BITPIX, BUNIT and array shape of that kind as the pipeline writes it, the
exposure must not be a subarray, and its primary header must say the exposure type (IMAGETYP) and an
exposure time the measurement relies on. A file that fails is refused (:class:`Refused`): the run
records the reason (HDU, keyword, value, what was expected, what to do) and no numbers, where
measuring it would give numbers that mean nothing (a stripped 8-bit copy, an 11 x 11 cut-out, a
256 x 256 subarray where the detector's full frame is assumed).

The expected values are the pipeline's file formats (docs/background/wfc3-monitors.md §0.1-0.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import fitsio

from monitors.calibration.fitsdata import as_dict
from monitors.framework import Refused


@dataclass(frozen=True)
class Kind:
    """A kind of file a monitor reads: its SCI extension's BITPIX, BUNIT and NAXIS1 x NAXIS2."""

    name: str
    bitpix: int
    bunit: str
    shape: tuple[int, int]  # NAXIS1, NAXIS2 of the full frame


IR_FLT = Kind("IR flt", -32, "ELECTRONS/S", (1014, 1014))
IR_IMA = Kind("IR ima", -32, "ELECTRONS/S", (1024, 1024))
IR_RAW = Kind("IR raw", 16, "COUNTS", (1024, 1024))
UVIS_RAW = Kind("UVIS raw", 16, "COUNTS", (4206, 2070))
UVIS_FLT = Kind("UVIS flt", -32, "ELECTRONS", (4096, 2051))


def _value(hdr: Any, key: str) -> Any:
    return hdr.get(key) if key in hdr else None


def problems(
    prim: Any, sci: Any, kind: Kind, *, imagetyp: set[str] | None = None, exptime: bool = False
) -> list[str]:
    """What is wrong with a file of ``kind`` for a monitor, one sentence per problem (none: usable).

    ``prim`` and ``sci`` are the primary and [SCI,1] headers (anything with ``get`` and ``in``).
    """
    out = []
    if prim.get("SUBARRAY") in (True, "T"):
        out.append(f"[0] SUBARRAY = T (APERTURE {prim.get('APERTURE')!r}): a subarray, not the full "
                   f"frame this monitor measures")  # fmt: skip
    bitpix = _value(sci, "BITPIX")
    if bitpix != kind.bitpix:
        out.append(f"[SCI,1] BITPIX = {bitpix}, not {kind.bitpix}: not the pipeline's {kind.name} "
                   f"(a converted or stripped copy?)")  # fmt: skip
    bunit = str(_value(sci, "BUNIT") or "").strip().upper()
    if bunit != kind.bunit:
        out.append(f"[SCI,1] BUNIT = {bunit or 'missing'}, not {kind.bunit}: not a {kind.name}")
    shape = (_value(sci, "NAXIS1"), _value(sci, "NAXIS2"))
    if shape != kind.shape:
        out.append(f"[SCI,1] NAXIS1 x NAXIS2 = {shape[0]} x {shape[1]}, not the {kind.shape[0]} x "
                   f"{kind.shape[1]} of a full-frame {kind.name}: a cut-out or subarray")  # fmt: skip
    typ = str(prim.get("IMAGETYP") or "").strip()
    if imagetyp is not None and typ not in imagetyp:
        out.append(f"[0] IMAGETYP = {typ or 'missing'}, not {' or '.join(sorted(imagetyp))}")
    t = prim.get("EXPTIME")
    if exptime and not (isinstance(t, int | float) and t > 0):
        out.append(f"[0] EXPTIME = {t}, not a positive exposure time in seconds")
    return out


def check(
    path: str, kind: Kind, *, imagetyp: set[str] | None = None, exptime: bool = False
) -> dict[str, Any]:
    """The primary header of ``path`` as a dict, if the file is a usable ``kind``; else :class:`Refused`
    naming every problem and what to do."""
    with fitsio.FITS(path) as f:
        prim = f[0].read_header()
        if ("SCI", 1) not in f:
            raise Refused(f"no [SCI,1] extension: not a {kind.name}; this monitor measures {kind.name} files")
        sci = f[("SCI", 1)].read_header()
    found = problems(prim, sci, kind, imagetyp=imagetyp, exptime=exptime)
    if found:
        raise Refused("; ".join(found) + f". This monitor measures full-frame {kind.name} files as the "
                      "pipeline writes them: to measure this exposure, put the archive's original file in "
                      "its place and run the monitor with rebuild")  # fmt: skip
    return as_dict(prim)
