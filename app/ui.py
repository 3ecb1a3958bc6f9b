"""Shared UI helpers of the site: settings, the viewer, their scope of the lake, formatting.

UI only: what is visible to whom is decided in ``app.data.scope`` / ``app.data.viewer``; this module only
caches those objects per role and lake snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import streamlit as st

from app.data.browse import DatasetFilter
from app.data.scope import Scope
from app.data.viewer import GUEST, Viewer, viewer_from_claims
from lake import settings
from lake.errors import QuicklakeError

DATASET_PAGE = "app_pages/dataset.py"
BROWSE_PAGE = "app_pages/browse.py"
# a widget whose value lives in the URL (``?key=value``): a page's state can be shared as a link (#18)
BOUND: dict[str, Any] = {"bind": "query-params"}


def cfg() -> dict[str, Any]:
    return settings.load()


def auth_configured() -> bool:
    try:
        return "auth" in st.secrets
    except FileNotFoundError:
        return False
    except Exception:  # no secrets file at all
        return False


def viewer() -> Viewer:
    """Who is looking: from the OIDC claims of ``st.user``, else the ``local_user`` setting, else a guest."""
    c = cfg()
    claims = st.user.to_dict()
    if claims.get("is_logged_in"):
        return viewer_from_claims(claims, c)
    if c["local_user"] and not auth_configured():
        return Viewer(name=c["local_user"], team=True)
    return GUEST


@st.cache_resource(max_entries=4, show_spinner=False)
def _scope(lake: str, role: str, pins_text: str, hour: str, proposals: str) -> Scope:
    # one sandbox per role and lake snapshot (and hour: datasets leave their proprietary period; and
    # proposals file version: a changed period changes what guests may see at once)
    return Scope(lake, Viewer(name=role, team=role == "team"), cfg())


def proposals_version(c: dict[str, Any]) -> str:
    """The proposals file's modification time and size ('' if there is none): part of a scope's key."""
    import fsspec

    from lake.proprietary import proposals_file

    try:
        fs, _, (p,) = fsspec.get_fs_token_paths(proposals_file(c))
        info = fs.info(p)
    except (OSError, ValueError):
        return ""
    return f"{info.get('mtime', info.get('LastModified', ''))} {info.get('size', '')}"


def lake_root() -> Path:
    return Path(cfg()["lake"]).resolve()


def scope() -> Scope:
    """The viewer's scope of the lake (shared by sessions of the same role; queries are serialized)."""
    v = viewer()
    pins = (lake_root() / "pins.json").read_text() if (lake_root() / "pins.json").exists() else ""
    hour = datetime.now(UTC).strftime("%Y%m%d%H")
    return _scope(str(lake_root()), v.role, pins, hour, proposals_version(cfg())).as_viewer(v)


def console_scope(as_of: str = "") -> Scope:
    """The scope the SQL console runs on: the viewer's own; :meth:`Scope.console` gives every query a
    connection of its own to the server's shared query pool (no per-session database, no shared lock).
    ``as_of`` (team members only): the lake as it was then."""
    if not as_of:
        return scope()
    v = viewer()
    return _past_scope(str(lake_root()), v.role, as_of.strip()).as_viewer(v)


@st.cache_resource(max_entries=2, show_spinner=False)
def _past_scope(lake: str, role: str, as_of: str) -> Scope:
    # a past commit never changes: one sandbox per time asked (planning its tables reads Iceberg metadata)
    return Scope(lake, Viewer(name=role, team=role == "team"), cfg(), resident=False, as_of=as_of)


@contextmanager
def shown_errors() -> Iterator[None]:
    """Show Quicklake errors (bad input, access denied) as an error box instead of a traceback."""
    try:
        yield
    except QuicklakeError as e:
        st.error(str(e), icon=":material/error:")


# a plain block of preformatted text, in the theme's code font and colours
PRE_STYLE = (
    "font-family: 'Source Code Pro', ui-monospace, monospace; font-size: 0.8rem; line-height: 1.45; "
    "white-space: pre; overflow-x: auto; margin: 0; padding: 0.75rem 1rem; border-radius: 0.5rem; "
    "background: rgba(151, 166, 195, 0.15)"
)


def preformatted(text: str) -> None:
    """``text`` as it is (a FITS header, a log), monospaced, in a plain ``<pre>`` that the browser's
    find searches. Not st.code: its syntax highlighter is a 1.5 MB script the browser parses on every
    page load that shows one, and highlights line by line (~0.3 s of a Dataset page, #18)."""
    import html

    st.html(f'<pre class="ql-text" style="{PRE_STYLE}">{html.escape(text, quote=False)}</pre>')


# a row of facts (label above, value below) and small tables as plain HTML: one element each, where
# st.metric per fact and st.dataframe (its grid script, an Arrow decode, a canvas) cost the browser
# more than the few values they show (#18)
FACTS_STYLE = (
    "<style>.ql-facts-row { display: flex; flex-wrap: wrap; gap: 0.5rem 2.5rem; margin: 0.25rem 0; }"
    ".ql-fact-label { font-size: 0.875rem; opacity: 0.8; }"
    ".ql-fact-value { font-size: 2.25rem; line-height: 1.2; }"
    ".ql-small { border-collapse: collapse; font-size: 0.875rem; width: 100%; }"
    ".ql-small th, .ql-small td { border: 1px solid rgba(128, 128, 128, 0.25); padding: 0.3rem 0.6rem;"
    " text-align: left; overflow-wrap: anywhere; }"
    ".ql-small th { font-weight: 400; opacity: 0.8; }"
    ".ql-small td.ql-num { text-align: right; font-variant-numeric: tabular-nums; }</style>"
)


def facts(values: dict[str, Any]) -> None:
    """``{label: value}`` in a row, each label above its value (as ``st.metric`` draws one)."""
    import html

    cells = "".join(
        f'<div><div class="ql-fact-label">{html.escape(str(k))}</div>'
        f'<div class="ql-fact-value">{html.escape(str(v))}</div></div>'
        for k, v in values.items()
    )
    st.html(f'{FACTS_STYLE}<div class="ql-facts-row">{cells}</div>')


def small_table(df: Any, links: dict[str, Any] | None = None) -> None:
    """A frame of a few rows as an HTML table; each documented column's keyword help (``schemas/``) as
    its header's tooltip, numbers to the right, missing values as "None". ``links``: ``{column:
    value -> URL}``, that column's values as links (e.g. :func:`dataset_url`, :func:`browse_url`)."""
    import html

    from lake.keywords import column_help

    helps = column_help(df.columns)
    head = "".join(
        f'<th title="{html.escape(helps.get(c, ""))}">{html.escape(str(c))}</th>' for c in df.columns
    )
    numeric = {c for c in df.columns if str(df[c].dtype).startswith(("int", "Int", "float", "Float"))}

    def cell(c: str, v: Any) -> str:
        text = html.escape("None" if _missing(v) else str(v))
        if links and c in links and not _missing(v):
            text = f'<a href="{html.escape(links[c](v))}">{text}</a>'
        return f'<td class="ql-num">{text}</td>' if c in numeric else f"<td>{text}</td>"

    rows = "".join(
        "<tr>" + "".join(cell(c, v) for c, v in zip(df.columns, r, strict=True)) + "</tr>"
        for r in df.itertuples(index=False)
    )
    table = f'<table class="ql-small"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
    st.html(f'{FACTS_STYLE}<div style="overflow-x: auto">{table}</div>')


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def canvas(spec: dict[str, Any]) -> dict[str, Any]:
    """A Vega-Lite ``spec`` drawn on a canvas, not as SVG (Streamlit's default below 2,000 points): an
    element per point, with its ARIA attributes, took a trend chart of 1,500 points ~0.15 s more of the
    browser's time on every view (#18). Tooltips work the same."""
    meta = spec.get("usermeta", {})
    return {
        **spec,
        "usermeta": {**meta, "embedOptions": {**meta.get("embedOptions", {}), "renderer": "canvas"}},
    }


def tooltip(*fields: tuple[str, str]) -> list[dict[str, str]]:
    """A Vega-Lite ``tooltip`` encoding of ``(column, type)`` pairs (the site's charts are plain specs:
    Altair validated them on every load). Times are shown in UTC, as the tables beside the charts."""
    return [
        {"field": c, "type": t, "timeUnit": "utcyearmonthdatehoursminutesseconds", "title": f"{c} (UTC)"}
        if t == "temporal"
        else {"field": c, "type": t}
        for c, t in fields
    ]


def human_bytes(n: float | None) -> str:
    n = float(n or 0)
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} PB"


# the job board's colours (lake.jobs.board), as cell backgrounds: an emoji font is not on every machine
JOB_COLOURS = {
    "green": "#2e7d32",
    "lightgreen": "#9ccc65",
    "red": "#c62828",
    "yellow": "#f9a825",
    "grey": "#9e9e9e",
}


# a run's status as the Jobs page's charts colour it (every status of lake.jobs.STATUSES)
RUN_COLOURS = {
    "success": JOB_COLOURS["green"],
    "no-work": JOB_COLOURS["lightgreen"],
    "failed": JOB_COLOURS["red"],
    "skipped": JOB_COLOURS["grey"],
    "skipped-locked": "#cfcfcf",
    "running": JOB_COLOURS["yellow"],
}


def utc_time(iso: str) -> str:
    """An ISO time as ``2026-12-01 07:30:22`` in UTC (a record's microseconds and offset left out)."""
    t = datetime.fromisoformat(iso)
    return (t.astimezone(UTC) if t.tzinfo else t).strftime("%Y-%m-%d %H:%M:%S")


BOARD_LEGEND = (
    "Red: the latest run failed · yellow: running · light green: last success over a day ago · "
    "green: succeeded within a day · grey: skipped (a setting it needs is not set) or never run"
)
_ATTENTION = {"red": 0, "yellow": 1, "lightgreen": 2, "grey": 3, "green": 4}


def board_order(b: dict[str, Any]) -> tuple[bool, int, str]:
    """The job board's order: jobs that ran before those never run, failures first, then running,
    stale, skipped and fresh ones, each by name."""
    return b["latest_status"] == "never", _ATTENTION.get(b["colour"], 5), b["job"]


def job_board_style(rows: Any) -> Any:
    """A pandas Styler of the job board's rows (a DataFrame with a ``colour`` column), each row tinted
    with its job's colour."""
    return rows.style.apply(lambda r: [f"background-color: {JOB_COLOURS[r['colour']]}33"] * len(r), axis=1)


def age(ts: datetime | str | None) -> str:
    if ts is None or ts == "":
        return "never"
    t = datetime.fromisoformat(ts) if isinstance(ts, str) else ts
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    s = (datetime.now(UTC) - t).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s / size:.1f} {unit} ago"
    return f"{s:.0f} s ago"


def dataset_url(rootname: str) -> str:
    return f"dataset?rootname={rootname}"


def browse_url(proposid: Any, visit: str | None = None) -> str:
    return f"browse?browse_proposal={proposid}" + (f"&browse_visit={visit}" if visit else "")


def _asn_url(asn_id: Any) -> str | None:
    a = str(asn_id or "").strip().lower()
    return dataset_url(a) if a and a != "none" else None


def linked_table(
    df: Any,
    label: str = "dataset",
    columns: list[str] | None = None,
    badges: bool | dict[str, str] = True,
    column_config: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """A table whose ``rootname`` column becomes a first column of links to the Dataset page, followed
    by the anomaly flags in force (``badges``: one query for the whole table, or the flags already
    read); ``proposid`` links to the proposal in Browse and ``asn_id`` to the association's page.
    ``column_config``: the other columns' (formats, help)."""
    config: dict[str, Any] = dict(column_config or {})
    if "rootname" in df.columns:
        flagged = badges if isinstance(badges, dict) else anomaly_badges(df["rootname"]) if badges else {}
        df = df.assign(**{label: [dataset_url(r) for r in df["rootname"]]})
        extra = []
        if badges is not False:
            df = df.assign(flags=[flagged.get(r, "") for r in df["rootname"]])
            extra = ["flags"]
        rest = [c for c in (columns or list(df.columns)) if c not in {"rootname", label, *extra}]
        df = df[[label, *extra, *rest]]
        config[label] = st.column_config.LinkColumn(label, display_text=r"rootname=(.*)")
    if "proposid" in df.columns:
        df = df.assign(proposid=[browse_url(p) if p is not None else None for p in df["proposid"]])
        config["proposid"] = st.column_config.LinkColumn("proposid", display_text=r"browse_proposal=(\d+)")
    if "asn_id" in df.columns:
        df = df.assign(asn_id=[_asn_url(a) for a in df["asn_id"]])
        config["asn_id"] = st.column_config.LinkColumn("asn_id", display_text=r"rootname=(.*)")
    config = keyword_help(df.columns, config)
    st.dataframe(df, column_config=config, hide_index=True, width="stretch", **kwargs)


def keyword_help(columns: Any, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """``config`` (a ``column_config``) with each documented column's keyword, doc, unit and type from
    ``schemas/`` as its header tooltip (``help``); a column's own settings and help are kept."""
    from lake.keywords import column_help

    out = dict(config or {})
    for col, text in column_help(columns).items():
        mine = out.get(col)
        if mine is None:
            out[col] = st.column_config.Column(help=text)
        elif isinstance(mine, dict) and not mine.get("help"):
            out[col] = {**mine, "help": text}
    return out


def anomaly_badges(rootnames: Any) -> dict[str, str]:
    """``{rootname: "🚩 Satellite trail, Ghost"}`` for the given datasets that are flagged now: one
    query of the flags in force, whoever looks (a guest sees that a dataset is flagged, not by whom)."""
    from app.data import anomaly

    wanted = set(rootnames)
    if not wanted:
        return {}
    out: dict[str, list[str]] = {}
    for r in anomaly.current(scope()).to_pylist():
        if r["rootname"] in wanted:
            out.setdefault(r["rootname"], []).append(anomaly.ANOMALY_TYPES.get(r["anomaly"], r["anomaly"]))
    return {k: "🚩 " + ", ".join(sorted(v)) for k, v in out.items()}


# pixels a date range ("2026/10/01 – 2026/11/30") needs in a row of inputs, which else clips it
DATE_RANGE_WIDTH = 250

# Facets with a dozen values are drop-downs: a pill per value was most of Browse's first paint (#18).
PILL_FACETS = ("detector", "filetype", "year")


def facet_bar(f: DatasetFilter, prefix: str) -> DatasetFilter:
    """Facets with counts under a result: each value narrows the result to that count when picked
    (kept in the URL as ``?<prefix><facet>=<value>``; picked again or set to "any", it is dropped).
    The facets of few values are pills, the others (filter, proposal, target) one drop-down each.
    Returns ``f`` narrowed by the facets picked."""
    from app.data import facets

    picked = {name: st.query_params.get(prefix + name) for name in facets.FACETS}
    narrowed = facets.narrowed(f, picked)
    counts, totals = facets.counts_and_totals(scope(), narrowed)
    shown = {name: dict(counts[name]) for name in facets.FACETS if counts[name]}
    for name in (n for n in PILL_FACETS if n in shown):
        n = shown[name]
        with st.container():  # (a full-width row each: pills in narrow columns run off the edge)
            st.pills(
                _facet_label(facets.FACETS[name][0], len(n), totals[name]),
                list(n),
                default=picked[name] if picked[name] in n else None,
                format_func=lambda v, n=n: f"{v} ({n[v]:,})",  # type: ignore[misc]
                key=f"{prefix}pill_{name}",
                on_change=_pick_facet,
                args=(prefix, name, "pill"),
            )
    with st.container(horizontal=True):
        for name in (n for n in facets.FACETS if n in shown and n not in PILL_FACETS):
            n = shown[name]
            st.selectbox(
                _facet_label(facets.FACETS[name][0], len(n), totals[name]),
                [None, *n],
                index=[None, *n].index(picked[name]) if picked[name] in n else 0,
                format_func=lambda v, n=n: "any" if v is None else f"{v} ({n[v]:,})",  # type: ignore[misc]
                key=f"{prefix}pick_{name}",
                on_change=_pick_facet,
                args=(prefix, name, "pick"),
            )
    return narrowed


def _facet_label(label: str, shown: int, total: int) -> str:
    """A facet's label, saying so when it shows only its most frequent values."""
    return f"{label} ({shown:,} most frequent of {total:,})" if total > shown else label


def _pick_facet(prefix: str, name: str, kind: str) -> None:
    value = st.session_state.get(f"{prefix}{kind}_{name}")
    if value:
        st.query_params[prefix + name] = value
    else:
        st.query_params.pop(prefix + name, None)


def dataset_filter(proposid: Any, dates: Any, target: str, **fields: Any) -> DatasetFilter:
    """The Browse/Query form values as a filter: a ``st.date_input`` range gives (from, to), each None
    while not picked; empty text means no condition."""
    return DatasetFilter(
        proposid=int(proposid) if proposid is not None else None,
        target=target or None,
        date_from=dates[0] if len(dates) > 0 else None,
        date_to=dates[1] if len(dates) > 1 else None,
        **fields,
    )


def team_only(v: Viewer, what: str) -> bool:
    """True if the viewer may see ``what``; otherwise says so and returns False."""
    if v.team:
        return True
    st.info(f"{what} is for WFC3 team members. Log in with a team account to see it.", icon=":material/lock:")
    return False


def any_value(v: object) -> str:
    """Drop-down label of an optional filter: None reads as 'any'."""
    return "any" if v is None else str(v)


def anomaly_form(prefix: str, rootname: str | None = None, action: str = "flag") -> None:
    """Flag (or unflag) a dataset: ``rootname``, or a rootname box when None. What was typed stays when
    the flag is refused (a typo in the rootname, a missing comment); the comment box empties once it
    is recorded. An empty comment on a re-flag keeps the comment in force."""
    from app.data import anomaly

    types = anomaly.ANOMALY_TYPES
    with st.form(f"{prefix}_form"):
        if rootname is None:
            st.text_input("Rootname", value=st.query_params.get("rootname", ""), key=f"{prefix}_root")
        st.selectbox("Anomaly", list(types), format_func=types.get, key=f"{prefix}_type")
        if action == "flag":
            hint = "where in the image, how strong, … (empty: keep the comment in force)"
            st.text_area("Comment", key=f"{prefix}_note", placeholder=hint)
        else:
            st.text_area("Why", key=f"{prefix}_note")
        st.form_submit_button(
            action.capitalize(),
            type="primary" if action == "flag" else "secondary",
            icon=":material/flag:" if action == "flag" else ":material/flag_circle:",
            on_click=_record_anomaly,
            args=(prefix, rootname, action),
        )
    kind, text = st.session_state.pop(f"{prefix}_said", (None, ""))
    if kind == "ok":
        st.success(text, icon=":material/flag:")
    elif kind == "error":
        st.error(text, icon=":material/error:")


def _record_anomaly(prefix: str, rootname: str | None, action: str) -> None:
    from app.data import anomaly

    root = (rootname or st.session_state.get(f"{prefix}_root", "")).strip().lower()
    kind, note = st.session_state[f"{prefix}_type"], st.session_state.get(f"{prefix}_note", "")
    label = anomaly.ANOMALY_TYPES[kind]
    try:
        if action == "flag":
            kept = anomaly.flag(scope(), root, kind, note)
            said = f"{root} flagged as {label}" + (f" · “{kept}”" if kept and not note.strip() else "")
        else:
            anomaly.unflag(scope(), root, kind, note)
            said = f"{root}: {label} flag withdrawn"
    except QuicklakeError as e:
        st.session_state[f"{prefix}_said"] = ("error", str(e))  # the form keeps what was typed
        return
    st.session_state[f"{prefix}_note"] = ""
    st.session_state[f"{prefix}_said"] = ("ok", said)
