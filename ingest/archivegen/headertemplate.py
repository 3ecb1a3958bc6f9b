"""Header templates: real WFC3 card images with per-exposure values substituted.

The templates in ``ingest/templates/*.hdr`` are the card images of real archive files from
``tests/data/real`` (see its PROVENANCE.md), one card per line, each HDU closed by an END card. A
generated header keeps the real keyword set, order, comments, HISTORY and CONTINUE cards; only the
values that identify an exposure are rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from lake.errors import GeneratorError

TEMPLATE_DIR = Path(__file__).parent / "templates"
CARD = 80
END = "END".ljust(CARD)


def format_value(value: Any) -> str:
    """A value in FITS fixed format (strings quoted from column 11, numbers right-aligned to 30)."""
    if isinstance(value, bool):
        return f"{'T' if value else 'F':>20}"
    if isinstance(value, int):
        return f"{value:>20d}"
    if isinstance(value, float):
        text = repr(value).upper()
        if "E" not in text and "." not in text:
            text += "."
        return f"{text:>20}"
    text = str(value).replace("'", "''")
    if len(text) > 68:
        raise GeneratorError(f"value {value!r} too long for one card")
    return f"'{text:<8}'"


def format_card(keyword: str, value: Any, comment: str = "") -> str:
    head = f"{keyword:<8}= {format_value(value)}"
    if comment:
        head += f" / {comment}"
    return head[:CARD].ljust(CARD)


def comment_of(card: str) -> str:
    """The comment of a plain card (the part after the value's ' / ')."""
    body = card[10:]
    if body.lstrip().startswith("'"):
        start = body.index("'")
        end = body.index("'", start + 1)
        while end + 1 < len(body) and body[end + 1] == "'":
            end = body.index("'", end + 2)
        rest = body[end + 1 :]
    else:
        rest = body
    return rest.split("/", 1)[1].strip() if "/" in rest else ""


@dataclass
class HDUTemplate:
    cards: list[str]
    index: dict[str, int] = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)  # keyword -> its comment, parsed once

    def __post_init__(self) -> None:
        for i, c in enumerate(self.cards):
            kw = c[:8].rstrip()
            if c[8:10] == "= " and kw not in self.index:
                self.index[kw] = i
                self.comments[kw] = comment_of(c)

    def has(self, keyword: str) -> bool:
        return keyword in self.index

    def value_text(self, keyword: str) -> str:
        return self.cards[self.index[keyword]][10:].split("/", 1)[0].strip().strip("'").strip()


@dataclass
class Template:
    name: str
    hdus: list[HDUTemplate]


@cache
def load(name: str) -> Template:
    path = TEMPLATE_DIR / f"{name}.hdr"
    if not path.exists():
        raise GeneratorError(f"no header template {name!r} in {TEMPLATE_DIR}")
    hdus: list[HDUTemplate] = []
    cur: list[str] = []
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            continue
        if line == END:
            hdus.append(HDUTemplate(cur))
            cur = []
        else:
            cur.append(line.ljust(CARD)[:CARD])
    return Template(name, hdus)


def render(hdu: HDUTemplate, values: dict[str, Any]) -> bytes:
    """The header bytes of one HDU (cards + END + blank padding to 2880) with ``values`` substituted.

    Keywords the template lacks are inserted before the first blank/HISTORY card that ends the header.
    """
    cards = list(hdu.cards)
    extra: list[str] = []
    for kw, value in values.items():
        i = hdu.index.get(kw)
        if i is None:
            extra.append(format_card(kw, value))
        else:
            cards[i] = format_card(kw, value, hdu.comments[kw])
    cards.extend(extra)
    cards.append(END)
    text = "".join(cards)
    pad = -len(text) % 2880
    return (text + " " * pad).encode("ascii")
