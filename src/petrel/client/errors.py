"""The client's exceptions: one hierarchy, mapped from AMQP error conditions.

Every exception the client raises is a :class:`ClientError` (itself a
:class:`~petrel.errors.AmqpError`), and carries the AMQP ``condition``, the
peer's ``description`` and its ``info`` map when the peer sent them::

    ClientError
    ├── NotFound                   amqp:not-found
    ├── Unauthorized               amqp:unauthorized-access (and SASL failures)
    ├── ResourceLimitExceeded      amqp:resource-limit-exceeded
    ├── NotAllowed                 amqp:not-allowed
    ├── ResourceLocked             amqp:resource-locked
    ├── ResourceDeleted            amqp:resource-deleted
    ├── PreconditionFailed         amqp:precondition-failed
    ├── InvalidField               amqp:invalid-field
    ├── NotImplementedByPeer       amqp:not-implemented
    ├── MessageSizeExceeded        amqp:link:message-size-exceeded
    ├── ConnectionClosed           the connection is over (closed by the peer, or by us)
    │   └── ConnectionLost         the transport went away (also a builtin ConnectionError)
    ├── LinkClosed                 the peer detached a link (detach-forced, stolen, ...)
    ├── DeliveryError              the peer did not accept a message
    │   ├── MessageRejected        amqp:rejected (with the peer's error)
    │   ├── MessageReleased        amqp:released
    │   └── MessageModified        amqp:modified
    ├── TransactionError           amqp:transaction:rollback, :timeout, :unknown-id
    └── Timeout                    an operation took longer than asked (also a TimeoutError)

Conditions name what went wrong, whatever the endpoint: a receiver attached
to a queue that does not exist raises :class:`NotFound`, and so does a
connection the peer closes with ``amqp:not-found``.
"""

from __future__ import annotations

from typing import Any

from ..errors import AmqpError, Condition

__all__ = [
    "ClientError",
    "ConnectionClosed",
    "ConnectionLost",
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
    "ResourceDeleted",
    "ResourceLimitExceeded",
    "ResourceLocked",
    "Timeout",
    "TransactionError",
    "TransactionInDoubt",
    "Unauthorized",
    "error_from",
]


class ClientError(AmqpError):
    """Base of every error the messaging client raises."""


class NotFound(ClientError):
    """The peer has no node (queue, topic) at that address."""

    condition = Condition.NOT_FOUND


class Unauthorized(ClientError):
    """Authentication failed, or the user may not do this."""

    condition = Condition.UNAUTHORIZED_ACCESS


class ResourceLimitExceeded(ClientError):
    """A limit was hit: too many connections or links, a full queue, an idle timeout."""

    condition = Condition.RESOURCE_LIMIT_EXCEEDED


class NotAllowed(ClientError):
    """The peer does not allow this operation."""

    condition = Condition.NOT_ALLOWED


class ResourceLocked(ClientError):
    """The resource is in use by someone else (an exclusive consumer, say)."""

    condition = Condition.RESOURCE_LOCKED


class ResourceDeleted(ClientError):
    """The node the link was attached to was deleted."""

    condition = Condition.RESOURCE_DELETED


class PreconditionFailed(ClientError):
    """The peer refused because a precondition was not met."""

    condition = Condition.PRECONDITION_FAILED


class InvalidField(ClientError):
    """A field of what we sent was invalid."""

    condition = Condition.INVALID_FIELD


class NotImplementedByPeer(ClientError):
    """The peer does not implement what was asked (a capability, a filter, ...)."""

    condition = Condition.NOT_IMPLEMENTED


class MessageSizeExceeded(ClientError):
    """A message is larger than the peer's ``max-message-size``."""

    condition = Condition.MESSAGE_SIZE_EXCEEDED


class ConnectionClosed(ClientError):
    """The connection is over: the peer closed it, or the application did.

    ``condition`` and ``description`` are the peer's when it closed with an error.
    """

    condition = Condition.CONNECTION_FORCED


class ConnectionLost(ConnectionClosed, ConnectionError):
    """The transport went away (and reconnecting was off, or gave up).

    Also a builtin :class:`ConnectionError`, so ``except ConnectionError``
    catches it.
    """

    condition = Condition.FRAMING_ERROR


class LinkClosed(ClientError):
    """The peer detached a link (``detach-forced``, ``stolen``, ``redirect``, ...)."""

    condition = Condition.DETACH_FORCED


class DeliveryError(ClientError):
    """The peer settled a message with an outcome other than ``accepted``.

    ``outcome`` is the peer's delivery state (``Rejected``, ``Released``, ``Modified``).
    """

    def __init__(
        self,
        description: str = "",
        *,
        condition: str | None = None,
        info: dict[Any, Any] | None = None,
        outcome: Any = None,
    ) -> None:
        super().__init__(description, condition=condition, info=info)
        self.outcome = outcome


class MessageRejected(DeliveryError):
    """The peer rejected the message; ``condition``/``description`` are its error's."""

    condition = "amqp:rejected"


class MessageReleased(DeliveryError):
    """The peer released the message: it was not processed and may be sent again."""

    condition = "amqp:released"


class MessageModified(DeliveryError):
    """The peer settled the message as ``modified`` (not processed; see ``outcome``)."""

    condition = "amqp:modified"


class TransactionError(ClientError):
    """A transaction did not commit: the peer rolled it back (``condition`` says why:
    ``amqp:transaction:rollback``, ``amqp:transaction:timeout``,
    ``amqp:transaction:unknown-id``), or it was lost with its connection.  Nothing done
    in it took effect (except for :class:`TransactionInDoubt`)."""

    condition = Condition.TRANSACTION_ROLLBACK


class TransactionInDoubt(TransactionError):
    """The connection was lost while a commit was on its way: the peer may have applied
    the transaction (and the answer was lost) or not.  Only the application can tell
    (by looking for what it sent, say)."""

    condition = "petrel:transaction:in-doubt"


class Timeout(ClientError, TimeoutError):
    """An operation did not finish within its timeout.

    Also a builtin :class:`TimeoutError`.
    """

    condition = "petrel:timeout"


_BY_CONDITION: dict[str, type[ClientError]] = {
    cls.condition: cls
    for cls in (
        NotFound,
        Unauthorized,
        ResourceLimitExceeded,
        NotAllowed,
        ResourceLocked,
        ResourceDeleted,
        PreconditionFailed,
        InvalidField,
        NotImplementedByPeer,
        MessageSizeExceeded,
    )
}


def error_from(
    error: Any,
    default: type[ClientError] = ClientError,
    description: str = "",
) -> ClientError:
    """The exception for an AMQP ``error`` (a spec ``Error``, an AmqpError or ``None``).

    The condition picks the class when it is one :data:`_BY_CONDITION` knows;
    otherwise ``default`` is used (``ConnectionClosed``, ``LinkClosed``, ...),
    keeping the peer's condition.  ``description`` is used when the error has none.
    """
    if isinstance(error, ClientError):
        return error
    if error is None:
        return default(description)
    condition = getattr(error, "condition", None)
    condition = str(condition) if condition is not None else None
    text = getattr(error, "description", None) or description
    info = getattr(error, "info", None)
    cls = _BY_CONDITION.get(condition or "", default)
    if cls is default or condition is None:
        return default(text, condition=condition, info=info)
    return cls(text, info=info)
