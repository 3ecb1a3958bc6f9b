"""Archive generation speed: headers only and sparse pixels, against the filesystem's own floor.

    python bench/generate.py [--datasets 2500]

Times ingest.archivegen.generate with --pixels none and sparse, and the floor: creating the same files
(same folders, same sizes, one header block each) with nothing rendered. On this sandbox file creation
itself costs ~0.3-1 ms (a Firecracker VM disk), which caps any generator well below 2,000 files/s;
the floor line shows what the disk allows in the same run.
Target (issue #3): headers-only >= 2,000 files/s, reported with the floor.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from _util import report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", type=int, default=2500)
    ap.add_argument("--sparse-datasets", type=int, default=300)
    args = ap.parse_args()

    from ingest.archivegen import generate, iter_files, plan
    from lake.layout import Layout

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        t0 = time.perf_counter()
        n = generate(base / "none", args.datasets, seed=1, pixels="none")
        r_none = n / (time.perf_counter() - t0)
        sizes = {p: p.stat().st_size for p in (base / "none").rglob("*.fits")}
        shutil.rmtree(base / "none")

        t0 = time.perf_counter()
        for rel, _e, _ft in iter_files(plan(args.datasets, 1), Layout()):
            p = base / "floor" / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
            os.pwrite(fd, b" " * 2880, 0)
            os.ftruncate(fd, sizes.get(base / "none" / rel, 2880))
            os.close(fd)
        r_floor = n / (time.perf_counter() - t0)
        shutil.rmtree(base / "floor")

        t0 = time.perf_counter()
        m = generate(base / "sparse", args.sparse_datasets, seed=1, pixels="sparse")
        r_sparse = m / (time.perf_counter() - t0)
        disk = sum(p.stat().st_blocks * 512 for p in (base / "sparse").rglob("*.fits"))
        print(f"{n:,} headers-only files; {m:,} sparse files ({disk / 2**20:,.0f} MiB on disk)")
        return report(
            "archive generation",
            [
                ("headers only", r_none, "files/s"),
                ("floor: create the same files, nothing rendered", r_floor, "files/s"),
                ("sparse pixels", r_sparse, "files/s"),
            ],
            [
                ("headers only", r_none, 2000, " files/s"),
                ("headers only / filesystem floor (x100 = %)", 100 * r_none / r_floor, 50, "%"),
            ],
        )


if __name__ == "__main__":
    raise SystemExit(main())
