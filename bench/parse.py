"""Header parsing throughput per core: Quicklake's reader vs astropy.io.fits, fitsio and raw reads.

    python bench/parse.py [--datasets 520] [--astropy-files 400]

Generates a headers-only archive (>= 2,000 files of WFC3 types, UVIS and IR), then measures in one
process, warm cache, best of 3:
  raw     reading just the header blocks of every HDU (known offsets; the floor of any reader)
  ql      ingest.fitsheader: find every HDU, read its header, parse every card to typed columns
  astropy astropy.io.fits.open + every card's keyword, value and comment
  fitsio  fitsio.FITS + read_header of every HDU
Targets (issue #2): ql >= 25x astropy and >= 10% of the raw-read rate.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import warnings
from pathlib import Path

from _util import archive, best_of, report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", type=int, default=520, help="datasets to generate (~4 files each)")
    ap.add_argument("--astropy-files", type=int, default=400, help="files timed with astropy/fitsio")
    ap.add_argument("--dir", help="where to keep the archive (default: a temporary folder)")
    args = ap.parse_args()

    import fitsio
    from astropy.io import fits

    from ingest.fitsheader import parse_headers, read_raw_headers

    with tempfile.TemporaryDirectory() as tmp:
        files = archive(Path(args.dir or tmp) / "archive", args.datasets)
        sample = files[:: max(1, len(files) // args.astropy_files)][: args.astropy_files]
        offsets = {f: [(r.offset, len(r.data)) for r in read_raw_headers(f)] for f in files}
        n_hdus = sum(len(v) for v in offsets.values())
        n_bytes = sum(n for v in offsets.values() for _o, n in v)

        def raw() -> None:
            for f, spans in offsets.items():
                fd = os.open(f, os.O_RDONLY)
                try:
                    for off, n in spans:
                        os.pread(fd, n, off)
                finally:
                    os.close(fd)

        n_cards = 0

        def ql() -> None:
            nonlocal n_cards
            headers = [r.data for f in files for r in read_raw_headers(f)]
            n_cards = parse_headers(headers).num_rows

        def with_astropy() -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for f in sample:
                    with fits.open(f) as hdul:
                        for h in hdul:
                            [(c.keyword, c.value, c.comment) for c in h.header.cards]

        def with_fitsio() -> None:
            for f in sample:
                with fitsio.FITS(f) as ff:
                    for h in ff:
                        h.read_header()

        t_raw = best_of(raw)
        t_ql = best_of(ql)
        t_ap = best_of(with_astropy, 1)
        t_fi = best_of(with_fitsio, 1)
        r_raw, r_ql = len(files) / t_raw, len(files) / t_ql
        r_ap, r_fi = len(sample) / t_ap, len(sample) / t_fi
        print(f"{len(files):,} files, {n_hdus:,} HDUs, {n_cards:,} cards, {n_bytes / 1e6:,.0f} MB of headers")
        return report(
            "files/s per core (warm cache)",
            [
                ("raw header-block reads", r_raw, "files/s"),
                ("quicklake read+parse", r_ql, "files/s"),
                (f"astropy.io.fits ({len(sample)} files)", r_ap, "files/s"),
                (f"fitsio ({len(sample)} files)", r_fi, "files/s"),
                ("quicklake cards/s", n_cards / t_ql, "cards/s"),
            ],
            [
                ("quicklake / astropy", r_ql / r_ap, 25, "x"),
                ("quicklake / fitsio", r_ql / r_fi, 1, "x"),
                ("quicklake as % of the raw-read rate", 100 * r_ql / r_raw, 10, "%"),
            ],
        )


if __name__ == "__main__":
    raise SystemExit(main())
