"""The router's data plane in one process: routers on loopback, Petrel's client on each.

These pin what the subprocess tests (``tests/integration/test_router_*``, driven by
Proton) cannot see from outside: the annotations a receiver gets, resend-released,
the management counters, management of one router through another, and what a
producer's credit does as receivers come and go.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

import petrel
from petrel.client import MessageModified, MessageReleased
from petrel.management import ManagementClient
from petrel.router import Router, RouterSettings
from petrel.router.table import ANN_INGRESS, ANN_TO, ANN_TRACE, CAP_TRACE
from tests.helpers.routers import IN_PROCESS_TIMERS
from tests.helpers.servers import free_port

FAST = IN_PROCESS_TIMERS
TIMEOUT = 10.0


class Net:
    """Routers by id, each with its client port."""

    def __init__(self) -> None:
        self.routers: dict[str, Router] = {}
        self.ports: dict[str, int] = {}

    def url(self, router_id: str) -> str:
        return f"amqp://127.0.0.1:{self.ports[router_id]}"

    async def until(self, check: Callable[[], bool], what: str) -> None:
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        while not check():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"not within {TIMEOUT} s: {what}")
            await asyncio.sleep(0.02)

    async def knows(self, router_id: str, address: str, *remote: str) -> None:
        core = self.routers[router_id].network.core
        assert core is not None
        await self.until(
            lambda: core.routers_for(address) == frozenset(remote),
            f"{router_id} sees {address} on {remote}",
        )


@contextlib.asynccontextmanager
async def network(
    links: Iterable[tuple[str, str, int]],
    ids: Iterable[str] = (),
    extra: dict[str, dict[str, Any]] | None = None,
) -> AsyncIterator[Net]:
    """Routers connected by ``(dialler, listener, cost)`` links, converged; ``extra``
    adds settings to some routers."""
    links = list(links)
    names = sorted({*ids, *(a for a, _, _ in links), *(b for _, b, _ in links)})
    inter = {name: free_port() for name in names}
    net = Net()
    for name in names:
        net.ports[name] = free_port()
        settings = RouterSettings.model_validate(
            {
                "router": {"id": name},
                "listeners": [
                    {"url": net.url(name)},
                    {"url": f"amqp://127.0.0.1:{inter[name]}", "role": "inter-router"},
                ],
                "connectors": [
                    {"url": f"amqp://127.0.0.1:{inter[b]}", "role": "inter-router", "cost": c}
                    for a, b, c in links
                    if a == name
                ],
                "addresses": [{"prefix": "mc.", "distribution": "multicast"}],
                **(extra or {}).get(name, {}),
            }
        )
        net.routers[name] = Router(settings, timers=FAST)
    try:
        for router in net.routers.values():
            await router.start()
        for name, router in net.routers.items():
            core = router.network.core
            assert core is not None
            peers = frozenset(
                {b for a, b, _ in links if a == name} | {a for a, b, _ in links if b == name}
            )
            others = frozenset(names) - {name}
            await net.until(
                lambda core=core, others=others, peers=peers: (
                    core.reachable() == others and frozenset(core.neighbours()) == peers
                ),
                f"{name} has its neighbours and reaches every router",
            )
        for router in net.routers.values():  # and every router's paths are final
            core = router.network.core
            assert core is not None
            await net.until(
                lambda core=core, me=router.router_id: all(
                    core.cost_to(n) == _hops(links, me, n) for n in core.reachable()
                ),
                f"{router.router_id}: least costs",
            )
        yield net
    finally:
        for router in net.routers.values():
            await router.stop(timeout=1.0)


def _hops(links: list[tuple[str, str, int]], start: str, end: str) -> int:
    """The least cost from ``start`` to ``end`` over ``links`` (Bellman-Ford: tiny graphs)."""
    best = {start: 0}
    for _ in links:
        for a, b, cost in links:
            for x, y in ((a, b), (b, a)):
                if x in best and best[x] + cost < best.get(y, 1 << 62):
                    best[y] = best[x] + cost
    return best[end]


async def test_a_receiver_asking_for_the_trace_sees_the_path_and_others_see_nothing() -> None:
    async with (
        network([("A", "B", 1), ("B", "C", 1)]) as net,
        await petrel.connect(net.url("A")) as client_a,
        await petrel.connect(net.url("C")) as client_c,
    ):
        traced = await client_c.open_receiver(
            "traced", capabilities=[CAP_TRACE], credit=10, auto_accept=True
        )
        plain = await client_c.open_receiver("plain", credit=10, auto_accept=True)
        await net.knows("A", "traced", "C")
        await net.knows("A", "plain", "C")
        sent = asyncio.gather(
            (await client_a.open_sender("traced")).send(petrel.Message(body=1)),
            (await client_a.open_sender("plain")).send(
                petrel.Message(body=2, message_annotations={"x-opt-mine": "kept"})
            ),
        )
        got = await asyncio.wait_for(traced.receive(), TIMEOUT)
        assert got.message.message_annotations == {ANN_INGRESS: "A", ANN_TRACE: ["A", "B", "C"]}
        other = await asyncio.wait_for(plain.receive(), TIMEOUT)
        # The routing annotations are gone; the sender's own are passed on as they were.
        assert other.message.message_annotations == {"x-opt-mine": "kept"}
        assert ANN_TO not in (other.message.message_annotations or {})
        await asyncio.wait_for(sent, TIMEOUT)  # accepted end to end


async def test_a_producer_has_credit_only_while_a_receiver_exists_somewhere() -> None:
    async with (
        network([("A", "B", 1)]) as net,
        await petrel.connect(net.url("A")) as client_a,
        await petrel.connect(net.url("B")) as client_b,
    ):
        sender = await client_a.open_sender("work")
        producer = next(
            h
            for conn in net.routers["A"].state.connections.values()
            for link, h in conn.links.items()
            if link.name == sender.name
        )
        assert producer.link.credit == 0
        receiver = await client_b.open_receiver("work", credit=5)
        await net.until(lambda: producer.link.credit > 0, "credit once B has a receiver")
        sent = asyncio.ensure_future(sender.send(petrel.Message(body="x")))
        delivery = await asyncio.wait_for(receiver.receive(), TIMEOUT)
        await delivery.accept()
        await asyncio.wait_for(sent, TIMEOUT)
        await receiver.close()
        await net.until(lambda: producer.link.credit == 0, "no credit once it went")


async def test_deliveries_waiting_for_a_receiver_that_leaves_are_released() -> None:
    async with (
        network([("A", "B", 1)]) as net,
        await petrel.connect(net.url("A")) as client_a,
        await petrel.connect(net.url("B")) as client_b,
    ):
        receiver = await client_b.open_receiver("slow", credit=1)
        await net.knows("A", "slow", "B")
        sender = await client_a.open_sender("slow")
        sends = [asyncio.ensure_future(sender.send(petrel.Message(body=i))) for i in range(5)]
        first = await asyncio.wait_for(receiver.receive(), TIMEOUT)
        await first.accept()
        await receiver.close()  # four wait at B for credit that will never come
        outcomes = await asyncio.wait_for(asyncio.gather(*sends, return_exceptions=True), TIMEOUT)
        assert outcomes[0] is None, outcomes
        # Those B held for credit come back released; one the client had been sent (its
        # credit window) comes back modified: none is left without an outcome.
        released = [o for o in outcomes[1:] if isinstance(o, MessageReleased)]
        modified = [o for o in outcomes[1:] if isinstance(o, MessageModified)]
        assert len(released) + len(modified) == 4, outcomes
        assert len(released) >= 3, outcomes
        stats = net.routers["B"].network.table.stats
        assert (stats.released, stats.modified) == (len(released), len(modified))


async def test_resend_released_forwards_again_to_the_next_receiver() -> None:
    async with (
        network([("A", "B", 1)]) as net,
        await petrel.connect(net.url("A")) as client_a,
        await petrel.connect(net.url("B")) as client_b,
    ):
        # A receiver that gives no credit: B holds the messages for it until it goes.
        first = await client_b.open_receiver("jobs", credit=0)
        await net.knows("A", "jobs", "B")
        sender = await client_a.open_sender("jobs", capabilities=["petrel:resend-released"])
        sends = [asyncio.ensure_future(sender.send(petrel.Message(body=i))) for i in range(3)]
        b_table = net.routers["B"].network.table
        await net.until(lambda: b_table.stats.delivered_in == 3, "B holds the three")
        await first.close()
        # Released by B; router A tries again, and a new receiver takes them.
        second = await client_a.open_receiver("jobs", credit=10)
        bodies = []
        for _ in range(3):
            delivery = await asyncio.wait_for(second.receive(), TIMEOUT)
            bodies.append(delivery.message.body)
            await delivery.accept()
        await asyncio.wait_for(asyncio.gather(*sends), TIMEOUT)
        assert sorted(bodies) == [0, 1, 2]
        assert net.routers["A"].network.table.stats.resent >= 1


async def test_multicast_gives_each_receiver_one_copy_and_settles_accepted() -> None:
    async with network([("A", "B", 1), ("B", "C", 1), ("C", "A", 1)]) as net:
        clients = {r: await petrel.connect(net.url(r)) for r in "ABC"}
        try:
            receivers = [
                await clients[r].open_receiver("mc.news", credit=100, auto_accept=True)
                for r in ("A", "B", "C", "C")
            ]
            await net.knows("A", "mc.news", "B", "C")
            await net.knows("B", "mc.news", "A", "C")
            sender = await clients["A"].open_sender("mc.news")
            sent = asyncio.gather(*(sender.send(petrel.Message(body=i)) for i in range(20)))
            for receiver in receivers:
                bodies = []
                for _ in range(20):
                    delivery = await asyncio.wait_for(receiver.receive(), TIMEOUT)
                    bodies.append(delivery.message.body)
                assert bodies == list(range(20))
            await asyncio.wait_for(sent, TIMEOUT)  # each settled once every copy was
            await asyncio.sleep(0.3)
            for receiver in receivers:
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(receiver.receive(), 0.1)  # no duplicates
        finally:
            for client in clients.values():
                await client.close()


async def test_balanced_counts_what_is_in_flight_toward_each_router() -> None:
    # B's receiver holds what it gets; C's accepts at once: A sends C nearly everything,
    # and once B settles, A's count of deliveries in flight toward B is back to nothing.
    async with network([("A", "B", 1), ("A", "C", 1)]) as net:
        clients = {r: await petrel.connect(net.url(r)) for r in "ABC"}
        try:
            holder = await clients["B"].open_receiver("bal.work", credit=100, auto_accept=False)
            taker = await clients["C"].open_receiver("bal.work", credit=100, auto_accept=True)
            await net.knows("A", "bal.work", "B", "C")
            sender = await clients["A"].open_sender("bal.work")
            took: list[Any] = []

            async def take() -> None:
                while True:
                    took.append(await taker.receive())  # accepted as it is received

            taking = asyncio.ensure_future(take())
            waiting = set()
            for i in range(20):
                send = asyncio.ensure_future(sender.send(petrel.Message(body=i)))
                done, _ = await asyncio.wait({send}, timeout=2.0)  # C's come back at once
                waiting |= {send} - done
            entry = net.routers["A"].network.table.entries["bal.work"]
            held = entry.outstanding.get("B", 0)
            assert 1 <= held <= 3, entry.outstanding  # B holds the first (ties: lowest id)
            assert held == len(waiting) and set(entry.outstanding) == {"B"}
            await net.until(lambda: len(took) == 20 - held, "C took all the others")
            taking.cancel()
            for _ in range(held):
                delivery = await asyncio.wait_for(holder.receive(), TIMEOUT)
                await delivery.accept()
            await asyncio.wait_for(asyncio.gather(*waiting), TIMEOUT)
            await net.until(lambda: not entry.outstanding, "nothing in flight toward B or C")
        finally:
            for client in clients.values():
                await client.close()


async def test_management_of_a_router_through_another() -> None:
    async with network([("A", "B", 5)]) as net, await petrel.connect(net.url("A")) as client:
        here = ManagementClient(client)
        there = ManagementClient(client, address="_topo/0/B/$management")
        mine = (await here.query("petrel.router")).as_dicts()
        theirs = (await there.query("petrel.router")).as_dicts()
        assert [r["id"] for r in mine] == ["A"]
        assert [r["id"] for r in theirs] == ["B"]
        nodes = {n["id"]: n for n in (await there.query("petrel.router.node")).as_dicts()}
        assert nodes["A"]["next_hop"] == "A"
        assert nodes["A"]["cost"] == 5


async def test_two_routers_that_dial_each_other_keep_one_connection() -> None:
    async with network([("A", "B", 1), ("B", "A", 1)]) as net:
        # Whichever came up first, both end up on the connection A (the lower id) dialled.
        for name, dialled in (("A", True), ("B", False)):
            network_ = net.routers[name].network
            await net.until(
                lambda n=network_, d=dialled: [x.connection.dialled for x in n.neighbours] == [d],
                f"{name} keeps the connection A dialled",
            )
        async with (
            await petrel.connect(net.url("A")) as client_a,
            await petrel.connect(net.url("B")) as client_b,
        ):
            receiver = await client_b.open_receiver("both", credit=5, auto_accept=True)
            await net.knows("A", "both", "B")
            sent = asyncio.ensure_future(
                (await client_a.open_sender("both")).send(petrel.Message(body=1))
            )
            assert (await asyncio.wait_for(receiver.receive(), TIMEOUT)).message.body == 1
            await asyncio.wait_for(sent, TIMEOUT)


async def test_routers_talk_over_tls_with_client_certificates(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    for name, host in (("b", "127.0.0.1"), ("a", "router-a")):
        leaf = ca.issue_cert(host)
        leaf.cert_chain_pems[0].write_to_path(str(tmp_path / f"{name}.pem"))
        leaf.private_key_pem.write_to_path(str(tmp_path / f"{name}.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    inter, port_a, port_b = free_port(), free_port(), free_port()
    b = Router(
        RouterSettings.model_validate(
            {
                "router": {"id": "B"},
                "listeners": [
                    {"url": f"amqp://127.0.0.1:{port_b}"},
                    {
                        "url": f"amqps://127.0.0.1:{inter}",
                        "role": "inter-router",
                        "tls": {
                            "cert_file": str(tmp_path / "b.pem"),
                            "key_file": str(tmp_path / "b.key"),
                            "ca_file": str(tmp_path / "ca.pem"),
                            "require_client_cert": True,
                        },
                    },
                ],
            }
        ),
        timers=FAST,
    )
    a = Router(
        RouterSettings.model_validate(
            {
                "router": {"id": "A"},
                "listeners": [{"url": f"amqp://127.0.0.1:{port_a}"}],
                "connectors": [
                    {
                        "url": f"amqps://127.0.0.1:{inter}",
                        "tls": {
                            "ca_file": str(tmp_path / "ca.pem"),
                            "cert_file": str(tmp_path / "a.pem"),
                            "key_file": str(tmp_path / "a.key"),
                        },
                    }
                ],
            }
        ),
        timers=FAST,
    )
    await b.start()
    await a.start()
    try:
        net = Net()
        net.routers = {"A": a, "B": b}
        net.ports = {"A": port_a, "B": port_b}
        core = a.network.core
        assert core is not None
        await net.until(lambda: core.reachable() == {"B"}, "A reaches B over TLS")
        link = next(iter(a.network.neighbours)).connection.protocol.transport
        assert link is not None and link.get_extra_info("ssl_object") is not None
        async with (
            await petrel.connect(net.url("A")) as client_a,
            await petrel.connect(net.url("B")) as client_b,
        ):
            receiver = await client_b.open_receiver("secure", credit=5, auto_accept=True)
            await net.knows("A", "secure", "B")
            sent = asyncio.ensure_future(
                (await client_a.open_sender("secure")).send(petrel.Message(body="s"))
            )
            assert (await asyncio.wait_for(receiver.receive(), TIMEOUT)).message.body == "s"
            await asyncio.wait_for(sent, TIMEOUT)
    finally:
        await a.stop(timeout=1.0)
        await b.stop(timeout=1.0)


async def test_a_client_that_may_not_manage_here_may_not_manage_another_router() -> None:
    # A has a user who is not an admin: only admins (and anonymous loopback clients) may
    # use management, on A and, through A, on any other router.
    reader = {"A": {"users": [{"name": "reader", "password": "secret"}]}}
    async with network([("A", "B", 1)], extra=reader) as net:
        async with await petrel.connect(
            net.url("A"), username="reader", password="secret"
        ) as client:
            there = ManagementClient(client, address="_topo/0/B/$management", timeout=5)
            with pytest.raises(Exception, match="may not use") as caught:
                await there.query("petrel.router")
            assert "unauthorized" in repr(caught.value).lower() or "may not" in str(caught.value)
        async with await petrel.connect(net.url("A")) as anonymous:  # loopback: allowed
            there = ManagementClient(anonymous, address="_topo/0/B/$management", timeout=5)
            assert [r["id"] for r in (await there.query("petrel.router")).as_dicts()] == ["B"]
