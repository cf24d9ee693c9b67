"""Authorisation in the broker (``[access]``): rights checked at attach and on the anonymous
relay, dynamic reply queues, virtual hosts kept apart, per-user limits.  The broker runs
in-process; Petrel's client talks to it over a real socket."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

import petrel
from petrel.broker import Broker
from petrel.client import (
    MessageRejected,
    MessageSizeExceeded,
    ResourceLimitExceeded,
    Unauthorized,
)
from petrel.driver import AmqpProtocol
from petrel.driver import connect as driver_connect
from petrel.engine import ConnectionConfig, SaslConfig
from petrel.engine import events as ev
from petrel.errors import AmqpError
from petrel.management import ManagementClient
from petrel.server import BrokerSettings

USERS = [
    {"name": name, "password": "pw"}
    for name in ("alice", "bob", "carol", "ops", "greedy", "tenant", "stranger", "service")
]
USERS.append({"name": "dora", "password": "pw", "groups": ["auditors"]})

ACCESS: dict[str, Any] = {
    "groups": [{"name": "traders", "members": ["alice", "bob"]}],
    "rules": [
        {"who": ["@traders"], "addresses": ["orders.#"], "rights": ["send", "receive", "create"]},
        {"who": ["alice"], "addresses": ["audit"], "rights": ["browse"]},
        {"who": ["@auditors"], "addresses": ["audit"], "rights": ["browse"]},
        {"who": ["alice"], "addresses": ["declared"], "rights": ["send"]},
        {"who": ["carol"], "addresses": ["orders.#"], "rights": ["send"]},
        {"who": ["ops"], "addresses": ["$management"], "rights": ["manage"]},
        {"who": ["greedy"], "addresses": ["#"], "rights": ["send", "receive", "create"]},
        {"who": ["service"], "addresses": ["rpc"], "rights": ["receive", "create"]},
        {"who": ["alice"], "addresses": ["rpc"], "rights": ["send"]},
    ],
    "limits": [
        {"who": ["greedy"], "max_connections_per_user": 2, "max_sessions": 2, "max_links": 3},
        {"who": ["greedy"], "max_message_size": 2000, "max_unsettled": 5},
    ],
    "vhosts": [
        {
            "hostname": "tenant-a",
            "admit": ["tenant"],
            "rules": [{"addresses": ["#"], "rights": ["send", "receive", "create"]}],
        },
        {
            "hostname": "tenant-b",
            "admit": ["tenant"],
            "rules": [{"addresses": ["#"], "rights": ["send", "receive", "create"]}],
        },
    ],
}


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    settings = BrokerSettings.model_validate(
        {
            "store": "memory",
            "listeners": [{"url": "amqp://127.0.0.1:0"}],
            "users": USERS,
            "queues": [{"name": "declared"}, {"name": "audit"}],
            "access": ACCESS,
        }
    )
    server = Broker(settings)
    await server.start()
    try:
        yield server
    finally:
        await server.stop(timeout=1.0)


def _url(broker: Broker, vhost: str = "") -> str:
    return f"amqp://127.0.0.1:{broker.bound[0][1]}" + (f"/{vhost}" if vhost else "")


async def _connect(broker: Broker, user: str, vhost: str = "") -> petrel.Connection:
    return await petrel.connect(
        _url(broker, vhost), username=user, password="pw", reconnect=False, timeout=5
    )


class _Closes:
    def __init__(self) -> None:
        self.closed = asyncio.get_running_loop().create_future()

    def handle_event(self, protocol: AmqpProtocol, event: Any) -> None:
        if isinstance(event, ev.ConnectionClosed) and not self.closed.done():
            self.closed.set_result(event.error)


async def open_refusal(url: str, hostname: str, user: str | None = None) -> Any:
    """The error in the close a server answers an open for ``hostname`` with (Petrel's
    client reports only that the connection closed as it opened)."""
    sasl = SaslConfig(mechanisms=["PLAIN"], username=user, password="pw") if user else None
    config = ConnectionConfig(hostname=hostname, **({"sasl": sasl} if sasl else {}))
    closes = _Closes()
    try:
        protocol = await driver_connect(url, config, closes, timeout=5)
    except AmqpError as exc:
        return exc
    try:
        return await asyncio.wait_for(closes.closed, 5)
    finally:
        await protocol.close()


async def test_send_and_receive_by_rule_and_the_refusal_names_address_and_right(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    async with await _connect(broker, "alice") as conn:
        with (
            caplog.at_level(logging.INFO, logger="petrel.audit"),
            pytest.raises(Unauthorized) as caught,
        ):
            await conn.open_sender("invoices")
        assert "'invoices'" in str(caught.value) and "send" in str(caught.value)
        assert any(
            "refused: user 'alice'" in r.getMessage() and "'invoices', right send" in r.getMessage()
            for r in caplog.records
            if r.name == "petrel.audit"
        )
        # Nothing else on the connection is disturbed.
        sender = await conn.open_sender("orders.eu")
        await sender.send(petrel.Message("one"))
        receiver = await conn.open_receiver("orders.eu")
        delivery = await receiver.receive(timeout=5)
        assert delivery.message.body == "one"
        await delivery.accept()
        with pytest.raises(Unauthorized, match="receive"):
            await conn.open_receiver("declared")


async def test_browse_is_its_own_right(broker: Broker) -> None:
    async with await _connect(broker, "alice") as conn:
        await conn.open_receiver("audit", browse=True)
        with pytest.raises(Unauthorized, match="may not receive 'audit'"):
            await conn.open_receiver("audit")


async def test_auto_create_needs_the_create_right(broker: Broker) -> None:
    async with await _connect(broker, "carol") as conn:
        with pytest.raises(Unauthorized, match=r"may not create 'orders\.new'"):
            await conn.open_sender("orders.new")
        assert "orders.new" not in broker.core.addresses
    async with await _connect(broker, "bob") as conn:
        await conn.open_sender("orders.new")  # bob may create it
    async with await _connect(broker, "carol") as conn:
        await conn.open_sender("orders.new")  # now it exists: send is enough


async def test_the_anonymous_relay_checks_each_message(broker: Broker) -> None:
    async with await _connect(broker, "alice") as conn:
        relay = await conn.open_sender(None)
        with pytest.raises(MessageRejected) as caught:
            await relay.send(petrel.Message("no", to="invoices"))
        assert caught.value.condition == "amqp:unauthorized-access"
        assert "'invoices'" in str(caught.value)
        # The link stays up: the next message, allowed, goes through.
        await relay.send(petrel.Message("yes", to="declared"))
        with pytest.raises(MessageRejected, match="unauthorized-access"):
            await relay.send(petrel.Message("no", to="$management"))
    assert broker.core.queues["declared"].available == 1


async def test_management_needs_the_manage_right(broker: Broker) -> None:
    async with await _connect(broker, "alice") as conn:
        with pytest.raises(Unauthorized, match="manage"):
            await conn.open_sender("$management")
    async with await _connect(broker, "ops") as conn:
        queues = (await ManagementClient(conn).query("petrel.queue", ["name"])).as_dicts()
        assert "declared" in [q["name"] for q in queues]


async def test_request_response_through_a_dynamic_reply_queue(broker: Broker) -> None:
    """The rule for reply queues: attaching a dynamic node needs no right, and anyone given
    its address may send to it; only its creator receives from it."""
    async with await _connect(broker, "service") as server_conn:
        requests = await server_conn.open_receiver("rpc")
        replies = await server_conn.open_sender(None)

        async def serve() -> None:
            delivery = await requests.receive(timeout=5)
            request = delivery.message
            await replies.send(
                petrel.Message(
                    f"re: {request.body}",
                    to=request.reply_to,
                    correlation_id=request.message_id,
                )
            )
            await delivery.accept()

        task = asyncio.create_task(serve())
        async with await _connect(broker, "alice") as client:
            response = await client.request("rpc", petrel.Message("ping"), timeout=5)
            assert response.body == "re: ping"
        await task


async def test_vhosts_keep_their_addresses_apart(broker: Broker) -> None:
    async with (
        await _connect(broker, "tenant", "tenant-a") as a,
        await _connect(broker, "tenant", "tenant-b") as b,
    ):
        await (await a.open_sender("orders.x")).send(petrel.Message("for a"))
        await (await b.open_sender("orders.x")).send(petrel.Message("for b"))
        got_b = await (await b.open_receiver("orders.x")).receive(timeout=5)
        assert got_b.message.body == "for b"
        got_a = await (await a.open_receiver("orders.x")).receive(timeout=5)
        assert got_a.message.body == "for a"
        # The broker files them apart; no client may name that internal address.
        assert {"$vhost/tenant-a/orders.x", "$vhost/tenant-b/orders.x"} <= set(broker.core.queues)
        with pytest.raises(Unauthorized):
            await a.open_receiver("$vhost/tenant-b/orders.x")
    async with await _connect(broker, "greedy") as default:
        with pytest.raises(Unauthorized):
            await default.open_receiver("$vhost/tenant-a/orders.x")


async def test_a_vhost_admits_only_its_users(broker: Broker) -> None:
    error = await open_refusal(_url(broker), "tenant-a", "alice")
    assert error.condition == "amqp:unauthorized-access"
    assert "tenant-a" in error.description
    # An unknown hostname gets the default vhost.
    async with await _connect(broker, "alice", "nowhere.example") as conn:
        await conn.open_sender("orders.eu")


async def test_unknown_hostnames_refused_without_a_default_vhost() -> None:
    settings = BrokerSettings.model_validate(
        {
            "store": "memory",
            "listeners": [{"url": "amqp://127.0.0.1:0"}],
            "access": {"default_vhost": "", "vhosts": [{"hostname": "known"}]},
        }
    )
    server = Broker(settings)
    await server.start()
    try:
        error = await open_refusal(_url(server), "nowhere")
        assert error.condition == "amqp:not-found" and "nowhere" in error.description
        async with await petrel.connect(_url(server, "known"), reconnect=False, timeout=5):
            pass
    finally:
        await server.stop(timeout=1.0)


async def test_connection_session_and_link_limits(broker: Broker) -> None:
    first = await _connect(broker, "greedy")
    second = await _connect(broker, "greedy")
    try:
        error = await open_refusal(_url(broker), "127.0.0.1", "greedy")
        assert error.condition == "amqp:resource-limit-exceeded"
        # Links: at most 3 on a connection.
        for n in range(3):
            await first.open_sender(f"q{n}")
        with pytest.raises(ResourceLimitExceeded, match="3 links"):
            await first.open_sender("q4")
        # Others are not limited.
        async with await _connect(broker, "alice") as alice:
            await alice.open_sender("orders.1")
    finally:
        await second.close()
    third = await _connect(broker, "greedy")  # room again
    await third.close()
    await first.close()


async def test_message_size_limit(broker: Broker) -> None:
    async with await _connect(broker, "greedy") as conn:
        sender = await conn.open_sender("sized")
        await sender.send(petrel.Message(b"x" * 1000))
        big = await conn.open_sender("sized")
        with pytest.raises(MessageSizeExceeded):
            await big.send(petrel.Message(b"x" * 5000))
        await sender.send(petrel.Message(b"x" * 1000))  # the other link is fine
    assert broker.core.queues["sized"].available == 2


async def test_unsettled_limit_stops_deliveries_until_the_client_settles(broker: Broker) -> None:
    async with await _connect(broker, "greedy") as conn:
        sender = await conn.open_sender("prefetch")
        assert sender.credit <= 5  # a sending client gets no more credit than that
        for n in range(12):
            await sender.send(petrel.Message(n))
        receiver = await conn.open_receiver("prefetch", credit=100)
        first = [await receiver.receive(timeout=5) for _ in range(5)]
        with pytest.raises(petrel.Timeout):
            await receiver.receive(timeout=0.3)  # 5 unsettled: no more until one settles
        for delivery in first:
            await delivery.accept()
        more = [await receiver.receive(timeout=5) for _ in range(5)]
        assert [d.message.body for d in first + more] == list(range(10))


class _Ends:
    def __init__(self) -> None:
        self.ended: list[Any] = []
        self.begun = 0

    def handle_event(self, protocol: AmqpProtocol, event: Any) -> None:
        if isinstance(event, ev.SessionEnded):
            self.ended.append(event.error)
        elif isinstance(event, ev.SessionBegun):
            self.begun += 1


async def test_session_limit(broker: Broker) -> None:
    sasl = SaslConfig(mechanisms=["PLAIN"], username="greedy", password="pw")
    ends = _Ends()
    protocol = await driver_connect(_url(broker), ConnectionConfig(sasl=sasl), ends, timeout=5)
    try:
        for _ in range(3):
            protocol.engine.begin_session()
        protocol.flush()
        for _ in range(200):
            if ends.ended:
                break
            await asyncio.sleep(0.01)
        assert len(ends.ended) == 1  # the third of at most 2
        assert ends.ended[0].condition == "amqp:resource-limit-exceeded"
        assert "2 sessions" in ends.ended[0].description
    finally:
        await protocol.close()


async def test_groups_from_the_users_list(broker: Broker) -> None:
    async with await _connect(broker, "dora") as conn:  # [[users]] groups = ["auditors"]
        await conn.open_receiver("audit", browse=True)
        with pytest.raises(Unauthorized, match="may not receive 'audit'"):
            await conn.open_receiver("audit")
