"""AMQP 1.0 part 3, messaging: message sections, delivery states, source and target.

The restricted section types (annotations, application-properties, data,
amqp-sequence, amqp-value, footer) wrap one ``value``; the list-based ones
(header, properties, the outcomes, source, target, the lifetime policies) are
composites with named fields.
"""

from __future__ import annotations

from typing import Any

from ..types import Symbol, Timestamp
from ._base import Composite, Restricted, field
from .transport import Error

__all__ = [
    "OUTCOMES",
    "SECTIONS",
    "Accepted",
    "AmqpSequence",
    "AmqpValue",
    "ApplicationProperties",
    "Data",
    "DeleteOnClose",
    "DeleteOnNoLinks",
    "DeleteOnNoLinksOrMessages",
    "DeleteOnNoMessages",
    "DeliveryAnnotations",
    "DistributionMode",
    "ExpiryPolicy",
    "Footer",
    "Header",
    "MessageAnnotations",
    "Modified",
    "Properties",
    "Received",
    "Rejected",
    "Released",
    "Source",
    "Target",
    "TerminusDurability",
]

#: The message format code of a standard AMQP message (``message-format`` 0).
MESSAGE_FORMAT = 0


class TerminusDurability:
    """``terminus-durability``."""

    NONE = 0
    CONFIGURATION = 1
    UNSETTLED_STATE = 2


class ExpiryPolicy:
    """``terminus-expiry-policy``."""

    LINK_DETACH = Symbol("link-detach")
    SESSION_END = Symbol("session-end")
    CONNECTION_CLOSE = Symbol("connection-close")
    NEVER = Symbol("never")


class DistributionMode:
    """``std-dist-mode``."""

    MOVE = Symbol("move")
    COPY = Symbol("copy")


class DeliveryAnnotations(
    Restricted, descriptor=0x71, name="amqp:delivery-annotations:map", source="annotations"
):
    """``delivery-annotations``: annotations for the next hop only."""

    __slots__ = ()


class MessageAnnotations(
    Restricted, descriptor=0x72, name="amqp:message-annotations:map", source="annotations"
):
    """``message-annotations``: annotations that travel with the message."""

    __slots__ = ()


class ApplicationProperties(
    Restricted, descriptor=0x74, name="amqp:application-properties:map", source="map"
):
    """``application-properties``: string-keyed properties for the application."""

    __slots__ = ()


class Data(Restricted, descriptor=0x75, name="amqp:data:binary", source="binary"):
    """``data``: an opaque binary body section."""

    __slots__ = ()


class AmqpSequence(Restricted, descriptor=0x76, name="amqp:amqp-sequence:list", source="list"):
    """``amqp-sequence``: a body section holding a list."""

    __slots__ = ()


class AmqpValue(Restricted, descriptor=0x77, name="amqp:amqp-value:*", source="*"):
    """``amqp-value``: a body section holding any one AMQP value."""

    __slots__ = ()


class Footer(Restricted, descriptor=0x78, name="amqp:footer:map", source="annotations"):
    """``footer``: annotations computed over the bare message (hashes, signatures)."""

    __slots__ = ()


class Header(Composite, descriptor=0x70, name="amqp:header:list"):
    """The ``header`` section (part 3.2.1): durability, priority, ttl and delivery count."""

    durable: bool = field("boolean", default=False)
    priority: int = field("ubyte", default=4)
    ttl: int | None = field("milliseconds", default=None)
    first_acquirer: bool = field("boolean", default=False)
    delivery_count: int = field("uint", default=0)


class Properties(Composite, descriptor=0x73, name="amqp:properties:list"):
    """The ``properties`` section (part 3.2.4): ids, addresses, content type, times."""

    message_id: Any = field("*", requires="message-id", default=None)
    user_id: bytes | None = field("binary", default=None)
    to: Any = field("*", requires="address", default=None)
    subject: str | None = field("string", default=None)
    reply_to: Any = field("*", requires="address", default=None)
    correlation_id: Any = field("*", requires="message-id", default=None)
    content_type: Symbol | None = field("symbol", default=None)
    content_encoding: Symbol | None = field("symbol", default=None)
    absolute_expiry_time: Timestamp | None = field("timestamp", default=None)
    creation_time: Timestamp | None = field("timestamp", default=None)
    group_id: str | None = field("string", default=None)
    group_sequence: int | None = field("sequence-no", default=None)
    reply_to_group_id: str | None = field("string", default=None)


class Received(Composite, descriptor=0x23, name="amqp:received:list"):
    """The ``received`` delivery state (part 3.4.1): how much arrived, to resume."""

    section_number: int = field("uint", mandatory=True)
    section_offset: int = field("ulong", mandatory=True)


class Accepted(Composite, descriptor=0x24, name="amqp:accepted:list"):
    """The ``accepted`` outcome (part 3.4.2): the receiver took the message."""


class Rejected(Composite, descriptor=0x25, name="amqp:rejected:list"):
    """The ``rejected`` outcome (part 3.4.3): invalid, not processed; ``error`` says why."""

    error: Error | None = field("error", default=None)


class Released(Composite, descriptor=0x26, name="amqp:released:list"):
    """The ``released`` outcome (part 3.4.4): not processed; another may take it."""


class Modified(Composite, descriptor=0x27, name="amqp:modified:list"):
    """The ``modified`` outcome (part 3.4.5): released, with changes or a failure counted."""

    delivery_failed: bool | None = field("boolean", default=None)
    undeliverable_here: bool | None = field("boolean", default=None)
    message_annotations: dict[Any, Any] | None = field("fields", default=None)


class Source(Composite, descriptor=0x28, name="amqp:source:list"):
    """The ``source`` terminus (part 3.5.3): where a link's messages come from, and how."""

    address: Any = field("*", requires="address", default=None)
    durable: int = field("terminus-durability", default=0)
    expiry_policy: Symbol = field("terminus-expiry-policy", default=Symbol("session-end"))
    timeout: int = field("seconds", default=0)
    dynamic: bool = field("boolean", default=False)
    dynamic_node_properties: dict[Any, Any] | None = field("node-properties", default=None)
    distribution_mode: Symbol | None = field("symbol", requires="distribution-mode", default=None)
    filter: dict[Any, Any] | None = field("filter-set", default=None)
    default_outcome: Any = field("*", requires="outcome", default=None)
    outcomes: tuple[Symbol, ...] | None = field("symbol", multiple=True, default=None)
    capabilities: tuple[Symbol, ...] | None = field("symbol", multiple=True, default=None)


class Target(Composite, descriptor=0x29, name="amqp:target:list"):
    """The ``target`` terminus (part 3.5.4): where a link's messages go."""

    address: Any = field("*", requires="address", default=None)
    durable: int = field("terminus-durability", default=0)
    expiry_policy: Symbol = field("terminus-expiry-policy", default=Symbol("session-end"))
    timeout: int = field("seconds", default=0)
    dynamic: bool = field("boolean", default=False)
    dynamic_node_properties: dict[Any, Any] | None = field("node-properties", default=None)
    capabilities: tuple[Symbol, ...] | None = field("symbol", multiple=True, default=None)


class DeleteOnClose(Composite, descriptor=0x2B, name="amqp:delete-on-close:list"):
    """The ``delete-on-close`` lifetime policy (part 3.5.10) of a dynamic node."""


class DeleteOnNoLinks(Composite, descriptor=0x2C, name="amqp:delete-on-no-links:list"):
    """The ``delete-on-no-links`` lifetime policy (part 3.5.11) of a dynamic node."""


class DeleteOnNoMessages(Composite, descriptor=0x2D, name="amqp:delete-on-no-messages:list"):
    """The ``delete-on-no-messages`` lifetime policy (part 3.5.12) of a dynamic node."""


class DeleteOnNoLinksOrMessages(
    Composite, descriptor=0x2E, name="amqp:delete-on-no-links-or-messages:list"
):
    """The ``delete-on-no-links-or-messages`` lifetime policy (part 3.5.13) of a dynamic node."""


#: The section classes, by descriptor code.
SECTIONS: dict[int, type[Any]] = {
    cls.DESCRIPTOR: cls
    for cls in (
        Header,
        DeliveryAnnotations,
        MessageAnnotations,
        Properties,
        ApplicationProperties,
        Data,
        AmqpSequence,
        AmqpValue,
        Footer,
    )
}

#: The outcome classes, by descriptor code.
OUTCOMES: dict[int, type[Composite]] = {
    cls.DESCRIPTOR: cls for cls in (Accepted, Rejected, Released, Modified)
}
