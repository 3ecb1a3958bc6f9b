"""A worker's peak memory per batch, by file mix: bounded by cards, not by files (#16).

    python bench/worker_memory.py [--datasets 300] [--files 2000] [--batch-cards 1000000]

One ingest task (``ingest.batch.process_batch``, what a Dask worker runs) of --files files of one mix,
in a fresh process each, its peak RSS (VmHWM) read at the end: ``mixed`` (every file type as the
archive holds them), ``raw`` and ``ima`` (IR ima and raw files carry some 80 HDUs each, the most cards
per file). A generated headers-only archive has fewer files of one type than --files, so its files of
that type are repeated in the task's list (each read and parsed again, as many files would be). Each
mix runs with the ``batch_cards`` bound and without it (the baseline, measured in the same run: the
whole batch's cards held at once, as before the bound). Target: < 1 GiB per worker whatever the mix.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _util import ROOT, archive

CHILD = r"""
import json, os, sys
from ingest.batch import BatchTask, FileJob, process_batch
from lake.layout import DEFAULT_TEMPLATES
archive, out, cards, listing = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
jobs = [FileJob(p, os.path.getsize(os.path.join(archive, p)), 0.0) for p in listing]
parts = process_batch(BatchTask("bench", archive, jobs, out, DEFAULT_TEMPLATES, {}, cards))
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"parts": len(parts), "cards": sum(p.n_cards for p in parts), "hwm_kib": hwm}))
"""


def run_task(arch: Path, files: list[str], max_cards: int) -> dict[str, int]:
    """One task in a fresh process: its parts, cards and peak RSS."""
    out = Path(tempfile.mkdtemp(prefix="wm-out-"))
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        got = subprocess.run(
            [sys.executable, "-c", CHILD, str(arch), str(out), str(max_cards), json.dumps(files)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        result: dict[str, int] = json.loads(got.stdout.strip().splitlines()[-1])
        return result
    finally:
        shutil.rmtree(out, ignore_errors=True)


def mixes(arch: Path, paths: list[str], n: int) -> dict[str, list[str]]:
    """--files relative paths per mix, the type's files repeated up to n."""
    rel = [os.path.relpath(p, arch) for p in paths]
    out = {}
    for mix, keep in (("mixed", ""), ("raw", "_raw.fits"), ("ima", "_ima.fits")):
        pool = [p for p in rel if p.endswith(keep)]
        out[mix] = [pool[i % len(pool)] for i in range(n)] if pool else []
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=int, default=300)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--batch-cards", type=int, default=1_000_000)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wm-"))
    failed = 0
    try:
        arch = work / "archive"
        paths = archive(arch, a.datasets)
        print(f"one ingest task of {a.files} files per mix; peak RSS of the worker process")
        head = f"  {'mix':<6} {'cards':>11} {'parts':>6} {'unbounded MiB':>14} {'bounded MiB':>12}"
        print(head + f" {'ratio':>6}")
        for mix, files in mixes(arch, paths, a.files).items():
            free = run_task(arch, files, 10**12)
            bound = run_task(arch, files, a.batch_cards)
            mib_free, mib = free["hwm_kib"] / 1024, bound["hwm_kib"] / 1024
            print(f"  {mix:<6} {bound['cards']:>11,} {bound['parts']:>6} {mib_free:>14,.0f} {mib:>12,.0f}"
                  f" {mib / mib_free:>6.2f}")  # fmt: skip
            failed |= mib >= 1024
        print(f"  {'FAIL' if failed else 'PASS'}  worker peak RSS < 1024 MiB for every mix (batch_cards "
              f"{a.batch_cards:,})")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return int(failed)


if __name__ == "__main__":
    raise SystemExit(main())
