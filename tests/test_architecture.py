"""The house rules: imports run one way, ``lake`` loads alone, functions stay small, one list of jobs."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("lake", "ingest", "monitors", "app")
# who may import whom (a package may always import itself)
ALLOWED = {"lake": set(), "ingest": {"lake"}, "monitors": {"lake"}, "app": {"lake", "monitors"}}
MAX_LINES = 80


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imported(path: Path) -> set[str]:
    """Top-level project packages a module imports (anywhere in it, functions included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out & set(PROJECT)


@pytest.mark.parametrize("package", PROJECT)
def test_imports_run_one_way(package: str) -> None:
    bad = {
        f"{p.relative_to(ROOT)} imports {other}"
        for p in _modules(package)
        for other in _imported(p) - ALLOWED[package] - {package}
    }
    assert not bad, sorted(bad)


def test_lake_alone_loads_no_other_package_and_no_pyiceberg_to_read(small_lake: Path) -> None:
    """``import lake`` and every way of reading load neither the other packages nor pyiceberg."""
    code = f"""
import json, sys
import lake
lk = {str(small_lake)!r}
lake.read("master", lk)
lake.scan("uvisflt_0", lk).collect()
lake.read("job_runs", lk)
lake.connect(lk).sql("SELECT count(*) FROM cards").fetchall()
lake.read_header(lake.read("files", lk)["path"][0], 0, lk)
mods = sorted(m for m in sys.modules if m.split(".")[0] in ("ingest", "monitors", "app", "pyiceberg"))
print(json.dumps(mods))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == []


@pytest.mark.parametrize("package", ("lake", "ingest", "monitors"))
def test_functions_are_short(package: str) -> None:
    """No function over 80 lines (complexity is ruff's C901, max 12, in .ci/run)."""
    long = []
    for p in _modules(package):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_LINES:
                    long.append(f"{p.relative_to(ROOT)}:{node.lineno} {node.name} is {n} lines")
    assert not long, long


def test_one_list_of_jobs_and_monitors() -> None:
    """The job runner, the schedule, the board and ``ql monitor`` read the monitors' own registry."""
    from lake import jobs
    from monitors.registry import MODULES

    reg = jobs.registry()
    assert jobs.monitor_names() == list(MODULES)
    assert all(reg[m].monitor for m in MODULES)
    plain = [n for n, j in reg.items() if not j.monitor]
    assert len(plain) == 13 and "run-ingest" in plain and "maintain-lake" in plain and "alert-digest" in plain
    assert set(jobs.default_schedule()) == set(reg)  # every job and monitor has its time


def test_plugins_contribute_the_commands() -> None:
    from click.testing import CliRunner

    from lake.cli import main
    from lake.plugins import plugin_names

    assert plugin_names() == ["lake", "app", "ingest", "monitors"]
    res = CliRunner().invoke(main, ["--help"])
    for cmd in ("ingest", "rebuild", "generate", "demo", "monitor", "app", "sql", "maintain"):
        assert f"  {cmd} " in res.output, cmd


def test_readme_tables_are_generated_from_the_registries() -> None:
    """The README's commands, jobs and monitors tables are what ``ql reference`` makes from the code."""
    from lake import reference

    text = (ROOT / "README.md").read_text()
    assert reference.render(text) == text, "README tables are stale: run 'ql reference README.md'"
    for block in ("commands", "jobs", "monitors"):
        assert f"<!-- ql:{block} -->" in text
    from lake.jobs import registry

    for name in registry():
        assert f"| `{name}` |" in text, name


def test_monitor_jobs_carry_the_monitors_claims() -> None:
    from lake.jobs import registry
    from monitors.registry import all_monitors

    reg = registry()
    for m in all_monitors():
        assert m.measures and m.claim, m.name
        assert (reg[m.name].help, reg[m.name].claim) == (m.measures, m.claim)
