"""Helpers shared by the benchmarks: a generated archive, timing, and a ratio report."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def archive(out: Path, datasets: int, seed: int = 11) -> list[str]:
    """Generate (once) a headers-only archive and return its files, sorted."""
    from ingest.archivegen.generate import generate

    if not (out / ".quicklake-archive").exists():
        generate(out, datasets=datasets, seed=seed)
    files = []
    for d, _dirs, names in os.walk(out):
        files += [os.path.join(d, n) for n in names if n.endswith(".fits")]
    return sorted(files)


def best_of(fn: Callable[[], Any], repeat: int = 5) -> float:
    """Best wall time of ``repeat`` runs (warm cache: the first run also warms it)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def report(
    title: str, rows: list[tuple[str, float, str]], checks: list[tuple[str, float, float, str]]
) -> int:
    """Print a table of (name, value, unit) and target checks (name, value, target, unit); 1 if one fails."""
    print(f"\n{title}")
    for name, value, unit in rows:
        print(f"  {name:<44} {value:>12,.1f} {unit}")
    failed = 0
    for name, value, target, unit in checks:
        ok = value >= target
        failed |= not ok
        print(f"  {'PASS' if ok else 'FAIL'}  {name:<38} {value:8.2f}{unit}  (target >= {target:g}{unit})")
    return int(failed)


def compile_project() -> None:
    """Byte-compile the project's modules, as an installed package has them: where
    PYTHONDONTWRITEBYTECODE is set, each ``ql`` process would otherwise compile every module changed
    since its last compile (0.03-0.1 s a process), which a user's installation never does."""
    import compileall

    for package in ("lake", "ingest", "monitors", "app"):
        compileall.compile_dir(ROOT / package, quiet=1)
