"""Protocol symbols that are not performatives but that peers agree on: connection and
terminus capabilities, and the filters clients put on a source.

Declared once here, for the client, the broker and the router alike.  The
ones beyond the core specification come from the AMQP addressing and filter
conventions that Qpid, ActiveMQ Artemis and RabbitMQ share.
"""

from __future__ import annotations

from typing import Final

from ..types import Symbol, ULong

__all__ = [
    "ANONYMOUS_RELAY",
    "CAP_GLOBAL",
    "CAP_QUEUE",
    "CAP_SHARED",
    "CAP_TOPIC",
    "SELECTOR_FILTER",
    "SELECTOR_FILTER_CODE",
    "SELECTOR_FILTER_KEY",
]

#: A connection capability: a sender with no target address may send anywhere, each
#: message naming its address in ``properties.to``.
ANONYMOUS_RELAY: Final = Symbol("ANONYMOUS-RELAY")

#: Terminus capabilities: the node is a queue (anycast) or a topic (multicast).
CAP_QUEUE: Final = Symbol("queue")
CAP_TOPIC: Final = Symbol("topic")
#: Source capabilities of a subscription shared by several receivers, and of one shared
#: across containers.
CAP_SHARED: Final = Symbol("shared")
CAP_GLOBAL: Final = Symbol("global")

#: The JMS selector filter: a described string, by its symbolic or numeric descriptor.
SELECTOR_FILTER: Final = Symbol("apache.org:selector-filter:string")
SELECTOR_FILTER_CODE: Final = ULong(0x0000468C00000004)
#: The key a client puts the selector under in a source's filter set.
SELECTOR_FILTER_KEY: Final = Symbol("selector")
