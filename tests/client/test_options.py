"""Connection options: URLs, SASL, TLS, container id, virtual host, properties, timeouts."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

import petrel
from petrel.client import (
    ConnectionLost,
    ConnectionState,
    NotAllowed,
    Reconnect,
    ResourceLimitExceeded,
    Timeout,
    TlsConfig,
    Unauthorized,
)
from petrel.driver.tls import client_context, server_context
from tests.helpers.servers import free_port

from .conftest import proton_peer
from .petrel_peer import petrel_peer

pytestmark = pytest.mark.interop


async def test_open_fields_come_from_the_options() -> None:
    async with (
        petrel_peer() as (url, record),
        await petrel.connect(
            url + "/my-vhost",
            container_id="the-container",
            max_frame_size=4096,
            properties={"product": "tests", "n": 1},
            idle_timeout=30.0,
        ) as conn,
    ):
        assert conn.state is ConnectionState.OPEN
        assert conn.remote_container_id == "petrel-test-peer"
    (opened,) = record.opens
    assert opened.container_id == "the-container"
    assert opened.hostname == "my-vhost"
    assert opened.max_frame_size == 4096
    assert opened.idle_time_out == 30_000
    assert opened.properties == {"product": "tests", "n": 1}
    assert record.sasl[0].mechanism == "ANONYMOUS"


async def test_hostname_option_wins_over_the_url() -> None:
    async with (
        petrel_peer() as (url, record),
        await petrel.connect(url + "/from-url", hostname="from-option"),
    ):
        pass
    assert record.opens[0].hostname == "from-option"


async def test_the_hostname_defaults_to_the_host() -> None:
    async with petrel_peer() as (url, record), await petrel.connect(url):
        pass
    assert record.opens[0].hostname == "127.0.0.1"


async def test_sasl_plain_credentials_from_the_url() -> None:
    async with petrel_peer(users={"alice": "s3cret"}) as (url, record):
        user_url = url.replace("amqp://", "amqp://alice:s3cret@")
        async with await petrel.connect(user_url):
            pass
        async with await petrel.connect(url, username="alice", password="s3cret"):
            pass
    assert [s.mechanism for s in record.sasl] == ["PLAIN", "PLAIN"]
    assert record.sasl[0].identity == "alice"


async def test_sasl_failure_is_unauthorized_and_not_retried() -> None:
    async with petrel_peer(users={"alice": "s3cret"}) as (url, record):
        with pytest.raises(Unauthorized):
            await petrel.connect(url, username="alice", password="wrong")
        policy = Reconnect(connect_initial=True, max_attempts=5, initial_delay=0.01)
        with pytest.raises(Unauthorized):
            await petrel.connect(url, username="alice", password="wrong", reconnect=policy)
        # No common mechanism: the client offers only ANONYMOUS.
        with pytest.raises(Unauthorized):
            await petrel.connect(url)
    assert len(record.sasl) == 2  # the retrying connect tried once


async def test_sasl_mechanisms_restrict_the_choice() -> None:
    async with petrel_peer(users={"bob": "pw"}) as (url, _):
        with pytest.raises(Unauthorized):
            await petrel.connect(url, username="bob", password="pw", sasl_mechanisms=["ANONYMOUS"])


async def test_no_sasl_layer() -> None:
    async with petrel_peer() as (url, record), await petrel.connect(url, sasl=False) as conn:
        assert conn.state is ConnectionState.OPEN
    assert record.sasl == []


async def test_connection_refused_is_connection_lost() -> None:
    port = free_port()
    with pytest.raises(ConnectionLost) as info:
        await petrel.connect(f"amqp://127.0.0.1:{port}")
    assert f"127.0.0.1:{port}" in str(info.value)
    assert isinstance(info.value, ConnectionError)


async def test_initial_connect_with_backoff_gives_up() -> None:
    port = free_port()
    seen: list[ConnectionState] = []
    policy = Reconnect(connect_initial=True, max_attempts=3, initial_delay=0.01, max_delay=0.02)
    with pytest.raises(ConnectionLost, match="gave up connecting after 3 attempts"):
        await petrel.connect(
            f"amqp://127.0.0.1:{port}",
            reconnect=policy,
            on_state_change=lambda c: seen.append(c.state),
        )
    assert seen[-1] is ConnectionState.CLOSED
    assert seen.count(ConnectionState.RECONNECTING) == 3


async def test_the_url_list_is_tried_in_order() -> None:
    dead = f"amqp://127.0.0.1:{free_port()}"
    async with petrel_peer() as (url, _), await petrel.connect([dead, url]) as conn:
        assert conn.url == url
    with pytest.raises(ValueError):
        await petrel.connect([])


async def test_connect_timeout() -> None:
    # A listening socket that never speaks AMQP.
    writers: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ConnectionLost, match="no AMQP open"):
            await petrel.connect(f"amqp://127.0.0.1:{port}", timeout=0.2)
    finally:
        for writer in writers:
            writer.close()
            await writer.wait_closed()
        server.close()
        await server.wait_closed()


async def test_attach_timeout() -> None:
    async with (
        petrel_peer(answer_attach=False) as (url, record),
        await petrel.connect(url) as conn,
    ):
        with pytest.raises(Timeout, match="attaching"):
            await conn.open_sender("nobody-answers", timeout=0.2)
        with pytest.raises(Timeout):
            await conn.open_receiver("nobody-answers", timeout=0.2)
        assert len(record.attaches) == 2
        assert conn._endpoints == []


async def test_heartbeats_keep_an_idle_connection_open() -> None:
    # The peer wants to hear from us every 0.2 s; the client's heartbeats keep it happy.
    async with (
        petrel_peer(idle_timeout=0.4) as (url, _),
        await petrel.connect(url, reconnect=False) as conn,
    ):
        await asyncio.sleep(1.0)
        assert conn.state is ConnectionState.OPEN


async def test_idle_timeout_drops_a_silent_peer() -> None:
    async with petrel_peer() as (url, record):
        conn = await petrel.connect(url, reconnect=False, idle_timeout=0.2)
        # The peer stops sending heartbeats.
        record.protocols[0].engine.remote_idle_timeout = None
        error = await asyncio.wait_for(conn.wait_closed(), 5)
    assert isinstance(error, ResourceLimitExceeded)
    assert "idle" in error.description
    assert conn.state is ConnectionState.CLOSED


async def test_tls_against_proton(tls_files: dict[str, str]) -> None:
    with proton_peer(tls=(tls_files["server_cert"], tls_files["server_key"])) as peer:
        url = f"amqps://localhost:{peer.port}"
        tls = TlsConfig(ca_file=tls_files["ca"])
        async with await petrel.connect(url, tls=tls) as conn:
            assert conn._protocol is not None
            assert conn._protocol.transport is not None
            assert conn._protocol.transport.get_extra_info("ssl_object") is not None
            sender = await conn.open_sender("tls-queue")
            await sender.send("over TLS")
            receiver = await conn.open_receiver("tls-queue")
            assert (await receiver.receive(timeout=10)).message.body == "over TLS"
        # Verification is on by default: an unknown CA is refused.
        with pytest.raises(ConnectionLost, match="CERTIFICATE_VERIFY_FAILED"):
            await petrel.connect(url)
        async with await petrel.connect(url, tls=TlsConfig(verify=False)):
            pass


async def test_tls_client_certificate(tls_files: dict[str, str]) -> None:
    server_tls = TlsConfig(
        ca_file=tls_files["ca"],
        cert_file=tls_files["server_cert"],
        key_file=tls_files["server_key"],
    )
    client_tls = TlsConfig(
        ca_file=tls_files["ca"],
        cert_file=tls_files["client_cert"],
        key_file=tls_files["client_key"],
    )
    async with petrel_peer(tls=server_tls) as (url, record):
        url = url.replace("127.0.0.1", "localhost")
        async with await petrel.connect(url, tls=client_tls):
            pass
        peer_cert = record.protocols[0].transport.get_extra_info("peercert")  # type: ignore[union-attr]
        assert peer_cert is not None
        with pytest.raises(ConnectionLost):
            await petrel.connect(url, tls=TlsConfig(ca_file=tls_files["ca"]), timeout=2)


async def test_tls_checks_the_host_name(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    elsewhere = ca.issue_cert("elsewhere.example")  # a good certificate, for another host
    cert, key, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    elsewhere.cert_chain_pems[0].write_to_path(str(cert))
    elsewhere.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    with proton_peer(tls=(str(cert), str(key))) as peer:
        url = f"amqps://localhost:{peer.port}"
        with pytest.raises(ConnectionLost, match="Hostname mismatch"):
            await petrel.connect(url, tls=TlsConfig(ca_file=str(ca_file)), reconnect=False)
        # Trusting the certificate without checking it is a choice the caller makes.
        async with await petrel.connect(url, tls=TlsConfig(verify=False)) as conn:
            sender = await conn.open_sender("unverified")
            await sender.send("still encrypted")


def test_tls_contexts_verify_by_default(tls_files: dict[str, str]) -> None:
    assert petrel.TlsConfig is TlsConfig  # the client takes the driver's settings as they are
    context = client_context(TlsConfig())
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    unverified = client_context(TlsConfig(verify=False))
    assert unverified.verify_mode is ssl.CERT_NONE and not unverified.check_hostname
    # A listener asks for client certificates only where it has a CA to check them with.
    server = {"cert_file": tls_files["server_cert"], "key_file": tls_files["server_key"]}
    assert server_context(TlsConfig(**server)).verify_mode is ssl.CERT_NONE
    required = server_context(TlsConfig(ca_file=tls_files["ca"], **server))
    assert required.verify_mode is ssl.CERT_REQUIRED
    optional = server_context(TlsConfig(ca_file=tls_files["ca"], verify=False, **server))
    assert optional.verify_mode is ssl.CERT_OPTIONAL


async def test_a_session_ended_by_the_peer() -> None:
    async with petrel_peer() as (url, _), await petrel.connect(url) as conn:
        sender = await conn.open_sender("fine")
        with pytest.raises(NotAllowed, match="session ended"):
            await conn.open_receiver("end-session.please")
        # Links of the ended session are over...
        with pytest.raises(NotAllowed):
            await sender.send("x")
        # ...but the connection begins a new session for new ones.
        again = await conn.open_sender("fine-again")
        await again.send("y")
