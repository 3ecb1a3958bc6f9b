"""Simulated WFC3 pixels with true geometry, levels and the planted features of
:mod:`ingest.archivegen.features`.

UVIS raw chips are 4206 x 2070 DN (serial prescan, two image halves, virtual overscan between them,
19 parallel-overscan rows on the chip-gap side); flt/flc chips are the 4096 x 2051 image area in e-.
IR raw/ima are 1024 x 1024 with the 5-px reference border, reads newest first; flt is the trimmed
1014 x 1014 slope in e-/s. Per-amp bias, gain and read noise, dark current, flat level, sky and stars
follow ``docs/background/wfc3-monitors.md`` §0.

:func:`render` returns, per HDU index, blocks of whole rows (first row, array in FITS byte order). In
``sparse`` mode only the rows monitors read are rendered
(:data:`ingest.archivegen.features.UVIS_BANDS` etc.) and
only for the files they read; the rest of the file stays a hole, i.e. zeros, which in a raw file can be
told from data (a real raw pixel is never 0 DN: the bias alone is ~2,500 DN).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest.archivegen import cosmics, flatfield
from ingest.archivegen import observatory as obs
from ingest.archivegen.features import (
    IR_BANDS,
    IR_QUADS,
    IR_SATURATION,
    UVIS_AMPS,
    UVIS_BANDS,
    UVIS_EPER_ROWS,
    UVIS_FULL_WELL,
    Instrument,
    quadrant_of,
)

if TYPE_CHECKING:
    from ingest.archivegen.generate import Exposure

UVIS_RAW_SHAPE = (2070, 4206)
UVIS_FLT_SHAPE = (2051, 4096)
UVIS_READ_NOISE = 3.15  # e-
IR_SHAPE = (1024, 1024)
IR_READ_NOISE = 20.5  # e- per read pair
IR_DARK = 0.048  # e-/s
FLAT_RATE = 40.0  # e-/s of the UVIS tungsten lamp
IR_FLAT_RATE = 40.0  # e-/s of the IR lamp flats: below saturation at the longest exposure
STAR_RATE = 2.0e5  # e-/s of a standard star in every filter at the reference epoch
STAR_POS = (1000.0, 288.0)  # x, y of the standard star (flt, chip 2), inside the first band

Blocks = dict[int, list[tuple[int, np.ndarray]]]


def _runs(rows: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous runs (start, stop) of sorted row indices."""
    if not len(rows):
        return []
    cut = np.flatnonzero(np.diff(rows) != 1) + 1
    return [(int(r[0]), int(r[-1]) + 1) for r in np.split(rows, cut)]


def _uvis_image_rows(chip: int, mode: str, eper: bool = True) -> np.ndarray:
    """Image rows simulated: all (full) or the bands, plus the rows next to the parallel overscan that
    EPER reads (not for darks, whose monitors read the bands alone: a superdark needs many frames)."""
    if mode == "full":
        return np.arange(UVIS_FLT_SHAPE[0])
    bands = [np.arange(a, b) for a, b in UVIS_BANDS]
    if not eper:
        return np.concatenate(bands)
    last = np.arange(UVIS_EPER_ROWS) if chip == 1 else np.arange(2051 - UVIS_EPER_ROWS, 2051)
    return np.unique(np.concatenate([*bands, last]))


def _raw_row(chip: int, y: np.ndarray) -> np.ndarray:
    return y + 19 if chip == 1 else y


def _raw_col(x: np.ndarray) -> np.ndarray:
    return np.where(x < 2048, x + 25, x + 85)


def uvis_electrons(
    inst: Instrument, e: Exposure, chip: int, rows: np.ndarray, rng: np.random.Generator
) -> Any:
    """Collected charge (e-) in the image rows ``rows`` of a chip, before readout."""
    shape = (len(rows), UVIS_FLT_SHAPE[1])
    hours = e.exptime / 3600.0
    if e.imagetyp == "DARK":
        mean = np.full(shape, inst.dark_rate(e.expstart) * hours + inst.flash_level(e.imagetyp, e.expstart))
        hx, hy, hr = inst.hot_pixels_at(chip, e.expstart)
        pos = {int(r): i for i, r in enumerate(rows)}
        for x, y, r in zip(hx, hy, hr, strict=True):
            i = pos.get(int(y))
            if i is not None:
                mean[i, x] += r * hours
    elif e.imagetyp == "FLAT":
        mean = _uvis_flat(inst, e, chip, rows)
    else:
        mean = np.full(shape, 8.0 * e.exptime / 100)  # sky
        if e.targname in {"GRW+70D5824", "GD153"} and chip == 2:
            rate = STAR_RATE * (1 + inst.photometric_decline(e.filter) * _years(e.expstart))
            mean += _psf(rows, shape[1], STAR_POS, 1.4) * rate * e.exptime
    charge = rng.poisson(np.clip(mean, 0, None)).astype(np.float64)
    if inst.realism == "on-orbit" and e.exptime > 0:
        ri, cx, q, _t = cosmic_rays(inst, e, chip, rows)
        np.add.at(charge, (ri, cx), q)  # no full-well cap: a bright star's flt keeps its charge
    if e.imagetyp == "FLAT":  # a saturating flat (the bowtie visits') fills every well
        np.minimum(charge, UVIS_FULL_WELL, out=charge)
    return charge


def hysteresis(inst: Instrument, e: Exposure) -> float:
    """The QE-hysteresis (bowtie) amplitude of a flat: only the first flat of a bowtie visit can show
    it; the saturating flat after it resets the detector, so the repeat flat is stable."""
    if e.values.get("BOWTIE_STEP", "first") != "first":
        return 0.0
    return inst.bowtie(e.rootname, e.proposid)


def _uvis_flat(inst: Instrument, e: Exposure, chip: int, rows: np.ndarray) -> Any:
    """Mean charge (e-) of a tungsten-lamp flat on ``rows`` of a chip: a smooth pattern of the lamp and,
    on orbit, the P-flat and the lamp's fall-off and drift (:mod:`ingest.archivegen.flatfield`)."""
    ncols = UVIS_FLT_SHAPE[1]
    xs = np.linspace(-1, 1, ncols)
    ys = (rows / 2050.0 * 2 - 1)[:, None]
    mean = FLAT_RATE * e.exptime * (1 + 0.01 * xs[None, :] * ys)
    amp = hysteresis(inst, e)
    if amp:
        mean *= 1 + amp * inst.bowtie_pattern(rows, ncols)
    if inst.realism == "on-orbit":
        mean *= flatfield.pflat(inst.seed, "UVIS", chip, e.filter or "", rows, ncols)
        mean *= flatfield.uvis_lamp(inst.seed, e.rootname, chip, rows, ncols, _years(e.expstart))
    return mean


def cosmic_rays(
    inst: Instrument, e: Exposure, chip: int, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(index into ``rows``, column, e-, track) of the cosmic rays of one chip of an exposure, from a
    stream of their own: the exposure's raw, flt and flc show the same hits, and a clean archive differs
    from an on-orbit one by them alone."""
    rng = np.random.default_rng([inst.seed, 8101, chip, *e.rootname.encode()])
    return cosmics.deposit(cosmics.tracks(rng, e.exptime, rows), rows)


def _cosmic_truth(inst: Instrument, e: Exposure, chip: int, mode: str) -> dict[str, Any]:
    """The cosmic rays of one chip of a raw: tracks with charge in the simulated rows, and pixels given
    more than 20 e- (a test's view of them; no monitor reads it)."""
    rows = _uvis_image_rows(chip, mode, eper=e.imagetyp != "DARK")
    i, x, q, t = cosmic_rays(inst, e, chip, rows)
    img = np.zeros((len(rows), UVIS_FLT_SHAPE[1]))
    np.add.at(img, (i, x), q)
    return {
        "feature": "cosmic_rays",
        "detector": "UVIS",
        "rootname": e.rootname,
        "chip": chip,
        "value": float(len(np.unique(t))),
        "size": float((img > 20).sum()),
        "start_mjd": e.expstart,
        "note": f"tracks reaching the {len(rows)} simulated image rows; size: pixels > 20 e-",
    }


def add_cte_trails(inst: Instrument, e: Exposure, chip: int, rows: np.ndarray, charge: np.ndarray) -> None:
    """Parallel CTE on the hot pixels of a dark: part of each one's charge trails into the pixels read
    after it (farther from the amp: rows above it on UVIS2, below it on UVIS1), exponentially."""
    hx, hy, _rate = inst.hot_pixels_at(chip, e.expstart)
    where = {int(r): i for i, r in enumerate(rows)}
    for x, y in zip(hx, hy, strict=True):
        i = where.get(int(y))
        if i is None:
            continue
        q = charge[i, x]
        transfers = (y + 1) if chip == 2 else (2051 - y)
        d = q * float(inst.cte_fraction(e.expstart, np.array([q]), np.array([transfers]))[0])
        charge[i, x] -= d
        step = 1 if chip == 2 else -1
        for k in range(1, inst.TRAIL_ROWS + 1):
            j = where.get(int(y) + step * k)
            if j is not None:
                charge[j, x] += d * (1 - np.exp(-1 / inst.TRAIL_TAU)) * np.exp(-(k - 1) / inst.TRAIL_TAU)


def _years(mjd: float) -> float:
    from ingest.archivegen.features import years_since_2009

    return float(years_since_2009(mjd))


def _psf(rows: np.ndarray, ncols: int, xy: tuple[float, float], sigma: float) -> Any:
    x0, y0 = xy
    xs = np.arange(ncols)
    g = np.exp(-0.5 * ((rows[:, None] - y0) ** 2 + (xs[None, :] - x0) ** 2) / sigma**2)
    return g / (2 * np.pi * sigma**2)


def uvis_raw(
    inst: Instrument, e: Exposure, chip: int, mode: str, rng: np.random.Generator
) -> list[tuple[int, Any]]:
    """Raw DN rows of one chip (bias and read noise everywhere; signal in the image area; EPER trail)."""
    dark = e.imagetyp == "DARK"
    img_rows = _uvis_image_rows(chip, mode, eper=not dark)
    charge = uvis_electrons(inst, e, chip, img_rows, rng)
    if dark:
        add_cte_trails(inst, e, chip, img_rows, charge)
    over = np.arange(2051, 2070) if chip == 2 else np.arange(0, 19)
    if dark and mode != "full":
        over = over[:0]
    raw_rows = np.unique(np.concatenate([_raw_row(chip, img_rows), over]))
    out = np.zeros((len(raw_rows), UVIS_RAW_SHAPE[1]))
    where = {int(r): i for i, r in enumerate(raw_rows)}
    ri = np.array([where[int(r)] for r in _raw_row(chip, img_rows)])
    left_amp, right_amp = UVIS_AMPS[chip]
    cols = _raw_col(np.arange(4096))
    g = np.where(np.arange(4096) < 2048, inst.uvis_gain[left_amp], inst.uvis_gain[right_amp])
    out[np.ix_(ri, cols)] = charge / g[None, :]
    if e.imagetyp == "FLAT":
        # EPER: charge deferred from the last (farthest) image row trails into the parallel overscan
        last = 2050 if chip == 2 else 0
        if last in set(img_rows.tolist()):
            s = charge[list(img_rows).index(last)]
            deferred = s * inst.cte_loss(e.expstart, np.maximum(s, 1.0)) * inst.N_PARALLEL
            tau = 1.5
            order = over if chip == 2 else over[::-1]
            for k, r in enumerate(order):
                frac = (1 - np.exp(-1 / tau)) * np.exp(-k / tau)
                out[where[int(r)], cols] += rng.poisson(deferred * frac) / g
    half = UVIS_RAW_SHAPE[1] // 2
    for side, amp in ((slice(0, half), left_amp), (slice(half, None), right_amp)):
        bias = inst.uvis_bias[amp]
        out[:, side] += bias + rng.normal(0, UVIS_READ_NOISE / inst.uvis_gain[amp], out[:, side].shape)
    dn = np.clip(np.round(out), 1, 65535)
    return [(a, _fits_u16(dn[where[a] : where[a] + (b - a)])) for a, b in _runs(raw_rows)]


def uvis_flt(
    inst: Instrument, e: Exposure, chip: int, mode: str, rng: np.random.Generator, cte_corrected: bool = False
) -> list[tuple[int, Any]]:
    """Calibrated e- rows of one chip (bias removed, gain applied; read noise kept)."""
    rows = _uvis_image_rows(chip, mode, eper=e.imagetyp != "DARK")
    charge = uvis_electrons(inst, e, chip, rows, rng)
    if e.imagetyp == "DARK" and not cte_corrected:  # flc is the CTE-corrected product: no trails
        add_cte_trails(inst, e, chip, rows, charge)
    charge += rng.normal(0, UVIS_READ_NOISE, (len(rows), 4096))
    start = 0
    out = []
    for a, b in _runs(rows):
        out.append((a, charge[start : start + (b - a)].astype(">f4")))
        start += b - a
    return out


def _fits_u16(dn: np.ndarray) -> Any:
    """Unsigned 16-bit DN as FITS stores them: signed with BZERO = 32768, big-endian."""
    return (dn.astype(np.int64) - 32768).astype(">i2")


# ---------------------------------------------------------------------------------------------- IR


def ir_rows(mode: str) -> np.ndarray:
    return np.arange(1024) if mode == "full" else np.concatenate([np.arange(a, b) for a, b in IR_BANDS])


def read_times(e: Exposure, nsamp: int) -> np.ndarray:
    """Times of the reads (s), zeroth read first: the exposure's sample sequence (the last read at
    EXPTIME), or evenly spaced for an exposure planned without one."""
    if e.samp_seq and nsamp > 1 and obs.ir_exptime(e.samp_seq, nsamp) == e.exptime:
        return np.array(obs.sample_times(e.samp_seq, nsamp))
    return np.linspace(0.0, e.exptime, nsamp)


def ir_ramp(
    inst: Instrument, e: Exposure, nsamp: int, rows: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]], np.ndarray]:
    """Cumulative e- per read (nsamp, rows, 1024; saturating), per-pixel gain, the snowballs planted, and
    the unsaturated fluence over the exposure."""
    t = read_times(e, nsamp)
    shape = (len(rows), 1024)
    if e.imagetyp == "FLAT":
        rate = np.full(shape, IR_FLAT_RATE)
        for bx, by, br, depth in inst.blobs_at(e.expstart):
            ri = np.flatnonzero(np.abs(rows - by) <= br + 1)  # only the pixels it covers
            cx = np.arange(max(int(bx - br) - 1, 0), min(int(bx + br) + 2, 1024))
            r2 = ((rows[ri, None] - by) ** 2 + (cx[None, :] - bx) ** 2) / br**2
            rate[np.ix_(ri, cx)] *= 1 - depth * np.clip(1 - r2, 0, None)
        if inst.realism == "on-orbit":
            rate *= flatfield.pflat(inst.seed, "IR", 1, e.filter or "", rows, 1024)
            rate *= flatfield.ir_lamp(e.filter or "", rows)
    elif e.imagetyp == "DARK":
        rate = np.full(shape, IR_DARK)
    else:
        rate = np.full(shape, 1.5)  # sky
        stim = e.values.get("STIMULUS")
        if stim:  # persistence from the bad actor 1-4 hours before (its exposure is rebuilt exactly)
            rate += persistence_map(inst, e, stim, rows)
        planted = inst.bad_actor(e.rootname) if e.detector == "IR" and not stim else None
        if planted:  # bright sources at known multiples of saturation, in the first band's rows
            flu = bad_actor_fluence(inst, e.rootname, rows)
            rate = np.where(flu > 0, flu / e.exptime, rate)
    border = np.zeros(shape, bool)  # reference pixels see no light
    border[:, :5] = border[:, -5:] = True
    border[(rows < 5) | (rows >= 1019)] = True
    rate[border] = 0
    steps = np.diff(t)
    cum = np.zeros((nsamp, *shape))
    for k, dt in enumerate(steps, start=1):
        cum[k] = cum[k - 1] + rng.poisson(rate * dt)
    snowballs: list[dict[str, Any]] = []
    if e.imagetyp == "DARK" and nsamp > 1:
        n = rng.poisson(0.6 * e.exptime / 3600.0)
        band_rows = rows[(rows >= 20) & (rows < 1004)]
        for _ in range(n):
            y0 = float(rng.choice(band_rows)) if len(band_rows) else 512.0
            y0 = _inside_band(y0, rows)
            x0 = float(rng.uniform(20, 1004))
            radius = float(rng.uniform(2.0, 3.5))
            energy = float(rng.uniform(2e5, 9e5))
            k = int(rng.integers(1, nsamp))  # lands between read k-1 and read k
            prof = np.exp(
                -0.5 * ((rows[:, None] - y0) ** 2 + (np.arange(1024)[None, :] - x0) ** 2) / (radius / 2) ** 2
            )
            dep = energy * prof / prof.sum() if prof.sum() else prof
            cum[k:] += np.minimum(dep, IR_SATURATION)[None]
            snowballs.append(
                {
                    "feature": "snowball",
                    "detector": "IR",
                    "rootname": e.rootname,
                    "x": x0 - 5,
                    "y": y0 - 5,
                    "size": round(radius, 3),
                    "value": round(energy, 1),
                    "read": int(nsamp - k),
                    "start_mjd": e.expstart + t[k] / 86400.0,
                    "note": "flt coordinates; read = IMSET (1 = last)",
                }
            )
    fluence = cum[-1] - cum[0]  # what calwf3's up-the-ramp fit recovers from the unsaturated reads
    cum = np.minimum(cum, IR_SATURATION * 1.1)
    quad = quadrant_of(np.arange(1024)[None, :].repeat(len(rows), 0), rows[:, None].repeat(1024, 1))
    gain = np.array([inst.ir_gain[q] for q in IR_QUADS])[quad]
    return cum, gain, snowballs, fluence


def _inside_band(y: float, rows: np.ndarray) -> float:
    """Move a position so that a snowball's core lies in rendered rows, 6 px from a band edge."""
    lo = rows[rows <= y].min(initial=rows.min())
    runs = _runs(rows)
    for a, b in runs:
        if a <= y < b:
            return float(np.clip(y, a + 6, b - 7))
    return float(lo)


@lru_cache(maxsize=2)
def _ir_pattern(seed: int) -> Any:
    """The fixed pattern of the IR raw reads (DN per pixel), drawn once per seed and process."""
    pattern = np.random.default_rng([seed, 9001]).normal(0, 15, IR_SHAPE)
    pattern.flags.writeable = False
    return pattern


def ir_raw_reads(
    inst: Instrument, e: Exposure, nsamp: int, rows: np.ndarray, rng: np.random.Generator
) -> tuple[Any, Any, list[dict[str, Any]], Any]:
    """(raw DN per read, zeroth first; cumulative e-; snowballs; unsaturated fluence)."""
    cum, gain, balls, fluence = ir_ramp(inst, e, nsamp, rows, rng)
    quad = quadrant_of(np.arange(1024)[None, :].repeat(len(rows), 0), rows[:, None].repeat(1024, 1))
    bias = np.array([inst.ir_bias(q, e.expstart) for q in IR_QUADS])[quad]
    dn = cum / gain[None] + bias[None] + _ir_pattern(inst.seed)[rows][None]
    dn += rng.normal(0, IR_READ_NOISE / np.sqrt(2) / gain[None], dn.shape)
    return np.clip(np.round(dn), 1, 65535), cum, balls, fluence


def blocks_of(rows: np.ndarray, arr: np.ndarray, dtype: str, offset: int = 0) -> list[tuple[int, Any]]:
    out = []
    start = 0
    for a, b in _runs(rows):
        out.append((a - offset, arr[start : start + (b - a)].astype(dtype)))
        start += b - a
    return out


def _render_uvis(
    inst: Instrument,
    e: Exposure,
    filetype: str,
    hdus: list[tuple[str, int]],
    mode: str,
    rng: np.random.Generator,
) -> tuple[Blocks, list[dict[str, Any]]]:
    """UVIS pixel blocks: raw darks and flats, and standard-star flt/flc (UVIS2 only when sparse); and the
    cosmic-ray truth of a raw."""
    blocks: Blocks = {}
    truth: list[dict[str, Any]] = []
    calib = e.imagetyp in {"DARK", "FLAT"}
    star = e.targname in {"GRW+70D5824", "GD153"}
    wanted = mode == "full" or (filetype == "raw" and calib) or (filetype in {"flt", "flc"} and star)
    if not wanted or filetype == "spt":
        return blocks, truth
    for k, (name, ver) in enumerate(hdus):
        if name != "SCI":
            continue
        chip = 2 if ver == 1 else 1  # SCI,1 is UVIS2
        if mode == "sparse" and star and chip == 1:
            continue
        if filetype == "raw":
            blocks[k] = uvis_raw(inst, e, chip, mode, rng)
            if inst.realism == "on-orbit":
                truth.append(_cosmic_truth(inst, e, chip, mode))
        else:
            blocks[k] = uvis_flt(inst, e, chip, mode, rng, cte_corrected=filetype == "flc")
    return blocks, truth


def _ir_flt_truth(inst: Instrument, e: Exposure, flu: np.ndarray) -> list[dict[str, Any]]:
    """Truth rows of an IR flt: its bad-actor fractions, and the persistence it sees from one."""
    extra = [_bad_actor_truth(e, flu)] if inst.bad_actor(e.rootname) and e.imagetyp == "EXT" else []
    extra += [_persistence_truth(inst, e)] if e.values.get("STIMULUS") else []
    return extra


def _render_ir(
    inst: Instrument,
    e: Exposure,
    filetype: str,
    hdus: list[tuple[str, int]],
    mode: str,
    rng: np.random.Generator,
) -> tuple[Blocks, list[dict[str, Any]]]:
    """IR pixel blocks (raw/ima of darks and flats, every flt) and truth rows (snowballs, bad actors)."""
    blocks: Blocks = {}
    wanted = (
        mode == "full"
        or (e.imagetyp in {"DARK", "FLAT"} and filetype in {"raw", "ima"})
        or (filetype == "flt" and e.imagetyp != "DARK")  # flats (blobs) and science (bad actors, persistence)
    )
    if not wanted or filetype == "spt":
        return blocks, []
    nsamp = max(1, sum(1 for n, _ in hdus if n == "SCI")) if filetype != "flt" else max(e.nsamp, 2)
    # a flat's flt is full frame in sparse mode too: ir-blobs sees the whole array's illumination
    rows = ir_rows("full" if e.imagetyp == "FLAT" and filetype == "flt" else mode)
    if filetype == "raw":
        dn, cum, extra, fluence = ir_raw_reads(inst, e, nsamp, rows, rng)
    else:  # the same charge (the ramp's draws come first); only a raw needs the DN and their noise
        dn = None
        cum, _gain, extra, fluence = ir_ramp(inst, e, nsamp, rows, rng)
    t = read_times(e, nsamp)
    for k, (name, ver) in enumerate(hdus):
        if name != "SCI":
            continue
        if filetype == "flt":
            keep = (rows >= 5) & (rows < 1019)
            flu = fluence[keep][:, 5:1019]
            blocks[k] = blocks_of(rows[keep], flu / max(e.exptime, 1e-3), ">f4", offset=5)
            extra = _ir_flt_truth(inst, e, flu)
            continue
        read = nsamp - ver  # IMSET ver holds read index nsamp - ver (newest first)
        if dn is not None:
            blocks[k] = blocks_of(rows, dn[read] - 32768, ">i2")
        else:  # ima: e-/s since the zeroth read
            rate = (cum[read] - cum[0]) / t[read] if read else np.zeros_like(cum[0])
            blocks[k] = blocks_of(rows, rate, ">f4")
    return blocks, extra if filetype in {"ima", "flt"} else []


def render(
    inst: Instrument, e: Exposure, filetype: str, hdus: list[tuple[str, int]], mode: str
) -> tuple[Blocks, list[dict[str, Any]]]:
    """Pixel blocks per HDU index of one file, and the per-exposure truth rows (snowballs).

    ``hdus`` lists (EXTNAME, EXTVER) per HDU. ``mode`` is full or sparse; sparse renders only the files
    monitors read (UVIS raw darks and flats, standard-star flt, IR raw/ima darks and flats, IR flt of
    flats and science exposures).
    """
    # one stream per exposure: its raw, flt, flc and ima files show the same charge
    rng = np.random.default_rng([inst.seed, *e.rootname.encode()])
    if e.imagetyp == "BIAS" or e.values.get("SUBARRAY"):
        return {}, []  # headers only: the pixel models are full-frame and no monitor reads these
    if e.detector == "UVIS":
        return _render_uvis(inst, e, filetype, hdus, mode, rng)
    return _render_ir(inst, e, filetype, hdus, mode, rng)


def bad_actor_fluence(inst: Instrument, rootname: str, rows: np.ndarray) -> np.ndarray:
    """The planted fluence (e-) of a bad actor's bright pixels (0 elsewhere, sky aside) on ``rows`` x 1024."""
    flu = np.zeros((len(rows), 1024))
    planted = inst.bad_actor(rootname) or {}
    band = np.flatnonzero((rows >= IR_BANDS[0][0] + 4) & (rows < IR_BANDS[0][1] - 4))
    cells = [(int(r), c) for c in range(20, 1000) for r in band]
    at = 0
    for multiple, n in planted.items():
        for r, c in cells[at : at + n]:
            flu[r, c] = multiple * IR_SATURATION
        at += n
    return flu


def persistence_map(inst: Instrument, e: Exposure, stim: str, rows: np.ndarray) -> Any:
    """Persistence (e-/s) in ``e`` from the stimulus exposure ``stim`` (which ended ``dt`` before)."""
    s = e.values["STIM_END"]
    dt = (e.expstart - s) * 86400.0 + e.exptime / 2.0
    return inst.persistence(bad_actor_fluence(inst, stim, rows), dt)


def _persistence_truth(inst: Instrument, e: Exposure) -> dict[str, Any]:
    """The persistence injected per stimulus level (e-/s), and the time since the stimulus ended."""
    import json

    dt = (e.expstart - e.values["STIM_END"]) * 86400.0 + e.exptime / 2.0
    levels = inst.bad_actor(e.values["STIMULUS"]) or {}
    per = {str(m): float(inst.persistence(np.array([m * IR_SATURATION]), dt)[0]) for m in levels}
    return {
        "feature": "persistence",
        "detector": "IR",
        "rootname": e.rootname,
        "value": max(per.values()),
        "note": json.dumps({"stimulus": e.values["STIMULUS"], "dt": dt, "per_level": per}),
    }


def _bad_actor_truth(e: Exposure, fluence: np.ndarray) -> dict[str, Any]:
    """The exact fractions of the flt's simulated pixels above 0.5, 1, 2, 5 and 10 x saturation."""
    import json

    fr = {str(m): float(np.mean(fluence > m * IR_SATURATION)) for m in (0.5, 1, 2, 5, 10)}
    return {
        "feature": "bad_actor",
        "detector": "IR",
        "rootname": e.rootname,
        "value": fr["1"],
        "note": json.dumps(fr),
    }


def rows_card(blocks: list[tuple[int, Any]]) -> str:
    """The QLROWS value of a sparse HDU: its simulated row ranges, e.g. '256:320,1024:1088'."""
    return ",".join(f"{a}:{a + len(arr)}" for a, arr in blocks)
