"""Petrel's exception hierarchy.

Errors say whose fault they are.  A ``Local*`` error means this side misused
the API or built something that cannot go on the wire; a ``Remote*`` error
means the peer broke the protocol.  Every error that maps onto an AMQP error
condition carries the condition, a readable description and the optional info
map, so the same object can be sent to the peer in a ``close``, ``end`` or
``detach``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AmqpError",
    "Condition",
    "DecodeError",
    "EncodeError",
    "FramingError",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
]


class Condition:
    """The error conditions the AMQP 1.0 specification defines (part 2.8.15-2.8.18)."""

    # amqp-error
    INTERNAL_ERROR = "amqp:internal-error"
    NOT_FOUND = "amqp:not-found"
    UNAUTHORIZED_ACCESS = "amqp:unauthorized-access"
    DECODE_ERROR = "amqp:decode-error"
    RESOURCE_LIMIT_EXCEEDED = "amqp:resource-limit-exceeded"
    NOT_ALLOWED = "amqp:not-allowed"
    INVALID_FIELD = "amqp:invalid-field"
    NOT_IMPLEMENTED = "amqp:not-implemented"
    RESOURCE_LOCKED = "amqp:resource-locked"
    PRECONDITION_FAILED = "amqp:precondition-failed"
    RESOURCE_DELETED = "amqp:resource-deleted"
    ILLEGAL_STATE = "amqp:illegal-state"
    FRAME_SIZE_TOO_SMALL = "amqp:frame-size-too-small"
    # connection-error
    CONNECTION_FORCED = "amqp:connection:forced"
    FRAMING_ERROR = "amqp:connection:framing-error"
    REDIRECT = "amqp:connection:redirect"
    # session-error
    WINDOW_VIOLATION = "amqp:session:window-violation"
    ERRANT_LINK = "amqp:session:errant-link"
    HANDLE_IN_USE = "amqp:session:handle-in-use"
    UNATTACHED_HANDLE = "amqp:session:unattached-handle"
    # link-error
    DETACH_FORCED = "amqp:link:detach-forced"
    TRANSFER_LIMIT_EXCEEDED = "amqp:link:transfer-limit-exceeded"
    MESSAGE_SIZE_EXCEEDED = "amqp:link:message-size-exceeded"
    LINK_REDIRECT = "amqp:link:redirect"
    STOLEN = "amqp:link:stolen"
    # transaction-error
    TRANSACTION_UNKNOWN_ID = "amqp:transaction:unknown-id"
    TRANSACTION_ROLLBACK = "amqp:transaction:rollback"
    TRANSACTION_TIMEOUT = "amqp:transaction:timeout"


class AmqpError(Exception):
    """Base of every Petrel error.

    ``condition`` is an AMQP error condition symbol (see :class:`Condition`),
    ``description`` a readable explanation, ``info`` the optional map the spec
    allows alongside them.
    """

    condition: str = Condition.INTERNAL_ERROR

    def __init__(
        self,
        description: str = "",
        *,
        condition: str | None = None,
        info: dict[Any, Any] | None = None,
    ) -> None:
        super().__init__(description)
        self.description = description
        if condition is not None:
            self.condition = condition
        self.info = info

    def __str__(self) -> str:
        if self.description:
            return f"{self.condition}: {self.description}"
        return self.condition


class EncodeError(AmqpError, ValueError):
    """A value cannot be encoded as AMQP (wrong type, out of range, not ASCII, ...)."""

    condition = Condition.INTERNAL_ERROR


class DecodeError(AmqpError, ValueError):
    """Bytes are not a valid AMQP encoding; the description says what and at which offset."""

    condition = Condition.DECODE_ERROR

    def __init__(
        self,
        description: str = "",
        *,
        offset: int | None = None,
        condition: str | None = None,
        info: dict[Any, Any] | None = None,
    ) -> None:
        if offset is not None:
            description = f"{description} (at offset {offset})"
        super().__init__(description, condition=condition, info=info)
        self.offset = offset


class ProtocolError(AmqpError):
    """Somebody broke the AMQP protocol; see the two subclasses for whom."""


class LocalProtocolError(ProtocolError):
    """This side asked for something the protocol does not allow (an API misuse)."""

    condition = Condition.ILLEGAL_STATE


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol; ``condition`` is what the engine answers with."""


class FramingError(RemoteProtocolError):
    """A frame could not be read: bad size, bad type or a broken frame header."""

    condition = Condition.FRAMING_ERROR
