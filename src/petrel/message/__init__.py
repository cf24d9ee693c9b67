"""AMQP 1.0 messages: :class:`Message` for applications, :class:`MessageView` for the hot path.

A message on the wire is a run of sections, in this order (part 3.2)::

    header? delivery-annotations? message-annotations? properties?
    application-properties? body footer?

where the body is one ``amqp-value``, or one or more ``data`` sections, or one
or more ``amqp-sequence`` sections.  The *bare message* (properties through
body) is immutable in transit; everything before it may change hop by hop.

:class:`Message` is the whole message as plain Python values, for
applications::

    >>> msg = Message("hello", to="queue://orders", durable=True,
    ...               application_properties={"region": "eu"})
    >>> Message.decode(msg.encode()) == msg
    True

The body goes in the section its Python type says: ``bytes`` (or
``bytearray``/``memoryview``) is one ``data`` section, :class:`Sections` of
``bytes`` is several ``data`` sections, :class:`Sections` of lists is several
``amqp-sequence`` sections, and anything else is one ``amqp-value``.
``body_type`` overrides that: ``"value"`` sends bytes as an ``amqp-value``,
``"sequence"`` sends a list as one ``amqp-sequence`` section and ``"data"``
also takes a plain list of ``bytes`` (one section each).  Decoding sets
``body_type`` only where the body's Python type alone would say otherwise, so
a decoded message compares equal to the one that was sent.

:class:`MessageView` reads encoded message bytes without decoding them: it
finds the section boundaries from the size fields, decodes header,
annotations, properties and application-properties only when asked, never
touches the body, and re-encodes only the header (and annotations) in front
of the untouched bare message.  A broker or router holds one of these per
message.
"""

from __future__ import annotations

import warnings
from typing import Any

from .. import codec
from ._body import Sections
from ._message import Message
from ._sections import KEEP, BodyType
from ._view import EncodedAnnotations, MessageView

__all__ = [
    "KEEP",
    "BodyType",
    "EncodedAnnotations",
    "Message",
    "MessageView",
    "Sections",
]

#: Names that moved elsewhere: each still works, with a :class:`DeprecationWarning`, for at
#: least one minor release (see "Stability" in docs/engine.md).
_MOVED = {"skip_value": ("petrel.codec.skip_value", codec.skip_value)}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        new_home, value = _MOVED[name]
        warnings.warn(
            f"petrel.message.{name} is deprecated; use {new_home}",
            DeprecationWarning,
            stacklevel=2,
        )
        return value
    raise AttributeError(f"module 'petrel.message' has no attribute {name!r}")
