"""The injected ground truth of a generated archive: instrument behaviour and planted features.

Everything the pixel simulator (:mod:`ingest.archivegen.pixels`) draws comes from an :class:`Instrument`,
which is a pure function of the seed, so the truth table written beside the archive
(``quicklake_truth.parquet``, one row per feature, with the identifiers a monitor reports) is exactly what
the pixels contain. Levels and sizes follow ``docs/background/wfc3-monitors.md`` §0 and the "synthetic
test" notes of each monitor.

Features are planted in the pixel rows that ``--pixels sparse`` writes (:data:`UVIS_BANDS`,
:data:`IR_BANDS`; IR flats' flt are written full frame, so blobs lie anywhere on the array), so the truth
is the same whatever the pixel mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

MJD_COOLDOWN = 54993.0  # 2009-06-11, first UVIS cooldown: day 0 of the monitors' time axes
MJD_2009 = 54832.0  # 2009-01-01
DAYS_PER_YEAR = 365.25

# UVIS chip image rows (flt coordinates, 0..2050) that sparse mode writes in full width; the EPER region
# (image rows next to the parallel overscan, and the overscan rows) is written as well.
UVIS_BANDS = ((256, 320), (1024, 1088))
UVIS_EPER_ROWS = 24
# IR rows (raw coordinates, 0..1023) that sparse mode writes.
IR_BANDS = ((200, 240), (700, 740))

UVIS_AMPS = {1: ("A", "B"), 2: ("C", "D")}  # chip -> (left amp, right amp)
IR_QUADS = ("A", "B", "C", "D")  # quadrants of the IR array (see quadrant_of)

HOT_THRESHOLD = 54.0  # e-/hr: a hot pixel (DHB 5.3)
# hot-pixel rates: dN/dr ~ r^-HOT_INDEX from HOT_MIN to HOT_MAX e-/hr, so that warm pixels below the
# threshold outnumber the hot ones above it, as on the detector, and the threshold is crossed both ways
HOT_MIN, HOT_MAX, HOT_INDEX = 20.0, 800.0, 1.5
# on-orbit: cosmic rays in every simulated UVIS exposure; flats with a P-flat and uneven illumination
# (ingest.archivegen.flatfield)
REALISM = ("clean", "on-orbit")
UVIS_FULL_WELL = 68000.0
IR_SATURATION = 70000.0  # e-, the persistence code's "saturation"

# the modified Fermi model of K. Long's persistence code, with its best-fit defaults (wfc3-monitors.md §10)
PERSIST = {"norm": 0.3, "alpha": 0.159, "gamma": 1.022, "e_f": 83400.0, "kt": 18500.0}

TRUTH_SCHEMA = pa.schema(
    [
        (
            "feature",
            pa.string(),
        ),  # hot_pixel, dark_current, anneal, gain, cte, ir_bias, blob, snowball, photometry
        ("detector", pa.string()),
        ("rootname", pa.string()),  # the exposure a per-exposure feature is in (snowballs)
        ("chip", pa.int32()),  # UVIS chip (1, 2)
        ("amp", pa.string()),  # UVIS amp A-D / IR quadrant A-D
        ("x", pa.float64()),  # flt/image coordinates (0-based, x = column)
        ("y", pa.float64()),
        ("size", pa.float64()),  # blob radius / snowball radius (px)
        (
            "value",
            pa.float64(),
        ),  # rate e-/hr, gain e-/DN, CTE at 160 e-, bias DN, depth, energy e-, count rate
        ("slope", pa.float64()),  # per year: dark e-/hr/yr, bias DN/yr, CTE /yr, photometry fraction/yr
        ("filter", pa.string()),
        ("start_mjd", pa.float64()),  # appears (hot pixel, blob) / epoch of value
        ("end_mjd", pa.float64()),  # disappears (hot pixel fixed by an anneal); null: never
        ("read", pa.int32()),  # snowball: the IMSET read in which it lands (1 = last read)
        ("note", pa.string()),
    ]
)


def _power_law(rng: np.random.Generator, lo: float, hi: float, index: float) -> float:
    """One draw of dN/dr ~ r^-index on [lo, hi] (index != 1), by inverting its distribution."""
    a, b = lo ** (1 - index), hi ** (1 - index)
    return float((a + rng.uniform() * (b - a)) ** (1 / (1 - index)))


def years_since_2009(mjd: float | np.ndarray) -> Any:
    return (np.asarray(mjd) - MJD_2009) / DAYS_PER_YEAR


def band_rows(bands: tuple[tuple[int, int], ...]) -> np.ndarray:
    return np.concatenate([np.arange(a, b) for a, b in bands])


@dataclass
class Instrument:
    """The true state of WFC3 over time, drawn once from the seed."""

    seed: int
    realism: str = "on-orbit"  # or "clean": no cosmic rays, P-flat or uneven lamp (see REALISM)
    start_mjd: float = 54993.0
    stop_mjd: float = 61344.0  # 2026-10-31
    anneals: np.ndarray = field(init=False)
    uvis_gain: dict[str, float] = field(init=False)
    uvis_bias: dict[str, float] = field(init=False)
    ir_gain: dict[str, float] = field(init=False)
    ir_bias0: dict[str, float] = field(init=False)
    ir_bias_drift: dict[str, float] = field(init=False)
    hot: dict[str, np.ndarray] = field(init=False)
    blobs: dict[str, np.ndarray] = field(init=False)
    phot_decline: dict[str, float] = field(init=False)

    # dark current e-/hr = DARK0 + DARK_SLOPE * years since 2009 (6 e-/hr in 2014, 11 in 2024)
    DARK0 = 3.5
    DARK_SLOPE = 0.5
    # 1 - CTE per transfer at 160 e- = CTE0 + CTE_SLOPE * years, CTE = 1 - m S^rho (rho from ISR 2025-02).
    # [I] 1e-5 per year rather than the 1e-4 quoted for the total: with 2051 transfers the deferred
    # charge must stay a fraction of the signal, which 1e-4 per transfer would exceed at 160 e-.
    CTE0 = 1.0e-6
    CTE_SLOPE = 1.0e-5
    CTE_RHO = -0.72
    N_PARALLEL = 2051

    def __post_init__(self) -> None:
        rng = np.random.default_rng([self.seed, 7001])
        # monthly anneals from the first cooldown
        n = int((self.stop_mjd - MJD_COOLDOWN) / 30.0) + 1
        self.anneals = MJD_COOLDOWN + 30.0 * np.arange(1, n + 1) + rng.uniform(-3, 3, n)
        self.uvis_gain = {a: float(np.round(rng.uniform(1.52, 1.60), 4)) for a in "ABCD"}
        self.uvis_bias = {a: float(np.round(rng.uniform(2480, 2620), 1)) for a in "ABCD"}
        self.ir_gain = {q: float(np.round(rng.uniform(2.25, 2.40), 4)) for q in IR_QUADS}
        self.ir_bias0 = {q: float(np.round(rng.uniform(10800, 11400), 1)) for q in IR_QUADS}
        self.ir_bias_drift = {
            q: float(np.round(rng.choice([-1, 1]) * rng.uniform(1, 3), 2)) for q in IR_QUADS
        }  # 1-3 DN/yr either way
        self.hot = self._plan_hot_pixels(rng)
        self.blobs = self._plan_blobs(rng)
        self.phot_decline = {}

    # ------------------------------------------------------------------ UVIS
    def _plan_hot_pixels(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Hot pixels appear at a steady rate in each chip; each anneal fixes a quarter of those present."""
        # inside the bands, 10 rows from their edges: a hot pixel's CTE trail stays in simulated rows
        rows = np.concatenate([np.arange(a + 10, b - 10) for a, b in UVIS_BANDS])
        per_month = 20  # per chip, in the bands
        recs = []
        for chip in (1, 2):
            t_prev = MJD_COOLDOWN
            alive: list[int] = []
            for t_ann in self.anneals:
                k = rng.poisson(per_month)
                for _ in range(k):
                    recs.append(
                        [
                            chip,
                            int(rng.integers(0, 4096)),
                            int(rng.choice(rows)),
                            _power_law(rng, HOT_MIN, HOT_MAX, HOT_INDEX),
                            float(rng.uniform(t_prev, t_ann)),
                            np.inf,
                        ]
                    )
                    alive.append(len(recs) - 1)
                fixed = {i for i in alive if rng.random() < 0.25}
                for i in fixed:
                    recs[i][5] = float(t_ann)
                alive = [i for i in alive if i not in fixed]
                t_prev = t_ann
        a = np.array(recs, dtype=float).reshape(-1, 6)
        # one pixel is hot once at a time: drop later duplicates of a position that is still hot
        keep = np.ones(len(a), bool)
        seen: dict[tuple[int, int, int], float] = {}
        for i, (c, x, y, _r, t0, t1) in enumerate(a):
            key = (int(c), int(x), int(y))
            if key in seen and seen[key] > t0:
                keep[i] = False
            else:
                seen[key] = t1
        a = a[keep]
        return {
            "chip": a[:, 0].astype(int),
            "x": a[:, 1].astype(int),
            "y": a[:, 2].astype(int),
            "rate": a[:, 3],
            "start": a[:, 4],
            "end": a[:, 5],
        }

    def dark_rate(self, mjd: float) -> float:
        """Median UVIS dark current, e-/hr."""
        return float(self.DARK0 + self.DARK_SLOPE * years_since_2009(mjd))

    @staticmethod
    def flash_level(imagetyp: str, mjd: float) -> int:
        """Post-flash (e-) of UVIS darks: 12 e- since ~2012 (wfc3-monitors.md §0.1)."""
        return 12 if imagetyp == "DARK" and mjd > 56000 else 0

    TRAIL_TAU = 1.5  # rows: the exponential profile of a CTE trail
    TRAIL_ROWS = 8

    def cte_fraction(self, mjd: float, charge: np.ndarray, transfers: np.ndarray) -> Any:
        """Fraction of a pixel's charge left behind in the trail after ``transfers`` parallel transfers."""
        loss = self.cte_loss(mjd, np.maximum(charge, 1.0))
        return 1.0 - (1.0 - loss) ** transfers

    def hot_pixels_at(self, chip: int, mjd: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        h = self.hot
        sel = (h["chip"] == chip) & (h["start"] <= mjd) & (h["end"] > mjd)
        return h["x"][sel], h["y"][sel], h["rate"][sel]

    def cte_loss(self, mjd: float, signal_e: float | np.ndarray) -> Any:
        """1 - CTE per transfer at a signal level (e-): m(t) S^rho, m set by the loss at 160 e-."""
        loss160 = self.CTE0 + self.CTE_SLOPE * years_since_2009(mjd)
        return loss160 * (np.asarray(signal_e, float) / 160.0) ** self.CTE_RHO

    # ------------------------------------------------------------------ IR
    def ir_bias(self, quad: str, mjd: float) -> float:
        return float(self.ir_bias0[quad] + self.ir_bias_drift[quad] * years_since_2009(mjd))

    def _plan_blobs(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Blobs appear over the years (19 by 2010, ~40 by 2012, more later), anywhere on the light-
        sensitive array (IR flats are simulated full frame: the vignetted corners hold blobs too) and
        apart from the others (a catalogue's blobs are distinct)."""
        n = 24
        first = np.sort(rng.uniform(self.start_mjd + 60, self.stop_mjd - 200, n))
        radius = rng.uniform(7, 10, n)
        xs: list[float] = []
        ys: list[float] = []
        for i in range(n):
            while True:
                y = float(rng.uniform(5 + radius[i] + 2, 1019 - radius[i] - 2))
                x = float(rng.uniform(5 + radius[i] + 2, 1019 - radius[i] - 2))
                if all(np.hypot(x - x2, y - y2) > 3 * 10 for x2, y2 in zip(xs, ys, strict=True)):
                    break
            xs.append(x)
            ys.append(y)
        return {
            "x": np.round(xs, 1),
            "y": np.round(ys, 1),
            "radius": radius.round(2),
            "depth": rng.uniform(0.04, 0.10, n).round(4),
            "first": first,
        }

    def blobs_at(self, mjd: float) -> list[tuple[float, float, float, float]]:
        b = self.blobs
        sel = b["first"] <= mjd
        return list(zip(b["x"][sel], b["y"][sel], b["radius"][sel], b["depth"][sel], strict=True))

    # ------------------------------------------------------------------ UVIS bowtie (QE hysteresis)
    BOWTIE_LIMIT = 0.005

    def bowtie(self, rootname: str, proposid: int) -> float:
        """Amplitude of the hysteresis pattern in a bowtie-programme flat (0 when the detector is stable)."""
        if proposid != 12688:
            return 0.0
        rng = np.random.default_rng([self.seed, 7004, *rootname.encode()])
        return float(np.round(rng.uniform(0.006, 0.015), 4)) if rng.random() < 0.35 else 0.0

    @staticmethod
    def bowtie_pattern(rows: np.ndarray, ncols: int = 4096) -> Any:
        """1 inside the two opposite wedges (|v| < |u| / 2 about the chip centre), else 0."""
        u = (np.arange(ncols) - (ncols - 1) / 2) / (ncols / 2)
        v = (np.asarray(rows, float) - 1025.0) / 1025.0
        return (np.abs(v)[:, None] < 0.5 * np.abs(u)[None, :]).astype(float)

    # ------------------------------------------------------------------ IR bad actors
    BAD_LEVELS = (0.7, 1.5, 3.0, 6.0, 12.0)  # multiples of saturation planted in bright exposures

    def bad_actor(self, rootname: str) -> dict[float, int] | None:
        """Pixels planted at each multiple of saturation in about a third of the IR science exposures."""
        rng = np.random.default_rng([self.seed, 7003, *rootname.encode()])
        if rng.random() > 0.35:
            return None
        return {m: int(rng.integers(20, 1500)) for m in self.BAD_LEVELS}

    # ------------------------------------------------------------------ IR persistence
    @staticmethod
    def persistence(fluence: np.ndarray, dt: float) -> Any:
        """Persistence (e-/s) ``dt`` seconds after a stimulus of ``fluence`` e-."""
        p = PERSIST
        x = np.clip(np.asarray(fluence, float), 1.0, None)
        fermi = 1.0 / (np.exp((p["e_f"] - x) / p["kt"]) + 1.0)
        return p["norm"] * fermi * (x / p["e_f"]) ** p["alpha"] * (max(dt, 1.0) / 1000.0) ** (-p["gamma"])

    # ------------------------------------------------------------------ photometry
    def photometric_decline(self, filt: str) -> float:
        """Fractional count-rate change per year of the standard stars in a filter (bluer declines faster)."""
        if filt not in self.phot_decline:
            rng = np.random.default_rng([self.seed, 7002, sum(map(ord, filt))])
            blue = filt in {"F225W", "F275W", "F336W"}
            self.phot_decline[filt] = float(np.round(-rng.uniform(0.0015, 0.003 if blue else 0.0015), 5))
        return self.phot_decline[filt]

    # ------------------------------------------------------------------ truth table
    def _hot_pixel_truth(self) -> list[dict[str, Any]]:
        """The UVIS hot pixels born before the end of the mission."""
        rows: list[dict[str, Any]] = []
        h = self.hot
        for i in range(len(h["x"])):
            if h["start"][i] > self.stop_mjd:
                continue
            amp = UVIS_AMPS[int(h["chip"][i])][int(h["x"][i] >= 2048)]
            rows.append(
                {
                    "feature": "hot_pixel",
                    "detector": "UVIS",
                    "chip": int(h["chip"][i]),
                    "amp": amp,
                    "x": float(h["x"][i]),
                    "y": float(h["y"][i]),
                    "value": round(float(h["rate"][i]), 3),
                    "start_mjd": float(h["start"][i]),
                    "end_mjd": None if np.isinf(h["end"][i]) else float(h["end"][i]),
                }
            )
        return rows

    def _uvis_truth(self) -> list[dict[str, Any]]:
        """Anneals, dark current, gains and CTE of UVIS."""
        rows: list[dict[str, Any]] = [
            {"feature": "anneal", "detector": "UVIS", "start_mjd": float(t)} for t in self.anneals
        ]
        rows.append(
            {
                "feature": "dark_current",
                "detector": "UVIS",
                "value": self.dark_rate(MJD_2009),
                "slope": self.DARK_SLOPE,
                "start_mjd": MJD_2009,
                "note": "median e-/hr at start_mjd; slope e-/hr/yr",
            }
        )
        for amp, g in self.uvis_gain.items():
            rows.append(
                {
                    "feature": "gain",
                    "detector": "UVIS",
                    "chip": 1 if amp in "AB" else 2,
                    "amp": amp,
                    "value": g,
                    "note": f"bias {self.uvis_bias[amp]} DN",
                }
            )
        rows.append(
            {
                "feature": "cte",
                "detector": "UVIS",
                "value": 1 - self.CTE0,
                "slope": -self.CTE_SLOPE,
                "start_mjd": MJD_2009,
                "note": f"CTE at 160 e-; CTE = 1 - m(t) S^{self.CTE_RHO}",
            }
        )
        return rows

    def _ir_truth(self) -> list[dict[str, Any]]:
        """IR quadrant bias levels and blobs."""
        rows: list[dict[str, Any]] = []
        for q in IR_QUADS:
            rows.append(
                {
                    "feature": "ir_bias",
                    "detector": "IR",
                    "amp": q,
                    "value": self.ir_bias0[q],
                    "slope": self.ir_bias_drift[q],
                    "start_mjd": MJD_2009,
                    "note": f"zeroth-read level DN at start_mjd; gain {self.ir_gain[q]}",
                }
            )
        b = self.blobs
        for i in range(len(b["x"])):
            rows.append(
                {
                    "feature": "blob",
                    "detector": "IR",
                    "x": float(b["x"][i]) - 5,
                    "y": float(b["y"][i]) - 5,
                    "size": float(b["radius"][i]),
                    "value": float(b["depth"][i]),
                    "start_mjd": float(b["first"][i]),
                    "note": "flt coordinates; depth = central loss",
                }
            )
        return rows

    def _photometry_truth(self, filters: list[str]) -> list[dict[str, Any]]:
        """The photometric decline of each filter the standard stars were observed in."""
        return [
            {
                "feature": "photometry",
                "detector": "UVIS",
                "filter": f,
                "value": 1.0,
                "slope": self.photometric_decline(f),
                "start_mjd": MJD_2009,
                "note": "count rate relative to start_mjd; slope fraction/yr",
            }
            for f in sorted(set(filters))
        ]

    def truth(self, snowballs: list[dict[str, Any]], filters: list[str]) -> pa.Table:
        """The truth table: every planted feature, with the per-exposure rows (``snowballs``) given."""
        rows = self._hot_pixel_truth() + self._uvis_truth() + self._ir_truth()
        rows += snowballs
        rows += self._photometry_truth(filters)
        cols = {f.name: [r.get(f.name) for r in rows] for f in TRUTH_SCHEMA}
        return pa.table(cols, schema=TRUTH_SCHEMA)


def quadrant_of(x: np.ndarray, y: np.ndarray, n: int = 1024) -> np.ndarray:
    """IR quadrant letter index (0..3 for A..D) of raw pixel coordinates: A lower left, B lower right,
    C upper right, D upper left (amps at the outer corners)."""
    half = n // 2
    right = x >= half
    top = y >= half
    return np.where(top, np.where(right, 2, 3), np.where(right, 1, 0))
