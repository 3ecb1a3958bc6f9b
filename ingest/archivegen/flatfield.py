"""The flat-field structure of simulated flats: the P-flat and the lamp's illumination (on-orbit realism).

Every real flat is the product of the detector's pixel-to-pixel sensitivity (the P-flat's small-scale
part) and an illumination that varies slowly across the array. Neither is in a ``clean`` archive.

- **P-flat**: a fixed pattern per detector, chip and filter, 0.8 % rms per pixel, 1.2 % in the UVIS blue
  (below 400 nm), where the CCDs' QE varies most [I]. Each row is drawn from a stream of its own, so a
  sparse and a full archive agree where they share rows; the same pattern is in every flat of a chip and
  filter, so it cancels in a pair's difference and in the ratio of two flats.
- **UVIS lamp**: the internal tungsten lamp lights the focal plane (UVIS1 above UVIS2, ~35 px apart,
  docs/background/wfc3-monitors.md §0.1) from an off-centre spot: a smooth Gaussian fall-off, ~3 % at the
  far corners in 2009 and deepening ~0.1 % a year as the lamp ages [I]. From one exposure to the next the
  lamp's brightness drifts (0.3 % rms) and its spot moves a little (a tilt of 0.05 % rms across the array).
- **IR lamp**: vignetting towards the array's edges (4 % in the corners, none within ~300 px of the centre)
  and a linear gradient of ~3 % across the array, its direction fixed per filter [I].

Only :mod:`ingest.archivegen` uses this: the monitors remove illumination with their own fits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

PFLAT_RMS = 0.008
PFLAT_BLUE_RMS = 0.012  # UVIS filters below 400 nm
BLUE_NM = 400

UVIS_GAP = 35  # px between UVIS2's last image row and UVIS1's first (§0.1)
UVIS_ROWS = 2051
LAMP_CENTRE = (2300.0, 1700.0)  # focal-plane x, y of the lamp's spot (UVIS2 rows first)
LAMP_SIGMA_2009 = 13500.0  # px: ~3 % fall-off at the corner farthest from the spot
LAMP_AGEING = 0.012  # the spot narrows by this fraction a year
LAMP_DRIFT = 0.003  # rms of an exposure's brightness about the lamp's mean
LAMP_TILT = 0.0005  # rms of an exposure's tilt, per 2048 px

IR_VIGNETTING = 0.04  # fall-off in the corners
IR_VIGNETTING_FREE = 300.0  # px from the centre without it
IR_GRADIENT = 0.03  # peak to peak across the array


def _tag(text: str) -> int:
    return sum(ord(ch) * 31**i for i, ch in enumerate(text)) % 2**31


def _nm(filt: str) -> int:
    digits = "".join(ch for ch in filt if ch.isdigit())
    return int(digits) if digits else 600


def pflat(seed: int, detector: str, chip: int, filt: str, rows: np.ndarray, ncols: int) -> Any:
    """The P-flat's pixel-to-pixel pattern (mean 1) at ``rows`` of a chip (IR: chip 1) for a filter."""
    blue = detector == "UVIS" and _nm(filt) < BLUE_NM
    rms = PFLAT_BLUE_RMS if blue else PFLAT_RMS
    tag = _tag(f"{detector}/{filt}")
    out = np.empty((len(rows), ncols))
    for i, r in enumerate(rows):
        out[i] = 1 + np.random.default_rng([seed, 9107, chip, tag, int(r)]).normal(0, rms, ncols)
    return out


def _focal_y(chip: int, rows: np.ndarray) -> np.ndarray:
    """Focal-plane row of a chip's image rows: UVIS2 at the bottom, UVIS1 above it past the gap."""
    y = np.asarray(rows, float)
    return y if chip == 2 else y + UVIS_ROWS + UVIS_GAP


def uvis_lamp(seed: int, rootname: str, chip: int, rows: np.ndarray, ncols: int, years: float) -> Any:
    """The internal lamp's illumination (mean ~1) on ``rows`` of a chip in one exposure, ``years`` after
    2009: the aged lamp's fixed fall-off times this exposure's brightness and tilt."""
    sigma = LAMP_SIGMA_2009 * (1 - LAMP_AGEING * max(years, 0.0))
    x = np.arange(ncols, dtype=float)
    y = _focal_y(chip, rows)
    d2 = (x[None, :] - LAMP_CENTRE[0]) ** 2 + (y[:, None] - LAMP_CENTRE[1]) ** 2
    rng = np.random.default_rng([seed, 9109, _tag(rootname)])
    scale = 1 + rng.normal(0, LAMP_DRIFT)
    tx, ty = rng.normal(0, LAMP_TILT, 2)
    tilt = 1 + tx * (x[None, :] - 2048) / 2048 + ty * (y[:, None] - 2086) / 2048
    return scale * np.exp(-0.5 * d2 / sigma**2) * tilt


def ir_lamp(filt: str, rows: np.ndarray) -> Any:
    """The IR lamp's illumination (1 at the centre) on raw ``rows`` x 1024: vignetting and a gradient
    whose direction depends on the filter."""
    x = np.arange(1024, dtype=float)[None, :] - 511.5
    y = np.asarray(rows, float)[:, None] - 511.5
    r = np.hypot(x, y)
    edge = np.clip((r - IR_VIGNETTING_FREE) / (np.hypot(511.5, 511.5) - IR_VIGNETTING_FREE), 0, None)
    angle = 2 * np.pi * (_tag(filt) % 360) / 360
    ramp = (x * np.cos(angle) + y * np.sin(angle)) / 1024
    return (1 - IR_VIGNETTING * edge**2) * (1 + IR_GRADIENT * ramp)
