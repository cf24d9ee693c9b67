"""The fenced code blocks of the guides, and what each one claims to be.

A block's kind is its fence language, sometimes refined by an HTML comment on
the line just above the fence (invisible on the site and on GitHub):

- ``python``: run by the suite against a real broker (``test_code_blocks.py``), or,
  under ``<!-- example: examples/NAME.py -->``, an excerpt whose lines must appear, in
  order and together, in that example file, which the suite runs;
- ``toml``: must parse, and is validated by Petrel's own loader as a broker config (a
  router config on ``router.md``); ``<!-- config: router -->``, ``<!-- config: broker -->``,
  ``<!-- config: users-file -->`` choose the loader, ``<!-- config: fragment -->`` (a few
  keys of a larger table) asks only that it parse;
- ``sh`` (commands) and ``console`` (a transcript: commands after ``$ ``, then their
  output): every ``petrel`` command in them must parse against the real command line, and
  every ``make`` target must exist;
- ``text``, ``json``, ``js``: shown, not run (output, log lines, grammar, other
  languages' snippets).

A fence without a language is an error: say what the block is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

#: Fence languages and what the suite does with them.
RUN = "python"
CONFIG = "toml"
COMMANDS = frozenset({"sh", "console"})
SHOWN = frozenset({"text", "json", "js"})
LANGUAGES = frozenset({RUN, CONFIG, *COMMANDS, *SHOWN})

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*(?P<key>example|config):\s*(?P<value>\S+)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int
    """The line of the opening fence (1-based)."""
    language: str
    text: str
    """The block's content, with the fence's indentation removed."""
    directive: tuple[str, str] | None
    """``(key, value)`` of the ``<!-- key: value -->`` comment just above the fence."""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def pages() -> list[Path]:
    """Every guide: docs/*.md (the API reference pages hold no code blocks of their own)."""
    return sorted(DOCS.glob("*.md"))


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of ``page``, in order."""
    lines = page.read_text().splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        body: list[str] = []
        end = index + 1
        while end < len(lines):
            closing = _FENCE.match(lines[end])
            if closing and closing["fence"].startswith(fence) and not closing["info"].strip():
                break
            body.append(lines[end].removeprefix(indent))
            end += 1
        else:
            raise ValueError(f"{page}:{index + 1}: a code fence that is never closed")
        directive = None
        if index > 0 and (match := _DIRECTIVE.match(lines[index - 1])):
            directive = (match["key"], match["value"])
        language = opening["info"].strip().split(" ")[0] if opening["info"].strip() else ""
        found.append(Block(page, index + 1, language, "\n".join(body) + "\n", directive))
        index = end + 1
    return found


def all_blocks() -> list[Block]:
    return [block for page in pages() for block in blocks(page)]
