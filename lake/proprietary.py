"""Proprietary periods: a dataset is proprietary until its EXPSTART plus its proposal's period.

Periods come from the proposals file (setting ``proposals``; default ``<archive>/proposals.csv``), a CSV
with columns ``proposid`` and ``proprietary_months`` (HST's usual 12; 0 for calibration programs). A
proposal missing from it gets ``proprietary_months`` (default 12). A dataset without EXPSTART is treated
as proprietary: unknown is never public.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from lake.errors import ConfigError

MJD_UNIX_EPOCH = 40587.0
DAYS_PER_MONTH = 365.25 / 12


def proposals_file(cfg: Mapping[str, Any]) -> str:
    return str(cfg.get("proposals") or "") or str(cfg.get("archive", "")).rstrip("/") + "/proposals.csv"


def periods(cfg: Mapping[str, Any]) -> dict[int, float]:
    """Proprietary months per PROPOSID from the proposals file ({} when there is none)."""
    import fsspec

    path = proposals_file(cfg)
    fs, _, (p,) = fsspec.get_fs_token_paths(path)
    if not fs.exists(p):
        if cfg.get("proposals"):
            raise ConfigError(f"{path}: proposals file not found; fix the 'proposals' setting")
        return {}
    with fs.open(p, "rb") as f:
        text = f.read().decode()
    out: dict[int, float] = {}
    for i, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            out[int(row["proposid"])] = float(row["proprietary_months"])
        except (KeyError, TypeError, ValueError):
            raise ConfigError(
                f"{path}: line {i}: needs integer 'proposid' and number 'proprietary_months', got {row}"
            ) from None
    return out


def now_mjd(now: datetime | None = None) -> float:
    return (now or datetime.now(UTC)).timestamp() / 86400.0 + MJD_UNIX_EPOCH


def release_mjd(expstart: float | None, months: float) -> float | None:
    return None if expstart is None else expstart + months * DAYS_PER_MONTH


def public_rootnames(master: pa.Table, cfg: Mapping[str, Any], now: datetime | None = None) -> pa.Array:
    """The rootnames of ``master`` (columns rootname, proposid, expstart) that are public at ``now``."""
    import pyarrow.compute as pc

    per = periods(cfg)
    default = float(cfg.get("proprietary_months", 12))
    props = master.column("proposid").to_pylist()
    months = pa.array([per.get(p, default) if p is not None else default for p in props], pa.float64())
    release = pc.add(master.column("expstart"), pc.multiply(months, DAYS_PER_MONTH))
    public = pc.fill_null(pc.less_equal(release, now_mjd(now)), False)
    return pc.unique(master.column("rootname").filter(public))
