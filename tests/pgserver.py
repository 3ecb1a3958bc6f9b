"""A throwaway PostgreSQL server for the tests: Debian's postgresql-15 binaries on a temporary folder,
listening on a Unix socket only (no TCP port, so nothing off the machine can reach it).

``python3 dev.py test`` installs the ``postgresql`` package when it is missing. Under ``CI=true`` a
missing server is a failure, elsewhere the tests that need it are skipped with the command to run.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

# no TCP at all; a test server need not survive a crash
SETTINGS = ("listen_addresses=", "fsync=off", "shared_buffers=16MB", "max_connections=60")
SERVER_OPTIONS = [arg for s in SETTINGS for arg in ("-c", s)]
INITDB_OPTIONS = ["-E", "UTF8", "--locale=C"]
BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)  # newest first


def binaries() -> Path | None:
    for d in BIN_DIRS:
        if (d / "initdb").exists() and (d / "postgres").exists():
            return d
    return None


@dataclass(frozen=True)
class Server:
    socket_dir: Path
    port: int
    user: str = "quicklake"

    def url(self, db: str, driver: str = "") -> str:
        """A URL of database ``db`` (``driver``: ``+psycopg`` for SQLAlchemy)."""
        return f"postgresql{driver}://{self.user}@/{db}?host={self.socket_dir}&port={self.port}"

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')


def _as_owner(owner: str | None) -> dict[str, object]:
    # PostgreSQL refuses to run as root (CI runs as root): run it as the postgres user then
    return {"user": owner, "group": owner, "extra_groups": []} if owner else {}


@contextmanager
def running() -> Iterator[Server]:
    """Start a server in a temporary folder; stop it and remove the folder afterwards."""
    bindir = binaries()
    if bindir is None:
        msg = "no PostgreSQL server binaries; run: apt-get install postgresql (python3 dev.py test does)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    owner = None
    if os.geteuid() == 0:
        owner = "postgres"
        pwd.getpwnam(owner)  # the Debian package creates it
    base = Path(tempfile.mkdtemp(prefix="quicklake-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    if owner:
        os.chmod(base, 0o755)
        shutil.chown(base, owner)
        shutil.chown(sock, owner)
    port = 5400 + os.getpid() % 500  # only names the socket file (no TCP): clashes cannot happen
    proc = None
    log = open(base / "server.log", "wb")  # noqa: SIM115 (closed below, after the server)
    try:
        subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "quicklake",
                "--auth=trust",
                "--no-sync",
                *INITDB_OPTIONS,
            ],
            check=True,
            capture_output=True,
            cwd=base,
            **_as_owner(owner),  # type: ignore[call-overload]
        )
        proc = subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(data), "-k", str(sock), "-p", str(port), *SERVER_OPTIONS],
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd=base,
            **_as_owner(owner),  # type: ignore[call-overload]
        )
        server = Server(sock, port)
        _wait_ready(server, proc, base / "server.log")
        yield server
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)  # a fast shutdown: clients are cut off
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        shutil.rmtree(base, ignore_errors=True)


def _wait_ready(server: Server, proc: subprocess.Popen[bytes], log: Path) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            psycopg.connect(server.url("postgres")).close()
            return
        except psycopg.OperationalError:
            if proc.poll() is not None:
                err = log.read_text(errors="replace")
                raise RuntimeError(f"postgres exited ({proc.returncode}): {err[-2000:]}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
