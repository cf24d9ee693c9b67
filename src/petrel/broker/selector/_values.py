"""Evaluating values: SQL three-valued comparisons, arithmetic and LIKE."""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable
from typing import Any, Final

# --- evaluation helpers --------------------------------------------------------------

# Runtime value classes.  A property's Python type decides its class; the petrel.types
# wrappers (UInt, Symbol, Float, ...) count as their base type.
_NULL, _BOOL, _NUM, _STR, _OTHER = range(5)
_UNCOMPARABLE: Final = (_NULL, _OTHER)
_PLAIN_NUMBER: Final = frozenset((int, float))


def _classify(value: Any) -> int:
    t = type(value)
    if t is str:
        return _STR
    if t is int or t is float:
        return _NUM
    if t is bool:
        return _BOOL
    if value is None:
        return _NULL
    if isinstance(value, str):
        return _STR
    if isinstance(value, (int, float)):
        return _NUM
    return _OTHER


def _numeric(value: Any) -> Any:
    """The value when it is a number, else ``None`` (arithmetic on it is unknown)."""
    if type(value) in _PLAIN_NUMBER:
        return value
    if isinstance(value, (int, float)) and type(value) is not bool:
        return value
    return None


def _comparator(op: str) -> Callable[[Any, Any], bool | None]:
    """The three-valued comparison ``a <op> b`` of two runtime values."""
    if op in ("=", "<>"):
        negate = op == "<>"

        def equality(a: Any, b: Any) -> bool | None:
            ka, kb = _classify(a), _classify(b)
            if ka in _UNCOMPARABLE or kb in _UNCOMPARABLE:
                return None
            if ka != kb:
                return negate
            return bool(a != b) if negate else bool(a == b)

        return equality

    order = _ORDERINGS[op]

    def ordering(a: Any, b: Any) -> bool | None:
        ka, kb = _classify(a), _classify(b)
        if ka in _UNCOMPARABLE or kb in _UNCOMPARABLE:
            return None
        if ka != _NUM or kb != _NUM:
            return False
        return bool(order(a, b))

    return ordering


_ORDERINGS: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_PY_OPS: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "=": operator.eq,
    "<>": operator.ne,
    **_ORDERINGS,
}
_MIRROR: Final = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def _divide(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int):
        # Java long division: truncate toward zero.  b == 0 raises ZeroDivisionError.
        q = abs(a) // abs(b)
        return q if (a < 0) == (b < 0) else -q
    return a / b


_ARITHMETIC: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _divide,
}


def _find_text(text: str, s: str, start: int, end: int) -> int:
    return s.find(text, start, end)


def _find_regex(rx: re.Pattern[str], s: str, start: int, end: int) -> int:
    m = rx.search(s, start, end)
    return -1 if m is None else m.start()


def _like_matcher(pattern: str, escape: str | None) -> Callable[[str], bool]:
    """A matcher for a LIKE pattern: ``%`` is any run of characters, ``_`` any one.

    The pattern splits at each ``%`` into segments of fixed length, matched in turn
    (the first at the start, the last at the end, the others leftmost), which is
    linear in practice where a backtracking ``.*`` regex can take exponential time.
    Raises ``ValueError`` when the escape character ends the pattern.
    """
    segments: list[list[str | None]] = [[]]  # None is the '_' wildcard
    chars = iter(pattern)
    for c in chars:
        if c == escape:
            escaped = next(chars, None)
            if escaped is None:
                raise ValueError("the ESCAPE character ends the LIKE pattern")
            segments[-1].append(escaped)
        elif c == "%":
            segments.append([])
        elif c == "_":
            segments[-1].append(None)
        else:
            segments[-1].append(c)

    def literal(segment: list[str | None]) -> str | None:
        return None if None in segment else "".join(c for c in segment if c is not None)

    def regex(segment: list[str | None]) -> re.Pattern[str]:
        return re.compile("".join("." if c is None else re.escape(c) for c in segment), re.DOTALL)

    if len(segments) == 1:
        only = segments[0]
        text = literal(only)
        if text is not None:
            return text.__eq__
        rx = regex(only)
        return lambda s: rx.fullmatch(s) is not None

    first, *middle, last = segments
    middle = [segment for segment in middle if segment]
    head, tail = literal(first), literal(last)
    if not middle and head is not None and tail is not None:
        if not tail:
            return lambda s: s.startswith(head)
        if not head:
            return lambda s: s.endswith(tail)
    if len(middle) == 1 and not first and not last and (inner := literal(middle[0])) is not None:
        return lambda s: inner in s

    minimum = sum(len(segment) for segment in segments)
    first_rx, last_rx = regex(first), regex(last)
    n_first, n_last = len(first), len(last)
    finders: list[Callable[[str, int, int], int]] = []
    for segment in middle:
        text = literal(segment)
        if text is not None:
            finders.append(functools.partial(_find_text, text))
        else:
            finders.append(functools.partial(_find_regex, regex(segment)))
    sizes = [len(segment) for segment in middle]

    def match(s: str) -> bool:
        n = len(s)
        if n < minimum:
            return False
        end = n - n_last
        if first_rx.match(s) is None or last_rx.match(s, end) is None:
            return False
        position = n_first
        for find, size in zip(finders, sizes, strict=True):
            found = find(s, position, end)
            if found < 0:
                return False
            position = found + size
        return True

    return match


# Integer arithmetic stays within the 64-bit range AMQP values come from; a product
# outside it is an arithmetic error (unknown), which also stops a long chain of
# multiplications from building huge integers for every message.
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1


def _multiply(a: Any, b: Any) -> Any:
    product = a * b
    if isinstance(product, int) and not _INT_MIN <= product <= _INT_MAX:
        raise OverflowError("integer overflow")
    return product


_ARITHMETIC["*"] = _multiply
