"""The JMS selector grammar (lark, LALR) and parsing with readable errors."""

from __future__ import annotations

import functools
from typing import Final

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedToken

from ._base import (
    SelectorError,
)

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
