"""A lake fed by cron, before and after `ql maintain`.

    python bench/maintenance.py [--datasets 40] [--ingests 20]

Ingests a generated archive, then runs --ingests incremental ingests that each find one changed file
(what a cron ingest does all day), then `maintain(keep_hours=0)`, then --ingests // 4 more. Prints the
one-file ingest time at the start, just before maintenance and after it, and the lake's files and bytes
on disk. Targets (ratios within this run): after maintenance a one-file ingest takes no longer than
1.5x the first one did, and the lake is back under 1.5x its files and bytes after the first ingest.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from _util import archive, report


def disk(lake: Path) -> tuple[int, int]:
    files = [p for p in lake.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", type=int, default=40)
    ap.add_argument("--ingests", type=int, default=20)
    args = ap.parse_args()

    from ingest.run import ingest
    from lake.maintenance import maintain

    with tempfile.TemporaryDirectory() as tmp:
        arch, lake = Path(tmp) / "archive", Path(tmp) / "lake"
        flts = [Path(f) for f in archive(arch, args.datasets) if f.endswith("_flt.fits")]
        ingest(lake, str(arch), scheduler="synchronous")
        start_disk = disk(lake)
        step = iter(range(1, 10**6))

        def one_change() -> float:
            i = next(step)
            f = flts[i % len(flts)]
            os.utime(f, (time.time(), time.time() + i))
            t0 = time.perf_counter()
            s = ingest(lake, str(arch), scheduler="synchronous")
            assert s.changed == 1, s.lines()
            return time.perf_counter() - t0

        times = [one_change() for _ in range(args.ingests)]
        grown_disk = disk(lake)
        t0 = time.perf_counter()
        summary = maintain(lake, keep_hours=0)
        t_maintain = time.perf_counter() - t0
        kept_disk = disk(lake)
        after = [one_change() for _ in range(max(3, args.ingests // 4))]
        first, last = statistics.median(times[:3]), statistics.median(times[-3:])
        now = statistics.median(after)
        print("\n".join(summary.lines()))
        return report(
            f"one-file incremental ingests ({args.datasets} datasets, {args.ingests} ingests), then maintain",
            [
                ("one-file ingest, first three (median)", 1000 * first, "ms"),
                (f"one-file ingest, after {args.ingests} (median)", 1000 * last, "ms"),
                ("one-file ingest, after maintenance (median)", 1000 * now, "ms"),
                ("maintenance", 1000 * t_maintain, "ms"),
                ("lake files: first ingest", start_disk[0], "files"),
                (f"lake files: after {args.ingests} ingests", grown_disk[0], "files"),
                ("lake files: after maintenance", kept_disk[0], "files"),
                ("lake MB: first ingest", start_disk[1] / 1e6, "MB"),
                (f"lake MB: after {args.ingests} ingests", grown_disk[1] / 1e6, "MB"),
                ("lake MB: after maintenance", kept_disk[1] / 1e6, "MB"),
            ],
            [
                ("first / after-maintenance ingest time", first / now, 1 / 1.5, "x"),
                ("first-ingest files / maintained files", start_disk[0] / kept_disk[0], 1 / 1.5, "x"),
                ("first-ingest bytes / maintained bytes", start_disk[1] / kept_disk[1], 1 / 1.5, "x"),
            ],
        )


if __name__ == "__main__":
    raise SystemExit(main())
