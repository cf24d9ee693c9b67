"""Bad TLS peers, both ways: each gets a clear error, the server logs one clear line, and a
connection opened before carries on.

The server is an in-process broker whose listener requires client certificates
from ``ca``; the bad clients are plain ``ssl`` sockets (a TLS 1.1 one among
them) and Petrel's client; the bad server for our client is an ``ssl`` socket
server that speaks TLS 1.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import petrel
from petrel.broker import Broker
from petrel.driver import Listener, TlsConfig, client_context, server_context
from petrel.engine import ConnectionConfig
from petrel.server.config import BrokerSettings, LimitSettings, ListenerSettings, TlsSettings
from tests.helpers.certs import Authority, Pem


@pytest.fixture
def ca(tmp_path: Path) -> Authority:
    return Authority(tmp_path, "ca")


@pytest.fixture
def other(tmp_path: Path) -> Authority:
    return Authority(tmp_path, "other")


@pytest.fixture
def server(ca: Authority) -> Pem:
    return ca.issue("server", "localhost", "127.0.0.1", common_name="localhost")


@pytest.fixture
def client(ca: Authority) -> Pem:
    return ca.issue("client", common_name="good-client")


@pytest.fixture
async def broker(ca: Authority, server: Pem) -> AsyncIterator[Broker]:
    tls = TlsSettings(
        cert_file=server.cert, key_file=server.key, ca_file=ca.cert, require_client_cert=True
    )
    listener = ListenerSettings(url="amqps://127.0.0.1:0", tls=tls)
    broker = Broker(BrokerSettings(store="memory", listeners=[listener]))
    await broker.start()
    yield broker
    await broker.stop(timeout=1.0)


@pytest.fixture
async def good(broker: Broker, ca: Authority, client: Pem) -> AsyncIterator[petrel.Connection]:
    """A connection opened before the bad peer comes, checked after it has gone."""
    tls = TlsConfig(ca_file=ca.cert, cert_file=client.cert, key_file=client.key)
    conn = await petrel.connect(f"amqps://localhost:{broker.bound[0][1]}", tls=tls)
    yield conn
    sender = await conn.open_sender("still-good")
    await sender.send(petrel.Message("after the bad peer"))
    receiver = await conn.open_receiver("still-good")
    delivery = await receiver.receive(timeout=5)
    assert delivery.message.body == "after the bad peer"
    await delivery.accept()
    await conn.close()


async def logged(caplog: pytest.LogCaptureFixture, text: str) -> str:
    """The one log line that says ``text`` (the server logs after the client gave up: wait)."""
    for _ in range(200):
        lines = [r.getMessage() for r in caplog.records if text in r.getMessage()]
        if lines:
            await asyncio.sleep(0.05)  # and no second one for the same peer
            lines = [r.getMessage() for r in caplog.records if text in r.getMessage()]
            assert len(lines) == 1, lines
            return lines[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no log line saying {text!r}:\n{caplog.text}")


def _context(ca: Authority, pem: Pem | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca.cert)
    if pem is not None:
        context.load_cert_chain(pem.cert, pem.key)
    return context


def _tls_1_1_only(context: ssl.SSLContext) -> None:
    with warnings.catch_warnings():  # Python deprecates these versions, rightly
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # or OpenSSL 3 will not speak TLS 1.1 at all


async def _tls_attempt(port: int, context: ssl.SSLContext) -> BaseException | None:
    """Handshake, then read (TLS 1.3 servers refuse a client certificate after the client's
    side of the handshake is done); the error the client saw, if any."""
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname="localhost"
        )
    except (ssl.SSLError, OSError) as exc:
        return exc
    try:
        writer.write(b"AMQP\x03\x01\x00\x00")
        data = await asyncio.wait_for(reader.read(100), 10)
        return None if data else ConnectionResetError("closed")
    except (ssl.SSLError, OSError) as exc:
        return exc
    finally:
        writer.close()
        with contextlib.suppress(ssl.SSLError, OSError):
            await writer.wait_closed()


@pytest.fixture
def caplog_info(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="petrel")
    return caplog


async def test_a_plaintext_client_on_a_tls_port(
    broker: Broker, good: petrel.Connection, caplog_info: pytest.LogCaptureFixture
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", broker.bound[0][1])
    writer.write(b"AMQP\x03\x01\x00\x00")
    assert await asyncio.wait_for(reader.read(), 10) == b""  # hung up on, nothing said
    writer.close()
    line = await logged(caplog_info, "TLS handshake with")
    assert line.endswith("failed: not a TLS client (plain AMQP on a TLS port?)"), line


async def test_a_tls_1_1_client(
    broker: Broker,
    good: petrel.Connection,
    ca: Authority,
    client: Pem,
    caplog_info: pytest.LogCaptureFixture,
) -> None:
    context = _context(ca, client)
    _tls_1_1_only(context)
    # asyncio drops the socket without sending OpenSSL's alert: the client sees a reset.
    assert await _tls_attempt(broker.bound[0][1], context) is not None
    line = await logged(caplog_info, "TLS handshake with")
    assert line.endswith("failed: the client offered only TLS versions older than 1.2"), line


@pytest.mark.parametrize(
    ("kind", "why"),
    [
        ("untrusted", "the client certificate was refused: unable to get local issuer certificate"),
        ("expired", "the client certificate was refused: certificate has expired"),
        ("none", "the client sent no certificate, and one is required"),
    ],
)
async def test_a_bad_client_certificate(
    broker: Broker,
    good: petrel.Connection,
    ca: Authority,
    other: Authority,
    caplog_info: pytest.LogCaptureFixture,
    kind: str,
    why: str,
) -> None:
    pem = {
        "untrusted": lambda: other.issue("stranger", common_name="stranger"),
        "expired": lambda: ca.issue("old", common_name="old", expired=True),
        "none": lambda: None,
    }[kind]()
    error = await _tls_attempt(broker.bound[0][1], _context(ca, pem))
    assert error is not None
    line = await logged(caplog_info, "TLS handshake with")
    assert line.endswith(f"failed: {why}"), line
    assert len(broker.connections) == 1  # the good one only


async def test_a_client_that_never_finishes_its_handshake(
    ca: Authority, server: Pem, caplog_info: pytest.LogCaptureFixture
) -> None:
    """It is dropped after ``limits.sasl_timeout`` and named in one line."""
    tls = TlsSettings(cert_file=server.cert, key_file=server.key)
    broker = Broker(
        BrokerSettings(
            store="memory",
            listeners=[ListenerSettings(url="amqps://127.0.0.1:0", tls=tls)],
            limits=LimitSettings(sasl_timeout=0.2),
        )
    )
    await broker.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", broker.bound[0][1])
        writer.write(b"\x16\x03\x01")  # the start of a ClientHello, and then nothing
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        line = await logged(caplog_info, "TLS handshake with")
        assert line.endswith("failed: the handshake took too long"), line
    finally:
        await broker.stop(timeout=1.0)


async def test_our_client_refuses_a_server_its_ca_did_not_sign(
    broker: Broker, other: Authority, client: Pem
) -> None:
    tls = TlsConfig(ca_file=other.cert, cert_file=client.cert, key_file=client.key)
    with pytest.raises(petrel.ConnectionLost) as refused:
        await petrel.connect(
            f"amqps://localhost:{broker.bound[0][1]}", tls=tls, reconnect=False, timeout=10
        )
    assert "certificate verify failed" in str(refused.value), refused.value


async def test_our_client_refuses_a_tls_1_1_server(ca: Authority, server: Pem) -> None:
    """A server that speaks TLS 1.1 at most (a blocking ``ssl`` server in a thread: it sends
    its alert, which asyncio's servers do not)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server.cert, server.key)
    _tls_1_1_only(context)
    listening = socket.create_server(("127.0.0.1", 0))
    port = listening.getsockname()[1]

    def serve_one() -> None:
        conn, _ = listening.accept()
        with conn, contextlib.suppress(OSError):
            context.wrap_socket(conn, server_side=True)

    thread = threading.Thread(target=serve_one, daemon=True)
    thread.start()
    try:
        with pytest.raises(petrel.ConnectionLost) as refused:
            await petrel.connect(
                f"amqps://localhost:{port}",
                tls=TlsConfig(ca_file=ca.cert),
                reconnect=False,
                timeout=10,
            )
        assert "protocol version" in str(refused.value).lower(), refused.value
    finally:
        thread.join(10)
        listening.close()


async def test_a_missing_key_file_is_named_at_start(ca: Authority, server: Pem) -> None:
    missing = str(Path(server.key).with_name("no-such.key"))
    tls = TlsSettings(cert_file=server.cert, key_file=missing)
    broker = Broker(
        BrokerSettings(
            store="memory", listeners=[ListenerSettings(url="amqps://127.0.0.1:0", tls=tls)]
        )
    )
    with pytest.raises(OSError) as error:
        await broker.start()
    assert str(error.value.strerror).startswith(
        f"cannot load the TLS certificate {server.cert} with the key {missing}: "
    )
    await broker.stop(timeout=1.0)


@pytest.mark.parametrize("side", ["listener", "client"])
def test_tls_1_2_is_the_floor_even_where_openssl_would_go_lower(
    ca: Authority, server: Pem, side: str
) -> None:
    """Our contexts refuse TLS 1.1 by their own minimum, even at OpenSSL's security level 0
    (at the usual level 2, and with Python's own default minimum, OpenSSL refuses it
    anyway).  A handshake over memory, no sockets."""
    ours = (
        server_context(TlsConfig(cert_file=server.cert, key_file=server.key))
        if side == "listener"
        else client_context(TlsConfig(ca_file=ca.cert, check_hostname=False))
    )
    ours.set_ciphers("DEFAULT:@SECLEVEL=0")
    if side == "listener":
        theirs = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        theirs.check_hostname = False
        theirs.verify_mode = ssl.CERT_NONE
    else:
        theirs = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        theirs.load_cert_chain(server.cert, server.key)
    _tls_1_1_only(theirs)
    client_ctx, server_ctx = (theirs, ours) if side == "listener" else (ours, theirs)
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client_end = client_ctx.wrap_bio(c_in, c_out, server_side=False)
    server_end = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    with pytest.raises(ssl.SSLError) as refused:
        for _ in range(10):
            for end in (client_end, server_end):
                with contextlib.suppress(ssl.SSLWantReadError):
                    end.do_handshake()
            s_in.write(c_out.read())
            c_in.write(s_out.read())
    assert refused.value.reason in ("UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION")


async def test_sockets_beyond_max_handshakes_are_dropped_at_once(server: Pem) -> None:
    failures: list[tuple[str, str]] = []
    listener = Listener(
        ["amqps://127.0.0.1:0"],
        ConnectionConfig,
        lambda protocol: None,  # type: ignore[arg-type,return-value]
        tls=TlsConfig(cert_file=server.cert, key_file=server.key),
        max_handshakes=2,
        on_handshake_failed=lambda peer, why: failures.append((peer, why)),
    )
    async with listener:
        port = listener.bound[0][1]
        silent = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 10) == b""  # the third: dropped
        writer.close()
        assert [why for _, why in failures] == ["over 2 handshakes at once"]
        for _, w in silent:  # the first two were kept, waiting for their hellos
            assert not w.is_closing()
            w.close()
