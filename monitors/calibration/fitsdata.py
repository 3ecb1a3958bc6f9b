"""Reading pixel rows for the monitors: only the rows a file holds (``QLROWS``), in physical units.

A generated sparse archive marks each simulated HDU with ``QLROWS = 'a:b,c:d'`` (row ranges); real
files have no such card and all rows are read. Slices are read with fitsio (no full-frame copy).
"""

from __future__ import annotations

from typing import Any

import fitsio
import numpy as np


def row_ranges(header: Any, nrows: int) -> list[tuple[int, int]]:
    spec = header.get("QLROWS") if header is not None else None
    if not spec:
        return [(0, nrows)]
    out = []
    for part in str(spec).split(","):
        a, b = part.split(":")
        out.append((int(a), int(b)))
    return out


def runs(rows: np.ndarray) -> list[tuple[int, int]]:
    """Row ranges (a, b) of ascending row numbers."""
    if not len(rows):
        return []
    cut = np.flatnonzero(np.diff(rows) != 1) + 1
    return [(int(r[0]), int(r[-1]) + 1) for r in np.split(rows, cut)]


def read_rows(
    path: str,
    ext: int | tuple[str, int],
    dtype: Any = np.float64,
    ranges: list[tuple[int, int]] | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(row numbers, data rows as ``dtype``, header as a dict) of one image HDU: the rows its header
    says it holds, or ``ranges`` (e.g. those of a companion HDU)."""
    with fitsio.FITS(path) as f:
        hdu = f[ext]
        hdr = hdu.read_header()
        nrows = int(hdr["NAXIS2"])
        blocks, rows = [], []
        for a, b in ranges if ranges is not None else row_ranges(hdr, nrows):
            blocks.append(np.asarray(hdu[a:b, :], dtype=dtype))
            rows.append(np.arange(a, b))
        header = as_dict(hdr)
    # one block (every row of a real file) is returned as read: a stack of one would copy the frame
    return np.concatenate(rows), blocks[0] if len(blocks) == 1 else np.vstack(blocks), header


def primary(path: str) -> dict[str, Any]:
    with fitsio.FITS(path) as f:
        hdr = f[0].read_header()
    return as_dict(hdr)


def as_dict(hdr: Any) -> dict[str, Any]:
    """Keyword -> value, first occurrence wins (as ``header[key]`` does); commentary cards skipped."""
    out: dict[str, Any] = {}
    for rec in hdr.records():
        name = rec.get("name")
        if name and name not in {"HISTORY", "COMMENT"} and name not in out:
            out[name] = rec.get("value")
    return out
