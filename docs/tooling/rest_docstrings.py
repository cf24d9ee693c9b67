"""A griffe extension: Petrel's reST-flavoured docstrings, read as Markdown by mkdocstrings.

Petrel's docstrings are written for a plain-text reader and a Sphinx-like eye:
``:class:`Message```, ``:meth:`~Connection.close```, a paragraph ending in
``::`` before an indented block, doctest lines (``>>>``).  mkdocstrings renders
docstrings as Markdown, where none of that means anything (``>>>`` is even a
nested quote).  This extension rewrites each docstring once the package is
loaded, before mkdocstrings parses it:

- a role becomes a cross-reference to the object it names, resolved from the
  docstring's own scope; it is *optional*, so a name the site does not
  document (a private module, an object outside the reference pages) renders
  as plain code instead of failing ``mkdocs build --strict``;
- ``text::`` becomes ``text:`` (the indented block after it is already a code
  block in Markdown), and a ``::`` alone on its line goes away;
- a run of doctest lines (``>>>``, ``...`` and the output after them) becomes
  a fenced ``pycon`` block.

Loaded by ``mkdocs.yml`` (``plugins.mkdocstrings.handlers.python.options.extensions``).
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

# :role:`target` or :role:`title <target>`; a leading ~ shows only the last part.
_ROLE = re.compile(r":(?:py:)?(?P<role>[a-z]+):`(?P<text>[^`]+)`")
_EXPLICIT_TITLE = re.compile(r"^(?P<title>.+?)\s*<(?P<target>[^<>]+)>$")


def _resolve(obj: griffe.Object, target: str) -> str:
    """The full path ``target`` names from ``obj``'s scope, or ``target`` unchanged."""
    head, _, rest = target.partition(".")
    scope: griffe.Object | None = obj
    while scope is not None:
        try:
            path = scope.resolve(head)
        except (griffe.NameResolutionError, griffe.AliasResolutionError, KeyError):
            scope = scope.parent
            continue
        return f"{path}.{rest}" if rest else path
    return target


def _role_to_autoref(obj: griffe.Object, match: re.Match[str]) -> str:
    text = match["text"].strip()
    explicit = _EXPLICIT_TITLE.match(text)
    if explicit:
        title, target = explicit["title"], explicit["target"]
    else:
        target = text.lstrip("~!")
        title = target.rsplit(".", 1)[-1] if text.startswith("~") else target
    if match["role"] in ("meth", "func") and not title.endswith(")"):
        title += "()"
    identifier = _resolve(obj, target.rstrip("()"))
    return (
        f'<autoref identifier="{html.escape(identifier)}" optional>'
        f"<code>{html.escape(title)}</code></autoref>"
    )


def _fence_doctests(lines: list[str]) -> list[str]:
    """Wrap each run of doctest lines (prompt, continuation, output) in a pycon fence."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.lstrip().startswith(">>>"):
            out.append(line)
            i += 1
            continue
        indent = line[: len(line) - len(line.lstrip())]
        if out and out[-1].strip():
            out.append("")
        out.append(f"{indent}```pycon")
        while i < len(lines) and lines[i].strip() and lines[i].startswith(indent):
            out.append(lines[i])
            i += 1
        out.append(f"{indent}```")
    return out


def _literal_markers(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        if line.strip() == "::":
            continue
        if line.endswith("::"):
            line = line[:-1]
        out.append(line)
    return out


def to_markdown(obj: griffe.Object, text: str) -> str:
    """``text``, a docstring of ``obj``, rewritten as Markdown."""
    lines = _fence_doctests(_literal_markers(text.splitlines()))
    converted: list[str] = []
    in_fence = False
    for line in lines:
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        converted.append(line if in_fence else _ROLE.sub(lambda m: _role_to_autoref(obj, m), line))
    return "\n".join(converted)


class RestDocstrings(griffe.Extension):
    """Rewrite every docstring of the loaded package (see the module docstring)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self._walk(pkg, seen=set())

    def _walk(self, obj: griffe.Object, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj, obj.docstring.value)
        # An implementation detail, not API: a reader of the reference has no use for it.
        obj.members.pop("__slots__", None)
        for member in list(obj.members.values()):
            if isinstance(member, griffe.Object):  # an alias is walked where it is defined
                self._walk(member, seen)
