"""Waypoints: queues on brokers that an address passes through (``[[autolinks]]``).

A waypoint address travels in two phases.  What senders anywhere send to it
is routed to phase 0 (``_phase/0/A``), whose destinations are the
``out`` autolinks: links this router keeps *to* the broker's queue.  What
comes out of the queue, over an ``in`` autolink (a link this router keeps
*from* the queue), is routed to phase 1 (``_phase/1/A``), whose destinations
are the address's receivers.  So the messages rest in the broker, and the
network carries them both ways with its usual credit and settlement: the
sender's delivery is settled with the broker's outcome (accepted once the
broker has it), and the broker's with the receiver's.

Several brokers with ``out`` autolinks for one address shard it: messages
are spread over them (``balanced``), and receivers drain all of them through
their ``in`` autolinks.  An ``in`` autolink has credit only while the address
has a receiver somewhere, so the broker keeps the messages until then.

The links are attached when the connector's connection opens and again each
time it is re-established (the broker restarted): what was in flight on
the lost links is settled back (released or modified) as on any link.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..engine import Link
from ..spec import Source, Target
from .config import AutolinkSettings
from .forwarding import InLink, OutLink
from .table import AddressTable, phase

if TYPE_CHECKING:
    from .connection import RouterConnection

__all__ = ["attach_autolinks"]

log = logging.getLogger("petrel.router")

#: Credit an ``in`` autolink gives the broker while the address has receivers.
AUTOLINK_WINDOW = 1000


def attach_autolinks(
    connection: RouterConnection, autolinks: Sequence[AutolinkSettings]
) -> dict[Link, Callable[[], None]]:
    """Attach ``autolinks`` on ``connection`` (open, to a broker); what to do for each
    link once the broker has answered its attach (an ``out`` link becomes a destination
    of its address's phase 0 only then)."""
    table = connection.network.table
    session = connection.engine.begin_session()
    connection.sessions[session] = set()
    on_attached: dict[Link, Callable[[], None]] = {}
    for number, autolink in enumerate(autolinks):
        name = f"{connection.network.router_id}:autolink.{number}:{autolink.address}"
        if autolink.direction == "out":
            link = session.attach_sender(
                name, Source(address=autolink.address), Target(address=autolink.queue)
            )
            out = OutLink(link, connection.protocol)
            connection.adopt(link, out)
            on_attached[link] = _destination(table, phase(autolink.address, 0), out)
        else:
            link = session.attach_receiver(
                name, Source(address=autolink.queue), Target(address=autolink.address)
            )
            key = phase(autolink.address, 1)
            inlink = InLink(
                link,
                connection.protocol,
                AUTOLINK_WINDOW,
                table.deliver,
                table.stats,
                owner=connection,
                address=key,
            )
            connection.adopt(link, inlink)
            table.add_producer(key, inlink)
            inlink.on_close = lambda i, key=key: table.remove_producer(key, i)
            on_attached[link] = inlink.top_up
        log.info(
            "router %s: autolink %s %s queue %r on %s",
            connection.network.router_id,
            autolink.address,
            "to" if autolink.direction == "out" else "from",
            autolink.queue,
            connection.listener.url,
        )
    connection.protocol.flush()
    return on_attached


def _destination(table: AddressTable, key: str, out: OutLink) -> Callable[[], None]:
    def attached() -> None:
        table.add_consumer(key, out)
        out.on_close = lambda o: table.remove_consumer(key, o)

    return attached
