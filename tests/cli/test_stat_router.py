"""``petrel stat`` and ``petrel manage`` against a real network of two routers, A and B
(A dials B with cost 3), as people use them: the tools run as subprocesses, against
A directly and against B through A (``--router B``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import petrel
from tests.helpers.routers import RouterNetwork, router_network, wait_until

PETREL = str(Path(sys.executable).with_name("petrel"))


@pytest.fixture(scope="module")
def net() -> Iterator[RouterNetwork]:
    with router_network({"A-B": 3}) as network:
        yield network


def petrel_all(
    *commands: tuple[str, ...], columns: int = 80
) -> list[subprocess.CompletedProcess[str]]:
    """Run the commands side by side; their results in order."""
    env = dict(os.environ, COLUMNS=str(columns))
    procs = [
        subprocess.Popen(
            [PETREL, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for command in commands
    ]
    results = []
    for command, proc in zip(commands, procs, strict=True):
        out, err = proc.communicate(timeout=60)
        results.append(subprocess.CompletedProcess([PETREL, *command], proc.returncode, out, err))
    return results


def output(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in rows}


def test_nodes_of_both_routers(net: RouterNetwork) -> None:
    url = ("--url", net["A"].url)
    from_a, from_b, table = petrel_all(
        ("stat", "-n", "--json", *url),
        ("stat", "-n", "--json", "--router", "B", *url),
        ("stat", "-n", *url),
    )
    a_sees = by_id(output(from_a))
    assert set(a_sees) == {"A", "B"}
    assert a_sees["B"]["type"] == "petrel.router.node"
    assert (a_sees["B"]["next_hop"], a_sees["B"]["cost"], a_sees["B"]["reachable"]) == (
        "B",
        3,
        True,
    )
    assert "A" in a_sees["B"]["neighbours"]
    b_sees = by_id(output(from_b))
    assert (b_sees["A"]["next_hop"], b_sees["A"]["cost"]) == ("A", 3)

    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].strip() == "Routers"
    assert all(len(line) <= 80 for line in lines)
    assert "next hop" in table.stdout and "reachable" in table.stdout
    b_row = next(line.split() for line in lines if line.split()[:1] == ["B"])
    assert b_row[1:3] == ["B", "3"] and b_row[-1] == "yes"


def test_general_of_a_router_and_of_a_remote_one(net: RouterNetwork) -> None:
    url = ("--url", net["A"].url)
    a_json, b_json, table = petrel_all(
        ("stat", "-g", "--json", *url),
        ("stat", "--json", "--router", "B", *url),
        ("stat", *url),
    )
    a, b = output(a_json), output(b_json)
    assert (a["type"], a["id"], a["mode"]) == ("petrel.router", "A", "interior")
    assert (b["type"], b["id"]) == ("petrel.router", "B")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].strip() == "Router"


def test_addresses_of_a_router(net: RouterNetwork) -> None:
    with petrel.blocking.connect(net["A"].url, reconnect=False) as conn:
        receiver = conn.open_receiver("stat.orders")
        try:

            def listed() -> dict[str, Any] | None:
                rows = output(petrel_all(("stat", "-a", "--json", "--url", net["A"].url))[0])
                return next((row for row in rows if row["address"] == "stat.orders"), None)

            row = wait_until(listed, what="stat.orders in A's address table")
            assert row["type"] == "petrel.router.address"
            assert row["local_receivers"] == 1
            assert row["distribution"] in ("closest", "balanced", "multicast")
            [table] = petrel_all(("stat", "-a", "--url", net["A"].url))
            assert table.returncode == 0, table.stderr
            assert "distrib" in table.stdout and "stat.orders" in table.stdout
        finally:
            receiver.close()


def test_manage_through_the_network(net: RouterNetwork) -> None:
    url = ("--url", net["A"].url)
    types, nodes, missing = petrel_all(
        ("manage", "get-types", "--router", "B", *url),
        ("manage", "query", "-t", "petrel.router.node", "--router", "B", *url),
        ("manage", "get-types", "--router", "Nowhere", "--timeout", "3", *url),
    )
    assert "petrel.router" in output(types)
    assert {row["id"] for row in output(nodes)} == {"A", "B"}
    assert missing.returncode == 1
    assert missing.stdout == ""
    assert len(missing.stderr.strip().splitlines()) == 1


def test_a_broker_section_on_a_router(net: RouterNetwork) -> None:
    [queues] = petrel_all(("stat", "-q", "--url", net["A"].url))
    assert queues.returncode == 1
    assert queues.stderr.strip() == "petrel stat: the peer is a router: it has no -q section"
