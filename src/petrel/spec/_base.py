"""The machinery behind every AMQP composite and restricted described type.

A composite type is declared once, as annotated class attributes built with
:func:`field`::

    class Detach(Composite, descriptor=0x16, name="amqp:detach:list"):
        handle: int = field("handle", mandatory=True)
        closed: bool = field("boolean", default=False)
        error: Error | None = field("error")

From that one table the class gets its constructor (keyword arguments with
the spec's defaults; a ``multiple`` field takes one value or a list and keeps
a tuple), read-only attributes, ``repr``, equality, ``replace()``, an encoder
registered with the codec (exact AMQP field types on the wire, trailing nulls
and defaults omitted, ``multiple`` fields sent as an array, a missing
mandatory field refused) and a decoder registered in :data:`REGISTRY` (absent
and null fields take their defaults, mandatory fields are checked, field
types are checked, fields a later spec version adds are dropped).

The encoder and decoder of each class are generated as straight-line Python
source from its field table (no loop over the table at run time, one call
per field); ``Header.encode_fields(out, values)`` and ``Header.from_fields(list)``
are those functions, usable without building an instance.  Instances are
immutable tuples underneath: building one from a decoded list is a single
``tuple.__new__`` call, which keeps frame decoding cheap.
"""

from __future__ import annotations

import inspect
import operator
import struct
import uuid
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NamedTuple, TypeVar, dataclass_transform

from .. import codec
from ..errors import DecodeError, EncodeError
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

_PRIMITIVE_ENCODERS: dict[str, Callable[[bytearray, Any], None]] = codec.ENCODERS_BY_NAME

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
    codec.encode_map(out, value)


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
        single = codec.encode_value
    if not f.multiple:
        return single
    element_type = _ELEMENT_TYPE.get(prim or "")

    def encode_multiple(out: bytearray, value: Any) -> None:
        if isinstance(value, (list, tuple)):
            if element_type is None:
                codec.encode_list(out, value)
            else:
                items = [v if type(v) is element_type else element_type(v) for v in value]
                codec.encode_array(out, Array(element_type, items))
        elif isinstance(value, Array):
            codec.encode_array(out, value)
        else:
            single(out, value)

    return encode_multiple


def _multiple_normaliser(f: Field) -> Callable[[Any], tuple[Any, ...]]:
    """Turn what a caller gives for a ``multiple`` field (one value, a list, an Array) into a tuple.

    Decoding yields the same tuple whichever form was sent, so a value built
    here compares equal to its decoded self.
    """
    element_type = _ELEMENT_TYPE.get(f.primitive or "")

    def normalise(value: Any) -> tuple[Any, ...]:
        if isinstance(value, Array):
            items: Any = value.items
        elif isinstance(value, (list, tuple)):
            items = value
        else:
            items = (value,)
        if element_type is None:
            return tuple(items)
        return tuple(v if type(v) is element_type else element_type(v) for v in items)

    return normalise


def _multiple_checker(f: Field, owner: str) -> Callable[[Any], tuple[Any, ...]]:
    """Check a decoded ``multiple`` field (one value or an array) and return it as a tuple."""
    prim = f.primitive
    accepts = _ACCEPTS.get(prim) if prim is not None else None
    where = f"{owner}.{f.spec_name}"

    def check_multiple(value: Any) -> tuple[Any, ...]:
        items = value.items if type(value) is Array else (value,)
        if accepts is not None:
            for item in items:
                if type(item) not in accepts:
                    raise DecodeError(f"{where} must be {f.type}, got {type(item).__name__}")
        return tuple(items)

    return check_multiple


_tuple_new = tuple.__new__
_tuple_eq = tuple.__eq__
_tuple_hash = tuple.__hash__

C = TypeVar("C", bound="Composite")

#: Composite classes by the spec's type name (``error``, ``source``, ...), for field type checks.
_BY_TYPE_NAME: dict[str, type[Composite]] = {}


@dataclass_transform(frozen_default=True, field_specifiers=(field,), kw_only_default=True)
class Composite(tuple):  # type: ignore[type-arg]
    """Base of every list-encoded composite type of the spec (performatives, sections, ...)."""

    __slots__ = ()

    DESCRIPTOR: ClassVar[int]
    """The numeric descriptor (the spec's domain 0 code)."""
    NAME: ClassVar[str]
    """The symbolic descriptor, e.g. ``amqp:open:list``."""
    TYPE_NAME: ClassVar[str]
    """The spec's name of the type, e.g. ``open``."""
    FIELDS: ClassVar[tuple[Field, ...]]
    """The field table, in wire order."""

    def __init_subclass__(cls, *, descriptor: int, name: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.DESCRIPTOR = descriptor
        cls.NAME = name
        cls.TYPE_NAME = name.removeprefix("amqp:").removesuffix(":list")
        annotations = inspect.get_annotations(cls)
        fields: list[Field] = []
        for attr in annotations:
            spec = cls.__dict__.get(attr)
            if not isinstance(spec, Field):
                continue
            fields.append(spec._replace(name=attr))
        cls.FIELDS = tuple(fields)
        for index, f in enumerate(fields):
            setattr(cls, f.name, _field_reader(index, f"``{f.spec_name}`` ({f.type})"))
        _build_constructor(cls)
        _build_codec(cls)
        _BY_TYPE_NAME[cls.TYPE_NAME] = cls
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

    def __copy__(self: C) -> C:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (_tuple_new, (type(self), tuple(self)))

    def replace(self: C, **changes: Any) -> C:
        """A copy with some fields changed, like :func:`dataclasses.replace`."""
        values = list(self)
        index = self._INDEX
        normalisers = self._NORMALISERS
        for key, value in changes.items():
            i = index.get(key)
            if i is None:
                raise TypeError(f"{type(self).__name__} has no field {key!r}")
            if value is not None and i in normalisers:
                value = normalisers[i](value)
            values[i] = value
        return _tuple_new(type(self), values)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict of Python name to value."""
        return {f.name: v for f, v in zip(self.FIELDS, self, strict=True)}

    _INDEX: ClassVar[dict[str, int]]
    _NORMALISERS: ClassVar[dict[int, Callable[[Any], tuple[Any, ...]]]]
    _PREFIX: ClassVar[bytes]

    @classmethod
    def from_fields(cls: type[C], values: Any) -> C:
        """Build an instance from a decoded list of field values (defaults, checks).

        ``values`` must be a ``list`` (it is consumed: the instance may reuse
        it); raises :class:`~petrel.errors.DecodeError` when a mandatory field
        is missing or a field has the wrong type.
        """
        raise NotImplementedError  # replaced per class by _build_codec

    @staticmethod
    def encode_fields(out: bytearray, values: Sequence[Any]) -> None:
        """Append the encoding of this type with these field values, without an instance.

        ``values`` is any sequence of exactly ``len(FIELDS)`` values in wire
        order (an instance is one).  This is the encoder the codec uses for
        instances; a caller on a hot path may pass a plain tuple instead of
        building the object first.
        """
        raise NotImplementedError  # replaced per class by _build_codec


def _field_reader(index: int, doc: str) -> Any:
    """The read-only attribute for field ``index`` of a performative (a tuple): the
    descriptor ``collections.namedtuple`` uses, a direct index in C, where CPython has
    it (about 40% cheaper per read than ``property(itemgetter)``, and the engine reads
    a transfer's fields on every message); else the property."""
    if _tuplegetter is not None:
        return _tuplegetter(index, doc)
    return property(operator.itemgetter(index), doc=doc)


try:
    from _collections import _tuplegetter  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - not CPython
    _tuplegetter = None


def _build_constructor(cls: type[Composite]) -> None:
    cls._INDEX = {f.name: i for i, f in enumerate(cls.FIELDS)}
    cls._NORMALISERS = {i: _multiple_normaliser(f) for i, f in enumerate(cls.FIELDS) if f.multiple}
    params = []
    for f in cls.FIELDS:
        if f.mandatory:
            params.append(f.name)
        else:
            params.append(f"{f.name}=_d_{f.name}")
    names = ", ".join(f.name for f in cls.FIELDS)
    trailing = "," if len(cls.FIELDS) == 1 else ""
    signature = ", ".join(params)
    lines = [f"def __new__(cls{', *, ' if params else ''}{signature}):"]
    for i, f in enumerate(cls.FIELDS):
        if f.multiple:
            lines.append(f"    if {f.name} is not None:")
            lines.append(f"        {f.name} = _n_{i}({f.name})")
    lines.append(f"    return _tuple_new(cls, ({names}{trailing}))")
    namespace: dict[str, Any] = {"_tuple_new": _tuple_new}
    for i, f in enumerate(cls.FIELDS):
        namespace[f"_d_{f.name}"] = f.default
        if f.multiple:
            namespace[f"_n_{i}"] = cls._NORMALISERS[i]
    exec("\n".join(lines) + "\n", namespace)
    new = namespace["__new__"]
    new.__qualname__ = f"{cls.__qualname__}.__new__"
    cls.__new__ = new  # type: ignore[method-assign]


def _encoder_source(cls: type[Composite], ns: dict[str, Any]) -> str:
    """Straight-line source of the encoder of ``cls`` (see :meth:`Composite.encode_fields`).

    The list header is reserved in its 3-byte ``list8`` form and widened to
    ``list32`` only when the fields turn out not to fit, which is rare.
    """
    fields = cls.FIELDS
    count = len(fields)
    ns["_PREFIX"] = cls._PREFIX
    ns["_EMPTY"] = cls._PREFIX + b"\x45"
    ns["_HEAD8"] = b"\xc0\x00\x00"
    ns["_pack32"] = _PACK_LIST32
    ns["_EncodeError"] = EncodeError
    if not count:
        return "def encode(out, value):\n    out += _EMPTY\n"
    names = [f"v{i}" for i in range(count)]
    lines = ["def encode(out, value):"]
    lines.append(f"    {', '.join(names)}{',' if count == 1 else ''} = value")
    # How many fields to send: trailing nulls and defaults are left off, but
    # never a mandatory field (a missing one is refused below).
    last_mandatory = max((i for i, f in enumerate(fields) if f.mandatory), default=-1)
    keyword = "if"
    for i in reversed(range(last_mandatory + 1, count)):
        f = fields[i]
        cond = f"v{i} is not None"
        if f.default is not None:
            ns[f"_d{i}"] = f.default
            cond += f" and v{i} != _d{i}"
        lines.append(f"    {keyword} {cond}:")
        lines.append(f"        n = {i + 1}")
        keyword = "elif"
    if last_mandatory < 0:
        lines.append("    else:")
        lines.append("        out += _EMPTY")
        lines.append("        return")
    elif keyword == "if":
        lines.append(f"    n = {last_mandatory + 1}")
    else:
        lines.append("    else:")
        lines.append(f"        n = {last_mandatory + 1}")
    lines.append("    out += _PREFIX")
    lines.append("    start = len(out)")
    lines.append("    out += _HEAD8")
    indent = "    "
    for i, f in enumerate(fields):
        if i > max(last_mandatory, 0):
            lines.append(f"{indent}if n > {i}:")
            indent += "    "
        lines.append(f"{indent}if v{i} is None:")
        if f.mandatory:
            ns[f"_m{i}"] = f"{cls.NAME} field {f.spec_name} is mandatory"
            lines.append(f"{indent}    raise _EncodeError(_m{i})")
        else:
            lines.append(f"{indent}    out.append(0x40)")
        if f.primitive == "boolean" and not f.multiple:
            lines.append(f"{indent}else:")
            lines.append(f"{indent}    out.append(0x41 if v{i} else 0x42)")
        else:
            ns[f"_e{i}"] = _field_encoder(f)
            lines.append(f"{indent}else:")
            lines.append(f"{indent}    _e{i}(out, v{i})")
    lines.append("    size = len(out) - start - 3")
    lines.append("    if size < 255:")
    lines.append("        out[start + 1] = size + 1")
    lines.append("        out[start + 2] = n")
    lines.append("    else:")
    lines.append("        out[start : start + 3] = _pack32(0xD0, size + 4, n)")
    return "\n".join(lines) + "\n"


def _decoder_source(cls: type[Composite], ns: dict[str, Any]) -> str:
    """Straight-line source of ``from_fields`` for ``cls``: pad, check types, fill defaults."""
    fields = cls.FIELDS
    count = len(fields)
    ns["_cls"] = cls
    ns["_DecodeError"] = DecodeError
    ns["_BY_TYPE_NAME"] = _BY_TYPE_NAME
    ns["_bad"] = _bad_field
    ns["_NAME"] = cls.NAME
    lines = ["def from_fields(values):"]
    lines.append("    if type(values) is not list:")
    lines.append(
        "        raise _DecodeError(f'{_NAME} must be a list, got {type(values).__name__}')"
    )
    if not count:
        ns["_SINGLETON"] = _tuple_new(cls, ())
        lines.append("    return _SINGLETON")
        return "\n".join(lines) + "\n"
    ns["_PAD"] = [[None] * (count - n) for n in range(count)]
    lines.append("    n = len(values)")
    lines.append(f"    if n < {count}:")
    lines.append("        values += _PAD[n]")
    lines.append(f"    elif n > {count}:")
    lines.append("        # Fields added by a later version of the spec: keep what we know.")
    lines.append(f"        del values[{count}:]")
    names = [f"v{i}" for i in range(count)]
    lines.append(f"    {', '.join(names)}{',' if count == 1 else ''} = values")
    for i, f in enumerate(fields):
        v = f"v{i}"
        ns[f"_f{i}"] = f
        prim = f.primitive
        accepts = _ACCEPTS.get(prim) if prim is not None else None
        if f.multiple:
            ns[f"_c{i}"] = _multiple_checker(f, cls.NAME)
            check = f"_c{i}({v})"
            test = None
        elif accepts is not None:
            check = None
            if len(accepts) == 1:
                ns[f"_t{i}"] = next(iter(accepts))
                test = f"type({v}) is not _t{i}"
            else:
                ns[f"_t{i}"] = accepts
                test = f"type({v}) not in _t{i}"
        elif f.type != "*":
            # A composite type of the spec (``error``), possibly declared further down.
            check = None
            test = f"type({v}) is not _BY_TYPE_NAME[{f.type!r}]"
        else:
            check = test = None
        if f.mandatory:
            lines.append(f"    if {v} is None:")
            lines.append(
                f"        raise _DecodeError(f'{{_NAME}} field {f.spec_name} is mandatory')"
            )
        elif f.default is not None:
            ns[f"_d{i}"] = f.default
            lines.append(f"    if {v} is None:")
            lines.append(f"        {v} = _d{i}")
        elif check is not None or test is not None:
            lines.append(f"    if {v} is None:")
            lines.append("        pass")
        if check is not None:
            lines.append("    else:")
            lines.append(f"        {v} = {check}")
        elif test is not None:
            lines.append(f"    elif {test}:")
            lines.append(f"        raise _bad(_NAME, _f{i}, {v})")
    lines.append(f"    return _tuple_new(_cls, ({', '.join(names)}{',' if count == 1 else ''}))")
    return "\n".join(lines) + "\n"


def _bad_field(owner: str, f: Field, value: Any) -> DecodeError:
    return DecodeError(f"{owner}.{f.spec_name} must be {f.type}, got {type(value).__name__}")


_PACK_LIST32 = struct.Struct(">BII").pack


def _build_codec(cls: type[Composite]) -> None:
    prefix = bytearray()
    codec.encode_descriptor(prefix, cls.DESCRIPTOR)
    cls._PREFIX = bytes(prefix)
    namespace: dict[str, Any] = {"_tuple_new": _tuple_new}
    source = _encoder_source(cls, namespace) + _decoder_source(cls, namespace)
    exec(compile(source, f"<petrel.spec {cls.__name__}>", "exec"), namespace)
    encode = namespace["encode"]
    from_fields = namespace["from_fields"]
    encode.__qualname__ = f"{cls.__qualname__}.encode_fields"
    from_fields.__qualname__ = f"{cls.__qualname__}.from_fields"
    cls.encode_fields = staticmethod(encode)  # type: ignore[method-assign]
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
    #: The Python types a decoded ``value`` may have besides ``None`` (``None``: any).
    ACCEPTS: ClassVar[frozenset[type] | None]
    _PREFIX: ClassVar[bytes]

    @staticmethod
    def encode_value(out: bytearray, value: Any) -> None:
        """Append the encoding of this type around ``value``, without building an instance."""
        raise NotImplementedError  # replaced per class in __init_subclass__

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
            inner = codec.encode_value
        accepts = _ACCEPTS.get(source)
        cls.ACCEPTS = accepts

        def encode_value(out: bytearray, value: Any) -> None:
            out += frozen_prefix
            if value is None:
                out.append(0x40)
            else:
                inner(out, value)

        def encode(out: bytearray, value: Restricted) -> None:
            encode_value(out, value.value)

        def from_value(value: Any) -> Restricted:
            if accepts is not None and value is not None and type(value) not in accepts:
                raise DecodeError(f"{name} must be {source}, got {type(value).__name__}")
            obj = object.__new__(cls)
            obj.value = value
            return obj

        encode_value.__qualname__ = f"{cls.__qualname__}.encode_value"
        cls.encode_value = staticmethod(encode_value)  # type: ignore[method-assign]
        cls._PREFIX = frozen_prefix
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
