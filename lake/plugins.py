"""How the other packages contribute to ``lake`` without ``lake`` importing them (datasette's way).

``ingest``, ``monitors`` and ``app`` each have a ``plugin`` module, named in ``pyproject.toml`` under the
``quicklake`` entry-point group, that implements the hooks below with :data:`hookimpl`:

- :func:`Spec.register_commands` adds click commands to ``ql`` (``ingest`` adds ``ingest``, ``rebuild``,
  ``generate``, ``demo``; ``monitors`` adds ``monitor``; ``app`` adds ``app``);
- :func:`Spec.register_jobs` returns the recorded jobs it contributes (:class:`lake.jobs.Job`), and the
  calibration monitors among them: the job runner, the schedule and the status board read this one list.

``lake`` registers its own commands and jobs (``maintain-lake``) through the same hooks
(:mod:`lake.builtin`). Plugins load on first use (``ql`` asking for its commands, a job being run), so
``import lake`` loads none of them.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from lake.jobs import Job

GROUP = "quicklake"
hookspec = pluggy.HookspecMarker(GROUP)
hookimpl = pluggy.HookimplMarker(GROUP)


class Spec:
    """The hooks a Quicklake plugin may implement."""

    @hookspec
    def register_commands(self, cli: click.Group) -> None:
        """Add commands to the ``ql`` group ``cli``."""

    @hookspec
    def register_jobs(self) -> list[Job]:
        """The recorded jobs (maintenance jobs and calibration monitors) this plugin contributes."""
        return []


@cache
def manager() -> pluggy.PluginManager:
    """The plugin manager with ``lake``'s own hooks and every installed ``quicklake`` entry point."""
    from lake import builtin

    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(Spec)
    pm.register(builtin, name="lake")
    pm.load_setuptools_entrypoints(GROUP)
    return pm


def plugin_names() -> list[str]:
    """The loaded plugins (``lake`` first), for ``ql plugins`` and the docs."""
    pm = manager()
    return sorted((n for n, _ in pm.list_name_plugin() if n), key=lambda n: (n != "lake", n))


def hook() -> Any:
    return manager().hook
