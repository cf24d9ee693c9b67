"""The driver's Connector over real sockets: round the addresses with backoff, until a
peer opens, gives up, or hears a refusal that trying again will not mend."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from petrel.driver import AmqpProtocol, Listener, parse_url
from petrel.driver.connector import Backoff, Connector, GaveUp
from petrel.engine import ConnectionConfig, SaslConfig
from petrel.engine import events as ev
from petrel.errors import AmqpError, Condition
from tests.helpers.servers import free_port

FAST = Backoff(initial_delay=0.01, max_delay=0.05, jitter=0.0, max_attempts=6)


class Opener:
    """A server-side handler that answers the open; that is all a connector needs."""

    def __init__(self, protocol: AmqpProtocol) -> None:
        self.protocol = protocol

    def handle_event(self, protocol: AmqpProtocol, event: Any) -> None:
        if isinstance(event, ev.ConnectionOpened):
            protocol.engine.open()


class Quiet:
    def handle_event(self, protocol: AmqpProtocol, event: Any) -> None:
        pass


def client_config(address: Any) -> ConnectionConfig:
    return ConnectionConfig(container_id="connector-test")


def test_backoff_grows_to_its_limit_and_spreads() -> None:
    steady = Backoff(initial_delay=0.1, max_delay=1.0, multiplier=2.0, jitter=0.0)
    assert [steady.delay(n) for n in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    spread = Backoff(initial_delay=1.0, jitter=0.2)
    delays = {spread.delay(0) for _ in range(50)}
    assert len(delays) > 1 and all(0.8 <= d <= 1.2 for d in delays)


async def test_goes_round_the_addresses_until_one_opens() -> None:
    dead = [parse_url(f"amqp://127.0.0.1:{free_port()}") for _ in range(2)]
    listener = Listener(["amqp://127.0.0.1:0"], ConnectionConfig, Opener)
    async with listener:
        alive = parse_url(f"amqp://127.0.0.1:{listener.bound[0][1]}")
        failures: list[tuple[int, str]] = []
        connected: list[int] = []
        connector = Connector(
            [*dead, alive],
            client_config,
            Quiet(),
            backoff=FAST,
            on_connected=lambda protocol, index: connected.append(index),
        )
        protocol, index = await connector.connect(
            wait_first=False, on_failure=lambda n, address, exc: failures.append((n, str(address)))
        )
        assert index == 2 and connected == [2]
        assert [n for n, _ in failures] == [1, 2]
        assert [address for _, address in failures] == [str(a) for a in dead]
        assert protocol.opened.done()
        await protocol.close()


async def test_gives_up_after_max_attempts() -> None:
    nowhere = parse_url(f"amqp://127.0.0.1:{free_port()}")
    connector = Connector([nowhere], client_config, Quiet(), backoff=FAST)
    with pytest.raises(GaveUp) as caught:
        await connector.connect()
    assert caught.value.attempts == FAST.max_attempts
    assert isinstance(caught.value.error, OSError)


async def test_a_final_error_ends_the_attempts_at_once() -> None:
    def refuse(username: str, password: str, authzid: str | None) -> str | None:
        return None

    def server_config() -> ConnectionConfig:
        return ConnectionConfig(sasl=SaslConfig(mechanisms=["PLAIN"], authenticator=refuse))

    listener = Listener(["amqp://127.0.0.1:0"], server_config, Opener)
    async with listener:
        url = parse_url(f"amqp://127.0.0.1:{listener.bound[0][1]}")
        attempts: list[int] = []

        def config(address: Any) -> ConnectionConfig:
            sasl = SaslConfig(mechanisms=["PLAIN"], username="u", password="wrong")
            return ConnectionConfig(container_id="connector-test", sasl=sasl)

        def refused(error: BaseException) -> bool:
            return isinstance(error, AmqpError) and error.condition == Condition.UNAUTHORIZED_ACCESS

        connector = Connector([url], config, Quiet(), backoff=FAST, is_final=refused)
        with pytest.raises(AmqpError) as caught:
            await connector.connect(wait_first=False, on_failure=lambda n, a, e: attempts.append(n))
        assert caught.value.condition == Condition.UNAUTHORIZED_ACCESS
        assert attempts == []


async def test_a_connection_its_owner_refuses_counts_as_a_failed_attempt() -> None:
    listener = Listener(["amqp://127.0.0.1:0"], ConnectionConfig, Opener)
    async with listener:
        url = parse_url(f"amqp://127.0.0.1:{listener.bound[0][1]}")
        seen: list[AmqpProtocol] = []

        def picky(protocol: AmqpProtocol, index: int) -> None:
            seen.append(protocol)
            if len(seen) < 3:
                raise ConnectionError("not this one")

        connector = Connector([url], client_config, Quiet(), backoff=FAST, on_connected=picky)
        protocol, _ = await connector.connect(wait_first=False)
        assert len(seen) == 3 and protocol is seen[-1]
        await asyncio.sleep(0)
        assert all(p.closed.done() for p in seen[:2])  # the refused ones were dropped
        await protocol.close()
