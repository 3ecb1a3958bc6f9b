"""A generated WFC3 archive: programs, visits, exposures and their files, deterministic for a seed.

Headers come from real card-image templates (:mod:`ingest.headertemplate`); the values that identify an
exposure (rootname, proposal, target, dates, filter, exposure time, association) are drawn per
exposure. Pixel data are left as sparse-file holes (``pixels='none'``): the files have their true size
and geometry and are valid FITS, but cost no disk blocks.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from ingest import headertemplate as ht
from lake.errors import GeneratorError
from lake.layout import Layout

MJD0 = datetime(1858, 11, 17, tzinfo=UTC)
B36 = "0123456789abcdefghijklmnopqrstuvwxyz"

UVIS_FILTERS = ["F225W", "F275W", "F336W", "F438W", "F475W", "F555W", "F606W", "F625W", "F814W", "F658N"]
IR_FILTERS = ["F098M", "F105W", "F110W", "F125W", "F140W", "F160W", "F126N", "F130N", "G141", "G102"]
GALAXIES = ["NGC4485", "NGC628", "NGC5194", "NGC3351", "NGC4258", "NGC1300", "M101", "NGC6946"]
STARS = ["GRW+70D5824", "GD153", "GD71", "P330E"]
PIS = ["Brown", "Thomas", "Riess", "Dressel", "Bohlin", "Baggett", "Mack", "Long", "Pirzkal"]

# Calibration programs (PROPOSID, purpose) from the WFC3 calibration plan (shared/docs/wfc3-monitors.md §0.6).
CAL_PROGRAMS = [
    (12687, "UVIS anneal"),
    (12689, "CCD daily monitor"),
    (12690, "UVIS gain"),
    (12691, "UVIS CTI (EPER)"),
    (12695, "IR dark"),
    (12697, "IR gain"),
    (12698, "contamination and stability"),
    (14529, "CCD daily monitor"),
    (15725, "IR gain"),
]


@dataclass
class Exposure:
    rootname: str
    proposid: int
    detector: str  # UVIS or IR
    imagetyp: str
    targname: str
    ra: float
    dec: float
    filter: str
    exptime: float
    expstart: float  # MJD
    asn_id: str
    pi: str
    filetypes: tuple[str, ...]
    values: dict[str, Any] = field(default_factory=dict)


def mjd_to_datetime(mjd: float) -> datetime:
    return MJD0 + timedelta(days=mjd)


def datetime_to_mjd(dt: datetime) -> float:
    return (dt - MJD0).total_seconds() / 86400.0


def _program_code(k: int) -> str:
    return "b" + B36[(k // 36) % 36] + B36[k % 36]


def plan(datasets: int = 300, seed: int = 1) -> list[Exposure]:
    """Exposures of a small but complete archive: calibration data plus GO science datasets.

    Includes UVIS observations of NGC galaxies in January 2015 (the original system's example query).
    """
    if datasets < 1:
        raise GeneratorError(f"--datasets must be at least 1, not {datasets}")
    rng = np.random.default_rng(seed)
    exps: list[Exposure] = []
    n_go = max(1, datasets // 12)
    programs = [(p, "CAL") for p, _ in CAL_PROGRAMS] + [
        (14000 + int(x), "GO") for x in rng.choice(3000, n_go, replace=False)
    ]
    start = datetime_to_mjd(datetime(2009, 6, 15, tzinfo=UTC))
    stop = datetime_to_mjd(datetime(2026, 10, 31, tzinfo=UTC))
    jan2015 = datetime_to_mjd(datetime(2015, 1, 2, tzinfo=UTC))
    for i in range(datasets):
        pk = i % len(programs)
        proposid, kind = programs[pk]
        visit_no = int(rng.integers(1, 60))
        exp_no = i // len(programs)
        ppp = _program_code(pk)
        rootname = (
            f"i{ppp}{B36[visit_no // 36]}{B36[visit_no % 36]}{B36[(exp_no // 36) % 36]}{B36[exp_no % 36]}q"
        )
        if kind == "GO" and i % 5 == 0:
            # NGC galaxies with UVIS in January 2015
            detector, imagetyp = "UVIS", "EXT"
            targ = str(rng.choice(GALAXIES[:6]))
            expstart = jan2015 + float(rng.uniform(0, 26))
        elif kind == "GO":
            detector = "UVIS" if rng.random() < 0.55 else "IR"
            imagetyp = "EXT"
            targ = str(rng.choice(GALAXIES))
            expstart = float(rng.uniform(start, stop))
        else:
            purpose = dict(CAL_PROGRAMS)[proposid]
            detector = "IR" if purpose.startswith("IR") else "UVIS"
            if "dark" in purpose.lower() or "monitor" in purpose or "anneal" in purpose:
                imagetyp, targ = "DARK", "DARK"
            elif "gain" in purpose.lower() or "CTI" in purpose:
                imagetyp, targ = "FLAT", "TUNGSTEN"
            else:
                imagetyp, targ = "EXT", str(rng.choice(STARS[:2]))
            expstart = float(rng.uniform(start, stop))
        if targ in {"DARK", "TUNGSTEN"}:
            ra, dec = 0.0, 0.0
        else:
            ra, dec = float(rng.uniform(0, 360)), float(math.degrees(math.asin(rng.uniform(-1, 1))))
        if detector == "UVIS":
            filt = "F336W" if targ == "DARK" else str(rng.choice(UVIS_FILTERS))
            exptime = 900.0 if imagetyp == "DARK" else float(np.round(rng.uniform(30, 1400), 3))
            files: tuple[str, ...] = ("raw", "flt", "flc", "spt")
        else:
            filt = "BLANK" if imagetyp == "DARK" else str(rng.choice(IR_FILTERS))
            exptime = float(np.round(rng.choice([2.93, 102.93, 302.94, 602.94, 1302.94]), 6))
            files = ("raw", "ima", "flt", "spt")
        asn = (rootname[:6] + "010").upper() if rng.random() < 0.6 else "NONE"
        exps.append(
            Exposure(
                rootname,
                proposid,
                detector,
                imagetyp,
                targ,
                ra,
                dec,
                filt,
                exptime,
                expstart,
                asn,
                str(rng.choice(PIS)),
                files,
            )
        )
    return exps


def _primary_values(e: Exposure, filetype: str) -> dict[str, Any]:
    t = mjd_to_datetime(e.expstart)
    values: dict[str, Any] = {
        "FILENAME": f"{e.rootname}_{filetype}.fits",
        "ROOTNAME": e.rootname,
        "IMAGETYP": e.imagetyp,
        "TARGNAME": e.targname,
        "RA_TARG": e.ra,
        "DEC_TARG": e.dec,
        "PROPOSID": e.proposid,
        "LINENUM": f"{e.rootname[4:6].upper()}.{int(e.rootname[6:8], 36) % 1000:03d}",
        "PR_INV_L": e.pi,
        "DATE-OBS": t.strftime("%Y-%m-%d"),
        "TIME-OBS": t.strftime("%H:%M:%S"),
        "EXPSTART": round(e.expstart, 8),
        "EXPEND": round(e.expstart + e.exptime / 86400.0, 8),
        "EXPTIME": e.exptime,
        "FILTER": e.filter,
        "ASN_ID": e.asn_id,
        "ASN_TAB": f"{e.asn_id.lower()}_asn.fits" if e.asn_id != "NONE" else "NONE",
    }
    if e.detector == "UVIS":
        values["APERTURE"] = "UVIS"
        values["FLASHLVL"] = 12 if e.imagetyp == "DARK" and e.expstart > 56000 else 0
    else:
        values["APERTURE"] = "IR"
        values["SUBARRAY"] = False
        values["OBSTYPE"] = "SPECTROSCOPIC" if e.filter.startswith("G") else "IMAGING"
    return values


def _file_headers(e: Exposure, filetype: str) -> list[tuple[bytes, int]]:
    """(header bytes, data bytes) for each HDU of one file."""
    if e.detector == "UVIS":
        tpl = ht.load("uvis_flc")
        hdus = tpl.hdus[:7] if filetype in {"raw", "spt"} else tpl.hdus
    else:
        tpl = ht.load("ir_flt" if filetype == "flt" else "ir_ima")
        hdus = tpl.hdus
    if filetype == "spt":
        hdus = hdus[:1]
    out: list[tuple[bytes, int]] = []
    prim = _primary_values(e, filetype)
    for k, hdu in enumerate(hdus):
        if k == 0:
            values = dict(prim)
            if filetype == "spt":
                values["FILETYPE"] = "SPT"
        else:
            values = {"ROOTNAME": e.rootname}
            if hdu.has("EXPNAME"):
                values["EXPNAME"] = e.rootname
        extname = hdu.value_text("EXTNAME") if hdu.has("EXTNAME") else ""
        bitpix = int(hdu.value_text("BITPIX"))
        naxis = int(hdu.value_text("NAXIS"))
        dims = [int(hdu.value_text(f"NAXIS{i}")) for i in range(1, naxis + 1)]
        if extname in {"SCI", "ERR", "DQ"} and naxis == 2:
            if e.detector == "UVIS":
                dims = [4206, 2070] if filetype == "raw" else [4096, 2051]
            else:
                dims = [1014, 1014] if filetype == "flt" else [1024, 1024]
            if filetype == "raw" and extname == "SCI":
                bitpix = 16
                values["BITPIX"] = 16
                values["BUNIT"] = "COUNTS"
            values["NAXIS1"], values["NAXIS2"] = dims
        size = abs(bitpix) // 8 * math.prod(dims) if naxis else 0
        if hdu.has("PCOUNT") and naxis:
            size += int(hdu.value_text("PCOUNT"))
        out.append((ht.render(hdu, values), -(-size // 2880) * 2880))
    return out


def write_file(path: Path, headers: list[tuple[bytes, int]]) -> int:
    """Write headers at their offsets; data stay holes (the file is sparse). Returns the file size."""
    tmp = path.with_name(path.name + ".part")
    pos = 0
    with open(tmp, "wb") as f:
        for hdr, data_size in headers:
            f.seek(pos)
            f.write(hdr)
            pos += len(hdr) + data_size
        f.truncate(pos)
    os.replace(tmp, path)
    return pos


def iter_files(exps: list[Exposure], layout: Layout) -> Iterator[tuple[str, Exposure, str]]:
    for e in exps:
        for ft in e.filetypes:
            yield layout.path(e.proposid, e.rootname, ft), e, ft


def generate(out: str | Path, datasets: int = 300, seed: int = 1, layout: Layout | None = None) -> int:
    """Write the archive under ``out``; returns the number of files. Existing files are rewritten."""
    out = Path(out)
    layout = layout or Layout()
    if out.exists() and not out.is_dir():
        raise GeneratorError(f"{out} exists and is not a directory; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / ".quicklake-archive").exists():
        raise GeneratorError(
            f"{out} is a non-empty directory that is not a generated archive; choose an empty or new --out"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / ".quicklake-archive").write_text(f"generated by quicklake: datasets={datasets} seed={seed}\n")
    except OSError as err:
        raise GeneratorError(f"cannot write to {out}: {err.strerror}") from None
    n = 0
    for rel, e, ft in iter_files(plan(datasets, seed), layout):
        p = out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        write_file(p, _file_headers(e, ft))
        n += 1
    return n
