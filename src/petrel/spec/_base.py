"""The machinery behind every AMQP composite and restricted described type.

A composite type is declared once, as annotated class attributes built with
:func:`field`::

    class Detach(Composite, descriptor=0x16, name="amqp:detach:list"):
        handle: int = field("handle", mandatory=True)
        closed: bool = field("boolean", default=False)
        error: Error | None = field("error")

From that one table the class gets its constructor (keyword arguments with
the spec's defaults), read-only attributes, ``repr``, equality, an encoder
registered with the codec (exact AMQP field types on the wire, trailing nulls
omitted, ``multiple`` fields sent as one value or an array) and a decoder
registered in :data:`REGISTRY` (absent and null fields take their defaults,
mandatory fields are checked, field types are checked).

Instances are immutable tuples underneath: building one from a decoded list
is a single ``tuple.__new__`` call, which keeps frame decoding cheap.
"""

from __future__ import annotations

import inspect
import operator
import uuid
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple, TypeVar, dataclass_transform

from .. import codec
from ..codec import _encode as enc
from ..errors import DecodeError
from ..types import (
    Array,
    Byte,
    Char,
    Decimal32,
    Decimal64,
    Decimal128,
    Float,
    Int,
    Short,
    Symbol,
    Timestamp,
    UByte,
    UInt,
    ULong,
    UShort,
)

__all__ = [
    "REGISTRY",
    "TYPES",
    "Composite",
    "Field",
    "Restricted",
    "decode",
    "decode_from",
    "field",
]

T = TypeVar("T")

#: Descriptor (``ULong`` code and ``Symbol`` name) -> factory for every spec type.
REGISTRY: dict[Any, Callable[[Any], Any]] = {}
#: Every class declared with this machinery, in declaration order.
TYPES: list[type] = []

# The restricted types of the spec, reduced to the primitive they are sent as.
PRIMITIVE_OF: dict[str, str] = {
    "handle": "uint",
    "seconds": "uint",
    "milliseconds": "uint",
    "delivery-tag": "binary",
    "delivery-number": "uint",
    "transfer-number": "uint",
    "sequence-no": "uint",
    "message-format": "uint",
    "ietf-language-tag": "symbol",
    "fields": "fields",
    "role": "boolean",
    "sender-settle-mode": "ubyte",
    "receiver-settle-mode": "ubyte",
    "terminus-durability": "uint",
    "terminus-expiry-policy": "symbol",
    "std-dist-mode": "symbol",
    "filter-set": "fields",
    "node-properties": "fields",
    "annotations": "annotations",
    "message-id-ulong": "ulong",
    "message-id-uuid": "uuid",
    "message-id-binary": "binary",
    "message-id-string": "string",
    "address-string": "string",
    "sasl-code": "ubyte",
    "txn-id": "binary",
    "transaction-id": "binary",
    "txn-capability": "symbol",
    "transaction-error": "symbol",
    "amqp-error": "symbol",
    "connection-error": "symbol",
    "session-error": "symbol",
    "link-error": "symbol",
}

_PRIMITIVE_ENCODERS: dict[str, Callable[[bytearray, Any], None]] = {
    "null": enc.encode_null,
    "boolean": enc.encode_boolean,
    "ubyte": enc.encode_ubyte,
    "ushort": enc.encode_ushort,
    "uint": enc.encode_uint,
    "ulong": enc.encode_ulong,
    "byte": enc.encode_byte,
    "short": enc.encode_short,
    "int": enc.encode_int,
    "long": enc.encode_long,
    "float": enc.encode_float,
    "double": enc.encode_double,
    "decimal32": enc.encode_decimal32,
    "decimal64": enc.encode_decimal64,
    "decimal128": enc.encode_decimal128,
    "char": enc.encode_char,
    "timestamp": enc.encode_timestamp,
    "uuid": enc.encode_uuid,
    "binary": enc.encode_binary,
    "string": enc.encode_string,
    "symbol": enc.encode_symbol,
    "list": enc.encode_list,
    "map": enc.encode_map,
}

# What a decoded value of each primitive may be (decoders produce exact wrapper types).
_ACCEPTS: dict[str, frozenset[type]] = {
    "null": frozenset({type(None)}),
    "boolean": frozenset({bool}),
    "ubyte": frozenset({UByte}),
    "ushort": frozenset({UShort}),
    "uint": frozenset({UInt}),
    "ulong": frozenset({ULong}),
    "byte": frozenset({Byte}),
    "short": frozenset({Short}),
    "int": frozenset({Int}),
    "long": frozenset({int}),
    "float": frozenset({Float}),
    "double": frozenset({float}),
    "decimal32": frozenset({Decimal32}),
    "decimal64": frozenset({Decimal64}),
    "decimal128": frozenset({Decimal128}),
    "char": frozenset({Char}),
    "timestamp": frozenset({Timestamp}),
    "uuid": frozenset({uuid.UUID}),
    "binary": frozenset({bytes}),
    "string": frozenset({str}),
    "symbol": frozenset({Symbol}),
    "list": frozenset({list}),
    "map": frozenset({dict}),
    "fields": frozenset({dict}),
    "annotations": frozenset({dict}),
}

_ELEMENT_TYPE: dict[str, type] = {
    "symbol": Symbol,
    "string": str,
    "uint": UInt,
    "ulong": ULong,
    "ubyte": UByte,
    "ushort": UShort,
    "boolean": bool,
    "binary": bytes,
    "long": int,
    "int": Int,
    "timestamp": Timestamp,
}


def _encode_symbol_keyed(out: bytearray, value: dict[Any, Any]) -> None:
    """A ``fields`` or ``annotations`` map: plain ``str`` keys go out as symbols."""
    if any(type(k) is str for k in value):
        value = {Symbol(k) if type(k) is str else k: v for k, v in value.items()}
    enc.encode_map(out, value)


class Field(NamedTuple):
    """One field of a composite type, as the spec declares it."""

    name: str
    """The Python name (the spec's name in snake_case)."""
    type: str
    """The spec's type name: a primitive, a restricted type, a composite or ``*``."""
    mandatory: bool = False
    multiple: bool = False
    default: Any = None
    requires: str | None = None

    @property
    def spec_name(self) -> str:
        """The field's name as the specification spells it."""
        return self.name.replace("_", "-")

    @property
    def primitive(self) -> str | None:
        """The primitive type the field is sent as, or ``None`` for a described or any type."""
        name = PRIMITIVE_OF.get(self.type, self.type)
        return name if name in _ACCEPTS else None


def field(
    amqp_type: str,
    *,
    mandatory: bool = False,
    multiple: bool = False,
    default: Any = None,
    requires: str | None = None,
) -> Any:
    """Declare a field of a composite type (see the module docstring)."""
    return Field("", amqp_type, mandatory, multiple, default, requires)


def _field_encoder(f: Field) -> Callable[[bytearray, Any], None]:
    prim = f.primitive
    if prim in ("fields", "annotations"):
        single: Callable[[bytearray, Any], None] = _encode_symbol_keyed
    elif prim is not None:
        single = _PRIMITIVE_ENCODERS[prim]
    else:
        single = enc._encode_any
    if not f.multiple:
        return single
    element_type = _ELEMENT_TYPE.get(prim or "")

    def encode_multiple(out: bytearray, value: Any) -> None:
        if isinstance(value, (list, tuple)):
            if element_type is None:
                enc.encode_list(out, value)
            else:
                enc.encode_array(out, Array(element_type, [element_type(v) for v in value]))
        elif isinstance(value, Array):
            enc.encode_array(out, value)
        else:
            single(out, value)

    return encode_multiple


def _field_checker(f: Field, owner: str) -> Callable[[Any], Any] | None:
    """A function normalising one decoded field value, or ``None`` if any value will do."""
    prim = f.primitive
    accepts = _ACCEPTS.get(prim) if prim is not None else None
    where = f"{owner}.{f.spec_name}"
    if f.multiple:

        def check_multiple(value: Any) -> Any:
            items = value.items if isinstance(value, Array) else [value]
            if accepts is not None:
                for item in items:
                    if type(item) not in accepts:
                        raise DecodeError(f"{where} must be {f.type}, got {type(item).__name__}")
            return tuple(items)

        return check_multiple
    if accepts is None:
        return None

    def check(value: Any) -> Any:
        if type(value) not in accepts:
            raise DecodeError(f"{where} must be {f.type}, got {type(value).__name__}")
        return value

    return check


_tuple_new = tuple.__new__
_tuple_eq = tuple.__eq__
_tuple_hash = tuple.__hash__

C = TypeVar("C", bound="Composite")


@dataclass_transform(frozen_default=True, field_specifiers=(field,), kw_only_default=True)
class Composite(tuple):  # type: ignore[type-arg]
    """Base of every list-encoded composite type of the spec (performatives, sections, ...)."""

    __slots__ = ()

    DESCRIPTOR: ClassVar[int]
    """The numeric descriptor (the spec's domain 0 code)."""
    NAME: ClassVar[str]
    """The symbolic descriptor, e.g. ``amqp:open:list``."""
    FIELDS: ClassVar[tuple[Field, ...]]
    """The field table, in wire order."""

    def __init_subclass__(cls, *, descriptor: int, name: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.DESCRIPTOR = descriptor
        cls.NAME = name
        annotations = inspect.get_annotations(cls)
        fields: list[Field] = []
        for attr in annotations:
            spec = cls.__dict__.get(attr)
            if not isinstance(spec, Field):
                continue
            fields.append(spec._replace(name=attr))
        cls.FIELDS = tuple(fields)
        for index, f in enumerate(fields):
            setattr(cls, f.name, property(_getter(index), doc=f"``{f.spec_name}`` ({f.type})"))
        _build_constructor(cls)
        _build_codec(cls)
        TYPES.append(cls)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and _tuple_eq(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return _tuple_hash(self)

    def __repr__(self) -> str:
        parts = []
        for f, value in zip(self.FIELDS, self, strict=True):
            if value is not None and value != f.default:
                parts.append(f"{f.name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def replace(self: C, **changes: Any) -> C:
        """A copy with some fields changed, like :func:`dataclasses.replace`."""
        values = list(self)
        for key, value in changes.items():
            values[self._INDEX[key]] = value
        return _tuple_new(type(self), values)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict of Python name to value."""
        return {f.name: v for f, v in zip(self.FIELDS, self, strict=True)}

    _INDEX: ClassVar[dict[str, int]]
    _PREFIX: ClassVar[bytes]

    @classmethod
    def from_fields(cls: type[C], values: Any) -> C:
        """Build an instance from a decoded list of field values (defaults, checks)."""
        raise NotImplementedError  # replaced per class by _build_codec


def _getter(index: int) -> Callable[[tuple[Any, ...]], Any]:
    return operator.itemgetter(index)


def _build_constructor(cls: type[Composite]) -> None:
    cls._INDEX = {f.name: i for i, f in enumerate(cls.FIELDS)}
    params = []
    for f in cls.FIELDS:
        if f.mandatory:
            params.append(f.name)
        else:
            params.append(f"{f.name}=_d_{f.name}")
    names = ", ".join(f.name for f in cls.FIELDS)
    trailing = "," if len(cls.FIELDS) == 1 else ""
    signature = ", ".join(params)
    source = (
        f"def __new__(cls{', *, ' if params else ''}{signature}):\n"
        f"    return _tuple_new(cls, ({names}{trailing}))\n"
    )
    namespace: dict[str, Any] = {"_tuple_new": _tuple_new}
    for f in cls.FIELDS:
        namespace[f"_d_{f.name}"] = f.default
    exec(source, namespace)
    new = namespace["__new__"]
    new.__qualname__ = f"{cls.__qualname__}.__new__"
    cls.__new__ = new  # type: ignore[method-assign]


def _build_codec(cls: type[Composite]) -> None:
    fields = cls.FIELDS
    count = len(fields)
    encoders = [_field_encoder(f) for f in fields]
    checkers = [(i, c) for i, f in enumerate(fields) if (c := _field_checker(f, cls.NAME))]
    defaults = [(i, f.default) for i, f in enumerate(fields) if f.default is not None]
    mandatory = [(i, f) for i, f in enumerate(fields) if f.mandatory]
    trailing_defaults = [f.default for f in fields]
    prefix = bytearray()
    codec.encode_descriptor(prefix, cls.DESCRIPTOR)
    cls._PREFIX = bytes(prefix)
    encode_null = enc.encode_null
    hdr32 = bytes(9)
    finish = enc._finish_compound

    def encode(out: bytearray, value: Composite) -> None:
        out += prefix
        n = count
        # Trailing fields that are null or hold their default need not be sent.
        while n and (value[n - 1] is None or value[n - 1] == trailing_defaults[n - 1]):
            n -= 1
        if not n:
            out.append(0x45)
            return
        start = len(out)
        out += hdr32
        for i in range(n):
            item = value[i]
            if item is None:
                encode_null(out, None)
            else:
                encoders[i](out, item)
        finish(out, start, 0xC0, 0xD0, n)

    def from_fields(values: Any) -> Composite:
        if type(values) is not list:
            raise DecodeError(f"{cls.NAME} must be a list, got {type(values).__name__}")
        n = len(values)
        if n < count:
            values.extend([None] * (count - n))
        elif n > count:
            # Fields added by a later version of the spec: keep what we know.
            del values[count:]
        for i, check in checkers:
            item = values[i]
            if item is not None:
                values[i] = check(item)
        for i, f in mandatory:
            if values[i] is None:
                raise DecodeError(f"{cls.NAME} field {f.spec_name} is mandatory but absent")
        for i, default in defaults:
            if values[i] is None:
                values[i] = default
        return _tuple_new(cls, values)

    cls.from_fields = staticmethod(from_fields)  # type: ignore[method-assign]
    codec.register_encoder(cls, encode)
    REGISTRY[ULong(cls.DESCRIPTOR)] = from_fields
    REGISTRY[Symbol(cls.NAME)] = from_fields


class Restricted:
    """Base of the described types that wrap one value (message sections, lifetime policies).

    ``value`` holds the described value; ``SOURCE`` names its AMQP type
    (``map``, ``binary``, ``list``, ``*`` ...).
    """

    __slots__ = ("value",)

    DESCRIPTOR: ClassVar[int]
    NAME: ClassVar[str]
    SOURCE: ClassVar[str]

    def __init_subclass__(cls, *, descriptor: int, name: str, source: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.DESCRIPTOR = descriptor
        cls.NAME = name
        cls.SOURCE = source
        prefix = bytearray()
        codec.encode_descriptor(prefix, descriptor)
        frozen_prefix = bytes(prefix)
        if source in ("fields", "annotations"):
            inner: Callable[[bytearray, Any], None] = _encode_symbol_keyed
        elif source in _PRIMITIVE_ENCODERS:
            inner = _PRIMITIVE_ENCODERS[source]
        else:
            inner = enc._encode_any
        accepts = _ACCEPTS.get(source)

        def encode(out: bytearray, value: Restricted) -> None:
            out += frozen_prefix
            if value.value is None:
                out.append(0x40)
            else:
                inner(out, value.value)

        def from_value(value: Any) -> Restricted:
            if accepts is not None and value is not None and type(value) not in accepts:
                raise DecodeError(f"{name} must be {source}, got {type(value).__name__}")
            obj = object.__new__(cls)
            obj.value = value
            return obj

        codec.register_encoder(cls, encode)
        REGISTRY[ULong(descriptor)] = from_value
        REGISTRY[Symbol(name)] = from_value
        TYPES.append(cls)

    def __init__(self, value: Any = None) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.value == other.value

    def __hash__(self) -> int:
        return hash((type(self), repr(self.value)))

    def __repr__(self) -> str:
        if self.value is None:
            return f"{type(self).__name__}()"
        return f"{type(self).__name__}({self.value!r})"


def decode(data: bytes | bytearray | memoryview) -> Any:
    """Decode one value, turning every described type the spec defines into its class."""
    return codec.decode(data, registry=REGISTRY)


def decode_from(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[Any, int]:
    """Stream form of :func:`decode`."""
    return codec.decode_from(data, offset, registry=REGISTRY)
