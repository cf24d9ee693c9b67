"""Request/response: Connection.request and Connection.serve, through a Proton broker."""

from __future__ import annotations

import asyncio

import pytest

import petrel
from petrel import Message
from petrel.client import MessageRejected, Responder, Timeout

pytestmark = pytest.mark.interop


async def test_request_to_the_proton_echo_service(url: str) -> None:
    async with await petrel.connect(url) as conn:
        response = await conn.request("echo", Message("ping", application_properties={"n": 1}))
        assert response.body == "ping"
        assert response.application_properties == {"n": 1}
        # Plain values are bodies; many requests at once each get their own answer.
        answers = await asyncio.gather(*(conn.request("echo", i, timeout=10) for i in range(20)))
        assert [a.body for a in answers] == list(range(20))


async def test_request_keeps_a_given_message_id(url: str) -> None:
    async with await petrel.connect(url) as conn:
        response = await conn.request("echo", Message("x", message_id="my-id-7"))
        assert response.correlation_id == "my-id-7"


async def test_requests_between_petrel_clients(url: str, queue: str) -> None:
    async def upper(request: Message) -> Message:
        await asyncio.sleep(0)
        return Message(str(request.body).upper(), subject="answer")

    async with await petrel.connect(url) as server, await petrel.connect(url) as client:
        async with await server.serve(queue, upper) as responder:
            assert isinstance(responder, Responder)
            response = await client.request(queue, "hello", timeout=10)
            assert response.body == "HELLO"
            assert response.subject == "answer"
            # A plain function returning a plain body works too.
        async with await server.serve(queue + "-sync", lambda m: len(m.body)):
            assert (await client.request(queue + "-sync", "four", timeout=10)).body == 4
        assert responder.handled == 1


async def test_a_failing_handler_rejects_the_request(url: str, queue: str) -> None:
    def broken(request: Message) -> Message:
        raise RuntimeError("no way")

    async with await petrel.connect(url) as conn:
        responder = await conn.serve(queue, broken)
        with pytest.raises(Timeout):
            await conn.request(queue, "will fail", timeout=0.5)
        await responder.close()
        # The broker got the rejection: nothing is left in the queue.
        receiver = await conn.open_receiver(queue)
        with pytest.raises(Timeout):
            await receiver.receive(timeout=0.2)


async def test_a_rejected_request_raises(url: str) -> None:
    async with await petrel.connect(url) as conn:
        with pytest.raises(MessageRejected):
            await conn.request("reject.requests", "x", timeout=5)


async def test_request_timeout(url: str, queue: str) -> None:
    async with await petrel.connect(url) as conn:
        with pytest.raises(Timeout, match="response"):
            await conn.request(queue, "nobody answers", timeout=0.2)
        assert conn._requester is not None
        assert conn._requester._pending == {}


async def test_requests_without_anonymous_relay(url: str, queue: str) -> None:
    async with await petrel.connect(url) as conn:
        conn._offered = ()  # use one sender per address instead
        assert (await conn.request("echo", "by address", timeout=10)).body == "by address"
        async with await conn.serve(queue, lambda m: m.body * 2):
            assert (await conn.request(queue, 21, timeout=10)).body == 42
