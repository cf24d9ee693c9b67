"""Attribute values: checked against an attribute type and converted as the draft says.

Private to :mod:`petrel.management`; :meth:`Attribute.convert
<petrel.management.schema.Attribute.convert>` is the public face.  A string
where an integer, float, boolean, list or map is wanted is parsed as JSON
(RFC 7159: no NaN or Infinity), as the draft's section 3.3.1.1 asks.
"""

from __future__ import annotations

import json
from typing import Any, Final

from ..types import Array

__all__ = ["ARTICLE", "INVALID", "convert_value", "describe_value"]

#: What a converter returns for a value it cannot take.
INVALID: Final = object()
#: "an integer", "a string": the article for each type name.
ARTICLE: Final = {
    "string": "a",
    "integer": "an",
    "boolean": "a",
    "float": "a",
    "map": "a",
    "list": "a",
}


def convert_value(kind: str, value: Any) -> Any:
    """``value`` as the plain Python value of attribute type ``kind``, or :data:`INVALID`."""
    return _CONVERTERS[kind](value)


def describe_value(value: Any) -> str:
    """``"str 'abc'"``: a value's type and (shortened) repr, for error messages."""
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


def _reject_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def _json(value: str) -> Any:
    """A string parsed as JSON (RFC 7159, so no NaN or Infinity), or ``INVALID``."""
    try:
        return json.loads(value, parse_constant=_reject_constant)
    except ValueError:
        return INVALID


def _to_string(value: Any) -> Any:
    return str(value) if isinstance(value, str) else INVALID


def _to_integer(value: Any) -> Any:
    if isinstance(value, str):
        value = _json(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return INVALID
    return int(value)


def _to_float(value: Any) -> Any:
    if isinstance(value, str):
        value = _json(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return INVALID
    return float(value)


def _to_boolean(value: Any) -> Any:
    if isinstance(value, str):
        value = _json(value)
    return value if isinstance(value, bool) else INVALID


def _to_list(value: Any) -> Any:
    if isinstance(value, str):
        value = _json(value)
    if isinstance(value, list | tuple | Array):
        return list(value)
    return INVALID


def _to_map(value: Any) -> Any:
    if isinstance(value, str):
        value = _json(value)
    return dict(value) if isinstance(value, dict) else INVALID


_CONVERTERS = {
    "string": _to_string,
    "integer": _to_integer,
    "float": _to_float,
    "boolean": _to_boolean,
    "list": _to_list,
    "map": _to_map,
}
