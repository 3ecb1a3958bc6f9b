"""Named points of the commit sequence at which the crash tests kill a writer (``kill -9``).

A writer calls :func:`point` at each step of its commit sequence. With ``QUICKLAKE_FAULT`` unset (always,
outside the tests) that is one dictionary lookup. ``QUICKLAKE_FAULT=<step>:<n>`` makes the process send
itself SIGKILL the ``n``-th time it reaches ``step`` (no handler, no ``finally``, no flush: what a lost
node or the OOM killer does); ``QUICKLAKE_FAULT=trace:<file>`` appends every step reached to ``<file>``,
one a line, so a test lists a clean run's steps and then kills a run at each of them in turn
(``tests/test_faults.py``).

Explicit points rather than counting calls with ``sys.settrace`` or monkeypatching: the steps that
matter lie between two statements of one function (the two renames of :meth:`lake.tables.Lake.publish`),
a tracer would slow the run it kills many times over, and a name here survives refactoring that
changes which function does the step.

The steps (see :data:`STEPS`) follow the order of a commit: worker files written; each table's Iceberg
commit (its manifests written but its metadata not yet committed, then committed); ``catalog.duckdb``
written under its temporary name, then renamed; ``pins.json`` renamed (the commit point); and the steps
of a rebuild and of maintenance.
"""

from __future__ import annotations

import os
import signal

STEPS = {
    "batch.written": "an ingest batch's Parquet files are written, nothing committed",
    "table.staged": "inside a table's Iceberg commit: manifests written, metadata not committed",
    "table.committed": "a table's Iceberg commit is done, the pins not yet published",
    "catalog.written": "catalog.duckdb written under its temporary name, not renamed",
    "publish.catalog": "catalog.duckdb renamed into place, pins.json not yet",
    "publish.done": "pins.json renamed into place (the commit point)",
    "rebuild.begun": "a rebuild's new namespace made, its result tables carried over",
    "rebuild.retired": "a rebuild's old namespace marked retired after the new pins were published",
    "namespace.dropping": "a namespace being dropped: one of its tables dropped",
    "compact.written": "a compacted file written, the swap not committed",
    "maintain.expired": "a table's old snapshots expired",
    "maintain.cleaned": "a table's unreferenced files deleted",
}
_reached: dict[str, int] = {}


def point(step: str) -> None:
    """Mark that the writer reached ``step`` (one of :data:`STEPS`); see the module docstring."""
    spec = os.environ.get("QUICKLAKE_FAULT")
    if spec:
        _hit(spec, step)


def _hit(spec: str, step: str) -> None:
    if spec.startswith("trace:"):
        with open(spec.removeprefix("trace:"), "a") as f:
            f.write(step + "\n")
        return
    what, _, arg = spec.rpartition(":")
    if what != step:
        return
    _reached[step] = _reached.get(step, 0) + 1
    if _reached[step] == int(arg):
        os.kill(os.getpid(), signal.SIGKILL)
