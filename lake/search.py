"""Search the lake by sky position, target name, rootname prefix or proposal.

Positions are the datasets' pointings: ``ra_targ``/``dec_targ`` of ``master`` (RA_TARG/DEC_TARG of the
primary header, the target position the telescope was pointed at, in degrees, ICRS). ``master`` keeps
their HEALPix cell in ``_healpix_29`` (nested, order 29, the hats/LSDB convention) and is sorted by it,
so a cone search first narrows to the order-29 index ranges of the cells that cover the cone (computed
here with ``cdshealpix`` at an order whose cells are about the cone's size), which prunes Parquet row
groups and DuckDB zone maps, then keeps the rows whose exact great-circle distance (haversine) is within
the radius.

The same distance is available in SQL: :func:`register_macros` creates ``ang_sep(ra, dec, ra0, dec0)``
(degrees), ``cone(ra, dec, ra0, dec0, radius_arcsec)`` (boolean) and the table macro
``cone_search(ra0, dec0, radius_arcsec)`` (``master`` rows in the cone, with ``distance_arcsec``). SQL
cannot compute HEALPix cells, so the macro narrows by the Dec band instead: a scan of one column.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb

from lake.errors import QueryError

if TYPE_CHECKING:
    import pyarrow as pa  # imported where used: registering the macros (`ql sql`) needs none

HEALPIX_ORDER = 29
HEALPIX_COLUMN = "_healpix_29"
DEFAULT_RADIUS_ARCSEC = 180.0  # a little more than the WFC3/UVIS field (162")
MAX_RADIUS_ARCSEC = 180.0 * 3600
# the columns ``ql search`` prints (the Arrow table has every master column)
SHOWN = (
    "rootname", "targname", "ra_targ", "dec_targ", "distance_arcsec", "detector", "filter", "date_obs",
    "exptime", "proposid",
)  # fmt: skip
META_KEY = b"quicklake.search"

# A function that runs one query with parameters and returns Arrow: lake.connect()'s, or a site Scope's.
Runner = Callable[[str, Sequence[Any]], "pa.Table"]


# ---------------------------------------------------------------------------------------- SQL


def ang_sep_sql(ra: str, dec: str, ra0: str, dec0: str) -> str:
    """SQL for the great-circle distance in degrees between two positions in degrees (haversine)."""
    return (
        f"degrees(2 * asin(least(1.0, sqrt(pow(sin(radians(({dec}) - ({dec0})) / 2), 2) + "
        f"cos(radians({dec})) * cos(radians({dec0})) * pow(sin(radians(({ra}) - ({ra0})) / 2), 2)))))"
    )


def _macros(table: str = "master") -> list[str]:
    sep = ang_sep_sql("ra_targ", "dec_targ", "ra0", "dec0")
    return [
        f"MACRO ang_sep(ra, dec, ra0, dec0) AS {ang_sep_sql('ra', 'dec', 'ra0', 'dec0')}",
        "MACRO cone(ra, dec, ra0, dec0, radius_arcsec) AS "
        "ang_sep(ra, dec, ra0, dec0) * 3600 <= radius_arcsec",
        # COLUMNS(lambda ...) rather than EXCLUDE: a master from before _healpix_29 has none to exclude
        "MACRO cone_search(ra0, dec0, radius_arcsec) AS TABLE SELECT "
        f"COLUMNS(lambda c: c <> '{HEALPIX_COLUMN}'), "
        f"{sep} * 3600 AS distance_arcsec FROM {table} "
        "WHERE dec_targ BETWEEN dec0 - radius_arcsec / 3600 AND dec0 + radius_arcsec / 3600 "
        "AND cone(ra_targ, dec_targ, ra0, dec0, radius_arcsec) ORDER BY distance_arcsec, rootname",
    ]


def register_macros(con: duckdb.DuckDBPyConnection, *, temporary: bool = False) -> None:
    """Create the search macros (``ang_sep``, ``cone``, ``cone_search``) in ``con``: stored in its
    database (``catalog.duckdb``), or ``temporary`` (this connection only: ``lake.connect()``, a Scope).

    See Also
    --------
    search : the same search from Python, narrowed by HEALPix ranges.
    """
    kind = "TEMP MACRO" if temporary else "MACRO"
    for m in _macros():
        con.execute(f"CREATE OR REPLACE {kind} {m.removeprefix('MACRO ')}")


# ---------------------------------------------------------------------------------------- HEALPix


def _healpix_core() -> Any:
    """cdshealpix's compiled core (``cdshealpix.cdshealpix``), loaded without the package's Python layer.

    The package's ``__init__`` imports astropy.coordinates, astropy.units and astropy.io.votable (about
    0.7 s of CPU in every process that computes a cell: a one-file cron ingest's master refresh, each
    ``ql search``), for the Longitude/Latitude wrappers around the two core functions used here, which
    take plain radians. Registered under its package name, so a later ``import cdshealpix`` uses it (the
    core, a PyO3 module, can be initialised only once per process)."""
    import importlib.util
    import sys

    name = "cdshealpix.cdshealpix"
    if name in sys.modules:
        return sys.modules[name]
    pkg = importlib.util.find_spec("cdshealpix")  # (finds the package without importing it)
    folders = list(pkg.submodule_search_locations or []) if pkg is not None else []
    core = next((f for d in folders for f in sorted(os.listdir(d)) if f.startswith("cdshealpix.")), None)
    if core is None:  # not laid out as 0.9 is: the package's own import
        from cdshealpix import cdshealpix as mod

        return mod
    spec = importlib.util.spec_from_file_location(name, os.path.join(folders[0], core))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def healpix29(ra: Any, dec: Any) -> pa.Array:
    """Nested order-29 HEALPix index (int64) of positions in degrees; null where either is null or
    out of range."""
    import numpy as np
    import pyarrow as pa

    ra_a = np.asarray(pa.array(ra, pa.float64()).to_numpy(zero_copy_only=False), dtype=float)
    dec_a = np.asarray(pa.array(dec, pa.float64()).to_numpy(zero_copy_only=False), dtype=float)
    ok = np.isfinite(ra_a) & np.isfinite(dec_a) & (np.abs(dec_a) <= 90)
    out = np.zeros(len(ra_a), dtype=np.int64)
    if ok.any():
        lon = np.mod(ra_a[ok], 360.0)
        lon[lon >= 360.0] = 0.0  # (np.mod(-1e-17, 360) is 360.0; astropy's Longitude wraps it to 0)
        lon, lat = np.radians(lon), np.radians(dec_a[ok])
        n = len(lon)
        ipix = np.empty(n, dtype=np.uint64)
        dx, dy = np.empty(n, dtype=np.float64), np.empty(n, dtype=np.float64)
        depth = np.full(n, HEALPIX_ORDER, dtype=np.uint8)
        _healpix_core().lonlat_to_healpix(depth, lon, lat, ipix, dx, dy, np.uint16(0))
        out[ok] = ipix.astype(np.int64)
    return pa.array(out, pa.int64(), mask=~ok)


def healpix_ranges(ra0: float, dec0: float, radius_arcsec: float) -> list[tuple[int, int]]:
    """Inclusive ranges of order-29 indices whose cells cover the cone (empty: no narrowing, for cones
    of tens of degrees). The cells are taken at the order where a cell is about the cone's size."""
    import numpy as np

    radius_deg = radius_arcsec / 3600
    if radius_deg >= 30:
        return []
    order = int(min(HEALPIX_ORDER, max(0, math.floor(math.log2(58.6 / radius_deg)))))
    cells, depths, _ = _healpix_core().cone_search(
        np.uint8(order),
        np.uint8(2),  # cdshealpix's default depth_delta
        np.float64(math.radians(ra0 % 360.0)),
        np.float64(math.radians(dec0)),
        np.float64(math.radians(radius_deg)),
        False,
    )
    shifts = 2 * (HEALPIX_ORDER - np.asarray(depths, dtype=np.int64))
    lo = np.asarray(cells, dtype=np.int64) << shifts
    hi = ((np.asarray(cells, dtype=np.int64) + 1) << shifts) - 1
    ranges: list[tuple[int, int]] = []
    for a, b in sorted(zip(lo.tolist(), hi.tolist(), strict=True)):
        if ranges and a <= ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], b))
        else:
            ranges.append((a, b))
    return ranges


# ---------------------------------------------------------------------------------------- parsing


def parse_position(ra: str | float, dec: str | float | None = None) -> tuple[float, float]:
    """(RA, Dec) in degrees from degrees (``187.5``, ``-5.9``) or sexagesimal (``12h30m32s``,
    ``+41d41m35s``, ``12:30:32``: RA in hours); ``dec`` None: both in ``ra`` (``"12h30m32s +41d41m35s"``)."""
    import astropy.units as u
    from astropy.coordinates import Angle, SkyCoord

    text = f"{ra} {dec}".strip() if dec is not None else str(ra).strip()
    parts = text.split()
    if dec is None and len(parts) == 2:
        ra, dec = parts
    try:
        if dec is None and len(parts) < 2:
            raise ValueError("needs both RA and Dec")
        if dec is not None and _is_number(ra) and _is_number(dec):
            ra_deg, dec_deg = float(ra), float(dec)
        elif dec is not None:
            ra_deg = Angle(str(ra), unit=u.deg if _is_number(ra) else u.hourangle).deg
            dec_deg = Angle(str(dec), unit=u.deg).deg
        else:
            numeric = len(parts) == 2 and all(_is_number(p) for p in parts)
            unit = (u.deg, u.deg) if numeric else (u.hourangle, u.deg)
            c = SkyCoord(text, unit=unit)
            ra_deg, dec_deg = c.ra.deg, c.dec.deg
    except (ValueError, TypeError, u.UnitsError) as e:
        raise QueryError(
            f"position {text!r}: {str(e).splitlines()[0]}; give degrees (187.7 12.4) or sexagesimal "
            "(12h30m49s +12d23m28s)"
        ) from None
    if not (math.isfinite(ra_deg) and 0 <= ra_deg <= 360):
        raise QueryError(f"position {text!r}: RA must be from 0 to 360 degrees (0h to 24h)")
    if not (math.isfinite(dec_deg) and abs(dec_deg) <= 90):
        raise QueryError(f"position {text!r}: Dec must be between -90 and +90 degrees")
    return float(ra_deg) % 360.0, float(dec_deg)


def _is_number(x: object) -> bool:
    try:
        float(str(x))
    except ValueError:
        return False
    return True


def parse_radius(radius: str | float | None) -> float:
    """A radius in arcsec from a number (arcsec) or an angle (``2 arcmin``, ``0.1 deg``, ``30"``, ``2'``)."""
    import astropy.units as u

    if radius is None or str(radius).strip() == "":
        return DEFAULT_RADIUS_ARCSEC
    text = str(radius).strip().replace('"', " arcsec").replace("'", " arcmin")
    try:
        q = u.Quantity(text)
        value = float(q.value) if q.unit == u.dimensionless_unscaled else float(q.to_value(u.arcsec))
    except (ValueError, TypeError, u.UnitsError):
        raise QueryError(
            f"radius {radius!r}: not an angle; give arcsec (30) or a unit (2 arcmin, 0.1 deg)"
        ) from None
    if not 0 < value <= MAX_RADIUS_ARCSEC:
        raise QueryError(f"radius {radius!r}: must be more than 0 and at most 180 deg")
    return value


_PREFIXES = {"MESSIER": "M", "M": "M", "NGC": "NGC", "IC": "IC", "UGC": "UGC", "PGC": "PGC", "HD": "HD"}
_PREFIX = re.compile(r"^(MESSIER|NGC|UGC|PGC|IC|HD|M)0*(?=\d)")


def normalise_name(name: str) -> str:
    """A target name as compared: upper case, no spaces, hyphens, underscores or dots, catalogue
    prefixes spelled one way without leading zeros: ``NGC 4485`` = ``ngc-4485`` = ``NGC04485`` →
    ``NGC4485``; ``M 101`` = ``Messier 101`` → ``M101``."""
    s = re.sub(r"[\s\-_.]+", "", unicodedata.normalize("NFKC", name).upper())
    return _PREFIX.sub(lambda m: _PREFIXES[m[1]], s)


# ---------------------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class Target:
    """A target name resolved from the lake's own pointings: the median of its datasets'."""

    query: str
    targnames: tuple[str, ...]
    ra: float
    dec: float
    datasets: int


def resolve_target(name: str, run: Runner) -> Target:
    """The median pointing (``master``) of the datasets whose TARGNAME matches ``name`` once both are
    normalised (:func:`normalise_name`); names that only add a non-digit suffix (``NGC4485-POS1``)
    match if no name matches exactly. No network: only the lake's own targets."""
    want = normalise_name(name)
    if not want:
        raise QueryError("target: empty name; give a target such as 'NGC 4485'")
    names = run("SELECT DISTINCT targname FROM master WHERE targname IS NOT NULL", []).column(0).to_pylist()
    norm = {str(n): normalise_name(str(n)) for n in names}
    hits = [n for n, k in norm.items() if k == want]
    if not hits:
        hits = [n for n, k in norm.items() if k.startswith(want) and not k[len(want)].isdigit()]
    if not hits:
        close = difflib.get_close_matches(want, sorted(set(norm.values())), n=3)
        hint = (
            f"; close: {', '.join(close)}" if close else "; SELECT DISTINCT targname FROM master lists them"
        )
        raise QueryError(f"target {name!r}: no dataset in the lake has this target name{hint}")
    marks = ", ".join("?" for _ in hits)
    row = run(
        f"SELECT median(ra_targ), median(dec_targ), count(*) FROM master WHERE targname IN ({marks}) "
        "AND ra_targ IS NOT NULL AND dec_targ IS NOT NULL",
        hits,
    ).to_pylist()[0]
    vals = list(row.values())
    if vals[0] is None:
        raise QueryError(f"target {name!r}: its datasets have no RA_TARG/DEC_TARG; search by position")
    return Target(name, tuple(sorted(hits)), float(vals[0]), float(vals[1]), int(vals[2]))


def _columns(run: Runner) -> list[str]:
    return [str(c) for c in run("SELECT * FROM master LIMIT 0", []).column_names]


def cone_query(
    ra0: float, dec0: float, radius_arcsec: float, columns: Sequence[str]
) -> tuple[str, list[Any]]:
    """SQL and parameters for ``master``'s datasets within ``radius_arcsec`` of (``ra0``, ``dec0``):
    HEALPix ranges (when ``master`` has ``_healpix_29``) and the Dec band narrow, the distance decides."""
    # $1, $2: the centre; $3: the radius; $4, $5: the Dec band
    conds = ["dec_targ BETWEEN $4 AND $5"]
    if HEALPIX_COLUMN in columns and (ranges := healpix_ranges(ra0, dec0, radius_arcsec)):
        ors = " OR ".join(f"{HEALPIX_COLUMN} BETWEEN {a} AND {b}" for a, b in ranges)
        # the overall bounds are a plain range that every reader prunes with; the OR list is exact
        conds.insert(0, f"{HEALPIX_COLUMN} BETWEEN {ranges[0][0]} AND {ranges[-1][1]} AND ({ors})")
    sep = ang_sep_sql("ra_targ", "dec_targ", "$1", "$2")
    conds.append(f"{sep} * 3600 <= $3")
    cols = ", ".join(f'"{c}"' for c in columns if c != HEALPIX_COLUMN)
    sql = (
        f"SELECT {cols}, {sep} * 3600 AS distance_arcsec FROM master WHERE {' AND '.join(conds)} "
        "ORDER BY distance_arcsec, rootname"
    )
    band = radius_arcsec / 3600
    return sql, [ra0, dec0, radius_arcsec, dec0 - band, dec0 + band]


def name_query(name: str, columns: Sequence[str]) -> tuple[str, list[Any]]:
    """SQL for ``--name``: a proposal id (digits) or a rootname prefix (``ib2c01``)."""
    text = name.strip().lower()
    cols = ", ".join(f'"{c}"' for c in columns if c != HEALPIX_COLUMN)
    if text.isdigit():
        return f"SELECT {cols} FROM master WHERE proposid = ? ORDER BY rootname", [int(text)]
    if not re.fullmatch(r"[a-z0-9]{1,9}", text):
        raise QueryError(
            f"--name {name!r}: not a proposal id or a rootname prefix; give digits (12345) or letters and "
            "digits (ib2c01)"
        )
    return f"SELECT {cols} FROM master WHERE rootname LIKE ? ORDER BY rootname", [text + "%"]


def search_with(
    run: Runner,
    *,
    ra: str | float | None = None,
    dec: str | float | None = None,
    radius: str | float | None = None,
    target: str | None = None,
    name: str | None = None,
) -> pa.Table:
    """:func:`search` on any connection (``run`` runs SQL: a site Scope's ``sql``, or DuckDB's).

    See Also
    --------
    search : the same on the lake's own connection.
    search_text : one text box, interpreted.
    """
    if dec not in (None, "") and ra in (None, ""):
        raise QueryError("--dec without --ra: give both (or both in --ra: '12h30m49s +12d23m28s')")
    given = [
        k for k, v in (("--ra/--dec", ra), ("--target", target), ("--name", name)) if v not in (None, "")
    ]
    if len(given) != 1:
        raise QueryError(
            "search needs exactly one of --ra/--dec, --target or --name"
            + (f" (got {' and '.join(given)})" if given else "")
        )
    columns = _columns(run)
    meta: dict[str, Any] = {}
    if name:
        sql, args = name_query(name, columns)
        meta["name"] = name
    else:
        if target:
            t = resolve_target(target, run)
            ra0, dec0 = t.ra, t.dec
            meta.update(target=target, targnames=list(t.targnames), target_datasets=t.datasets)
        else:
            assert ra is not None
            ra0, dec0 = parse_position(ra, dec)
        r = parse_radius(radius)
        sql, args = cone_query(ra0, dec0, r, columns)
        meta.update(ra=ra0, dec=dec0, radius_arcsec=r)
    table = run(sql, args)
    return table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: json.dumps(meta)})


def search_text(run: Runner, text: str, *, radius: str | float | None = None) -> pa.Table:
    """One search box: a proposal id (digits), a position (``187.7 12.4``, ``12h30m49s +12d23m28s``),
    a target name of the lake (``NGC 4485``) or a rootname prefix (``ib2c01``), tried in this order;
    a name that is none of them is an error naming close target names.

    See Also
    --------
    search_with : the same with the kind of search given.
    """
    text = text.strip()
    if not text:
        raise QueryError("search: empty; give a target, a rootname, a proposal id or a position")
    if text.isdigit() or (re.fullmatch(r"[A-Za-z0-9]{1,9}", text) and _has_rootname(run, text)):
        if not text.isdigit():
            try:  # a target name wins over a rootname prefix it happens to spell ("ic10")
                resolve_target(text, run)
                return search_with(run, target=text, radius=radius)
            except QueryError:
                pass
        return search_with(run, name=text)
    if _POSITION.fullmatch(text) and len(re.findall(r"\d+", text)) >= 2:
        return search_with(run, ra=text, radius=radius)  # a bad position is an error, not a target name
    return search_with(run, target=text, radius=radius)


# numbers, signs and sexagesimal separators only: "187.7 12.4", "12h30m49s +12d23m28s", "12:30:49 +12:23"
_POSITION = re.compile(r"[\d\s.:+\-hmsd°'\"]+", re.IGNORECASE)


def _has_rootname(run: Runner, prefix: str) -> bool:
    got = run("SELECT 1 FROM master WHERE rootname LIKE ? LIMIT 1", [prefix.lower() + "%"])
    return got.num_rows > 0


def search(
    path: str | os.PathLike[str] | None = None,
    *,
    ra: str | float | None = None,
    dec: str | float | None = None,
    radius: str | float | None = None,
    target: str | None = None,
    name: str | None = None,
) -> pa.Table:
    """The ``master`` rows of the datasets at a position, of a target, a rootname prefix or a proposal.

    Parameters
    ----------
    path
        The lake directory (default: the ``lake`` setting).
    ra, dec
        The cone's centre: degrees or sexagesimal (RA in hours, ``12h30m49s``); ``dec`` None takes both
        from ``ra`` (``"12h30m49s +12d23m28s"``).
    radius
        Arcsec (a number) or an angle with a unit (``2 arcmin``); default 180".
    target
        A target name, normalised (:func:`normalise_name`) and resolved to the median pointing of its
        datasets in the lake; the cone is around that.
    name
        A proposal id (digits) or a rootname prefix.

    Returns
    -------
    pyarrow.Table
        Every ``master`` column but ``_healpix_29``, with ``distance_arcsec`` for a cone, nearest first;
        the schema metadata ``quicklake.search`` (JSON) gives the centre and radius used.

    See Also
    --------
    register_macros : ``cone()`` and ``cone_search()`` in SQL.
    lake.access.connect : the lake in DuckDB, with those macros.
    """
    from lake.access import connect

    con = connect(path)

    def run(sql: str, args: Sequence[Any]) -> pa.Table:
        try:
            return con.sql(sql, params=list(args) or None).to_arrow_table()
        except duckdb.Error as e:
            raise QueryError(str(e).strip()) from None

    try:
        return search_with(run, ra=ra, dec=dec, radius=radius, target=target, name=name)
    finally:
        con.close()


def described(table: pa.Table) -> dict[str, Any]:
    """What :func:`search` searched (centre, radius, target names), from its result's metadata."""
    raw = (table.schema.metadata or {}).get(META_KEY)
    return dict(json.loads(raw)) if raw else {}
