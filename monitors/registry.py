"""The one place calibration monitors are registered (by module; each defines ``MONITOR``)."""

from __future__ import annotations

import importlib

from lake.errors import ConfigError
from monitors.framework import Monitor

MODULES = {
    "uvis-darks": "monitors.uvis_darks",
    "uvis-ctecorr-darks": "monitors.uvis_ctecorr_darks",
    "uvis-gain": "monitors.uvis_gain",
    "uvis-eper-cte": "monitors.uvis_eper_cte",
    "uvis-contam": "monitors.uvis_contam",
    "uvis-bowtie": "monitors.uvis_bowtie",
    "ir-bias": "monitors.ir_bias",
    "ir-blobs": "monitors.ir_blobs",
    "ir-snowballs": "monitors.ir_snowballs",
    "ir-bad-actors": "monitors.ir_bad_actors",
    "ir-persistence": "monitors.ir_persistence",
}


def get(name: str) -> Monitor:
    if name not in MODULES:
        raise ConfigError(f"no monitor {name!r}; monitors: {', '.join(MODULES)}")
    m: Monitor = importlib.import_module(MODULES[name]).MONITOR
    return m


def all_monitors() -> list[Monitor]:
    return [get(n) for n in MODULES]
