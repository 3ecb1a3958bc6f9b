"""A rebuild equals a sequence of incremental runs over the same inputs, for every monitor (#17).

A small generated archive arrives in two parts, whole visits at a time, every other visit late (as a
delivery held back and sent days later, so out of time order): each part is ingested and every
registered monitor run on it (incremental: only what is new, or a group of inputs that grew). Then
every monitor runs again with ``rebuild`` over everything. The result tables must hold the same rows: a
superdark window whose frames came in two deliveries (a programme's dark and the seven of the next
visit) is measured once whole, not as two windows.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import lake
from ingest.archivegen.generate import generate
from ingest.run import ingest
from lake import settings
from lake.jobs import run_job
from monitors.framework import table_name
from monitors.registry import MODULES

SEED = 8
DATASETS = 20  # 89 exposures; the seed gives every monitor inputs (a bad actor and its follow-up)


def _rows(lk: Path, name: str) -> list[dict[str, Any]]:
    t = lake.read_sql(f"SELECT * EXCLUDE (run_id, found_at) FROM {table_name(name)}", lk).to_pylist()
    return sorted(t, key=lambda r: [(k, _key(v)) for k, v in sorted(r.items())])


def _key(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("chunking")
    archive, held, lk = base / "archive", base / "held", base / "lake"
    generate(archive, DATASETS, seed=SEED, pixels="sparse")
    visits = sorted({p.parent for p in archive.rglob("*.fits")})
    late = visits[1::2]  # every other visit folder comes in the second delivery
    for v in late:
        dst = held / v.relative_to(archive)
        dst.parent.mkdir(parents=True, exist_ok=True)
        v.rename(dst)
    cfg = {**settings.load({"lake": str(lk)}), "archive": str(archive), "scheduler": "synchronous"}
    runs: dict[str, list[Any]] = {m: [] for m in MODULES}
    for k in range(2):
        for v in late if k else []:
            (held / v.relative_to(archive)).rename(v)
        ingest(lk, str(archive), scheduler="synchronous")
        for m in MODULES:
            runs[m].append(run_job(lk, m, cfg=cfg))
    incremental = {m: _rows(lk, m) for m in MODULES}
    rebuilt = {m: run_job(lk, m, {"rebuild": "1"}, cfg=cfg) for m in MODULES}
    yield {"lake": lk, "runs": runs, "incremental": incremental, "rebuilt": rebuilt, "late": len(late)}
    shutil.rmtree(base)


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    for k, v in a.items():
        w = b[k]
        if isinstance(v, float) and isinstance(w, float):
            if not (math.isnan(v) and math.isnan(w)) and not math.isclose(v, w, rel_tol=1e-7, abs_tol=1e-9):
                return False
        elif v != w:
            return False
    return True


@pytest.mark.parametrize("name", list(MODULES))
def test_rebuild_equals_incremental_runs(results: dict[str, Any], name: str) -> None:
    assert results["late"] > 0
    for r in [*results["runs"][name], results["rebuilt"][name]]:
        assert r.status in {"success", "no-work"} and not r.counts.get("errors"), (name, r.error, r.counts)
    inc = results["incremental"][name]
    full = _rows(results["lake"], name)
    assert full, f"{name}: no results on the test archive, nothing compared"
    assert len(inc) == len(full), (name, len(inc), len(full))
    for a, b in zip(inc, full, strict=True):
        assert _same(a, b), (name, a, b)


def test_a_window_that_grows_is_measured_again_whole(tmp_path: Path) -> None:
    """Eight darks fill a superdark window, which is measured; a ninth within its 4 days comes later:
    the window is measured again with all nine, and its old result is replaced (a rebuild would see one
    nine-frame window, not eight frames and one)."""
    from monitors.calibration import uvis_darks
    from monitors.framework import regroup

    m = uvis_darks.MONITOR
    frames = [{"path": f"d{k}", "rootname": f"d{k}", "expstart": 60000.0 + 0.4 * k} for k in range(9)]
    cfg = {"archive": str(tmp_path)}  # no anneal list
    todo, waiting, superseded = regroup(m, frames[:8], None, cfg)
    assert [t["inputs"] for t in todo] == [";".join(f"d{k}" for k in range(8))] and waiting == 0
    old = pa.table({"path": ["d0", "d0"], "inputs": [todo[0]["inputs"]] * 2})  # its rows (one per amp)
    assert regroup(m, frames[:8], old, cfg)[0] == []  # nothing new: nothing to measure
    todo, waiting, superseded = regroup(m, frames, old, cfg)
    assert [t["inputs"] for t in todo] == [";".join(f"d{k}" for k in range(9))]
    assert superseded == ["d0"] and waiting == 0
