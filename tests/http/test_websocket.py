"""AMQP over WebSockets (the OASIS binding) on the HTTP listener: Petrel's client over
``ws://`` and ``wss://``, the same connection handling as TCP, and what bad input gets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

import petrel
from petrel.driver import connect
from petrel.driver.websocket import TEXT_REFUSED
from petrel.engine import ConnectionConfig, SaslConfig
from petrel.server.http.websocket import MISSING_SUBPROTOCOL
from tests.http.conftest import amqp_port, http_port


async def _round_trip(url_out: str, url_in: str, address: str, count: int = 5) -> list[Any]:
    async with (
        await petrel.connect(url_out, reconnect=False) as conn,
        await conn.open_sender(address) as sender,
    ):
        for i in range(count):
            await sender.send(petrel.Message(f"m{i}"))
    bodies = []
    async with (
        await petrel.connect(url_in, reconnect=False) as conn,
        await conn.open_receiver(address) as receiver,
    ):
        for _ in range(count):
            delivery = await receiver.receive(timeout=10)
            bodies.append(delivery.message.body)
            await delivery.accept()
    return bodies


async def test_petrel_client_over_ws_meets_a_tcp_client(make_broker: Callable[..., Any]) -> None:
    broker = await make_broker()
    ws = f"ws://127.0.0.1:{http_port(broker)}"
    tcp = f"amqp://127.0.0.1:{amqp_port(broker)}"
    assert await _round_trip(ws, tcp, "ws.one") == [f"m{i}" for i in range(5)]
    assert await _round_trip(tcp, f"{ws}/amqp", "ws.two") == [f"m{i}" for i in range(5)]


async def test_a_websocket_connection_is_a_connection_like_any(
    make_broker: Callable[..., Any],
) -> None:
    """Same handlers: it is listed by management, and SASL PLAIN applies to it."""
    broker = await make_broker(users=[{"name": "ann", "password": "secret"}])
    port = http_port(broker)
    async with await petrel.connect(f"ws://ann:secret@127.0.0.1:{port}", reconnect=False):
        described = [c for c in broker.state.connections.values() if c.identity == "ann"]
        assert len(described) == 1
        assert described[0].listener.role == "http"
        assert described[0].mechanism not in (None, "ANONYMOUS")
    with pytest.raises(petrel.errors.AmqpError) as refused:
        await petrel.connect(f"ws://ann:wrong@127.0.0.1:{port}", reconnect=False)
    assert "auth" in str(refused.value).lower()


async def test_connection_limit_applies_over_websockets(make_broker: Callable[..., Any]) -> None:
    broker = await make_broker(limits={"max_connections": 1})
    url = f"ws://127.0.0.1:{http_port(broker)}"
    async with await petrel.connect(url, reconnect=False):
        # The driver's view: the refusal the server closes the connection with.
        config = ConnectionConfig(container_id="second", sasl=SaslConfig(mechanisms=["ANONYMOUS"]))
        protocol = await connect(url, config)
        error = await asyncio.wait_for(protocol.closed, 10)
    assert error is not None
    assert error.condition == "amqp:resource-limit-exceeded"
    assert "at most 1 connections" in error.description


async def test_petrel_client_over_wss(
    make_broker: Callable[..., Any], tls_files: dict[str, str]
) -> None:
    tls = {"cert_file": tls_files["server_cert"], "key_file": tls_files["server_key"]}
    broker = await make_broker(
        listeners=[
            {"url": "amqp://127.0.0.1:0"},
            {"url": "https://127.0.0.1:0", "role": "http", "tls": tls},
        ]
    )
    url = f"wss://127.0.0.1:{http_port(broker)}"
    trusted = petrel.driver.TlsConfig(ca_file=tls_files["ca"])
    async with (
        await petrel.connect(url, reconnect=False, tls=trusted) as conn,
        await conn.open_sender("wss.q") as sender,
    ):
        await sender.send(petrel.Message("over TLS"))
        async with await conn.open_receiver("wss.q") as receiver:
            delivery = await receiver.receive(timeout=10)
            assert delivery.message.body == "over TLS"
            await delivery.accept()
        assert all(
            c.protocol.transport.get_extra_info("ssl_object") is not None
            for c in broker.state.connections.values()
        )
    # Without the test CA the server's certificate is not trusted.
    with pytest.raises(OSError):
        await petrel.connect(url, reconnect=False)


async def test_websocket_without_the_amqp_subprotocol_is_refused(
    make_broker: Callable[..., Any],
) -> None:
    broker = await make_broker()
    url = f"http://127.0.0.1:{http_port(broker)}/"
    async with aiohttp.ClientSession() as session:
        for protocols in ((), ("binary",)):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(url, protocols=protocols)
            assert refused.value.status == 400
        async with session.get(url, headers=_upgrade_headers()) as response:
            assert response.status == 400
            assert await response.text() == MISSING_SUBPROTOCOL
    assert not broker.state.connections


def _upgrade_headers() -> dict[str, str]:
    return {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }


async def test_a_text_message_closes_the_websocket_with_a_reason(
    make_broker: Callable[..., Any],
) -> None:
    broker = await make_broker()
    url = f"http://127.0.0.1:{http_port(broker)}/"
    async with await petrel.connect(
        f"ws://127.0.0.1:{http_port(broker)}", reconnect=False
    ) as bystander:
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(url, protocols=("amqp",))
            assert ws.protocol == "amqp"
            await ws.send_str("AMQP\x00\x01\x00\x00")
            message = await ws.receive(timeout=10)
            assert message.type == aiohttp.WSMsgType.CLOSE
            assert message.data == 1003
            assert message.extra == TEXT_REFUSED
            await ws.close()
        # The other connection over WebSocket is not disturbed.
        async with await bystander.open_sender("text.q") as sender:
            await sender.send(petrel.Message("still here"))


async def test_garbage_over_a_websocket_gets_an_amqp_answer(
    make_broker: Callable[..., Any],
) -> None:
    """Bytes that are no AMQP header are refused as on TCP: the server's header, then the
    WebSocket closes."""
    broker = await make_broker()
    url = f"http://127.0.0.1:{http_port(broker)}/amqp"
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(url, protocols=("amqp",))
        await ws.send_bytes(b"GET / HTTP/1.1\r\n\r\n")
        received = b""
        while True:
            message = await ws.receive(timeout=10)
            if message.type != aiohttp.WSMsgType.BINARY:
                break
            received += message.data
        assert received.startswith(b"AMQP")
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    await asyncio.sleep(0)
    assert not broker.state.connections


async def test_a_plain_get_of_the_root_answers_an_index(make_broker: Callable[..., Any]) -> None:
    broker = await make_broker()
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{http_port(broker)}/") as response,
    ):
        assert response.status == 200
        assert "/metrics" in await response.text()
        async with session.get(f"http://127.0.0.1:{http_port(broker)}/amqp") as response:
            assert response.status == 400


async def test_ws_url_to_a_port_without_http_fails_with_the_url() -> None:
    from tests.helpers.servers import free_port

    port = free_port()
    with pytest.raises(OSError) as refused:
        await petrel.connect(f"ws://127.0.0.1:{port}", reconnect=False)
    assert str(port) in str(refused.value)


async def test_server_shutdown_closes_websocket_connections_with_forced(
    make_broker: Callable[..., Any],
) -> None:
    broker = await make_broker()
    conn = await petrel.connect(f"ws://127.0.0.1:{http_port(broker)}", reconnect=False)
    await broker.stop(timeout=2.0)
    error = await asyncio.wait_for(conn.wait_closed(), 5)
    assert error is not None
    assert error.condition == "amqp:connection:forced"
    assert not broker.state.connections
    await conn.close()


def test_websocket_urls() -> None:
    from petrel.driver import parse_url

    address = parse_url("ws://ann:s%40cret@example.com:8672/amqp")
    assert (address.scheme, address.host, address.port, address.path) == (
        "ws",
        "example.com",
        8672,
        "/amqp",
    )
    assert (address.user, address.password, address.vhost) == ("ann", "s@cret", None)
    assert address.websocket
    assert not address.tls
    assert str(address) == "ws://example.com:8672/amqp"
    secure = parse_url("wss://example.com")
    assert (secure.port, secure.path, secure.tls) == (443, "/", True)
    assert not parse_url("amqp://example.com/vhost").websocket
    with pytest.raises(ValueError, match="use amqp, amqps, ws or wss"):
        parse_url("http://example.com")
