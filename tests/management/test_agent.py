"""ManagementAgent: every operation and status code, driven by requests that Proton encoded.

Requests are built with ``proton.Message`` and decoded with
``petrel.Message.decode``, and replies are decoded by Proton again: what a
non-Petrel client (qdmanage, Proton's SyncRequestResponse) sends is
understood, and what the agent answers can be read by it.

The provider is a small real one, entities kept in dicts (``MemoryProvider``
below; ``test_client.py`` uses it too), with three types: ``test.queue``
(from a pydantic model, with a ``depth`` counter and the operations PURGE,
MOVE and RESET-ALL), ``test.connection`` (runtime only: READ and DELETE) and
``test.user`` (a secret password; no UPDATE).  Names starting ``boom`` make
the provider fail with a plain exception, ``odd`` makes it return a value
AMQP cannot carry, and deleting ``locked`` raises Forbidden.
"""

from __future__ import annotations

import datetime
import itertools
import logging
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

import petrel
from petrel.management import (
    Attribute,
    EntityNotFound,
    EntityType,
    Forbidden,
    ManagementAgent,
    ManagementReply,
    Operation,
    OperationResult,
)

proton = pytest.importorskip("proton")

pytestmark = pytest.mark.interop  # Proton encodes the requests and decodes the replies

# --- the provider -------------------------------------------------------------------------


class QueueModel(BaseModel):
    """A queue."""

    name: str = ""
    routing: Literal["anycast", "multicast"] = "anycast"
    max_messages: int | None = Field(default=None, ge=1)
    """At most this many messages."""
    durable: bool = True


class UserModel(BaseModel):
    """A user for SASL PLAIN."""

    name: str
    password: str
    admin: bool = False


QUEUE = EntityType.from_model(
    "test.queue",
    QueueModel,
    read_only=[Attribute("depth", "integer", "Messages in the queue.")],
    create_only=["routing"],
    operations=[
        Operation("PURGE", "Remove every message.", reply="map: purged -> count"),
        Operation(
            "MOVE",
            "Move messages to another queue.",
            arguments=[Attribute("to", "string", required=True), Attribute("limit", "integer")],
        ),
        Operation("RESET-ALL", "Empty every queue.", entity=False),
    ],
)
CONNECTION = EntityType(
    "test.connection",
    "A client connection.",
    [Attribute("container_id", "string"), Attribute("host", "string")],
    allows=["READ", "DELETE"],
)
USER = EntityType.from_model(
    "test.user", UserModel, secret=["password"], allows=["CREATE", "READ", "DELETE"]
)
TYPES = (QUEUE, CONNECTION, USER)


class MemoryProvider:
    """Entities by type and identity; identities are ``<short type>-<n>``."""

    def __init__(self) -> None:
        self.entities: dict[str, dict[str, dict[str, Any]]] = {t.name: {} for t in TYPES}
        self.calls: list[str] = []
        self._ids = itertools.count(1)

    def add(self, entity_type: str, name: str, **attributes: Any) -> dict[str, Any]:
        identity = f"{entity_type.rsplit('.', 1)[-1]}-{next(self._ids)}"
        entity = {"name": name, "identity": identity, **attributes}
        self.entities[entity_type][identity] = entity
        return entity

    async def query(self, entity_type: str) -> Iterable[Mapping[str, Any]]:
        self.calls.append(f"query {entity_type}")
        return list(self.entities[entity_type].values())

    async def read(
        self, entity_type: str, *, name: str | None = None, identity: str | None = None
    ) -> Mapping[str, Any] | None:
        self.calls.append(f"read {entity_type} {name or identity}")
        if name is not None and name.startswith("boom"):
            raise RuntimeError("the disk is on fire")
        entities = self.entities[entity_type]
        if identity is not None:
            return entities.get(identity)
        for entity in entities.values():
            if entity["name"] == name:
                if name == "odd":
                    return {**entity, "created": datetime.datetime.now()}
                return entity
        return None

    async def create(
        self, entity_type: str, name: str, attributes: dict[str, Any]
    ) -> Mapping[str, Any]:
        self.calls.append(f"create {entity_type} {name}")
        kind = next(t for t in TYPES if t.name == entity_type)
        defaults = {a.name: a.default for a in kind.attributes if a.create and a.name != "name"}
        if entity_type == QUEUE.name:
            defaults["depth"] = 0
        return self.add(entity_type, name, **{**defaults, **attributes})

    async def update(
        self, entity_type: str, identity: str, attributes: dict[str, Any]
    ) -> Mapping[str, Any]:
        self.calls.append(f"update {entity_type} {identity}")
        entity = self.entities[entity_type][identity]
        entity.update(attributes)
        return entity

    async def delete(self, entity_type: str, identity: str) -> None:
        self.calls.append(f"delete {entity_type} {identity}")
        if self.entities[entity_type][identity]["name"] == "locked":
            raise Forbidden("locked entities stay")
        del self.entities[entity_type][identity]

    async def invoke(
        self,
        entity_type: str,
        identity: str | None,
        operation: str,
        arguments: dict[str, Any],
        body: Any,
    ) -> OperationResult:
        self.calls.append(f"invoke {entity_type} {operation} {identity}")
        queues = self.entities[entity_type]
        if operation == "RESET-ALL":
            for queue in queues.values():
                queue["depth"] = 0
            return OperationResult(200, {"reset": len(queues)})
        assert identity is not None
        queue = queues[identity]
        if operation == "PURGE":
            purged, queue["depth"] = queue["depth"], 0
            return OperationResult(200, {"purged": purged, "note": body})
        assert operation == "MOVE"
        target = next((q for q in queues.values() if q["name"] == arguments["to"]), None)
        if target is None:
            raise EntityNotFound(f"no queue {arguments['to']!r} to move to")
        moved = min(queue["depth"], arguments.get("limit", queue["depth"]))
        queue["depth"] -= moved
        target["depth"] += moved
        return OperationResult(202, {"moved": moved})


# --- driving the agent --------------------------------------------------------------------

_NO_BODY = object()


def request(
    operation: str | None,
    body: Any = _NO_BODY,
    *,
    reply_to: str | None = "reply-queue",
    message_id: Any = "m-1",
    correlation_id: Any = None,
    **properties: Any,
) -> petrel.Message:
    """A request as Proton encodes it, decoded by Petrel."""
    if operation is not None:
        properties["operation"] = operation
    message = proton.Message(
        properties={k: v for k, v in properties.items() if v is not None},
        reply_to=reply_to,
        id=message_id,
        correlation_id=correlation_id,
    )
    if body is not _NO_BODY:
        message.body = body
    return petrel.Message.decode(message.encode())


def as_proton(reply: petrel.Message) -> Any:
    """The reply as a Proton client reads it."""
    message = proton.Message()
    message.decode(reply.encode())
    return message


@pytest.fixture
def provider() -> MemoryProvider:
    provider = MemoryProvider()
    provider.add(
        "test.queue", "orders", routing="anycast", max_messages=None, durable=True, depth=3
    )
    provider.add("test.queue", "audit", routing="multicast", max_messages=5, durable=False, depth=0)
    provider.add("test.connection", "c1", container_id="app-1", host="10.0.0.1")
    provider.add("test.user", "ann", password="secret", admin=True)
    return provider


@pytest.fixture
def agent(provider: MemoryProvider) -> ManagementAgent:
    return ManagementAgent(TYPES, provider)


async def call(
    agent: ManagementAgent, operation: str | None, body: Any = _NO_BODY, **kw: Any
) -> Any:
    """Send one request through the agent; the reply as Proton decodes it."""
    reply = await agent.handle(request(operation, body, **kw))
    assert reply is not None
    return as_proton(reply)


def status(reply: Any) -> int:
    code = reply.properties["statusCode"]
    assert isinstance(code, int)
    return int(code)


def description(reply: Any) -> str:
    return str(reply.properties["statusDescription"])


# --- replies: addressing and correlation ----------------------------------------------------


async def test_the_reply_goes_to_reply_to_with_the_status_properties(
    agent: ManagementAgent,
) -> None:
    reply = await call(agent, "READ", type="test.queue", name="orders", reply_to="here")
    assert reply.address == "here"
    assert status(reply) == 200
    assert type(reply.properties["statusCode"]) is proton.int32  # an AMQP int, as the draft says
    assert description(reply) == "OK"


async def test_correlation_id_is_the_request_correlation_id_else_its_message_id(
    agent: ManagementAgent,
) -> None:
    both = await call(agent, "GET-MGMT-NODES", message_id="mid", correlation_id=41)
    assert both.correlation_id == 41
    only_message_id = await call(agent, "GET-MGMT-NODES", message_id="mid")
    assert only_message_id.correlation_id == "mid"
    neither = await call(agent, "GET-MGMT-NODES", message_id=None)
    assert neither.correlation_id is None


async def test_a_request_without_reply_to_is_not_performed(
    agent: ManagementAgent, provider: MemoryProvider
) -> None:
    message = request("CREATE", {}, type="test.queue", name="ghost", reply_to=None)
    assert await agent.handle(message) is None
    assert provider.calls == []
    # execute() performs it anyway, for servers that answer some other way.
    reply = await agent.execute(message)
    assert isinstance(reply, ManagementReply)
    assert reply.status == 201


async def test_locales_are_accepted_whatever_they_say(agent: ManagementAgent) -> None:
    reply = await call(agent, "GET-TYPES", locales="tlh, x-klingon")
    assert status(reply) == 200


# --- CREATE ---------------------------------------------------------------------------------


async def test_create(agent: ManagementAgent, provider: MemoryProvider) -> None:
    reply = await call(agent, "CREATE", {"max_messages": "10"}, type="test.queue", name="new")
    assert status(reply) == 201
    assert description(reply) == "Created"
    created = reply.body
    assert created == {
        "name": "new",
        "identity": created["identity"],
        "type": "test.queue",
        "routing": "anycast",
        "max_messages": 10,  # converted from the string, as the draft asks
        "durable": True,
        "depth": 0,
    }
    assert provider.entities["test.queue"][created["identity"]]["max_messages"] == 10


async def test_create_takes_name_and_type_from_the_body_too(agent: ManagementAgent) -> None:
    reply = await call(agent, "CREATE", {"type": "test.queue", "name": "from-body"})
    assert status(reply) == 201
    assert reply.body["name"] == "from-body"
    clash = await call(agent, "CREATE", {"name": "b"}, type="test.queue", name="a")
    assert status(clash) == 400
    assert "name 'a' and the body's 'b' differ" in description(clash)


async def test_create_of_a_name_that_exists_is_a_conflict(
    agent: ManagementAgent, provider: MemoryProvider
) -> None:
    reply = await call(agent, "CREATE", {}, type="test.queue", name="orders")
    assert status(reply) == 409
    assert description(reply) == "test.queue 'orders' exists"
    assert not any(call.startswith("create") for call in provider.calls)


@pytest.mark.parametrize(
    ("body", "properties", "expected"),
    [
        ({"colour": "red"}, {}, "unknown attribute 'colour' for test.queue"),
        ({"max_messages": "lots"}, {}, "attribute 'max_messages' expects an integer, not str"),
        ({"max_messages": 0}, {}, "'max_messages': Input should be greater than or equal to 1"),
        ({"depth": 5}, {}, "attribute 'depth' cannot be set by CREATE"),
        ({"identity": "q-9"}, {}, "identity is assigned by the server"),
        ([1, 2], {}, "CREATE takes a map of attributes as its body, not list"),
        ("max_messages=5", {}, "CREATE takes a map of attributes as its body, not str"),
        ({}, {"name": None}, "CREATE needs a name"),
        ({}, {"type": None}, "CREATE needs a type"),
    ],
)
async def test_create_bad_requests(
    agent: ManagementAgent, body: Any, properties: dict[str, Any], expected: str
) -> None:
    given = {"type": "test.queue", "name": "new", **properties}
    reply = await call(agent, "CREATE", body, **given)
    assert status(reply) == 400
    assert expected in description(reply)


async def test_create_requires_the_required_attributes(agent: ManagementAgent) -> None:
    reply = await call(agent, "CREATE", {"admin": True}, type="test.user", name="bob")
    assert status(reply) == 400
    assert description(reply) == "missing required attribute 'password'"
    created = await call(agent, "CREATE", {"password": "pw"}, type="test.user", name="bob")
    assert status(created) == 201
    assert "password" not in created.body  # secret: written, never read back


async def test_create_of_a_type_that_does_not_allow_it(agent: ManagementAgent) -> None:
    reply = await call(agent, "CREATE", {}, type="test.connection", name="c2")
    assert status(reply) == 501
    assert description(reply) == "test.connection does not support CREATE"


async def test_create_of_an_unknown_type(agent: ManagementAgent) -> None:
    reply = await call(agent, "CREATE", {}, type="test.nothing", name="x")
    assert status(reply) == 404
    assert description(reply) == "unknown entity type 'test.nothing'"


# --- READ -----------------------------------------------------------------------------------


async def test_read_by_name_or_identity(agent: ManagementAgent, provider: MemoryProvider) -> None:
    by_name = await call(agent, "READ", type="test.queue", name="orders")
    assert status(by_name) == 200
    assert by_name.body["depth"] == 3
    assert by_name.body["type"] == "test.queue"
    identity = by_name.body["identity"]
    by_identity = await call(agent, "READ", type="test.queue", identity=identity)
    assert by_identity.body == by_name.body
    both = await call(agent, "READ", type="test.queue", identity=identity, name="orders")
    assert status(both) == 200
    conflicting = await call(agent, "READ", type="test.queue", identity=identity, name="audit")
    assert status(conflicting) == 400
    assert description(conflicting) == f"identity {identity!r} is 'orders', not 'audit'"


async def test_read_leaves_secrets_out(agent: ManagementAgent) -> None:
    reply = await call(agent, "READ", type="test.user", name="ann")
    assert reply.body == {
        "name": "ann",
        "identity": reply.body["identity"],
        "type": "test.user",
        "admin": True,
    }


async def test_read_without_a_type_finds_the_entity_in_any_type(
    agent: ManagementAgent, provider: MemoryProvider
) -> None:
    reply = await call(agent, "READ", name="c1")
    assert status(reply) == 200
    assert reply.body["type"] == "test.connection"
    provider.add("test.user", "orders", password="pw")
    ambiguous = await call(agent, "READ", name="orders")
    assert status(ambiguous) == 400
    assert "names entities of several types (test.queue, test.user): give a type" in description(
        ambiguous
    )


async def test_read_with_a_short_type_name(agent: ManagementAgent) -> None:
    reply = await call(agent, "READ", type="queue", name="orders")
    assert status(reply) == 200
    assert reply.body["type"] == "test.queue"


async def test_read_not_found(agent: ManagementAgent) -> None:
    missing = await call(agent, "READ", type="test.queue", name="nope")
    assert status(missing) == 404
    assert description(missing) == "no entity with name='nope' in test.queue"
    anywhere = await call(agent, "READ", identity="queue-999")
    assert status(anywhere) == 404
    assert description(anywhere) == "no entity with identity='queue-999' in any type"
    unknown_type = await call(agent, "READ", type="test.nothing", name="orders")
    assert status(unknown_type) == 404


async def test_read_needs_a_name_or_identity(agent: ManagementAgent) -> None:
    reply = await call(agent, "READ", type="test.queue")
    assert status(reply) == 400
    assert description(reply) == "READ needs a name or an identity"


async def test_standard_properties_must_be_strings(agent: ManagementAgent) -> None:
    reply = await call(agent, "READ", type="test.queue", name=5)
    assert status(reply) == 400
    assert description(reply) == "the application property 'name' must be a string, not int"


# --- UPDATE ---------------------------------------------------------------------------------


async def test_update(agent: ManagementAgent, provider: MemoryProvider) -> None:
    reply = await call(agent, "UPDATE", {"max_messages": 50}, type="test.queue", name="orders")
    assert status(reply) == 200
    assert reply.body["max_messages"] == 50
    assert reply.body["depth"] == 3
    identity = reply.body["identity"]
    assert provider.entities["test.queue"][identity]["max_messages"] == 50
    # A client may send back what it read: unchanged standard attributes are fine.
    echo = {"name": "orders", "identity": identity, "type": "test.queue", "durable": False}
    again = await call(agent, "UPDATE", echo, type="test.queue", identity=identity)
    assert status(again) == 200
    assert again.body["durable"] is False


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"routing": "multicast"}, "attribute 'routing' cannot be set by UPDATE"),
        ({"depth": 0}, "attribute 'depth' cannot be set by UPDATE"),
        ({"durable": "maybe"}, "attribute 'durable' expects a boolean, not str 'maybe'"),
        ({"name": "renamed"}, "UPDATE cannot change name ('orders' to 'renamed')"),
        ({"colour": 1}, "unknown attribute 'colour' for test.queue"),
        (7, "UPDATE takes a map of attributes as its body, not int"),
    ],
)
async def test_update_bad_requests(agent: ManagementAgent, body: Any, expected: str) -> None:
    reply = await call(agent, "UPDATE", body, type="test.queue", name="orders")
    assert status(reply) == 400
    assert description(reply) == expected


async def test_update_not_found_and_not_supported(agent: ManagementAgent) -> None:
    missing = await call(agent, "UPDATE", {"durable": True}, type="test.queue", name="nope")
    assert status(missing) == 404
    unsupported = await call(agent, "UPDATE", {"admin": False}, type="test.user", name="ann")
    assert status(unsupported) == 501
    assert description(unsupported) == "test.user does not support UPDATE"


# --- DELETE ---------------------------------------------------------------------------------


async def test_delete(agent: ManagementAgent, provider: MemoryProvider) -> None:
    reply = await call(agent, "DELETE", type="test.connection", name="c1")
    assert status(reply) == 204
    assert description(reply) == "No Content"
    assert reply.body == {}  # the draft: a map with no entries
    assert provider.entities["test.connection"] == {}
    again = await call(agent, "DELETE", type="test.connection", name="c1")
    assert status(again) == 404


async def test_a_provider_management_error_is_the_reply(
    agent: ManagementAgent, provider: MemoryProvider
) -> None:
    provider.add("test.connection", "locked")
    reply = await call(agent, "DELETE", type="test.connection", name="locked")
    assert status(reply) == 403
    assert description(reply) == "locked entities stay"


# --- the types' own operations --------------------------------------------------------------


async def test_invoke_an_operation(agent: ManagementAgent, provider: MemoryProvider) -> None:
    reply = await call(agent, "PURGE", "why not", type="test.queue", name="orders")
    assert status(reply) == 200
    assert reply.body == {"purged": 3, "note": "why not"}
    read = await call(agent, "READ", type="test.queue", name="orders")
    assert read.body["depth"] == 0


async def test_operation_arguments_come_from_application_properties(
    agent: ManagementAgent, provider: MemoryProvider
) -> None:
    reply = await call(agent, "MOVE", type="test.queue", name="orders", to="audit", limit="2")
    assert status(reply) == 202  # the provider's status
    assert reply.body == {"moved": 2}
    missing = await call(agent, "MOVE", type="test.queue", name="orders")
    assert status(missing) == 400
    assert description(missing) == "MOVE needs the argument 'to'"
    bad = await call(agent, "MOVE", type="test.queue", name="orders", to="audit", limit="all")
    assert status(bad) == 400
    assert description(bad) == "attribute 'limit' expects an integer, not str 'all'"
    nowhere = await call(agent, "MOVE", type="test.queue", name="orders", to="nope")
    assert status(nowhere) == 404


async def test_a_type_wide_operation_needs_no_entity(
    agent: ManagementAgent, provider: MemoryProvider
) -> None:
    reply = await call(agent, "RESET-ALL", type="test.queue")
    assert status(reply) == 200
    assert reply.body == {"reset": 2}
    assert "invoke test.queue RESET-ALL None" in provider.calls


async def test_operations_are_matched_without_regard_to_case(agent: ManagementAgent) -> None:
    reply = await call(agent, "purge", type="test.queue", name="orders")
    assert status(reply) == 200


async def test_unknown_and_unsupported_operations_are_not_implemented(
    agent: ManagementAgent,
) -> None:
    unknown = await call(agent, "FROBNICATE", type="test.queue", name="orders")
    assert status(unknown) == 501
    assert description(unknown) == "unknown operation 'FROBNICATE'"
    elsewhere = await call(agent, "PURGE", type="test.connection", name="c1")
    assert status(elsewhere) == 501
    assert description(elsewhere) == "test.connection does not support PURGE"
    register = await call(agent, "REGISTER", type="org.amqp.management", name="self")
    assert status(register) == 501


async def test_a_request_without_an_operation(agent: ManagementAgent) -> None:
    reply = await call(agent, None, type="test.queue", name="orders")
    assert status(reply) == 400
    assert description(reply) == "the request has no 'operation' application property"


# --- QUERY ----------------------------------------------------------------------------------


async def test_query_all_types_in_stable_order(agent: ManagementAgent) -> None:
    reply = await call(
        agent, "QUERY", {"attributeNames": []}, type="org.amqp.management", name="self"
    )
    assert status(reply) == 200
    names = reply.body["attributeNames"]
    # The union of every type's attributes, type by type (sorted), secrets left out.
    assert names == [
        "name", "identity", "type", "container_id", "host",
        "routing", "max_messages", "durable", "depth", "admin",
    ]  # fmt: skip
    rows = [dict(zip(names, row, strict=True)) for row in reply.body["results"]]
    assert [(row["type"], row["name"]) for row in rows] == [
        ("test.connection", "c1"),
        ("test.queue", "audit"),
        ("test.queue", "orders"),
        ("test.user", "ann"),
    ]
    assert rows[0]["depth"] is None  # not an attribute of connections: null
    assert rows[2]["depth"] == 3
    assert reply.properties["count"] == 4


async def test_query_one_type_and_some_attributes(agent: ManagementAgent) -> None:
    reply = await call(
        agent,
        "QUERY",
        {"attributeNames": ["depth", "name"]},
        type="org.amqp.management",
        name="self",
        entityType="test.queue",
    )
    assert reply.body == {
        "attributeNames": ["depth", "name"],
        "results": [[0, "audit"], [3, "orders"]],
    }


async def test_query_without_attribute_names_gives_all_of_the_type(agent: ManagementAgent) -> None:
    reply = await call(agent, "QUERY", entityType="test.user")
    assert reply.body["attributeNames"] == ["name", "identity", "type", "admin"]
    explicit = await call(
        agent, "QUERY", {"attributeNames": ["name", "password"]}, entityType="test.user"
    )
    assert explicit.body["results"] == [["ann", None]]  # a secret is never read back


async def test_query_takes_the_entity_type_from_type_when_entity_type_is_absent(
    agent: ManagementAgent,
) -> None:
    reply = await call(agent, "QUERY", {"attributeNames": ["name"]}, type="test.connection")
    assert reply.body["results"] == [["c1"]]


async def test_query_paging(agent: ManagementAgent, provider: MemoryProvider) -> None:
    for n in range(25):
        provider.add("test.connection", f"conn-{n:02}")

    async def page(offset: int | None, count: int | None) -> list[str]:
        body = {"attributeNames": ["name"]}
        reply = await call(
            agent, "QUERY", body, entityType="test.connection", offset=offset, count=count
        )
        assert status(reply) == 200
        assert reply.properties["count"] == len(reply.body["results"])
        return [row[0] for row in reply.body["results"]]

    everything = await page(None, None)
    assert everything == ["c1"] + [f"conn-{n:02}" for n in range(25)]
    assert await page(0, 10) == everything[:10]
    assert await page(10, 10) == everything[10:20]
    assert await page(20, 10) == everything[20:]
    assert await page(5, None) == everything[5:]
    assert await page(26, 10) == []
    assert await page(100, 10) == []
    assert await page(3, 0) == []


async def test_query_count_is_capped(provider: MemoryProvider) -> None:
    for n in range(9):
        provider.add("test.connection", f"conn-{n}")
    agent = ManagementAgent(TYPES, provider, max_count=4)
    capped = await call(agent, "QUERY", {"attributeNames": ["name"]}, entityType="test.connection")
    assert [row[0] for row in capped.body["results"]] == ["c1", "conn-0", "conn-1", "conn-2"]
    assert description(capped) == (
        "OK: the first 4 results from offset 0; at most 4 per request, page with offset and count"
    )
    asked_too_many = await call(agent, "QUERY", entityType="test.connection", offset=8, count=100)
    assert len(asked_too_many.body["results"]) == 2
    assert description(asked_too_many) == "OK"  # nothing was cut off
    within = await call(agent, "QUERY", entityType="test.connection", count=3)
    assert description(within) == "OK"


@pytest.mark.parametrize(
    ("body", "properties", "code", "expected"),
    [
        ({"attributeNames": ["colour"]}, {}, 400, "unknown attribute 'colour' for test.queue"),
        (
            {"attributeNames": ["name", "name"]},
            {},
            400,
            "'attributeNames' names an attribute twice",
        ),
        ({"attributeNames": "name"}, {}, 400, "'attributeNames' must be a list of strings"),
        (["name"], {}, 400, "QUERY takes a map body with 'attributeNames'"),
        ({}, {"offset": -1}, 400, "offset must be a whole number, not -1"),
        ({}, {"count": "ten"}, 400, "count must be a whole number, not 'ten'"),
        ({}, {"entityType": "test.nothing"}, 404, "unknown entity type 'test.nothing'"),
        (
            {},
            {"name": "orders"},
            400,
            "QUERY is a node operation: its name is 'self', not 'orders'",
        ),
    ],
)
async def test_query_bad_requests(
    agent: ManagementAgent, body: Any, properties: dict[str, Any], code: int, expected: str
) -> None:
    given = {"entityType": "test.queue", **properties}
    reply = await call(agent, "QUERY", body, **given)
    assert status(reply) == code
    assert description(reply) == expected


# --- the other node operations --------------------------------------------------------------


async def test_get_types(agent: ManagementAgent) -> None:
    reply = await call(agent, "GET-TYPES", type="org.amqp.management", name="self")
    assert reply.body == {"test.connection": [], "test.queue": [], "test.user": []}
    one = await call(agent, "GET-TYPES", entityType="test.user")
    assert one.body == {"test.user": []}


async def test_get_types_reports_what_a_type_extends_and_query_follows_it(
    provider: MemoryProvider,
) -> None:
    endpoint = EntityType("test.endpoint", extends=["test.base"])
    agent = ManagementAgent([*TYPES, endpoint], provider)
    provider.entities["test.endpoint"] = {}
    provider.add("test.endpoint", "e1")
    reply = await call(agent, "GET-TYPES", entityType="test.base")
    assert reply.body == {"test.endpoint": ["test.base"]}
    rows = await call(agent, "QUERY", {"attributeNames": ["name"]}, entityType="test.base")
    assert rows.body["results"] == [["e1"]]


async def test_get_attributes(agent: ManagementAgent) -> None:
    reply = await call(agent, "GET-ATTRIBUTES", entityType="test.queue")
    assert reply.body == {
        "test.queue": ["name", "identity", "type", "routing", "max_messages", "durable", "depth"]
    }
    every = await call(agent, "GET-ATTRIBUTES")
    assert sorted(every.body) == ["test.connection", "test.queue", "test.user"]
    assert every.body["test.user"] == ["name", "identity", "type", "password", "admin"]


async def test_get_operations(agent: ManagementAgent) -> None:
    reply = await call(agent, "GET-OPERATIONS", type="org.amqp.management", name="self")
    assert reply.body == {
        "test.connection": {"READ": [], "DELETE": []},
        "test.queue": {
            "CREATE": [], "READ": [], "UPDATE": [], "DELETE": [],
            "PURGE": [], "MOVE": ["to", "limit"], "RESET-ALL": [],
        },
        "test.user": {"CREATE": [], "READ": [], "DELETE": []},
    }  # fmt: skip


async def test_get_mgmt_nodes_lists_the_other_nodes(provider: MemoryProvider) -> None:
    alone = await call(ManagementAgent(TYPES, provider), "GET-MGMT-NODES")
    assert status(alone) == 200
    assert alone.body == []
    peers = ManagementAgent(TYPES, provider, mgmt_nodes=lambda: ["_topo/0/r2/$management"])
    assert (await call(peers, "GET-MGMT-NODES")).body == ["_topo/0/r2/$management"]


async def test_get_annotations(agent: ManagementAgent) -> None:
    reply = await call(agent, "GET-ANNOTATIONS", entityType="test.user")
    assert reply.body == {"test.user": []}


# --- permission and failures ----------------------------------------------------------------


async def test_not_allowed_is_forbidden(agent: ManagementAgent, provider: MemoryProvider) -> None:
    message = request("DELETE", type="test.connection", name="c1")
    reply = await agent.handle(message, allowed=False)
    assert reply is not None
    answer = as_proton(reply)
    assert status(answer) == 403
    assert description(answer) == "not allowed to perform DELETE on $management"
    assert provider.calls == []


async def test_a_failing_provider_gets_a_500_reply_and_a_log_line(
    agent: ManagementAgent, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="petrel.management"):
        reply = await call(agent, "READ", type="test.queue", name="boom")
    assert status(reply) == 500
    assert description(reply) == "READ failed: RuntimeError: the disk is on fire"
    [record] = caplog.records
    assert record.exc_info is not None


async def test_a_value_amqp_cannot_carry_is_a_500_not_a_lost_reply(
    agent: ManagementAgent, provider: MemoryProvider, caplog: pytest.LogCaptureFixture
) -> None:
    provider.add("test.queue", "odd", depth=0)
    with caplog.at_level(logging.ERROR, logger="petrel.management"):
        reply = await call(agent, "READ", type="test.queue", name="odd")
    assert status(reply) == 500
    assert "cannot send a datetime value" in description(reply)
    assert caplog.records


async def test_an_entity_without_an_identity_is_a_provider_bug(
    agent: ManagementAgent, provider: MemoryProvider, caplog: pytest.LogCaptureFixture
) -> None:
    entity = provider.add("test.connection", "c2")
    del entity["identity"]
    reply = await call(agent, "READ", type="test.connection", name="c2")
    assert status(reply) == 500
    assert description(reply) == "the provider gave test.connection name='c2' no string identity"


def test_agent_arguments_are_checked(provider: MemoryProvider) -> None:
    with pytest.raises(ValueError, match="given twice"):
        ManagementAgent([QUEUE, QUEUE], provider)
    with pytest.raises(ValueError, match="max_count"):
        ManagementAgent(TYPES, provider, max_count=0)
    assert list(ManagementAgent(reversed(TYPES), provider).types) == [
        "test.connection",
        "test.queue",
        "test.user",
    ]
