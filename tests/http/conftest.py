"""HTTP tests: the HTTP listener of in-process brokers and routers (and of ``petrel broker``
subprocesses), with real clients: Petrel's, Proton's, rhea over WebSockets, aiohttp."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from petrel.broker import Broker
from petrel.server.config import BrokerSettings


def http_port(server: Any) -> int:
    """The port of ``server``'s HTTP listener."""
    for settings, listener in server.listeners.listeners.values():
        if settings.role == "http":
            return int(listener.bound[0][1])
    raise AssertionError("the server has no HTTP listener")


def amqp_port(server: Any) -> int:
    """The port of ``server``'s first AMQP listener."""
    for settings, listener in server.listeners.listeners.values():
        if settings.role == "normal":
            return int(listener.bound[0][1])
    raise AssertionError("the server has no AMQP listener")


@pytest.fixture
async def make_broker() -> AsyncIterator[Callable[..., Any]]:
    """Start in-process brokers (memory store, AMQP and HTTP on ports of the system's
    choosing); each is stopped at the end of the test."""
    brokers: list[Broker] = []

    async def start(http: dict[str, Any] | None = None, **settings: Any) -> Broker:
        listeners = settings.pop(
            "listeners",
            [
                {"url": "amqp://127.0.0.1:0"},
                {"url": "http://127.0.0.1:0", "role": "http", **(http or {})},
            ],
        )
        broker = Broker(
            BrokerSettings.model_validate({"store": "memory", "listeners": listeners, **settings})
        )
        await broker.start()
        brokers.append(broker)
        return broker

    yield start
    for broker in brokers:
        await broker.stop(timeout=2.0)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_metrics(text: str) -> Samples:
    """A metrics page, parsed by Prometheus's own parser: each sample's value by its name
    and labels."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The value of one sample; an ``AssertionError`` listing the near misses if absent."""
    key = (name, frozenset(labels.items()))
    if key not in samples:
        near = sorted(str(dict(k[1])) for k in samples if k[0] == name)
        raise AssertionError(f"no sample {name}{labels}; with that name: {near}")
    return samples[key]


async def scrape(port: int, host: str = "127.0.0.1", **kwargs: Any) -> Samples:
    """``GET /metrics`` from ``host:port``, parsed (it must answer 200)."""
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://{host}:{port}/metrics", **kwargs) as response,
    ):
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        return parse_metrics(await response.text())
