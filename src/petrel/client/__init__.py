"""The messaging client: asyncio first (this package), a blocking facade in :mod:`petrel.blocking`.

    import petrel

    async with await petrel.connect("amqp://localhost") as conn:
        async with await conn.open_sender("orders") as sender:
            await sender.send(petrel.Message({"id": 1}, durable=True))
        async with await conn.open_receiver("orders") as receiver:
            async for delivery in receiver:
                print(delivery.message.body)
                await delivery.accept()

See ``docs/client.md`` for the guide.
"""

from __future__ import annotations

from ..driver import TlsConfig
from .connection import Connection, connect
from .errors import (
    ClientError,
    ConnectionClosed,
    ConnectionLost,
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
    ResourceDeleted,
    ResourceLimitExceeded,
    ResourceLocked,
    Timeout,
    TransactionError,
    TransactionInDoubt,
    Unauthorized,
)
from .options import ConnectOptions
from .receiver import Delivery, Receiver, selector_filter
from .request import Responder
from .sender import Sender
from .state import ConnectionState, Reconnect, StateChange, StateChanges
from .transaction import Transaction

__all__ = [
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
    "StateChanges",
    "Timeout",
    "TlsConfig",
    "Transaction",
    "TransactionError",
    "TransactionInDoubt",
    "Unauthorized",
    "connect",
    "selector_filter",
]
