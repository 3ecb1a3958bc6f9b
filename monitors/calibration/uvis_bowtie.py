"""uvis-bowtie: UVIS QE hysteresis ("bowtie") from the bowtie programme's flat pairs.

docs/background/wfc3-monitors.md §5: each visit of the bowtie programme (PROPOSID 12688 or 17666) takes an
unsaturated internal flat, a heavily saturating one and a repeat of the first. A detector left in the
dark can show QE hysteresis in the first flat; the saturating exposure erases it, so the repeat is the
stable detector and the reference: the ratio first / repeat (each bias-subtracted per amp from its
prescan and converted to e-) keeps the hysteresis pattern and cancels what the two flats share, the
pixel-to-pixel flat and the lamp's fall-off across the chips.

What the lamp changed between the two exposures (brightness, a small tilt of its spot) is removed with
the amplitude in one fit: the log ratio is averaged (3-sigma clipped: cosmic rays) in blocks of
8 rows x 64 columns, and the blocks wholly inside or wholly outside the two opposite wedges
(|v| < |u| / 2 about each chip's centre) are fitted with a plane over the focal plane (UVIS1 ~35 px
above UVIS2, §0.1), one offset per chip and one wedge step per chip. The amplitude is exp(step) - 1,
with its 1-sigma error from the fit's residuals; a flat whose |amplitude| exceeds 0.5 % crosses the
threshold.

A visit's flats are measured together once its repeat flat is in; a visit without one is refused
(with the reason) once a later flat of the programme has begun half a day after its last.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from monitors.calibration.fitsdata import read_rows
from monitors.calibration.inputs import UVIS_RAW, check
from monitors.calibration.plotting import trend_png, vega_trend
from monitors.calibration.summary import Rows, percent
from monitors.calibration.uvis_darks import AMPS, clipped_mean
from monitors.framework import Monitor, Refused

LIMIT = 0.005
VISIT_DAYS = 0.5  # a visit lasts a couple of hours: a flat this long after its last is another visit's
BLOCK = (8, 64)  # rows, columns averaged before the fit
CLIP = 3.0
MIN_LEVEL_E = 100.0  # a flat with less lamp signal than this is not a flat
CHIP_GAP = 35  # px between UVIS2's last row and UVIS1's first (§0.1)

SCHEMA = pa.schema(
    [
        ("rootname", pa.string()),  # the visit's first flat
        ("expstart", pa.float64()),
        ("reference", pa.string()),  # the repeat flat the first is divided by
        ("chip", pa.int32()),
        ("amplitude", pa.float64()),
        ("amplitude_err", pa.float64()),
        ("level_e", pa.float64()),  # the first flat's median level
        ("blocks", pa.int64()),
        ("over_limit", pa.bool_()),
        ("inputs", pa.string()),  # the visit's flats' archive paths
    ]
)

SELECT = """
SELECT f.path, f.rootname, m.expstart, m.exptime, m.filter FROM files f JOIN master m USING (rootname)
WHERE f.filetype = 'raw' AND f.status = 'ok' AND m.detector = 'UVIS' AND m.imagetyp = 'FLAT'
  AND m.proposid IN (12688, 17666) ORDER BY m.expstart
"""


def wedges(rows: np.ndarray, ncols: int = 4096) -> np.ndarray:
    u = (np.arange(ncols) - (ncols - 1) / 2) / (ncols / 2)
    v = (np.asarray(rows, float) - 1025.0) / 1025.0
    return np.abs(v)[:, None] < 0.5 * np.abs(u)[None, :]


def pair(members: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(first, repeat) of a visit: its first flat and the last later flat of the same filter and
    exposure time with a longer (saturating) exposure between them; None without one."""
    first = members[0]
    key = (first.get("filter"), first.get("exptime"))
    found = None
    for i in range(2, len(members)):
        longer = any(float(m["exptime"] or 0) > float(first["exptime"] or 0) for m in members[1:i])
        if longer and (members[i].get("filter"), members[i].get("exptime")) == key:
            found = members[i]
    return (first, found) if found is not None else None


def visits(rows: list[dict[str, Any]], cfg: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The visits ready to measure, their flats in time order: those with a repeat flat, and those a
    later flat of the programme has closed (measure() refuses them)."""
    by: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: float(r["expstart"])):
        by.setdefault(r["rootname"][:6], []).append(r)
    latest = max((float(r["expstart"]) for r in rows), default=0.0)
    return [m for m in by.values() if pair(m) or latest > float(m[-1]["expstart"]) + VISIT_DAYS]


def _electrons(path: str, ext: int, chip: int, h: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(image rows, e- per image pixel) of one chip of a raw flat: bias from each amp's prescan."""
    rows, raw, _h = read_rows(path, ext)
    img_rows = rows - 19 if chip == 1 else rows
    keep = (img_rows >= 0) & (img_rows < 2051)
    raw = raw[keep]
    cols = np.r_[25:2073, 2133:4181]
    bias = [clipped_mean(raw[:, 2:24]), clipped_mean(raw[:, 4183:4204])]
    gain = [float(h.get(f"ATODGN{a}", 1.5)) for a in AMPS[chip]]
    amp = (np.arange(4096) >= 2048).astype(int)
    return img_rows[keep], (raw[:, cols] - np.array(bias)[amp]) * np.array(gain)[amp]


def _clipped_block_means(b: np.ndarray) -> np.ndarray:
    """Means over axes 1 and 3 of ``b`` after a CLIP-sigma cut about each block's median (MAD)."""
    med = np.median(b, axis=(1, 3), keepdims=True)
    mad = 1.4826 * np.median(np.abs(b - med), axis=(1, 3), keepdims=True)
    ok = np.abs(b - med) <= CLIP * np.maximum(mad, 1e-9)
    return np.asarray(np.sum(np.where(ok, b, 0.0), axis=(1, 3)) / np.maximum(ok.sum(axis=(1, 3)), 1))


def blocks(chip: int, rows: np.ndarray, logr: np.ndarray) -> np.ndarray:
    """Per block of the log ratio: (focal-plane x, y, wedge fraction, clipped mean), contiguous row runs
    apart (rows between them are not data)."""
    nr, nc = BLOCK
    out = []
    cut = np.flatnonzero(np.diff(rows) != 1) + 1
    for rr, part in zip(np.split(rows, cut), np.split(logr, cut), strict=True):
        n = len(rr) // nr
        if n == 0:
            continue
        rr, part = rr[: n * nr], part[: n * nr]
        mean = _clipped_block_means(part.reshape(n, nr, part.shape[1] // nc, nc)).ravel()
        frac = wedges(rr).reshape(n, nr, part.shape[1] // nc, nc).mean(axis=(1, 3)).ravel()
        y = rr.reshape(n, nr).mean(axis=1) + (0 if chip == 2 else 2051 + CHIP_GAP)
        x = (np.arange(part.shape[1] // nc) + 0.5) * nc - 0.5
        out.append(np.c_[np.tile(x, n), np.repeat(y, len(x)), frac, mean])
    return np.concatenate(out) if out else np.zeros((0, 4))


def fit(per_chip: dict[int, np.ndarray]) -> dict[int, tuple[float, float, int]]:
    """chip -> (amplitude, its 1-sigma error, blocks used): the wedge steps of a plane + per-chip offset
    + per-chip step least-squares fit to the blocks, twice, blocks beyond 4 sigma left out the second
    time."""
    # a chip needs blocks inside and outside the wedges (rows that miss them measure nothing)
    chips = sorted(c for c, v in per_chip.items() if (v[:, 2] == 0).any() and (v[:, 2] == 1).any())
    if not chips:
        return {}
    b = np.concatenate([per_chip[c] for c in chips])
    which = np.concatenate([np.full(len(per_chip[c]), c) for c in chips])
    pure = (b[:, 2] == 0) | (b[:, 2] == 1)
    b, which = b[pure], which[pure]
    cols = [which == c for c in chips] + [(b[:, 0] - 2048) / 2048, (b[:, 1] - 2086) / 2048]
    cols += [(which == c) * b[:, 2] for c in chips]
    x = np.column_stack(cols).astype(float)
    keep = np.ones(len(b), bool)
    for _ in range(2):
        coef, *_r = np.linalg.lstsq(x[keep], b[keep, 3], rcond=None)
        resid = b[:, 3] - x @ coef
        s = float(np.std(resid[keep], ddof=x.shape[1]))
        keep = np.abs(resid) <= 4 * s if s > 0 else keep
    cov = s**2 * np.linalg.pinv(x[keep].T @ x[keep])
    out = {}
    for k, c in enumerate(chips):
        j = len(chips) + 2 + k
        step, err = float(coef[j]), float(np.sqrt(cov[j, j]))
        n = int(((which == c) & keep).sum())
        out[c] = (float(np.expm1(step)), err * float(np.exp(step)), n)
    return out


def measure(path: str, row: dict[str, Any]) -> list[dict[str, Any]]:
    members = row.get("members") or [row]
    headers = [check(m["abs_path"], UVIS_RAW, imagetyp={"FLAT"}, exptime=True) for m in members]
    got = pair(members)
    if got is None:
        raise Refused(f"[0] visit {members[0]['rootname'][:6]} has no repeat flat (FILTER "
                      f"{members[0].get('filter')}, EXPTIME {members[0].get('exptime')}) after a longer, "
                      "saturating one: the bowtie is the ratio of the first flat to that repeat. If it is in "
                      "the archive under another visit, correct its header, ingest it and run the monitor "
                      "with rebuild")  # fmt: skip
    first, ref = got
    h1, h2 = headers[0], headers[next(i for i, m in enumerate(members) if m is ref)]
    per_chip, levels = {}, {}
    for ext, chip in ((1, 2), (4, 1)):
        per_chip[chip], levels[chip] = _ratio_blocks(ext, chip, (first, h1), (ref, h2))
    steps = fit(per_chip)
    return [
        {"rootname": first["rootname"], "expstart": float(first["expstart"]), "reference": ref["rootname"],
         "chip": chip, "amplitude": a, "amplitude_err": err, "level_e": levels[chip], "blocks": n,
         "over_limit": bool(abs(a) > LIMIT)}
        for chip, (a, err, n) in sorted(steps.items(), reverse=True)
    ]  # fmt: skip


Flat = tuple[dict[str, Any], dict[str, Any]]  # (input row, primary header)


def _ratio_blocks(ext: int, chip: int, first: Flat, ref: Flat) -> tuple[np.ndarray, float]:
    """The blocks of log(first / repeat) of one chip, and the first flat's median level (e-)."""
    (rows1, e1), (rows2, e2) = (_electrons(f[0]["abs_path"], ext, chip, f[1]) for f in (first, ref))
    if not np.array_equal(rows1, rows2):
        raise Refused(f"[SCI,{ext}] the first flat ({first[0]['rootname']}) and the repeat "
                      f"({ref[0]['rootname']}) hold different rows: rebuild once both are the archive's "
                      "original files")  # fmt: skip
    for (f, _h), e in ((first, e1), (ref, e2)):
        level = float(np.median(e))
        if not level > MIN_LEVEL_E:  # a headers-only or blank flat
            raise Refused(f"[SCI,{ext}] of {f['rootname']} has no lamp signal (median {level:.0f} e-): "
                          "not a usable flat; put the archive's original file in its place and run with "
                          "rebuild")  # fmt: skip
    ratio = np.log(np.clip(e1, 1.0, None) / np.clip(e2, 1.0, None))
    return blocks(chip, rows1, ratio), float(np.median(e1))


def trend(t: pa.Table) -> dict[str, Any]:
    over = sorted({r["rootname"] for r in t.to_pylist() if r["over_limit"]})
    return {"all": {"flats": len(set(t.column("rootname").to_pylist())), "over_limit": over, "limit": LIMIT}}


def plot(t: pa.Table, summary: dict[str, Any], out: Path) -> list[Path]:
    return [
        trend_png(
            t,
            "amplitude",
            "chip",
            f"UVIS bowtie amplitude (limit {LIMIT:.1%})",
            "amplitude (%: wedge / rest - 1)",
            out / "bowtie.png",
            yerr="amplitude_err",
            scale=100,
        )
    ]


def tables(summary: dict[str, Any]) -> dict[str, Rows]:
    """The flats measured and those over the limit."""
    s = summary.get("all") or {}
    if not s:
        return {}
    over = s.get("over_limit") or []
    row = {"flats": s.get("flats"), "limit (%)": percent(s.get("limit")), "over the limit": len(over),
           "flats over the limit": ", ".join(over) or "none"}  # fmt: skip
    return {"Flats against the limit": [row]}


MONITOR = Monitor(
    "uvis-bowtie",
    "UVIS QE hysteresis (bowtie)",
    SELECT,
    measure,
    SCHEMA,
    trend,
    plot,
    lambda t: vega_trend(
        t,
        "amplitude",
        "chip",
        "UVIS bowtie amplitude",
        label="amplitude (%: wedges / rest - 1)",
        yerr="amplitude_err",
        scale=100,
    ),
    __doc__ or "",
    group=visits,
    measures=(
        "QE-hysteresis amplitude (wedges vs rest) in the ratio of each bowtie visit's first flat to its "
        "repeat after a saturating flat, the lamp's drift fitted out, with its error; threshold crossings"
    ),
    claim="within 0.05 % on on-orbit flats (P-flat, the lamp's fall-off of 3-5 % and its drift between "
    "exposures): worst 0.015 % and 0.014 % over 12 visits x 2 chips on two seeds, reported errors 0.007 % "
    "(bench/claims.py; the one-flat wedge / rest method was off by up to 0.8 % on them); exactly the planted "
    "crossings",
    description=(
        "QE hysteresis (the bowtie): after a long time in the dark, UVIS pixels can be a little less "
        "sensitive to faint light, in a bowtie-shaped pattern across each chip, until they have been "
        "exposed. Each visit of the bowtie programme takes an internal flat, then a heavily saturating one "
        "that erases the pattern, then the first flat again; the amplitude is how much the two opposite "
        "wedges of a chip differ from the rest in the first flat compared with the repeat (0: no pattern; "
        "0.5 %: half a percent). Each point is one visit and chip, with its 1-sigma error bar; visits "
        "beyond plus or minus 0.5 % cross the limit and are listed in the table."
    ),
    tables=tables,
    units={"level_e": "e-"},
)
