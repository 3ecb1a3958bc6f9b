"""``lake``'s own contributions through the plugin hooks (:mod:`lake.plugins`): the ``maintain-lake`` job.

The core commands (``sql``, ``header``, ``tables``, ``jobs``, ...) are defined on the ``ql`` group itself
in :mod:`lake.cli`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lake.plugins import hookimpl

if TYPE_CHECKING:
    from lake.jobs import Job, JobContext, JobResult


def _maintain_lake(ctx: JobContext) -> JobResult:
    from lake.maintenance import maintain_lake_job

    return maintain_lake_job(ctx)


@hookimpl
def register_jobs() -> list[Job]:
    from lake.jobs import Job

    return [
        Job(
            "maintain-lake",
            _maintain_lake,
            "50 4 * * *",
            "`ql maintain`, daily: per table, data files before and after compaction, snapshots expired, "
            "files and bytes deleted",
        )
    ]
