"""One trace across a message's whole path: Petrel's client, two routers and a broker.

Everything runs in this process over real sockets on loopback, so the client, the
routers and the broker all make their spans with the test's tracer provider.  The
address is a waypoint: router B (the client's) -> router A -> the broker's queue ->
router A -> router B -> the receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import petrel
from petrel import Message
from petrel.broker import Broker
from petrel.router import Router, RouterSettings
from petrel.server.config import BrokerSettings
from tests.helpers.servers import free_port
from tests.router.test_forwarding import FAST, TIMEOUT, Net

WAYPOINT = [{"prefix": "orders", "waypoint": True}]


@contextlib.asynccontextmanager
async def network(*, tracing: bool) -> AsyncIterator[tuple[Net, Broker]]:
    """A broker with the ``orders`` queue, router A in front of it (autolinks in and out)
    and router B dialling A; ``[tracing] enabled`` on all three as ``tracing`` says."""
    port = free_port()
    broker = Broker(
        BrokerSettings(
            container_id="broker1",
            store="memory",
            listeners=[{"url": f"amqp://127.0.0.1:{port}"}],
            tracing={"enabled": tracing},
        )
    )
    await broker.start()
    inter = free_port()
    net = Net()
    net.ports = {"A": free_port(), "B": free_port()}
    a = RouterSettings.model_validate(
        {
            "router": {"id": "A"},
            "listeners": [
                {"url": net.url("A")},
                {"url": f"amqp://127.0.0.1:{inter}", "role": "inter-router"},
            ],
            "connectors": [
                {"name": "broker1", "url": f"amqp://127.0.0.1:{port}", "role": "route-container"}
            ],
            "addresses": WAYPOINT,
            "autolinks": [
                {"address": "orders", "connector": "broker1", "direction": direction}
                for direction in ("in", "out")
            ],
            "tracing": {"enabled": tracing},
        }
    )
    b = RouterSettings.model_validate(
        {
            "router": {"id": "B"},
            "listeners": [{"url": net.url("B")}],
            "connectors": [{"url": f"amqp://127.0.0.1:{inter}"}],
            "addresses": WAYPOINT,
            "tracing": {"enabled": tracing},
        }
    )
    net.routers = {"A": Router(a, timers=FAST), "B": Router(b, timers=FAST)}
    try:
        for router in net.routers.values():
            await router.start()
        core = net.routers["B"].network.core
        assert core is not None
        await net.until(lambda: core.routers_for("_phase/0/orders") == {"A"}, "phase 0 at A")
        yield net, broker
    finally:
        for router in net.routers.values():
            await router.stop(timeout=1.0)
        await broker.stop(timeout=1.0)


async def send_and_receive(net: Net, message: Message) -> petrel.Delivery:
    """``message`` sent to ``orders`` on router B and received there, then accepted."""
    async with await petrel.connect(net.url("B")) as client:
        receiver = await client.open_receiver("orders", credit=5)
        sender = await client.open_sender("orders")
        await asyncio.wait_for(sender.send(message), TIMEOUT)
        delivery = await receiver.receive(timeout=TIMEOUT)
        await delivery.accept()
        await sender.close()
        await receiver.close()
    return delivery


async def until_span(spans: InMemorySpanExporter, name: str) -> None:
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while not any(span.name == name for span in spans.get_finished_spans()):
        assert asyncio.get_running_loop().time() < deadline, f"no {name!r} span"
        await asyncio.sleep(0.02)


def summary(spans: Sequence[ReadableSpan]) -> list[tuple[str, Any, Any]]:
    """(name, node, routed-by) of each span, in the order they ended."""
    return [
        (s.name, s.attributes.get("petrel.node"), s.attributes.get("petrel.routed_by"))
        for s in spans
        if s.attributes is not None
    ]


async def test_one_trace_shows_the_path_through_two_routers_and_a_broker(
    spans: InMemorySpanExporter,
) -> None:
    async with network(tracing=True) as (net, _broker):
        sent = Message("order 1", message_id="m-1", application_properties={"region": "eu"})
        delivery = await send_and_receive(net, sent)
        await until_span(spans, "acknowledge orders")
    finished = spans.get_finished_spans()
    (send,) = [s for s in finished if s.name == "send orders"]
    context = send.context
    assert context is not None

    # The context rides in the application properties, beside the application's own.
    props = delivery.message.application_properties
    assert props == {
        "region": "eu",
        "traceparent": (
            f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
        ),
    }
    # ... and nothing on the way rewrote the message: it arrives as the client encoded it.
    assert (
        delivery.payload
        == Message("order 1", message_id="m-1", application_properties=props).encode()
    )

    # One trace; the producer span is its root.
    assert {s.context.trace_id for s in finished if s.context is not None} == {context.trace_id}
    assert send.parent is None
    assert send.kind is SpanKind.PRODUCER
    assert send.attributes is not None
    assert send.attributes["messaging.system"] == "amqp"
    assert send.attributes["messaging.destination.name"] == "orders"
    assert send.attributes["messaging.operation.type"] == "send"
    assert send.attributes["messaging.message.id"] == "m-1"

    # Every server span is a child of the producer span, in the order the message went.
    servers = [s for s in finished if s.name not in ("send orders", "receive orders")]
    assert summary(servers) == [
        ("route orders", "B", "_phase/0/orders"),
        ("route orders", "A", "_phase/0/orders"),
        ("publish orders", "broker1", None),
        ("deliver orders", "broker1", None),
        ("route orders", "A", "_phase/1/orders"),
        ("route orders", "B", "_phase/1/orders"),
        ("acknowledge orders", "broker1", None),
    ]
    for span in servers:
        assert span.parent is not None
        assert span.parent.span_id == context.span_id
        assert span.parent.is_remote  # read from the message, not from this process's context
    kinds = {s.name: s.kind for s in servers}
    assert kinds == {
        "route orders": SpanKind.CONSUMER,
        "publish orders": SpanKind.CONSUMER,
        "deliver orders": SpanKind.PRODUCER,
        "acknowledge orders": SpanKind.INTERNAL,
    }
    (ack,) = [s for s in servers if s.name == "acknowledge orders"]
    assert ack.attributes is not None and ack.attributes["petrel.outcome"] == "accepted"

    # The consumer span: linked to the producer span, and its child (no span was current).
    (receive,) = [s for s in finished if s.name == "receive orders"]
    assert receive.kind is SpanKind.CONSUMER
    assert receive.parent is not None and receive.parent.span_id == context.span_id
    assert [link.context.span_id for link in receive.links] == [context.span_id]
    # Handed to the application after the last router passed it on.
    last_route = next(
        i
        for i, s in enumerate(finished)
        if s.attributes is not None
        and s.attributes.get("petrel.routed_by") == "_phase/1/orders"
        and s.attributes.get("petrel.node") == "B"
    )
    assert finished.index(receive) > last_route


async def test_a_receiver_inside_its_own_span_keeps_it_and_links_the_producer(
    spans: InMemorySpanExporter, tracer_provider: TracerProvider
) -> None:
    tracer = tracer_provider.get_tracer("test")
    async with (
        network(tracing=True) as (net, _broker),
        await petrel.connect(net.url("B")) as client,
    ):
        receiver = await client.open_receiver("orders", credit=5)
        sender = await client.open_sender("orders")
        with tracer.start_as_current_span("checkout") as outer:
            await asyncio.wait_for(sender.send("in a span"), TIMEOUT)
        with tracer.start_as_current_span("worker") as worker:
            await receiver.receive(timeout=TIMEOUT)
        await sender.close()
        await receiver.close()
    finished = {s.name: s for s in spans.get_finished_spans()}
    send = finished["send orders"]
    receive = finished["receive orders"]
    # The producer span is a child of the application's span: one trace from "checkout".
    assert send.parent is not None and send.parent.span_id == outer.get_span_context().span_id
    # The receiver had a span of its own: the consumer span is its child, linked to the send.
    assert receive.parent is not None
    assert receive.parent.span_id == worker.get_span_context().span_id
    assert send.context is not None
    assert [link.context.span_id for link in receive.links] == [send.context.span_id]
    assert trace.get_current_span() is trace.INVALID_SPAN


async def test_without_the_setting_the_servers_make_no_spans_and_pass_the_bytes_on(
    spans: InMemorySpanExporter,
) -> None:
    async with network(tracing=False) as (net, broker):
        assert broker.core.tracing is None
        assert net.routers["A"].network.table.tracing is None
        delivery = await send_and_receive(net, Message("plain", application_properties={"n": 1}))
    # The client traces (it has a tracer provider): only its own two spans.
    assert sorted(s.name for s in spans.get_finished_spans()) == ["receive orders", "send orders"]
    props = delivery.message.application_properties
    assert props is not None and set(props) == {"n", "traceparent"}
    assert delivery.payload == Message("plain", application_properties=props).encode()


async def test_without_a_tracer_provider_the_client_adds_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No provider was given to Petrel and none is set globally: spans would be no-ops, so
    # the client makes none, and the message goes out exactly as the application made it.
    def no_span(*args: object) -> None:
        raise AssertionError("a send span was started with no tracer provider")

    monkeypatch.setattr(petrel.tracing.ClientTracing, "start_send", no_span)
    async with network(tracing=True) as (net, broker):
        message = Message("untraced", application_properties={"n": 1})
        delivery = await send_and_receive(net, message)
        assert broker.core.tracing is not None
    assert delivery.payload == message.encode()
