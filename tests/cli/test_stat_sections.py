"""``petrel stat`` and ``petrel manage`` facing a router, without one: the section chosen for
what the peer is, the router tables, and ``--router``.

The peer is a stand-in connection whose ``request`` is answered by a real
:class:`~petrel.management.ManagementAgent` serving the router's entity types
with fixed entities (or the broker's general type), so the tools' requests,
the client's paging and the replies are the real ones; only the sockets are
missing.  Against running routers: ``test_stat_router.py``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import click
import pytest
from click.testing import CliRunner

import petrel
from petrel.cli import _connect, manage, stat
from petrel.management import Attribute, EntityNotFound, EntityType, ManagementAgent
from petrel.management.protocol import NODE_ADDRESS

#: ``last_topology_change`` values below are seconds before the QUERY (the provider
#: makes them instants then).
AGO = "last_topology_change"


def _type(name: str, *attributes: str) -> EntityType:
    return EntityType(name, f"{name} for the test", [Attribute(a, "string", a) for a in attributes])


ROUTER_TYPES = [
    _type(
        "petrel.router",
        "id",
        "mode",
        "connections",
        "links",
        "nodes",
        "addresses",
        "deliveries_released",
        "deliveries_modified",
        "deliveries_stuck",
        "deliveries_delayed_1s",
        "deliveries_delayed_10s",
        "links_blocked",
    ),
    _type(
        "petrel.router.node",
        "id",
        "next_hop",
        "cost",
        "neighbours",
        "valid_origins",
        "last_topology_change",
        "reachable",
    ),
    _type(
        "petrel.router.address",
        "address",
        "distribution",
        "local_receivers",
        "local_senders",
        "remote_routers",
        "delivered_in",
        "delivered_out",
    ),
    _type("petrel.connection", "container"),
]
BROKER_TYPES = [_type("petrel.broker", "version"), _type("petrel.queue", "depth")]

ENTITIES: dict[str, list[dict[str, Any]]] = {
    "petrel.router": [
        {
            "name": "A",
            "identity": "A",
            "id": "A",
            "mode": "interior",
            "connections": 3,
            "links": 9,
            "nodes": 2,
            "addresses": 4,
            "deliveries_released": 1,
            "deliveries_modified": 0,
            "deliveries_stuck": 0,
            "deliveries_delayed_1s": 2,
            "deliveries_delayed_10s": 0,
            "links_blocked": 0,
        }
    ],
    "petrel.router.node": [
        {
            "name": "B",
            "identity": "router.node/B",
            "id": "B",
            "next_hop": None,
            "cost": 5,
            "neighbours": ["A", "C"],
            "valid_origins": ["C"],
            "last_topology_change": -125,
            "reachable": True,
        },
        {
            "name": "C",
            "identity": "router.node/C",
            "id": "C",
            "next_hop": "B",
            "cost": 12,
            "neighbours": ["B"],
            "valid_origins": [],
            "last_topology_change": -7,
            "reachable": True,
        },
    ],
    "petrel.router.address": [
        {
            "name": "orders",
            "identity": "orders",
            "address": "orders",
            "distribution": "balanced",
            "local_receivers": 1,
            "local_senders": 0,
            "remote_routers": 2,
            "delivered_in": 40,
            "delivered_out": 39,
        }
    ],
    "petrel.connection": [{"name": "c1", "identity": "c1", "container": "app"}],
    "petrel.broker": [{"name": "petrel", "identity": "petrel", "version": "1"}],
    "petrel.queue": [],
}


class FixedEntities:
    """A provider with nothing but QUERY."""

    async def query(self, entity_type: str) -> Iterable[dict[str, Any]]:
        now = time.time()
        return [
            {**entity, AGO: now + entity[AGO]} if AGO in entity else entity
            for entity in ENTITIES[entity_type]
        ]

    async def read(self, entity_type: str, **key: Any) -> None:
        return None

    async def create(self, *args: Any) -> Any:
        raise EntityNotFound("read-only")

    update = create
    delete = create
    invoke = create


@dataclass
class StandIn:
    """A connection whose requests a real agent answers; it remembers where they went."""

    agent: ManagementAgent
    addresses: list[str] = field(default_factory=list)
    operations: list[str] = field(default_factory=list)

    async def request(
        self, address: str, message: petrel.Message, timeout: float | None = None
    ) -> petrel.Message:
        self.addresses.append(address)
        properties = message.application_properties or {}
        self.operations.append(str(properties.get("operation")))
        return (await self.agent.execute(message)).to_message(message)


def stand_in(kind: str) -> StandIn:
    types = ROUTER_TYPES if kind == "router" else BROKER_TYPES
    return StandIn(ManagementAgent(types, FixedEntities()))


@pytest.fixture
def peer(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``run_management`` of both tools answered by a stand-in (``peer["node"]``, a router
    unless a test sets it); ``peer["peers"]`` collects the :class:`Peer` each run got."""
    state: dict[str, Any] = {"node": stand_in("router"), "peers": []}

    def run(tool: str, peer: _connect.Peer, timeout: float, work: Any) -> Any:
        state["peers"].append(peer)
        client = petrel.management.ManagementClient(
            state["node"], address=peer.management_node, timeout=timeout
        )
        return asyncio.run(work(client))

    monkeypatch.setattr(stat, "run_management", run)
    monkeypatch.setattr(manage, "run_management", run)
    return state


def invoke(command: click.Command, *args: str, columns: int = 100) -> Any:
    return CliRunner().invoke(command, list(args), env={"COLUMNS": str(columns)})


# --- choosing the section -----------------------------------------------------------------


def test_what_the_peer_is_comes_from_its_types() -> None:
    assert stat.peer_kind({"petrel.router": [], "petrel.connection": []}) == "router"
    assert stat.peer_kind({"petrel.broker": [], "petrel.queue": []}) == "broker"
    assert stat.peer_kind({}) == "broker"


def test_sections_of_each_kind() -> None:
    def entity_type(name: str, kind: stat.Kind) -> str | None:
        section = stat.section_for(name, kind)
        return None if section is None else section.entity_type

    assert set(stat.SAME_FOR_ALL) == {"connections", "links"}
    assert entity_type("general", "router") == "petrel.router"
    assert entity_type("general", "broker") == "petrel.broker"
    assert entity_type("addresses", "router") == "petrel.router.address"
    assert entity_type("addresses", "broker") == "petrel.address"
    assert entity_type("nodes", "router") == "petrel.router.node"
    assert entity_type("nodes", "broker") is None
    assert entity_type("queues", "router") is None
    assert set(stat.FLAGS) == set(stat.SECTIONS["broker"]) | set(stat.SECTIONS["router"])


def test_only_sections_that_differ_ask_what_the_peer_is() -> None:
    node = stand_in("router")
    client = petrel.management.ManagementClient(node)
    kind, section, rows = asyncio.run(stat.read_section(client, "connections", None))
    assert (kind, section, node.operations) == (
        None,
        stat.SECTIONS["router"]["connections"],
        ["QUERY"],
    )
    assert [row["container"] for row in rows.rows] == ["app"]

    node.operations.clear()
    kind, section, rows = asyncio.run(stat.read_section(client, "addresses", None))
    assert (kind, node.operations) == ("router", ["GET-TYPES", "QUERY"])
    assert section is not None and section.entity_type == "petrel.router.address"
    assert [row["address"] for row in rows.rows] == ["orders"]

    broker = stand_in("broker")
    client = petrel.management.ManagementClient(broker)
    kind, section, rows = asyncio.run(stat.read_section(client, "nodes", None))
    assert (kind, section, rows.rows, broker.operations) == ("broker", None, [], ["GET-TYPES"])


# --- the router's tables ------------------------------------------------------------------


def test_list_and_age_cells() -> None:
    assert stat.show(["A", "C"], "list") == "A, C"
    assert stat.show([], "list") == ""
    assert stat.show(None, "list") == ""
    assert stat.show(["A"]) == '["A"]'  # a list in a text column stays JSON
    assert stat.show(1000.0, "age", now=1125.0) == "2m05s"


def test_nodes_table(peer: dict[str, Any]) -> None:
    result = invoke(stat.stat, "-n")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].strip() == "Routers"
    for header in ("router id", "next hop", "cost", "neighbours", "valid origins", "last change"):
        assert header in lines[1], header
    assert "reachable" in result.output
    b_row = next(line for line in lines if line.split()[:1] == ["B"])
    assert "A, C" in b_row and re.search(r"\b2m0[5-7]s\b", b_row) and "yes" in b_row
    c_row = next(line for line in lines if line.split()[:1] == ["C"])
    assert c_row.split()[1:3] == ["B", "12"] and re.search(r"\b[789]s\b", c_row)


def test_addresses_of_a_router(peer: dict[str, Any]) -> None:
    table = invoke(stat.stat, "-a")
    assert table.exit_code == 0, table.output
    header = table.output.splitlines()[1].split()
    assert header == ["address", "distrib", "local", "senders", "remote", "in", "out"]
    assert table.output.splitlines()[3].split() == ["orders", "balanced", "1", "0", "2", "40", "39"]
    as_json = invoke(stat.stat, "-a", "--json")
    [row] = json.loads(as_json.output)
    assert row["type"] == "petrel.router.address" and row["delivered_out"] == 39


def test_general_of_a_router(peer: dict[str, Any]) -> None:
    result = invoke(stat.stat)
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.output.splitlines()]
    assert lines[0] == ["Router"]
    assert ["mode", "interior"] in lines
    assert ["deliveries", "delayed", "1s", "2"] in lines
    assert ["links", "blocked", "0"] in lines
    as_json = json.loads(invoke(stat.stat, "-g", "--json").output)
    assert (as_json["type"], as_json["id"]) == ("petrel.router", "A")


def test_a_section_the_peer_does_not_have(peer: dict[str, Any]) -> None:
    on_router = invoke(stat.stat, "-q")
    assert on_router.exit_code == 1
    assert on_router.output.strip() == "petrel stat: the peer is a router: it has no -q section"
    peer["node"] = stand_in("broker")
    on_broker = invoke(stat.stat, "-n")
    assert on_broker.exit_code == 1
    assert on_broker.output.strip() == "petrel stat: the peer is a broker: it has no -n section"
    general = invoke(stat.stat, "-g", "--json")
    assert json.loads(general.output)["type"] == "petrel.broker"


def test_one_section_at_a_time() -> None:
    result = invoke(stat.stat, "-n", "-q")
    assert result.exit_code == 2
    assert "choose one of -g, -c, -l, -a and -q (or -n, a router's nodes)" in result.output


# --- --router -----------------------------------------------------------------------------


def test_router_option_names_the_remote_management_node(peer: dict[str, Any]) -> None:
    assert _connect.router_management_address("B") == "_topo/0/B/$management"
    assert invoke(stat.stat, "-n", "--router", "B").exit_code == 0
    assert invoke(stat.stat, "-n").exit_code == 0
    assert invoke(manage.manage, "get-types", "--router", "C").exit_code == 0
    assert invoke(manage.manage, "query", "-t", "petrel.router.node").exit_code == 0
    nodes = [p.management_node for p in peer["peers"]]
    assert nodes == ["_topo/0/B/$management", NODE_ADDRESS, "_topo/0/C/$management", NODE_ADDRESS]
    # Every request of a run goes there (GET-TYPES and QUERY alike).
    assert peer["node"].addresses[:2] == ["_topo/0/B/$management"] * 2


@pytest.mark.parametrize("bad", ["", "a/b"])
def test_a_bad_router_id_is_a_usage_error(bad: str) -> None:
    result = invoke(stat.stat, "--router", bad)
    assert result.exit_code == 2
    assert "Invalid value for '--router'" in result.output


def test_run_management_talks_to_the_peers_node(monkeypatch: pytest.MonkeyPatch) -> None:
    node = stand_in("router")

    class Connected:
        async def __aenter__(self) -> StandIn:
            return node

        async def __aexit__(self, *exc: object) -> None:
            return None

    async def connect(self: _connect.Peer, timeout: float) -> Connected:
        return Connected()

    monkeypatch.setattr(_connect.Peer, "connect", connect)
    peer = _connect.Peer("amqp://127.0.0.1:1", petrel.ConnectOptions(), "_topo/0/B/$management")

    async def work(client: petrel.management.ManagementClient) -> str:
        await client.get_types()
        return client.address

    assert _connect.run_management("stat", peer, 1.0, work) == "_topo/0/B/$management"
    assert node.addresses == ["_topo/0/B/$management"]
