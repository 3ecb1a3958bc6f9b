"""The site's search (one box: a target, rootname, proposal or position) and its sky map, through the
viewer's :class:`~app.data.scope.Scope`; also the date range every date input of the site accepts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import pyarrow as pa

from app.data import counted
from app.data.scope import Scope
from lake.search import described, search_text

# WFC3 was installed in May 2009; a date input allows the whole mission and a year ahead
MISSION_START = date(2009, 1, 1)


def mission_end(today: date | None = None) -> date:
    """The last date a date input allows: a year from today."""
    return (today or date.today()) + timedelta(days=366)


def find(scope: Scope, text: str, radius: str | float | None = None) -> pa.Table:
    """Datasets the viewer may see matching ``text`` (:func:`lake.search.search_text`)."""

    def run(sql: str, args: Sequence[Any]) -> pa.Table:
        return scope.sql(sql, list(args))

    return search_text(run, text, radius=radius)


def summary(result: pa.Table) -> str:
    """One line saying what a search searched and found."""
    about = described(result)
    n = counted(result.num_rows, "dataset")
    if "ra" not in about:
        return f"{n} with rootname or proposal {about.get('name', '')!r}"
    where = f"within {about['radius_arcsec']:g} arcsec of RA {about['ra']:.5f}, Dec {about['dec']:+.5f}"
    if "target" in about:
        names = ", ".join(about["targnames"])
        of = counted(about["target_datasets"], "dataset")
        return f"{n} {where}: the median pointing of target {names} ({of})"
    return f"{n} {where}"


SKY_CELL = 2.0  # degrees: the map (420 px high) shows about 2 px per degree; finer cells only add data


def pointings(scope: Scope, limit: int = 2000) -> pa.Table:
    """Where the datasets the viewer may see point, per detector, for the sky map: the pointings
    (RA_TARG, DEC_TARG) grouped in cells of :data:`SKY_CELL` degrees, each at its datasets' mean
    position, the ``limit`` cells with the most datasets; internal exposures (darks, biases, flats:
    RA = Dec = 0) are left out.

    Cells rather than every pointing: the browser draws the map from this table, and tens of thousands
    of points take it seconds (a megabyte of chart data, #18)."""
    sql = (
        "SELECT avg(ra_targ) AS ra, avg(dec_targ) AS dec, detector, count(*) AS datasets, "
        "any_value(targname) AS targname FROM master WHERE ra_targ IS NOT NULL AND dec_targ IS NOT NULL "
        "AND NOT (ra_targ = 0 AND dec_targ = 0) "
        "GROUP BY floor(ra_targ / ?), floor(dec_targ / ?), detector ORDER BY datasets DESC LIMIT ?"
    )
    return scope.memo(("pointings", limit), lambda: scope.sql(sql, [SKY_CELL, SKY_CELL, limit]))


def sky_map(points: Any, highlight: Any = None) -> Any:
    """An all-sky map (equal-area Equal Earth projection, RA increasing to the left, degrees) of
    ``points`` (columns ra, dec, detector), with ``highlight`` (ra, dec) ringed, as an Altair chart."""
    import altair as alt

    def sky(df: Any) -> Any:
        # longitude = 180° − RA puts RA 0h at the right edge and increasing leftwards, as on the sky
        return df.assign(lon=180.0 - df["ra"])

    tooltip = [
        alt.Tooltip(f"{c}:Q", format=".2f") if c in ("ra", "dec") else c
        for c in ("targname", "ra", "dec", "detector", "datasets", "rootname")
        if c in points.columns
    ]
    size = (
        {"size": alt.Size("datasets:Q", scale=alt.Scale(type="log", range=[12, 160]), title="Datasets")}
        if "datasets" in points.columns
        else {}
    )
    layers = [
        alt.Chart(alt.graticule(step=[30, 30])).mark_geoshape(stroke="#bbb", strokeWidth=0.5, fill=None),
        alt.Chart(sky(points))
        .mark_circle(opacity=0.7)
        .encode(
            longitude="lon:Q",
            latitude="dec:Q",
            # detectors in colours told apart at a glance (the default scheme gave UVIS and IR two blues)
            color=alt.Color("detector:N", title="Detector", scale=alt.Scale(scheme="set1")),
            tooltip=tooltip,
            **size,
        ),
    ]
    layers.append(_sky_labels())
    if highlight is not None and len(highlight):
        # internal exposures (lamp flats, darks) point nowhere: RA_TARG = DEC_TARG = 0, not a place to ring
        highlight = highlight[~((highlight["ra"] == 0) & (highlight["dec"] == 0))].dropna(
            subset=["ra", "dec"]
        )
    if highlight is not None and len(highlight):
        # one ring per 0.1° (a proposal's or a wide cone's thousands of datasets are a few places)
        rings = highlight.round({"ra": 1, "dec": 1}).drop_duplicates().head(2000)
        layers.append(
            alt.Chart(sky(rings))
            .mark_point(size=300, shape="circle", color="black", filled=False, strokeWidth=2)
            .encode(longitude="lon:Q", latitude="dec:Q")
        )
    title = alt.Title("Sky map", subtitle="RA in hours (increasing to the left), Dec in degrees; ICRS")
    return alt.layer(*layers).project(type="equalEarth").properties(height=420, title=title)


def _sky_labels() -> Any:
    """The graticule's labels: RA hours along the equator and Dec degrees along the central meridian
    (a map projection has no axes)."""
    import altair as alt
    import pandas as pd

    ra = [{"lon": 180.0 - 15.0 * h, "lat": 0.0, "text": f"{h}h"} for h in range(2, 24, 2)]
    dec = [{"lon": 0.0, "lat": float(d), "text": f"{d:+d}°"} for d in (-60, -30, 30, 60)]
    return (
        alt.Chart(pd.DataFrame(ra + dec))
        .mark_text(color="#777", fontSize=10, dy=-7)
        .encode(longitude="lon:Q", latitude="lat:Q", text="text:N")
    )
