"""A scriptable AMQP peer in the test's own event loop, on a real socket.

Built on Petrel's driver and engine in the server role; it records what the
client announced (open, attach) and can be told to misbehave: never answer
attaches, require SASL PLAIN credentials, stay silent.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from petrel.driver import AmqpProtocol, Listener, TlsConfig
from petrel.engine import ConnectionConfig, SaslConfig
from petrel.engine import events as ev
from petrel.errors import AmqpError, Condition
from petrel.spec import Accepted


@dataclass
class PeerRecord:
    """What the peer saw."""

    opens: list[Any] = field(default_factory=list)
    sasl: list[ev.SaslCompleted] = field(default_factory=list)
    attaches: list[Any] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)
    #: Deliveries kept without an outcome (``hold=True``), for the test to settle.
    held: list[Any] = field(default_factory=list)
    protocols: list[AmqpProtocol] = field(default_factory=list)


class _Handler:
    def __init__(
        self, record: PeerRecord, answer_attach: bool, credit: int, hold: bool, at_detach: bool
    ) -> None:
        self.record = record
        self.answer_attach = answer_attach
        self.credit = credit
        self.hold = hold or at_detach
        self.at_detach = at_detach

    def handle_event(self, protocol: AmqpProtocol, event: Any) -> None:
        record = self.record
        if isinstance(event, ev.ConnectionOpened):
            record.opens.append(protocol.engine.remote_open)
            protocol.engine.open()
        elif isinstance(event, ev.SaslCompleted):
            record.sasl.append(event)
        elif isinstance(event, ev.LinkAttachRequested):
            record.attaches.append(event.link.remote_attach)
            terminus = event.link.remote_source if event.link.is_sender else None
            terminus = terminus or event.link.remote_target
            if str(getattr(terminus, "address", "")).startswith("end-session."):
                # Misbehave on request: end the whole session instead of answering.
                event.link.session.end(
                    AmqpError("session ended on request", condition=Condition.NOT_ALLOWED)
                )
                return
            if self.answer_attach:
                event.link.attach()
                if event.link.is_receiver and self.credit:
                    event.link.flow(self.credit)
        elif isinstance(event, ev.DeliveryReceived):
            record.payloads.append(event.payload)
            if self.hold:
                record.held.append(event.delivery)
            elif not event.settled:
                event.delivery.update(Accepted(), settled=True)
        elif isinstance(event, ev.LinkDetached) and self.at_detach:
            # Accept what the link brought only now: the detach (which the engine answered
            # already) goes out first, the outcomes right behind it in the same write.
            for delivery in record.held:
                if delivery.link is event.link:
                    delivery.update(Accepted(), settled=True)


@contextlib.asynccontextmanager
async def petrel_peer(
    *,
    answer_attach: bool = True,
    credit: int = 100,
    users: dict[str, str] | None = None,
    tls: TlsConfig | None = None,
    idle_timeout: float | None = None,
    offered_capabilities: tuple[str, ...] | None = None,
    hold: bool = False,
    accept_at_detach: bool = False,
) -> AsyncIterator[tuple[str, PeerRecord]]:
    """Listen on 127.0.0.1; yields ``(url, record)``.

    ``hold`` keeps the deliveries that arrive unsettled, in ``record.held``;
    ``accept_at_detach`` holds them too, and accepts them once their link detaches.

    ``users`` turns on SASL with PLAIN (and no ANONYMOUS): name -> password.
    """
    record = PeerRecord()

    def config() -> ConnectionConfig:
        sasl = None
        if users is not None:

            def check(name: str, password: str, authzid: str | None) -> str | None:
                return name if users.get(name) == password else None

            sasl = SaslConfig(mechanisms=["PLAIN"], authenticator=check)
        else:
            sasl = SaslConfig(mechanisms=["ANONYMOUS"])
        return ConnectionConfig(
            container_id="petrel-test-peer",
            sasl=sasl,
            idle_timeout=idle_timeout,
            offered_capabilities=offered_capabilities,
        )

    def handler(protocol: AmqpProtocol) -> _Handler:
        record.protocols.append(protocol)
        return _Handler(record, answer_attach, credit, hold, accept_at_detach)

    scheme = "amqps" if tls else "amqp"
    async with Listener([f"{scheme}://127.0.0.1:0"], config, handler, tls=tls) as listener:
        host, port = listener.bound[0]
        yield f"{scheme}://{host}:{port}", record
