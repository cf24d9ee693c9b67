"""The JMS header identifiers a selector may name, and building a message's lookup."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Final

from ._base import (
    Lookup,
)

# --- JMS header identifiers ----------------------------------------------------------

JMS_HEADER_IDENTIFIERS: Final = {
    "JMSDeliveryMode": "'PERSISTENT' when header.durable is true, else 'NON_PERSISTENT'",
    "JMSPriority": "header.priority (default 4)",
    "JMSMessageID": "properties.message-id as a JMS string (see jms_message_id)",
    "JMSCorrelationID": "properties.correlation-id as a JMS string (see jms_correlation_id)",
    "JMSTimestamp": "properties.creation-time in ms since the epoch, 0 when absent",
    "JMSExpiration": "properties.absolute-expiry-time in ms since the epoch, 0 when absent",
    "JMSType": "message annotation x-opt-jms-type, else properties.subject",
    "JMSRedelivered": "header.delivery-count > 0",
    "JMSXDeliveryCount": "header.delivery-count + 1",
    "JMSXGroupID": "properties.group-id",
    "JMSXGroupSeq": "properties.group-sequence",
    "JMSXUserID": "properties.user-id read as UTF-8",
}
"""The header identifiers :func:`make_lookup` resolves, and where each comes from (the
AMQP JMS Mapping).  They take precedence over application properties of the same name."""

_JMS_NAMES: Final = frozenset(JMS_HEADER_IDENTIFIERS)
_ID_PREFIX = "ID:"
_ENCODING_PREFIXES = (
    "AMQP_BINARY:",
    "AMQP_UUID:",
    "AMQP_ULONG:",
    "AMQP_STRING:",
    "AMQP_NO_PREFIX:",
)


def _id_string(value: object) -> str | None:
    """A non-string message-id or correlation-id as JMS writes it, with its type prefix."""
    if isinstance(value, uuid.UUID):
        return f"ID:AMQP_UUID:{value}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"ID:AMQP_ULONG:{int(value)}"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"ID:AMQP_BINARY:{bytes(value).hex().upper()}"
    return None


def jms_message_id(message_id: object) -> str | None:
    """The ``JMSMessageID`` a JMS client sees for an AMQP ``message-id`` (AMQP JMS Mapping
    3.2.1.1, as Qpid JMS and Artemis write it): a string that starts with ``ID:`` as it is,
    another string behind ``ID:AMQP_NO_PREFIX:``, a ulong, uuid or binary behind
    ``ID:AMQP_ULONG:``, ``ID:AMQP_UUID:`` or ``ID:AMQP_BINARY:`` (upper-case hex)."""
    if isinstance(message_id, str):
        if not message_id.startswith(_ID_PREFIX):
            return f"ID:AMQP_NO_PREFIX:{message_id}"
        if message_id.startswith(_ENCODING_PREFIXES, len(_ID_PREFIX)):
            return f"ID:AMQP_STRING:{message_id}"
        return str(message_id)
    return _id_string(message_id)


def jms_correlation_id(correlation_id: object) -> str | None:
    """The ``JMSCorrelationID`` for an AMQP ``correlation-id``: like :func:`jms_message_id`,
    except that a string without the ``ID:`` prefix is an application value, kept as it is."""
    if isinstance(correlation_id, str):
        if correlation_id.startswith(_ID_PREFIX) and correlation_id.startswith(
            _ENCODING_PREFIXES, len(_ID_PREFIX)
        ):
            return f"ID:AMQP_STRING:{correlation_id}"
        return str(correlation_id)
    return _id_string(correlation_id)


def make_lookup(
    application_properties: Mapping[str, Any] | None = None,
    *,
    durable: bool = False,
    priority: int = 4,
    message_id: object = None,
    correlation_id: object = None,
    creation_time: int | None = None,
    absolute_expiry_time: int | None = None,
    subject: str | None = None,
    jms_type: str | None = None,
    delivery_count: int = 0,
    group_id: str | None = None,
    group_sequence: int | None = None,
    user_id: bytes | None = None,
) -> Lookup:
    """The identifier lookup for one message, from plain values the caller extracted.

    Identifiers in :data:`JMS_HEADER_IDENTIFIERS` resolve from the keyword arguments
    (the header, properties and the ``x-opt-jms-type`` message annotation); any other
    identifier is an application property, ``None`` when absent.  Times are
    milliseconds since the Unix epoch.  Header values are worked out only when a
    selector asks for them.
    """
    get = (application_properties if application_properties is not None else {}).get

    def lookup(name: str) -> Any:
        if name not in _JMS_NAMES:
            return get(name)
        match name:
            case "JMSDeliveryMode":
                return "PERSISTENT" if durable else "NON_PERSISTENT"
            case "JMSPriority":
                return priority
            case "JMSMessageID":
                return jms_message_id(message_id)
            case "JMSCorrelationID":
                return jms_correlation_id(correlation_id)
            case "JMSTimestamp":
                return creation_time if creation_time is not None else 0
            case "JMSExpiration":
                return absolute_expiry_time if absolute_expiry_time is not None else 0
            case "JMSType":
                return jms_type if jms_type is not None else subject
            case "JMSRedelivered":
                return delivery_count > 0
            case "JMSXDeliveryCount":
                return delivery_count + 1
            case "JMSXGroupID":
                return group_id
            case "JMSXGroupSeq":
                return group_sequence
            case "JMSXUserID":
                return None if user_id is None else bytes(user_id).decode("utf-8", "replace")
        return None  # pragma: no cover - every name in _JMS_NAMES has its case

    return lookup
