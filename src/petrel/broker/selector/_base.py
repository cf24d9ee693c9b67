"""Constants, the lookup type and the error every part of the selector shares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

# Hostile input is bounded before it can cost much.  The length bound keeps parsing
# cheap (the parser is linear, so 64 KiB parses in well under a second); the depth
# bound keeps compilation and evaluation, which recurse once per level of nesting,
# far from Python's recursion limit even when called from deep inside an event loop.
# AND/OR chains, + and * chains and IN lists are flat, so only parentheses around
# conditions, NOT and unary signs nest.
MAX_SELECTOR_LENGTH: Final = 65536
"""The longest selector accepted, in characters."""
MAX_SELECTOR_DEPTH: Final = 100
"""The deepest nesting of expressions accepted."""

Lookup = Callable[[str], Any]
"""Resolves an identifier to its value for one message, ``None`` when absent."""

_Fn = Callable[[Lookup], Any]


class SelectorError(ValueError):
    """A selector is malformed or cannot be evaluated; the message says where."""

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        hint: str | None = None,
    ):
        if column is not None:
            where = f"line {line}, column {column}" if line is not None and line > 1 else ""
            message = f"{message} at {where or f'column {column}'}"
        if hint:
            message = f"{message}; {hint}"
        super().__init__(message)
        self.line = line
        """The 1-based line of the problem, when it has one."""
        self.column = column
        """The 1-based column of the problem, when it has one."""
