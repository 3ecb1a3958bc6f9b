"""What a WFC3 analyst checks in a header: target positions, pointing and WCS, photometry per filter, IR
sample sequences, calibration switches and the date a file was written (#17).

Values are approximate but consistent with each other, so that a header passes the rules drawn from the
real files in tests/data/real (tests/test_headers_consistency.py)."""

from __future__ import annotations

import math
from typing import Any

# J2000 (ICRS) positions of the named targets, degrees, rounded from SIMBAD.
TARGETS: dict[str, tuple[float, float]] = {
    "NGC4485": (187.633, 41.693),
    "NGC628": (24.174, 15.784),
    "NGC5194": (202.470, 47.195),
    "NGC3351": (160.991, 11.704),
    "NGC4258": (184.740, 47.304),
    "NGC1300": (49.921, -19.412),
    "M101": (210.802, 54.349),
    "NGC6946": (308.718, 60.154),
    "GRW+70D5824": (204.710, 70.285),
    "GD153": (194.260, 22.031),
    "GD71": (88.115, 15.887),
    "P330E": (247.891, 30.146),
}

# Photometry per filter: (PHOTPLAM Angstrom, PHOTBW Angstrom, PHOTFLAM erg/cm2/s/A per e-/s), approximate
# values of the WFC3 Instrument Handbook and the STScI UVIS/IR zero-point tables (UVIS1 for UVIS; UVIS2
# is scaled by UVIS2_RATIO, the real files' PHTRATIO). BLANK (IR darks) has no throughput.
PHOT: dict[str, tuple[float, float, float]] = {
    "F225W": (2372.0, 179.0, 4.63e-18),
    "F275W": (2710.0, 165.0, 3.31e-18),
    "F336W": (3355.0, 158.0, 1.30e-18),
    "F438W": (4326.0, 197.0, 6.74e-19),
    "F475W": (4773.0, 421.0, 2.50e-19),
    "F555W": (5308.0, 517.0, 1.84e-19),
    "F606W": (5889.0, 660.0, 1.10e-19),
    "F625W": (6242.0, 463.0, 1.47e-19),
    "F814W": (8040.0, 663.0, 1.50e-19),
    "F658N": (6584.0, 28.0, 1.97e-18),
    "F098M": (9864.0, 470.0, 6.05e-20),
    "F105W": (10552.0, 865.0, 3.04e-20),
    "F110W": (11534.0, 1428.0, 1.53e-20),
    "F125W": (12486.0, 866.0, 2.25e-20),
    "F140W": (13923.0, 1132.0, 1.47e-20),
    "F160W": (15369.0, 826.0, 1.93e-20),
    "F126N": (12585.0, 339.0, 4.97e-19),
    "F130N": (13012.0, 374.0, 4.23e-19),
    "G102": (9989.0, 1000.0, 2.60e-19),
    "G141": (13886.0, 1400.0, 1.33e-19),
    "BLANK": (0.0, 0.0, 0.0),
}
UVIS2_RATIO = 1.0105

PLATE_SCALE = {"UVIS": 0.0396, "IR": 0.1283}  # arcsec per pixel
CHIP_OFFSET = 1025 * 0.0396  # arcsec from the UVIS aperture reference to each chip's centre, along y
V3_TO_ORIENTAT = 44.7  # degrees, ORIENTAT - PA_V3 in the real flc and flt

# IR MULTIACCUM sample sequences, times (s) of reads 0..15 (WFC3 Instrument Handbook, IR sample
# sequences; rounded): RAPID reads every 2.932 s, SPARSn reads 2.932 s after the zeroth read and then
# every n s, STEPn reads rapidly, then doubles its step up to n s.
RAPID_STEP = 2.932
_STEP_HEAD = [0.0, 2.932, 5.865, 8.797, 11.729, 24.230, 49.230, 99.230, 199.230, 399.230]


def sample_times(samp_seq: str, nsamp: int) -> list[float]:
    """Times (s) of the reads of an IR exposure, zeroth read first; the last is EXPTIME."""
    if samp_seq.startswith("SPARS"):
        step = float(samp_seq[5:])
        times = [0.0, RAPID_STEP] + [RAPID_STEP + step * k for k in range(1, 15)]
    elif samp_seq.startswith("STEP"):
        step = float(samp_seq[4:])
        head = [t for t in _STEP_HEAD if t < step]
        times = head + [head[-1] + step * k for k in range(1, 17)]
    else:  # RAPID
        times = [RAPID_STEP * k for k in range(16)]
    return [round(t, 3) for t in times[: max(nsamp, 1)]]


def ir_exptime(samp_seq: str, nsamp: int) -> float:
    return sample_times(samp_seq, nsamp)[-1]


def pa_v3(rootname: str) -> float:
    """The roll of a visit (all its exposures share it), deterministic from the rootname."""
    return (int(rootname[1:6], 36) * 7919) % 36000 / 100.0


def offset(ra: float, dec: float, east: float, north: float) -> tuple[float, float]:
    """(RA, Dec) moved by ``east``/``north`` arcseconds on the sky (small offsets)."""
    dra = east / 3600.0 / max(math.cos(math.radians(dec)), 1e-6)
    return (ra + dra) % 360.0, dec + north / 3600.0


def wcs_values(
    detector: str, ra: float, dec: float, orientat: float, chip_dy: float, keys: set[str]
) -> dict[str, Any]:
    """CRVAL/CD/ORIENTAT of one image HDU whose reference pixel lies ``chip_dy`` arcsec along the image y
    axis from the pointing (``ra``, ``dec``). Alternate WCSs (suffix A, B, O) get the same solution.
    Only ``keys`` present in the template are returned: a template sets which cards a file has."""
    th = math.radians(orientat)
    s = PLATE_SCALE[detector] / 3600.0
    # the image +y axis points at position angle ORIENTAT (east of north)
    c1, c2 = offset(ra, dec, chip_dy * math.sin(th), chip_dy * math.cos(th))
    cd = {
        "CD1_1": -s * math.cos(th),
        "CD1_2": s * math.sin(th),
        "CD2_1": s * math.sin(th),
        "CD2_2": s * math.cos(th),
    }
    base: dict[str, float] = {"CRVAL1": c1, "CRVAL2": c2, **cd}
    out: dict[str, Any] = {}
    for suffix in ("", "A", "B", "O"):
        for k, v in base.items():
            if k + suffix in keys:
                out[k + suffix] = round(v, 10 if k.startswith("CRVAL") else 14)
    for k, v in {"ORIENTAT": orientat, "PA_APER": orientat, "RA_APER": ra, "DEC_APER": dec}.items():
        if k in keys:
            out[k] = round(v, 8)
    return out


def phot_values(detector: str, filt: str, chip: int, expstart: float) -> dict[str, Any]:
    """PHOTMODE/PHOTFLAM/PHOTPLAM/PHOTBW/PHOTFNU of a filter (and UVIS chip)."""
    plam, bw, flam = PHOT.get(filt, PHOT["BLANK"])
    if detector == "UVIS":
        mode = f"WFC3 UVIS{chip} {filt} MJD#{expstart:.4f}"
        flam *= UVIS2_RATIO if chip == 2 else 1.0
    else:
        mode = f"WFC3 IR {filt}"
    fnu = 3.33564e4 * plam**2 * flam  # f_nu [Jy] = 3.34e4 lambda^2 f_lambda
    return {
        "PHOTMODE": mode,
        "PHOTFLAM": float(f"{flam:.7e}"),
        "PHOTPLAM": float(f"{plam:.7e}"),
        "PHOTBW": float(f"{bw:.7e}"),
        "PHOTFNU": float(f"{fnu:.7e}"),
    }


def raw_switch(value: str) -> str:
    """A raw file's calibration switch: the pipeline has not run yet, so steps are to PERFORM or OMIT."""
    return "OMIT" if value == "OMIT" else "PERFORM"


def written_mjd(expend: float, rootname: str) -> float:
    """When the archive wrote a file: 1-7 days after the exposure ended (pipeline and archive latency)."""
    return expend + 1.0 + int(rootname[6:8], 36) % 7
