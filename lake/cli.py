"""``ql``: thin click wrappers over the library. Only :func:`handle_errors` turns exceptions into exit
messages.

The core commands are defined here; ``ingest``, ``monitors`` and ``app`` add theirs through the
``register_commands`` hook (:mod:`lake.plugins`), importing this module's option helpers."""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import re
import sys
from collections.abc import Callable
from typing import Any

import click

from lake import settings
from lake.errors import QuicklakeError

ORIGINAL_QUERY = (
    "SELECT master.rootname, uvisflt_0.targname, uvisflt_0.exptime, uvisflt_0.ra_targ, uvisflt_0.dec_targ, "
    "uvisflt_0.filter FROM master JOIN uvisflt_0 ON master.rootname = uvisflt_0.rootname WHERE "
    "uvisflt_0.targname LIKE 'NGC%' AND uvisflt_0.date_obs > '2015-01-01' "
    "AND uvisflt_0.date_obs < '2015-01-30';"
)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the library's errors (:class:`QuicklakeError`) into a one-line message and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except QuicklakeError as e:
            raise click.ClickException(str(e)) from None

    return wrapper


# Options shared by several commands, defined once.
lake_option = click.option("--lake", "lake", default=None, help="Lake directory [setting: lake].")
archive_option = click.option("--archive", default=None, help="Archive root [setting: archive].")
scheduler_option = click.option(
    "--scheduler",
    default=None,
    help="'local', 'synchronous' or a Dask scheduler address [setting: scheduler].",
)
workers_option = click.option("--workers", type=int, default=None, help="Local workers [setting: workers].")
batch_option = click.option(
    "--batch-files", type=int, default=None, help="Files per batch [setting: batch_files]."
)


def ingest_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options every ingesting command takes."""
    for option in reversed((archive_option, lake_option, scheduler_option, workers_option, batch_option)):
        fn = option(fn)
    return fn


def cfg_from(**overrides: Any) -> dict[str, Any]:
    """The settings, with the command's options (those not ``None``) on top."""
    return settings.load(overrides)


class QuicklakeCLI(click.Group):
    """The ``ql`` group: the core commands below, and those the plugins contribute (:mod:`lake.plugins`),
    loaded when click first asks for a command that is not a core one (finding the plugins' entry points
    takes a fifth of a ``ql header`` process)."""

    _loaded = False

    def _load_plugins(self) -> None:
        if not self._loaded:
            self._loaded = True
            from lake.plugins import hook

            hook().register_commands(cli=self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugins()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self._plugin_command(ctx, cmd_name)

    def _plugin_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._load_plugins()
        return super().get_command(ctx, cmd_name)


@click.group(cls=QuicklakeCLI, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="quicklake", prog_name="ql")  # (the version is looked up only if asked)
def main() -> None:
    """Quicklake: the WFC3 Quicklook archive as a columnar lake."""


def run() -> None:
    """The ``ql`` program: :func:`main`, then out without the interpreter's teardown.

    With pyarrow, pandas and SQLAlchemy loaded, Python's teardown (freeing every module's objects) took
    0.3-0.9 s after the work was done, a sixth of a cron ingest. So once a command has finished (exit
    code in hand), the process leaves with ``os._exit`` from an ``atexit`` handler registered first:
    threads are joined and every other handler (logging's flush, Dask's and multiprocessing's closes) runs
    before it. An exception escaping a command leaves the usual way, traceback and all."""
    atexit.register(_leave)
    try:
        main()
    except SystemExit as done:
        code = done.code
        _EXIT.append(code if isinstance(code, int) else 0 if code is None else 1)
        raise


_EXIT: list[int] = []  # the exit code of a finished command (see run)


def _leave() -> None:
    if not _EXIT:
        return
    for stream in (sys.stdout, sys.stderr):
        # (a closed pipe, ``ql sql | head``, or a stream the command closed)
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(_EXIT[0])


@main.command("maintain")
@lake_option
@click.option(
    "--keep-hours", type=float, default=None, help="Hours superseded snapshots stay [setting: keep_hours]."
)
@click.option("--target-mb", type=float, default=None, help="Compacted file size [setting: target_file_mb].")
@handle_errors
def maintain_cmd(lake: str | None, keep_hours: float | None, target_mb: float | None) -> None:
    """Compact small data files, expire old snapshots, delete files nothing reads (job maintain-lake)."""
    from tqdm import tqdm

    from lake.maintenance import maintain

    cfg = cfg_from(lake=lake, keep_hours=keep_hours, target_file_mb=target_mb)
    bar = tqdm(unit="tables", desc="maintain", disable=not (cfg["progress"] and sys.stderr.isatty()))

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        summary = maintain(
            cfg["lake"], keep_hours=cfg["keep_hours"], target_mb=cfg["target_file_mb"],
            catalog_uri=cfg["catalog_uri"], progress=progress,
        )  # fmt: skip
    finally:
        bar.close()
    for line in summary.lines():
        click.echo(line)


@main.command("sql")
@click.argument("query", required=False)
@lake_option
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]), default="table")
@click.option("--output", "-o", default=None, help="File to write (required for parquet).")
@click.option("--original", is_flag=True, help="Run the original Quicklook example query.")
@click.option(
    "--as-of",
    "as_of",
    default=None,
    help="Query the lake as it was at this time (UTC, e.g. 2026-01-01T12:00) or snapshot id.",
)
@handle_errors
def sql_cmd(
    query: str | None, lake: str | None, fmt: str, output: str | None, original: bool, as_of: str | None
) -> None:
    """Run QUERY on the lake (as of a past commit with --as-of), or open an interactive SQL shell when no
    QUERY is given."""
    from lake.access import catalog_in_step, connect, open_lake, read_sql

    if original:
        query = ORIGINAL_QUERY
    if not query and as_of:
        raise click.UsageError("--as-of needs a QUERY (the interactive shell reads the lake as it is now)")
    if not query:
        import os

        lk = open_lake(lake)
        if not catalog_in_step(lk):
            from lake.errors import LakeError

            raise LakeError(
                f"{lk.duckdb_path} is ahead of pins.json (a writer was killed while publishing); run any "
                "writer (e.g. 'ql ingest') to put it back, or give a query: 'ql sql QUERY' reads the pins"
            )
        path = lk.duckdb_path
        os.execvp(_duckdb_cli(), [_duckdb_cli(), "-readonly", str(path)])
    assert query is not None
    if fmt == "table":
        import duckdb

        from lake.errors import QueryError

        try:
            rel = connect(lake, as_of=as_of, query=query).sql(query)
            text = str(rel) if rel is not None else "ok"
        except duckdb.Error as e:  # a typo is the user's: one message, no traceback
            raise QueryError(str(e).strip()) from None
        click.echo(text)
        return
    table = read_sql(query, lake, as_of=as_of)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        if not output:
            raise click.UsageError("--format parquet needs --output FILE")
        pq.write_table(table, output)
        click.echo(f"wrote {table.num_rows} rows to {output}")
        return
    if fmt == "csv":
        import io

        import pyarrow.csv as pcsv

        buf = io.BytesIO()
        pcsv.write_csv(table, buf)
        text = buf.getvalue().decode()
    else:
        text = "\n".join(json.dumps(r, default=str) for r in table.to_pylist())
    if output:
        with open(output, "w") as f:
            f.write(text)
    else:
        click.echo(text, nl=not text.endswith("\n"))


def _duckdb_cli() -> str:
    import shutil
    from pathlib import Path

    here = Path(sys.executable).parent / "duckdb"
    return str(here) if here.exists() else (shutil.which("duckdb") or "duckdb")


@main.command("search")
@click.option("--ra", default=None, help="Cone centre RA: degrees (187.7) or hours (12h30m49s, 12:30:49).")
@click.option("--dec", default=None, help="Cone centre Dec: degrees (12.39) or sexagesimal (+12d23m28s).")
@click.option(
    "--radius", default=None, help='Cone radius: arcsec (30) or with a unit (2arcmin, 0.1deg) [180"].'
)
@click.option("--target", default=None, help="A target name ('NGC 4485', 'M 101'), resolved from the lake.")
@click.option("--name", default=None, help="A rootname prefix (ib2c01) or a proposal id (12345).")
@lake_option
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
@click.option("--limit", type=int, default=100, show_default=True, help="Rows to print (0: all).")
@handle_errors
def search_cmd(
    ra: str | None, dec: str | None, radius: str | None, target: str | None, name: str | None,
    lake: str | None, fmt: str, limit: int,
) -> None:  # fmt: skip
    """Find datasets by sky position (--ra/--dec, --radius), target name (--target) or --name."""
    from lake.search import SHOWN, described, search

    t = search(lake, ra=ra, dec=dec, radius=radius, target=target, name=name)
    about = described(t)
    if "ra" in about:
        what = f"target {about['target']!r} ({', '.join(about['targnames'])}) " if "target" in about else ""
        click.echo(
            f"{what}within {about['radius_arcsec']:g} arcsec of RA {about['ra']:.5f} Dec {about['dec']:+.5f}"
            f": {t.num_rows} datasets",
            err=True,
        )
    else:
        click.echo(f"{about.get('name')!r}: {t.num_rows} datasets", err=True)
    shown = t.slice(0, limit) if limit else t
    if fmt == "table":
        for line in _text_table(shown.select([c for c in SHOWN if c in t.column_names])):
            click.echo(line)
    elif fmt == "csv":
        import io

        import pyarrow.csv as pcsv

        buf = io.BytesIO()
        pcsv.write_csv(shown, buf)
        click.echo(buf.getvalue().decode(), nl=False)
    else:
        for r in shown.to_pylist():
            click.echo(json.dumps(r, default=str))


def _text_table(t: Any) -> list[str]:
    """An Arrow table as aligned text lines (header first); floats to 5 decimals, null as ''."""

    def cell(v: object) -> str:
        return "" if v is None else f"{v:.5f}" if isinstance(v, float) else str(v)

    cols = [[c, *(cell(v) for v in t.column(c).to_pylist())] for c in t.column_names]
    widths = [max(len(x) for x in col) for col in cols]
    return [
        "  ".join(col[i].ljust(w) for col, w in zip(cols, widths, strict=True)).rstrip()
        for i in range(t.num_rows + 1)
    ]


@main.command("header")
@click.argument("file")
@click.option(
    "--ext",
    default=None,
    help="The HDU: an index (1), an EXTNAME (SCI: the first SCI) or EXTNAME,EXTVER (SCI,2) (default: all).",
)
@click.option("--raw", is_flag=True, help="Only the 80-character cards, with no line naming each HDU.")
@lake_option
@handle_errors
def header_cmd(file: str, ext: str | None, raw: bool, lake: str | None) -> None:
    """Print FILE's header cards from the lake, one 80-character card per line, each HDU after a line
    like ``# HDU 1 (SCI, ver 1)`` and a blank line."""
    from lake.access import read_header

    if ext is not None and ext.strip().isdigit():
        hdus = [(int(ext), read_header(file, int(ext), lake))]
    else:
        hdus = list(enumerate(_split_hdus(read_header(file, None, lake))))
        if ext is not None:
            hdus = _by_name(file, hdus, ext)
    for i, (index, cards) in enumerate(hdus):
        if not raw:
            click.echo(("\n" if i else "") + _hdu_label(index, cards))
        click.echo("\n".join(cards))


def _by_name(file: str, hdus: list[tuple[int, list[str]]], ext: str) -> list[tuple[int, list[str]]]:
    """The HDU ``ext`` names (``SCI``: the first SCI; ``SCI,2``: EXTNAME SCI, EXTVER 2), as astropy names
    extensions; a usage error listing the file's HDUs if none is."""
    name, _, ver = (x.strip() for x in ext.partition(","))
    for index, cards in hdus:
        got, got_ver = _extname(cards)
        if got is not None and got.upper() == name.upper() and (not ver or (got_ver or "1") == ver):
            return [(index, cards)]
    have = ", ".join(_hdu_label(i, c).removeprefix("# HDU ") for i, c in hdus)
    raise click.UsageError(f"{file} has no HDU {ext!r}; its HDUs: {have}")


def _split_hdus(lines: list[str]) -> list[list[str]]:
    """A file's card images split into HDUs: each extension's header starts with XTENSION."""
    hdus: list[list[str]] = []
    for line in lines:
        if not hdus or line.startswith("XTENSION="):
            hdus.append([])
        hdus[-1].append(line)
    return hdus


def _extname(cards: list[str]) -> tuple[str | None, str | None]:
    """An HDU's EXTNAME and EXTVER from its card images (None where it has none)."""
    values = {c[:8].rstrip(): c[10:] for c in cards if c[8:10] == "= "}
    name = re.match(r"\s*'((?:[^']|'')*)'", values.get("EXTNAME", ""))
    ver = re.match(r"\s*(\d+)", values.get("EXTVER", ""))
    return (name[1].rstrip() if name else None), (ver[1] if ver else None)


def _hdu_label(index: int, cards: list[str]) -> str:
    """``# HDU 1 (SCI, ver 1)``; ``# HDU 0 (PRIMARY)``; ``# HDU 3`` for an extension with no EXTNAME."""
    name, ver = _extname(cards)
    if name is not None:
        return f"# HDU {index} ({name}" + (f", ver {ver})" if ver else ")")
    return f"# HDU {index} (PRIMARY)" if cards and cards[0].startswith("SIMPLE") else f"# HDU {index}"


@main.command("history")
@click.argument("file")
@click.option(
    "--keyword", "-k", default=None, help="Only the versions that changed this keyword, and its cards."
)
@lake_option
@handle_errors
def history_cmd(file: str, keyword: str | None, lake: str | None) -> None:
    """Print FILE's header versions and what changed in each (docs/history.md).

    A line per version (time, size, mtime, status, the snapshot to read it with --as-of), then a line
    per card added, removed or changed."""
    from lake.history import history, lines

    t = history(file, keyword=keyword, path=lake)
    if not t.num_rows:
        what = f" in {keyword.upper()}" if keyword else ""
        click.echo(f"{file}: no change{what} recorded since it was first ingested")
        return
    click.echo("\n".join(lines(t)))


@main.command("errors")
@lake_option
@handle_errors
def errors_cmd(lake: str | None) -> None:
    """List files recorded with errors, missing files, ingested files with FITS problems, and datasets
    whose file of one type is in more than one file (duplicates: each is ingested)."""
    from lake.access import read_sql, snapshot

    t = read_sql("SELECT path, status, error FROM files WHERE status <> 'ok' ORDER BY path", lake)
    for path, status, err in zip(*(t.column(i).to_pylist() for i in range(3)), strict=True):
        click.echo(f"{status:8} {err or path}")
    n_problems = 0
    if "problems" in snapshot(lake).tables["files"].schema.names:  # (a lake not ingested since lacks it)
        q = read_sql(
            "SELECT path, problems FROM files WHERE status = 'ok' AND problems IS NOT NULL ORDER BY path",
            lake,
        )
        n_problems = q.num_rows
        for path, problems in zip(q.column(0).to_pylist(), q.column(1).to_pylist(), strict=True):
            for line in str(problems).splitlines():  # ingested all the same: read, but not standard FITS
                click.echo(f"{'problem':8} {path}: {line}")
    n_dups = _echo_duplicates(lake)
    click.echo(
        f"{t.num_rows} files not ok, {n_problems} ingested with FITS problems, {n_dups} datasets with "
        "duplicate files",
        err=True,
    )


# the same dataset and file type in more than one file (a copy in another folder, a HAP product named
# differently): every copy is ingested, and listed here so that someone decides which one is right
DUPLICATES_SQL = """
SELECT rootname, filetype, list(path ORDER BY path) AS paths FROM files
WHERE status = 'ok' AND rootname IS NOT NULL
GROUP BY rootname, filetype HAVING count(*) > 1 ORDER BY rootname, filetype
"""


def _echo_duplicates(lake: str | None) -> int:
    from lake.access import read_sql

    rows = read_sql(DUPLICATES_SQL, lake).to_pylist()
    for r in rows:
        click.echo(
            f"{'duplicate':8} {r['rootname']} {r['filetype']}: {len(r['paths'])} files, all ingested: "
            + ", ".join(r["paths"])
        )
    return len(rows)


@main.command("conflicts")
@lake_option
@handle_errors
def conflicts_cmd(lake: str | None) -> None:
    """List header values that did not fit their keyword column's type (kept exactly in ``cards``)."""
    from lake.access import read_sql

    t = read_sql(
        "SELECT path, hdu, keyword, column_type, value_type, value FROM conflicts "
        "ORDER BY path, hdu, keyword",
        lake,
    )
    for path, hdu, kw, ctype, vtype, value in zip(*(t.column(i).to_pylist() for i in range(6)), strict=True):
        click.echo(f"{path}[{hdu}] {kw} = {value!r}: a {vtype} value in a {ctype} column")
    click.echo(f"{t.num_rows} conflicting values", err=True)


@main.command("run")
@click.argument("job")
@lake_option
@click.option("--param", "-p", multiple=True, metavar="KEY=VALUE", help="A job parameter (repeatable).")
@handle_errors
def run_cmd(job: str, lake: str | None, param: tuple[str, ...]) -> None:
    """Run JOB now, recorded (status, counts, log). Exit 1 only if the job failed to run."""
    from lake.jobs import run_job

    params = {}
    for p in param:
        if "=" not in p:
            raise click.UsageError(f"--param {p!r}: expected KEY=VALUE")
        k, v = p.split("=", 1)
        params[k] = v
    cfg = cfg_from(lake=lake)
    r = run_job(cfg["lake"], job, params, cfg)
    counts = ", ".join(f"{k}={v}" for k, v in sorted(r.counts.items()))
    click.echo(f"{r.job} {r.run_id}: {r.status}" + (f" ({counts})" if counts else ""))
    if r.error:
        click.echo(f"  {r.error}", err=True)
    click.echo(f"  log: {r.log_path}")
    if r.status == "failed":
        sys.exit(1)


_COLOURS = {"green": "green", "lightgreen": "bright_green", "red": "red", "yellow": "yellow", "grey": "white"}


def _ago(days: float) -> str:
    """``days`` as a person says it: "12 min ago", "5 h ago", "3.2 d ago"."""
    if days < 1 / 24:
        return f"{max(1, round(days * 1440))} min ago"
    return f"{days * 24:.0f} h ago" if days < 2 else f"{days:.1f} d ago"


@main.group("jobs", invoke_without_command=True)
@lake_option
@click.option("--job", default=None, help="Only this job's runs.")
@click.option("--limit", type=int, default=20, show_default=True)
@click.pass_context
@handle_errors
def jobs_cmd(ctx: click.Context, lake: str | None, job: str | None, limit: int) -> None:
    """The job status board (colour by age of the last success) and the latest runs."""
    if ctx.invoked_subcommand:
        return
    from lake.jobs import board, runs

    root = cfg_from(lake=lake)["lake"]
    rows = board(root)
    if job is not None and job not in {b["job"] for b in rows}:
        raise click.ClickException(f"no job {job!r}; the jobs are {', '.join(b['job'] for b in rows)}")
    for b in rows if job is None else [b for b in rows if b["job"] == job]:
        if b["latest_status"] == "never":
            line = f"{b['job']:34} never run"
        else:
            since = _ago(b["age_days"]) if b["age_days"] is not None else "never succeeded"
            line = f"{b['job']:34} {b['latest_status']:15} last success {since}"
        click.echo(click.style(line, fg=_COLOURS[b["colour"]]))
    click.echo("")
    for r in runs(root, job, limit).to_pylist():
        click.echo(f"{r['started'][:19]}  {r['job']:34} {r['status']:15} {r['run_id']}  {r['error'] or ''}")


@jobs_cmd.command("log")
@click.argument("run_id")
@lake_option
@click.option("--follow", "-f", is_flag=True, help="Keep printing as the log grows (until the run ends).")
@handle_errors
def jobs_log_cmd(run_id: str, lake: str | None, follow: bool) -> None:
    """Print the log of run RUN_ID."""
    import time

    from lake.jobs import log_of, runs

    root = cfg_from(lake=lake)["lake"]
    path = log_of(root, run_id)
    pos = 0
    while True:
        if path.exists():
            with open(path, encoding="utf-8", errors="replace") as f:
                f.seek(pos)
                chunk = f.read()
                pos = f.tell()
            click.echo(chunk, nl=False)
        running = [
            r
            for r in runs(root, limit=100000).to_pylist()
            if r["run_id"] == run_id and r["status"] == "running"
        ]
        if not follow or not running:
            break
        time.sleep(1)


@main.command("run-due")
@lake_option
@handle_errors
def run_due_cmd(lake: str | None) -> None:
    """Run every job whose scheduled time has come (call this from cron every few minutes)."""
    from lake.jobs import due, registry, run_job, schedule

    cfg = cfg_from(lake=lake)
    failed = 0
    jobs = registry()
    order = sorted(
        due(cfg["lake"], schedule(cfg["schedule"])), key=lambda j: (j != "run-ingest", jobs[j].monitor)
    )
    for job in order:  # the ingest first, the monitors last: they measure what it brought in
        r = run_job(cfg["lake"], job, {}, cfg)
        click.echo(f"{job} {r.run_id}: {r.status}")
        failed += r.status == "failed"
    sys.exit(1 if failed else 0)


@main.command("cron-line")
@lake_option
@click.option("--every", type=int, default=5, show_default=True, help="Minutes between run-due calls.")
@handle_errors
def cron_line_cmd(lake: str | None, every: int) -> None:
    """Write quicklake.toml in the lake folder with the settings in force, and print the crontab entry
    that runs the schedule with them from any directory, and the schedule itself."""
    import shutil
    from pathlib import Path

    from lake.jobs import schedule

    cfg = cfg_from(lake=lake)
    ql = shutil.which("ql") or str(Path(sys.executable).with_name("ql"))
    lake_dir = Path(cfg["lake"]).resolve()
    lake_dir.mkdir(parents=True, exist_ok=True)
    config = lake_dir / "quicklake.toml"
    # only its owner may read it: it may hold secrets (smtp_password, a catalog_uri with a password)
    tmp = config.with_name(f".{config.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(settings.toml_for(cfg))
    os.replace(tmp, config)
    click.echo(f"# settings for cron written to {config} (run 'ql cron-line' again after changing them)")
    log = lake_dir / "logs" / "cron.log"
    click.echo(f"*/{every} * * * * QUICKLAKE_CONFIG={config} {ql} run-due >> {log} 2>&1")
    for job, expr in schedule(cfg["schedule"]).items():
        click.echo(f"# {expr:16} {job}")


@main.command("tables")
@lake_option
@handle_errors
def tables_cmd(lake: str | None) -> None:
    """List the lake's tables and views with their row counts."""
    from lake.access import counts

    for name, n in counts(lake).items():
        click.echo(f"{name:24} {n:>12}")


@main.command("keywords")
@click.argument("text", default="")
@click.option("--table", default=None, help="Only keywords of this table (uvisflt, or one HDU's: uvisflt_1).")
@lake_option
@handle_errors
def keywords_cmd(text: str, table: str | None, lake: str | None) -> None:
    """Header keywords whose name or doc contains TEXT: doc, unit, type and the tables (HDUs) with each
    (those of the lake, if there is one)."""
    from lake.access import columns
    from lake.keywords import keywords

    try:
        present: dict[str, list[str]] | None = columns(lake)
    except QuicklakeError:  # no lake (yet): every table the schemas declare
        present = None
    t = keywords(text, table=table, present=present)
    if not t.num_rows:
        raise click.ClickException(f"no keyword matches {text!r}" + (f" in {table}" if table else ""))
    for r in t.to_pylist():
        unit = f" [{r['unit']}]" if r["unit"] else ""
        click.echo(f"{r['keyword']:10} {r['type']:7} {r['doc']}{unit}\n{'':18} in {r['tables']}")


@main.command("reference")
@click.argument("readme", default="README.md")
@click.option("--check", is_flag=True, help="Only report whether the tables are current (exit 1 if not).")
@handle_errors
def reference_cmd(readme: str, check: bool) -> None:
    """Regenerate README's tables of commands, jobs and monitors from the code."""
    from pathlib import Path

    from lake import reference

    text = Path(readme).read_text()
    current = reference.render(text) == text
    if check:
        click.echo(f"{readme}: tables {'current' if current else 'out of date'}")
        sys.exit(0 if current else 1)
    reference.write(readme)
    click.echo(f"{readme}: tables {'already current' if current else 'regenerated'}")


@main.command("settings")
@click.option("--markdown", is_flag=True, help="Print docs/settings.md instead.")
def settings_cmd(markdown: bool) -> None:
    """Show every setting with its current value and help."""
    if markdown:
        click.echo(settings.markdown(), nl=False)
        return
    cfg = settings.load()
    for s in settings.REGISTRY:
        click.echo(f"{s.name:12} = {cfg[s.name]!r}\n    {s.help}")


if __name__ == "__main__":
    main()
