"""The web console in a real browser: Debian's Chromium, driven by Playwright, on an
in-process broker and router network with Petrel's client making the traffic.

Every check compares what the page shows, or what a click did, with the server's
state read through ``$management`` over AMQP (``ManagementClient``): the console has
no model of its own.  ``POST /api/management`` (the console's one endpoint) is also
tested without a browser, with aiohttp.

With ``PETREL_CONSOLE_SCREENSHOTS=DIR`` the tests save a picture of each view into DIR
(``bench/console_screenshots.py`` makes those of docs/images/ that way).
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

import petrel
from petrel.broker import Broker
from petrel.management import ManagementClient
from petrel.router import Router, RouterSettings
from petrel.server.config import BrokerSettings
from tests.helpers.routers import IN_PROCESS_TIMERS
from tests.helpers.servers import free_port
from tests.http.conftest import amqp_port, http_port

pytest.importorskip("playwright.async_api")
from playwright.async_api import Browser, Page, expect

from tests.helpers.browser import chromium

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: How long the page may take to show a change (it reads the server every 300 ms).
WAIT_MS = 10_000
FAST = IN_PROCESS_TIMERS
SHOTS = os.environ.get("PETREL_CONSOLE_SCREENSHOTS")


async def shot(page: Page, name: str) -> None:
    """A picture of the page for the guide, when asked for."""
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(SHOTS) / f"console-{name}.png"))


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
            "queues": [
                {"name": "orders", "dead_letter_address": "orders.dlq"},
                {"name": "orders.dlq"},
                {"name": "archive"},
                {"name": "invoices"},
            ],
            "users": [
                {"name": "admin", "password": "admin-secret", "admin": True},
                {"name": "plain", "password": "plain-secret"},
            ],
        }
    )
    made = Broker(settings)
    await made.start()
    yield made
    await made.stop(timeout=2.0)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def manager(broker: Broker) -> AsyncIterator[ManagementClient]:
    """The broker's management over AMQP: the truth the page is checked against."""
    async with await petrel.connect(
        f"amqp://127.0.0.1:{amqp_port(broker)}", container_id="checker"
    ) as conn:
        yield ManagementClient(conn)


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser, broker: Broker) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 760})
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on(
        "console",
        lambda message: errors.append(message.text) if message.type == "error" else None,
    )
    await opened.goto(f"http://127.0.0.1:{http_port(broker)}/?refresh=300")
    yield opened
    await context.close()
    assert errors == [], f"the page raised: {errors}"


async def view(page: Page, name: str) -> None:
    await page.get_by_role("link", name=name, exact=True).click()
    await expect(page.locator("nav a[aria-current=page]")).to_have_text(name)


def cell(page: Page, table: str, row: str, column: str) -> Any:
    return page.locator(f'#{table} tr[data-name="{row}"] td[data-col="{column}"]')


def row_button(page: Page, table: str, row: str, label: str) -> Any:
    return page.locator(f'#{table} tr[data-name="{row}"]').get_by_role(
        "button", name=label, exact=True
    )


async def confirm(page: Page, **fields: str) -> None:
    dialog = page.locator("dialog#dialog")
    await expect(dialog).to_be_visible()
    for name, text in fields.items():
        await dialog.locator(f'input[name="{name}"]').fill(text)
    await dialog.locator("#dialog-ok").click()
    await expect(dialog).to_be_hidden()


async def send(broker: Broker, address: str, bodies: list[Any], **options: Any) -> None:
    async with await petrel.connect(f"amqp://127.0.0.1:{amqp_port(broker)}") as conn:
        sender = await conn.open_sender(address)
        for body in bodies:
            await sender.send(petrel.Message(body, **options))


async def depth(manager: ManagementClient, queue: str) -> int:
    return int((await manager.read("petrel.queue", queue))["depth"])


# --- the endpoint, without a browser --------------------------------------------------------


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def api(
    broker: Broker, document: Any, *, auth: dict[str, str] | None = None
) -> tuple[int, Any]:
    url = f"http://127.0.0.1:{http_port(broker)}/api/management"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=document, headers=auth) as response,
    ):
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


async def test_the_endpoint_answers_as_the_amqp_node_does(
    broker: Broker, manager: ManagementClient
) -> None:
    await send(broker, "invoices", ["i1", b"\x00\xffraw"], subject="bill")
    status, reply = await api(
        broker,
        {
            "application_properties": {
                "operation": "READ",
                "type": "petrel.queue",
                "name": "invoices",
            },
            "body": None,
        },
    )
    assert status == 200
    assert reply["application_properties"]["statusCode"] == 200
    over_amqp = await manager.read("petrel.queue", "invoices")
    assert reply["body"] == {k: v for k, v in over_amqp.items() if k != "type"} | {
        "type": "petrel.queue"
    }
    # PEEK: binary bodies come as base64, text as text.
    status, reply = await api(
        broker,
        {
            "application_properties": {
                "operation": "PEEK",
                "type": "petrel.queue",
                "name": "invoices",
                "count": 5,
            }
        },
    )
    bodies = [m["body"] for m in reply["body"]]
    assert bodies == ["i1", {"$binary": base64.b64encode(b"\x00\xffraw").decode()}]
    assert [m["subject"] for m in reply["body"]] == ["bill", "bill"]
    # A failure is the node's reply (HTTP 200), with its status and description.
    status, reply = await api(
        broker,
        {"application_properties": {"operation": "READ", "type": "petrel.queue", "name": "nope"}},
    )
    assert status == 200
    assert reply["application_properties"] == {
        "statusCode": 404,
        "statusDescription": "no entity with name='nope' in petrel.queue",
    }
    await manager.invoke("petrel.queue", "PURGE", "invoices")


async def test_the_endpoint_refuses_what_is_not_a_request(broker: Broker) -> None:
    assert await api(broker, [1, 2]) == (400, {"error": ANY_TEXT})
    status, reply = await api(broker, {"application_properties": {}, "extra": 1})
    assert (status, reply["error"]) == (
        400,
        "not a management request: unknown member 'extra': a request has "
        "application_properties and body",
    )
    status, reply = await api(broker, {"application_properties": {"name": "x"}})
    assert reply["application_properties"]["statusCode"] == 400
    assert "operation" in reply["application_properties"]["statusDescription"]
    url = f"http://127.0.0.1:{http_port(broker)}/api/management"
    async with aiohttp.ClientSession() as session:
        # A form post (what a page of another site could send without asking) is refused...
        async with session.post(url, data="operation=PURGE") as response:
            assert response.status == 415
        # ...and so is JSON that names another origin.
        async with session.post(
            url,
            json={"application_properties": {"operation": "GET-TYPES"}},
            headers={"Origin": "http://evil.example"},
        ) as response:
            assert response.status == 403
            assert "http://evil.example" in (await response.json())["error"]
        async with session.post(
            url, data=b"[" * 10_000, headers={"Content-Type": "application/json"}
        ) as response:
            assert response.status == 400


class _AnyText:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(other)


ANY_TEXT = _AnyText()


async def test_the_console_needs_the_manage_right(broker: Broker) -> None:
    base = f"http://127.0.0.1:{http_port(broker)}"
    document = {"application_properties": {"operation": "GET-TYPES"}}
    # Loopback: open without credentials, but credentials given are checked.
    assert (await api(broker, document))[0] == 200
    assert (await api(broker, document, auth=basic("admin", "admin-secret")))[0] == 200
    status, text = await api(broker, document, auth=basic("admin", "wrong"))
    assert (status, text) == (401, "wrong user name or password\n")
    status, text = await api(broker, document, auth=basic("plain", "plain-secret"))
    assert (status, text) == (403, "user 'plain' may not manage this server\n")
    async with aiohttp.ClientSession() as session:
        async with session.get(
            base + "/console/app.js", headers=basic("plain", "plain-secret")
        ) as response:
            assert response.status == 403
        async with session.get(
            base + "/", allow_redirects=False, headers={"Accept": "text/html,*/*;q=0.8"}
        ) as response:
            assert (response.status, response.headers["Location"]) == (302, "/console/")
        async with session.get(base + "/") as response:  # not a browser: the index
            assert response.status == 200
            assert "/console/" in await response.text()
        async with session.get(base + "/console/") as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        async with session.get(base + "/console/nothing.js") as response:
            assert response.status == 404
        # A name other than localhost needs credentials (a rebound DNS name is no proof).
        for path in ("/console/", "/api/management"):
            async with session.request(
                "GET" if path == "/console/" else "POST",
                base + path,
                json=document,
                headers={"Host": f"rebound.example:{http_port(broker)}"},
            ) as response:
                assert response.status == 403
                assert "not by the name 'rebound.example'" in await response.text()
        async with session.get(
            base + "/console/",
            headers={"Host": "rebound.example", **basic("admin", "admin-secret")},
        ) as response:
            assert response.status == 200


# --- the views, in the browser ----------------------------------------------------------------


async def test_overview_shows_the_brokers_totals(
    page: Page, broker: Broker, manager: ManagementClient
) -> None:
    await send(broker, "orders", [f"order {i}" for i in range(3)])
    expected = (await manager.query("petrel.broker")).as_dicts()[0]
    cards = page.locator("#overview-cards")
    await expect(page.locator("#server-name")).to_have_text(expected["name"])
    await expect(cards.locator("[data-card=depth] .value")).to_have_text(str(expected["depth"]))
    await expect(cards.locator("[data-card=queues] .value")).to_have_text(str(expected["queues"]))
    await expect(cards.locator("[data-card=connections] .value")).to_have_text(
        str(expected["connections"])
    )
    await expect(cell(page, "deepest-queues", "orders", "depth")).to_have_text(
        str(await depth(manager, "orders"))
    )
    await shot(page, "overview")
    await manager.invoke("petrel.queue", "PURGE", "orders")


async def test_queues_show_depths_and_peek_shows_the_messages(
    page: Page, broker: Broker, manager: ManagementClient
) -> None:
    await send(broker, "orders", [f"order {i}" for i in range(4)], subject="new")
    await view(page, "Queues")
    for queue in ("orders", "orders.dlq", "archive"):
        entity = await manager.read("petrel.queue", queue)
        await expect(cell(page, "queues", queue, "depth")).to_have_text(str(entity["depth"]))
        await expect(cell(page, "queues", queue, "consumers")).to_have_text(
            str(entity["consumers"])
        )
    await row_button(page, "queues", "orders", "Peek").click()
    peeked = await manager.invoke("petrel.queue", "PEEK", "orders", arguments={"count": 20})
    bodies = page.locator('#peeked td[data-col="body"]')
    await expect(bodies).to_have_text([m["body"] for m in peeked])
    await expect(page.locator('#peeked td[data-col="subject"]')).to_have_text(["new"] * 4)
    await shot(page, "queues")
    await manager.invoke("petrel.queue", "PURGE", "orders")


async def test_purge_from_the_page(page: Page, broker: Broker, manager: ManagementClient) -> None:
    await send(broker, "orders", ["a", "b", "c"])
    await view(page, "Queues")
    await expect(cell(page, "queues", "orders", "depth")).to_have_text("3")
    await row_button(page, "queues", "orders", "Purge").click()
    await confirm(page)
    await expect(page.locator("#notice")).to_have_text("Purged 3 messages from orders.")
    assert await depth(manager, "orders") == 0
    await expect(cell(page, "queues", "orders", "depth")).to_have_text("0")


async def test_cancelling_a_purge_keeps_the_messages(
    page: Page, broker: Broker, manager: ManagementClient
) -> None:
    await send(broker, "orders", ["kept"])
    await view(page, "Queues")
    await expect(cell(page, "queues", "orders", "depth")).to_have_text("1")
    await row_button(page, "queues", "orders", "Purge").click()
    await page.locator("#dialog-cancel").click()
    await expect(page.locator("dialog#dialog")).to_be_hidden()
    assert await depth(manager, "orders") == 1
    await manager.invoke("petrel.queue", "PURGE", "orders")


async def test_move_with_a_selector(page: Page, broker: Broker, manager: ManagementClient) -> None:
    async with await petrel.connect(f"amqp://127.0.0.1:{amqp_port(broker)}") as conn:
        sender = await conn.open_sender("orders")
        for i in range(6):
            region = "eu" if i % 2 == 0 else "us"
            await sender.send(petrel.Message(f"o{i}", application_properties={"region": region}))
    await view(page, "Queues")
    await expect(cell(page, "queues", "orders", "depth")).to_have_text("6")
    await row_button(page, "queues", "orders", "Move").click()
    await confirm(page, to="archive", selector="region = 'eu'")
    await expect(page.locator("#notice")).to_have_text(
        "Moved 3 messages from orders to archive; 3 left."
    )
    moved = await manager.invoke("petrel.queue", "PEEK", "archive", arguments={"count": 10})
    assert [m["body"] for m in moved] == ["o0", "o2", "o4"]
    await expect(cell(page, "queues", "archive", "depth")).to_have_text("3")
    await expect(cell(page, "queues", "orders", "depth")).to_have_text("3")
    # A target that does not exist: the node's 404, shown as it is; nothing moves.
    await row_button(page, "queues", "orders", "Move").click()
    await confirm(page, to="nowhere")
    await expect(page.locator("#notice")).to_have_text(
        "Moving from orders failed: no address 'nowhere' to move to"
    )
    await expect(page.locator("#notice")).to_have_class("error")
    assert await depth(manager, "orders") == 3
    for queue in ("orders", "archive"):
        await manager.invoke("petrel.queue", "PURGE", queue)


async def test_retry_sends_dead_letters_home(
    page: Page, broker: Broker, manager: ManagementClient
) -> None:
    await send(broker, "orders", ["bad 1", "bad 2"])
    async with await petrel.connect(f"amqp://127.0.0.1:{amqp_port(broker)}") as conn:
        receiver = await conn.open_receiver("orders", credit=2)
        for _ in range(2):
            delivery = await receiver.receive(timeout=5)
            await delivery.reject()
    assert await depth(manager, "orders.dlq") == 2
    await view(page, "Queues")
    await expect(cell(page, "queues", "orders.dlq", "depth")).to_have_text("2")
    await row_button(page, "queues", "orders.dlq", "Retry").click()
    await expect(page.locator("#notice")).to_have_text(
        "Sent 2 messages of orders.dlq back to their queues; 0 left."
    )
    assert await depth(manager, "orders.dlq") == 0
    assert await depth(manager, "orders") == 2
    await expect(cell(page, "queues", "orders", "depth")).to_have_text("2")
    await manager.invoke("petrel.queue", "PURGE", "orders")


async def test_names_are_shown_as_text(page: Page, manager: ManagementClient) -> None:
    name = '<img src=x onerror="document.title=1">'
    await manager.create("petrel.queue", name)
    try:
        await view(page, "Queues")
        await expect(page.locator('#queues td[data-col="name"]', has_text=name)).to_have_count(1)
        await expect(page.locator("#queues img")).to_have_count(0)
    finally:
        await manager.delete("petrel.queue", name)


async def test_delete_a_queue(page: Page, manager: ManagementClient) -> None:
    await manager.create("petrel.queue", "scratch")
    await view(page, "Queues")
    await expect(cell(page, "queues", "scratch", "depth")).to_have_text("0")
    await row_button(page, "queues", "scratch", "Delete").click()
    await confirm(page)
    await expect(page.locator("#notice")).to_have_text("Deleted scratch.")
    await expect(page.locator('#queues tr[data-name="scratch"]')).to_have_count(0)
    names = [q["name"] for q in (await manager.query("petrel.queue")).as_dicts()]
    assert "scratch" not in names


async def test_addresses_view(page: Page, manager: ManagementClient) -> None:
    await manager.create("petrel.address", "prices", routing="multicast")
    await view(page, "Addresses")
    for address in (await manager.query("petrel.address")).as_dicts():
        await expect(cell(page, "addresses", address["name"], "routing")).to_have_text(
            address["routing"]
        )
        await expect(cell(page, "addresses", address["name"], "depth")).to_have_text(
            str(address["depth"])
        )
    await shot(page, "addresses")
    await row_button(page, "addresses", "prices", "Delete").click()
    await confirm(page)
    await expect(page.locator("#notice")).to_have_text("Deleted the address prices.")
    names = [a["name"] for a in (await manager.query("petrel.address")).as_dicts()]
    assert "prices" not in names
    await expect(page.locator('#addresses tr[data-name="prices"]')).to_have_count(0)


async def test_close_a_connection(page: Page, broker: Broker, manager: ManagementClient) -> None:
    conn = await petrel.connect(
        f"amqp://127.0.0.1:{amqp_port(broker)}", container_id="victim", reconnect=False
    )
    try:
        receiver = await conn.open_receiver("orders")
        victim = next(
            c
            for c in (await manager.query("petrel.connection")).as_dicts()
            if c["container"] == "victim"
        )
        await view(page, "Connections")
        await expect(cell(page, "connections", victim["name"], "container")).to_have_text("victim")
        # Its receiver, among the links (named cN/lM after their connection).
        its_links = page.locator(f'#links tr[data-name^="{victim["name"]}/"]')
        await expect(its_links.locator('td[data-col="address"]')).to_have_text(["orders"])
        await shot(page, "connections")
        await row_button(page, "connections", victim["name"], "Close").click()
        await confirm(page)
        await expect(page.locator("#notice")).to_have_text(
            f"Closed the connection {victim['name']} (victim)."
        )
        with pytest.raises(petrel.ClientError):
            await receiver.receive(timeout=5)
        left = [c["container"] for c in (await manager.query("petrel.connection")).as_dicts()]
        assert "victim" not in left
        await expect(page.locator(f'#connections tr[data-name="{victim["name"]}"]')).to_have_count(
            0
        )
    finally:
        await conn.close()


# --- a router network ------------------------------------------------------------------------


def _router(router_id: str, inter: int, dial: list[tuple[int, int]], http: bool) -> Router:
    listeners: list[dict[str, Any]] = [
        {"url": "amqp://127.0.0.1:0"},
        {"url": f"amqp://127.0.0.1:{inter}", "role": "inter-router"},
    ]
    if http:
        listeners.append({"url": "http://127.0.0.1:0", "role": "http"})
    return Router(
        RouterSettings.model_validate(
            {
                "router": {"id": router_id},
                "listeners": listeners,
                "connectors": [
                    {"url": f"amqp://127.0.0.1:{port}", "role": "inter-router", "cost": cost}
                    for port, cost in dial
                ],
            }
        ),
        timers=FAST,
    )


async def _until(check: Any, what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.02)


async def test_the_network_picture_follows_the_routers(page: Page) -> None:
    """A-B (cost 1), B-C (cost 3), A-C (cost 5): the picture on A shows the three and their
    links; when C stops, C and its links leave the picture."""
    ports = {name: free_port() for name in "ABC"}
    routers = {
        "A": _router("A", ports["A"], [], http=True),
        "B": _router("B", ports["B"], [(ports["A"], 1)], http=False),
        "C": _router("C", ports["C"], [(ports["B"], 3), (ports["A"], 5)], http=False),
    }
    stopped: set[str] = set()
    try:
        for router in routers.values():
            await router.start()
        core = routers["A"].network.core
        assert core is not None
        await _until(lambda: core.reachable() == {"B", "C"}, "A reaches B and C")
        async with await petrel.connect(f"amqp://127.0.0.1:{amqp_port(routers['A'])}") as conn:
            nodes = (await ManagementClient(conn).query("petrel.router.node")).as_dicts()
        assert {n["id"]: n["link_costs"] for n in nodes} == {
            "A": {"B": 1, "C": 5},
            "B": {"A": 1, "C": 3},
            "C": {"A": 5, "B": 3},
        }
        await page.goto(f"http://127.0.0.1:{http_port(routers['A'])}/?refresh=300#network")
        await expect(page.locator("nav a[aria-current=page]")).to_have_text("Network")
        await expect(page.get_by_role("link", name="Queues")).to_be_hidden()
        graph = page.locator("#network-graph")
        await expect(graph.locator("g.router")).to_have_count(3)
        await expect(graph.locator("g.router.self")).to_have_attribute("data-router", "A")
        links = graph.locator("g.link")
        await expect(links).to_have_count(3)
        for pair, cost in (("A|B", "1"), ("B|C", "3"), ("A|C", "5")):
            await expect(graph.locator(f'g.link[data-link="{pair}"]')).to_have_attribute(
                "data-cost", cost
            )
        await expect(cell(page, "nodes", "C", "cost")).to_have_text("4")  # via B: 1 + 3
        await expect(cell(page, "nodes", "C", "next_hop")).to_have_text("B")
        await shot(page, "network")
        await view(page, "Overview")
        await expect(page.locator("#overview-cards [data-card=nodes] .value")).to_have_text("2")
        await view(page, "Network")

        await routers["C"].stop(timeout=1.0)
        stopped.add("C")
        await expect(graph.locator('g.router[data-router="C"]')).to_have_count(0)
        await expect(graph.locator("g.router")).to_have_count(2)
        await expect(links).to_have_count(1)
        await expect(graph.locator('g.link[data-link="A|B"]')).to_have_attribute("data-cost", "1")
    finally:
        for name, router in routers.items():
            if name not in stopped:
                await router.stop(timeout=1.0)


async def test_no_inline_script_or_style_in_the_page() -> None:
    """The page's CSP allows no inline script or style: the files must need none."""
    static = Path(petrel.__file__).parent / "server" / "http" / "console" / "static"
    html = (static / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "style=" not in html
    assert not re.search(r"<style", html)
