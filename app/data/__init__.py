"""The site's data layer: what the pages show, scoped to the viewer; no Streamlit import (tested
alone)."""


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless one: "1 dataset", "2,104 datasets"."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
