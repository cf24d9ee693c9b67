"""ManagementClient end to end: a Petrel responder with the agent behind it, on a Proton broker.

The management node is ``Connection.serve(address, agent.handle)`` on one
connection; the client talks to it from another, through the Proton test
broker over real sockets.  Each test serves its own address, so requests
left over by one test never reach another.  Fake responders check how the
client copes with replies the agent would not send (other servers' shapes,
missing status codes), and Proton's own request/response client checks that
a non-Petrel client gets answers.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

import petrel
from petrel.management import (
    BadRequest,
    BlockingManagementClient,
    Conflict,
    EntityNotFound,
    Forbidden,
    ManagementAgent,
    ManagementClient,
    ManagementError,
    ManagementRequest,
    OperationNotImplemented,
    QueryResult,
)
from tests.helpers.servers import proton_broker
from tests.management.test_agent import TYPES, MemoryProvider

proton_utils = pytest.importorskip("proton.utils")

pytestmark = pytest.mark.interop

_addresses = itertools.count(1)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with proton_broker() as port:
        yield f"amqp://127.0.0.1:{port}"


@dataclass
class Node:
    """A management node being served, and a client connection to it."""

    address: str
    provider: MemoryProvider
    agent: ManagementAgent
    server: petrel.Connection
    client: ManagementClient


@pytest.fixture
async def node(url: str) -> AsyncIterator[Node]:
    provider = MemoryProvider()
    provider.add(
        "test.queue", "orders", routing="anycast", max_messages=None, durable=True, depth=3
    )
    provider.add("test.connection", "c1", container_id="app-1", host="10.0.0.1")
    agent = ManagementAgent(TYPES, provider)
    address = f"mgmt-{next(_addresses)}"
    async with (
        await petrel.connect(url) as server,
        await petrel.connect(url) as conn,
        await server.serve(address, agent.handle),
    ):
        yield Node(address, provider, agent, server, ManagementClient(conn, address=address))


async def test_create_read_update_delete(node: Node) -> None:
    client = node.client
    created = await client.create("test.queue", "new", max_messages=10)
    assert created["max_messages"] == 10
    assert created["routing"] == "anycast"  # the default, filled in
    assert created["type"] == "test.queue"
    identity = created["identity"]
    assert await client.read("test.queue", "new") == created
    assert await client.read("test.queue", identity=identity) == created
    assert (await client.read(None, "new"))["identity"] == identity
    updated = await client.update("test.queue", "new", attributes={"durable": False})
    assert updated["durable"] is False
    by_identity = await client.update("test.queue", identity=identity, max_messages=20)
    assert by_identity["max_messages"] == 20
    await client.delete("test.queue", identity=identity)
    assert identity not in node.provider.entities["test.queue"]
    with pytest.raises(EntityNotFound) as caught:
        await client.read("test.queue", "new")
    assert caught.value.status == 404
    assert caught.value.description == "no entity with name='new' in test.queue"
    with pytest.raises(ValueError, match="READ needs a name or an identity"):
        await client.read("test.queue")


async def test_create_takes_a_map_and_keywords(node: Node) -> None:
    created = await node.client.create(
        "test.queue", "both", {"max_messages": 5}, durable=False, routing="multicast"
    )
    assert (created["max_messages"], created["durable"], created["routing"]) == (
        5,
        False,
        "multicast",
    )


async def test_failures_raise_the_exception_for_their_status(node: Node) -> None:
    client = node.client
    with pytest.raises(Conflict, match=r"409 Conflict: test\.queue 'orders' exists"):
        await client.create("test.queue", "orders")
    with pytest.raises(BadRequest) as bad:
        await client.create("test.queue", "x", max_messages="lots")
    assert bad.value.status == 400
    assert bad.value.description == "attribute 'max_messages' expects an integer, not str 'lots'"
    with pytest.raises(OperationNotImplemented) as unsupported:
        await client.create("test.connection", "c2")
    assert unsupported.value.status == 501
    with pytest.raises(ManagementError) as unknown:
        await client.invoke("test.queue", "FROBNICATE", "orders")
    assert type(unknown.value) is OperationNotImplemented


async def test_a_node_that_refuses_raises_forbidden(node: Node) -> None:
    async def refuse(request: petrel.Message) -> petrel.Message | None:
        return await node.agent.handle(request, allowed=False)

    address = f"refusing-{next(_addresses)}"
    async with await node.server.serve(address, refuse):
        client = ManagementClient(node.client.connection, address=address)
        with pytest.raises(Forbidden) as caught:
            await client.query()
    assert caught.value.status == 403
    assert caught.value.description == f"not allowed to perform QUERY on {node.agent.node}"


async def test_query_pages_and_query_all(node: Node) -> None:
    for n in range(30):
        node.provider.add("test.connection", f"conn-{n:02}")
    client = node.client
    page = await client.query("test.connection", ["name", "host"], offset=5, count=10)
    assert isinstance(page, QueryResult)
    assert page.attribute_names == ["name", "host"]
    assert len(page) == 10
    assert [row[0] for row in page] == [f"conn-{n:02}" for n in range(4, 14)]
    assert page.as_dicts()[0] == {"name": "conn-04", "host": None}
    node.provider.calls.clear()
    everything = await client.query_all("test.connection", ["name"], page_size=7)
    assert [row[0] for row in everything] == ["c1"] + [f"conn-{n:02}" for n in range(30)]
    # 31 rows: four full pages and a short one that ends the walk (no empty fifth request).
    assert node.provider.calls.count("query test.connection") == 5
    every_type = await client.query()
    assert [(d["type"], d["name"]) for d in every_type.as_dicts()][:2] == [
        ("test.connection", "c1"),
        ("test.connection", "conn-00"),
    ]
    assert every_type.as_dicts()[-1]["depth"] == 3


async def test_node_operations(node: Node) -> None:
    client = node.client
    assert await client.get_types() == {"test.connection": [], "test.queue": [], "test.user": []}
    assert (await client.get_attributes("test.connection")) == {
        "test.connection": ["name", "identity", "type", "container_id", "host"]
    }
    operations = await client.get_operations("test.queue")
    assert operations["test.queue"]["MOVE"] == ["to", "limit"]
    assert list(operations["test.queue"])[:4] == ["CREATE", "READ", "UPDATE", "DELETE"]
    assert await client.get_mgmt_nodes() == []


async def test_invoke(node: Node) -> None:
    client = node.client
    node.provider.add("test.queue", "spare", depth=0)
    assert await client.invoke("test.queue", "MOVE", "orders", arguments={"to": "spare"}) == {
        "moved": 3
    }
    assert await client.invoke("test.queue", "PURGE", "spare", body="cleanup") == {
        "purged": 3,
        "note": "cleanup",
    }
    assert await client.invoke("test.queue", "RESET-ALL") == {"reset": 2}


async def test_the_blocking_client(node: Node, url: str) -> None:
    def work() -> None:
        with petrel.blocking.connect(url) as conn:
            client = BlockingManagementClient(conn, address=node.address)
            created = client.create("test.queue", "sync", max_messages=3)
            assert client.read("test.queue", "sync") == created
            assert client.update("test.queue", "sync", durable=False)["durable"] is False
            assert [row[0] for row in client.query_all("test.queue", ["name"], page_size=1)] == [
                "orders",
                "sync",
            ]
            assert client.query("test.queue", ["name"], count=1).results == [["orders"]]
            assert client.invoke("test.queue", "PURGE", "orders") == {"purged": 3, "note": None}
            assert "test.user" in client.get_types()
            assert client.get_attributes("test.user")["test.user"][-1] == "admin"
            assert client.get_operations("test.user") == {
                "test.user": {"CREATE": [], "READ": [], "DELETE": []}
            }
            assert client.get_mgmt_nodes() == []
            reply = client.call(ManagementRequest("GET-TYPES", "org.amqp.management", "self"))
            assert reply.status == 200
            client.delete("test.queue", "sync")
            with pytest.raises(EntityNotFound):
                client.read("test.queue", "sync")

    await asyncio.to_thread(work)


async def test_a_proton_client_gets_answers(node: Node, url: str) -> None:
    proton = pytest.importorskip("proton")

    def work() -> list[Any]:
        conn = proton_utils.BlockingConnection(url)
        try:
            client = proton_utils.SyncRequestResponse(conn, node.address)
            query = client.call(
                proton.Message(
                    properties={
                        "operation": "QUERY",
                        "type": "org.amqp.management",
                        "name": "self",
                        "entityType": "test.queue",
                    },
                    body={"attributeNames": ["name", "depth"]},
                )
            )
            create = client.call(
                proton.Message(
                    properties={"operation": "CREATE", "type": "test.queue", "name": "p"},
                    body={"max_messages": "7"},
                )
            )
            return [query, create]
        finally:
            conn.close()

    query, create = await asyncio.to_thread(work)
    assert query.properties["statusCode"] == 200
    assert query.body == {"attributeNames": ["name", "depth"], "results": [["orders", 3]]}
    assert create.properties["statusCode"] == 201
    assert create.body["max_messages"] == 7


async def test_the_default_address_and_the_timeout(url: str) -> None:
    provider = MemoryProvider()
    agent = ManagementAgent(TYPES, provider)
    async with await petrel.connect(url) as server, await petrel.connect(url) as conn:
        async with await server.serve("$management", agent.handle):
            assert await ManagementClient(conn).get_mgmt_nodes() == []
        silent = ManagementClient(conn, address=f"nobody-{next(_addresses)}", timeout=0.3)
        with pytest.raises(petrel.Timeout):
            await silent.get_types()


async def test_the_requests_on_the_wire_and_replies_the_agent_would_not_send(node: Node) -> None:
    """What the client sends, and how it copes with other servers' replies (or broken ones)."""
    seen: list[dict[str, Any]] = []
    greedy = False

    def fake(request: petrel.Message) -> petrel.Message:
        properties = dict(request.application_properties or {})
        seen.append({**properties, "body": request.body})
        operation = properties["operation"]
        body: Any
        if operation == "GET-OPERATIONS":  # Qpid Dispatch's shape: type -> operation names
            body = {"t": ["READ", "PURGE"]}
        elif operation == "QUERY" and properties["offset"] == 0:
            body = {"attributeNames": ["name", "x"], "results": [["a", 1], ["b", 2]]}
        elif operation == "QUERY":  # the types changed between pages: other columns
            rows = [[3, "c"], [4, "d"], [5, "e"], [6, "f"]] if greedy else [[3, "c"]]
            body = {"attributeNames": ["x", "name"], "results": rows}
        elif operation == "GET-TYPES":
            return petrel.Message({"t": []})  # no statusCode at all
        else:
            body = {"attributeNames": "name"}
        return petrel.Message(body, application_properties={"statusCode": 200})

    address = f"fake-{next(_addresses)}"
    async with await node.server.serve(address, fake):
        client = ManagementClient(node.client.connection, address=address, locales="de, en")
        assert await client.get_operations("t") == {"t": {"READ": [], "PURGE": []}}
        assert seen[-1] == {
            "operation": "GET-OPERATIONS",
            "type": "org.amqp.management",
            "name": "self",
            "entityType": "t",
            "locales": "de, en",
            "body": None,
        }
        everything = await client.query_all("q", ["name", "x"], page_size=2)
        assert everything.attribute_names == ["name", "x"]
        assert everything.results == [["a", 1], ["b", 2], ["c", 3]]
        assert seen[-1] == {
            "operation": "QUERY",
            "type": "org.amqp.management",
            "name": "self",
            "entityType": "q",
            "offset": 1,  # one row back: the page before may have shifted
            "count": 3,
            "locales": "de, en",
            # type and identity tell entities apart across pages; they are not returned
            "body": {"attributeNames": ["name", "x", "type", "identity"]},
        }
        # A server that ignores count and sends everything at once is taken at its word...
        assert (await client.query_all(page_size=1)).results == [["a", 1], ["b", 2]]
        # ... but not one that does so after the first page.
        greedy = True
        with pytest.raises(ManagementError, match="ignores the count of QUERY"):
            await client.query_all(page_size=2)
        with pytest.raises(ManagementError) as no_status:
            await client.get_types()
        assert no_status.value.status == 502
        with pytest.raises(ManagementError, match="malformed GET-ATTRIBUTES reply") as malformed:
            await client.get_attributes()
        assert malformed.value.status == 502
        await client.create("t", "n", {"a": 1}, b=2)
        assert seen[-1] == {
            "operation": "CREATE",
            "type": "t",
            "name": "n",
            "locales": "de, en",
            "body": {"a": 1, "b": 2},
        }
        await client.invoke("t", "PURGE", identity="t-1", arguments={"limit": 5}, body=[1])
        assert seen[-1] == {
            "operation": "PURGE",
            "type": "t",
            "identity": "t-1",
            "limit": 5,
            "locales": "de, en",
            "body": [1],
        }


class ChangingQueues(ManagementClient):
    """A client whose QUERY sees queues come and go between pages (no server: the paging
    logic of query_all alone)."""

    def __init__(self, names: list[str]) -> None:
        self.names = sorted(names)
        self.pages = 0

    async def query(
        self, entity_type: str | None, names: Sequence[str], *, offset: int, count: int
    ) -> QueryResult:
        assert list(names) == []
        self.pages += 1
        if self.pages == 2:  # after the first page: three seen ones go, two come in early
            for gone in ("q.001", "q.002", "q.003"):
                self.names.remove(gone)
            self.names = sorted([*self.names, "a.new", "b.new"])
        rows = [["petrel.queue", n, f"id/{n}"] for n in self.names[offset : offset + count]]
        return QueryResult(["type", "name", "identity"], rows)


async def test_query_all_takes_each_entity_once_while_entities_come_and_go() -> None:
    names = [f"q.{i:03d}" for i in range(100)]
    changing = ChangingQueues(names)
    found = await changing.query_all("petrel.queue", page_size=40)
    assert [row["name"] for row in found.as_dicts()] == names and not found.more
    assert changing.pages == 3  # 40 rows, then 56 from 16 back, then the short last page
    limited = await ChangingQueues(names).query_all("petrel.queue", page_size=40, limit=50)
    assert [row["name"] for row in limited.as_dicts()] == names[:50] and limited.more


class Stuck(ManagementClient):
    """A server that answers every QUERY page with the first one."""

    def __init__(self) -> None:
        pass

    async def query(
        self, entity_type: str | None, names: Sequence[str], *, offset: int, count: int
    ) -> QueryResult:
        rows = [["petrel.queue", f"q{i}", f"id/{i}"] for i in range(count)]
        return QueryResult(["type", "name", "identity"], rows)


async def test_query_all_stops_on_a_server_that_ignores_the_offset() -> None:
    with pytest.raises(ManagementError, match="ignores the offset") as caught:
        await Stuck().query_all("petrel.queue", page_size=10)
    assert caught.value.status == 502
