"""The quickstart notebook: runs from its own folder against the lake the settings name, is committed with
its outputs, and the command ``ql demo`` prints to open it is installed.

Regenerate the committed outputs after changing the notebook (a demo-sized lake, any folder)::

    .venv/bin/ql demo --out nb-demo --datasets 60 --scheduler synchronous
    PYTHONPATH=. .venv/bin/python tests/test_notebook.py nb-demo/lake
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "docs" / "notebooks" / "quickstart.ipynb"


def notebook_env(lake_dir: Path) -> dict[str, str]:
    """The kernel's environment: the lake by ``QUICKLAKE_LAKE``, this checkout's packages."""
    # JUPYTER_PLATFORM_DIRS silences jupyter_core's path-migration warning
    return {"QUICKLAKE_LAKE": str(lake_dir), "JUPYTER_PLATFORM_DIRS": "1", "PYTHONPATH": str(ROOT)}


def execute() -> Any:
    """The notebook run as Jupyter runs it: in its own folder, with this process's environment."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    where = {"metadata": {"path": str(NOTEBOOK.parent)}}
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources=where, record_timing=False)
    client.execute()
    return nb


def outputs(nb: Any) -> list[Any]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def check_outputs(nb: Any) -> None:
    outs = outputs(nb)
    assert not [o for o in outs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outs), "the plot cell drew nothing"
    text = "".join(o.get("text", "") for o in outs if o.output_type == "stream")
    assert "SIMPLE  =                    T" in text  # the header printed from the cards table
    # the original query's output table has rows (NGC targets in January 2015)
    html = "".join(o.get("data", {}).get("text/plain", "") for o in outs)
    assert "NGC" in html


@pytest.mark.slow
def test_quickstart_notebook_executes_from_its_folder(
    small_lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QUICKLAKE_CONFIG", raising=False)
    for name, value in notebook_env(small_lake).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # where the test runs does not matter either
    nb = execute()
    check_outputs(nb)


def test_committed_notebook_shows_its_outputs() -> None:
    import nbformat

    assert NOTEBOOK.stat().st_size < 300_000
    nb = nbformat.read(NOTEBOOK, as_version=4)
    check_outputs(nb)
    assert all(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "a code cell has no output"
    text = NOTEBOOK.read_text()
    assert not re.search(r"(/tmp/|/home/|/work/|/Users/|[A-Z]:\\\\)", text), (
        "a machine's path in the notebook"
    )


def test_demo_prints_commands_that_are_installed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ingest.plugin import _how_to_use

    lake_dir = tmp_path / "demo" / "lake"
    _how_to_use(lake_dir, tmp_path / "demo" / "archive")
    lines = {
        line.split(":")[0]: line.split(":", 1)[1].split() for line in capsys.readouterr().out.splitlines()
    }
    env, jupyter, lab, notebook = lines["notebook"]
    assert env == f"QUICKLAKE_LAKE={lake_dir}" and lab == "lab"
    # printed relative to the working directory when the venv is inside it (a clone's .venv)
    here = Path(sys.executable).absolute().parent
    assert Path(jupyter).exists() and Path(jupyter).absolute().parent == here
    assert Path(notebook).resolve() == NOTEBOOK
    import importlib.util

    assert importlib.util.find_spec("jupyterlab"), "jupyter lab is not installed (dev extras)"
    duckdb, readonly, catalog = lines["SQL shell"][:3]
    assert Path(duckdb).exists() and readonly == "-readonly" and catalog == str(lake_dir / "catalog.duckdb")
    assert "[--raw]" in lines["a header"]


def test_readme_opens_the_catalogue_read_only() -> None:
    readme = (ROOT / "README.md").read_text()
    # the commands that open it in the duckdb shell (not the generated command table's help texts)
    shell = [
        line
        for line in readme.splitlines()
        if "catalog.duckdb" in line and "duckdb " in line and not line.startswith("|")
    ]
    assert shell and all("-readonly" in line for line in shell)
    assert ".venv/bin/jupyter lab docs/notebooks/quickstart.ipynb" in readme


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository folder with a notebook folder as working directory and no lake settings."""
    for name in ("QUICKLAKE_LAKE", "QUICKLAKE_CONFIG", "QUICKLAKE_CATALOG_URI"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "docs" / "notebooks").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "repo" / "docs" / "notebooks")
    return tmp_path / "repo"


def test_lake_found_in_the_repository_root(repo: Path) -> None:
    from lake.access import reader_settings

    assert reader_settings()["lake"] == "demo/lake"  # nothing found: the setting as it was
    (repo / "demo" / "lake").mkdir(parents=True)
    assert Path(reader_settings()["lake"]) == repo / "demo" / "lake"


def test_lake_from_quicklake_toml_walking_up(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lake.access import reader_settings

    (repo / "demo" / "lake").mkdir(parents=True)
    (repo / "docs" / "quicklake.toml").write_text(
        '[quicklake]\nlake = "../mylake"\ncatalog_uri = "sqlite:///x"\n'
    )
    cfg = reader_settings()
    assert Path(cfg["lake"]) == repo / "docs" / ".." / "mylake" and cfg["catalog_uri"] == "sqlite:///x"
    monkeypatch.setenv("QUICKLAKE_LAKE", "/elsewhere/lake")  # the variable wins
    assert reader_settings()["lake"] == "/elsewhere/lake"
    assert reader_settings("given")["lake"] == "given"  # and an explicit path over everything


def test_lake_discovery_keeps_the_settings_of_the_working_directory(repo: Path) -> None:
    from lake.access import reader_settings

    (repo / "demo" / "lake").mkdir(parents=True)
    Path("quicklake.toml").write_text('lake = "here"\n')  # ./quicklake.toml, as settings.load reads it
    assert reader_settings()["lake"] == "here"


def test_no_walking_outside_a_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lake.access import reader_settings

    for name in ("QUICKLAKE_LAKE", "QUICKLAKE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "demo" / "lake").mkdir(parents=True)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    if not any((p / ".git").exists() for p in tmp_path.parents):
        assert reader_settings()["lake"] == "demo/lake"


if __name__ == "__main__":  # execute the notebook against LAKE and write it back with its outputs
    import nbformat

    os.environ.update(notebook_env(Path(sys.argv[1]).resolve()))
    executed = execute()
    check_outputs(executed)
    nbformat.write(executed, NOTEBOOK)
    print(f"{NOTEBOOK.relative_to(ROOT)}: {NOTEBOOK.stat().st_size} bytes")
