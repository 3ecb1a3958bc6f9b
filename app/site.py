"""``ql app``: the Streamlit site (``app/``), started with the lake's settings.

The site reads the same settings as the CLI: they reach the Streamlit process as ``QUICKLAKE_*``
variables. It listens on 127.0.0.1 only (put a TLS proxy in front to serve it), without a file
watcher, with error details hidden from viewers (the server log has them), and without the full garbage
collection Streamlit runs after every script run (it delayed each page by 0.1-0.4 s).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from lake.errors import ConfigError

APP_DIR = Path(__file__).resolve().parent
ENTRY = APP_DIR / "streamlit_app.py"


def command(cfg: Mapping[str, Any], port: int | None = None) -> list[str]:
    """The ``streamlit run`` command line for the site."""
    if not ENTRY.exists():
        raise ConfigError(f"{ENTRY} not found; 'ql app' runs from a source checkout of Quicklake")
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(ENTRY),
        "--server.headless", "true",
        "--server.address", "127.0.0.1",
        "--server.port", str(port or cfg["app_port"]),
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--client.showErrorDetails", "none",
        "--client.toolbarMode", "viewer",
        # no full garbage collection after every script run: it holds the GIL 0.1-0.4 s (the server's
        # ~300,000 objects) just as the run's last messages are to be sent, on every page and click (#18)
        "--runner.postScriptGC", "false",
        # no "magic" (bare expressions written to the page; the site writes every element explicitly):
        # each new session recompiles the scripts, and magic's AST rewrite was most of it (#18)
        "--runner.magicEnabled", "false",
    ]  # fmt: skip
    secrets = str(cfg.get("auth_secrets") or "")
    if secrets:
        if not Path(secrets).is_file():
            raise ConfigError(
                f"auth_secrets: {secrets} is not a file; point it at a secrets.toml with [auth]"
            )
        cmd += ["--secrets.files", str(Path(secrets).resolve())]
    return cmd


def environment(cfg: Mapping[str, Any]) -> dict[str, str]:
    """The process environment carrying every setting (paths made absolute)."""
    env = dict(os.environ)
    for name, value in cfg.items():
        if name in {"archive", "lake"} and value and "://" not in str(value):
            value = str(Path(value).resolve())
        if isinstance(value, list):  # the layout's templates: QUICKLAKE_LAYOUT separates them by ';'
            value = ";".join(value)
        env[f"QUICKLAKE_{name.upper()}"] = str(value)
    return env


def require_free(port: int) -> None:
    """:class:`ConfigError` if another program listens on 127.0.0.1:``port`` (Streamlit would print only
    a timestamped "Port N is not available" and exit)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # (as the server will: a closed port's TIME_WAIT connections do not count)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise ConfigError(
                f"port {port} is in use (another 'ql app'?); pick a free one with --port or the app_port "
                "setting"
            ) from None


def serve(cfg: Mapping[str, Any], port: int | None = None) -> NoReturn:
    """Become the Streamlit server (exec): a signal to ``ql app`` then reaches the server itself."""
    from lake.tables import Lake

    Lake(cfg["lake"], cfg.get("catalog_uri", "")).require()
    cmd, env = command(cfg, port), environment(cfg)
    require_free(int(port or cfg["app_port"]))
    os.chdir(APP_DIR)
    os.execve(cmd[0], cmd, env)
