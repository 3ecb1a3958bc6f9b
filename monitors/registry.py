"""The one place calibration monitors are registered (by module; each defines ``MONITOR``)."""

from __future__ import annotations

import importlib

from lake.errors import ConfigError
from monitors.framework import Monitor

MODULES = {
    "uvis-darks": "monitors.calibration.uvis_darks",
    "uvis-ctecorr-darks": "monitors.calibration.uvis_ctecorr_darks",
    "uvis-gain": "monitors.calibration.uvis_gain",
    "uvis-eper-cte": "monitors.calibration.uvis_eper_cte",
    "uvis-contam": "monitors.calibration.uvis_contam",
    "uvis-bowtie": "monitors.calibration.uvis_bowtie",
    "ir-bias": "monitors.calibration.ir_bias",
    "ir-blobs": "monitors.calibration.ir_blobs",
    "ir-snowballs": "monitors.calibration.ir_snowballs",
    "ir-bad-actors": "monitors.calibration.ir_bad_actors",
    "ir-persistence": "monitors.calibration.ir_persistence",
}


def get(name: str) -> Monitor:
    if name not in MODULES:
        raise ConfigError(f"no monitor {name!r}; monitors: {', '.join(MODULES)}")
    m: Monitor = importlib.import_module(MODULES[name]).MONITOR
    return m


def all_monitors() -> list[Monitor]:
    return [get(n) for n in MODULES]
