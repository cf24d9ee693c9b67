"""The asyncio driver over real sockets: Petrel against Proton both ways, TLS, lifecycle."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from petrel import Message, spec
from petrel.driver import AmqpProtocol, Listener, TlsConfig, connect, parse_url
from petrel.driver.protocol import READ_SLICE
from petrel.engine import ConnectionConfig, SaslConfig
from petrel.engine import events as ev
from petrel.errors import AmqpError
from tests.helpers.servers import proton_broker

proton = pytest.importorskip("proton")
pytestmark = pytest.mark.interop


class Recorder:
    """A client-side handler that keeps every event and wakes waiters."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.changed = asyncio.Event()

    def handle_event(self, protocol: AmqpProtocol, event: Any) -> None:
        self.events.append(event)
        self.changed.set()

    async def wait_for(self, kind: type, predicate: Any = None, timeout: float = 10) -> Any:
        async def scan() -> Any:
            while True:
                for event in self.events:
                    if isinstance(event, kind) and (predicate is None or predicate(event)):
                        return event
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(scan(), timeout)


class EchoServer:
    """A server-side handler: answers every attach, grants credit, accepts every message,
    and sends each one back on any sending link attached to the same address."""

    def __init__(self, protocol: AmqpProtocol) -> None:
        self.protocol = protocol
        self.received: list[bytes] = []

    def handle_event(self, protocol: AmqpProtocol, event: Any) -> None:
        if isinstance(event, ev.ConnectionOpened):
            protocol.engine.open()
        elif isinstance(event, ev.LinkAttachRequested):
            event.link.attach()
            if event.link.is_receiver:
                event.link.flow(100)
        elif isinstance(event, ev.DeliveryReceived):
            self.received.append(event.payload)
            event.delivery.update(spec.Accepted(), settled=True)
            if event.link.credit < 50:
                event.link.flow(100)


@pytest.fixture
async def echo_listener() -> AsyncIterator[tuple[Listener, list[EchoServer]]]:
    servers: list[EchoServer] = []

    def make(protocol: AmqpProtocol) -> EchoServer:
        server = EchoServer(protocol)
        servers.append(server)
        return server

    listener = Listener(["amqp://127.0.0.1:0"], lambda: ConnectionConfig(container_id="echo"), make)
    async with listener:
        yield listener, servers


def _port(listener: Listener) -> int:
    return listener.bound[0][1]


async def _send_one(protocol: AmqpProtocol, recorder: Recorder, address: str, body: Any) -> Any:
    session = protocol.engine.begin_session()
    link = session.attach_sender("sender", target=spec.Target(address=address))
    protocol.flush()
    await recorder.wait_for(ev.LinkFlowed, lambda e: e.link is link and e.credit > 0)
    delivery = link.send(Message(body=body).encode())
    protocol.flush()
    update = await recorder.wait_for(ev.DeliveryUpdated, lambda e: e.delivery is delivery)
    return update.state


def test_parse_url() -> None:
    a = parse_url("amqps://us%40er:p%3Ass@example.com/vhost")
    assert (a.scheme, a.host, a.port, a.user, a.password, a.vhost) == (
        "amqps",
        "example.com",
        5671,
        "us@er",
        "p:ss",
        "vhost",
    )
    assert parse_url("localhost:1234").port == 1234
    assert parse_url("amqp://[::1]").host == "::1"
    with pytest.raises(ValueError, match="unsupported URL scheme"):
        parse_url("http://localhost")
    with pytest.raises(ValueError, match="bad port"):
        parse_url("amqp://localhost:99999")


async def test_petrel_client_against_proton_broker() -> None:
    with proton_broker() as port:
        recorder = Recorder()
        protocol = await connect(f"amqp://127.0.0.1:{port}", ConnectionConfig(), recorder)
        state = await _send_one(protocol, recorder, "q1", "hello proton")
        assert isinstance(state, spec.Accepted)
        # And back: a receiving link gets the message we sent.
        session = protocol.engine.begin_session()
        receiver = session.attach_receiver("receiver", source=spec.Source(address="q1"))
        receiver.flow(10)
        protocol.flush()
        got = await recorder.wait_for(ev.DeliveryReceived)
        assert Message.decode(got.payload).body == "hello proton"
        got.delivery.update(spec.Accepted(), settled=True)
        await protocol.close()
        assert protocol.engine.finished


async def test_petrel_client_with_sasl_anonymous_against_proton() -> None:
    with proton_broker() as port:
        recorder = Recorder()
        config = ConnectionConfig(sasl=SaslConfig(mechanisms=["ANONYMOUS"]))
        protocol = await connect(f"amqp://127.0.0.1:{port}", config, recorder)
        sasl = await recorder.wait_for(ev.SaslCompleted)
        assert sasl.code == 0 and sasl.mechanism == "ANONYMOUS"
        await protocol.close()


async def test_petrel_client_over_tls_against_proton(tls_files: dict[str, str]) -> None:
    with proton_broker(tls=(tls_files["server_cert"], tls_files["server_key"])) as port:
        recorder = Recorder()
        protocol = await connect(
            f"amqps://localhost:{port}",
            ConnectionConfig(),
            recorder,
            tls=TlsConfig(ca_file=tls_files["ca"]),
        )
        assert protocol.transport is not None
        assert protocol.transport.get_extra_info("ssl_object") is not None
        assert isinstance(await _send_one(protocol, recorder, "tls-q", "secret"), spec.Accepted)
        await protocol.close()


async def test_tls_verification_is_on_by_default(tls_files: dict[str, str]) -> None:
    import ssl

    tls = (tls_files["server_cert"], tls_files["server_key"])
    with proton_broker(tls=tls) as port, pytest.raises(ssl.SSLCertVerificationError):
        await connect(f"amqps://localhost:{port}", ConnectionConfig(), Recorder())


def _proton_client(url: str, address: str, bodies: list[str], out: dict[str, Any]) -> None:
    from proton.handlers import MessagingHandler
    from proton.reactor import Container

    class Client(MessagingHandler):  # type: ignore[misc]
        def on_start(self, event: Any) -> None:
            conn = event.container.connect(url, sasl_enabled=False)
            event.container.create_sender(conn, address)

        def on_sendable(self, event: Any) -> None:
            while bodies and event.sender.credit:
                event.sender.send(proton.Message(body=bodies.pop(0)))

        def on_accepted(self, event: Any) -> None:
            out["accepted"] = out.get("accepted", 0) + 1
            if not bodies and out["accepted"] == out["expected"]:
                event.connection.close()

        def on_transport_error(self, event: Any) -> None:
            out["error"] = event.transport.condition

    Container(Client()).run()


async def test_proton_container_against_petrel_listener(
    echo_listener: tuple[Listener, list[EchoServer]],
) -> None:
    listener, servers = echo_listener
    out: dict[str, Any] = {"expected": 20}
    bodies = [f"m{i}" for i in range(20)]
    url = f"amqp://127.0.0.1:{_port(listener)}"
    await asyncio.to_thread(_proton_client, url, "echo", bodies, out)
    assert out.get("accepted") == 20, out
    assert [Message.decode(p).body for p in servers[0].received] == [f"m{i}" for i in range(20)]


async def test_proton_client_over_tls_against_petrel_listener(tls_files: dict[str, str]) -> None:
    servers: list[EchoServer] = []

    def make(protocol: AmqpProtocol) -> EchoServer:
        servers.append(EchoServer(protocol))
        return servers[-1]

    tls = TlsConfig(cert_file=tls_files["server_cert"], key_file=tls_files["server_key"])
    async with Listener(["amqps://127.0.0.1:0"], ConnectionConfig, make, tls=tls) as listener:
        from proton import SSLDomain
        from proton.utils import BlockingConnection

        def run() -> None:
            domain = SSLDomain(SSLDomain.MODE_CLIENT)
            domain.set_trusted_ca_db(tls_files["ca"])
            domain.set_peer_authentication(SSLDomain.VERIFY_PEER_NAME)
            conn = BlockingConnection(
                f"amqps://localhost:{_port(listener)}", ssl_domain=domain, sasl_enabled=False
            )
            sender = conn.create_sender("tls")
            sender.send(proton.Message(body="over tls"))
            conn.close()

        await asyncio.to_thread(run)
    assert Message.decode(servers[0].received[0]).body == "over tls"


async def test_garbage_on_one_connection_leaves_others_alone(
    echo_listener: tuple[Listener, list[EchoServer]],
) -> None:
    listener, _ = echo_listener
    port = _port(listener)
    recorder = Recorder()
    good = await connect(f"amqp://127.0.0.1:{port}", ConnectionConfig(), recorder)

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"AMQP\x00\x01\x00\x00" + b"\xff" * 64)
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(4096), 5)
    # Our protocol header, then a close frame naming a framing or decode error, then EOF.
    assert reply.startswith(b"AMQP\x00\x01\x00\x00")
    rest = await asyncio.wait_for(reader.read(), 5)
    data = reply + rest
    assert b"amqp:connection:framing-error" in data or b"amqp:decode-error" in data
    writer.close()
    await writer.wait_closed()

    assert isinstance(await _send_one(good, recorder, "still-ok", "fine"), spec.Accepted)
    await good.close()


async def test_wrong_protocol_version_gets_our_header_then_eof(
    echo_listener: tuple[Listener, list[EchoServer]],
) -> None:
    listener, _ = echo_listener
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(listener))
    writer.write(b"AMQP\x00\x00\x09\x01")
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    assert data == b"AMQP\x00\x01\x00\x00"
    writer.close()
    await writer.wait_closed()


async def test_lost_socket_becomes_connection_closed(
    echo_listener: tuple[Listener, list[EchoServer]],
) -> None:
    listener, _ = echo_listener
    recorder = Recorder()
    protocol = await connect(f"amqp://127.0.0.1:{_port(listener)}", ConnectionConfig(), recorder)
    for server_side in list(listener.connections):
        server_side.abort_if_open()
    closed = await recorder.wait_for(ev.ConnectionClosed)
    assert closed.error is not None
    await asyncio.wait_for(protocol.closed, 5)
    assert protocol.engine.finished


async def test_close_waits_for_the_peer_then_gives_up() -> None:
    # A peer that answers the headers but never answers close: close() returns after its timeout.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    stop = threading.Event()

    def silent_peer() -> None:
        conn, _ = server.accept()
        conn.settimeout(0.2)
        sent_header = False
        while not stop.is_set():
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            if not data:
                break
            if not sent_header:
                conn.sendall(b"AMQP\x00\x01\x00\x00" + _open_frame())
                sent_header = True
        conn.close()

    thread = threading.Thread(target=silent_peer, daemon=True)
    thread.start()
    try:
        protocol = await connect(f"amqp://127.0.0.1:{port}", ConnectionConfig(), Recorder())
        await protocol.close(timeout=0.5)
        assert protocol.transport is not None and protocol.transport.is_closing()
    finally:
        stop.set()
        thread.join(5)
        server.close()


def _open_frame() -> bytes:
    from petrel import codec
    from petrel.spec.framing import FRAME_HEADER

    body = codec.encode(spec.Open(container_id="silent"))
    return FRAME_HEADER.pack(8 + len(body), 2, 0, 0) + body


async def test_connect_refused_raises_oserror() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(OSError):
        await connect(f"amqp://127.0.0.1:{port}", ConnectionConfig(), Recorder())


async def test_listen_on_an_address_in_use_names_it() -> None:
    async with Listener(["amqp://127.0.0.1:0"], ConnectionConfig, EchoServer) as first:
        port = _port(first)
        second = Listener([f"amqp://127.0.0.1:{port}"], ConnectionConfig, EchoServer)
        with pytest.raises(OSError, match=f"cannot listen on amqp://127.0.0.1:{port}"):
            await second.start()


async def test_peer_close_with_error_reaches_the_closed_future(
    echo_listener: tuple[Listener, list[EchoServer]],
) -> None:
    listener, _ = echo_listener
    recorder = Recorder()
    protocol = await connect(f"amqp://127.0.0.1:{_port(listener)}", ConnectionConfig(), recorder)
    for server_side in list(listener.connections):
        server_side.engine.close(AmqpError("go away", condition="amqp:connection:forced"))
        server_side.flush()
    error = await asyncio.wait_for(protocol.closed, 5)
    assert error is not None
    assert error.condition == "amqp:connection:forced"
    assert error.description == "go away"


async def test_many_messages_are_written_in_few_socket_writes(
    echo_listener: tuple[Listener, list[EchoServer]],
) -> None:
    listener, servers = echo_listener
    recorder = Recorder()
    protocol = await connect(f"amqp://127.0.0.1:{_port(listener)}", ConnectionConfig(), recorder)
    assert protocol.transport is not None
    writes = 0
    real_write = protocol.transport.write

    def counting_write(data: Any) -> None:
        nonlocal writes
        writes += 1
        real_write(data)

    session = protocol.engine.begin_session()
    link = session.attach_sender("burst", target=spec.Target(address="burst"))
    protocol.flush()
    await recorder.wait_for(ev.LinkFlowed, lambda e: e.link is link and e.credit >= 50)
    protocol.transport.write = counting_write  # type: ignore[method-assign]
    payload = Message(body="x").encode()
    server = next(s for s in servers if s.protocol.engine is not None and s.received == [])
    for _ in range(50):
        link.send(payload, settled=True)
        protocol.flush()
    for _ in range(500):
        if len(server.received) >= 50:
            break
        await asyncio.sleep(0.01)
    assert len(server.received) == 50
    assert writes == 1
    await protocol.close()


async def test_a_big_read_is_handled_a_slice_per_loop_turn(
    echo_listener: tuple[Listener, list[EchoServer]],
) -> None:
    # One peer's long burst must not hold the loop: the server hands the engine at most
    # READ_SLICE bytes of it per loop turn, with reading paused until the rest is done.
    listener, servers = echo_listener
    turn = 0

    async def count_turns() -> None:
        nonlocal turn
        while True:
            turn += 1
            await asyncio.sleep(0)

    counter = asyncio.create_task(count_turns())
    recorder = Recorder()
    protocol = await connect(f"amqp://127.0.0.1:{_port(listener)}", ConnectionConfig(), recorder)
    session = protocol.engine.begin_session()
    link = session.attach_sender("burst", target=spec.Target(address="burst"))
    protocol.flush()
    await recorder.wait_for(ev.LinkFlowed, lambda e: e.link is link and e.credit >= 96)
    server = next(s for s in servers if s.received == [])
    turns: list[int] = []
    reading: list[bool] = []

    class NoteTurns:
        """The echo server, noting the loop turn and the reading state of each message."""

        def handle_event(self, peer: AmqpProtocol, event: Any) -> None:
            if isinstance(event, ev.DeliveryReceived):
                turns.append(turn)
                assert peer.transport is not None
                reading.append(peer.transport.is_reading())
            server.handle_event(peer, event)

    server.protocol.handler = NoteTurns()
    payload = Message(body=b"x" * 1000).encode()
    for _ in range(96):
        link.send(payload, settled=True)
    protocol.flush()  # about 100 KB in one write
    try:
        for _ in range(500):
            if len(server.received) >= 96:
                break
            await asyncio.sleep(0.01)
        assert len(server.received) == 96
        per_turn = [turns.count(t) for t in sorted(set(turns))]
        assert max(per_turn) <= READ_SLICE // len(payload) + 1, per_turn
        assert len(per_turn) >= 3, per_turn
        assert not all(reading), "reading was never paused for the rest of a big read"
        assert server.protocol.transport is not None
        assert server.protocol.transport.is_reading()  # and resumed once it was done
    finally:
        counter.cancel()
        await protocol.close()
