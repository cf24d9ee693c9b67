"""Hostile input against a real ``petrel broker`` process: each violation gets the answer the
spec calls for, from the endpoint it concerns, and nobody else notices.

Every case is played by hand on a raw socket, with frames built from ``petrel.spec``
performatives (:mod:`tests.helpers.frames`).  Around them a Proton client, the bystander,
keeps sending and receiving on the same broker and is checked after each case, and the
messages stored before the first case are all there after the last.  Section numbers are
those of OASIS AMQP 1.0: part 2 (transport), part 3 (messaging), part 5 (security).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from proton import Delivery
from proton import Message as ProtonMessage
from proton.reactor import Selector
from proton.utils import BlockingConnection, BlockingSender

from petrel.codec import encode
from petrel.errors import Condition, DecodeError
from petrel.message import Message, MessageView
from petrel.message import _view as _view_module
from petrel.message._sections import _section_at
from petrel.spec import (
    Accepted,
    ApplicationProperties,
    Attach,
    Begin,
    Close,
    Detach,
    Disposition,
    End,
    Flow,
    MessageAnnotations,
    Open,
    Rejected,
    Role,
    SaslChallenge,
    SaslCode,
    SaslInit,
    SaslMechanisms,
    SaslOutcome,
    SaslResponse,
    Source,
    Target,
    Transfer,
)
from petrel.spec.framing import AMQP_HEADER, FRAME_HEADER, FRAME_TYPE_SASL, SASL_HEADER, TLS_HEADER
from petrel.types import Symbol
from tests.helpers.frames import RawClient, frame, nested, sasl_frame, section
from tests.helpers.proton_client import (
    bodies,
    connect,
    drain,
    fetch,
    receiver,
    send,
    send_all,
    sender,
    settle,
    wait_for,
)
from tests.helpers.proton_client import (
    bystander as bystander_client,
)
from tests.helpers.servers import BrokerProcess, run_broker

pytestmark = pytest.mark.interop

CONFIG = """
[[users]]
name = "alice"
password = "wonderland"

[[queues]]
name = "kept"

[[queues]]
name = "full"
max_messages = 1

[[queues]]
name = "selected"

[[queues]]
name = "selected-types"

[[queues]]
name = "bystander"

[[queues]]
name = "doomed"
dead_letter_address = "doomed.dlq"

[[queues]]
name = "doomed.dlq"
"""

#: How many messages wait in ``kept`` while the hostile cases run.
KEPT = 20
#: The raw client's session windows.
WINDOW = 1000


@pytest.fixture(scope="module")
def broker() -> Iterator[BrokerProcess]:
    with run_broker(CONFIG) as process:
        yield process


@pytest.fixture(scope="module")
def kept(broker: BrokerProcess) -> list[str]:
    """Stored before the first hostile case: ``KEPT`` messages in ``kept``, and one in
    ``full``, which fills it (a producer there gets no credit)."""
    conn = connect(broker.url)
    try:
        expected = [f"kept-{i}" for i in range(KEPT)]
        send_all(sender(conn, "kept"), [ProtonMessage(body=body) for body in expected])
        send(sender(conn, "full"), "full-0")
    finally:
        conn.close()
    return expected


@pytest.fixture(scope="module")
def bystander(broker: BrokerProcess, kept: list[str]) -> Iterator[Callable[[], None]]:
    """A client connected all along; calling it checks that it still works."""
    with bystander_client(broker.url) as check:
        yield check


# --- a raw client's session -------------------------------------------------------------------


def _begin(channel: int = 0) -> bytes:
    return frame(Begin(next_outgoing_id=0, incoming_window=WINDOW, outgoing_window=WINDOW), channel)


@contextlib.contextmanager
def _raw_session(broker: BrokerProcess) -> Iterator[RawClient]:
    """A raw client, its connection open and a session begun on channel 0.  No SASL: a
    loopback listener takes a bare AMQP header."""
    with RawClient(broker.port) as client:
        client.send(AMQP_HEADER, frame(Open(container_id="raw")), _begin())
        client.expect(Open)
        client.expect(Begin)
        assert client.headers == [AMQP_HEADER]
        yield client


def _attach(client: RawClient, handle: int, address: str, role: bool, channel: int = 0) -> int:
    """Attach a link on our ``handle``; the broker's handle for it."""
    name = f"{'tx' if role == Role.SENDER else 'rx'}-{channel}-{handle}-{address}"
    attach = Attach(
        name=name,
        handle=handle,
        role=role,
        source=Source(address=None if role == Role.SENDER else address),
        target=Target(address=address if role == Role.SENDER else None),
        initial_delivery_count=0 if role == Role.SENDER else None,
    )
    client.send(frame(attach, channel))
    answer = client.expect(Attach)
    assert answer.name == name and answer.role != role
    return answer.handle


def _flow(
    client: RawClient, handle: int, credit: int, *, sent: int = 0, drain: bool = False
) -> bytes:
    """Our flow for a receiving link on our ``handle`` (``sent``: transfers we sent so far)."""
    begin = client.performatives(Begin)[0]
    received = len(client.performatives(Transfer))
    return frame(
        Flow(
            next_incoming_id=(begin.next_outgoing_id + received) & 0xFFFFFFFF,
            incoming_window=WINDOW,
            next_outgoing_id=sent,
            outgoing_window=WINDOW,
            handle=handle,
            delivery_count=0,
            link_credit=credit,
            drain=drain,
        )
    )


def _credit(client: RawClient, handle: int) -> None:
    """Wait for the broker to give its link ``handle`` credit."""
    while True:
        flow = client.expect(Flow)
        if flow.handle == handle and flow.link_credit:
            return


def _transfer(handle: int, delivery_id: int, body: str, channel: int = 0) -> bytes:
    tag = b"%d" % delivery_id
    message = Message(body=body).encode()
    return frame(
        Transfer(handle=handle, delivery_id=delivery_id, delivery_tag=tag), channel, message
    )


def _send_one(
    client: RawClient, address: str, body: str, *, handle: int, delivery_id: int, channel: int = 0
) -> None:
    """Attach a sender, send one message, see it accepted, detach: the session works."""
    theirs = _attach(client, handle, address, Role.SENDER, channel)
    _credit(client, theirs)
    client.send(_transfer(handle, delivery_id, body, channel))
    outcome = client.expect(Disposition)
    assert outcome.role == Role.RECEIVER and outcome.first == delivery_id
    assert isinstance(outcome.state, Accepted) and outcome.settled
    client.send(frame(Detach(handle=handle, closed=True), channel))
    assert client.expect(Detach).handle == theirs


def _messages(client: RawClient, handle: int) -> list[bytes]:
    """The messages the broker sent on its link ``handle``, joined from their transfers."""
    found: list[bytes] = []
    partial = b""
    for _, body, payload in client.frames:
        if isinstance(body, Transfer) and body.handle == handle:
            partial += payload
            if not body.more:
                found.append(partial)
                partial = b""
    return found


def _drain_raw(client: RawClient, address: str, handle: int) -> list[bytes]:
    """Everything the broker has for a plain consumer of ``address``, read as bytes: a
    drain (part 2.6.7) ends with the broker's flow using up the credit."""
    theirs = _attach(client, handle, address, Role.RECEIVER)
    client.send(_flow(client, handle, 1000, drain=True))
    while True:
        flow = client.expect(Flow)
        if flow.handle == theirs and flow.link_credit == 0:
            return _messages(client, theirs)


# --- SASL (part 5.3) ------------------------------------------------------------------------------


def _init(response: bytes | None = None) -> bytes:
    return sasl_frame(SaslInit(mechanism=Symbol("PLAIN"), initial_response=response))


def _truncated_sasl_frame() -> bytes:
    body = encode(SaslInit(mechanism=Symbol("PLAIN")))[:-3]
    return FRAME_HEADER.pack(8 + len(body), 2, FRAME_TYPE_SASL, 0) + body


@pytest.mark.parametrize(
    ("data", "code"),
    [
        # RFC 4616: message = [authzid] NUL authcid NUL passwd, all UTF-8.
        pytest.param(_init(b"alicewonderland"), SaslCode.AUTH, id="plain-without-nul"),
        pytest.param(_init(b"alice\0wonderland"), SaslCode.AUTH, id="plain-with-one-nul"),
        pytest.param(_init(b"\0alice\0wonder\0land"), SaslCode.AUTH, id="plain-with-three-nuls"),
        pytest.param(
            _init(b"\0al\xc0\xafice\0wonderland"), SaslCode.AUTH, id="plain-bad-utf8-user"
        ),
        pytest.param(_init(b"\0alice\0wonder\xffland"), SaslCode.AUTH, id="plain-bad-utf8-pass"),
        # Frames out of order, or not SASL frames at all.
        pytest.param(
            sasl_frame(SaslResponse(response=b"\0alice\0wonderland")),
            SaslCode.SYS_PERM,
            id="response-before-init",
        ),
        pytest.param(
            _init() + _init(b"\0alice\0wonderland"),
            SaslCode.SYS_PERM,
            id="second-init-after-a-challenge",
        ),
        pytest.param(
            sasl_frame(SaslMechanisms(sasl_server_mechanisms=(Symbol("PLAIN"),))),
            SaslCode.SYS_PERM,
            id="mechanisms-from-the-client",
        ),
        pytest.param(
            sasl_frame(SaslOutcome(code=SaslCode.OK)),
            SaslCode.SYS_PERM,
            id="outcome-from-the-client",
        ),
        pytest.param(frame(Open(container_id="early")), SaslCode.SYS_PERM, id="amqp-frame"),
        pytest.param(
            sasl_frame(Open(container_id="early")),
            SaslCode.SYS_PERM,
            id="performative-in-a-sasl-frame",
        ),
        pytest.param(_truncated_sasl_frame(), SaslCode.SYS_PERM, id="undecodable-sasl-frame"),
        pytest.param(
            FRAME_HEADER.pack(0x7FFFFFFF, 2, FRAME_TYPE_SASL, 0),
            SaslCode.SYS_PERM,
            id="oversized-sasl-frame",
        ),
    ],
)
def test_bad_sasl(
    broker: BrokerProcess, bystander: Callable[[], None], data: bytes, code: SaslCode
) -> None:
    """Part 5.3.2: the server ends every exchange with a ``sasl-outcome``; there is no AMQP
    connection yet to close.  5.3.3.6: ``auth`` for credentials that do not authenticate
    (malformed PLAIN included), ``sys-perm`` for a client that broke the exchange (the same
    client will not succeed by trying again).  Then the server hangs up."""
    with RawClient(broker.port) as client:
        client.send(SASL_HEADER, data)
        client.wait_closed()
    assert client.headers == [SASL_HEADER]
    sent = [body for _, body, _ in client.frames]
    assert isinstance(sent[0], SaslMechanisms)
    assert all(isinstance(body, SaslChallenge) for body in sent[1:-1]), sent
    assert isinstance(sent[-1], SaslOutcome) and sent[-1].code == code, sent
    bystander()


def test_a_second_sasl_init_after_the_outcome(
    broker: BrokerProcess, bystander: Callable[[], None]
) -> None:
    """Part 5.3.2: after ``sasl-outcome`` ok the SASL layer is done, and what comes next must
    be the AMQP protocol header.  A second ``sasl-init`` is not one: part 2.2, the server
    answers with the header it wants there (AMQP) and hangs up."""
    init = _init(b"\0alice\0wonderland")
    with RawClient(broker.port) as client:
        client.send(SASL_HEADER, init, init)
        client.wait_closed()
    assert client.headers == [SASL_HEADER, AMQP_HEADER]
    sent = [body for _, body, _ in client.frames]
    assert [type(body) for body in sent] == [SaslMechanisms, SaslOutcome]
    assert sent[1].code == SaslCode.OK
    bystander()


def test_plain_still_authenticates(broker: BrokerProcess, bystander: Callable[[], None]) -> None:
    """After all that, a client with good credentials gets in."""
    conn = connect(broker.url, user="alice", password="wonderland", allowed_mechs="PLAIN")
    try:
        send(sender(conn, "bystander-plain"), "in")
        assert bodies(drain(conn, receiver(conn, "bystander-plain"))) == ["in"]
    finally:
        conn.close()
    bystander()


# --- protocol headers (part 2.2) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "answer"),
    [
        pytest.param(b"AMQP\x00\x02\x00\x00", AMQP_HEADER, id="amqp-version-2"),
        pytest.param(b"AMQP\x00\x00\x09\x01", AMQP_HEADER, id="amqp-0-9-1"),
        pytest.param(b"AMQP\x03\x01\x00\x01", SASL_HEADER, id="sasl-revision-1"),
        pytest.param(b"AMQP\x01\x01\x00\x0a", SASL_HEADER, id="amqp-0-10"),
        pytest.param(b"AMQP\x05\x01\x00\x00", SASL_HEADER, id="protocol-id-5"),
        pytest.param(TLS_HEADER, SASL_HEADER, id="tls-on-a-plain-listener"),
    ],
)
def test_an_unsupported_protocol_header(
    broker: BrokerProcess, bystander: Callable[[], None], header: bytes, answer: bytes
) -> None:
    """Part 2.2: for a version it does not support the server MUST send a protocol header
    with one it does, then close the socket.  Where this listener speaks the protocol the
    header names (AMQP, SASL) the answer is that protocol's header, telling the client the
    version to use; otherwise (TLS on a plain listener, part 5.2; unknown ids) the SASL
    header, the one this broker prefers."""
    with RawClient(broker.port) as client:
        client.send(header)
        client.wait_closed()
    assert client.headers == [answer]
    assert client.frames == []
    bystander()


# --- sessions and links (part 2) ---------------------------------------------------------------


def test_a_transfer_without_credit(
    broker: BrokerProcess, bystander: Callable[[], None], name: str
) -> None:
    """Part 2.6.7: a sender with no link-credit MUST NOT send; the receiver may detach the
    link with ``amqp:link:transfer-limit-exceeded`` (2.8.18).  Only the link ends: the
    session and connection carry on, and the message is not stored."""
    with _raw_session(broker) as client:
        theirs = _attach(client, 0, "full", Role.SENDER)  # full: the broker grants no credit
        # A round trip (a session flow asking for an echo): had there been credit, its flow
        # would have come first.
        client.send(
            frame(
                Flow(
                    next_incoming_id=0,
                    incoming_window=WINDOW,
                    next_outgoing_id=0,
                    outgoing_window=WINDOW,
                    echo=True,
                )
            )
        )
        client.expect(Flow)
        assert not [f for f in client.performatives(Flow) if f.handle == theirs and f.link_credit]
        client.send(_transfer(0, 0, "uninvited"))
        detach = client.expect(Detach)
        assert detach.handle == theirs and detach.closed
        assert detach.error is not None
        assert detach.error.condition == Condition.TRANSFER_LIMIT_EXCEEDED
        client.send(frame(Detach(handle=0, closed=True)))
        _send_one(client, name, "after", handle=1, delivery_id=1)
        assert not client.performatives(End) and not client.performatives(Close)
    bystander()


def test_an_attach_on_a_handle_in_use(
    broker: BrokerProcess, bystander: Callable[[], None], name: str
) -> None:
    """Part 2.7.3 (attach, ``handle``): "an attempt to attach using a handle which is already
    associated with a link MUST be responded to with an immediate close carrying a
    handle-in-use session-error".  A session error (2.8.17) is carried by an ``end``: the
    session ends at once, and the connection carries on with a new one."""
    with _raw_session(broker) as client:
        _attach(client, 0, name, Role.SENDER)
        second = Attach(
            name="second",
            handle=0,
            role=Role.RECEIVER,
            source=Source(address=name),
            target=Target(),
        )
        client.send(frame(second))
        end = client.expect(End)
        assert end.error is not None and end.error.condition == Condition.HANDLE_IN_USE
        client.send(frame(End()))
        client.send(_begin(channel=1))
        assert client.expect(Begin).remote_channel == 1
        _send_one(client, name, "after", handle=0, delivery_id=0, channel=1)
        assert not client.performatives(Close)
    bystander()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(Transfer(handle=7, delivery_id=0, delivery_tag=b"t"), id="transfer"),
        pytest.param(
            Flow(
                next_incoming_id=0,
                incoming_window=WINDOW,
                next_outgoing_id=0,
                outgoing_window=WINDOW,
                handle=7,
                delivery_count=0,
                link_credit=10,
            ),
            id="flow",
        ),
        pytest.param(Detach(handle=7, closed=True), id="detach"),
    ],
)
def test_a_frame_for_an_unattached_handle(
    broker: BrokerProcess, bystander: Callable[[], None], name: str, body: Any
) -> None:
    """Part 2.8.17: ``amqp:session:unattached-handle``, a handle that no link uses: the
    session ends, the connection carries on."""
    with _raw_session(broker) as client:
        client.send(frame(body))
        end = client.expect(End)
        assert end.error is not None and end.error.condition == Condition.UNATTACHED_HANDLE
        client.send(frame(End()))
        client.send(_begin(channel=1))
        client.expect(Begin)
        _send_one(client, name, "after", handle=0, delivery_id=0, channel=1)
        assert not client.performatives(Close)
    bystander()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            Attach(name="x", handle=0, role=Role.SENDER, initial_delivery_count=0), id="attach"
        ),
        pytest.param(Transfer(handle=0, delivery_id=0, delivery_tag=b"t"), id="transfer"),
        pytest.param(
            Flow(incoming_window=WINDOW, next_outgoing_id=0, outgoing_window=WINDOW), id="flow"
        ),
        pytest.param(Disposition(role=Role.RECEIVER, first=0, settled=True), id="disposition"),
        pytest.param(Detach(handle=0), id="detach"),
        pytest.param(End(), id="end"),
    ],
)
def test_a_frame_on_a_channel_without_a_session(
    broker: BrokerProcess, bystander: Callable[[], None], body: Any
) -> None:
    """A session frame on a channel no begin opened.  Part 2 names no condition for it;
    like Proton (``no such channel``, and so Qpid Dispatch), the broker closes the
    connection with ``amqp:not-allowed`` (2.8.15: a frame used in a way the specification
    does not allow)."""
    with _raw_session(broker) as client:
        client.send(frame(body, channel=5))
        close = client.expect(Close)
        client.wait_closed()
    assert close.error is not None and close.error.condition == Condition.NOT_ALLOWED
    assert not client.performatives(End)
    bystander()


def test_dispositions_for_unknown_deliveries(
    broker: BrokerProcess, bystander: Callable[[], None], name: str
) -> None:
    """Part 2.7.6 does not say what becomes of a disposition naming deliveries that do not
    exist.  Proton ignores the ids it has no delivery for (and with it Qpid Dispatch, and
    Artemis through proton-j); so does the broker: nothing ends, and the delivery it does
    hold is not touched, so detaching releases it back to the queue."""
    with _raw_session(broker) as client:
        _send_one(client, name, "held", handle=0, delivery_id=0)
        theirs = _attach(client, 1, name, Role.RECEIVER)
        client.send(_flow(client, 1, 1, sent=1))
        transfer = client.expect(Transfer)
        assert transfer.handle == theirs and not transfer.settled
        held = transfer.delivery_id
        assert held is not None
        client.send(
            frame(
                Disposition(
                    role=Role.RECEIVER,
                    first=held + 1,
                    last=held + 1000,
                    settled=True,
                    state=Accepted(),
                )
            ),
            frame(Disposition(role=Role.RECEIVER, first=held + 100_000, state=Rejected())),
            frame(
                Disposition(
                    role=Role.SENDER, first=0, last=0xFFFFFFFF, settled=True, state=Accepted()
                )
            ),
        )
        _send_one(client, name, "after", handle=2, delivery_id=1)
        client.send(frame(Detach(handle=1, closed=True)))
        while client.expect(Detach).handle != theirs:
            pass
        assert not client.performatives(End) and not client.performatives(Close)
    bystander()
    conn = connect(broker.url)
    try:
        got = drain(conn, receiver(conn, name))
        assert bodies(got) == ["held", "after"]
        for _, delivery in got:
            settle(delivery)
    finally:
        conn.close()


# --- messages a selector reads (part 3.2) ----------------------------------------------------

_COLOR = encode("color")
_RED = encode("red")
_BOMB_KEY = encode(Symbol("x-opt-bomb"))
#: An array32 of 2**31 - 1 nulls: ten bytes, and no room needed per element.
_NULLS = b"\xf0" + (5).to_bytes(4, "big") + (2**31 - 1).to_bytes(4, "big") + b"\x40"


def _with(sections: bytes, body: str) -> bytes:
    return sections + Message(body=body).encode()


#: Messages no selector can read a value from.  Application-properties values are simple
#: types (part 3.2.5), so a list or map there is already wrong; past 64 levels the codec
#: refuses to decode at all.  Message annotations may hold anything (3.2.3), so the bombs
#: there are a nesting far past the codec's limit and an array claiming 2**31 elements.
BOMBS = {
    "properties-list-60": _with(
        section(ApplicationProperties, nested(nested(_RED, 60), 1, key=_COLOR)), "list-60"
    ),
    "properties-map-60": _with(
        section(ApplicationProperties, nested(_RED, 60, key=_COLOR)), "map-60"
    ),
    "properties-list-1000": _with(
        section(ApplicationProperties, nested(nested(_RED, 1000), 1, key=_COLOR)), "list-1000"
    ),
    "annotations-10000": _with(
        section(MessageAnnotations, nested(nested(encode(None), 10_000), 1, key=_BOMB_KEY)),
        "annotations-10000",
    ),
    "annotations-nulls": _with(
        section(MessageAnnotations, nested(_NULLS, 1, key=_BOMB_KEY)), "annotations-nulls"
    ),
}


def _send_encoded(conn: BlockingConnection, tx: BlockingSender, payload: bytes) -> Delivery:
    """Send message bytes as they are; the broker's outcome."""
    delivery = tx.link.delivery(tx.link.delivery_tag())
    tx.link.stream(payload)
    tx.link.advance()
    wait_for(conn, lambda: bool(delivery.remote_state))
    return delivery


def test_unreadable_properties_reaching_a_selector(
    broker: BrokerProcess, conn: BlockingConnection, bystander: Callable[[], None]
) -> None:
    """The bare message is immutable (part 3.2), and the broker decodes properties only to
    select on them (Artemis too): it stores these messages as they are.  Its JMS selector
    finds no value it can compare in them, or the codec stops at its nesting limit, and
    either way the message does not match; nothing recurses without bound or allocates
    2**31 elements, and the messages behind them are delivered.  A consumer without a
    selector gets them back byte for byte."""
    selector = Selector("color = 'red' OR color IN ('crimson') OR color LIKE 'scarlet%'")
    rx = receiver(conn, "selected", credit=20, options=selector)
    tx = sender(conn, "selected")
    red = [Message(body=f"red-{i}", application_properties={"color": "red"}) for i in (1, 2)]
    for payload in [red[0].encode(), *BOMBS.values(), red[1].encode()]:
        delivery = _send_encoded(conn, tx, payload)
        assert delivery.remote_state == Delivery.ACCEPTED, payload[:16]
        delivery.settle()
    got = [fetch(conn, rx), fetch(conn, rx)]
    assert bodies(got) == ["red-1", "red-2"]
    for _, delivery in got:
        settle(delivery)
    assert drain(conn, rx) == []
    bystander()
    with _raw_session(broker) as client:
        assert _drain_raw(client, "selected", 0) == list(BOMBS.values())
    bystander()


def test_a_selector_reads_only_what_it_names(
    broker: BrokerProcess, conn: BlockingConnection, bystander: Callable[[], None]
) -> None:
    """Message annotations the broker cannot decode do not hide a message from a selector
    over application properties, which never reads them; ``JMSType`` does read them, and
    finds no value there."""
    red = section(ApplicationProperties, encode({"color": "red"}))
    # Past our codec's depth limit, within what Proton's decoder (the receiver here) takes.
    bombed = section(MessageAnnotations, nested(nested(encode(None), 100), 1, key=_BOMB_KEY))
    payload = bombed + red + Message(body="red, annotated badly").encode()
    by_type = receiver(conn, "selected-types", credit=5, options=Selector("JMSType = 'x'"))
    tx = sender(conn, "selected-types")
    assert _send_encoded(conn, tx, payload).remote_state == Delivery.ACCEPTED
    by_color = receiver(conn, "selected-types", credit=5, options=Selector("color = 'red'"))
    message, delivery = fetch(conn, by_color)
    assert message.body == "red, annotated badly" and message.properties == {"color": "red"}
    settle(delivery)
    assert drain(conn, by_type) == []
    bystander()


def test_dead_lettering_a_message_whose_annotations_do_not_decode(
    broker: BrokerProcess, conn: BlockingConnection, bystander: Callable[[], None]
) -> None:
    """Message annotations may hold anything (part 3.2.3) and the broker passes them on as
    they are, but dead-lettering adds annotations of its own.  A message it accepted must
    not be lost there: rejecting it moves it to the dead-letter address, its own
    annotations kept byte for byte beside the broker's."""
    bomb = BOMBS["annotations-10000"]
    delivery = _send_encoded(conn, sender(conn, "doomed"), bomb)  # in frames that fit
    assert delivery.remote_state == Delivery.ACCEPTED
    with _raw_session(broker) as client:
        _attach(client, 0, "doomed", Role.RECEIVER)
        client.send(_flow(client, 0, 1, sent=0))
        transfer = client.expect(Transfer)
        assert transfer.delivery_id is not None
        rejected = Disposition(
            role=Role.RECEIVER, first=transfer.delivery_id, settled=True, state=Rejected()
        )
        client.send(frame(rejected))
        moved = _drain_raw(client, "doomed.dlq", 1)
    assert len(moved) == 1
    # The bare message is as it was sent; the bomb is still in the annotations, and the
    # broker's reason is there too.
    view = MessageView(moved[0])
    assert moved[0].endswith(bomb[bomb.index(b"\x00\x53\x77") :])
    bomb_annotations = bomb[12 : bomb.index(b"\x00\x53\x77")]  # after 00 53 72 d1 size count
    assert bomb_annotations in moved[0]
    assert b"amqp:rejected" in moved[0] and b"x-opt-petrel-dead-letter-reason" in moved[0]
    assert view.body_type == "value"
    bystander()


@pytest.mark.pure_python
def test_an_undecodable_section_is_decoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A message whose properties do not decode stays in its queue, where a selector reads
    it again at every dispatch: its view keeps the failure instead of decoding again."""
    decoded = []

    def counting(*args: Any) -> Any:
        decoded.append(args[3])
        return _section_at(*args)

    monkeypatch.setattr(_view_module, "_section_at", counting)
    view = MessageView(BOMBS["properties-list-1000"])
    errors = []
    for _ in range(3):
        with pytest.raises(DecodeError) as caught:
            _ = view.application_properties
        errors.append(caught.value.description)
    assert decoded == [ApplicationProperties.DESCRIPTOR]
    assert len(set(errors)) == 1 and "nest" in errors[0]


# --- afterwards --------------------------------------------------------------------------------


def test_nothing_stored_was_lost(
    broker: BrokerProcess, kept: list[str], bystander: Callable[[], None]
) -> None:
    """Every message stored before the hostile cases is still there, the broker process is
    alive, and it logged no traceback (no recursion error, no engine failure)."""
    bystander()
    conn = connect(broker.url)
    try:
        got = drain(conn, receiver(conn, "kept"))
        full = drain(conn, receiver(conn, "full"))
        assert bodies(got) == kept
        assert bodies(full) == ["full-0"]
        for _, delivery in got + full:
            settle(delivery)
    finally:
        conn.close()
    assert broker.proc.poll() is None
    log = broker.log()
    assert "Traceback" not in log and "RecursionError" not in log, log
