"""Petrel's engine against Qpid Proton's, in memory, with Petrel in either role.

Proton's ``Transport``/``Connection``/``Collector`` are pumped against a
Petrel ``Connection`` (see ``tests/helpers/proton_engine.py``); time is passed
by hand to both (``handle_timer`` and ``Transport.tick``).
"""

from __future__ import annotations

from typing import Any

import pytest

proton = pytest.importorskip("proton")

from proton import SASL  # noqa: E402
from proton import Condition as ProtonCondition  # noqa: E402
from proton import Delivery as ProtonDelivery  # noqa: E402
from proton import Event as PE  # noqa: E402

from petrel.engine import (  # noqa: E402
    Connection,
    ConnectionConfig,
    Event,
    Link,
    SaslConfig,
    Session,
)
from petrel.engine.events import (  # noqa: E402
    ConnectionClosed,
    ConnectionOpened,
    DeliveryReceived,
    DeliveryUpdated,
    LinkAttached,
    LinkAttachRequested,
    LinkDetached,
    LinkFlowed,
    SaslCompleted,
    SessionBegun,
    SessionEnded,
)
from petrel.errors import AmqpError, Condition  # noqa: E402
from petrel.spec import (  # noqa: E402
    Accepted,
    Error,
    Modified,
    Received,
    ReceiverSettleMode,
    Rejected,
    Released,
    SaslCode,
    SenderSettleMode,
    Source,
    Target,
)
from petrel.types import Symbol  # noqa: E402
from tests.helpers.proton_engine import ProtonPeer, pump  # noqa: E402

pytestmark = pytest.mark.interop

ROLES = pytest.mark.parametrize(
    "petrel_server", [False, True], ids=["petrel-client", "petrel-server"]
)


class Interop:
    """A Petrel engine and a Proton engine, back to back."""

    def __init__(
        self, petrel_server: bool, config: ConnectionConfig | None = None, **proton_kw: Any
    ) -> None:
        self.petrel = Connection(
            config or ConnectionConfig(container_id="petrel"), server=petrel_server
        )
        self.proton = ProtonPeer(server=not petrel_server, **proton_kw)
        self.events: list[Event] = []
        self.petrel.handle_timer(1000.0)

    def pump(self) -> None:
        pump(self.petrel, self.proton, self.events)

    def open(self) -> None:
        self.petrel.open()
        self.proton.conn.open()
        self.pump()

    def take(self, kind: type) -> list[Any]:
        found = [e for e in self.events if isinstance(e, kind)]
        self.events = [e for e in self.events if not isinstance(e, kind)]
        return found

    def take_one(self, kind: type) -> Any:
        found = self.take(kind)
        assert len(found) == 1, f"expected one {kind.__name__}, got {found} / {self.events}"
        return found[0]

    def session(self) -> tuple[Session, Any]:
        """A Petrel-initiated session and Proton's end of it."""
        session = self.petrel.begin_session()
        self.pump()
        remote = self.proton.of(PE.SESSION_REMOTE_OPEN)[-1].session
        remote.open()
        self.pump()
        assert self.take(SessionBegun)[-1].session is session
        return session, remote

    def petrel_sender(self, **kw: Any) -> tuple[Link, Any]:
        """A Petrel sender attached to a Proton receiver."""
        session, _ = self.session()
        sender = session.attach_sender(
            "to-proton", Source(address="src"), Target(address="q"), **kw
        )
        self.pump()
        receiver = self.proton.of(PE.LINK_REMOTE_OPEN)[-1].link
        receiver.source.copy(receiver.remote_source)
        receiver.target.copy(receiver.remote_target)
        receiver.open()
        self.pump()
        assert self.take_one(LinkAttached).link is sender
        return sender, receiver

    def proton_sender(self, **kw: Any) -> tuple[Any, Link]:
        """A Proton sender attached to a Petrel receiver."""
        ssn = self.proton.conn.session()
        ssn.open()
        sender = ssn.sender("from-proton")
        sender.target.address = "q"
        for key, value in kw.items():
            setattr(sender, key, value)
        sender.open()
        self.pump()
        receiver = self.take_one(LinkAttachRequested).link
        receiver.attach()
        self.pump()
        return sender, receiver

    def proton_readable(self) -> list[tuple[Any, bytes]]:
        """Read every complete incoming Proton delivery: ``(delivery, payload)``."""
        got = []
        for event in self.proton.of(PE.DELIVERY):
            delivery = event.delivery
            if delivery.link.is_receiver and delivery.readable and not delivery.partial:
                if getattr(delivery, "_petrel_read", False):
                    continue
                data = delivery.link.recv(delivery.pending)
                delivery.link.advance()
                delivery._petrel_read = True
                got.append((delivery, data))
        return got


def proton_send(link: Any, payload: bytes, tag: bytes, settle: bool = False) -> Any:
    delivery = link.delivery(tag)
    link.send(payload)
    link.advance()
    if settle:
        delivery.settle()
    return delivery


# --- connections ---------------------------------------------------------------------------


@ROLES
def test_open_exchanges_fields(petrel_server: bool) -> None:
    config = ConnectionConfig(
        container_id="petrel",
        hostname="vhost",
        offered_capabilities=["petrel-cap"],
        properties={"product": "petrel"},
    )
    pair = Interop(petrel_server, config)
    pair.proton.conn.hostname = "proton-host"
    pair.proton.conn.offered_capabilities = proton.symbol("proton-cap")
    pair.proton.conn.properties = {proton.symbol("product"): "proton"}
    pair.open()
    opened = pair.take_one(ConnectionOpened)
    assert opened.container_id == "proton"
    assert opened.offered_capabilities == (Symbol("proton-cap"),)
    assert opened.properties == {Symbol("product"): "proton"}
    conn = pair.proton.conn
    assert conn.remote_container == "petrel"
    assert conn.remote_offered_capabilities == [proton.symbol("petrel-cap")]
    assert conn.remote_properties == {proton.symbol("product"): "petrel"}
    if petrel_server:
        assert opened.hostname == "proton-host"
    else:
        assert conn.remote_hostname == "vhost"


@ROLES
def test_petrel_closes(petrel_server: bool) -> None:
    pair = Interop(petrel_server)
    pair.open()
    pair.petrel.close(AmqpError("maintenance", condition=Condition.CONNECTION_FORCED))
    pair.pump()
    conn = pair.proton.conn
    assert conn.state & conn.REMOTE_CLOSED
    assert conn.remote_condition.name == Condition.CONNECTION_FORCED
    assert conn.remote_condition.description == "maintenance"
    conn.close()
    pair.pump()
    assert pair.take_one(ConnectionClosed) == ConnectionClosed(None, by_peer=False)
    assert pair.petrel.finished


@ROLES
def test_proton_closes_with_an_error(petrel_server: bool) -> None:
    pair = Interop(petrel_server)
    pair.open()
    pair.proton.conn.condition = ProtonCondition(Condition.RESOURCE_LIMIT_EXCEEDED, "too many")
    pair.proton.conn.close()
    pair.pump()
    closed = pair.take_one(ConnectionClosed)
    assert closed.by_peer
    assert closed.error == Error(
        condition=Symbol(Condition.RESOURCE_LIMIT_EXCEEDED), description="too many"
    )
    assert pair.proton.conn.state & pair.proton.conn.REMOTE_CLOSED
    assert pair.petrel.finished


@ROLES
def test_max_frame_size_both_ways(petrel_server: bool) -> None:
    config = ConnectionConfig(container_id="petrel", max_frame_size=512)
    pair = Interop(petrel_server, config, max_frame_size=512)
    pair.open()
    assert pair.petrel.remote_max_frame_size == 512
    assert pair.proton.transport.remote_max_frame_size == 512
    sender, receiver = pair.petrel_sender()
    receiver.flow(1)
    pair.pump()
    sender.send(b"p" * 5000)
    pair.pump()
    assert [data for _, data in pair.proton_readable()] == [b"p" * 5000]
    psender, preceiver = pair.proton_sender()
    preceiver.flow(1)
    pair.pump()
    proton_send(psender, b"q" * 5000, b"t")
    pair.pump()
    assert pair.take_one(DeliveryReceived).payload == b"q" * 5000


# --- sessions and links --------------------------------------------------------------------


@ROLES
def test_petrel_sends_proton_receives(petrel_server: bool) -> None:
    pair = Interop(petrel_server)
    pair.open()
    sender, receiver = pair.petrel_sender()
    assert receiver.remote_target.address == "q"
    receiver.flow(10)
    pair.pump()
    assert pair.take_one(LinkFlowed).credit == 10
    sent = [sender.send(b"message %d" % i) for i in range(10)]
    pair.pump()
    got = pair.proton_readable()
    assert [data for _, data in got] == [b"message %d" % i for i in range(10)]
    assert [_tag_bytes(d.tag) for d, _ in got] == [d.tag for d in sent]
    for delivery, _ in got:
        delivery.update(ProtonDelivery.ACCEPTED)
        delivery.settle()
    pair.pump()
    updates = pair.take(DeliveryUpdated)
    assert [u.delivery for u in updates] == sent
    assert all(u.state == Accepted() and u.settled for u in updates)


@ROLES
def test_proton_sends_petrel_receives(petrel_server: bool) -> None:
    pair = Interop(petrel_server)
    pair.open()
    sender, receiver = pair.proton_sender()
    assert receiver.remote_target == Target(address="q")
    receiver.flow(5)
    pair.pump()
    assert sender.credit == 5
    deliveries = [proton_send(sender, b"m%d" % i, b"tag%d" % i) for i in range(5)]
    pair.pump()
    received = pair.take(DeliveryReceived)
    assert [r.payload for r in received] == [b"m%d" % i for i in range(5)]
    assert [r.tag for r in received] == [b"tag%d" % i for i in range(5)]
    for r in received:
        r.delivery.update(Accepted(), settled=True)
    pair.pump()
    assert all(d.remote_state == ProtonDelivery.ACCEPTED and d.settled for d in deliveries)


@ROLES
def test_twenty_megabytes_each_way(petrel_server: bool) -> None:
    pair = Interop(petrel_server)
    pair.open()
    payload = bytes(range(256)) * (20 * 4096)
    sender, receiver = pair.petrel_sender()
    receiver.flow(1)
    pair.pump()
    sender.send(payload)
    pair.pump()
    assert [data for _, data in pair.proton_readable()] == [payload]
    psender, preceiver = pair.proton_sender()
    preceiver.flow(1)
    pair.pump()
    proton_send(psender, payload, b"big")
    pair.pump()
    assert pair.take_one(DeliveryReceived).payload == payload


@ROLES
def test_petrel_drains_proton(petrel_server: bool) -> None:
    pair = Interop(petrel_server)
    pair.open()
    sender, receiver = pair.proton_sender()
    receiver.flow(10, drain=True)
    pair.pump()
    assert sender.credit == 10
    proton_send(sender, b"one", b"1")
    sender.drained()
    pair.pump()
    assert pair.take_one(DeliveryReceived).payload == b"one"
    drained = [e for e in pair.take(LinkFlowed) if e.drained]
    assert drained and receiver.credit == 0 and not receiver.drain
    assert receiver.delivery_count == 10


@ROLES
def test_proton_drains_petrel(petrel_server: bool) -> None:
    pair = Interop(petrel_server)
    pair.open()
    sender, receiver = pair.petrel_sender()
    receiver.drain_mode = True
    receiver.flow(10)
    pair.pump()
    flowed = pair.take(LinkFlowed)[-1]
    assert flowed.drain and flowed.credit == 10
    sender.send(b"x")
    assert sender.drained() == 9
    pair.pump()
    # Proton counts the unread delivery in its credit until the application reads it.
    assert receiver.queued == 1 and receiver.credit == 1
    assert receiver.drained() == 9


# --- settlement and outcomes ---------------------------------------------------------------

PROTON_OUTCOMES: list[tuple[Any, Any]] = [
    (Accepted(), ProtonDelivery.ACCEPTED),
    (
        Rejected(error=Error(condition=Symbol("amqp:invalid-field"), description="bad")),
        ProtonDelivery.REJECTED,
    ),
    (Released(), ProtonDelivery.RELEASED),
    (Modified(delivery_failed=True, undeliverable_here=True), ProtonDelivery.MODIFIED),
    (Received(section_number=1, section_offset=7), ProtonDelivery.RECEIVED),
]


@pytest.mark.parametrize(("state", "code"), PROTON_OUTCOMES, ids=lambda v: type(v).__name__)
@ROLES
def test_petrel_outcomes_reach_proton(petrel_server: bool, state: Any, code: Any) -> None:
    pair = Interop(petrel_server)
    pair.open()
    sender, receiver = pair.proton_sender()
    receiver.flow(1)
    pair.pump()
    delivery = proton_send(sender, b"m", b"t")
    pair.pump()
    pair.take_one(DeliveryReceived).delivery.update(state, settled=True)
    pair.pump()
    assert delivery.remote_state == code
    assert delivery.settled
    remote = delivery.remote
    if isinstance(state, Rejected):
        assert remote.condition.name == "amqp:invalid-field"
        assert remote.condition.description == "bad"
    if isinstance(state, Modified):
        assert remote.failed and remote.undeliverable
    if isinstance(state, Received):
        assert (remote.section_number, remote.section_offset) == (1, 7)


@pytest.mark.parametrize(("state", "code"), PROTON_OUTCOMES[:4], ids=lambda v: type(v).__name__)
@ROLES
def test_proton_outcomes_reach_petrel(petrel_server: bool, state: Any, code: Any) -> None:
    pair = Interop(petrel_server)
    pair.open()
    sender, receiver = pair.petrel_sender()
    receiver.flow(1)
    pair.pump()
    sent = sender.send(b"m")
    pair.pump()
    [(delivery, _)] = pair.proton_readable()
    local = delivery.local
    if isinstance(state, Rejected):
        local.condition = ProtonCondition("amqp:invalid-field", "bad")
    if isinstance(state, Modified):
        local.failed = True
        local.undeliverable = True
    delivery.update(code)
    delivery.settle()
    pair.pump()
    update = pair.take_one(DeliveryUpdated)
    assert update.delivery is sent and update.settled
    assert update.state == state


@ROLES
def test_presettled_both_ways(petrel_server: bool) -> None:
    pair = Interop(petrel_server)
    pair.open()
    sender, receiver = pair.petrel_sender(snd_settle_mode=SenderSettleMode.SETTLED)
    assert receiver.remote_snd_settle_mode == proton.Link.SND_SETTLED
    receiver.flow(1)
    pair.pump()
    sender.send(b"at most once")
    pair.pump()
    [(delivery, data)] = pair.proton_readable()
    assert data == b"at most once" and delivery.settled
    psender, preceiver = pair.proton_sender(snd_settle_mode=proton.Link.SND_SETTLED)
    preceiver.flow(1)
    pair.pump()
    proton_send(psender, b"fire", b"t", settle=True)
    pair.pump()
    assert pair.take_one(DeliveryReceived).settled


@ROLES
def test_receiver_settles_second_with_proton_sender(petrel_server: bool) -> None:
    pair = Interop(petrel_server)
    pair.open()
    sender, receiver = pair.proton_sender(rcv_settle_mode=proton.Link.RCV_SECOND)
    assert receiver.rcv_settle_mode == ReceiverSettleMode.SECOND
    receiver.flow(1)
    pair.pump()
    delivery = proton_send(sender, b"m", b"t")
    pair.pump()
    received = pair.take_one(DeliveryReceived).delivery
    received.update(Accepted())
    pair.pump()
    assert delivery.remote_state == ProtonDelivery.ACCEPTED and not delivery.settled
    delivery.settle()
    pair.pump()
    assert pair.take_one(DeliveryUpdated).settled
    assert received.remote_settled


# --- errors on sessions and links ----------------------------------------------------------


@ROLES
def test_session_and_link_errors_both_ways(petrel_server: bool) -> None:
    pair = Interop(petrel_server)
    pair.open()
    sender, receiver = pair.petrel_sender()
    sender.detach(AmqpError("gone", condition=Condition.DETACH_FORCED))
    pair.pump()
    assert receiver.remote_condition.name == Condition.DETACH_FORCED
    receiver.close()
    pair.pump()
    assert pair.take_one(LinkDetached).by_peer is False
    psender, preceiver = pair.proton_sender()
    psender.condition = ProtonCondition(Condition.STOLEN, "by another")
    psender.close()
    pair.pump()
    detached = pair.take_one(LinkDetached)
    assert detached.by_peer and detached.link is preceiver
    assert detached.error is not None and detached.error.condition == Condition.STOLEN
    session, remote = pair.session()
    session.end(AmqpError("done", condition=Condition.RESOURCE_DELETED))
    pair.pump()
    assert remote.remote_condition.name == Condition.RESOURCE_DELETED
    remote.close()
    pair.pump()
    assert pair.take(SessionEnded)[-1].session is session
    ssn = pair.proton.conn.session()
    ssn.open()
    pair.pump()
    petrel_session = pair.take(SessionBegun)[-1].session
    ssn.condition = ProtonCondition(Condition.ERRANT_LINK, "bad link")
    ssn.close()
    pair.pump()
    ended = pair.take(SessionEnded)[-1]
    assert ended.session is petrel_session and ended.by_peer
    assert ended.error is not None and ended.error.condition == Condition.ERRANT_LINK


# --- idle timeout and heartbeats -----------------------------------------------------------


def run_clock(
    pair: Interop, seconds: float, *, petrel: bool = True, proton_ticks: bool = True
) -> None:
    now = 1000.0
    end = now + seconds
    while now < end:
        now += 0.1
        if petrel:
            deadline = pair.petrel.get_timer()
            if deadline is not None and deadline <= now:
                pair.petrel.handle_timer(now)
        if proton_ticks:
            pair.proton.transport.tick(now)
        pair.pump()


@ROLES
def test_petrel_heartbeats_keep_proton_happy(petrel_server: bool) -> None:
    pair = Interop(petrel_server, idle_timeout=1.0)
    pair.open()
    assert pair.petrel.remote_idle_timeout is not None
    before = pair.proton.transport.frames_input
    run_clock(pair, 10)
    assert pair.proton.conn.state & pair.proton.conn.LOCAL_ACTIVE
    assert not pair.take(ConnectionClosed)
    assert pair.proton.transport.frames_input - before >= 10


@ROLES
def test_proton_heartbeats_keep_petrel_happy(petrel_server: bool) -> None:
    config = ConnectionConfig(container_id="petrel", idle_timeout=1.0)
    pair = Interop(petrel_server, config)
    pair.open()
    assert pair.proton.transport.remote_idle_timeout == 1.0
    run_clock(pair, 10)
    assert not pair.take(ConnectionClosed)


@ROLES
def test_petrel_closes_a_silent_proton(petrel_server: bool) -> None:
    config = ConnectionConfig(container_id="petrel", idle_timeout=1.0)
    pair = Interop(petrel_server, config)
    pair.open()
    run_clock(pair, 5, proton_ticks=False)
    closed = pair.take_one(ConnectionClosed)
    assert closed.error is not None
    assert closed.error.condition == Condition.RESOURCE_LIMIT_EXCEEDED
    assert pair.proton.conn.remote_condition.name == Condition.RESOURCE_LIMIT_EXCEEDED


@ROLES
def test_proton_closes_a_silent_petrel(petrel_server: bool) -> None:
    pair = Interop(petrel_server, idle_timeout=1.0)
    pair.open()
    run_clock(pair, 5, petrel=False)
    closed = pair.take_one(ConnectionClosed)
    assert closed.by_peer
    assert closed.error is not None
    assert closed.error.condition == Condition.RESOURCE_LIMIT_EXCEEDED


# --- SASL ----------------------------------------------------------------------------------


def check_password(username: str, password: str, authzid: str | None) -> str | None:
    return username if (username, password) == ("alice", "secret") else None


def test_sasl_anonymous_proton_client() -> None:
    pair = Interop(
        True, ConnectionConfig(container_id="petrel", sasl=SaslConfig()), sasl="ANONYMOUS"
    )
    pair.open()
    assert pair.take_one(SaslCompleted).code == SaslCode.OK
    assert pair.take_one(ConnectionOpened).container_id == "proton"
    assert pair.petrel.sasl_mechanism == "ANONYMOUS"
    assert pair.proton.transport.sasl().outcome == SASL.OK


def test_sasl_anonymous_proton_server() -> None:
    pair = Interop(
        False, ConnectionConfig(container_id="petrel", sasl=SaslConfig()), sasl="ANONYMOUS"
    )
    pair.open()
    assert pair.take_one(SaslCompleted) == SaslCompleted("ANONYMOUS", SaslCode.OK, "anonymous")
    assert pair.take_one(ConnectionOpened)
    assert pair.proton.conn.state & pair.proton.conn.REMOTE_ACTIVE


@pytest.mark.parametrize(("password", "code"), [("secret", SaslCode.OK), ("wrong", SaslCode.AUTH)])
def test_sasl_plain_proton_client(password: str, code: SaslCode) -> None:
    config = ConnectionConfig(container_id="petrel", sasl=SaslConfig(authenticator=check_password))
    pair = Interop(True, config, sasl="PLAIN", user="alice", password=password)
    pair.open()
    assert pair.take_one(SaslCompleted).code == code
    assert pair.proton.transport.sasl().outcome == int(code)
    if code == SaslCode.OK:
        assert pair.petrel.sasl_identity == "alice"
        assert pair.take_one(ConnectionOpened)
    else:
        assert pair.take_one(ConnectionClosed).error is not None
        assert pair.petrel.finished


def test_sasl_plain_to_a_proton_server() -> None:
    config = ConnectionConfig(
        container_id="petrel", sasl=SaslConfig(username="alice", password="secret")
    )
    if SASL.extended():
        pytest.skip("Proton has Cyrus SASL here: PLAIN depends on its local user database")
    pair = Interop(False, config, sasl="PLAIN")
    pair.open()
    # Proton without Cyrus SASL cannot check PLAIN passwords, so it offers no mechanism at
    # all (an empty sasl-server-mechanisms): the client gives up.
    assert not [e for e in pair.take(SaslCompleted) if e.code == SaslCode.OK]
    closed = pair.take_one(ConnectionClosed)
    assert closed.error is not None and not closed.by_peer
    assert pair.petrel.finished


def _tag_bytes(tag: Any) -> bytes:
    return tag if isinstance(tag, bytes) else str(tag).encode("latin-1")
