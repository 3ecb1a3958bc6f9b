#!/usr/bin/env python3
"""Set up and run Quicklake on a fresh machine that has only Python 3.11+.

    python3 dev.py demo [ql demo options]   # make .venv, install, generate + ingest the demo archive
    python3 dev.py test [pytest options]    # make .venv, install with test tools, run the tests
    python3 dev.py lint                     # ruff (lint + format check) and mypy
    python3 dev.py ql ARGS...               # any ql command inside the venv

The venv is (re)installed only when pyproject.toml or constraints.txt changed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def _ensure_venv() -> None:
    stamp_text = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + (ROOT / "constraints.txt").read_bytes()
    ).hexdigest()
    stamp = VENV / ".quicklake-installed"
    if stamp.exists() and stamp.read_text() == stamp_text:
        return
    if not (BIN / "python").exists():
        print(f"creating {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    # a fresh machine installs once: a wheel cache would only take disk the tests need
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-cache-dir"]
    # pip -q is silent for minutes: say how long and how much, so a first run does not look hung
    print("installing Quicklake and its dependencies (first run only: 2-5 minutes, about 2 GB)", flush=True)
    subprocess.run([*pip, "-c", str(ROOT / "constraints.txt"), "-e", f"{ROOT}[dev]"], check=True)
    stamp.write_text(stamp_text)


def _apt_install(package: str, why: str) -> None:
    """Install a Debian package (first run only); a failure is said, and the tests that need it fail."""
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    print(f"installing Debian's {package} for {why} (first run only)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(
            [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
            check=True,
            env=env,
        )
        subprocess.run([*sudo, "apt-get", "clean"], check=False, env=env)  # the .debs: disk the tests need
    except (OSError, subprocess.CalledProcessError) as e:
        # the tests that need it then fail and say so; everything else still runs
        print(f"could not install {package} ({e}); run: apt-get install {package}", flush=True)


def _ensure_chromium() -> None:
    """The site's browser tests drive Debian's Chromium (a pip-installed Playwright never downloads one)."""
    if shutil.which("chromium") or not shutil.which("apt-get"):
        return
    _apt_install("chromium", "the browser tests")


def _ensure_postgresql() -> None:
    """tests/test_postgres.py starts Debian's PostgreSQL server (initdb, postgres) in a temporary folder."""
    if any(Path("/usr/lib/postgresql").glob("*/bin/initdb")) or not shutil.which("apt-get"):
        return
    _apt_install("postgresql", "the PostgreSQL tests")


def _run(cmd: list[str]) -> int:
    return subprocess.run(cmd, cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "lint", "ql"}:
        print(__doc__)
        return 2
    _ensure_venv()
    what, rest = argv[0], argv[1:]
    if what == "demo":
        return _run([str(BIN / "ql"), "demo", *rest])
    if what == "ql":
        return _run([str(BIN / "ql"), *rest])
    if what == "test":
        _ensure_chromium()
        _ensure_postgresql()
        return _run([str(BIN / "python"), "-m", "pytest", *rest])
    # bench/ may not exist yet in a clone (git keeps no empty folders)
    linted = ("lake", "ingest", "monitors", "app", "tests", "bench", "dev.py")
    paths = [p for p in linted if (ROOT / p).exists()]
    rc = _run([str(BIN / "ruff"), "check", *paths])
    rc |= _run([str(BIN / "ruff"), "format", "--check", *paths])
    rc |= _run([str(BIN / "mypy")])
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
