"""Other clients see the trace context as an ordinary application property.

Petrel's client sends through the broker (``[tracing] enabled``) to Qpid Proton's
Python client, which knows nothing of tracing: the ``traceparent`` arrives as a
string in ``Message.properties``, and Proton's accept ends the broker's part of the
trace with an ``acknowledge`` span.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import petrel
from petrel.broker import Broker
from petrel.server.config import BrokerSettings
from tests.helpers import proton_client as pc
from tests.helpers.servers import free_port

pytestmark = pytest.mark.interop


def proton_receives(url: str, address: str) -> tuple[Any, dict[str, Any]]:
    """One message on ``address`` with Proton's blocking client, accepted."""
    conn = pc.connect(url)
    try:
        rx = pc.receiver(conn, address, credit=1)
        message, delivery = pc.fetch(conn, rx)
        pc.settle(delivery)
        pc.flush(conn)
        pc.sync(conn)
        return message.body, dict(message.properties or {})
    finally:
        conn.close()


async def test_proton_receives_the_traceparent_as_an_application_property(
    spans: InMemorySpanExporter,
) -> None:
    port = free_port()
    url = f"amqp://127.0.0.1:{port}"
    broker = Broker(
        BrokerSettings(store="memory", listeners=[{"url": url}], tracing={"enabled": True})
    )
    await broker.start()
    try:
        async with await petrel.connect(url) as client:
            sender = await client.open_sender("invoices")
            await sender.send(petrel.Message("inv-7", application_properties={"amount": 12}))
        body, properties = await asyncio.to_thread(proton_receives, url, "invoices")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not any(s.name == "acknowledge invoices" for s in spans.get_finished_spans()):
            assert loop.time() < deadline, "no acknowledge span after Proton accepted"
            await asyncio.sleep(0.02)
    finally:
        await broker.stop(timeout=1.0)
    (send,) = [s for s in spans.get_finished_spans() if s.name == "send invoices"]
    assert send.context is not None
    context = send.context
    assert body == "inv-7"
    assert properties == {
        "amount": 12,
        "traceparent": f"00-{context.trace_id:032x}-{context.span_id:016x}-"
        f"{context.trace_flags:02x}",
    }
    names = [s.name for s in spans.get_finished_spans()]
    assert names.count("publish invoices") == 1
    assert names.count("deliver invoices") == 1
