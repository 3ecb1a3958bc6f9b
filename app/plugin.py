"""``app``'s contribution to ``ql`` (:mod:`lake.plugins`): the ``app`` command that serves the site."""

from __future__ import annotations

import click

from lake.cli import archive_option, cfg_from, handle_errors, lake_option
from lake.plugins import hookimpl


@click.command("app")
@lake_option
@archive_option
@click.option("--port", type=int, default=None, help="Port on 127.0.0.1 [setting: app_port].")
@handle_errors
def app_cmd(lake: str | None, archive: str | None, port: int | None) -> None:
    """Start the Quicklake site (Streamlit) on http://127.0.0.1:PORT/."""
    from app.site import serve

    serve(cfg_from(lake=lake, archive=archive), port)


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(app_cmd)
