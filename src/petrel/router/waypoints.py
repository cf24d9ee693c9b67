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
the lost links is settled back (released or modified) as on any link.  An
autolink the broker refuses or detaches while the connection stays open (its
queue does not exist yet, or was deleted) is attached again after 2 s, then
every 5 s, until the broker takes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..engine import ConnectionState, Session
from ..spec import Source, Target
from .config import AutolinkSettings
from .forwarding import InLink, OutLink
from .table import phase

if TYPE_CHECKING:
    from .connection import RouterConnection

__all__ = ["attach_autolinks"]

log = logging.getLogger("petrel.router")

#: Credit an ``in`` autolink gives the broker while the address has receivers.
AUTOLINK_WINDOW = 1000
#: Seconds before attaching a refused autolink again: the first time, then each next.
RETRY_FIRST = 2.0
RETRY_NEXT = 5.0


def attach_autolinks(connection: RouterConnection, autolinks: Sequence[AutolinkSettings]) -> None:
    """Attach ``autolinks`` on ``connection`` (open, to a broker); each becomes part of its
    address's route once the broker has answered its attach."""
    session = connection.engine.begin_session()
    connection.sessions[session] = set()
    for number, settings in enumerate(autolinks):
        _Autolink(connection, session, number, settings).attach()
    connection.protocol.flush()


class _Autolink:
    """One autolink on one connection: attached, and attached again while the broker
    refuses it (see the module docstring)."""

    __slots__ = ("attempts", "connection", "name", "session", "settings")

    def __init__(
        self,
        connection: RouterConnection,
        session: Session,
        number: int,
        settings: AutolinkSettings,
    ) -> None:
        self.connection = connection
        self.session = session
        self.settings = settings
        self.name = f"{connection.network.router_id}:autolink.{number}:{settings.address}"
        self.attempts = 0

    def attach(self) -> None:
        connection, settings = self.connection, self.settings
        if self.session not in connection.sessions:  # the session ended: begin another
            self.session = connection.engine.begin_session()
            connection.sessions[self.session] = set()
        session = self.session
        table = connection.network.table
        if settings.direction == "out":
            link = session.attach_sender(
                self.name, Source(address=settings.address), Target(address=settings.queue)
            )
            out = OutLink(link, connection.protocol)
            key = phase(settings.address, 0)

            def taken() -> None:  # a destination of phase 0 only once the broker answers
                self.attempts = 0
                table.add_consumer(key, out)

            def lost(o: OutLink) -> None:
                table.remove_consumer(key, o)
                self._lost(o.link)

            out.on_close = lost
            connection.adopt(link, out)
            connection.when_attached(link, taken)
        else:
            link = session.attach_receiver(
                self.name, Source(address=settings.queue), Target(address=settings.address)
            )
            key = phase(settings.address, 1)
            inlink = InLink(
                link,
                connection.protocol,
                AUTOLINK_WINDOW,
                table,
                owner=connection,
                address=key,
            )

            def opened() -> None:
                self.attempts = 0
                inlink.top_up()

            def gone(i: InLink) -> None:
                table.remove_producer(key, i)
                self._lost(i.link)

            connection.adopt(link, inlink)
            table.add_producer(key, inlink)
            inlink.on_close = gone
            connection.when_attached(link, opened)
        log.info(
            "router %s: autolink %s %s queue %r on %s",
            connection.network.router_id,
            settings.address,
            "to" if settings.direction == "out" else "from",
            settings.queue,
            connection.listener.url,
        )

    def _lost(self, link: object) -> None:
        """The link is over: if the connection is still open, the broker refused or
        detached it; attach it again later."""
        connection = self.connection
        if connection.engine.state is not ConnectionState.OPENED:
            return  # the connection is going: the next one attaches afresh
        detach = getattr(link, "remote_detach", None)
        error = getattr(detach, "error", None)
        why = f"{error.condition}: {error.description}" if error is not None else "no error given"
        delay = RETRY_FIRST if self.attempts == 0 else RETRY_NEXT
        self.attempts += 1
        log.warning(
            "router %s: the broker at %s detached autolink %s (%s); attaching again in %g s",
            connection.network.router_id,
            connection.listener.url,
            self.settings.address,
            why,
            delay,
        )
        asyncio.get_running_loop().call_later(delay, self._again)

    def _again(self) -> None:
        if self.connection.engine.state is ConnectionState.OPENED:
            self.attach()
            self.connection.protocol.flush()
