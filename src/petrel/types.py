"""Typed AMQP 1.0 values.

Plain Python values map onto AMQP types without help: ``None`` is null, ``bool``
is boolean, ``int`` is long, ``float`` is double, ``str`` is string, ``bytes``
is binary, ``uuid.UUID`` is uuid, ``list`` is list and ``dict`` is map.  Every
other AMQP type has a thin wrapper here that subclasses the natural Python type,
so ``UInt(5) + 1 == 6`` while the encoder still knows to write a ``uint``.

The codec decodes into these same wrappers (a decoded uint is a ``UInt``), so
decoding and re-encoding a value reproduces its canonical bytes.  Values are
range-checked when they are encoded, not when they are built, which keeps the
decoder's hot path free of Python-level constructors.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import Any

__all__ = [
    "Array",
    "Byte",
    "Char",
    "Decimal32",
    "Decimal64",
    "Decimal128",
    "Described",
    "Float",
    "Int",
    "Long",
    "Short",
    "Symbol",
    "Timestamp",
    "UByte",
    "UInt",
    "ULong",
    "UShort",
]


# ``repr()`` of a numeric wrapper names its AMQP type; ``str()`` (and so an
# f-string) is the bare number, as for the base type.
def _int_repr(self: int) -> str:
    return f"{type(self).__name__}({int(self)})"


class UByte(int):
    """AMQP ``ubyte``: unsigned 8-bit integer."""

    __slots__ = ()
    __repr__ = _int_repr
    __str__ = int.__repr__


class UShort(int):
    """AMQP ``ushort``: unsigned 16-bit integer."""

    __slots__ = ()
    __repr__ = _int_repr
    __str__ = int.__repr__


class UInt(int):
    """AMQP ``uint``: unsigned 32-bit integer."""

    __slots__ = ()
    __repr__ = _int_repr
    __str__ = int.__repr__


class ULong(int):
    """AMQP ``ulong``: unsigned 64-bit integer (also the usual descriptor type)."""

    __slots__ = ()
    __repr__ = _int_repr
    __str__ = int.__repr__


class Byte(int):
    """AMQP ``byte``: signed 8-bit integer."""

    __slots__ = ()
    __repr__ = _int_repr
    __str__ = int.__repr__


class Short(int):
    """AMQP ``short``: signed 16-bit integer."""

    __slots__ = ()
    __repr__ = _int_repr
    __str__ = int.__repr__


class Int(int):
    """AMQP ``int``: signed 32-bit integer."""

    __slots__ = ()
    __repr__ = _int_repr
    __str__ = int.__repr__


class Long(int):
    """AMQP ``long``: signed 64-bit integer.  A plain ``int`` means the same thing."""

    __slots__ = ()
    __repr__ = _int_repr
    __str__ = int.__repr__


class Float(float):
    """AMQP ``float``: IEEE 754 binary32.  A plain ``float`` is a ``double``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Float({float(self)!r})"

    __str__ = float.__repr__


class Timestamp(int):
    """AMQP ``timestamp``: milliseconds since the Unix epoch, signed 64-bit."""

    __slots__ = ()
    __repr__ = _int_repr
    __str__ = int.__repr__

    @classmethod
    def from_datetime(cls, when: _dt.datetime) -> Timestamp:
        """The timestamp of an aware ``datetime`` (a naive one is taken as UTC)."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.UTC)
        delta = when - _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
        return cls(delta // _dt.timedelta(milliseconds=1))

    @classmethod
    def from_seconds(cls, seconds: float) -> Timestamp:
        """The timestamp of a Unix time in seconds, such as ``time.time()``."""
        return cls(round(seconds * 1000))

    def to_datetime(self) -> _dt.datetime:
        """This timestamp as an aware UTC ``datetime``."""
        epoch = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
        return epoch + _dt.timedelta(milliseconds=int(self))


class Symbol(str):
    """AMQP ``symbol``: an ASCII name such as ``amqp:not-found``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Symbol({str(self)!r})"


class Char(str):
    """AMQP ``char``: one Unicode code point, sent as UTF-32."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Char({str(self)!r})"


class _DecimalBits(bytes):
    """IEEE 754-2008 decimal value kept as its raw big-endian bits.

    Python has no fixed-width decimal type, so Petrel carries the exact bits
    and leaves the arithmetic to the application.
    """

    __slots__ = ()
    WIDTH = 0

    def __new__(cls, bits: bytes | bytearray | int) -> Any:
        if isinstance(bits, int):
            if not 0 <= bits < 1 << (8 * cls.WIDTH):
                raise ValueError(f"{cls.__name__} bits must fit {cls.WIDTH} unsigned bytes")
            bits = bits.to_bytes(cls.WIDTH, "big")
        if len(bits) != cls.WIDTH:
            raise ValueError(f"{cls.__name__} needs exactly {cls.WIDTH} bytes, got {len(bits)}")
        return super().__new__(cls, bits)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(0x{self.hex()})"


class Decimal32(_DecimalBits):
    """AMQP ``decimal32``: IEEE 754-2008 decimal32, as 4 raw bytes."""

    __slots__ = ()
    WIDTH = 4


class Decimal64(_DecimalBits):
    """AMQP ``decimal64``: IEEE 754-2008 decimal64, as 8 raw bytes."""

    __slots__ = ()
    WIDTH = 8


class Decimal128(_DecimalBits):
    """AMQP ``decimal128``: IEEE 754-2008 decimal128, as 16 raw bytes."""

    __slots__ = ()
    WIDTH = 16


class Described:
    """A described value: a descriptor (``ULong`` or ``Symbol``) and the value it describes.

    The codec returns this for every described type it has no class for; the
    spec layer has classes for all the descriptors the AMQP specification
    defines.
    """

    __slots__ = ("descriptor", "value")

    def __init__(self, descriptor: ULong | Symbol | int | str, value: Any) -> None:
        if type(descriptor) is int:
            descriptor = ULong(descriptor)
        elif type(descriptor) is str:
            descriptor = Symbol(descriptor)
        self.descriptor: ULong | Symbol = descriptor  # type: ignore[assignment]
        self.value = value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Described):
            return NotImplemented
        return (
            type(self.descriptor) is type(other.descriptor)
            and self.descriptor == other.descriptor
            and self.value == other.value
        )

    def __hash__(self) -> int:
        return hash((self.descriptor, _hashable(self.value)))

    def __repr__(self) -> str:
        return f"Described({self.descriptor!r}, {self.value!r})"


class Array:
    """AMQP ``array``: a sequence of values that all share one AMQP type.

    ``element_type`` names that type with a Python class: a wrapper from this
    module (``Symbol``, ``UInt``, ...), or ``bool``, ``int`` (long), ``float``
    (double), ``str``, ``bytes``, ``uuid.UUID``, ``list``, ``dict``, ``Array``
    or ``type(None)``.  ``Long`` is taken as ``int``, the type a decoded array
    of long reports.  An array of a described type gives ``descriptor``; its
    items are then the values *under* the descriptor, and ``element_type`` is
    their type.

    >>> Array(Symbol, ["amqp:accepted:list", "amqp:rejected:list"])
    """

    __slots__ = ("descriptor", "element_type", "items")

    def __init__(
        self,
        element_type: type,
        items: Iterable[Any] = (),
        descriptor: ULong | Symbol | int | str | None = None,
    ) -> None:
        self.element_type = int if element_type is Long else element_type
        self.items = list(items)
        if type(descriptor) is int:
            descriptor = ULong(descriptor)
        elif type(descriptor) is str:
            descriptor = Symbol(descriptor)
        self.descriptor: ULong | Symbol | None = descriptor  # type: ignore[assignment]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Any:
        return iter(self.items)

    def __getitem__(self, index: int) -> Any:
        return self.items[index]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Array):
            return NotImplemented
        return (
            self.element_type is other.element_type
            and self.descriptor == other.descriptor
            and type(self.descriptor) is type(other.descriptor)
            and self.items == other.items
        )

    def __hash__(self) -> int:
        return hash((self.element_type, self.descriptor, tuple(_hashable(i) for i in self.items)))

    def __repr__(self) -> str:
        name = getattr(self.element_type, "__name__", repr(self.element_type))
        if self.descriptor is not None:
            return f"Array({name}, {self.items!r}, descriptor={self.descriptor!r})"
        return f"Array({name}, {self.items!r})"


def _hashable(value: Any) -> Any:
    """A hashable stand-in for a value that may hold lists or dicts."""
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple((_hashable(k), _hashable(v)) for k, v in value.items())
    return value
