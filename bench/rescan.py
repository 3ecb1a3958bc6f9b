"""No-op incremental rescan of a 100k-file archive: `ql ingest` when nothing changed.

    python bench/rescan.py [--files 100000]

Writes --files small valid FITS files (a primary header each) in the archive layout, ingests them once
(timed, for information), then times a second ingest that finds nothing to do, against the floor of
listing and stat-ing the same files with os.scandir. Target: the rescan costs <= 3x that floor.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _util import best_of, report

CARDS = [
    "SIMPLE  =                    T / conforms to FITS standard",
    "BITPIX  =                    8 / array data type",
    "NAXIS   =                    0 / number of array dimensions",
    "EXTEND  =                    T",
    "INSTRUME= 'WFC3  '             / identifier for instrument used to acquire data",
    "DETECTOR= 'UVIS'               / detector in use: UVIS or IR",
    "ROOTNAME= '{root}'          / rootname of the observation set",
    "PROPOSID=                {prop} / PEP proposal identifier",
    "DATE-OBS= '2016-03-{day:02d}'         / UT date of start of observation (yyyy-mm-dd)",
    "EXPTIME =                {exp:5.1f} / exposure duration (seconds)--calculated",
]


def write_archive(root: Path, n: int) -> None:
    from lake.layout import Layout

    layout = Layout("{proposid}/Visit{visit}/{rootname}_{filetype}.fits")
    for i in range(n):
        prop = 10000 + i // 400
        visit = f"{(i // 20) % 20:02d}"
        root_name = f"i{i // 400:03d}{visit}{(i // 2) % 10:01d}{'ab'[i % 2]}q"[:9].lower()
        rel = layout.path(prop, root_name, "raw" if i % 2 else "flt")
        header = "".join(
            c.format(root=root_name, prop=prop, day=1 + i % 28, exp=float(i % 500)).ljust(80) for c in CARDS
        )
        header += "END".ljust(80)
        data = header.encode().ljust(2880, b" ")
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=100_000)
    args = ap.parse_args()

    from ingest.run import ingest
    from lake.archive import scan_archive

    with tempfile.TemporaryDirectory() as tmp:
        archive, lake = Path(tmp) / "archive", Path(tmp) / "lake"
        write_archive(archive, args.files)
        t0 = time.perf_counter()
        first = ingest(lake, str(archive), scheduler="synchronous", batch_files=25_000)
        t_first = time.perf_counter() - t0
        assert first.ingested == args.files and first.errors == 0, first.lines()

        def listing() -> None:
            n = 0
            for d, _dirs, names in os.walk(archive):
                for name in names:
                    os.stat(os.path.join(d, name))
                    n += 1
            assert n == args.files

        def rescan() -> None:
            s = ingest(lake, str(archive), scheduler="synchronous")
            assert s.ingested == 0 and s.unchanged == args.files, s.lines()

        t_list = best_of(listing)
        t_scan = best_of(lambda: scan_archive(str(archive)))
        t_noop = best_of(rescan)
        print(f"{args.files:,} files")
        return report(
            "no-op incremental rescan",
            [
                ("first ingest", args.files / t_first, "files/s"),
                ("floor: os.walk + stat", 1000 * t_list, "ms"),
                ("scan_archive (scandir)", 1000 * t_scan, "ms"),
                ("no-op `ql ingest`", 1000 * t_noop, "ms"),
            ],
            [("floor / no-op rescan (x100 = %)", 100 * t_list / t_noop, 33, "%")],
        )


if __name__ == "__main__":
    raise SystemExit(main())
