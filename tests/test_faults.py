"""kill -9 at every step of the commit sequence (issue #21), by the fault injector of :mod:`lake.faults`.

Each scenario (an ingest of new files, of changed files, of removed files, a rebuild, a maintenance run)
is run once in a subprocess with ``QUICKLAKE_FAULT=trace:...`` to list the steps it goes through and to
record the state it commits (the *next* state); then, from the same starting lake (the *previous*
state), it is run again and killed with SIGKILL at one step. After the kill:

- every reader (``lake.read``, ``lake.connect`` SQL, ``lake.read_header``) sees exactly the previous or
  the next state, the same one, table by table (row counts and row contents);
- the next writer recovers and completes: running the operation again gives the next state;
- ``maintain(keep_hours=0)`` then leaves no file, folder or namespace nothing refers to.

The next state is checked once against the archive: every file's cards are its FITS header.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

import lake
from ingest.fitsheader import read_raw_headers
from ingest.run import ingest
from lake.access import catalog_in_step
from lake.cli import main
from lake.errors import LakeError
from lake.maintenance import _referenced, maintain
from lake.tables import Lake

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ("new", "changed", "removed", "rebuild", "rebuild-many", "maintain", "monitor", "job")
MONITOR, JOB = "uvis-bowtie", "check-lake2fsys"  # a calibration monitor and a job with findings
# the columns that say what a table holds (not when it was written)
STABLE = {
    "files": ["path", "status", "size", "mtime", "tables", "error", "problems", "rootname"],
    "cards": ["path", "hdu", "position", "keyword", "image"],
}
WIDE_KEY = ["path", "hdu"]


def _digest(df: pl.DataFrame) -> str:
    """Rows as a set (order-free), all columns as text: equal for the same rows read by any reader."""
    text = df.select(pl.all().cast(pl.String)).fill_null("\0")
    hashes = text.hash_rows(seed=1).sort().to_numpy().tobytes()
    return hashlib.sha256(hashes).hexdigest()


def _columns(table: str, have: list[str]) -> list[str]:
    if table in STABLE:
        return [c for c in STABLE[table] if c in have]
    if "hdu" in have and "path" in have:  # a wide header table
        return WIDE_KEY
    return [c for c in have if c not in ("ingested_at", "run_id", "found_at", "started_at", "finished_at")]


def state(lk: Path) -> dict[str, tuple[int, str]]:
    """Every physical table's rows and their digest, read with lake.read and with lake.connect SQL; the
    two must agree (a reader never mixes two states)."""
    snap = lake.snapshot(lk)
    con = lake.connect(lk)
    out = {}
    for name in sorted(snap.tables):
        df = lake.read(name, lk)
        cols = _columns(name, df.columns)
        via_sql = con.sql(f'SELECT {", ".join(cols)} FROM "{name}"').pl()
        if name.startswith("findings_"):
            # a job's findings are appended per run: a rerun after a kill past the commit point adds
            # the same findings again under its own run id, so the rows are compared as a set
            df, via_sql = df.unique(subset=cols), via_sql.unique()
        got = (df.height, _digest(df.select(cols)))
        assert (via_sql.height, _digest(via_sql)) == got, name
        out[name] = got
    return out


def headers_match_archive(lk: Path, archive: Path) -> int:
    """Every ``ok`` file's cards are its FITS header, card for card; returns how many files."""
    files = lake.read("files", lk).filter(pl.col("status") == "ok")["path"].to_list()
    cards = lake.read("cards", lk).sort("path", "hdu", "position")
    by_path = dict(cards.group_by("path", maintain_order=True).agg(pl.col("image").str.join("")).iter_rows())
    for rel in files:
        want = "".join(r.data.decode("latin-1") for r in read_raw_headers(archive / rel))
        assert by_path.get(rel) == want, rel
    return len(files)


def leftovers(lk: Path) -> list[str]:
    """What no table, pin or namespace of the lake refers to: temporary files in the lake's folder,
    other namespaces and their folders, files under the warehouse no table's metadata names."""
    lk_obj = Lake(lk)
    pins = lk_obj.pins()
    known = {".lock", "catalog.duckdb", "catalog.sqlite", "pins.json", "warehouse", "state.sqlite"}
    known |= {"state.sqlite-wal", "state.sqlite-shm"}  # SQLite's own (WAL mode), left by a killed writer
    known |= {"logs", "locks", "reports"}  # job logs, job locks, monitor plots: not table data
    out = [p.name for p in lk.iterdir() if p.name not in known]
    out += [f"namespace {ns}" for (ns,) in lk_obj.catalog.list_namespaces() if ns != pins.namespace]
    refs: set[str] = set()
    for name in pins.tables:
        refs |= _referenced(lk_obj.table(pins, name))
    for p in (lk / "warehouse").rglob("*"):
        inside = p.relative_to(lk / "warehouse").parts[0] in (pins.namespace, f"{pins.namespace}.db")
        if not inside or (p.is_file() and str(p) not in refs):
            out.append(str(p.relative_to(lk)))
    return sorted(out)


@dataclass
class Case:
    """A scenario ready to be killed: the lake before it (saved), its command, its steps, both states."""

    lk: Path
    saved: Path
    archive: Path
    code: str
    steps: list[str]
    prev: dict[str, tuple[int, str]]
    next: dict[str, tuple[int, str]]
    sample: dict[str, tuple[list[str], list[str]]]  # a file's header lines in the previous, next state

    def restore(self) -> None:
        shutil.rmtree(self.lk)
        shutil.copytree(self.saved, self.lk, symlinks=True)

    def run(self, fault: str) -> int:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "QUICKLAKE_FAULT": fault}
        env.pop("QUICKLAKE_CONFIG", None)
        return subprocess.run([sys.executable, "-c", self.code], env=env, timeout=300).returncode

    def again(self) -> None:
        """The operation once more, in this process (the next writer)."""
        exec(self.code, {})


def _patch_card(path: Path) -> None:
    """Change one character of the TARGNAME value in place (same size; a newer mtime)."""
    data = bytearray(path.read_bytes())
    at = data.index(b"TARGNAME= '") + 11
    data[at] = ord("Z") if data[at] != ord("Z") else ord("Y")
    path.write_bytes(bytes(data))
    t = time.time() + 100
    os.utime(path, (t, t))


def _ingest_code(lk: Path, archive: Path, **kw: object) -> str:
    args = "".join(f", {k}={v!r}" for k, v in kw.items())
    return (
        "from ingest.run import ingest\n"
        f"ingest({str(lk)!r}, {str(archive)!r}, scheduler='synchronous'{args})\n"
    )


def _run_code(lk: Path, archive: Path, job: str) -> str:
    """A recorded run of ``job`` (a monitor or a maintenance job) that must end well, or find nothing
    left to do when it reruns after a kill past its commit point."""
    return (
        "import os\n"
        f"os.environ['QUICKLAKE_ARCHIVE'] = {str(archive)!r}\n"
        "from lake.jobs import run_job\n"
        f"r = run_job({str(lk)!r}, {job!r})\n"
        "assert r.status in ('success', 'no-work'), (r.status, r.error)\n"
    )


def _setup_run(kind: str, base: Path) -> tuple[Path, Path, str, list[str]]:
    """A lake with pixels to measure; the scenario is one run of the monitor or the job (which finds
    the three files removed from the archive)."""
    from ingest.archivegen.generate import generate

    archive, lk = base / "archive", base / "lake"
    generate(archive, datasets=8, seed=11, pixels="sparse")
    ingest(lk, str(archive), scheduler="synchronous")
    fits = sorted(p.relative_to(archive).as_posix() for p in archive.rglob("*_jif.fits"))
    if kind == "job":
        for rel in fits[:3]:
            (archive / rel).unlink()
    return lk, archive, _run_code(lk, archive, MONITOR if kind == "monitor" else JOB), fits[3:4]


def _setup(kind: str, base: Path) -> tuple[Path, Path, str, list[str]]:
    """Generate an archive, build the lake the scenario starts from, change the archive for it; returns
    the lake, the archive, the scenario's code and the files whose headers are compared."""
    from ingest.archivegen.generate import generate

    if kind in ("monitor", "job"):
        return _setup_run(kind, base)
    archive, lk = base / "archive", base / "lake"
    generate(archive, datasets=6, seed=11)
    proposals = sorted(p for p in archive.iterdir() if p.is_dir())
    fits = sorted(p.relative_to(archive).as_posix() for p in archive.rglob("*.fits"))
    sample = fits[:1] + fits[-1:]
    aside = base / "aside"
    aside.mkdir()
    later = proposals[-4:] if kind == "new" else []
    if kind == "maintain":  # the visits of the proposal with most come one ingest each: small files
        later = sorted(max(proposals, key=lambda p: len(list(p.iterdir()))).iterdir())
    for p in later:
        p.rename(aside / p.name)
    ingest(lk, str(archive), scheduler="synchronous")
    code = _ingest_code(lk, archive)
    if kind == "new":
        for p in sorted(aside.iterdir()):
            p.rename(archive / p.name)
        sample = [
            p.relative_to(archive).as_posix() for p in sorted((archive / proposals[-1].name).rglob("*.fits"))
        ][:2]
    elif kind == "changed":
        for rel in sample:
            _patch_card(archive / rel)
    elif kind == "removed":
        for rel in fits[1:4]:
            (archive / rel).unlink()
        sample = fits[1:3]
    elif kind == "rebuild":
        code = _ingest_code(lk, archive, rebuild=True)
    elif kind == "rebuild-many":  # batch files compacted as they come (ingest.compacting)
        code = _ingest_code(lk, archive, rebuild=True, batch_files=3)
    elif kind == "maintain":
        ingest(lk, str(archive), scheduler="synchronous", rebuild=True)  # a retired namespace to drop
        for p in later:
            (aside / p.name).rename(p)
            ingest(lk, str(archive), scheduler="synchronous")  # small files to compact
        code = f"from lake.maintenance import maintain\nmaintain({str(lk)!r}, keep_hours=0)\n"
    return lk, archive, code, sample


def _header(lk: Path, rel: str) -> list[str]:
    try:
        return lake.read_header(rel, path=lk)
    except LakeError:
        return []


_CASES: dict[str, Case] = {}


def case(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Case:
    """The scenario's lake, states and steps (made once per module)."""
    if kind in _CASES:
        return _CASES[kind]
    base = tmp_path_factory.mktemp(f"fault-{kind}")
    lk, archive, code, sample = _setup(kind, base)
    saved = base / "saved"
    shutil.copytree(lk, saved, symlinks=True)
    prev = state(lk)
    before = {rel: _header(lk, rel) for rel in sample}
    trace = base / "trace"
    c = Case(lk, saved, archive, code, [], prev, {}, {})
    assert c.run(f"trace:{trace}") == 0
    c.steps = trace.read_text().split()
    c.next = state(lk)
    assert kind == "job" or headers_match_archive(lk, archive) > 0  # the job's archive lost 3 files
    c.sample = {rel: (before[rel], _header(lk, rel)) for rel in sample}
    _CASES[kind] = c
    return c


# (scenario, step, which time it is reached: 1 = first, -1 = last, 0 = halfway)
FAST = [
    ("new", "table.committed", 0),
    ("new", "publish.catalog", -1),
    ("changed", "table.committed", 2),
    ("removed", "table.staged", -1),
    ("rebuild", "publish.catalog", 1),
    ("rebuild", "rebuild.retired", 1),
    ("rebuild-many", "table.committed", 0),
    ("maintain", "table.committed", 1),
    ("monitor", "table.committed", 1),
    ("monitor", "publish.catalog", 1),
    ("job", "table.committed", 1),
    ("job", "publish.done", 1),
]
SLOW = [
    ("new", "batch.written", 1),
    ("new", "table.staged", 1),
    ("new", "table.committed", 1),
    ("new", "table.committed", -1),
    ("new", "catalog.written", -1),
    ("new", "publish.done", -1),
    ("changed", "table.staged", 1),
    ("changed", "publish.catalog", -1),
    ("removed", "table.committed", 1),
    ("removed", "publish.catalog", -1),
    ("rebuild", "rebuild.begun", 1),
    ("rebuild", "table.committed", 0),
    ("rebuild", "catalog.written", 1),
    ("rebuild", "publish.done", 1),
    ("rebuild-many", "batch.written", 0),
    ("rebuild-many", "publish.catalog", 1),
    ("maintain", "compact.written", 1),
    ("maintain", "table.staged", -1),
    ("maintain", "publish.catalog", 1),
    ("maintain", "maintain.expired", 1),
    ("maintain", "maintain.cleaned", 0),
    ("maintain", "namespace.dropping", 1),
    ("monitor", "catalog.written", 1),
    ("monitor", "publish.done", 1),
    ("job", "catalog.written", 1),
    ("job", "publish.catalog", 1),
]


def _nth(steps: list[str], step: str, which: int) -> int:
    n = Counter(steps)[step]
    assert n, (step, steps)
    return {1: 1, -1: n, 0: max(1, n // 2)}.get(which, which)


def _check_kill(c: Case, step: str, n: int) -> None:
    c.restore()
    assert c.run(f"{step}:{n}") == -signal.SIGKILL, f"{step}:{n} was not reached"
    seen = state(c.lk)
    assert seen in (c.prev, c.next), f"after kill -9 at {step}:{n} readers see neither state"
    which = 0 if seen == c.prev else 1
    for rel, lines in c.sample.items():
        assert _header(c.lk, rel) == lines[which], rel
    c.again()  # the next writer recovers and completes
    assert state(c.lk) == c.next
    for rel, lines in c.sample.items():
        assert _header(c.lk, rel) == lines[1], rel
    if c.code.startswith("import os"):
        _check_recorded(c.lk)
    maintain(c.lk, keep_hours=0)
    assert state(c.lk) == c.next
    assert leftovers(c.lk) == []


def _check_recorded(lk: Path) -> None:
    """The killed run is recorded as failed, saying its process died; the rerun ended well."""
    from lake.jobs import runs

    got = runs(lk).to_pylist()  # newest first
    assert got[0]["status"] in ("success", "no-work"), got[0]
    died = [r for r in got if r["status"] == "failed"]
    assert len(died) == 1 and "died before it finished" in died[0]["error"], got


@pytest.mark.parametrize(("kind", "step", "which"), FAST)
def test_kill_9_at_a_commit_step(
    kind: str, step: str, which: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    c = case(kind, tmp_path_factory)
    _check_kill(c, step, _nth(c.steps, step, which))


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "step", "which"), SLOW)
def test_kill_9_at_more_commit_steps(
    kind: str, step: str, which: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    c = case(kind, tmp_path_factory)
    _check_kill(c, step, _nth(c.steps, step, which))


def test_every_step_is_covered() -> None:
    """Each step of lake.faults is killed in at least one scenario; each scenario is killed at least at
    the commit point's two sides."""
    from lake.faults import STEPS

    assert {s for _, s, _ in FAST + SLOW} == set(STEPS)
    for kind in SCENARIOS:
        steps = {s for k, s, _ in FAST + SLOW if k == kind}
        assert steps & {"publish.catalog", "publish.done", "rebuild.retired", "table.committed"}, kind


def _small_lake(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A lake of a small archive with one proposal folder left out (moved to the returned folder)."""
    from ingest.archivegen.generate import generate

    archive, lk, aside = tmp_path / "archive", tmp_path / "lake", tmp_path / "aside"
    generate(archive, datasets=3, seed=5)
    last = sorted(p for p in archive.iterdir() if p.is_dir())[-1]
    aside.mkdir()
    last.rename(aside / last.name)
    ingest(lk, str(archive), scheduler="synchronous")
    return lk, archive, aside / last.name


def _raw_count(lk: Path, table: str) -> int:
    """Rows of ``table`` as catalog.duckdb itself says (what the duckdb CLI on it shows)."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"ATTACH '{lk / 'catalog.duckdb'}' AS l (READ_ONLY)")
    got = con.execute(f"SELECT count(*) FROM l.{table}").fetchone()
    con.close()
    return int(got[0]) if got else -1


def test_connect_never_sees_a_catalog_ahead_of_the_pins(tmp_path: Path) -> None:
    """A writer killed between renaming catalog.duckdb and pins.json: lake.connect() reads what pins.json
    names, not the catalogue that ran ahead; the next writer, even one with nothing to do, puts the
    catalogue back in step."""
    lk, archive, later = _small_lake(tmp_path)
    before = lake.read("files", lk).height
    later.rename(archive / later.name)
    code = _ingest_code(lk, archive)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QUICKLAKE_FAULT": "publish.catalog:1"}
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=300).returncode == -signal.SIGKILL
    assert _raw_count(lk, "files") > before  # the catalogue ran ahead
    con = lake.connect(lk)
    assert con.execute("SELECT count(*) FROM files").fetchone() == (before,)
    assert con.execute("SELECT count(*) FROM master").fetchone() == (lake.read("master", lk).height,)
    assert lake.read("files", lk).height == before
    shell = CliRunner().invoke(main, ["sql", "--lake", str(lk)])  # the duckdb CLI would read it as it is
    assert shell.exit_code == 1 and "ahead of pins.json" in shell.output, shell.output
    with Lake(lk).transaction():  # a writer with nothing to do
        pass
    assert _raw_count(lk, "files") == before and catalog_in_step(Lake(lk))
    ingest(lk, str(archive), scheduler="synchronous")
    assert lake.connect(lk).execute("SELECT count(*) FROM files").fetchone() == (_raw_count(lk, "files"),)
    assert _raw_count(lk, "files") > before


def test_readers_pinned_before_a_rebuild_read_until_keep_hours(tmp_path: Path) -> None:
    """A DuckDB session and a Polars scan opened before a rebuild still read after it; maintenance keeps
    the old namespace while it is retired for less than keep_hours and drops it (both folders) after."""
    lk, archive, _ = _small_lake(tmp_path)
    con = lake.connect(lk)
    lf = lake.scan("cards", lk)
    want = lake.read("cards", lk).height
    old = Lake(lk).pins().namespace
    ingest(lk, str(archive), scheduler="synchronous", rebuild=True)
    assert Lake(lk).pins().namespace != old
    assert con.execute("SELECT count(*) FROM cards").fetchone() == (want,)
    assert lf.collect().height == want
    maintain(lk, keep_hours=1)
    assert con.execute("SELECT count(*), sum(length(image)) FROM cards").fetchone()[0] == want  # type: ignore[index]
    assert lf.collect().height == want
    assert (lk / "warehouse" / f"{old}.db").exists()
    summary = maintain(lk, keep_hours=0)
    assert summary.namespaces_dropped == [old]
    assert not (lk / "warehouse" / f"{old}.db").exists() and not (lk / "warehouse" / old).exists()
    assert lake.connect(lk).execute("SELECT count(*) FROM cards").fetchone() == (want,)
    assert leftovers(lk) == []
