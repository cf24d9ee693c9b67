"""What a JMS selector sees of a message in a queue: the lookup over its encoded sections.

Lazy, so that a selector pays only for what it names (and cannot trip over a
section it does not read).
"""

from __future__ import annotations

from typing import Any

from ..message import MessageView
from ..types import Symbol
from .selector import JMS_HEADER_IDENTIFIERS, Lookup, make_lookup

__all__ = ["JMS_TYPE", "selector_lookup"]

#: The message annotation JMS clients put a message's ``JMSType`` in.
JMS_TYPE = Symbol("x-opt-jms-type")


def selector_lookup(view: MessageView, priority: int, delivery_count: int) -> Lookup:
    """The identifiers a JMS selector sees for one message (header fields and properties).

    Lazy: a plain name reads the application properties alone; the header and
    the properties are decoded only when a selector asks for a JMS header name,
    and the message annotations only for ``JMSType``.  A selector neither pays
    for nor trips over a section it does not read.
    """
    built: dict[bool, Lookup] = {}

    def lookup(name: str) -> Any:
        if name not in JMS_HEADER_IDENTIFIERS:
            app = view.application_properties
            return app.get(name) if app is not None else None
        jms_type = name == "JMSType"
        found = built.get(jms_type)
        if found is None:
            found = built[jms_type] = _header_lookup(view, priority, delivery_count, jms_type)
        return found(name)

    return lookup


def _header_lookup(view: MessageView, priority: int, delivery_count: int, jms_type: bool) -> Lookup:
    header = view.header
    durable = bool(header.durable) if header is not None else False
    annotations = view.message_annotations if jms_type else None
    props = view.properties
    if props is None:
        return make_lookup(
            durable=durable,
            priority=priority,
            jms_type=annotations.get(JMS_TYPE) if annotations else None,
            delivery_count=delivery_count,
        )
    return make_lookup(
        durable=durable,
        priority=priority,
        message_id=props.message_id,
        correlation_id=props.correlation_id,
        creation_time=props.creation_time,
        absolute_expiry_time=props.absolute_expiry_time,
        subject=props.subject,
        jms_type=annotations.get(JMS_TYPE) if annotations else None,
        delivery_count=delivery_count,
        group_id=props.group_id,
        group_sequence=props.group_sequence,
        user_id=props.user_id,
    )
