"""Monitor speed: statistics of one full-frame UVIS raw dark (target < 2 s per file per core).

    python bench/monitors.py

Writes one generated UVIS dark with full pixels (2 chips of 4206 x 2070), then times
monitors.uvis_darks.measure on it (best of 3) against reading its pixels alone with fitsio.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _util import best_of, report


def main() -> int:
    from ingest.archivegen import _file_hdus, plan, write_file
    from ingest.features import Instrument
    from monitors import uvis_darks
    from monitors.fitsdata import read_rows

    dark = next(e for e in plan(200, 1) if e.detector == "UVIS" and e.imagetyp == "DARK")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{dark.rootname}_raw.fits"
        t0 = time.perf_counter()
        hdus, _ = _file_hdus(dark, "raw", Instrument(1), "full")
        write_file(path, hdus)
        t_gen = time.perf_counter() - t0
        row = {"rootname": dark.rootname, "expstart": dark.expstart, "path": path.name}
        t_read = best_of(lambda: (read_rows(str(path), 1), read_rows(str(path), 4)), 3)
        t_measure = best_of(lambda: uvis_darks.measure(str(path), row), 3)
        return report(
            "one full-frame UVIS raw dark (2 x 4206 x 2070 DN)",
            [
                ("generate the file (s)", t_gen, "s"),
                ("read both chips with fitsio (s)", t_read, "s"),
                ("uvis-darks statistics, incl. reading (s)", t_measure, "s"),
            ],
            [("2 s budget / uvis-darks time", 2.0 / t_measure, 1, "x")],
        )


if __name__ == "__main__":
    raise SystemExit(main())
