"""Preview images of SCI extensions: decimated, zscale or log stretched, cached as PNG beside the lake.

Pipeline (timings in ``docs/background/streamlit-recipe.md`` §5): read the extension, block-average it to at
most ``size`` pixels on the long side, stretch the small array, flip it (FITS row 1 is at the bottom),
encode PNG. Thumbnails live in ``<lake>/thumbnails/`` under a name hashed from the file's path, size,
mtime, HDU, stretch and size, so a changed file gets a new thumbnail and a stale one is never shown.
Access goes through the viewer's :class:`app.data.scope.Scope`: a guest gets no preview of proprietary data.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from app.data.browse import archive_path
from app.data.scope import Scope
from lake.errors import FitsError, QueryError

Stretch = Literal["zscale", "log"]
VERSION = 2  # bump when the rendering changes: old thumbnails are then not reused


def _read(location: str, hdu: int, size: int) -> tuple[np.ndarray, int]:
    """Every k-th row of the image (first plane of a cube), k chosen so that about ``size`` rows remain:
    a preview reads about 1/k of the pixels and holds ``size`` rows in memory, whatever the image's size
    (a 20 GB mosaic as much as a 16 MB flt). Returns the rows and k."""
    local = "://" not in location or location.startswith("file://")
    try:
        if local:
            return _read_local(location.removeprefix("file://"), hdu, size)
        return _read_remote(location, hdu, size)
    except (OSError, IndexError, TypeError, ValueError) as e:
        raise FitsError(location, f"cannot be read for a preview: {e}", hdu=hdu) from None


def _step(dims: tuple[int, ...] | list[int], size: int) -> int:
    return max(1, int(np.ceil(max(dims[-2:]) / size)))


def _read_local(path: str, hdu: int, size: int) -> tuple[np.ndarray, int]:
    import fitsio

    with fitsio.FITS(path) as f:  # cfitsio reads a strided subset: only the rows drawn
        h = f[hdu]
        dims = list(h.get_dims()) if h.get_exttype() == "IMAGE_HDU" else []
        if len(dims) < 2:
            raise FitsError(path, "has no image to preview", hdu=hdu)
        k = _step(dims, size)
        planes: tuple[slice | int, ...] = tuple(0 for _ in dims[:-2])
        rows = h[(*planes, slice(0, dims[-2], k), slice(0, dims[-1]))]
        return np.asarray(rows, dtype=np.float32).reshape(-1, dims[-1]), k


def _read_remote(location: str, hdu: int, size: int) -> tuple[np.ndarray, int]:
    from astropy.io import fits

    # fsspec + section: astropy fetches the byte ranges of the rows asked for, not the whole image
    with fits.open(location, use_fsspec=True, lazy_load_hdus=True) as hl:
        h = hl[hdu]
        dims = tuple(h.shape) if getattr(h, "is_image", False) and h.header.get("NAXIS", 0) else ()
        if len(dims) < 2:
            raise FitsError(location, "has no image to preview", hdu=hdu)
        k = _step(dims, size)
        planes = tuple(0 for _ in dims[:-2])
        return np.asarray(h.section[(*planes, slice(0, None, k), slice(None))], dtype=np.float32), k


def _shrink(a: np.ndarray, k: int) -> np.ndarray:
    """Block-average the columns in k's of rows already read one in k (see :func:`_read`)."""
    if k == 1:
        return a
    w = (a.shape[1] // k) * k
    return a[:, :w].reshape(a.shape[0], w // k, k).mean(axis=2)


def stretch_to_uint8(a: np.ndarray, stretch: Stretch) -> np.ndarray:
    from astropy.visualization import ZScaleInterval

    finite = np.isfinite(a)
    a = np.where(finite, a, np.nanmedian(a[finite]) if finite.any() else 0.0)
    if stretch == "log":
        lo, hi = np.percentile(a, [0.5, 99.9])
        s = np.log10(1.0 + 999.0 * np.clip((a - lo) / max(hi - lo, 1e-12), 0, 1)) / 3.0
    else:
        lo, hi = ZScaleInterval().get_limits(a)
        s = np.clip((a - lo) / max(hi - lo, 1e-12), 0, 1)
    return (s * 255 + 0.5).astype(np.uint8)[::-1]


# the files with images, in the order a preview opens them (an association's first file is its asn table)
IMAGED = ("_drc.fits", "_drz.fits", "_flc.fits", "_flt.fits", "_ima.fits", "_raw.fits")


def first_image(paths: list[str]) -> int:
    """The index in ``paths`` (a dataset's files) of the one a preview opens first: the first of
    :data:`IMAGED`'s kinds (0 if none)."""
    for kind in IMAGED:
        for i, path in enumerate(paths):
            if path.endswith(kind):
                return i
    return 0


class BlankImage(FitsError):
    """An image extension whose pixels all have one value: nothing to draw (not a fault of the file)."""


def _blank(location: str, hdu: int, value: float) -> BlankImage:
    return BlankImage(
        location, f"all pixels are {value:g}: nothing to preview (a headers-only or sparse file?)", hdu=hdu
    )


def simulated_rows(scope: Scope, path: str, hdu: int) -> str | None:
    """The rows a generated sparse file simulated in extension ``hdu`` (its ``QLROWS`` card, e.g.
    ``256:320,1024:1088``; None for real files and whole images): the rest of the image is zeros."""
    scope.require_file(path)

    def look() -> str | None:
        got = scope.file_sql(
            "cards",
            [path],
            "SELECT value_str FROM {rows} WHERE path = ? AND hdu = ? AND keyword = 'QLROWS' LIMIT 1",
            [path, hdu],
        ).to_pylist()
        return str(got[0]["value_str"]) if got and got[0]["value_str"] else None

    # (once per file and snapshot: the preview asks again at every rerun, a stretch or zoom)
    return scope.memo(("qlrows", path, hdu), look)


def row_mask(rows: str, y: np.ndarray) -> np.ndarray:
    """Which of the FITS rows ``y`` (1-based, as :class:`View` gives them) a QLROWS value simulated."""
    idx = np.asarray(y) - 1
    mask = np.zeros(idx.shape, bool)
    from monitors.calibration.fitsdata import row_ranges

    for a, b in row_ranges({"QLROWS": rows}, len(idx)):
        mask |= (idx >= a) & (idx < b)
    return mask


def covers(rows: str, ny: int) -> bool:
    """Whether a QLROWS value simulated every one of an image's ``ny`` rows."""
    return bool(row_mask(rows, np.arange(1, ny + 1)).all())


def render(location: str, hdu: int, stretch: Stretch = "zscale", size: int = 512) -> bytes:
    """PNG bytes of one image extension of a FITS file (local path or fsspec URL)."""
    from PIL import Image

    small = _shrink(*_read(location, hdu, size))
    finite = small[np.isfinite(small)]
    if not finite.size:
        raise _blank(location, hdu, float("nan"))
    if not finite.max() > finite.min():
        raise _blank(location, hdu, float(finite.min()))
    img = stretch_to_uint8(small, stretch)
    buf = io.BytesIO()
    Image.fromarray(img, mode="L").save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _cached(scope: Scope, key: str, make: Callable[[], bytes]) -> bytes:
    """The bytes cached under ``key`` in ``<lake>/thumbnails``, made (and stored atomically) on a miss.

    An empty file remembers "nothing to show", so a blank image is not read again on every page.
    """
    name = hashlib.sha256(f"{VERSION}|{key}".encode()).hexdigest()[:32] + ".png"
    cache = scope.lake_root / "thumbnails" / name[:2]
    target = cache / name
    if target.exists():
        return target.read_bytes()
    data = make()
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, target)  # readers see a whole PNG or none
    return data


def preview(scope: Scope, path: str, hdu: int, stretch: Stretch = "zscale", size: int = 512) -> bytes:
    """The cached PNG of extension ``hdu`` of archive file ``path``, rendered on first request."""
    if stretch not in ("zscale", "log"):
        raise QueryError(f"stretch must be 'zscale' or 'log', not {stretch!r}")
    row = scope.require_file(path)

    def make() -> bytes:
        try:
            return render(archive_path(scope, path), hdu, stretch, size)
        except FitsError as e:
            if "nothing to preview" in e.reason:
                return b""
            raise

    png = _cached(scope, f"{path}|{row['size']}|{row['mtime']}|{hdu}|{stretch}|{size}", make)
    if not png:
        raise _blank(path, hdu, 0.0)
    return png


def image_hdus(scope: Scope, path: str) -> list[tuple[int, str]]:
    """(HDU index, label) of the SCI image extensions of a file, for the preview picker."""
    from app.data.browse import hdus

    out = []
    for r in hdus(scope, path).to_pylist():
        if (r["naxis"] or 0) >= 2 and (r["extname"] in (None, "SCI", "PRIMARY") or r["hdu"] == 0):
            if r["hdu"] == 0 and r["naxis1"] is None:
                continue
            label = (
                f"{r['hdu']}: {r['extname'] or 'PRIMARY'},{r['extver'] or 1} ({r['naxis1']}x{r['naxis2']})"
            )
            out.append((int(r["hdu"]), label))
    return out


def dataset_thumbnail(scope: Scope, rootname: str, size: int = 256) -> bytes | None:
    """A small zscale image of a dataset's first SCI extension with pixels (flt, flc, raw, ima, drz, drc),
    or None. Cached per dataset (keyed by its files' sizes and mtimes), so a warm listing reads no FITS.

    See Also
    --------
    dataset_thumbnails : the same for a page of datasets, with one query of their files.
    """
    scope.require_dataset(rootname)
    return dataset_thumbnails(scope, [rootname], size)[rootname]


def dataset_thumbnails(scope: Scope, rootnames: list[str], size: int = 256) -> dict[str, bytes | None]:
    """:func:`dataset_thumbnail` of each of ``rootnames`` the viewer may see (None: no pixels to show),
    their files read in one query (a Browse page asked once per card, 12 queries)."""
    if not rootnames:
        return {}
    marks = ", ".join("?" * len(rootnames))
    rows = scope.sql(
        f"SELECT rootname, path, filetype, size, mtime FROM files WHERE rootname IN ({marks}) "
        "AND status = 'ok' ORDER BY rootname, path",
        list(rootnames),
    ).to_pylist()
    by_root: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_root.setdefault(r["rootname"], []).append(r)
    return {r: _thumbnail(scope, r, by_root.get(r, []), size) for r in rootnames}


def _thumbnail(scope: Scope, rootname: str, rows: list[dict[str, Any]], size: int) -> bytes | None:
    by_type = {r["filetype"]: r["path"] for r in rows}

    def make() -> bytes:
        for ft in ("flt", "flc", "raw", "ima", "drz", "drc"):
            if ft in by_type:
                for h, _ in image_hdus(scope, by_type[ft])[:1]:
                    try:
                        return preview(scope, by_type[ft], h, "zscale", size)
                    except FitsError:
                        continue  # blank or unreadable: try the next file type
        return b""

    key = f"dataset|{rootname}|{size}|" + "|".join(f"{r['path']}:{r['size']}:{r['mtime']}" for r in rows)
    return _cached(scope, key, make) or None


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, from its header (the page reserves the image's place before it loads)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 24:
        raise ValueError("not a PNG")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


# --- the interactive viewer: pixel values (not PNGs), bounded in size ----------------------------------

Box = tuple[int, int, int, int]  # x0, x1, y0, y1: 1-based and inclusive, as in an IRAF section [x0:x1,y0:y1]


@dataclass(frozen=True)
class View:
    """Pixels of one image extension as the viewer draws them: ``data[i, j]`` is the file's pixel at
    FITS column ``x[j]``, row ``y[i]`` (1-based; every ``step``-th pixel of ``box``, never averaged, so a
    value on hover is a value in the file)."""

    data: np.ndarray
    x: np.ndarray
    y: np.ndarray
    step: int
    box: Box
    shape: tuple[int, int]  # the whole extension's (rows, columns)
    bunit: str
    extver: int


def parse_box(text: str, shape: tuple[int, int]) -> Box | None:
    """``"x0:x1,y0:y1"`` (brackets optional, 1-based inclusive, clipped to the image); empty means the
    whole image. A malformed or empty region is a :class:`QueryError` saying what to type."""
    t = text.strip().strip("[]").replace(" ", "")
    if not t:
        return None
    try:
        xs, ys = t.split(",")
        (x0, x1), (y0, y1) = (tuple(int(v) for v in s.split(":")) for s in (xs, ys))
    except ValueError:
        raise QueryError(f"region {text!r}: write it as x0:x1,y0:y1, e.g. 100:300,200:400") from None
    ny, nx = shape
    x0, x1, y0, y1 = max(1, min(x0, x1)), min(nx, max(x0, x1)), max(1, min(y0, y1)), min(ny, max(y0, y1))
    if x0 > x1 or y0 > y1:
        raise QueryError(f"region {text!r} lies outside the {nx}x{ny} image")
    return x0, x1, y0, y1


def _read_box(location: str, hdu: int, box: Box | None, size: int) -> View:
    """Every k-th row and column of ``box`` (k so that at most ``size`` remain on each side): only the rows
    drawn are read (fitsio locally, astropy sections over fsspec remotely), as :func:`_read` does."""
    local = "://" not in location or location.startswith("file://")
    try:
        if local:
            import fitsio

            with fitsio.FITS(location.removeprefix("file://")) as f:
                h = f[hdu]
                dims = list(h.get_dims()) if h.get_exttype() == "IMAGE_HDU" else []
                hdr = h.read_header() if len(dims) >= 2 else {}
                return _view(location, hdu, dims, hdr, box, size, lambda key: h[key])
        from astropy.io import fits

        with fits.open(location, use_fsspec=True, lazy_load_hdus=True) as hl:
            ah = hl[hdu]
            dims = list(ah.shape) if getattr(ah, "is_image", False) and ah.header.get("NAXIS", 0) else []
            return _view(location, hdu, dims, ah.header, box, size, lambda key: ah.section[key])
    except (OSError, IndexError, TypeError, ValueError) as e:
        raise FitsError(location, f"cannot be read for a preview: {e}", hdu=hdu) from None


def _view(location: str, hdu: int, dims: list[int], hdr: Any, box: Box | None, size: int, get: Any) -> View:
    if len(dims) < 2:
        raise FitsError(location, "has no image to preview", hdu=hdu)
    ny, nx = int(dims[-2]), int(dims[-1])
    x0, x1, y0, y1 = box or (1, nx, 1, ny)
    k = _step([y1 - y0 + 1, x1 - x0 + 1], size)
    planes = tuple(0 for _ in dims[:-2])
    a = np.asarray(get((*planes, slice(y0 - 1, y1, k), slice(x0 - 1, x1, k))), dtype=np.float32)
    a = a.reshape(a.shape[-2], a.shape[-1])
    return View(
        data=a,
        x=np.arange(x0, x1 + 1, k)[: a.shape[1]],
        y=np.arange(y0, y1 + 1, k)[: a.shape[0]],
        step=k,
        box=(x0, x1, y0, y1),
        shape=(ny, nx),
        bunit=str(hdr.get("BUNIT") or "").strip(),
        extver=int(hdr.get("EXTVER") or 1),
    )


def view(scope: Scope, path: str, hdu: int, region: str = "", size: int = 512) -> View:
    """The pixels the viewer draws of extension ``hdu`` of archive file ``path``: the whole image one pixel
    in k (at most ``size`` x ``size``), or the ``region`` (``x0:x1,y0:y1``) at full resolution while it fits
    in ``size`` x ``size`` (decimated too when larger). Blank images raise the words of :func:`render`."""
    row = scope.require_file(path)  # a guest gets nothing of proprietary data
    location = archive_path(scope, path)
    stamp = (row["size"], row["mtime"])  # a changed file is read again
    whole = _read_box_cached(location, hdu, None, size, stamp)
    finite = whole.data[np.isfinite(whole.data)]
    if not finite.size:
        raise _blank(path, hdu, float("nan"))
    if not finite.max() > finite.min():
        raise _blank(path, hdu, float(finite.min()))
    box = parse_box(region, whole.shape)
    return whole if box is None else _read_box_cached(location, hdu, box, size, stamp)


@functools.lru_cache(maxsize=32)  # at most 32 arrays of 512 x 512 float32 (32 MB) per server process
def _read_box_cached(location: str, hdu: int, box: Box | None, size: int, stamp: tuple[Any, Any]) -> View:
    """:func:`_read_box`, kept for the reruns a click on the page makes (stretch, zoom, the other tabs):
    the access check stays outside, in :func:`view`."""
    v = _read_box(location, hdu, box, size)
    v.data.flags.writeable = False  # shared between sessions
    return v


STRETCHES = ("zscale", "log", "linear")


def limits(a: np.ndarray, stretch: str) -> tuple[float, float]:
    """The data values drawn black and white: zscale (IRAF's), 0.5-99.9 percentiles for log, min-max for
    linear."""
    from astropy.visualization import ZScaleInterval

    finite = a[np.isfinite(a)]
    if not finite.size:
        return 0.0, 1.0
    if stretch == "zscale":
        lo, hi = ZScaleInterval().get_limits(finite)
    elif stretch == "log":
        lo, hi = np.percentile(finite, [0.5, 99.9])
    elif stretch == "linear":
        lo, hi = finite.min(), finite.max()
    else:
        raise QueryError(f"stretch must be one of {', '.join(STRETCHES)}, not {stretch!r}")
    return float(lo), float(hi) if hi > lo else float(lo) + 1.0


def colorscale(stretch: str, stops: int = 33) -> list[list[float | str]]:
    """A grey colour scale over [zmin, zmax] in data units: linear, or logarithmic (the
    ``log10(1 + 999 t) / 3`` of :func:`stretch_to_uint8`) so the colour bar keeps the file's values."""
    out: list[list[float | str]] = []
    for t in np.linspace(0.0, 1.0, stops):
        s = np.log10(1.0 + 999.0 * t) / 3.0 if stretch == "log" else t
        g = round(255 * float(s))
        out.append([float(t), f"rgb({g},{g},{g})"])
    return out
