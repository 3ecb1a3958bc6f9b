"""Association products and support files of a generated archive: asn, drz/drc, jif, jit and trl.

No real WFC3 file of these types was available, so their layouts follow docs/background/wfc3-headers.md §2
("expected"): ``asn`` = PRIMARY + BINTABLE ``ASN`` (MEMNAME, MEMTYPE, MEMPRSNT); ``drz``/``drc`` =
PRIMARY, SCI, WHT, CTX, HDRTAB (one row per input chip, as in the real HAP drc); ``jif`` = PRIMARY + one
IMAGE per member (EXPNAME ending in ``j``); ``jit`` = PRIMARY + one BINTABLE per member (jitter time
series); ``trl`` = PRIMARY + BINTABLE ``TRAILER`` of processing-log lines. Association products are named
after the association (``ASN_ID`` in lower case, ending in 0) and filed in its visit folder.
Table data are written for real (they are small); images are holes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest.archivegen.headertemplate import END, format_card

if TYPE_CHECKING:
    from ingest.archivegen.generate import Exposure

HDU = tuple[bytes, int, list[tuple[int, bytes]]]


def _header(cards: list[tuple[str, Any, str]]) -> bytes:
    text = "".join(format_card(k, v, c) for k, v, c in cards) + END
    return (text + " " * (-len(text) % 2880)).encode("ascii")


def _pad(n: int) -> int:
    return -(-n // 2880) * 2880


def primary(
    e: Exposure,
    filename: str,
    rootname: str,
    extra: list[tuple[str, Any, str]] | None = None,
    nextend: int = 0,
    written: str = "",
) -> HDU:
    """A product's primary header: the exposure's identity keywords under the product's name. ``nextend``
    is the number of extensions that follow; ``written`` the DATE, after every member's EXPEND."""
    from ingest.archivegen.generate import _primary_values

    v = _primary_values(e, filename.rsplit("_", 1)[1].split(".")[0])
    cards = [
        ("SIMPLE", True, "conforms to FITS standard"),
        ("BITPIX", 8, "array data type"),
        ("NAXIS", 0, "number of array dimensions"),
        ("EXTEND", True, ""),
        ("NEXTEND", nextend, "number of standard extensions"),
        ("DATE", written or v["DATE"], "date this file was written (yyyy-mm-dd)"),
        ("FILENAME", filename, "name of file"),
        (
            "FILETYPE",
            "SCI" if filename.endswith(("drz.fits", "drc.fits")) else "ASN",
            "type of data found in data file",
        ),
        ("TELESCOP", "HST", "telescope used to acquire data"),
        ("INSTRUME", "WFC3", "identifier for instrument used to acquire data"),
        ("DETECTOR", e.detector, "detector in use: UVIS or IR"),
        ("ROOTNAME", rootname, "rootname of the observation set"),
        ("IMAGETYP", v["IMAGETYP"], "type of exposure identifier"),
        ("PRIMESI", "WFC3", "instrument designated as prime"),
        ("TARGNAME", v["TARGNAME"], "proposer's target name"),
        ("RA_TARG", v["RA_TARG"], "right ascension of the target (deg) (J2000)"),
        ("DEC_TARG", v["DEC_TARG"], "declination of the target (deg) (J2000)"),
        ("PROPOSID", v["PROPOSID"], "PEP proposal identifier"),
        ("LINENUM", v["LINENUM"], "proposal logsheet line number"),
        ("PR_INV_L", v["PR_INV_L"], "last name of principal investigator"),
        ("DATE-OBS", v["DATE-OBS"], "UT date of start of observation (yyyy-mm-dd)"),
        ("TIME-OBS", v["TIME-OBS"], "UT time of start of observation (hh:mm:ss)"),
        ("EXPSTART", v["EXPSTART"], "exposure start time (Modified Julian Date)"),
        ("FILTER", v["FILTER"], "element selected from filter wheel"),
        ("APERTURE", v["APERTURE"], "aperture name"),
        ("ASN_ID", e.asn_id, "unique identifier assigned to association"),
        ("ASN_TAB", f"{e.asn_id.lower()}_asn.fits", "name of the association table"),
        (
            "ASN_MTYP",
            "PROD-DTH" if rootname.endswith("0") else "EXP-DTH",
            "Role of the Member in the Association",
        ),
    ]
    return _header(cards + (extra or [])), 0, []


def bintable(
    extname: str,
    extver: int,
    columns: list[tuple[str, str, np.ndarray]],
    extra: list[tuple[str, Any, str]] | None = None,
) -> HDU:
    """A BINTABLE HDU with real data. ``columns``: (name, TFORM, values)."""
    dtypes = []
    for name, tform, _values in columns:
        if tform.endswith("A"):
            dtypes.append((name, f"S{int(tform[:-1])}"))
        elif tform == "L":
            dtypes.append((name, "S1"))
        elif tform == "D":
            dtypes.append((name, ">f8"))
        elif tform == "K":
            dtypes.append((name, ">i8"))
        else:
            dtypes.append((name, ">i4"))
    n = len(columns[0][2]) if columns else 0
    arr = np.zeros(n, dtype=dtypes)
    for name, tform, values in columns:
        arr[name] = [(b"T" if v else b"F") for v in values] if tform == "L" else values
    row = arr.dtype.itemsize
    cards: list[tuple[str, Any, str]] = [
        ("XTENSION", "BINTABLE", "binary table extension"),
        ("BITPIX", 8, "8-bit bytes"),
        ("NAXIS", 2, "2-dimensional binary table"),
        ("NAXIS1", row, "width of table in bytes"),
        ("NAXIS2", n, "number of rows in table"),
        ("PCOUNT", 0, "size of special data area"),
        ("GCOUNT", 1, "one data group (required keyword)"),
        ("TFIELDS", len(columns), "number of fields in each row"),
    ]
    for i, (name, tform, _v) in enumerate(columns, start=1):
        cards += [
            (f"TTYPE{i}", name, f"label for field {i:3d}"),
            (f"TFORM{i}", tform, f"data format of field: {i}"),
        ]
    cards += [("EXTNAME", extname, "extension name"), ("EXTVER", extver, "extension version number")]
    cards += extra or []
    data = arr.tobytes()
    return _header(cards), _pad(len(data)), [(0, data)]


def image(
    extname: str, extver: int, bitpix: int, dims: tuple[int, int], extra: list[tuple[str, Any, str]]
) -> HDU:
    """An IMAGE extension whose data stay a hole."""
    cards: list[tuple[str, Any, str]] = [
        ("XTENSION", "IMAGE", "IMAGE extension"),
        ("BITPIX", bitpix, ""),
        ("NAXIS", 2, "number of data axes"),
        ("NAXIS1", dims[0], "length of data axis 1"),
        ("NAXIS2", dims[1], "length of data axis 2"),
        ("PCOUNT", 0, "required keyword; must = 0"),
        ("GCOUNT", 1, "required keyword; must = 1"),
        ("EXTNAME", extname, "extension name"),
        ("EXTVER", extver, "extension version number"),
        *extra,
    ]
    return _header(cards), _pad(abs(bitpix) // 8 * dims[0] * dims[1]), []


def trailer(e: Exposure) -> list[HDU]:
    """The processing log of one exposure (trl)."""
    lines = [
        f"CALWF3 processing of {e.rootname}_raw.fits",
        f"PROPOSID {e.proposid} TARGNAME {e.targname} FILTER {e.filter} EXPTIME {e.exptime}",
        "DQICORR PERFORM  BLEVCORR PERFORM  BIASCORR PERFORM  DARKCORR PERFORM  FLATCORR PERFORM",
        f"Writing calibrated output {e.rootname}_flt.fits",
        "End of CALWF3",
    ]
    text = np.array([ln.encode().ljust(132) for ln in lines])
    return [
        primary(e, f"{e.rootname}_trl.fits", e.rootname, nextend=1),
        bintable("TRAILER", 1, [("TEXT_FILE", "132A", text)]),
    ]


def association(asn_id: str, members: list[Exposure], filetype: str) -> list[HDU]:
    """The HDUs of one association product file: its primary says how many extensions follow and is
    written after the last member's exposure ended."""
    from ingest.archivegen.generate import _primary_values

    hdus = _association(asn_id, members, filetype)
    written = max(_primary_values(m, filetype)["DATE"] for m in members)
    extra = [("EXPTIME", float(sum(m.exptime for m in members)), "exposure duration (seconds)--calculated")]
    lead = members[0]
    name = f"{asn_id.lower()}_{filetype}.fits"
    if filetype in {"drz", "drc"}:
        extra = [("NDRIZIM", len(members), "Drizzle, No. images drizzled onto output"), *extra]
    else:
        extra = []
    return [primary(lead, name, asn_id.lower(), extra, len(hdus), written), *hdus]


def _association(asn_id: str, members: list[Exposure], filetype: str) -> list[HDU]:
    """The extensions of one association product file."""
    if filetype == "asn":
        names = [m.rootname.upper().encode() for m in members] + [asn_id.upper().encode()]
        types = [b"EXP-DTH"] * len(members) + [b"PROD-DTH"]
        cols = [
            ("MEMNAME", "14A", np.array(names)),
            ("MEMTYPE", "14A", np.array(types)),
            ("MEMPRSNT", "L", np.array([True] * (len(members) + 1))),
        ]
        return [bintable("ASN", 1, cols)]
    if filetype in {"drz", "drc"}:
        return _drizzled(asn_id.lower(), members)
    if filetype == "jif":
        return [
            image("JIT", k, 16, (64, 64), [("EXPNAME", m.rootname[:8] + "j", "exposure identifier"),
                                            ("SHADOENT", "NONE", "shadow entry time"),
                                            ("SHADOEXT", "NONE", "shadow exit time")])
            for k, m in enumerate(members, start=1)
        ]  # fmt: skip
    if filetype == "jit":
        out = []
        for k, m in enumerate(members, start=1):
            n = max(1, int(m.exptime // 3))
            cols = [("SECONDS", "D", np.arange(n) * 3.0)]
            cols += [(c, "D", np.zeros(n)) for c in ("V2_DOM", "V3_DOM", "SI_V2_AVG", "SI_V3_AVG")]
            out.append(bintable("JIT", k, cols, [("EXPNAME", m.rootname[:8] + "j", "exposure identifier")]))
        return out
    raise ValueError(f"no association product {filetype!r}")


def _drizzled(root: str, members: list[Exposure]) -> list[HDU]:
    """SCI, WHT, CTX and HDRTAB (one row per input chip) of a drz/drc."""
    side = 4200 if members[0].detector == "UVIS" else 1200
    chips = [(m, v) for m in members for v in ((1, 2) if m.detector == "UVIS" else (1,))]
    hdr_cols = [
        ("ROOTNAME", "9A", np.array([m.rootname.encode() for m, _v in chips])),
        ("EXTNAME", "3A", np.array([b"SCI" for _m, _v in chips])),
        ("EXTVER", "K", np.array([v for _m, v in chips])),
        ("EXPTIME", "D", np.array([m.exptime for m, _v in chips])),
        ("EXPSTART", "D", np.array([m.expstart for m, _v in chips])),
    ]
    return [
        image(
            "SCI",
            1,
            -32,
            (side, side),
            [("BUNIT", "ELECTRONS/S", "brightness units"), ("ROOTNAME", root, "")],
        ),
        image("WHT", 1, -32, (side, side), [("ROOTNAME", root, "")]),
        image("CTX", 1, 32, (side, side), [("ROOTNAME", root, "")]),
        bintable("HDRTAB", 1, hdr_cols),
    ]


def association_files(exps: list[Exposure]) -> Iterator[tuple[int, str, str, list[Exposure]]]:
    """(proposid, association rootname, file type, members) of every association product."""
    groups: dict[str, list[Exposure]] = {}
    for e in exps:
        if e.asn_id != "NONE":
            groups.setdefault(e.asn_id, []).append(e)
    for asn_id, members in sorted(groups.items()):
        types = ["asn", "drz", "jif", "jit"] + (["drc"] if members[0].detector == "UVIS" else [])
        for ft in types:
            yield members[0].proposid, asn_id.lower(), ft, members
