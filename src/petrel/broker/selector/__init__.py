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

from ._base import (
    MAX_SELECTOR_DEPTH,
    MAX_SELECTOR_LENGTH,
    Lookup,
    SelectorError,
)
from ._compiler import Selector, compile_selector
from .jms import JMS_HEADER_IDENTIFIERS, jms_correlation_id, jms_message_id, make_lookup

__all__ = [
    "JMS_HEADER_IDENTIFIERS",
    "MAX_SELECTOR_DEPTH",
    "MAX_SELECTOR_LENGTH",
    "Lookup",
    "Selector",
    "SelectorError",
    "compile_selector",
    "jms_correlation_id",
    "jms_message_id",
    "make_lookup",
]
