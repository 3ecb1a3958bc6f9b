"""``ql``'s start: ``ql --help`` imports neither DuckDB nor pyarrow; ``ql header``, ``ql tables`` and ``ql
sql`` on lake tables no pyarrow; ``ql sql`` on state tables neither pandas (pyarrow imports it to convert
Python values) nor Polars, nor pyarrow's compute functions or the plugins (finding their entry points
reads every installed package's metadata) (#16)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

import lake
from lake.pylist import column

HEAVY = ("pandas", "polars", "pyiceberg", "astropy")
SLOW_START = ("pyarrow.compute", "lake.plugins")  # a fifth of a `ql header` process each


def _modules_after(args: list[str]) -> list[str]:
    """The top-level packages of HEAVY and DuckDB/pyarrow, and the modules of SLOW_START, a ``ql`` process
    had imported when it ended."""
    code = f"""
import json, sys
from lake.cli import main
try:
    main({args!r})
except SystemExit as e:
    assert not e.code, e.code
tops = {{m.split(".")[0] for m in sys.modules}} & set({[*HEAVY, "duckdb", "pyarrow"]!r})
print(json.dumps(sorted(tops | (set(sys.modules) & set({list(SLOW_START)!r})))))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout.splitlines()[-1]))


def test_ql_processes_import_only_what_they_need(small_lake: Path) -> None:
    assert _modules_after(["--help"]) == ["lake.plugins"]  # (it lists the plugins' commands)
    flt = lake.read("files", small_lake, where="filetype = 'flt' AND status = 'ok'")["path"][0]
    for args in (  # a point lookup and the list of tables need no pyarrow (a quarter of a process's start)
        ["header", flt, "--lake", str(small_lake)],
        ["header", Path(flt).name, "--lake", str(small_lake)],
        ["tables", "--lake", str(small_lake)],
        ["sql", "SELECT count(*) FROM cards", "--lake", str(small_lake)],
    ):
        assert _modules_after(args) == ["duckdb"], args
    # a query of a state table loads it (live, from the state database) as Arrow
    args = ["sql", "SELECT count(*) FROM job_runs", "--lake", str(small_lake)]
    assert _modules_after(args) == ["duckdb", "pyarrow"], args


def test_ql_version_names_the_installed_package() -> None:
    from importlib.metadata import version

    out = subprocess.run(
        [sys.executable, "-m", "lake", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"ql, version {version('quicklake')}"


def test_an_archive_given_for_the_lake_is_named_as_one(tmp_path: Path) -> None:
    """``--lake`` on the archive: not advice to ingest there (that would write a lake into the archive)."""
    from click.testing import CliRunner

    from lake.cli import main

    (tmp_path / "archive" / "12345" / "Visit01").mkdir(parents=True)
    for lake_dir, says in ((tmp_path / "archive", "is an archive"), (tmp_path / "empty", "no lake at")):
        lake_dir.mkdir(exist_ok=True)
        res = CliRunner().invoke(main, ["tables", "--lake", str(lake_dir)])
        assert res.exit_code == 1 and says in res.output and len(res.output.splitlines()) <= 2, res.output
        assert "Traceback" not in res.output


def test_lake_functions_stay_functions_beside_submodules_of_their_names() -> None:
    for name in ("tables", "snapshot"):
        module = importlib.import_module(f"lake.{name}")  # sets nothing on the package
        fn = getattr(lake, name)
        assert callable(fn) and fn.__module__ == "lake.access", name
        assert module.__name__ == f"lake.{name}" and sys.modules[f"lake.{name}"] is module


@pytest.mark.parametrize(
    "values",
    [
        [],
        [None],
        [None, None],
        ["a", None, "é", ""],
        [1, None, -(2**63), 2**63 - 1],
        [1, 2.5, None],
        [1.5],
        [b"x", None],
        [None] * 9 + ["z"],
        ["x" * 1000] * 100,
    ],
)
def test_state_columns_are_what_pyarrow_makes(values: list[object]) -> None:
    got = column(values)
    got.validate(full=True)
    assert got.equals(pa.array(values, pa.string() if not values else None))


def test_a_query_loads_the_state_tables_it_names() -> None:
    """``connect(query=...)`` registers only the state tables the query names, from DuckDB's parse of it;
    a query it cannot parse gets them all."""
    import duckdb

    from lake.access import _named_tables

    con = duckdb.connect()
    assert _named_tables(con, 'SELECT * FROM "Job_Runs" j JOIN master USING (rootname)') == {
        "job_runs",
        "master",
    }
    assert {"alerts"} <= (_named_tables(con, "WITH x AS (SELECT * FROM alerts) SELECT * FROM x") or set())
    assert _named_tables(con, "SELECT (SELECT count(*) FROM anomalies) AS n") == {"anomalies"}
    assert _named_tables(con, "DESCRIBE job_events") == {"job_events"}
    assert _named_tables(con, "SELECT 1; SELECT * FROM alert_deliveries") == {"alert_deliveries"}
    assert _named_tables(con, "SELEC nonsense") is None


def _ql(*args: str, code: str = "") -> subprocess.CompletedProcess[str]:
    run = f"import sys, atexit, lake.cli as c\n{code}\nsys.argv = ['ql', *sys.argv[1:]]\nc.run()"
    return subprocess.run([sys.executable, "-c", run, *args], capture_output=True, text=True)


def test_a_ql_process_leaves_with_all_it_wrote_its_exit_code_and_exit_handlers(small_lake: Path) -> None:
    """``ql`` leaves without the interpreter's teardown (``lake.cli.run``, ``os._exit``): what it wrote,
    its exit code and the exit handlers registered while it ran are all still there."""
    got = _ql("sql", "--lake", str(small_lake), "--format", "csv", "SELECT range AS n FROM range(50000)")
    assert got.returncode == 0 and got.stdout.split() == ['"n"', *map(str, range(50000))]
    bad = _ql("sql", "--lake", str(small_lake), "SELECT * FROM no_such_table")
    assert bad.returncode == 1 and "no_such_table" in bad.stderr and "Traceback" not in bad.stderr
    assert _ql("no-such-command").returncode == 2
    handler = "real = c.main\nc.main = lambda: atexit.register(print, 'handler ran') and real()"
    got = _ql("--help", code=handler)
    assert got.returncode == 0 and got.stdout.rstrip().endswith("handler ran")
    assert _ql("run", "no-such-job", "--lake", str(small_lake), code=handler).stdout.endswith("handler ran\n")
