"""Compiling a parse tree once into closures, and the public Selector."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from lark import Token, Tree

from ._base import (
    MAX_SELECTOR_DEPTH,
    MAX_SELECTOR_LENGTH,
    Lookup,
    SelectorError,
    _Fn,
)
from ._grammar import (
    _parse,
)
from ._values import (
    _ARITHMETIC,
    _BOOL,
    _INT_MAX,
    _MIRROR,
    _NULL,
    _NUM,
    _OTHER,
    _PY_OPS,
    _STR,
    _classify,
    _comparator,
    _like_matcher,
    _numeric,
)

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
        message,
        line=getattr(where, "line", None),
        column=getattr(where, "column", None),
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
