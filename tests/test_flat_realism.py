"""uvis-bowtie and ir-blobs on clean and on-orbit flats (#17): the on-orbit flats' P-flat and uneven
illumination break the one-flat methods, and the monitors' methods (the ratio of a bowtie visit's first
flat to its repeat; blobs after the flat's own illumination is divided out) hold on both.

The flats are the generator's charge (no files): the monitors' own block fit and blob finder run on
them, against the generator's truth.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ingest.archivegen import pixels as px
from ingest.archivegen.features import Instrument
from ingest.archivegen.generate import Exposure
from monitors.calibration import ir_blobs, uvis_bowtie

SEED = 5
MJD = 60000.0


def _bowtie_visit(inst: Instrument, root: str) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """chip -> (image rows, first flat e-, repeat flat e-) of a bowtie visit, in the rows of a sparse
    archive (two bands and the rows next to the parallel overscan)."""
    out = {}
    for chip in (2, 1):
        rows = px._uvis_image_rows(chip, "sparse")
        flats = []
        for line, step in (("1", "first"), ("3", "repeat")):
            e = Exposure(f"{root}0{line}q", 12688, "UVIS", "FLAT", "TUNGSTEN", 0.0, 0.0, "F814W", 100.0,
                         MJD + int(line) / 24, "NONE", "x", (), {"BOWTIE_STEP": step})  # fmt: skip
            flats.append(
                px.uvis_electrons(inst, e, chip, rows, np.random.default_rng([SEED, int(line), chip]))
            )
        out[chip] = (rows, flats[0], flats[1])
    return out


def _amplitudes(visit: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]], ratio: bool) -> dict[int, float]:
    """The monitor's fit to the log ratio first / repeat (or, ``ratio=False``, to the first flat alone)."""
    per_chip = {}
    for chip, (rows, first, repeat) in visit.items():
        img = np.log(np.clip(first, 1, None)) - (np.log(np.clip(repeat, 1, None)) if ratio else 0)
        per_chip[chip] = uvis_bowtie.blocks(chip, rows, img)
    return {chip: a for chip, (a, _err, _n) in uvis_bowtie.fit(per_chip).items()}


def _planted_visit(inst: Instrument) -> tuple[str, float]:
    """A bowtie visit whose first flat shows hysteresis."""
    for j in range(200):
        root = f"ibtz{j:02d}"
        a = inst.bowtie(f"{root}01q", 12688)
        if a:
            return root, a
    raise AssertionError("no visit with hysteresis")


@pytest.mark.parametrize("realism", ["clean", "on-orbit"])
def test_bowtie_ratio_holds_where_one_flat_fails(realism: str) -> None:
    inst = Instrument(SEED, realism)
    root, planted = _planted_visit(inst)
    for name, truth in ((root, planted), ("ibtzzz", 0.0)):
        visit = _bowtie_visit(inst, name)
        got = _amplitudes(visit, ratio=True)
        assert all(abs(a - truth) < 0.0005 for a in got.values()), (realism, name, truth, got)
        alone = _amplitudes(visit, ratio=False)
        if realism == "clean":  # one flat suffices on a perfect detector
            assert all(abs(a - truth) < 0.0005 for a in alone.values()), (name, truth, alone)
        else:  # the lamp's fall-off makes a false amplitude in one flat
            assert max(abs(a - truth) for a in alone.values()) > 0.0005, (name, truth, alone)


def _ir_flat(inst: Instrument) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """A full-frame IR flat's flt (e-/s, 1014 x 1014) and the blobs in it (flt x, y)."""
    e = Exposure("ibtzir1q", 12697, "IR", "FLAT", "TUNGSTEN", 0.0, 0.0, "F160W", 302.94, MJD, "NONE", "x",
                 (), nsamp=2, samp_seq="")  # fmt: skip
    rows = px.ir_rows("full")
    _cum, _gain, _balls, fluence = px.ir_ramp(inst, e, 2, rows, np.random.default_rng([SEED, 3]))
    blobs = [(x - 5, y - 5) for x, y, _r, _d in inst.blobs_at(MJD)]
    return fluence[5:1019, 5:1019] / e.exptime, blobs


def _score(found: list[dict[str, Any]], blobs: list[tuple[float, float]]) -> tuple[float, int]:
    near = [[np.hypot(d["x"] - x, d["y"] - y) <= 2 for d in found] for x, y in blobs]
    recall = float(np.mean([any(n) for n in near]))
    false = sum(not any(n[j] for n in near) for j in range(len(found)))
    return recall, false


@pytest.mark.parametrize("realism", ["clean", "on-orbit"])
def test_blobs_after_the_illumination_is_removed(realism: str, monkeypatch: pytest.MonkeyPatch) -> None:
    inst = Instrument(SEED, realism)
    flat, blobs = _ir_flat(inst)
    assert len(blobs) >= 10
    rows = np.arange(1014)
    recall, false = _score(ir_blobs._detections(rows, flat), blobs)
    assert recall >= 0.95 and false <= 0.05 * len(blobs), (realism, recall, false)
    # without the illumination divided out, the vignetting and the gradient are "blobs" on orbit
    monkeypatch.setattr(ir_blobs, "illumination", lambda img: np.ones_like(img))
    recall, false = _score(ir_blobs._detections(rows, flat), blobs)
    if realism == "clean":
        assert recall >= 0.95 and false == 0
    else:
        assert false > 0.05 * len(blobs) or recall < 0.95, (recall, false)
