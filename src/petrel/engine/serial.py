"""Serial-number arithmetic (RFC 1982) for AMQP's 32-bit sequence numbers.

Transfer ids, delivery ids and link delivery counts are ``sequence-no`` values:
they wrap at 2**32 and are compared as serial numbers, so ``0`` comes *after*
``0xFFFFFFFF``.
"""

from __future__ import annotations

from typing import Final

__all__ = ["SERIAL_MASK", "serial_add", "serial_diff", "serial_lt"]

#: ``Final`` literals: compiled modules use them as constants, not module lookups.
SERIAL_MASK: Final = 0xFFFFFFFF
_HALF: Final = 1 << 31


def serial_add(a: int, n: int) -> int:
    """``a + n`` in sequence-number space."""
    return (a + n) & SERIAL_MASK


def serial_diff(a: int, b: int) -> int:
    """The signed distance ``a - b``, in ``[-2**31, 2**31)``."""
    d = (a - b) & SERIAL_MASK
    return d - (1 << 32) if d >= _HALF else d


def serial_lt(a: int, b: int) -> bool:
    """Whether ``a`` comes before ``b``."""
    return serial_diff(a, b) < 0
