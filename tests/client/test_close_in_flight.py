"""A sender closed with messages in flight: outcomes that come after the detach still
resolve the sends (a delivery belongs to the session, not the link); the ones still open
when the session ends fail with ``LinkClosed``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

import petrel
from petrel.client import LinkClosed, MessageRejected, MessageReleased
from petrel.spec import Accepted, Rejected, Released
from tests.client.conftest import Peer
from tests.client.petrel_peer import petrel_peer

TIMEOUT = 10.0


async def until(check: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {TIMEOUT} s: {what}")
        await asyncio.sleep(0.01)


async def test_outcomes_after_the_close_resolve_the_sends() -> None:
    async with (
        petrel_peer(hold=True) as (url, record),
        await petrel.connect(url) as conn,
    ):
        sender = await conn.open_sender("q", retry_released=3)
        sends = [await sender.send(n, wait=False) for n in range(4)]
        await until(lambda: len(record.held) == 4, "the peer holds four deliveries")
        await sender.close(timeout=0.1)  # the outcomes are not there yet: close anyway
        assert not sender.is_open and sender.unsettled == 4
        accepted, rejected, released, unanswered = record.held
        assert accepted.link.state.name == "CLOSED"
        accepted.update(Accepted(), settled=True)
        rejected.update(Rejected(), settled=True)
        released.update(Released(), settled=True)
        record.protocols[0].flush()
        assert await asyncio.wait_for(sends[0], TIMEOUT) is None
        with pytest.raises(MessageRejected):
            await asyncio.wait_for(sends[1], TIMEOUT)
        with pytest.raises(MessageReleased):  # closed: not sent again, whatever retry says
            await asyncio.wait_for(sends[2], TIMEOUT)
        assert len(record.payloads) == 4
        assert not sends[3].done() and sender.unsettled == 1
        unanswered.link.session.end()  # the outcome never comes: the session goes first
        record.protocols[0].flush()
        with pytest.raises(LinkClosed, match="was closed and its session ended"):
            await asyncio.wait_for(sends[3], TIMEOUT)
        assert sender.unsettled == 0 and not conn._closed_senders


async def test_outcomes_right_behind_the_detach() -> None:
    """The peer answers the detach and then accepts, in one write: the outcome is read
    with the detach, before the close has finished."""
    async with (
        petrel_peer(accept_at_detach=True) as (url, record),
        await petrel.connect(url) as conn,
    ):
        sender = await conn.open_sender("q")
        sends = [await sender.send(n, wait=False) for n in range(3)]
        await until(lambda: len(record.held) == 3, "the peer holds three deliveries")
        # No outcome within the second close() waits; then it detaches and waits for the
        # peer's detach, which comes with the outcomes behind it.
        await sender.close(timeout=1.0)
        assert await asyncio.wait_for(asyncio.gather(*sends), TIMEOUT) == [None] * 3
        assert not conn._closed_senders


async def test_the_connection_closing_fails_what_is_still_open() -> None:
    async with petrel_peer(hold=True) as (url, record):
        conn = await petrel.connect(url)
        sender = await conn.open_sender("q")
        sent = await sender.send("x", wait=False)
        await until(lambda: len(record.held) == 1, "the peer holds the delivery")
        await sender.close(timeout=0.1)
        assert not sent.done()
        await conn.close()
        with pytest.raises(LinkClosed):
            await asyncio.wait_for(sent, TIMEOUT)
        assert not conn._closed_senders


async def test_proton_answers_a_sender_closed_at_once(peer: Peer, queue: str) -> None:
    """Against Proton's broker: send, close without waiting, and every send resolves."""
    async with await petrel.connect(peer.url) as conn:
        sender = await conn.open_sender(queue)
        sends = [await sender.send(n, wait=False) for n in range(5)]
        await sender.close(timeout=0)
        assert await asyncio.wait_for(asyncio.gather(*sends), TIMEOUT) == [None] * 5
        receiver = await conn.open_receiver(queue)
        got = [(await receiver.receive(timeout=TIMEOUT)).message.body for _ in range(5)]
        assert got == list(range(5))
