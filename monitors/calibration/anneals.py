"""UVIS anneal dates: the monthly warm-ups that fix part of the hot pixels and bound the darks' cycles.

The legacy darks monitor reads them from a maintained list (``history.txt``, one MJD per line,
docs/background/wfc3-monitors.md §0.1). Here the list is the file the ``uvis_anneals`` setting names, by
default ``<archive>/uvis_anneals.txt`` (which the generator writes): one MJD per line, ``#`` comments.
Without such a file the darks monitors run without anneal cycles.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lake.errors import ConfigError

FILE = "uvis_anneals.txt"


def anneals_file(cfg: Mapping[str, Any]) -> str:
    return str(cfg.get("uvis_anneals") or "") or str(cfg.get("archive", "")).rstrip("/") + "/" + FILE


def anneal_dates(cfg: Mapping[str, Any]) -> np.ndarray:
    """Sorted anneal MJDs (empty when there is no list)."""
    import fsspec

    path = anneals_file(cfg)
    fs, _, (p,) = fsspec.get_fs_token_paths(path)
    if not fs.exists(p):
        if cfg.get("uvis_anneals"):
            raise ConfigError(f"{path}: anneal list not found; fix the 'uvis_anneals' setting")
        return np.zeros(0)
    with fs.open(p, "rb") as f:
        lines = f.read().decode().splitlines()
    out = []
    for i, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            out.append(float(text.split()[0]))
        except ValueError:
            raise ConfigError(f"{path}: line {i}: {line!r} is not an MJD; one MJD per line") from None
    return np.sort(np.array(out, float))


def cycle_start(dates: np.ndarray, mjd: float) -> float | None:
    """The anneal that opened the cycle ``mjd`` falls in (None before the first, or without a list)."""
    i = int(np.searchsorted(dates, mjd, side="right")) - 1
    return float(dates[i]) if i >= 0 else None


def next_anneal(dates: np.ndarray, mjd: float) -> float:
    """The first anneal after ``mjd`` (inf if none)."""
    i = int(np.searchsorted(dates, mjd, side="right"))
    return float(dates[i]) if i < len(dates) else float("inf")
