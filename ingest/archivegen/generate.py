"""A generated WFC3 archive: programs, visits, exposures and their files, deterministic for a seed.

Headers come from real card-image templates (:mod:`ingest.archivegen.headertemplate`); the values that
identify an exposure (rootname, proposal, target, dates, filter, exposure time, association) are drawn per
exposure. Pixels (:mod:`ingest.archivegen.pixels`) carry the planted features of
:mod:`ingest.archivegen.features`; with ``pixels='none'`` or outside the rows ``'sparse'`` simulates, data
are sparse-file holes: the files have their true size and geometry and are valid FITS, but the holes cost
no disk blocks."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ingest.archivegen import headertemplate as ht
from ingest.archivegen import observatory as obs
from ingest.archivegen import pixels as px
from ingest.archivegen import products
from ingest.archivegen.features import REALISM, Instrument
from lake.errors import GeneratorError
from lake.executor import Executor
from lake.layout import Layout

MJD0 = datetime(1858, 11, 17, tzinfo=UTC)
B36 = "0123456789abcdefghijklmnopqrstuvwxyz"

UVIS_FILTERS = ["F225W", "F275W", "F336W", "F438W", "F475W", "F555W", "F606W", "F625W", "F814W", "F658N"]
IR_FILTERS = ["F098M", "F105W", "F110W", "F125W", "F140W", "F160W", "F126N", "F130N", "G141", "G102"]
GALAXIES = ["NGC4485", "NGC628", "NGC5194", "NGC3351", "NGC4258", "NGC1300", "M101", "NGC6946"]
STARS = ["GRW+70D5824", "GD153", "GD71", "P330E"]
PIS = ["Brown", "Thomas", "Riess", "Dressel", "Bohlin", "Baggett", "Mack", "Long", "Pirzkal"]

# Calibration programs (PROPOSID, purpose) from the WFC3 calibration plan
# (docs/background/wfc3-monitors.md §0.6).
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
    nsamp: int = 0  # IR: reads including the zeroth (MULTIACCUM), up to 16
    samp_seq: str = ""
    dither: tuple[float, float] = (0.0, 0.0)  # POSTARG1/2 (arcsec): the pointing's offset from the target


def mjd_to_datetime(mjd: float) -> datetime:
    return MJD0 + timedelta(days=mjd)


def datetime_to_mjd(dt: datetime) -> float:
    return (dt - MJD0).total_seconds() / 86400.0


def _program_code(k: int) -> str:
    return "b" + B36[(k // 36) % 36] + B36[k % 36]


def _rootname(pk: int, visit_no: int, exp_no: int) -> str:
    """ipppvvnnq: program code, visit and exposure line in base 36."""
    ppp = _program_code(pk)
    return f"i{ppp}{B36[visit_no // 36]}{B36[visit_no % 36]}{B36[(exp_no // 36) % 36]}{B36[exp_no % 36]}q"


def _observation(
    rng: np.random.Generator, i: int, proposid: int, kind: str, span: tuple[float, float, float]
) -> tuple[str, str, str, float]:
    """(detector, IMAGETYP, target, EXPSTART) of plan exposure ``i``; ``span`` is (start, stop, Jan 2015)."""
    start, stop, jan2015 = span
    if kind == "GO" and i % 5 == 0:
        # NGC galaxies with UVIS in January 2015
        targ = str(rng.choice(GALAXIES[:6]))
        return "UVIS", "EXT", targ, jan2015 + float(rng.uniform(0, 26))
    if kind == "GO":
        detector = "UVIS" if rng.random() < 0.55 else "IR"
        targ = str(rng.choice(GALAXIES))
        return detector, "EXT", targ, float(rng.uniform(start, stop))
    purpose = dict(CAL_PROGRAMS)[proposid]
    detector = "IR" if purpose.startswith("IR") else "UVIS"
    if "dark" in purpose.lower() or "monitor" in purpose or "anneal" in purpose:
        imagetyp, targ = "DARK", "DARK"
    elif "gain" in purpose.lower() or "CTI" in purpose:
        imagetyp, targ = "FLAT", "TUNGSTEN"
    else:
        imagetyp, targ = "EXT", str(rng.choice(STARS[:2]))
    return detector, imagetyp, targ, float(rng.uniform(start, stop))


def _pointing(rng: np.random.Generator, targ: str) -> tuple[float, float, tuple[float, float]]:
    """(RA, Dec, dither): the target's fixed position and a dither of a few arcseconds; 0, 0 and no dither
    for internal targets (darks and lamp flats). Two draws, as ever: the plan's later draws keep their
    order."""
    if targ in {"DARK", "TUNGSTEN", "BIAS"}:
        return 0.0, 0.0, (0.0, 0.0)
    u1, u2 = float(rng.uniform(0, 1)), float(rng.uniform(0, 1))
    ra, dec = obs.TARGETS[targ]
    return ra, dec, (round(20.0 * u1 - 10.0, 3), round(20.0 * u2 - 10.0, 3))


def _uvis_setup(rng: np.random.Generator, imagetyp: str, targ: str) -> tuple[str, float, tuple[str, ...]]:
    """(filter, exposure time, file types) of a UVIS exposure."""
    if targ == "DARK":
        filt = "F336W"
    elif targ in STARS:  # the contamination monitor's filters, UV to red
        filt = str(rng.choice(["F275W", "F336W", "F438W", "F814W"]))
    else:
        filt = str(rng.choice(UVIS_FILTERS))
    if imagetyp == "DARK":
        exptime = 900.0
    elif imagetyp == "FLAT":  # an exposure ladder: ~160 e- to near full well (EPER, gain)
        exptime = float(rng.choice([4.0, 10.0, 30.0, 100.0, 300.0, 1000.0]))
    else:
        exptime = float(np.round(rng.uniform(30, 1400), 3))
    return filt, exptime, ("raw", "flt", "flc", "spt", "trl")


def _ir_setup(rng: np.random.Generator, imagetyp: str) -> tuple[str, float, tuple[str, ...]]:
    """(filter, exposure time, file types) of an IR exposure; the time is only a draw (kept so that the
    plan's later draws keep their order) until :func:`_ir_sampling` fixes it from the sample sequence."""
    filt = "BLANK" if imagetyp == "DARK" else str(rng.choice(IR_FILTERS[:6]))
    if imagetyp == "DARK":  # a draw that :func:`_ir_sampling` ignores (darks are 16-read ramps)
        exptime = float(rng.choice([1002.94, 1802.94, 2802.94]))
    else:
        exptime = float(np.round(rng.choice([2.93, 102.93, 302.94, 602.94, 1302.94]), 6))
    return filt, exptime, ("raw", "ima", "flt", "spt", "trl")


def _ir_sampling(rng: np.random.Generator, imagetyp: str, exptime: float) -> tuple[int, str, float]:
    """(NSAMP, SAMP_SEQ, EXPTIME) of an IR exposure: EXPTIME is the time of its last read."""
    if imagetyp == "DARK":  # no draws here (as before), so that the plan's later draws keep their order
        # the IR dark programme's ramps have all 16 reads: calwf3 takes the first NSAMP reads of the
        # reference dark of a sequence for shorter science ramps; this one opens a visit (_ir_dark_visits)
        nsamp, samp_seq = 16, "SPARS200"
    else:
        nsamp = int(rng.choice([4, 8, 12, 16]))
        samp_seq = str(rng.choice(["RAPID", "SPARS25", "SPARS50", "STEP100"]))
    return nsamp, samp_seq, obs.ir_exptime(samp_seq, nsamp)


def proposal_pi(proposid: int) -> str:
    """A proposal's PI: one per proposal, in every header of it and in the proposals file."""
    return PIS[proposid % len(PIS)]


def _plan_exposure(
    rng: np.random.Generator, i: int, programs: list[tuple[int, str]], span: tuple[float, float, float]
) -> Exposure:
    """Plan exposure ``i``, round robin over the programs. The draws from ``rng`` keep a fixed order: the
    archive of a seed depends on it."""
    pk = i % len(programs)
    proposid, kind = programs[pk]
    visit_no = int(rng.integers(1, 60))
    rootname = _rootname(pk, visit_no, i // len(programs))
    detector, imagetyp, targ, expstart = _observation(rng, i, proposid, kind, span)
    ra, dec, dither = _pointing(rng, targ)
    if detector == "UVIS":
        filt, exptime, files = _uvis_setup(rng, imagetyp, targ)
    else:
        filt, exptime, files = _ir_setup(rng, imagetyp)
    nsamp, samp_seq = 0, ""
    if detector == "IR":
        nsamp, samp_seq, exptime = _ir_sampling(rng, imagetyp, exptime)
    # one association per visit and detector (associations never mix detectors)
    asn = (rootname[:6] + ("010" if detector == "UVIS" else "020")).upper() if rng.random() < 0.6 else "NONE"
    rng.choice(PIS)  # (drawn, and not used: a proposal has one PI; the draws after it keep their order)
    return Exposure(
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
        proposal_pi(proposid),
        files,
        nsamp=nsamp,
        samp_seq=samp_seq,
        dither=dither,
    )


def plan(datasets: int = 300, seed: int = 1) -> list[Exposure]:
    """Exposures of a small but complete archive: calibration data plus GO science datasets.

    Includes UVIS observations of NGC galaxies in January 2015 (the original system's example query).
    """
    if datasets < 1:
        raise GeneratorError(f"--datasets must be at least 1, not {datasets}")
    rng = np.random.default_rng(seed)
    n_go = max(1, datasets // 12)
    programs = [(p, "CAL") for p, _ in CAL_PROGRAMS] + [
        (14000 + int(x), "GO") for x in rng.choice(3000, n_go, replace=False)
    ]
    span = (
        datetime_to_mjd(datetime(2009, 6, 15, tzinfo=UTC)),
        datetime_to_mjd(datetime(2026, 10, 31, tzinfo=UTC)),
        datetime_to_mjd(datetime(2015, 1, 2, tzinfo=UTC)),
    )
    exps = [_plan_exposure(rng, i, programs, span) for i in range(datasets)]
    return (
        exps
        + _followups(exps, seed)
        + _gain_partners(exps, seed)
        + _dark_companions(exps, seed)
        + _ir_dark_visits(exps, seed)
        + _bowtie_flats(len(programs), datasets, seed)
        + _biases(len(programs) + 1, datasets, seed)
        + _subarrays(len(programs) + 2, datasets, seed)
    )


BOWTIE_PROGRAM = 12688
BIAS_PROGRAM = 14530  # generated stand-in for the UVIS bias monitor (0 s frames, shutter closed)
SUBARRAY_PROGRAM = 14999  # a GO programme observing with the UVIS2-C1K1C-SUB subarray
SUBARRAY_APERTURE = "UVIS2-C1K1C-SUB"
SUBARRAY_SHAPE = (1024, 1024)  # every SCI/ERR/DQ of a subarray file, one chip; no overscan modelled


def _spread(rng: np.random.Generator, n: int) -> np.ndarray:
    start = datetime_to_mjd(datetime(2009, 7, 1, tzinfo=UTC))
    stop = datetime_to_mjd(datetime(2026, 10, 1, tzinfo=UTC))
    return np.sort(rng.uniform(start, stop, n))


def _biases(k: int, datasets: int, seed: int) -> list[Exposure]:
    """UVIS bias frames (IMAGETYP BIAS, 0 s), headers only: no monitor reads their pixels."""
    rng = np.random.default_rng([seed, 4444])
    code = _program_code(k)
    files = ("raw", "flt", "flc", "spt", "trl")
    return [
        Exposure(f"i{code}{B36[(j // 36) % 36]}{B36[j % 36]}01q", BIAS_PROGRAM, "UVIS", "BIAS", "BIAS",
                 0.0, 0.0, "F336W", 0.0, float(t), "NONE", "Baggett", files)
        for j, t in enumerate(_spread(rng, max(4, datasets // 40)))
    ]  # fmt: skip


def _subarrays(k: int, datasets: int, seed: int) -> list[Exposure]:
    """UVIS science exposures read out in a 1k x 1k subarray of UVIS2 (SUBARRAY = T)."""
    rng = np.random.default_rng([seed, 4545])
    code = _program_code(k)
    files = ("raw", "flt", "flc", "spt", "trl")
    out = []
    for j, t in enumerate(_spread(rng, max(4, datasets // 40))):
        u = rng.uniform(0, 1, 2)  # the dither (two draws, as the old random position took)
        targ = str(rng.choice(GALAXIES))
        ra, dec = obs.TARGETS[targ]
        out.append(
            Exposure(f"i{code}{B36[(j // 36) % 36]}{B36[j % 36]}01q", SUBARRAY_PROGRAM, "UVIS", "EXT",
                     targ, ra, dec, str(rng.choice(UVIS_FILTERS)),
                     float(np.round(rng.uniform(30, 700), 3)), float(t), "NONE", "Riess", files,
                     {"SUBARRAY": True, "APERTURE": SUBARRAY_APERTURE},
                     dither=(round(20.0 * float(u[0]) - 10.0, 3), round(20.0 * float(u[1]) - 10.0, 3)))
        )  # fmt: skip
    return out


BOWTIE_EXPTIME = 100.0  # s: the unsaturated flats, ~4,000 e-
BOWTIE_SATURATING = 5000.0  # s: ~3 x full well [I]; an internal flat needs no dark sky


def _bowtie_flats(k: int, datasets: int, seed: int) -> list[Exposure]:
    """The bowtie monitor's visits (program 12688), spread over the mission: an unsaturated internal
    UVIS flat, a heavily saturating one and a repeat of the first, back to back (§5). A detector left in
    the dark shows QE hysteresis in the first flat; the saturating one erases it, so the repeat is the
    stable detector. ``values['BOWTIE_STEP']`` says which flat is which."""
    rng = np.random.default_rng([seed, 4343])
    gaps = np.random.default_rng([seed, 4344])  # a stream of its own: the visits' dates stay as they were
    n = max(6, datasets // 25)
    code = _program_code(k)
    start = datetime_to_mjd(datetime(2009, 7, 1, tzinfo=UTC))
    stop = datetime_to_mjd(datetime(2026, 10, 1, tzinfo=UTC))
    out = []
    for j, t in enumerate(np.sort(rng.uniform(start, stop, n))):
        for line, (step, exptime) in enumerate(
            (("first", BOWTIE_EXPTIME), ("saturating", BOWTIE_SATURATING), ("repeat", BOWTIE_EXPTIME)), 1
        ):
            root = f"i{code}{B36[(j // 36) % 36]}{B36[j % 36]}0{line}q"
            out.append(
                Exposure(root, BOWTIE_PROGRAM, "UVIS", "FLAT", "TUNGSTEN", 0.0, 0.0, "F814W", exptime,
                         float(t), "NONE", "Baggett", ("raw", "flt", "flc", "spt", "trl"),
                         {"BOWTIE_STEP": step})
            )  # fmt: skip
            t += (exptime + float(gaps.uniform(60.0, 150.0))) / 86400.0  # the buffer dump between them
    return out


# [I] the daily monitor takes about two darks a day, so a 4-day superdark window holds ~8 frames (the
# legacy code keeps windows of at least 5); 8 give the per-pixel cosmic-ray rejection a robust median
DARK_WINDOW_FRAMES = 8
DARK_SPACING_DAYS = 0.45


def _dark_companions(exps: list[Exposure], seed: int) -> list[Exposure]:
    """The daily monitor takes UVIS darks about twice a day: each dark of the plan gets seven more within
    3.3 days, in a visit of their own, so that the darks monitors can stack them (superdarks). They stay
    in the anchor's anneal cycle (before it when the next anneal is near). Their own random stream keeps
    the plan's draws and every other exposure's pixels unchanged."""
    inst = _instrument(seed)
    rng = np.random.default_rng([seed, 4646])
    out = []
    anchors = [e for e in exps if e.detector == "UVIS" and e.imagetyp == "DARK"]
    for j, e in enumerate(anchors):
        later = inst.anneals[inst.anneals > e.expstart]
        span = DARK_SPACING_DAYS * (DARK_WINDOW_FRAMES - 1) + 0.1
        sign = -1.0 if len(later) and later[0] - e.expstart < span + 0.05 else 1.0
        visit = 100 + j % 1196  # plan visits are 1-59: these never collide with them
        for k in range(1, DARK_WINDOW_FRAMES):
            n = k + DARK_WINDOW_FRAMES * (j // 1196)
            root = f"{e.rootname[:4]}{B36[visit // 36]}{B36[visit % 36]}{B36[n // 36 % 36]}{B36[n % 36]}q"
            t = e.expstart + sign * (DARK_SPACING_DAYS * k + float(rng.uniform(0.0, 0.1)))
            out.append(replace(e, rootname=root, expstart=t, asn_id="NONE", values=dict(e.values)))
    return out


GAIN_PROGRAMS = (12690, 17672)  # UVIS CCD gain stability (docs/background/wfc3-monitors.md §0.6)


def _gain_partners(exps: list[Exposure], seed: int) -> list[Exposure]:
    """The UVIS gain programme takes its internal flats in pairs (§4): each flat of the plan gets a twin
    of the same filter and exposure time, in the same visit, started a minute or two after the first
    ended (the buffer dump). Their own random stream keeps the plan's draws and every other exposure's
    pixels unchanged."""
    rng = np.random.default_rng([seed, 4848])
    taken = {e.rootname for e in exps}
    out = []
    for e in exps:
        if e.proposid not in GAIN_PROGRAMS or e.imagetyp != "FLAT":
            continue
        _line, root = _next_line(e.rootname[:6], int(e.rootname[6:8], 36), taken)
        t = e.expstart + (e.exptime + float(rng.uniform(60.0, 150.0))) / 86400.0
        out.append(replace(e, rootname=root, expstart=t, values=dict(e.values)))
        taken.add(root)
    return out


# Full-frame IR sample sequences besides SPARS200 (WFC3 Instrument Handbook 7.7; docs/background/
# wfc3-monitors.md §0.2). calwf3 subtracts a dark reference file made per sample sequence from dark
# ramps taken throughout each cycle (WFC3 Data Handbook 7.4): the IR dark programme takes them all.
IR_DARK_SEQUENCES = ("RAPID", "SPARS10", "SPARS25", "SPARS50", "SPARS100",
                     "STEP25", "STEP50", "STEP100", "STEP200", "STEP400")  # fmt: skip
IR_DARK_VISIT = 5  # ramps after the SPARS200 one: two visits cover about every sequence


def _ir_dark_visits(exps: list[Exposure], seed: int) -> list[Exposure]:
    """Each IR dark of the plan (a 16-read SPARS200 ramp) opens a visit of the IR dark programme that goes
    on with 16-read ramps in five other full-frame sample sequences, back to back (a few minutes apart
    for the buffer dump): about 2 hours of dark exposure per visit, some 14 hours in a 200-dataset
    archive, in which a snowball rate of order one per hour gives snowballs to find. Their own random
    stream keeps the plan's draws and every other exposure's pixels unchanged."""
    rng = np.random.default_rng([seed, 4747])
    taken = {e.rootname for e in exps}
    out = []
    for e in exps:
        if e.detector != "IR" or e.imagetyp != "DARK":
            continue
        t = e.expstart + e.exptime / 86400.0
        line = int(e.rootname[6:8], 36)
        for seq in rng.choice(IR_DARK_SEQUENCES, IR_DARK_VISIT, replace=False):
            t += float(rng.uniform(300.0, 900.0)) / 86400.0
            line, root = _next_line(e.rootname[:6], line, taken)
            exptime = obs.ir_exptime(str(seq), 16)
            out.append(replace(e, rootname=root, expstart=t, exptime=exptime, samp_seq=str(seq),
                               asn_id="NONE", values=dict(e.values)))  # fmt: skip
            taken.add(root)
            t += exptime / 86400.0
    return out


def _next_line(visit: str, after: int, taken: set[str]) -> tuple[int, str]:
    """The first free exposure line of a visit after line ``after``, and its rootname."""
    for n in range(after + 1, 36 * 36):
        root = f"{visit}{B36[n // 36]}{B36[n % 36]}q"
        if root not in taken:
            return n, root
    raise GeneratorError(f"visit {visit} has no free exposure line after {after}")


def _followups(exps: list[Exposure], seed: int) -> list[Exposure]:
    """An IR exposure 1-4 hours after each bad actor, in the same visit: it sees the persistence."""
    inst = _instrument(seed)
    rng = np.random.default_rng([seed, 4242])
    out = []
    taken = {e.rootname for e in exps}
    for e in exps:
        if e.detector != "IR" or e.imagetyp != "EXT" or not inst.bad_actor(e.rootname):
            continue
        root = _free_line(e.rootname[:6], taken)
        start = e.expstart + (e.exptime + float(rng.uniform(3600, 4 * 3600))) / 86400.0
        f = Exposure(
            root,
            e.proposid,
            "IR",
            "EXT",
            e.targname,
            e.ra,
            e.dec,
            e.filter,
            obs.ir_exptime("SPARS50", 8),
            start,
            "NONE",
            e.pi,
            ("raw", "ima", "flt", "spt", "trl"),
            {"STIMULUS": e.rootname, "STIM_END": e.expstart + e.exptime / 86400.0},
            nsamp=8,
            samp_seq="SPARS50",
            dither=e.dither,
        )
        if not inst.bad_actor(root):
            out.append(f)
            taken.add(root)
    return out


def _free_line(visit: str, taken: set[str]) -> str:
    """The last free exposure line of a visit (zz, zy, ...): two bad actors in one visit each get their
    follow-up under a rootname of its own (#20)."""
    for n in range(36 * 36 - 1, -1, -1):
        root = f"{visit}{B36[n // 36]}{B36[n % 36]}q"
        if root not in taken:
            return root
    raise GeneratorError(f"visit {visit} has no free exposure line")


def _written(e: Exposure) -> datetime:
    """When the file was written: after the exposure ended (EXPEND)."""
    return mjd_to_datetime(obs.written_mjd(e.expstart + e.exptime / 86400.0, e.rootname))


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
        "DATE": _written(e).strftime("%Y-%m-%d"),
        "PA_V3": obs.pa_v3(e.rootname),
        "POSTARG1": e.dither[0],
        "POSTARG2": e.dither[1],
    }
    if e.detector == "UVIS":
        values["APERTURE"] = e.values.get("APERTURE", "UVIS")
        values["SUBARRAY"] = bool(e.values.get("SUBARRAY", False))
        values["FLASHLVL"] = Instrument.flash_level(e.imagetyp, e.expstart)
    else:
        values["APERTURE"] = "IR"
        values["SUBARRAY"] = False
        values["SUBTYPE"] = "FULLIMAG"  # every generated IR exposure reads the full 1024 x 1024 array
        values["SAMPZERO"] = 2.911756  # the full-frame zeroth read's time, as in the real full-frame flt
        values["OBSTYPE"] = "SPECTROSCOPIC" if e.filter.startswith("G") else "IMAGING"
    return values


def _layout(e: Exposure, filetype: str) -> list[tuple[Any, int]]:
    """(template HDU, EXTVER) for each HDU of one file. IR raw/ima repeat the template's IMSET once per
    read, newest first (EXTVER 1 = the last read, EXTVER NSAMP = the zeroth read)."""
    if e.detector == "UVIS":
        tpl = ht.load("uvis_flc")
        hdus = tpl.hdus[:7] if filetype in {"raw", "spt"} else tpl.hdus
        if e.values.get("SUBARRAY"):  # one chip: PRIMARY and SCI/ERR/DQ of UVIS2 (+ the flt/flc tail)
            hdus = hdus[:4] + hdus[7:]
    elif filetype == "flt":
        hdus = ht.load("ir_flt").hdus
    else:
        tpl = ht.load("ir_ima")
        if filetype == "spt":
            return [(tpl.hdus[0], 1)]
        imset = tpl.hdus[1:6]  # SCI, ERR, DQ, SAMP, TIME
        return [(tpl.hdus[0], 1)] + [(h, v) for v in range(1, max(e.nsamp, 1) + 1) for h in imset]
    hdus = hdus[:1] if filetype == "spt" else hdus
    return [(h, _shape(h)[1]) for h in hdus]


_SHAPES: dict[int, tuple[str, int, int, int, list[int], int]] = {}


def _shape(h: Any) -> tuple[str, int, int, int, list[int], int]:
    """(EXTNAME, EXTVER, BITPIX, NAXIS, [NAXISn], PCOUNT) of a template HDU, read once."""
    got = _SHAPES.get(id(h))
    if got is None:
        naxis = int(h.value_text("NAXIS"))
        got = (
            h.value_text("EXTNAME") if h.has("EXTNAME") else "PRIMARY",
            int(h.value_text("EXTVER") or 1) if h.has("EXTVER") else 1,
            int(h.value_text("BITPIX")),
            naxis,
            [int(h.value_text(f"NAXIS{i}")) for i in range(1, naxis + 1)],
            int(h.value_text("PCOUNT")) if h.has("PCOUNT") else 0,
        )
        _SHAPES[id(h)] = got  # templates are cached for the life of the process
    return (*got[:4], list(got[4]), got[5])


def _file_primary_values(
    e: Exposure, filetype: str, inst: Instrument | None, n_hdus: int, nsamp: int
) -> dict[str, Any]:
    """Primary header values of one file: the exposure's, the file's shape and the instrument's gains."""
    prim = _primary_values(e, filetype)
    prim["NEXTEND"] = n_hdus - 1
    if e.detector == "IR":
        prim["NSAMP"] = e.nsamp or nsamp
        prim["SAMP_SEQ"] = e.samp_seq or "RAPID"
    if inst is not None and e.detector == "UVIS":
        for amp in "ABCD":
            prim[f"ATODGN{amp}"] = inst.uvis_gain[amp]
            prim[f"BIASLEV{amp}"] = inst.uvis_bias[amp]
    elif inst is not None:
        for q in "ABCD":
            prim[f"ATODGN{q}"] = inst.ir_gain[q]
    return prim


def _image_dims(e: Exposure, filetype: str) -> list[int]:
    """[NAXIS1, NAXIS2] of a SCI/ERR/DQ image: full frame (raw with overscan), trimmed, or subarray."""
    if e.detector == "UVIS" and e.values.get("SUBARRAY"):
        return list(SUBARRAY_SHAPE)
    if e.detector == "UVIS":
        return [4206, 2070] if filetype == "raw" else [4096, 2051]
    return [1014, 1014] if filetype == "flt" else [1024, 1024]


def _read_time_values(extname: str, extver: int, nsamp: int, times: np.ndarray) -> dict[str, Any]:
    """SAMPTIME/DELTATIM of an IR SCI extension, or PIXVALUE of its TIME/SAMP companions."""
    read = nsamp - extver  # IMSETs run newest first
    if extname == "SCI":
        return {
            "SAMPTIME": round(float(times[read]), 6),
            "DELTATIM": round(float(times[read] - times[read - 1]) if read else 0.0, 6),
        }
    return {"PIXVALUE": round(float(times[read]), 6) if extname == "TIME" else read}


def _hdu_values(
    e: Exposure,
    filetype: str,
    k: int,
    hdu: Any,
    shape: tuple[str, int, int, int, list[int], int],
    prim: dict[str, Any],
    ramp: tuple[int, np.ndarray] | None,
) -> tuple[dict[str, Any], int, list[int]]:
    """(header values, BITPIX, [NAXISn]) of HDU ``k``; ``ramp`` is (NSAMP, read times) for IR raw/ima.
    The values' order is the order new cards are added in: keep it."""
    if k == 0:
        values = dict(prim)
        if filetype == "spt":
            values["FILETYPE"] = "SPT"
    else:
        values = {"ROOTNAME": e.rootname}
        if hdu.has("EXPNAME"):
            values["EXPNAME"] = e.rootname
    extname, extver, bitpix, naxis, dims, _pcount = shape
    if k and hdu.has("EXTVER"):
        values["EXTVER"] = extver
    if extname in {"SCI", "ERR", "DQ"} and naxis == 2:
        dims = _image_dims(e, filetype)
        if filetype == "raw" and extname == "SCI":
            bitpix = 16
            values.update(BITPIX=16, BUNIT="COUNTS", BZERO=32768, BSCALE=1)
        values["NAXIS1"], values["NAXIS2"] = dims
    if ramp is not None and extname in {"SCI", "TIME", "SAMP"}:
        values.update(_read_time_values(extname, extver, *ramp))
    values.update(_consistency_values(e, filetype, k, hdu, extname, extver))
    return values, bitpix, dims


IMSET = {"SCI", "ERR", "DQ", "SAMP", "TIME"}


def _chip(e: Exposure, extver: int) -> int:
    """The UVIS chip of an imset: SCI,1 is UVIS2 and SCI,2 UVIS1 (a subarray reads UVIS2 only)."""
    return 2 if e.values.get("SUBARRAY") or extver == 1 else 1


def _consistency_values(
    e: Exposure, filetype: str, k: int, hdu: Any, extname: str, extver: int
) -> dict[str, Any]:
    """The values of one HDU that must agree with the exposure (#17): calibration switches, the date it
    was written, photometry for its filter and chip, and a WCS at its pointing."""
    keys = set(hdu.index)
    out: dict[str, Any] = {}
    if k == 0 and filetype in {"raw", "spt"}:
        out.update({kw: obs.raw_switch(hdu.value_text(kw)) for kw in keys if kw.endswith("CORR")})
    if k and "DATE" in keys:
        fmt = "%Y-%m-%dT%H:%M:%S" if "T" in hdu.value_text("DATE") else "%Y-%m-%d"
        out["DATE"] = _written(e).strftime(fmt)
    chip = _chip(e, extver) if k else 1
    phot = obs.phot_values(e.detector, e.filter, chip, e.expstart)
    if e.detector == "UVIS":
        phot["PHTFLAM1"] = obs.phot_values("UVIS", e.filter, 1, e.expstart)["PHOTFLAM"]
        phot["PHTFLAM2"] = obs.phot_values("UVIS", e.filter, 2, e.expstart)["PHOTFLAM"]
    out.update({kw: v for kw, v in phot.items() if kw in keys})
    if "CRVAL1" in keys and extname in IMSET:  # not WCSDVARR/D2IMARR: their CRVALs are pixels
        ra, dec = obs.offset(e.ra, e.dec, *e.dither)
        orientat = (obs.pa_v3(e.rootname) + obs.V3_TO_ORIENTAT + 180.0) % 360.0 - 180.0
        dy = (
            0.0
            if e.detector == "IR" or e.values.get("SUBARRAY")
            else obs.CHIP_OFFSET * (1 if chip == 1 else -1)
        )
        out.update(obs.wcs_values(e.detector, ra, dec, orientat, dy, keys))
    if e.detector == "IR" and filetype == "flt" and extname == "SCI":  # the ramp's last read
        t = px.read_times(e, max(e.nsamp, 2))
        out.update(SAMPTIME=round(float(t[-1]), 6), DELTATIM=round(float(t[-1] - t[-2]), 6))
    if e.detector == "IR" and filetype != "flt" and k:  # full-frame ramps: the 1024 x 1024 array's centre
        full = {"CRPIX1": 512.0, "CRPIX2": 512.0, "LTV1": 5.0, "LTV2": 5.0, "CENTERA1": 513, "CENTERA2": 513,
                "SIZAXIS1": 1024, "SIZAXIS2": 1024}  # fmt: skip
        out.update({kw: v for kw, v in full.items() if kw in keys})
    return out


def _file_hdus(
    e: Exposure, filetype: str, inst: Instrument | None = None, pixels: str = "none"
) -> tuple[list[tuple[bytes, int, list[tuple[int, bytes]]]], list[dict[str, Any]]]:
    """(header bytes, data bytes, [(offset in data, pixel bytes)]) per HDU of one file, and truth rows."""
    layout = _layout(e, filetype)
    hdus = [h for h, _v in layout]
    shapes = [(sh[0], v, *sh[2:]) for sh, (_h, v) in zip((_shape(h) for h in hdus), layout, strict=True)]
    names = [(sh[0], sh[1]) for sh in shapes]
    blocks: dict[int, list[tuple[int, Any]]] = {}
    truth: list[dict[str, Any]] = []
    if pixels != "none" and inst is not None:
        blocks, truth = px.render(inst, e, filetype, names, pixels)
    nsamp = sum(1 for n, _ in names if n == "SCI")
    ramp = (nsamp, px.read_times(e, max(nsamp, 1))) if e.detector == "IR" and filetype != "flt" else None
    prim = _file_primary_values(e, filetype, inst, len(hdus), nsamp)
    out: list[tuple[bytes, int, list[tuple[int, bytes]]]] = []
    for k, hdu in enumerate(hdus):
        values, bitpix, dims = _hdu_values(e, filetype, k, hdu, shapes[k], prim, ramp)
        hdu_blocks = blocks.get(k, [])
        if hdu_blocks and pixels == "sparse":
            values["QLROWS"] = px.rows_card(hdu_blocks)
        naxis, pcount = shapes[k][3], shapes[k][5]
        size = abs(bitpix) // 8 * math.prod(dims) + pcount if naxis else 0
        row_bytes = abs(bitpix) // 8 * (dims[0] if dims else 0)
        payload = [(row * row_bytes, arr.tobytes()) for row, arr in hdu_blocks]
        out.append((ht.render(hdu, values), -(-size // 2880) * 2880, payload))
    return out, truth


def _file_headers(e: Exposure, filetype: str) -> list[tuple[bytes, int]]:
    """(header bytes, data bytes) for each HDU of one file (no pixels)."""
    return [(h, n) for h, n, _ in _file_hdus(e, filetype)[0]]


def write_file(
    path: Path, hdus: list[tuple[bytes, int]] | list[tuple[bytes, int, list[tuple[int, bytes]]]]
) -> int:
    """Write headers and pixel blocks at their offsets; the rest stays holes (the file is sparse).

    Written to a temporary name and renamed, so a reader never sees half a file. Returns the size.
    """
    tmp = path.with_name(path.name + ".part")
    pos = 0
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for hdu in hdus:
            hdr, data_size = hdu[0], hdu[1]
            os.pwrite(fd, hdr, pos)
            for off, data in hdu[2] if len(hdu) > 2 else []:
                os.pwrite(fd, data, pos + len(hdr) + off)
            pos += len(hdr) + data_size
        os.ftruncate(fd, pos)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return pos


def iter_files(exps: list[Exposure], layout: Layout) -> Iterator[tuple[str, Exposure, str]]:
    for e in exps:
        for ft in e.filetypes:
            yield layout.path(e.proposid, e.rootname, ft), e, ft


PIXEL_MODES = ("none", "sparse", "full")
PROPOSALS_FILE = "proposals.csv"  # read by lake.proprietary (setting 'proposals')
DAYS_PER_MONTH = 365.25 / 12


def proprietary_months(proposid: int, seed: int) -> int:
    """A proposal's proprietary period: 0 for calibration; GO mostly HST's 12 months, some waived (0),
    some 6 or extended to 24. Drawn from a stream of its own so that the plan's draws do not shift."""
    if proposid in dict(CAL_PROGRAMS) or proposid in (BOWTIE_PROGRAM, BIAS_PROGRAM):
        return 0
    rng = np.random.default_rng([seed, proposid, 7])
    return int(rng.choice([12, 0, 6, 24], p=[0.7, 0.1, 0.1, 0.1]))


def _write_proposals(out: Path, exps: list[Exposure], seed: int) -> dict[int, int]:
    periods: dict[int, int] = {}
    pis: dict[int, str] = {}
    for e in exps:
        periods.setdefault(e.proposid, proprietary_months(e.proposid, seed))
        pis.setdefault(e.proposid, e.pi)
    lines = ["proposid,pi,proprietary_months"]
    lines += [f"{p},{pis[p]},{periods[p]}" for p in sorted(periods)]
    tmp = out / (PROPOSALS_FILE + ".part")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, out / PROPOSALS_FILE)
    return periods


ANNEALS_FILE = "uvis_anneals.txt"  # read by monitors.calibration.anneals (setting 'uvis_anneals')


def _write_anneals(out: Path, inst: Instrument) -> None:
    """The anneal list the darks monitors read, like the legacy monitor's history.txt: one MJD a line."""
    lines = ["# UVIS anneals (MJD), generated by quicklake"]
    lines += [f"{t:.5f}" for t in inst.anneals if t <= inst.stop_mjd]
    tmp = out / (ANNEALS_FILE + ".part")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, out / ANNEALS_FILE)


def _set_permissions(out: Path, exps: list[Exposure], periods: dict[int, int]) -> None:
    """Proposal folders with data still in their proprietary period are closed to the world (0o750)."""
    now = datetime_to_mjd(datetime.now(UTC))
    secret: dict[int, bool] = {}
    for e in exps:
        release = e.expstart + periods.get(e.proposid, 12) * DAYS_PER_MONTH
        secret[e.proposid] = secret.get(e.proposid, False) or now < release
    for prop, closed in secret.items():
        d = out / str(prop)
        if d.is_dir():
            d.chmod(0o750 if closed else 0o755)


TRUTH_FILE = "quicklake_truth.parquet"
CHUNK_MIN = 50  # files per task, at least
PARALLEL_MIN = 1000  # files: below this the archive is written in this process


@lru_cache(maxsize=4)
def _instrument(seed: int, realism: str = "on-orbit") -> Instrument:
    """The instrument of a seed, drawn once per process (plan, generate and each chunk all need it)."""
    return Instrument(seed, realism)


def _write_chunk(
    index: int,
    out: str,
    seed: int,
    pixels: str,
    numbers: list[int],
    chunk: list[tuple[str, Exposure, str, list[Exposure]]],
    realism: str = "on-orbit",
) -> tuple[int, dict[int, list[dict[str, Any]]]]:
    """Write one chunk of files (in a Dask worker or here); returns (files, truth rows per file number)."""
    inst = _instrument(seed, realism)
    base = Path(out)
    truth: dict[int, list[dict[str, Any]]] = {}
    for k, (rel, e, ft, members) in zip(numbers, chunk, strict=True):
        if members:
            write_file(base / rel, products.association(e.asn_id, members, ft))
        elif ft == "trl":
            write_file(base / rel, products.trailer(e))
        else:
            hdus, rows = _file_hdus(e, ft, inst, pixels)
            write_file(base / rel, hdus)
            if rows:
                truth[k] = rows
    return len(chunk), truth


def _check_out(out: Path, pixels: str, realism: str = "on-orbit") -> None:
    """Refuse a bad pixel mode or realism, and an ``out`` that is a file or a folder of something else."""
    if pixels not in PIXEL_MODES:
        raise GeneratorError(f"--pixels must be one of {', '.join(PIXEL_MODES)}, not {pixels!r}")
    if realism not in REALISM:
        raise GeneratorError(f"--realism must be one of {', '.join(REALISM)}, not {realism!r}")
    if out.exists() and not out.is_dir():
        raise GeneratorError(f"{out} exists and is not a directory; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / ".quicklake-archive").exists():
        raise GeneratorError(
            f"{out} is a non-empty directory that is not a generated archive; choose an empty or new --out"
        )


def _mark_archive(out: Path, datasets: int, seed: int, pixels: str, realism: str) -> None:
    """Create ``out`` with its marker file (which lets a later run rewrite it)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / ".quicklake-archive").write_text(
            f"generated by quicklake: datasets={datasets} seed={seed} pixels={pixels} realism={realism}\n"
        )
    except OSError as err:
        raise GeneratorError(f"cannot write to {out}: {err.strerror}") from None


def _archive_files(exps: list[Exposure], layout: Layout) -> list[tuple[str, Exposure, str, list[Exposure]]]:
    """(relative path, exposure, file type, association members) of every file: exposures' files, then
    association tables (members empty for the former)."""
    files: list[tuple[str, Exposure, str, list[Exposure]]] = [
        (rel, e, ft, []) for rel, e, ft in iter_files(exps, layout)
    ]
    files += [
        (layout.path(prop, root, ft), members[0], ft, members)
        for prop, root, ft, members in products.association_files(exps)
    ]
    return files


def _write_files(
    out: Path,
    files: list[tuple[str, Exposure, str, list[Exposure]]],
    seed: int,
    pixels: str,
    scheduler: str,
    workers: int,
    progress: Callable[[int, int], None] | None,
    realism: str = "on-orbit",
) -> list[dict[str, Any]]:
    """Write every file, in chunks on ``scheduler``; returns the truth rows in file order."""
    dirs = sorted({(out / rel).parent for rel, _e, _ft, _m in files})
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    n_chunks = max(1, min(len(files) // CHUNK_MIN, 8 * max(1, workers or os.cpu_count() or 1)))
    # interleaved, so that each chunk holds its share of the heavy files (darks and flats are contiguous)
    tasks = [(i, str(out), seed, pixels, list(range(i, len(files), n_chunks)), files[i::n_chunks], realism)
             for i in range(n_chunks)]  # fmt: skip
    if len(files) < PARALLEL_MIN:  # a cluster takes seconds to start: small archives are written here
        scheduler = "synchronous"
    per_file: dict[int, list[dict[str, Any]]] = {}
    done = 0
    with Executor(scheduler, workers) as ex:
        for group in ex.map(_write_chunk, tasks, name="generate"):
            for n, rows in group:
                per_file.update(rows)
                done += n
                if progress:
                    progress(done, len(files))
    truth: list[dict[str, Any]] = []
    for i in sorted(per_file):  # truth in file order, however the chunks were scheduled
        truth += per_file[i]
    return truth


def _write_truth(out: Path, inst: Instrument, exps: list[Exposure], truth: list[dict[str, Any]]) -> None:
    """The truth table: the files' rows, then the bowtie flats' and the instrument's own features."""
    import pyarrow.parquet as pq

    truth = truth + [
        {
            "feature": "bowtie",
            "detector": "UVIS",
            "rootname": e.rootname,
            "start_mjd": e.expstart,
            "value": px.hysteresis(inst, e),
            "note": f"hysteresis amplitude of a visit's first flat; limit {inst.BOWTIE_LIMIT}",
        }
        for e in exps
        if e.proposid == BOWTIE_PROGRAM and e.values.get("BOWTIE_STEP") == "first"
    ]
    filters = [e.filter for e in exps if e.targname in {"GRW+70D5824", "GD153"}]
    tmp = out / (TRUTH_FILE + ".part")
    pq.write_table(inst.truth(truth, filters), tmp)
    os.replace(tmp, out / TRUTH_FILE)


def generate(
    out: str | Path,
    datasets: int = 300,
    seed: int = 1,
    layout: Layout | None = None,
    pixels: str = "none",
    progress: Callable[[int, int], None] | None = None,
    scheduler: str = "synchronous",
    workers: int = 0,
    realism: str = "on-orbit",
) -> int:
    """Write the archive under ``out``; returns the number of files. Existing files are rewritten.

    Files are written in chunks on ``scheduler`` (``synchronous``: here; ``local``: a Dask LocalCluster
    of ``workers`` processes, default one per core; or a Dask scheduler address whose workers see
    ``out``). The bytes do not depend on where or in which order the chunks run.

    ``pixels``: ``none`` (headers only, data are holes), ``sparse`` (pixels only in the rows and files
    the monitors read) or ``full``. ``realism``: ``on-orbit`` (cosmic rays in every simulated UVIS
    exposure, at the on-orbit rate) or ``clean`` (none). The injected features go to
    ``out/quicklake_truth.parquet``.
    ``progress(files_done, files_total)`` is called as files are written.
    """
    out = Path(out)
    layout = layout or Layout()
    _check_out(out, pixels, realism)
    exps = plan(datasets, seed)
    _mark_archive(out, datasets, seed, pixels, realism)
    inst = _instrument(seed, realism)
    files = _archive_files(exps, layout)
    truth = _write_files(out, files, seed, pixels, scheduler, workers, progress, realism)
    _set_permissions(out, exps, _write_proposals(out, exps, seed))
    _write_anneals(out, inst)
    _write_truth(out, inst, exps, truth)
    return len(files)
