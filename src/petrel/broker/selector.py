"""JMS message selectors: the ``apache.org:selector-filter:string`` source filter.

A consumer attaches with a source filter whose value is a JMS message selector
(JMS 2.0, section 3.8.1): an SQL-92 conditional expression over the message's
header fields and properties.  :func:`compile_selector` parses the text once
(a LALR grammar, run by lark) and compiles it into a tree of small closures, so
evaluating it against a message never walks the parse tree again::

    selector = compile_selector("color = 'red' AND weight > 2.5")
    selector.matches(make_lookup({"color": "red", "weight": 3}))    # True

The language, as JMS defines it:

- Literals: strings in single quotes (``''`` is a quote); exact numerics in
  Java integer syntax (``57``, ``-957``, ``+62``, ``0x1F``, ``017`` octal, an
  ``L`` suffix); approximate numerics in Java floating-point syntax (``7E3``,
  ``-57.9E2``, ``7.``, ``.5``, an ``F`` or ``D`` suffix; read as doubles);
  ``TRUE`` and ``FALSE``.
- Identifiers: Java identifiers, case-sensitive.  The keywords ``NULL TRUE
  FALSE NOT AND OR BETWEEN LIKE IN IS ESCAPE`` are case-insensitive and
  reserved.  An identifier names a property, or a header field through the
  ``JMS*`` names that :func:`make_lookup` resolves; a missing one is NULL.
- Operators, loosest first: ``OR``; ``AND``; ``NOT``; the comparisons ``= <>
  < > <= >=``, ``[NOT] BETWEEN``, ``[NOT] IN``, ``[NOT] LIKE ... [ESCAPE]`` and
  ``IS [NOT] NULL``; binary ``+ -``; ``* /``; unary ``+ -``.

Evaluation follows SQL's three-valued logic: a value is TRUE, FALSE or
unknown (``None``), and a selector matches only a message for which it is
TRUE.

- A comparison with a NULL operand is unknown, so are arithmetic on NULL and
  ``x [NOT] IN (...)``, ``x [NOT] LIKE ...`` with ``x`` NULL.
- Numbers compare with numbers (integers and floats mix freely); strings and
  booleans compare only with ``=`` and ``<>``.  Comparing values of unlike types
  is FALSE, as JMS says, and ``<>`` is the negation of ``=`` there (TRUE), as in
  ActiveMQ, Artemis and Qpid Broker-J; an ordering comparison between two
  strings or two booleans is FALSE.  A property of a type a selector cannot
  compare (binary, list, map, uuid, ...) makes every comparison unknown.
- ``x BETWEEN a AND b`` is ``a <= x AND x <= b``; ``x NOT BETWEEN a AND b`` is
  ``x < a OR x > b`` (JMS's own definitions).  ``x IN (...)`` is the OR of
  ``x = item`` and ``NOT IN`` its negation.  Integer division truncates as in
  Java; division by zero, like any arithmetic error, is unknown.
- A bare identifier used as a condition is its value when that is a boolean
  and unknown otherwise.

Selectors that cannot be right are refused when compiled, with
:class:`SelectorError`: syntax errors, operands whose literal type does not
fit the operator (``'a' + 1``, ``'a' < 'b'``, ``1 = 'a'``, ``5 LIKE 'x'``), a
selector that is not a condition (``5``, ``x + 1``), an ``ESCAPE`` that is not
one character, out-of-range numeric literals, and input longer than
:data:`MAX_SELECTOR_LENGTH` or nested deeper than :data:`MAX_SELECTOR_DEPTH`.

Not supported (not JMS): comments, quoted identifiers, the ``%`` operator,
``XPATH``/``XQUERY``, the ``NULL`` literal outside ``IS [NOT] NULL``.  An empty
(or all-blank) selector means "no selector", as JMS says: it matches every
message.
"""

from __future__ import annotations

import functools
import math
import operator
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedToken

__all__ = [
    "JMS_HEADER_IDENTIFIERS",
    "MAX_SELECTOR_DEPTH",
    "MAX_SELECTOR_LENGTH",
    "SELECTOR_FILTER_CODE",
    "SELECTOR_FILTER_NAME",
    "Lookup",
    "Selector",
    "SelectorError",
    "compile_selector",
    "jms_correlation_id",
    "jms_message_id",
    "make_lookup",
]

SELECTOR_FILTER_NAME: Final = "apache.org:selector-filter:string"
"""The descriptor symbol of the selector filter (AMQP filter registry)."""
SELECTOR_FILTER_CODE: Final = 0x0000468C00000004
"""The descriptor code of the selector filter."""

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


# --- grammar -------------------------------------------------------------------------

# Keywords are lexed as identifiers and retyped by _keyword(), which makes them
# case-insensitive and keeps identifiers such as ``ANDY`` or ``Index`` whole.
# Keyword terminals named with a leading underscore are dropped from the tree.
_GRAMMAR = r"""
?start: or_expr

?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: NOT not_expr                                -> not_
         | predicate
?predicate: sum
          | sum COMP_OP sum                            -> comparison
          | sum NOT? _BETWEEN sum _AND sum             -> between
          | sum NOT? _IN "(" in_item ("," in_item)* ")" -> in_
          | sum NOT? _LIKE STRING (_ESCAPE STRING)?    -> like
          | sum _IS NOT? _NULL                         -> is_null
?sum: product (ADD_OP product)*
?product: unary (MUL_OP unary)*
?unary: ADD_OP unary                                   -> sign
      | primary
?primary: NUMBER                                       -> number
        | STRING                                       -> string
        | TRUE                                         -> boolean
        | FALSE                                        -> boolean
        | ID                                           -> ident
        | "(" or_expr ")"
in_item: ADD_OP? NUMBER
       | STRING

%declare NOT _AND _OR _BETWEEN _LIKE _IN _IS _ESCAPE _NULL TRUE FALSE

COMP_OP: /<>|<=|>=|=|<|>/
ADD_OP: /[+-]/
MUL_OP: /[*\/]/
NUMBER: HEX | FLOAT | INTEGER
HEX: /0[xX][0-9a-fA-F]+[lL]?/
FLOAT: /(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?/
     | /[0-9]+[eE][+-]?[0-9]+[fFdD]?/
     | /[0-9]+[fFdD]/
INTEGER: /[0-9]+[lL]?/
STRING: /'[^']*(?:''[^']*)*'/
ID: /(?:[^\W\d]|\$)[\w$]*/
%ignore /[ \t\f\r\n]+/
"""

_KEYWORDS: Final = {
    "NOT": "NOT",
    "AND": "_AND",
    "OR": "_OR",
    "BETWEEN": "_BETWEEN",
    "LIKE": "_LIKE",
    "IN": "_IN",
    "IS": "_IS",
    "ESCAPE": "_ESCAPE",
    "NULL": "_NULL",
    "TRUE": "TRUE",
    "FALSE": "FALSE",
}

# How parse errors name what was expected.
_EXPECTED: Final = {
    "COMP_OP": "a comparison operator",
    "ADD_OP": "'+' or '-'",
    "MUL_OP": "'*' or '/'",
    "NUMBER": "a number",
    "STRING": "a string",
    "ID": "an identifier",
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "$END": "the end",
    **{name: keyword for keyword, name in _KEYWORDS.items()},
}


def _keyword(token: Token) -> Token:
    kind = _KEYWORDS.get(token.value.upper())
    if kind is not None:
        token.type = kind
    return token


@functools.cache
def _parser() -> Lark:
    return Lark(
        _GRAMMAR,
        parser="lalr",
        lexer="basic",
        lexer_callbacks={"ID": _keyword},
        propagate_positions=True,
    )


def _parse(text: str) -> Tree[Token]:
    try:
        return _parser().parse(text)
    except UnexpectedCharacters as exc:
        char = text[exc.pos_in_stream or 0]
        problem = "unterminated string" if char == "'" else f"unexpected character {char!r}"
        raise SelectorError(problem, line=exc.line, column=exc.column) from None
    except UnexpectedToken as exc:
        token = exc.token
        if token.type == "$END":
            lines = text.split("\n")
            line, column = len(lines), len(lines[-1]) + 1
            problem = "unexpected end of selector"
        else:
            line, column = token.line, token.column
            problem = f"unexpected {_describe(token)}"
        expected = sorted({_EXPECTED.get(name, name) for name in exc.expected})
        hint = f"expected {expected[-1]}" if expected else None
        if len(expected) > 1:
            hint = f"expected {', '.join(expected[:-1])} or {expected[-1]}"
        raise SelectorError(problem, line=line, column=column, hint=hint) from None
    except LarkError as exc:  # pragma: no cover - lark raises only the two above here
        raise SelectorError(f"cannot parse selector: {exc}") from None


def _describe(token: Token) -> str:
    value = token.value if len(token.value) <= 24 else token.value[:21] + "..."
    if token.type in ("NUMBER", "STRING"):
        return f"{token.type.lower()} {value}"
    if token.type == "ID":
        return f"identifier {value!r}"
    if token.type in _KEYWORDS.values():
        return f"keyword {value.upper()}"
    return repr(value)


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


# --- compilation ---------------------------------------------------------------------

# Static kinds: what an expression is known to yield before any message is seen.
_BOOLEAN, _NUMBER, _STRING, _ANY = "boolean", "number", "string", "any"


def _a(kind: str) -> str:
    return {_BOOLEAN: "a boolean", _NUMBER: "a number", _STRING: "a string"}.get(kind, kind)


@dataclass(frozen=True, slots=True)
class _Expr:
    """A compiled expression: its static kind and the closure that evaluates it."""

    kind: str
    fn: _Fn
    constant: bool = False
    value: Any = None
    name: str | None = None  # set for a bare identifier
    logic: str | None = None  # "and", "or" or "not", with its operands in parts
    parts: tuple[_Fn, ...] = ()


def _constant(kind: str, value: Any) -> _Expr:
    return _Expr(kind, lambda _lookup: value, constant=True, value=value)


def _no_lookup(_name: str) -> Any:
    return None


def _fold(expr: _Expr) -> _Expr:
    """An expression whose operands are all constant, evaluated now."""
    return _constant(expr.kind, expr.fn(_no_lookup))


def _error(message: str, node: Tree[Token] | Token) -> SelectorError:
    """A SelectorError placed at a token or at the start of a subtree."""
    where = node if isinstance(node, Token) else node.meta
    return SelectorError(
        message, line=getattr(where, "line", None), column=getattr(where, "column", None)
    )


def _split_not(node: Tree[Token]) -> tuple[bool, list[Tree[Token] | Token]]:
    """The operands of a predicate with an optional NOT, and whether NOT was there."""
    rest = [c for c in node.children if not (isinstance(c, Token) and c.type == "NOT")]
    return len(rest) != len(node.children), rest


def _parse_number(token: Token) -> int | float:
    text = token.value.lower()
    if text.startswith("0x"):
        digits, base = text[2:].rstrip("l"), 16
    elif "." in text or "e" in text or text[-1] in "fd":
        value = float(text.rstrip("fd"))
        if math.isinf(value):
            raise _error(f"floating-point literal {token.value} out of range", token)
        return value
    else:
        digits = text.rstrip("l")
        base = 8 if len(digits) > 1 and digits[0] == "0" else 10
        if base == 8 and not set(digits) <= set("01234567"):
            raise _error(f"invalid octal literal {token.value}", token)
    if len(digits.lstrip("0")) > 22 or int(digits, base) > _INT_MAX:
        raise _error(f"integer literal {token.value[:24]} out of range", token)
    return int(digits, base)


def _unquote(token: Token) -> str:
    return str(token.value[1:-1].replace("''", "'"))


class _Compiler:
    """Turns a parse tree into closures, checking operand kinds on the way."""

    def __init__(self) -> None:
        self.identifiers: set[str] = set()
        self._rules: dict[str, Callable[[Tree[Token], int], _Expr]] = {
            "or_expr": self._or,
            "and_expr": self._and,
            "not_": self._not,
            "comparison": self._comparison,
            "between": self._between,
            "in_": self._in,
            "like": self._like,
            "is_null": self._is_null,
            "sum": self._arithmetic,
            "product": self._arithmetic,
            "sign": self._sign,
            "number": lambda node, _: _constant(_NUMBER, _parse_number(_token(node))),
            "string": lambda node, _: _constant(_STRING, _unquote(_token(node))),
            "boolean": lambda node, _: _constant(_BOOLEAN, _token(node).type == "TRUE"),
            "ident": self._ident,
        }

    def expr(self, node: Tree[Token] | Token, depth: int) -> _Expr:
        assert isinstance(node, Tree), node
        if depth >= MAX_SELECTOR_DEPTH:
            raise _error(f"selector nested deeper than {MAX_SELECTOR_DEPTH} levels", node)
        return self._rules[node.data](node, depth + 1)

    def condition(self, node: Tree[Token] | Token, depth: int, what: str) -> _Expr:
        """An operand that must be a condition: TRUE, FALSE or unknown (``what`` names it)."""
        expr = self.expr(node, depth)
        if expr.kind == _BOOLEAN:
            return expr
        if expr.kind != _ANY:
            raise _error(f"{what} a condition, not {_a(expr.kind)}", node)
        if expr.name is not None:
            name = expr.name

            def ident_as_bool(lookup: Lookup) -> Any:
                value = lookup(name)
                return value if type(value) is bool else None

            return _Expr(_BOOLEAN, ident_as_bool)
        fn = expr.fn
        return _Expr(_BOOLEAN, lambda lookup: v if type(v := fn(lookup)) is bool else None)

    def number(
        self, node: Tree[Token] | Token, depth: int, what: str, coerce: bool = True
    ) -> _Expr:
        """An operand that must be numeric.  Coerced, its closure yields a number or None
        (arithmetic on anything else is unknown); otherwise it yields what it finds."""
        expr = self.expr(node, depth)
        if expr.kind == _NUMBER:
            return expr
        if expr.kind != _ANY:
            raise _error(f"{what} needs numbers, not {_a(expr.kind)}", node)
        if not coerce:
            return expr
        if expr.name is not None:
            name = expr.name
            return _Expr(_NUMBER, lambda lookup: _numeric(lookup(name)))
        fn = expr.fn
        return _Expr(_NUMBER, lambda lookup: _numeric(fn(lookup)))

    # -- logic

    def _or(self, node: Tree[Token], depth: int) -> _Expr:
        parts = [self.condition(child, depth, "OR needs") for child in node.children]
        return _logic("or", parts)

    def _and(self, node: Tree[Token], depth: int) -> _Expr:
        parts = [self.condition(child, depth, "AND needs") for child in node.children]
        return _logic("and", parts)

    def _not(self, node: Tree[Token], depth: int) -> _Expr:
        operand = self.condition(node.children[1], depth, "NOT needs")
        fn = operand.fn
        expr = _Expr(
            _BOOLEAN,
            lambda lookup: None if (v := fn(lookup)) is None else not v,
            logic="not",
            parts=(fn,),
        )
        return _fold(expr) if operand.constant else expr

    # -- predicates

    def _comparison(self, node: Tree[Token], depth: int) -> _Expr:
        left_node, op_token, right_node = node.children
        assert isinstance(op_token, Token)
        op = op_token.value
        left, right = self.expr(left_node, depth), self.expr(right_node, depth)
        if op in ("=", "<>"):
            if _ANY not in (left.kind, right.kind) and left.kind != right.kind:
                message = f"cannot compare {_a(left.kind)} with {_a(right.kind)}"
                raise _error(message, op_token)
        else:
            for operand, operand_node in ((left, left_node), (right, right_node)):
                if operand.kind in (_STRING, _BOOLEAN):
                    message = f"'{op}' needs numbers, not {_a(operand.kind)} (only = and <> apply)"
                    raise _error(message, operand_node)
        if left.constant and not right.constant:
            left, right, op = right, left, _MIRROR[op]
        compare = _comparator(op)
        if right.constant:
            constant = right.value
            if left.constant:
                return _constant(_BOOLEAN, compare(left.value, constant))
            if left.name is not None:
                return _Expr(_BOOLEAN, _compare_name(left.name, op, constant))
            fn = left.fn
            return _Expr(_BOOLEAN, lambda lookup: compare(fn(lookup), constant))
        left_fn, right_fn = left.fn, right.fn
        return _Expr(_BOOLEAN, lambda lookup: compare(left_fn(lookup), right_fn(lookup)))

    def _between(self, node: Tree[Token], depth: int) -> _Expr:
        negate, children = _split_not(node)
        value, low, high = (self.number(c, depth, "BETWEEN", coerce=False) for c in children)
        # x BETWEEN a AND b is a <= x AND x <= b; x NOT BETWEEN a AND b is x < a OR x > b.
        below, above = _comparator("<"), _comparator(">")
        at_least, at_most = _comparator(">="), _comparator("<=")
        value_fn, low_fn, high_fn = value.fn, low.fn, high.fn

        def between(lookup: Lookup) -> bool | None:
            v = value_fn(lookup)
            return _and2(at_least(v, low_fn(lookup)), at_most(v, high_fn(lookup)))

        def not_between(lookup: Lookup) -> bool | None:
            v = value_fn(lookup)
            return _or2(below(v, low_fn(lookup)), above(v, high_fn(lookup)))

        expr = _Expr(_BOOLEAN, not_between if negate else between)
        if value.constant and low.constant and high.constant:
            return _fold(expr)
        lo, hi = low.value, high.value
        if low.constant and high.constant and lo is not None and hi is not None:
            slow = expr.fn

            def between_constants(lookup: Lookup) -> Any:
                v = value_fn(lookup)
                t = type(v)
                if t is int or t is float:
                    return (v < lo or v > hi) if negate else lo <= v <= hi
                return slow(lookup)

            return _Expr(_BOOLEAN, between_constants)
        return expr

    def _in(self, node: Tree[Token], depth: int) -> _Expr:
        negate, (value_node, *items) = _split_not(node)
        value = self.expr(value_node, depth)
        if value.kind == _BOOLEAN:
            raise _error("IN needs a string or a number, not a boolean", value_node)
        strings: set[str] = set()
        numbers: set[int | float] = set()
        for item in items:
            assert isinstance(item, Tree)
            tokens = [c for c in item.children if isinstance(c, Token)]
            if tokens[-1].type == "STRING":
                strings.add(_unquote(tokens[-1]))
            else:
                number = _parse_number(tokens[-1])
                numbers.add(-number if tokens[0].value == "-" else number)
        string_set, number_set = frozenset(strings), frozenset(numbers)
        fn = value.fn

        def is_in(lookup: Lookup) -> Any:
            v = fn(lookup)
            if type(v) is str:
                return (v in string_set) != negate  # != negate: XOR, flips for NOT IN
            kind = _classify(v)
            if kind == _STR:
                return (v in string_set) != negate
            if kind == _NUM:
                return (v in number_set) != negate
            return negate if kind == _BOOL else None

        expr = _Expr(_BOOLEAN, is_in)
        return _fold(expr) if value.constant else expr

    def _like(self, node: Tree[Token], depth: int) -> _Expr:
        negate, (value_node, pattern_token, *escape_token) = _split_not(node)
        assert isinstance(pattern_token, Token)
        value = self.expr(value_node, depth)
        if value.kind not in (_STRING, _ANY):
            raise _error(f"LIKE needs a string, not {_a(value.kind)}", value_node)
        escape = None
        if escape_token:
            assert isinstance(escape_token[0], Token)
            escape = _unquote(escape_token[0])
            if len(escape) != 1:
                message = f"ESCAPE needs a single character, not {escape_token[0].value[:24]}"
                raise _error(message, escape_token[0])
        try:
            match = _like_matcher(_unquote(pattern_token), escape)
        except ValueError as exc:
            raise _error(str(exc), pattern_token) from None
        fn = value.fn

        def like(lookup: Lookup) -> bool | None:
            v = fn(lookup)
            if type(v) is str:
                return match(v) != negate  # != negate: XOR, flips for NOT LIKE
            kind = _classify(v)
            if kind == _STR:
                return match(v) != negate
            return None if kind in (_NULL, _OTHER) else negate

        expr = _Expr(_BOOLEAN, like)
        return _fold(expr) if value.constant else expr

    def _is_null(self, node: Tree[Token], depth: int) -> _Expr:
        negate, (value_node,) = _split_not(node)
        value = self.expr(value_node, depth)
        if value.constant:
            return _constant(_BOOLEAN, (value.value is None) != negate)
        if value.name is not None:
            name = value.name
            if negate:
                return _Expr(_BOOLEAN, lambda lookup: lookup(name) is not None)
            return _Expr(_BOOLEAN, lambda lookup: lookup(name) is None)
        fn = value.fn
        if negate:
            return _Expr(_BOOLEAN, lambda lookup: fn(lookup) is not None)
        return _Expr(_BOOLEAN, lambda lookup: fn(lookup) is None)

    # -- arithmetic and primaries

    def _arithmetic(self, node: Tree[Token], depth: int) -> _Expr:
        children = node.children
        operands = [self.number(children[0], depth, f"'{children[1]}'")]
        ops: list[Callable[[Any, Any], Any]] = []
        for i in range(1, len(children), 2):
            op = str(children[i])
            operands.append(self.number(children[i + 1], depth, f"'{op}'"))
            ops.append(_ARITHMETIC[op])
        fns = [operand.fn for operand in operands]
        if len(fns) == 2:
            (first, second), (op2,) = fns, ops

            def arithmetic(lookup: Lookup) -> Any:
                a = first(lookup)
                if a is None:
                    return None
                b = second(lookup)
                if b is None:
                    return None
                try:
                    return op2(a, b)
                except ArithmeticError:
                    return None

        else:
            head, rest = fns[0], list(zip(ops, fns[1:], strict=True))

            def arithmetic(lookup: Lookup) -> Any:
                a = head(lookup)
                if a is None:
                    return None
                try:
                    for op, fn in rest:
                        b = fn(lookup)
                        if b is None:
                            return None
                        a = op(a, b)
                except ArithmeticError:
                    return None
                return a

        expr = _Expr(_NUMBER, arithmetic)
        return _fold(expr) if all(operand.constant for operand in operands) else expr

    def _sign(self, node: Tree[Token], depth: int) -> _Expr:
        sign, operand_node = node.children
        operand = self.number(operand_node, depth, f"unary '{sign}'")
        if sign == "+":
            return operand
        fn = operand.fn
        expr = _Expr(_NUMBER, lambda lookup: None if (v := fn(lookup)) is None else -v)
        return _fold(expr) if operand.constant else expr

    def _ident(self, node: Tree[Token], _depth: int) -> _Expr:
        name = str(_token(node))
        self.identifiers.add(name)
        return _Expr(_ANY, lambda lookup: lookup(name), name=name)


def _token(node: Tree[Token]) -> Token:
    token = node.children[0]
    assert isinstance(token, Token)
    return token


def _and2(a: bool | None, b: bool | None) -> bool | None:
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def _or2(a: bool | None, b: bool | None) -> bool | None:
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


def _logic(op: str, operands: Sequence[_Expr]) -> _Expr:
    """SQL's three-valued AND or OR of conditions, evaluated left to right with a short cut."""
    fns = tuple(operand.fn for operand in operands)
    stop = op == "or"  # the value that decides the result: TRUE for OR, FALSE for AND
    if len(fns) == 2:
        first, second = fns

        def logic(lookup: Lookup) -> Any:
            a = first(lookup)
            if a is stop:
                return stop
            b = second(lookup)
            if b is stop:
                return stop
            return None if a is None or b is None else not stop

    else:

        def logic(lookup: Lookup) -> Any:
            unknown = False
            for fn in fns:
                value = fn(lookup)
                if value is stop:
                    return stop
                if value is None:
                    unknown = True
            return None if unknown else not stop

    expr = _Expr(_BOOLEAN, logic, logic=op, parts=fns)
    return _fold(expr) if all(operand.constant for operand in operands) else expr


def _compare_name(name: str, op: str, constant: Any) -> _Fn:
    """``name <op> constant``, with a fast path for the plain Python types."""
    slow = _comparator(op)
    kind = _classify(constant)
    if kind == _NUM:
        py_op = _PY_OPS[op]

        def compare_number(lookup: Lookup) -> bool | None:
            v = lookup(name)
            t = type(v)
            if t is int or t is float or (isinstance(v, int | float) and t is not bool):
                return py_op(v, constant)  # type: ignore[no-any-return]
            return slow(v, constant)

        return compare_number
    if kind == _STR and op == "=":

        def string_equal(lookup: Lookup) -> bool | None:
            v = lookup(name)
            if type(v) is str or isinstance(v, str):
                return v == constant  # type: ignore[no-any-return]
            return slow(v, constant)

        return string_equal
    return lambda lookup: slow(lookup(name), constant)


def _matcher(expr: _Expr) -> Callable[[Lookup], bool]:
    """Whether the condition is TRUE, without building the unknown the caller drops."""
    if expr.logic == "and":
        parts = expr.parts
        if len(parts) == 2:
            first, second = parts
            return lambda lookup: first(lookup) is True and second(lookup) is True
        return lambda lookup: all(fn(lookup) is True for fn in parts)
    if expr.logic == "or":
        parts = expr.parts
        if len(parts) == 2:
            first, second = parts
            return lambda lookup: first(lookup) is True or second(lookup) is True
        return lambda lookup: any(fn(lookup) is True for fn in parts)
    fn = expr.parts[0] if expr.logic == "not" else expr.fn
    want = expr.logic != "not"
    return lambda lookup: fn(lookup) is want


# --- the public face -----------------------------------------------------------------


class Selector:
    """A compiled selector; build one with :func:`compile_selector`.

    ``matches(lookup)`` is ``True`` when the selector is TRUE for the message whose
    identifiers ``lookup`` resolves (see :func:`make_lookup`), and ``False`` when it
    is FALSE or unknown.  ``evaluate(lookup)`` gives the three-valued result, with
    ``None`` for unknown.  Selectors are immutable and shared between consumers.
    """

    __slots__ = ("_evaluate", "identifiers", "matches", "text")

    text: str
    """The selector as the consumer wrote it."""
    identifiers: frozenset[str]
    """The identifiers it refers to (a broker may skip decoding what none needs)."""
    matches: Callable[[Lookup], bool]

    def __init__(self, text: str, expr: _Expr, identifiers: frozenset[str]) -> None:
        self.text = text
        self.identifiers = identifiers
        self._evaluate = expr.fn
        self.matches = _matcher(expr)

    def evaluate(self, lookup: Lookup) -> bool | None:
        """The selector's value for a message: ``True``, ``False`` or ``None`` (unknown)."""
        return self._evaluate(lookup)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"Selector({self.text!r})"


_MATCH_ALL: Final = _constant(_BOOLEAN, True)


def compile_selector(text: str | bytes) -> Selector:
    """Compile a JMS message selector, or raise :class:`SelectorError` saying what is wrong.

    ``text`` is the filter's value as received; bytes are read as UTF-8, and any
    other type is refused with :class:`SelectorError` too, so a broker can pass the
    wire value straight in.  An empty or blank selector matches every message.
    The last 256 distinct selectors are cached, so consumers sharing a selector
    share one compiled object.
    """
    if isinstance(text, bytes | bytearray | memoryview):
        if len(text) > 4 * MAX_SELECTOR_LENGTH:
            raise SelectorError(f"selector longer than {MAX_SELECTOR_LENGTH} characters")
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SelectorError(f"selector is not valid UTF-8: {exc.reason}") from None
    if not isinstance(text, str):
        raise SelectorError(f"a selector is a string, not {type(text).__name__}")
    if len(text) > MAX_SELECTOR_LENGTH:
        raise SelectorError(f"selector longer than {MAX_SELECTOR_LENGTH} characters")
    return _compile(str(text))


@functools.lru_cache(maxsize=256)
def _compile(text: str) -> Selector:
    if not text.strip(" \t\f\r\n"):
        return Selector(text, _MATCH_ALL, frozenset())
    tree = _parse(text)
    compiler = _Compiler()
    try:
        expr = compiler.condition(tree, 0, "the selector must be")
    except RecursionError:  # pragma: no cover - MAX_SELECTOR_DEPTH keeps well clear
        raise SelectorError("selector nested too deeply") from None
    return Selector(text, expr, frozenset(compiler.identifiers))


# --- JMS header identifiers ----------------------------------------------------------

JMS_HEADER_IDENTIFIERS: Final = {
    "JMSDeliveryMode": "'PERSISTENT' when header.durable is true, else 'NON_PERSISTENT'",
    "JMSPriority": "header.priority (default 4)",
    "JMSMessageID": "properties.message-id as a JMS string (see jms_message_id)",
    "JMSCorrelationID": "properties.correlation-id as a JMS string (see jms_correlation_id)",
    "JMSTimestamp": "properties.creation-time in ms since the epoch, 0 when absent",
    "JMSExpiration": "properties.absolute-expiry-time in ms since the epoch, 0 when absent",
    "JMSType": "message annotation x-opt-jms-type, else properties.subject",
    "JMSRedelivered": "header.delivery-count > 0",
    "JMSXDeliveryCount": "header.delivery-count + 1",
    "JMSXGroupID": "properties.group-id",
    "JMSXGroupSeq": "properties.group-sequence",
    "JMSXUserID": "properties.user-id read as UTF-8",
}
"""The header identifiers :func:`make_lookup` resolves, and where each comes from (the
AMQP JMS Mapping).  They take precedence over application properties of the same name."""

_JMS_NAMES: Final = frozenset(JMS_HEADER_IDENTIFIERS)
_ID_PREFIX = "ID:"
_ENCODING_PREFIXES = (
    "AMQP_BINARY:",
    "AMQP_UUID:",
    "AMQP_ULONG:",
    "AMQP_STRING:",
    "AMQP_NO_PREFIX:",
)


def _id_string(value: object) -> str | None:
    """A non-string message-id or correlation-id as JMS writes it, with its type prefix."""
    if isinstance(value, uuid.UUID):
        return f"ID:AMQP_UUID:{value}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"ID:AMQP_ULONG:{int(value)}"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"ID:AMQP_BINARY:{bytes(value).hex().upper()}"
    return None


def jms_message_id(message_id: object) -> str | None:
    """The ``JMSMessageID`` a JMS client sees for an AMQP ``message-id`` (AMQP JMS Mapping
    3.2.1.1, as Qpid JMS and Artemis write it): a string that starts with ``ID:`` as it is,
    another string behind ``ID:AMQP_NO_PREFIX:``, a ulong, uuid or binary behind
    ``ID:AMQP_ULONG:``, ``ID:AMQP_UUID:`` or ``ID:AMQP_BINARY:`` (upper-case hex)."""
    if isinstance(message_id, str):
        if not message_id.startswith(_ID_PREFIX):
            return f"ID:AMQP_NO_PREFIX:{message_id}"
        if message_id.startswith(_ENCODING_PREFIXES, len(_ID_PREFIX)):
            return f"ID:AMQP_STRING:{message_id}"
        return str(message_id)
    return _id_string(message_id)


def jms_correlation_id(correlation_id: object) -> str | None:
    """The ``JMSCorrelationID`` for an AMQP ``correlation-id``: like :func:`jms_message_id`,
    except that a string without the ``ID:`` prefix is an application value, kept as it is."""
    if isinstance(correlation_id, str):
        if correlation_id.startswith(_ID_PREFIX) and correlation_id.startswith(
            _ENCODING_PREFIXES, len(_ID_PREFIX)
        ):
            return f"ID:AMQP_STRING:{correlation_id}"
        return str(correlation_id)
    return _id_string(correlation_id)


def make_lookup(
    application_properties: Mapping[str, Any] | None = None,
    *,
    durable: bool = False,
    priority: int = 4,
    message_id: object = None,
    correlation_id: object = None,
    creation_time: int | None = None,
    absolute_expiry_time: int | None = None,
    subject: str | None = None,
    jms_type: str | None = None,
    delivery_count: int = 0,
    group_id: str | None = None,
    group_sequence: int | None = None,
    user_id: bytes | None = None,
) -> Lookup:
    """The identifier lookup for one message, from plain values the caller extracted.

    Identifiers in :data:`JMS_HEADER_IDENTIFIERS` resolve from the keyword arguments
    (the header, properties and the ``x-opt-jms-type`` message annotation); any other
    identifier is an application property, ``None`` when absent.  Times are
    milliseconds since the Unix epoch.  Header values are worked out only when a
    selector asks for them.
    """
    get = (application_properties if application_properties is not None else {}).get

    def lookup(name: str) -> Any:
        if name not in _JMS_NAMES:
            return get(name)
        match name:
            case "JMSDeliveryMode":
                return "PERSISTENT" if durable else "NON_PERSISTENT"
            case "JMSPriority":
                return priority
            case "JMSMessageID":
                return jms_message_id(message_id)
            case "JMSCorrelationID":
                return jms_correlation_id(correlation_id)
            case "JMSTimestamp":
                return creation_time if creation_time is not None else 0
            case "JMSExpiration":
                return absolute_expiry_time if absolute_expiry_time is not None else 0
            case "JMSType":
                return jms_type if jms_type is not None else subject
            case "JMSRedelivered":
                return delivery_count > 0
            case "JMSXDeliveryCount":
                return delivery_count + 1
            case "JMSXGroupID":
                return group_id
            case "JMSXGroupSeq":
                return group_sequence
            case "JMSXUserID":
                return None if user_id is None else bytes(user_id).decode("utf-8", "replace")
        return None  # pragma: no cover - every name in _JMS_NAMES has its case

    return lookup
