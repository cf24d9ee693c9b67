"""Petrel: a complete AMQP 1.0 messaging suite in Python.

The messaging client (``petrel.connect``, ``petrel.Connection``, ...) and the
blocking facade (``petrel.blocking``) are imported on first use, so
``import petrel`` stays cheap for code that needs only the types or the codec.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# First: with PETREL_PURE_PYTHON=1 the compiled modules' sources must win before any is imported.
from . import _accel  # noqa: F401
from ._version import __version__
from .errors import AmqpError, DecodeError, EncodeError
from .message import Message
from .types import (
    Array,
    Byte,
    Char,
    Decimal32,
    Decimal64,
    Decimal128,
    Described,
    Float,
    Int,
    Long,
    Short,
    Symbol,
    Timestamp,
    UByte,
    UInt,
    ULong,
    UShort,
)

if TYPE_CHECKING:
    from . import blocking
    from .client import (
        ClientError,
        Connection,
        ConnectionClosed,
        ConnectionLost,
        ConnectionState,
        ConnectOptions,
        Delivery,
        DeliveryError,
        InvalidField,
        LinkClosed,
        MessageModified,
        MessageRejected,
        MessageReleased,
        MessageSizeExceeded,
        NotAllowed,
        NotFound,
        NotImplementedByPeer,
        PreconditionFailed,
        Receiver,
        Reconnect,
        ResourceDeleted,
        ResourceLimitExceeded,
        ResourceLocked,
        Responder,
        Sender,
        StateChange,
        Timeout,
        TlsConfig,
        Transaction,
        TransactionError,
        TransactionInDoubt,
        Unauthorized,
        connect,
    )

#: Names imported from :mod:`petrel.client` on first use.
_CLIENT_NAMES = frozenset(
    {
        "ClientError",
        "ConnectOptions",
        "Connection",
        "ConnectionClosed",
        "ConnectionLost",
        "ConnectionState",
        "Delivery",
        "DeliveryError",
        "InvalidField",
        "LinkClosed",
        "MessageModified",
        "MessageRejected",
        "MessageReleased",
        "MessageSizeExceeded",
        "NotAllowed",
        "NotFound",
        "NotImplementedByPeer",
        "PreconditionFailed",
        "Receiver",
        "Reconnect",
        "ResourceDeleted",
        "ResourceLimitExceeded",
        "ResourceLocked",
        "Responder",
        "Sender",
        "StateChange",
        "Timeout",
        "TlsConfig",
        "Transaction",
        "TransactionError",
        "TransactionInDoubt",
        "Unauthorized",
        "connect",
    }
)


def __getattr__(name: str) -> Any:
    if name in _CLIENT_NAMES:
        value = getattr(importlib.import_module(".client", __name__), name)
    elif name == "blocking":
        value = importlib.import_module(".blocking", __name__)
    else:
        raise AttributeError(f"module 'petrel' has no attribute {name!r}")
    globals()[name] = value
    return value


__all__ = [
    "AmqpError",
    "Array",
    "Byte",
    "Char",
    "ClientError",
    "ConnectOptions",
    "Connection",
    "ConnectionClosed",
    "ConnectionLost",
    "ConnectionState",
    "Decimal32",
    "Decimal64",
    "Decimal128",
    "DecodeError",
    "Delivery",
    "DeliveryError",
    "Described",
    "EncodeError",
    "Float",
    "Int",
    "InvalidField",
    "LinkClosed",
    "Long",
    "Message",
    "MessageModified",
    "MessageRejected",
    "MessageReleased",
    "MessageSizeExceeded",
    "NotAllowed",
    "NotFound",
    "NotImplementedByPeer",
    "PreconditionFailed",
    "Receiver",
    "Reconnect",
    "ResourceDeleted",
    "ResourceLimitExceeded",
    "ResourceLocked",
    "Responder",
    "Sender",
    "Short",
    "StateChange",
    "Symbol",
    "Timeout",
    "Timestamp",
    "TlsConfig",
    "Transaction",
    "TransactionError",
    "TransactionInDoubt",
    "UByte",
    "UInt",
    "ULong",
    "UShort",
    "Unauthorized",
    "__version__",
    "blocking",
    "connect",
]
