"""Qpid Proton's engine in memory, pumped against a Petrel engine: no sockets, time by hand.

    peer = ProtonPeer(server=True)
    petrel = Connection(ConnectionConfig(container_id="petrel"))
    petrel.open()
    peer.conn.open()
    pump(petrel, peer)

``peer.conn`` / ``peer.transport`` are Proton's own objects; ``peer.events``
collects ``(type, event-context objects)`` from Proton's collector, and
``petrel_events`` what the Petrel engine reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import proton
from proton import Collector, Transport

from petrel.engine import Connection, Event


@dataclass
class ProtonEvent:
    """One Proton collector event, with the objects it concerns kept alive."""

    type: Any
    link: Any = None
    session: Any = None
    delivery: Any = None


class ProtonPeer:
    """A Proton connection and transport, in the client or the server role."""

    def __init__(
        self,
        *,
        server: bool,
        container: str = "proton",
        sasl: str | None = None,
        user: str | None = None,
        password: str | None = None,
        idle_timeout: float | None = None,
        max_frame_size: int | None = None,
    ) -> None:
        self.conn = proton.Connection()
        self.conn.container = container
        self.collector = Collector()
        self.conn.collect(self.collector)
        self.transport = Transport(Transport.SERVER if server else Transport.CLIENT)
        if max_frame_size is not None:
            self.transport.max_frame_size = max_frame_size
        if idle_timeout is not None:
            self.transport.idle_timeout = idle_timeout
        if user is not None:
            self.conn.user = user
            self.conn.password = password
        if sasl is not None:
            mechanisms = self.transport.sasl()
            mechanisms.allowed_mechs(sasl)
            mechanisms.allow_insecure_mechs = True
        self.transport.bind(self.conn)
        self.events: list[ProtonEvent] = []

    def drain(self) -> None:
        """Move Proton's collector events to :attr:`events`."""
        while (event := self.collector.peek()) is not None:
            self.events.append(ProtonEvent(event.type, event.link, event.session, event.delivery))
            self.collector.pop()

    def of(self, kind: Any) -> list[ProtonEvent]:
        """The collected events of one type."""
        return [e for e in self.events if e.type == kind]


def pump(petrel: Connection, peer: ProtonPeer, events: list[Event] | None = None) -> None:
    """Move bytes between the two engines until neither has anything more to say."""
    transport = peer.transport
    for _ in range(100_000):
        moved = False
        data = petrel.data_to_send()
        while data:
            capacity = transport.capacity()
            if capacity <= 0:
                break
            transport.push(data[:capacity])
            data = data[capacity:]
            moved = True
            _proton_to_petrel(petrel, transport)
        if _proton_to_petrel(petrel, transport):
            moved = True
        peer.drain()
        if events is not None:
            while (event := petrel.next_event()) is not None:
                events.append(event)
        if not moved:
            return
    raise AssertionError("the engines never went quiet")


def _proton_to_petrel(petrel: Connection, transport: Transport) -> bool:
    pending = transport.pending()
    if pending <= 0:
        return False
    data = transport.peek(pending)
    transport.pop(len(data))
    petrel.receive_data(data)
    return True
