"""``python -m lake`` runs the ``ql`` command line."""

from lake.cli import run

run()
