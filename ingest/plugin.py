"""``ingest``'s contributions to ``ql`` (:mod:`lake.plugins`): the commands ``ingest``, ``rebuild``,
``generate`` and ``demo``, and the jobs ``run-ingest`` and ``get-missing-files``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lake.cli import cfg_from, handle_errors, ingest_options, scheduler_option, workers_option
from lake.plugins import hookimpl

if TYPE_CHECKING:
    from ingest.run import IngestSummary
    from lake.jobs import Job, JobContext, JobResult


def _run_ingest(cfg: dict[str, Any], rebuild: bool, under: tuple[str, ...] = ()) -> None:
    """``ql ingest`` / ``ql rebuild``: the ingest as a recorded ``run-ingest`` run, with a progress bar."""
    from tqdm import tqdm

    from lake.jobs import run_job

    bar = tqdm(
        unit="files",
        desc="rebuild" if rebuild else "ingest",
        disable=not (cfg["progress"] and sys.stderr.isatty()),
    )

    def progress(done: int, errors: int) -> None:
        bar.update(done - bar.n)
        bar.set_postfix(errors=errors)

    got: list[IngestSummary] = []
    try:
        params: dict[str, Any] = {"rebuild": True} if rebuild else {}
        if under:
            params["under"] = list(under)
        work = partial(_ingest_job, rebuild=rebuild, progress=progress, out=got)
        run = run_job(cfg["lake"], "run-ingest", params, cfg, work=work)
    finally:
        bar.close()
    if run.status == "skipped-locked":
        raise click.ClickException("another ingest is running (see 'ql jobs'); wait for it to finish")
    if not got:  # the ingest raised: its message, and where the log is
        raise click.ClickException(f"{run.error} (log: {run.log_path})")
    summary = got[0]
    for line in summary.lines():
        click.echo(line)
    for _path, err in summary.error_samples[:10]:
        click.echo(f"  error: {err}", err=True)
    if summary.errors:
        click.echo("  'ql errors' lists every file with an error", err=True)


def _ingest_job(
    ctx: JobContext,
    *,
    rebuild: bool = False,
    progress: Callable[[int, int], None] | None = None,
    out: list[IngestSummary] | None = None,
) -> JobResult:
    """The ``run-ingest`` job: the incremental ingest, recorded (``no-work`` when nothing changed)."""
    from ingest.run import ingest_with
    from lake.jobs import JobResult

    under = ctx.params.get("under")
    s = ingest_with(ctx.cfg, ctx.lake_root, rebuild=rebuild, progress=progress, under=under)
    if out is not None:
        out.append(s)
    for line in s.lines():
        ctx.log.info(line)
    for path, err in s.error_samples:
        ctx.log.warning("%s: %s", path, err)
    counts = {"scanned": s.scanned, "ingested": s.ingested, "removed": s.removed, "errors": s.errors}
    return JobResult(bool(s.ingested or s.removed or rebuild), counts, None, s.lines()[-1])


@click.command("ingest")
@click.argument("paths", nargs=-1)
@ingest_options
@handle_errors
def ingest_cmd(paths: tuple[str, ...], **opts: Any) -> None:
    """Ingest new and changed archive files; mark removed ones.

    With PATHS (folders or files of the archive, relative to it or absolute), only those are scanned:
    a cron job can ingest the folders a delivery wrote without listing the whole archive.
    """
    _run_ingest(cfg_from(**opts), rebuild=False, under=paths)


@click.command("rebuild")
@ingest_options
@handle_errors
def rebuild_cmd(**opts: Any) -> None:
    """Re-extract every file into new tables, swapped in atomically at the end."""
    _run_ingest(cfg_from(**opts), rebuild=True)


def generator_options(fn: Any) -> Any:
    """--datasets, --seed, --pixels and --realism, shared by ``ql generate`` and ``ql demo``."""
    for opt in reversed(
        [
            click.option(
                "--datasets",
                type=int,
                default=300,
                show_default=True,
                help=(
                    "Exposures drawn at random; the calibration programmes' follow-ups, darks, biases and "
                    "flats, and association products come on top (300 make about 800 datasets)."
                ),
            ),
            click.option(
                "--seed", type=int, default=1, show_default=True, help="Random seed (same seed, same bytes)."
            ),
            click.option(
                "--pixels",
                type=click.Choice(["none", "sparse", "full"]),
                default="sparse",
                show_default=True,
                help="Pixel data: none (headers only), sparse (what monitors read), full.",
            ),
            click.option(
                "--realism",
                type=click.Choice(["clean", "on-orbit"]),
                default="on-orbit",
                show_default=True,
                help="on-orbit: cosmic rays in every simulated UVIS exposure; clean: none.",
            ),
        ]
    ):
        fn = opt(fn)
    return fn


def _generate(
    out: str, datasets: int, seed: int, pixels: str, cfg: dict[str, Any], realism: str = "on-orbit"
) -> int:
    from tqdm import tqdm

    from ingest.archivegen.generate import generate

    if datasets < 1:
        raise click.UsageError(f"--datasets must be at least 1, not {datasets}")
    show = cfg["progress"] and sys.stderr.isatty()
    with tqdm(unit="files", desc="generate", disable=not show) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        return generate(
            out, datasets, seed, pixels=pixels, progress=progress,
            scheduler=cfg["scheduler"], workers=int(cfg["workers"] or 0), realism=realism,
        )  # fmt: skip


@click.command("generate")
@click.option("--out", default=None, help="Archive directory to write [setting: archive].")
@generator_options
@scheduler_option
@workers_option
@handle_errors
def generate_cmd(
    out: str | None,
    datasets: int,
    seed: int,
    pixels: str,
    realism: str,
    scheduler: str | None,
    workers: int | None,
) -> None:
    """Write a generated WFC3 archive and its truth table (quicklake_truth.parquet)."""
    cfg = cfg_from(archive=out, scheduler=scheduler, workers=workers)
    n = _generate(cfg["archive"], datasets, seed, pixels, cfg, realism)
    click.echo(f"wrote {n} files under {cfg['archive']}")


@click.command("demo")
@click.option("--out", default="demo", show_default=True, help="Directory for archive/ and lake/.")
@generator_options
@scheduler_option
@handle_errors
def demo_cmd(out: str, datasets: int, seed: int, pixels: str, realism: str, scheduler: str | None) -> None:
    """Generate the demo archive (if absent), ingest it, run the monitors, and say how to use the lake."""
    from lake.access import read_sql
    from lake.cli import ORIGINAL_QUERY
    from lake.jobs import monitor_names, run_job

    root = Path(out).resolve()
    archive, lake_dir = root / "archive", root / "lake"
    cfg = cfg_from(archive=str(archive), lake=str(lake_dir), scheduler=scheduler)
    if not (archive / ".quicklake-archive").exists():
        n = _generate(str(archive), datasets, seed, pixels, cfg, realism)
        click.echo(f"generated {n} files under {archive}")
    else:  # (--datasets, --seed, --pixels and --realism apply to a new archive only)
        click.echo(
            f"the demo archive {archive} is there already: not generated again (delete it to make a new one)"
        )
    _run_ingest(cfg, rebuild=False)
    for name in monitor_names():  # contributed by the monitors plugin, run through the job runner
        r = run_job(lake_dir, name, {}, cfg)
        c = r.counts
        made = f", {c['groups']} groups combined" if "groups" in c else ""  # (superdarks, flat pairs, visits)
        click.echo(f"monitor {name}: {r.status} ({c.get('measured', 0)} files measured{made})")
    rows = read_sql(ORIGINAL_QUERY, lake_dir).num_rows
    click.echo(f"\nlake: {lake_dir}")
    click.echo(
        f"the original Quicklook example query returns {rows} rows:  ql sql --lake {lake_dir} --original"
    )
    _how_to_use(lake_dir, archive)


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when inside it (``.venv/bin/jupyter``), else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _how_to_use(lake_dir: Path, archive: Path) -> None:
    """The lines ``ql demo`` ends with: each way into the lake, as a command that works as printed."""
    venv_bin = Path(sys.executable).parent  # duckdb and jupyter are installed beside this Python
    catalog = lake_dir / "catalog.duckdb"
    click.echo(
        f"SQL shell:   {_shown(venv_bin / 'duckdb')} -readonly {catalog}   (or: ql sql --lake {lake_dir})"
    )
    notebook = Path(__file__).resolve().parent.parent / "docs" / "notebooks" / "quickstart.ipynb"
    if notebook.exists():  # a source checkout
        jupyter = _shown(venv_bin / "jupyter")
        click.echo(f"notebook:    QUICKLAKE_LAKE={lake_dir} {jupyter} lab {_shown(notebook)}")
    click.echo(f"a header:    ql header --lake {lake_dir} <file> [--ext N] [--raw]")
    click.echo(
        f"the site:    ql app --lake {lake_dir} --archive {archive}   (then http://127.0.0.1:8501/; "
        "guests see public data: QUICKLAKE_LOCAL_USER=you shows everything on your own machine)"
    )


@hookimpl
def register_commands(cli: click.Group) -> None:
    for cmd in (ingest_cmd, rebuild_cmd, generate_cmd, demo_cmd):
        cli.add_command(cmd)


def _get_missing_files(ctx: JobContext) -> JobResult:
    from ingest.fetch import get_missing_files

    return get_missing_files(ctx)


@hookimpl
def register_jobs() -> list[Job]:
    from lake.jobs import Job

    return [
        Job("run-ingest", _ingest_job, "*/30 * * * *", "the incremental ingest", findings=False),
        Job(
            "get-missing-files",
            _get_missing_files,
            "45 3 * * *",
            "expected files (`schemas/expected_files.json`) missing or corrupt, fetched from `mirror` (any "
            "fsspec URL), verified (size, `SHA256SUMS`, FITS structure), placed atomically and ingested",
        ),
    ]
