"""Links: attach and detach, termini, settle modes, credit, drain, echo and available."""

from __future__ import annotations

import pytest

from petrel.engine import Link, LinkState, Session
from petrel.engine.events import (
    LinkAttached,
    LinkAttachRequested,
    LinkDetached,
    LinkFlowed,
)
from petrel.errors import AmqpError, Condition, LocalProtocolError
from petrel.spec import (
    Accepted,
    Coordinator,
    Error,
    Flow,
    Modified,
    ReceiverSettleMode,
    Rejected,
    Released,
    SenderSettleMode,
    Source,
    Target,
)
from petrel.types import Symbol
from tests.helpers.engine_pair import EnginePair
from tests.helpers.frames import parse

from .conftest import LinkPair, attach

FULL_SOURCE = Source(
    address="orders",
    durable=2,
    expiry_policy=Symbol("never"),
    timeout=60,
    dynamic=False,
    distribution_mode=Symbol("copy"),
    filter={Symbol("apache.org:selector-filter:string"): "colour = 'red'"},
    default_outcome=Modified(delivery_failed=True),
    outcomes=(Symbol("amqp:accepted:list"), Symbol("amqp:rejected:list")),
    capabilities=(Symbol("queue"),),
)
FULL_TARGET = Target(
    address="replies",
    durable=1,
    expiry_policy=Symbol("link-detach"),
    timeout=5,
    dynamic=True,
    dynamic_node_properties={Symbol("lifetime-policy"): "x"},
    capabilities=(Symbol("temporary-queue"),),
)


def test_every_attach_field_passes_through(pair: EnginePair, session: Session) -> None:
    link = session.attach_receiver(
        "full",
        FULL_SOURCE,
        FULL_TARGET,
        snd_settle_mode=SenderSettleMode.UNSETTLED,
        rcv_settle_mode=ReceiverSettleMode.SECOND,
        max_message_size=1 << 20,
        offered_capabilities=["o1"],
        desired_capabilities=["d1", "d2"],
        properties={"prop": "value"},
    )
    assert link.state is LinkState.ATTACH_SENT
    pair.pump()
    remote = pair.take_one("server", LinkAttachRequested).link
    assert remote.is_sender and remote.name == "full"
    assert remote.remote_source == FULL_SOURCE
    assert remote.remote_target == FULL_TARGET
    assert remote.remote_snd_settle_mode == SenderSettleMode.UNSETTLED
    assert remote.remote_rcv_settle_mode == ReceiverSettleMode.SECOND
    assert remote.remote_max_message_size == 1 << 20
    assert remote.remote_offered_capabilities == ("o1",)
    assert remote.remote_desired_capabilities == ("d1", "d2")
    assert remote.remote_properties == {"prop": "value"}
    # The auto answer echoed the peer's termini and modes.
    assert pair.take_one("client", LinkAttached).link is link
    assert link.state is LinkState.ATTACHED
    assert link.remote_source == FULL_SOURCE
    assert link.remote_initial_delivery_count == 0
    assert link.rcv_settle_mode == ReceiverSettleMode.SECOND
    assert remote.rcv_settle_mode == ReceiverSettleMode.SECOND


def test_answer_with_our_own_terminus() -> None:
    pair = EnginePair(auto=False)
    pair.open()
    session = pair.client.begin_session()
    pair.pump()
    link = session.attach_receiver("dyn", Source(dynamic=True), Target())
    pair.pump()
    remote = pair.take_one("server", LinkAttachRequested).link
    remote.attach(source=Source(address="tmp.1", dynamic=True), initial_delivery_count=7)
    pair.pump()
    assert pair.take_one("client", LinkAttached).link is link
    assert link.remote_source == Source(address="tmp.1", dynamic=True)
    assert link.delivery_count == 7
    with pytest.raises(LocalProtocolError):
        remote.attach()


def test_coordinator_target_passes_through(pair: EnginePair, session: Session) -> None:
    coordinator = Coordinator(capabilities=(Symbol("amqp:local-transactions"),))
    session.attach_sender("txn", Source(), coordinator)
    pair.pump()
    assert pair.take_one("server", LinkAttachRequested).link.remote_target == coordinator


def test_refusing_an_attach() -> None:
    pair = EnginePair(auto=False)
    pair.open()
    session = pair.client.begin_session()
    pair.pump()
    link = session.attach_sender("nope", Source(), Target(address="forbidden"))
    pair.pump()
    remote = pair.take_one("server", LinkAttachRequested).link
    remote.detach(AmqpError("no such node", condition=Condition.NOT_FOUND))
    pair.pump()
    assert pair.take_one("client", LinkAttached).link is link
    assert link.remote_target is None
    detached = pair.take_one("client", LinkDetached)
    assert detached.by_peer and detached.closed
    assert detached.error == Error(
        condition=Symbol(Condition.NOT_FOUND), description="no such node"
    )
    assert link.state is LinkState.CLOSED
    assert pair.take_one("server", LinkDetached).by_peer is False


@pytest.mark.parametrize("closed", [True, False])
def test_detach_closed_or_suspended(pair: EnginePair, links: LinkPair, closed: bool) -> None:
    sender, receiver = links
    sender.detach(closed=closed)
    assert sender.state is LinkState.DETACH_SENT
    pair.pump()
    assert pair.take_one("server", LinkDetached) == LinkDetached(receiver, None, closed, True)
    assert pair.take_one("client", LinkDetached) == LinkDetached(sender, None, closed, False)
    assert sender.state is LinkState.CLOSED and receiver.state is LinkState.CLOSED
    sender.detach()  # nothing to do


def test_detach_with_error_from_either_end(pair: EnginePair, session: Session) -> None:
    _sender, receiver = attach(pair, session, "a")
    receiver.detach(Error(condition=Symbol(Condition.DETACH_FORCED), description="admin"))
    pair.pump()
    detached = pair.take_one("client", LinkDetached)
    assert detached.by_peer and detached.error is not None
    assert detached.error.condition == Condition.DETACH_FORCED


def test_a_name_is_unique_per_role(pair: EnginePair, session: Session) -> None:
    session.attach_sender("same", None, Target())
    with pytest.raises(LocalProtocolError):
        session.attach_sender("same", None, Target())
    session.attach_receiver("same", Source(), None)


def test_credit(pair: EnginePair, links: LinkPair) -> None:
    sender, receiver = links
    assert sender.credit == 0
    with pytest.raises(LocalProtocolError, match="no credit"):
        sender.send(b"x")
    receiver.flow(3)
    receiver.flow(5)  # the last call wins; one flow frame goes out
    pair.wire.clear()
    pair.pump()
    flows = [b for side, d in pair.wire if side == "server" for _, b, _ in parse(d)[1]]
    assert len(flows) == 1 and flows[0].link_credit == 5
    flowed = pair.take_one("client", LinkFlowed)
    assert flowed == LinkFlowed(sender, 5, None, False, False)
    for _ in range(5):
        sender.send(b"x")
    assert sender.credit == 0 and sender.delivery_count == 5
    pair.pump()
    assert receiver.credit == 0 and receiver.delivery_count == 5
    receiver.add_credit(2)
    receiver.add_credit(2)
    pair.pump()
    assert sender.credit == 4


def test_drain_given_back_by_the_sender(pair: EnginePair, links: LinkPair) -> None:
    sender, receiver = links
    receiver.flow(10, drain=True)
    pair.pump()
    flowed = pair.take_one("client", LinkFlowed)
    assert flowed.drain and flowed.credit == 10 and sender.drain
    sender.send(b"1")
    sender.send(b"2")
    assert sender.drained() == 8
    assert sender.drained() == 0
    pair.pump()
    done = pair.take_one("server", LinkFlowed)
    assert done.drained and done.credit == 0
    assert receiver.credit == 0 and not receiver.drain
    assert receiver.delivery_count == sender.delivery_count == 10


def test_drain_completed_by_deliveries(pair: EnginePair, links: LinkPair) -> None:
    sender, receiver = links
    receiver.flow(2, drain=True)
    pair.pump()
    sender.send(b"1")
    sender.send(b"2")
    pair.pump()
    done = pair.take_one("server", LinkFlowed)
    assert done.drained and not receiver.drain


def test_available_and_echo(pair: EnginePair, links: LinkPair) -> None:
    sender, receiver = links
    sender.offer(7)
    pair.pump()
    assert pair.take_one("server", LinkFlowed).available == 7
    assert receiver.available == 7
    # A flow with echo asks for our link state back.
    pair.wire.clear()
    session = receiver.session
    assert receiver.handle is not None
    pair.server.output.write_frame(
        session.channel,
        Flow(
            next_incoming_id=session.next_incoming_id,
            incoming_window=100,
            next_outgoing_id=session.next_outgoing_id,
            outgoing_window=100,
            handle=receiver.handle,
            delivery_count=receiver.delivery_count,
            link_credit=4,
            echo=True,
        ),
    )
    pair.pump()
    answers = [b for side, d in pair.wire if side == "client" for _, b, _ in parse(d)[1]]
    assert len(answers) == 1
    assert answers[0].handle == sender.handle and answers[0].available == 7
    assert answers[0].link_credit == 4


def test_receiver_initiated_link(pair: EnginePair, session: Session) -> None:
    receiver = session.attach_receiver("in", Source(address="q"), Target())
    receiver.flow(2)  # credit may be granted before the peer answers
    pair.pump()
    sender: Link = pair.take_one("server", LinkAttachRequested).link
    assert sender.credit == 2
    sender.send(b"hello")
    pair.pump()
    assert receiver.credit == 1


def test_flow_and_send_misuse(pair: EnginePair, links: LinkPair) -> None:
    sender, receiver = links
    with pytest.raises(LocalProtocolError):
        sender.flow(1)
    with pytest.raises(LocalProtocolError):
        receiver.send(b"x")
    with pytest.raises(LocalProtocolError):
        receiver.drained()
    with pytest.raises(LocalProtocolError):
        receiver.offer(1)
    with pytest.raises(LocalProtocolError):
        receiver.flow(-1)
    receiver.flow(5)
    pair.pump()
    with pytest.raises(LocalProtocolError, match="32 bytes"):
        sender.send(b"x", tag=b"t" * 33)
    sender.detach()
    with pytest.raises(LocalProtocolError, match="attached"):
        sender.send(b"x")


@pytest.mark.parametrize(
    ("mode", "settled", "ok"),
    [
        (SenderSettleMode.SETTLED, True, True),
        (SenderSettleMode.SETTLED, False, False),
        (SenderSettleMode.UNSETTLED, True, False),
        (SenderSettleMode.UNSETTLED, False, True),
        (SenderSettleMode.MIXED, True, True),
        (SenderSettleMode.MIXED, False, True),
    ],
)
def test_snd_settle_mode_is_enforced(
    pair: EnginePair, session: Session, mode: int, settled: bool, ok: bool
) -> None:
    sender, receiver = attach(pair, session, snd_settle_mode=mode)
    receiver.flow(1)
    pair.pump()
    if ok:
        assert sender.send(b"x", settled=settled).settled is settled
    else:
        with pytest.raises(LocalProtocolError, match="snd-settle-mode"):
            sender.send(b"x", settled=settled)


def test_settled_mode_presettles_by_default(pair: EnginePair, session: Session) -> None:
    sender, receiver = attach(pair, session, snd_settle_mode=SenderSettleMode.SETTLED)
    receiver.flow(1)
    pair.pump()
    assert sender.send(b"x").settled


def test_peer_max_message_size_is_enforced_on_send(pair: EnginePair, session: Session) -> None:
    receiver = session.attach_receiver("small", Source(), Target(), max_message_size=100)
    receiver.flow(5)
    pair.pump()
    sender = pair.take_one("server", LinkAttachRequested).link
    sender.send(b"x" * 100)
    with pytest.raises(LocalProtocolError) as info:
        sender.send(b"x" * 101)
    assert info.value.condition == Condition.MESSAGE_SIZE_EXCEEDED


def test_outcomes_are_all_known() -> None:
    # The outcome classes the delivery tests send round trip as themselves.
    assert {Accepted, Rejected, Released, Modified}


def test_detach_before_the_peer_answers(pair: EnginePair, session: Session) -> None:
    link = session.attach_sender("quick", Source(), Target(address="q"))
    link.detach()
    assert link.state is LinkState.DETACH_SENT
    pair.pump()
    # The server saw attach then detach; our side saw the answers but reports only the end.
    assert pair.take_one("server", LinkAttachRequested)
    assert pair.take_one("server", LinkDetached).by_peer
    assert not pair.take("client", LinkAttached)
    assert pair.take_one("client", LinkDetached).link is link
    assert link.state is LinkState.CLOSED
    assert session.links == []
    assert not session._awaiting_attach
