"""AMQP 1.0 format codes (constructor bytes), from the spec's ``types.xml``."""

from __future__ import annotations

DESCRIBED = 0x00

NULL = 0x40
BOOLEAN = 0x56
TRUE = 0x41
FALSE = 0x42
UBYTE = 0x50
USHORT = 0x60
UINT = 0x70
SMALLUINT = 0x52
UINT0 = 0x43
ULONG = 0x80
SMALLULONG = 0x53
ULONG0 = 0x44
BYTE = 0x51
SHORT = 0x61
INT = 0x71
SMALLINT = 0x54
LONG = 0x81
SMALLLONG = 0x55
FLOAT = 0x72
DOUBLE = 0x82
DECIMAL32 = 0x74
DECIMAL64 = 0x84
DECIMAL128 = 0x94
CHAR = 0x73
TIMESTAMP = 0x83
UUID = 0x98
VBIN8 = 0xA0
VBIN32 = 0xB0
STR8 = 0xA1
STR32 = 0xB1
SYM8 = 0xA3
SYM32 = 0xB3
LIST0 = 0x45
LIST8 = 0xC0
LIST32 = 0xD0
MAP8 = 0xC1
MAP32 = 0xD1
ARRAY8 = 0xE0
ARRAY32 = 0xF0

#: Every constructor the specification defines, with its name.
NAMES: dict[int, str] = {
    DESCRIBED: "described",
    NULL: "null",
    BOOLEAN: "boolean",
    TRUE: "true",
    FALSE: "false",
    UBYTE: "ubyte",
    USHORT: "ushort",
    UINT: "uint",
    SMALLUINT: "smalluint",
    UINT0: "uint0",
    ULONG: "ulong",
    SMALLULONG: "smallulong",
    ULONG0: "ulong0",
    BYTE: "byte",
    SHORT: "short",
    INT: "int",
    SMALLINT: "smallint",
    LONG: "long",
    SMALLLONG: "smalllong",
    FLOAT: "float",
    DOUBLE: "double",
    DECIMAL32: "decimal32",
    DECIMAL64: "decimal64",
    DECIMAL128: "decimal128",
    CHAR: "char",
    TIMESTAMP: "timestamp",
    UUID: "uuid",
    VBIN8: "vbin8",
    VBIN32: "vbin32",
    STR8: "str8-utf8",
    STR32: "str32-utf8",
    SYM8: "sym8",
    SYM32: "sym32",
    LIST0: "list0",
    LIST8: "list8",
    LIST32: "list32",
    MAP8: "map8",
    MAP32: "map32",
    ARRAY8: "array8",
    ARRAY32: "array32",
}
