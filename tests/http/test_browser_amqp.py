"""AMQP over WebSockets from a real browser: rhea's browser build in Debian's Chromium
(driven by Playwright), using the browser's own ``WebSocket``, through an in-process
broker, beside a plain-AMQP Proton client on the broker's TCP listener.

The page is blank (no console, no server page): rhea.min.js is added to it, and the
scripts below use rhea as a web application would.  rhea comes from
tests/interop/rhea (``npm ci`` there when missing, as tests/interop/test_rhea.py does).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

import petrel
from petrel.broker import Broker
from petrel.management import ManagementClient
from petrel.server.config import BrokerSettings
from tests.helpers.rhea import RHEA, install_rhea
from tests.http.conftest import amqp_port, http_port

pytest.importorskip("playwright.async_api")
pytest.importorskip("proton")

from playwright.async_api import Browser, Page
from proton import Message

from tests.helpers.browser import chromium
from tests.helpers.proton_client import (
    connect,
    drain,
    fetch,
    receiver,
    send_all,
    sender,
    settle,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

RHEA_JS = RHEA / "node_modules" / "rhea" / "dist" / "rhea.min.js"
#: How long the page waits for the broker before it gives up (a guard against hanging).
WAIT_MS = 10_000
#: Each open page's console messages, in order.
CONSOLES: dict[Page, list[str]] = {}

#: Sends ``count`` string bodies to ``address`` and closes once all are accepted.
#: Resolves to what happened: ``{sent, accepted, closed}`` or ``{error}``.
SEND = """
({url, address, count, timeout}) => new Promise((resolve) => {
  const container = require('rhea').create_container({id: 'browser-tx'});
  const ws = container.websocket_connect(WebSocket);
  const conn = container.connect({connection_details: ws(url, ['amqp']), reconnect: false});
  const report = {sent: 0, accepted: 0, closed: false};
  conn.on('sendable', (context) => {
    while (context.sender.sendable() && report.sent < count) {
      context.sender.send({body: 'browser-' + report.sent, subject: 'from the page'});
      report.sent++;
    }
  });
  conn.on('accepted', () => { if (++report.accepted === count) conn.close(); });
  conn.on('connection_close', () => { report.closed = true; resolve(report); });
  conn.on('disconnected', (context) => {
    resolve({...report, error: String(context.error || 'disconnected')});
  });
  conn.open_sender(address);
  setTimeout(() => resolve({...report, error: 'no answer in time'}), timeout);
})
"""

#: Opens a receiver on ``address`` and resolves once the broker has attached it; the
#: bodies received (each accepted) collect in ``window.received``.
RECEIVE = """
({url, address, timeout}) => new Promise((resolve) => {
  window.received = [];
  const container = require('rhea').create_container({id: 'browser-rx'});
  const ws = container.websocket_connect(WebSocket);
  const conn = container.connect({connection_details: ws(url, ['amqp']), reconnect: false});
  window.rxConnection = conn;
  conn.on('message', (context) => { window.received.push(context.message.body); });
  conn.on('receiver_open', () => resolve('attached'));
  conn.on('disconnected', (context) => resolve(String(context.error || 'disconnected')));
  conn.open_receiver(address);
  setTimeout(() => resolve('no attach in time'), timeout);
})
"""

#: A WebSocket to the broker offering ``protocols``: how it ended, or that it opened.
RAW_WEBSOCKET = """
({url, protocols}) => new Promise((resolve) => {
  const socket = new WebSocket(url, protocols);
  const seen = [];
  socket.onopen = () => { seen.push('open'); socket.close(); };
  socket.onerror = () => seen.push('error');
  socket.onclose = (event) => resolve({seen, code: event.code});
})
"""


@pytest.fixture(scope="module", autouse=True)
def rhea_installed() -> None:
    install_rhea("rhea/dist/rhea.min.js", node=False)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def broker() -> AsyncIterator[Broker]:
    settings = BrokerSettings.model_validate(
        {
            "store": "memory",
            "listeners": [
                {"url": "amqp://127.0.0.1:0"},
                {"url": "http://127.0.0.1:0", "role": "http"},
            ],
        }
    )
    made = Broker(settings)
    await made.start()
    yield made
    await made.stop(timeout=2.0)


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A blank page with rhea loaded; what it writes to its console goes to ``CONSOLES``."""
    context = await browser.new_context()
    opened = await context.new_page()
    log: list[str] = []
    opened.on("console", lambda message: log.append(message.text))
    CONSOLES[opened] = log
    await opened.set_content("<!doctype html><title>rhea</title>")
    await opened.add_script_tag(path=str(RHEA_JS))
    assert await opened.evaluate("typeof require('rhea').websocket_connect") == "function"
    yield opened
    del CONSOLES[opened]
    await context.close()


def tcp_url(broker: Broker) -> str:
    return f"amqp://127.0.0.1:{amqp_port(broker)}"


def proton_receive(url: str, address: str, count: int) -> list[tuple[Any, Any]]:
    """``count`` messages from ``address`` with Proton over plain AMQP: (body, subject)."""
    conn = connect(url, container_id="proton-rx")
    try:
        rx = receiver(conn, address, credit=count)
        got = []
        for _ in range(count):
            message, delivery = fetch(conn, rx)
            got.append((message.body, message.subject))
            settle(delivery)
        return got
    finally:
        conn.close()


def proton_send(url: str, address: str, bodies: list[str]) -> None:
    conn = connect(url, container_id="proton-tx")
    try:
        send_all(sender(conn, address), [Message(body=body) for body in bodies])
    finally:
        conn.close()


def proton_drain_count(url: str, address: str) -> int:
    """How many messages Proton can still take from ``address`` (by a drain)."""
    conn = connect(url)
    try:
        return len(drain(conn, receiver(conn, address)))
    finally:
        conn.close()


async def test_browser_sends_to_a_proton_receiver(broker: Broker, page: Page) -> None:
    url = f"ws://127.0.0.1:{http_port(broker)}/"
    report = await page.evaluate(
        SEND, {"url": url, "address": "browser.in", "count": 25, "timeout": WAIT_MS}
    )
    assert report == {"sent": 25, "accepted": 25, "closed": True}
    got = await asyncio.to_thread(proton_receive, tcp_url(broker), "browser.in", 25)
    assert got == [(f"browser-{i}", "from the page") for i in range(25)]


async def test_browser_receives_from_a_proton_sender(broker: Broker, page: Page) -> None:
    url = f"ws://127.0.0.1:{http_port(broker)}/amqp"
    assert (
        await page.evaluate(RECEIVE, {"url": url, "address": "browser.out", "timeout": WAIT_MS})
        == "attached"
    )

    # The page's connection is one of the broker's, on its HTTP listener, as management says.
    async with await petrel.connect(tcp_url(broker), container_id="checker") as conn:
        rows = (await ManagementClient(conn).query("petrel.connection")).as_dicts()
    listeners = {row["container"]: row["listener"] for row in rows}
    assert listeners["browser-rx"].startswith("http://127.0.0.1:"), rows
    assert listeners["checker"].startswith("amqp://"), rows

    bodies = [f"proton-{i}" for i in range(15)]
    await asyncio.to_thread(proton_send, tcp_url(broker), "browser.out", bodies)
    await page.wait_for_function("window.received.length >= 15", timeout=WAIT_MS)
    assert await page.evaluate("window.received") == bodies
    # All accepted (rhea's default): nothing stays on the queue once the page has closed.
    await page.evaluate("window.rxConnection.close()")
    for _ in range(100):
        if not any(c.container_id == "browser-rx" for c in broker.state.connections.values()):
            break
        await asyncio.sleep(0.05)
    leftovers = await asyncio.to_thread(proton_drain_count, tcp_url(broker), "browser.out")
    assert leftovers == 0


async def test_a_browser_websocket_without_the_amqp_subprotocol_is_refused(
    broker: Broker, page: Page
) -> None:
    before = set(broker.state.connections)
    url = f"ws://127.0.0.1:{http_port(broker)}/"
    for protocols in ([], ["binary"]):
        ended = await page.evaluate(RAW_WEBSOCKET, {"url": url, "protocols": protocols})
        assert ended == {"seen": ["error"], "code": 1006}, protocols
    # Chromium says why: the handshake was answered 400.
    messages = CONSOLES[page]
    assert sum("400" in text for text in messages) == 2, messages
    assert set(broker.state.connections) == before
    # With the subprotocol the same page gets through.
    ended = await page.evaluate(RAW_WEBSOCKET, {"url": url, "protocols": ["amqp"]})
    assert ended["seen"] == ["open"]
