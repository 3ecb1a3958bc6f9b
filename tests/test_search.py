"""Search by position, target name, rootname and proposal (lake/search.py, ``ql search``), checked against
astropy's own separations."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import astropy.units as u
import duckdb
import numpy as np
import pyarrow as pa
import pytest
from astropy.coordinates import SkyCoord
from click.testing import CliRunner

from lake.access import connect, read_sql
from lake.cli import main
from lake.errors import QueryError
from lake.search import (
    Target,
    cone_query,
    described,
    healpix29,
    normalise_name,
    parse_position,
    parse_radius,
    register_macros,
    resolve_target,
    search,
)


def within(lake: Path, ra0: float, dec0: float, radius_arcsec: float) -> set[str]:
    """The rootnames whose pointing is within the radius, by astropy (independent of the SQL)."""
    m = read_sql("SELECT rootname, ra_targ, dec_targ FROM master WHERE ra_targ IS NOT NULL", lake)
    sky = SkyCoord(m.column("ra_targ").to_numpy() * u.deg, m.column("dec_targ").to_numpy() * u.deg)
    sep = sky.separation(SkyCoord(ra0 * u.deg, dec0 * u.deg)).arcsec
    return {r for r, s in zip(m.column("rootname").to_pylist(), sep, strict=True) if s <= radius_arcsec}


def test_cone_search_by_coordinates_is_exact(site_lake: dict[str, Any]) -> None:
    lake = site_lake["lake"]
    pointings = read_sql(
        "SELECT DISTINCT ra_targ, dec_targ FROM master WHERE ra_targ <> 0 ORDER BY ALL LIMIT 3", lake
    ).to_pylist()
    for p in pointings:
        for radius in (1.0, 3600.0, 20 * 3600.0):
            got = search(lake, ra=p["ra_targ"], dec=p["dec_targ"], radius=radius)
            want = within(lake, p["ra_targ"], p["dec_targ"], radius)
            assert want and set(got.column("rootname").to_pylist()) == want, (p, radius)
            dist = got.column("distance_arcsec").to_pylist()
            assert dist == sorted(dist) and max(dist) <= radius
            assert "_healpix_29" not in got.column_names
    # sexagesimal and a unit give the same cone as degrees and arcsec
    p = pointings[0]
    c = SkyCoord(p["ra_targ"] * u.deg, p["dec_targ"] * u.deg)
    text = c.to_string("hmsdms", precision=4)
    got = search(lake, ra=text, radius="1 deg")
    assert set(got.column("rootname").to_pylist()) == within(lake, p["ra_targ"], p["dec_targ"], 3600)


def test_cone_search_by_target_name(site_lake: dict[str, Any]) -> None:
    lake = site_lake["lake"]
    con = connect(lake)

    def run(sql: str, args: Any) -> pa.Table:
        return con.sql(sql, params=list(args) or None).to_arrow_table()

    ngc = resolve_target("NGC 4485", run)
    assert ngc.targnames == ("NGC4485",)
    pos = read_sql(
        "SELECT median(ra_targ) AS ra, median(dec_targ) AS dec, count(*) AS n FROM master "
        "WHERE targname = 'NGC4485'",
        lake,
    ).to_pylist()[0]
    assert (ngc.ra, ngc.dec, ngc.datasets) == pytest.approx((pos["ra"], pos["dec"], pos["n"]))
    for spelling in ("ngc4485", "NGC-4485", "ngc 04485"):
        assert resolve_target(spelling, run) == Target(spelling, ngc.targnames, ngc.ra, ngc.dec, ngc.datasets)
    for radius in (180.0, 30 * 3600.0):
        got = search(lake, target="NGC 4485", radius=radius)
        assert set(got.column("rootname").to_pylist()) == within(lake, pos["ra"], pos["dec"], radius)
        assert described(got)["targnames"] == ["NGC4485"]
    assert resolve_target("Messier 101", run).targnames == ("M101",)
    with pytest.raises(QueryError, match=r"no dataset in the lake has this target name; close: NGC4485"):
        resolve_target("NGC 448", run)
    with pytest.raises(QueryError, match="SELECT DISTINCT targname FROM master"):
        resolve_target("Andromeda", run)


def test_name_search_by_rootname_prefix_and_proposal(site_lake: dict[str, Any]) -> None:
    lake = site_lake["lake"]
    first = read_sql("SELECT rootname, proposid FROM master ORDER BY rootname LIMIT 1", lake).to_pylist()[0]
    prefix = first["rootname"][:6]
    got = search(lake, name=prefix.upper()).column("rootname").to_pylist()
    want = read_sql(f"SELECT rootname FROM master WHERE rootname LIKE '{prefix}%' ORDER BY 1", lake)
    assert got == want.column(0).to_pylist()
    by_prop = search(lake, name=str(first["proposid"]))
    assert set(by_prop.column("proposid").to_pylist()) == {first["proposid"]}
    with pytest.raises(QueryError, match="not a proposal id or a rootname prefix"):
        search(lake, name="ib%")


@pytest.mark.parametrize(
    ("names", "norm"),
    [
        (["NGC 4485", "ngc4485", "NGC-4485", "NGC04485", "ngc_4485"], "NGC4485"),
        (["M 101", "M101", "MESSIER 101", "messier-101", "m0101"], "M101"),
        (["IC 10", "ic-10"], "IC10"),
        (["MRK 421", "Mrk421"], "MRK421"),
        (["GRW+70D5824", "grw +70d5824"], "GRW+70D5824"),
    ],
)
def test_name_normalisation(names: list[str], norm: str) -> None:
    assert {normalise_name(n) for n in names} == {norm}


def test_name_normalisation_keeps_distinct_names_apart() -> None:
    assert normalise_name("M 10") != normalise_name("M 101") != normalise_name("MRK 101")


@pytest.mark.parametrize(
    ("ra", "dec", "want"),
    [
        ("187.70417", "12.39111", (187.70417, 12.39111)),
        ("12h30m49s", "+12d23m28s", (187.70417, 12.39111)),
        ("12:30:49", "+12:23:28", (187.70417, 12.39111)),
        ("12h30m49s +12d23m28s", None, (187.70417, 12.39111)),
        ("12 30 49 +12 23 28", None, (187.70417, 12.39111)),
        ("187.70417 12.39111", None, (187.70417, 12.39111)),
    ],
)
def test_positions_parse(ra: str, dec: str | None, want: tuple[float, float]) -> None:
    assert parse_position(ra, dec) == pytest.approx(want, abs=1e-4)


@pytest.mark.parametrize(
    ("ra", "dec", "message"),
    [
        ("25h", "3", "RA must be from 0 to 360"),
        ("10", "95", "Dec must be between -90 and +90"),
        ("abc", "3", "give degrees"),
        ("187.7", None, "needs both RA and Dec"),
    ],
)
def test_bad_positions_are_one_line_errors(ra: str, dec: str | None, message: str) -> None:
    with pytest.raises(QueryError, match=re.escape(message)) as e:
        parse_position(ra, dec)
    assert "\n" not in str(e.value)


def test_radii_parse() -> None:
    assert [parse_radius(r) for r in ("30", 30, "2 arcmin", "2arcmin", "0.1 deg", '3"', "2'", None)] == (
        pytest.approx([30, 30, 120, 120, 360, 3, 120, 180])
    )
    for bad in ("5 parsec", "-3", "0", "200 deg"):
        with pytest.raises(QueryError, match="radius"):
            parse_radius(bad)


def test_healpix_narrowing_loses_nothing_near_poles_and_ra_zero() -> None:
    """HEALPix ranges + exact distance on points crowded around the poles and RA 0/360."""
    rng = np.random.default_rng(3)
    centres = [(0.01, 0.0), (359.99, 45.0), (120.0, 89.99), (300.0, -89.95), (180.0, -30.0)]
    ra = np.concatenate([(c[0] + rng.normal(0, 0.3, 4000)) % 360 for c in centres])
    dec = np.concatenate([np.clip(c[1] + rng.normal(0, 0.3, 4000), -90, 90) for c in centres])
    master = pa.table(
        {"rootname": [f"r{i}" for i in range(len(ra))], "ra_targ": ra, "dec_targ": dec}
    ).append_column("_healpix_29", healpix29(ra, dec))
    con = duckdb.connect()
    con.register("master", master)
    register_macros(con, temporary=True)
    sky = SkyCoord(ra * u.deg, dec * u.deg)
    for (ra0, dec0), radius in zip(centres, (60.0, 600.0, 3600.0, 1800.0, 5.0), strict=True):
        sql, args = cone_query(ra0, dec0, radius, master.column_names)
        got = set(con.sql(sql, params=args).to_arrow_table().column("rootname").to_pylist())
        keep = sky.separation(SkyCoord(ra0 * u.deg, dec0 * u.deg)).arcsec <= radius
        assert got == {f"r{i}" for i in np.flatnonzero(keep)}, (ra0, dec0, radius)
        macro = con.sql(f"SELECT rootname FROM cone_search({ra0}, {dec0}, {radius})").to_arrow_table()
        assert set(macro.column(0).to_pylist()) == got


def test_healpix_cells_are_cdshealpix_s_without_its_astropy_layer() -> None:
    """The cells and cone ranges come from cdshealpix's core as its public API gives them, and computing
    them imports no astropy (a one-file ingest's master refresh and ``ql search`` pay no 0.7 s import)."""
    code = (
        "import sys, numpy as np\n"
        "from lake.search import healpix29, healpix_ranges\n"
        "rng = np.random.default_rng(5)\n"
        "ra = np.r_[rng.uniform(-10, 370, 2000), -1e-17, 360.0, 0.0]\n"
        "dec = np.r_[rng.uniform(-90, 90, 2000), 0.0, -90.0, 90.0]\n"
        "cells = healpix29(ra, dec).to_pylist()\n"
        "cones = ((0.0, 0.0, 5.0), (359.9, 89.9, 600.0), (83.6, -5.4, 7200.0))\n"
        "ranges = [healpix_ranges(r, d, s) for r, d, s in cones]\n"
        "assert not [m for m in sys.modules if m.startswith('astropy')]\n"
        "import cdshealpix.nested as n, astropy.units as u\n"
        "from astropy.coordinates import Latitude, Longitude\n"
        "want = n.lonlat_to_healpix(Longitude(np.mod(ra, 360) * u.deg), Latitude(dec * u.deg), 29)\n"
        "assert cells == want.astype(np.int64).tolist()\n"
        "for (r, d, s), got in zip(cones, ranges):\n"
        "    order = int(min(29, max(0, np.floor(np.log2(58.6 / (s / 3600))))))\n"
        "    lon, lat = Longitude(r * u.deg), Latitude(d * u.deg)\n"
        "    c, dep, _ = n.cone_search(lon, lat, s * u.arcsec, depth=order)\n"
        "    lo = c.astype(np.int64) << (2 * (29 - dep.astype(np.int64)))\n"
        "    hi = ((c.astype(np.int64) + 1) << (2 * (29 - dep.astype(np.int64)))) - 1\n"
        "    assert got[0][0] == lo.min() and got[-1][1] == hi.max(), (r, d, s)\n"
        "    assert sum(b - a + 1 for a, b in got) == int((hi - lo + 1).sum()), (r, d, s)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)


def test_master_has_healpix_and_the_macros_work_in_sql(site_lake: dict[str, Any]) -> None:
    lake = site_lake["lake"]
    m = read_sql("SELECT rootname, ra_targ, dec_targ, _healpix_29 FROM master", lake)
    assert m.column("_healpix_29").null_count == 0
    from cdshealpix.nested import healpix_to_lonlat

    # each cell's centre is within an order-29 cell (0.4 mas) of the pointing
    lon, lat = healpix_to_lonlat(m.column("_healpix_29").to_numpy().astype(np.uint64), 29)
    sky = SkyCoord(m.column("ra_targ").to_numpy() * u.deg, m.column("dec_targ").to_numpy() * u.deg)
    assert sky.separation(SkyCoord(lon, lat)).max() < 1e-3 * u.arcsec
    p = m.to_pylist()[5]
    want = within(lake, p["ra_targ"], p["dec_targ"], 7200)
    con = connect(lake)
    got = con.sql(f"SELECT rootname FROM cone_search({p['ra_targ']}, {p['dec_targ']}, 7200)").fetchall()
    assert {r[0] for r in got} == want
    n = con.sql(
        f"SELECT count(*) FROM master WHERE cone(ra_targ, dec_targ, {p['ra_targ']}, {p['dec_targ']}, 7200)"
    )
    assert n.fetchall() == [(len(want),)]


def test_macros_are_stored_for_the_duckdb_cli(site_lake: dict[str, Any]) -> None:
    from lake.cli import _duckdb_cli

    lake = site_lake["lake"]
    p = read_sql("SELECT ra_targ, dec_targ FROM master WHERE ra_targ <> 0 LIMIT 1", lake).to_pylist()[0]
    sql = f"SELECT count(*) AS n FROM cone_search({p['ra_targ']}, {p['dec_targ']}, 7200);"
    out = subprocess.run(
        [_duckdb_cli(), "-readonly", "-csv", str(Path(lake) / "catalog.duckdb"), "-c", sql],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert out.stdout.split() == ["n", str(len(within(lake, p["ra_targ"], p["dec_targ"], 7200)))]


def test_ql_search_prints_datasets_and_one_line_errors(site_lake: dict[str, Any]) -> None:
    lake = str(site_lake["lake"])
    p = read_sql("SELECT ra_targ, dec_targ FROM master WHERE ra_targ <> 0 LIMIT 1", lake).to_pylist()[0]
    want = within(Path(lake), p["ra_targ"], p["dec_targ"], 3600)
    r = CliRunner().invoke(
        main, ["search", "--lake", lake, "--ra", str(p["ra_targ"]), "--dec", str(p["dec_targ"]),
               "--radius", "1deg", "--limit", "0"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split()[:5] == ["rootname", "targname", "ra_targ", "dec_targ", "distance_arcsec"]
    assert {ln.split()[0] for ln in lines[1:]} == want
    assert f"within 3600 arcsec of RA {p['ra_targ']:.5f}" in r.stderr
    r = CliRunner().invoke(main, ["search", "--lake", lake, "--target", "ngc-4485", "--format", "json"])
    assert r.exit_code == 0 and "target 'ngc-4485' (NGC4485)" in r.stderr
    r = CliRunner().invoke(main, ["search", "--lake", lake, "--ra", "12h30m", "--dec", "+95d"])
    assert r.exit_code == 1
    assert r.output.strip().splitlines() == [
        "Error: position '12h30m +95d': Dec must be between -90 and +90 degrees"
    ]
    r = subprocess.run(
        [sys.executable, "-m", "lake", "search", "--lake", lake, "--ra", "nowhere", "--dec", "0"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "Error: position" in r.stderr
