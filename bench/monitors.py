"""Monitor speed: statistics of full-frame UVIS raw darks (target < 2 s per file per core).

    python bench/monitors.py

Writes a superdark window of generated UVIS darks with full pixels and on-orbit cosmic rays (8 frames,
2 chips of 4206 x 2070 each), then times monitors.calibration.uvis_darks.measure and
monitors.calibration.uvis_ctecorr_darks.measure on the window (best of 3; per-pixel cosmic-ray rejection
included) against reading the frames' pixels alone with fitsio. Per-file times are the window's / 8."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _util import best_of, report


def main() -> int:
    from ingest.archivegen.features import Instrument
    from ingest.archivegen.generate import _file_hdus, plan, write_file
    from monitors.calibration import uvis_ctecorr_darks, uvis_darks
    from monitors.calibration.fitsdata import read_rows

    darks = [e for e in plan(200, 1) if e.detector == "UVIS" and e.imagetyp == "DARK"]
    window = sorted((e for e in darks if abs(e.expstart - darks[0].expstart) < 4), key=lambda e: e.expstart)
    inst = Instrument(1)
    with tempfile.TemporaryDirectory() as tmp:
        members = []
        t0 = time.perf_counter()
        for e in window:
            path = Path(tmp) / f"{e.rootname}_raw.fits"
            write_file(path, _file_hdus(e, "raw", inst, "full")[0])
            members.append({"rootname": e.rootname, "expstart": e.expstart, "abs_path": str(path),
                            "path": path.name})  # fmt: skip
        t_gen = (time.perf_counter() - t0) / len(window)
        row = {**members[0], "members": members}
        n = len(members)

        def read_all() -> None:
            for m in members:
                read_rows(m["abs_path"], 1), read_rows(m["abs_path"], 4)

        t_read = best_of(read_all, 3) / n
        t_dark = best_of(lambda: uvis_darks.measure(members[0]["abs_path"], row), 3) / n
        t_cte = best_of(lambda: uvis_ctecorr_darks.measure(members[0]["abs_path"], row), 3) / n
        return report(
            f"a superdark of {n} full-frame UVIS raw darks (2 x 4206 x 2070 DN each); times per file",
            [
                ("generate one file (s)", t_gen, "s"),
                ("read both chips with fitsio (s)", t_read, "s"),
                ("uvis-darks, incl. reading (s)", t_dark, "s"),
                ("uvis-ctecorr-darks, incl. reading (s)", t_cte, "s"),
            ],
            [
                ("2 s budget / uvis-darks time per file", 2.0 / t_dark, 1, "x"),
                ("2 s budget / uvis-ctecorr-darks time per file", 2.0 / t_cte, 1, "x"),
            ],
        )


if __name__ == "__main__":
    raise SystemExit(main())
