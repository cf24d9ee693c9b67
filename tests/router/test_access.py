"""Authorisation on routers (``[access]``): attach checks on client listeners, the anonymous
relay checked per message, management, dynamic replies, vhosts kept apart across the
network, per-user limits, and an edge router admitting a tenant on its own.  Routers run
in-process; Petrel's client talks to them over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

import petrel
from petrel.client import MessageRejected, Unauthorized
from petrel.management import ManagementClient
from petrel.router import Router, RouterSettings
from tests.helpers.servers import free_port
from tests.router.test_edge import edges
from tests.router.test_forwarding import TIMEOUT, Net, network

USERS = [{"name": n, "password": "pw"} for n in ("alice", "bob", "ops", "tenant", "small")]

ACCESS: dict[str, Any] = {
    "rules": [
        {"who": ["alice"], "addresses": ["jobs.#", "rpc"], "rights": ["send"]},
        {"who": ["bob"], "addresses": ["jobs.#", "rpc"], "rights": ["receive"]},
        {"who": ["ops"], "addresses": ["$management"], "rights": ["manage"]},
        {"who": ["small"], "addresses": ["#"], "rights": ["send", "receive"]},
    ],
    "limits": [{"who": ["small"], "max_links": 2, "max_unsettled": 3}],
    "vhosts": [
        {
            "hostname": name,
            "admit": ["tenant"],
            "rules": [{"addresses": ["#"], "rights": ["send", "receive"]}],
        }
        for name in ("t1", "t2")
    ],
}


@contextlib.asynccontextmanager
async def guarded() -> AsyncIterator[Net]:
    """Routers A and B (B dials A), both with the same users and ``[access]``."""
    extra = {name: {"users": USERS, "access": ACCESS} for name in ("A", "B")}
    async with network([("B", "A", 1)], extra=extra) as net:
        yield net


async def _connect(net: Net, router: str, user: str, vhost: str = "") -> petrel.Connection:
    url = net.url(router) + (f"/{vhost}" if vhost else "")
    return await petrel.connect(url, username=user, password="pw", reconnect=False, timeout=5)


async def test_attach_refused_by_right_across_the_network() -> None:
    async with (
        guarded() as net,
        await _connect(net, "A", "alice") as alice,
        await _connect(net, "B", "bob") as bob,
    ):
        with pytest.raises(Unauthorized, match=r"may not receive 'jobs\.x'"):
            await alice.open_receiver("jobs.x")
        with pytest.raises(Unauthorized, match=r"may not send 'jobs\.x'"):
            await bob.open_sender("jobs.x")
        # The refusals disturbed nothing: a job goes from A to B.
        receiver = await bob.open_receiver("jobs.x", credit=10)
        await net.knows("A", "jobs.x", "B")
        sender = await alice.open_sender("jobs.x")
        sent = await sender.send(petrel.Message("job"), wait=False)
        delivery = await receiver.receive(timeout=TIMEOUT)
        assert delivery.message.body == "job"
        await delivery.accept()
        await asyncio.wait_for(sent, TIMEOUT)  # the outcome comes back end to end


async def test_the_relay_checks_each_message_by_its_to() -> None:
    async with (
        guarded() as net,
        await _connect(net, "A", "alice") as alice,
        await _connect(net, "B", "bob") as bob,
    ):
        receiver = await bob.open_receiver("jobs.y", credit=10)
        await net.knows("A", "jobs.y", "B")
        relay = await alice.open_sender(None)
        with pytest.raises(MessageRejected) as caught:
            await relay.send(petrel.Message("no", to="secrets"))
        assert caught.value.condition == "amqp:unauthorized-access"
        assert "'secrets'" in str(caught.value) and "send" in str(caught.value)
        sent = await relay.send(petrel.Message("yes", to="jobs.y"), wait=False)  # still up
        delivery = await receiver.receive(timeout=TIMEOUT)
        assert delivery.message.body == "yes"
        await delivery.accept()
        await asyncio.wait_for(sent, TIMEOUT)
        with pytest.raises(MessageRejected, match="manage"):
            await relay.send(petrel.Message("no", to="_topo/0/B/$management"))


async def test_management_needs_the_manage_right() -> None:
    async with (
        guarded() as net,
        await _connect(net, "A", "alice") as alice,
        await _connect(net, "A", "ops") as ops,
    ):
        with pytest.raises(Unauthorized, match="manage"):
            await alice.open_sender("$management")
        with pytest.raises(Unauthorized, match="manage"):
            await alice.open_sender("_topo/0/B/$management")
        routers = await ManagementClient(ops, address="_topo/0/B/$management").query(
            "petrel.router", ["id"]
        )
        assert [r["id"] for r in routers.as_dicts()] == ["B"]


async def test_request_response_with_a_dynamic_reply_address() -> None:
    async with (
        guarded() as net,
        await _connect(net, "B", "bob") as bob,
        await _connect(net, "A", "alice") as alice,
    ):
        requests = await bob.open_receiver("rpc", credit=10)
        replies = await bob.open_sender(None)  # bob has no rule for the reply address
        await net.knows("A", "rpc", "B")

        async def serve() -> None:
            delivery = await requests.receive(timeout=TIMEOUT)
            request = delivery.message
            await replies.send(
                petrel.Message(
                    f"re: {request.body}", to=request.reply_to, correlation_id=request.message_id
                )
            )
            await delivery.accept()

        task = asyncio.create_task(serve())
        response = await alice.request("rpc", petrel.Message("ping"), timeout=TIMEOUT)
        assert response.body == "re: ping"
        await task


async def test_vhosts_keep_addresses_apart_across_routers() -> None:
    async with (
        guarded() as net,
        await _connect(net, "A", "tenant", "t1") as a1,
        await _connect(net, "B", "tenant", "t1") as b1,
        await _connect(net, "B", "tenant", "t2") as b2,
    ):
        in_t1 = await b1.open_receiver("orders", credit=10)
        in_t2 = await b2.open_receiver("orders", credit=10)
        await net.knows("A", "$vhost/t1/orders", "B")
        await net.knows("A", "$vhost/t2/orders", "B")
        sender = await a1.open_sender("orders")
        relay = await a1.open_sender(None)
        sent = [
            await sender.send(petrel.Message("t1 only"), wait=False),
            await relay.send(petrel.Message("t1 by relay", to="orders"), wait=False),
        ]
        got = [await in_t1.receive(timeout=TIMEOUT) for _ in range(2)]
        assert sorted(d.message.body for d in got) == ["t1 by relay", "t1 only"]
        for delivery in got:
            await delivery.accept()
        await asyncio.wait_for(asyncio.gather(*sent), TIMEOUT)
        with pytest.raises(petrel.Timeout):
            await in_t2.receive(timeout=0.3)
        # A tenant never names the router's own name for another vhost's address.
        with pytest.raises(Unauthorized):
            await a1.open_sender("$vhost/t2/orders")


async def test_link_and_unsettled_limits() -> None:
    async with guarded() as net, await _connect(net, "A", "small") as small:
        receiver = await small.open_receiver("local", credit=10)
        await net.knows("B", "local", "A")
        sender = await small.open_sender("local")
        await net.until(lambda: sender.credit > 0, "the sender has credit")
        assert sender.credit <= 3  # at most max_unsettled
        with pytest.raises(petrel.client.ResourceLimitExceeded, match="2 links"):
            await small.open_sender("other")
        sent = await sender.send(petrel.Message("fine"), wait=False)
        delivery = await receiver.receive(timeout=TIMEOUT)
        await delivery.accept()
        await asyncio.wait_for(sent, TIMEOUT)


async def test_an_edge_router_admits_a_tenant_without_the_interior_trusting_it() -> None:
    """Access on the edge alone: its client may send to ``jobs`` only, at attach and on
    the relay; the interior takes what the edge lets through."""
    async with edges({"E1": ["I1"]}) as net:
        port = free_port()
        settings = RouterSettings.model_validate(
            {
                "router": {"id": "E9", "mode": "edge"},
                "listeners": [{"url": f"amqp://127.0.0.1:{port}"}],
                "connectors": [{"url": net.url("I1"), "role": "edge"}],
                "users": USERS,
                "access": {
                    "rules": [{"who": ["alice"], "addresses": ["jobs"], "rights": ["send"]}]
                },
            }
        )
        edge = Router(settings)
        await edge.start()
        try:
            ups = edge.network.uplinks
            assert ups is not None
            await net.until(lambda: len(ups.open) == 1, "E9's uplink")
            url = f"amqp://127.0.0.1:{port}"
            async with (
                await petrel.connect(url, username="alice", password="pw", reconnect=False) as c,
                await petrel.connect(net.url("I1")) as listener,
            ):
                with pytest.raises(Unauthorized, match="may not receive 'jobs'"):
                    await c.open_receiver("jobs")
                receiver = await listener.open_receiver("jobs", credit=10)
                relay = await c.open_sender(None)
                with pytest.raises(MessageRejected, match="unauthorized-access"):
                    await relay.send(petrel.Message("no", to="elsewhere"))
                sent = await relay.send(petrel.Message("yes", to="jobs"), wait=False)
                delivery = await receiver.receive(timeout=TIMEOUT)
                assert delivery.message.body == "yes"
                await delivery.accept()
                await asyncio.wait_for(sent, TIMEOUT)
        finally:
            await edge.stop(timeout=1.0)
