"""Outcomes across a detach, through a router: a sender that closed its link before the
outcome came still hears it (a delivery is its session's until settled), and a receiver
that closes with deliveries unsettled is told the router let them go."""

from __future__ import annotations

import asyncio

import pytest

import petrel
from petrel.client import MessageModified, MessageRejected, MessageReleased
from tests.router.test_forwarding import TIMEOUT, network


async def test_the_outcome_reaches_a_sender_that_already_closed() -> None:
    async with network([], ids=["A"]) as net, await petrel.connect(net.url("A")) as client:
        receiver = await client.open_receiver("x", credit=5)
        await net.knows("A", "x")
        sender = await client.open_sender("x")
        sends = [await sender.send(n, wait=False) for n in range(2)]
        got = [await asyncio.wait_for(receiver.receive(), TIMEOUT) for _ in range(2)]
        await sender.close(timeout=0.2)  # no outcome yet: closed anyway
        assert not sender.is_open and not any(s.done() for s in sends)
        await got[0].accept()
        await got[1].reject("app:bad", "not this one")
        assert await asyncio.wait_for(sends[0], TIMEOUT) is None
        with pytest.raises(MessageRejected) as rejected:
            await asyncio.wait_for(sends[1], TIMEOUT)
        assert rejected.value.condition == "app:bad"


async def test_resend_released_for_a_sender_that_closed_answers_released() -> None:
    """The sender asked for released messages to be sent again, then closed its link:
    there is nothing to send them on, so it hears the release."""
    async with network([], ids=["A"]) as net, await petrel.connect(net.url("A")) as client:
        holder = await client.open_receiver("jobs", credit=0)  # takes nothing
        await net.knows("A", "jobs")
        sender = await client.open_sender("jobs", capabilities=["petrel:resend-released"])
        sent = await sender.send("job", wait=False)
        table = net.routers["A"].network.table
        await net.until(lambda: table.stats.delivered_in == 1, "A holds the message")
        await sender.close(timeout=0.2)
        await holder.close()  # released; the router would send it again, but the link went
        with pytest.raises(MessageReleased):
            await asyncio.wait_for(sent, TIMEOUT)


async def test_a_receiver_closing_with_deliveries_unsettled_sees_them_settled() -> None:
    async with network([], ids=["A"]) as net, await petrel.connect(net.url("A")) as client:
        receiver = await client.open_receiver("y", credit=5)
        await net.knows("A", "y")
        sender = await client.open_sender("y")
        sent = await sender.send("taken, never settled", wait=False)
        got = await asyncio.wait_for(receiver.receive(), TIMEOUT)
        assert not got.settled
        await receiver.close()
        await net.until(lambda: got.settled, "the router settles what it gave up on")
        with pytest.raises(MessageModified) as modified:  # delivered, then no outcome
            await asyncio.wait_for(sent, TIMEOUT)
        assert modified.value.outcome.delivery_failed
