"""The fenced code blocks of README.md and docs/, with the HTML comments that steer the tests.

A block may be preceded (directly, or through other such comments) by:

- ``<!-- skip: REASON -->``: the block is not run; the tests count the skips and print each reason
  (a block that needs the built demo, a server or a GPU);
- ``<!-- file: PATH -->``: the block is a file the page's later shell blocks use: the test writes
  it at PATH (relative to the repository the page's scenario lays out).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^( *)(`{3,})(\S*)\s*$")
_COMMENT = re.compile(r"^\s*<!--\s*(skip|file):\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    skip: str | None = None
    file: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT).as_posix()}:{self.line}"


def pages() -> list[Path]:
    """README.md and every Markdown page under docs/ (the generated reference included)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(page: Path) -> Iterator[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        indent, fence, lang = len(m.group(1)), m.group(2), m.group(3)
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        i += 1
        marks: dict[str, str] = {}
        j = start - 1
        while j >= 0 and (c := _COMMENT.match(lines[j])) is not None:
            marks.setdefault(c.group(1), c.group(2))
            j -= 1
        yield Block(page=page, line=start + 1, lang=lang, text="\n".join(body) + "\n",
                    skip=marks.get("skip"), file=marks.get("file"))


def all_blocks() -> list[Block]:
    return [b for page in pages() for b in blocks(page)]


def commands(block: Block) -> list[str]:
    """The shell commands of a bash block: one per line, comments and blank lines dropped."""
    out = []
    for line in block.text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out
