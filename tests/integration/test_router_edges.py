"""Edge routers as subprocesses: two interior routers, I1 and I2, and two edges, E1
(uplinks I1 then I2) and E2 (uplink I2).

Proton's clients on one edge reach those on the other through the interior;
when E1's active uplink's router is killed mid-stream, E1's clients go on over
the standby uplink, and every message arrives at least once; ``petrel stat``
shows an edge as one and reaches the interior's management through it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.routers import (
    PETREL,
    EdgeProcess,
    RouterNetwork,
    router_network,
    run_edge,
    wait_until,
)
from tests.helpers.traffic import Traffic

_addresses = itertools.count(1)


def fresh() -> str:
    return f"edges.{next(_addresses)}"


def stat(url: str, *args: str) -> Any:
    """``petrel stat ARGS --json --url URL``, parsed."""
    result = subprocess.run(
        [str(PETREL), "stat", *args, "--json", "--url", url, "--timeout", "5"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def stat_ok(edge: EdgeProcess) -> bool:
    result = subprocess.run(
        [str(PETREL), "stat", "-g", "--json", "--url", edge.url, "--timeout", "2"],
        capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    return result.returncode == 0


@contextlib.contextmanager
def edges(log_dir: Path) -> Iterator[tuple[RouterNetwork, EdgeProcess, EdgeProcess]]:
    """I1-I2 converged, E1 (uplinks I1, I2) and E2 (uplink I2) answering."""
    with (
        router_network({"I1-I2": 1}, log_dir=log_dir) as net,
        run_edge("E1", [net["I1"].port, net["I2"].port], log_dir=log_dir) as e1,
        run_edge("E2", [net["I2"].port], log_dir=log_dir) as e2,
    ):
        for edge in (e1, e2):
            wait_until(lambda e=edge: stat_ok(e), what=f"{edge.id}'s management answers")
        standby = f"edge E1: uplink {net['I2'].url} standing by"
        wait_until(lambda: e1.log_lines(standby), what="E1's standby uplink open")
        yield net, e1, e2


def stream_through(
    sender: EdgeProcess, receiver: EdgeProcess, net: RouterNetwork, total: int
) -> Traffic:
    traffic = Traffic(fresh())
    try:
        traffic.add_receiver(receiver.url, trace=False)
        traffic.start_sending(sender.url, total=total)
        traffic.pump(
            lambda: traffic.all_accepted() and set(traffic.received()) == set(range(total)),
            what=f"{total} messages from {sender.id} to {receiver.id}",
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{net.logs()}\n{sender.log()[-3000:]}") from None
    finally:
        traffic.close()
    return traffic


@pytest.fixture(scope="module")
def net(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RouterNetwork, EdgeProcess, EdgeProcess]]:
    with edges(tmp_path_factory.mktemp("edges")) as network:
        yield network


def test_messages_cross_from_one_edge_to_the_other_and_back(
    net: tuple[RouterNetwork, EdgeProcess, EdgeProcess],
) -> None:
    interior, e1, e2 = net
    there = stream_through(e1, e2, interior, 200)
    back = stream_through(e2, e1, interior, 200)
    for traffic in (there, back):
        assert not traffic.rejected and not traffic.errors
        assert sorted(traffic.received()) == list(range(200))  # once each: nothing failed


def test_stat_shows_an_edge_and_reaches_the_interior_through_it(
    net: tuple[RouterNetwork, EdgeProcess, EdgeProcess],
) -> None:
    _, e1, _ = net
    general = stat(e1.url, "-g")
    assert general["id"] == "E1"
    assert general["mode"] == "edge"
    nodes = stat(e1.url, "-n", "--router", "I2")
    ids = {str(row["id"]) for row in nodes}
    assert {"I1", "I2"} <= ids
    assert not ids & {"E1", "E2"}  # edges take no part in the routing protocol
    mine = next(row for row in nodes if str(row["id"]) == "I1")
    assert mine["reachable"] and mine["cost"] == 1


@pytest.mark.slow
def test_the_standby_uplink_takes_over_when_the_active_ones_router_dies(
    tmp_path: Path,
) -> None:
    with edges(tmp_path) as (net, e1, e2):
        traffic = Traffic(fresh())
        try:
            traffic.add_receiver(e2.url, trace=False)
            traffic.start_sending(e1.url, rate=400)
            traffic.pump(lambda: len(traffic.arrivals) >= 200, what="streaming E1 -> E2")
            before = len(traffic.arrivals)
            net["I1"].kill()  # SIGKILL: E1's active uplink drops
            traffic.pump(
                lambda: len(traffic.arrivals) >= before + 400,
                what="streaming again over I2",
            )
            traffic.stop_sending()
            traffic.pump(lambda: traffic.done, what="every message settled")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{net.logs()}\n{e1.log()[-4000:]}") from None
        finally:
            traffic.close()
        assert traffic.all_accepted(), traffic.status()
        assert not traffic.rejected
        assert set(traffic.received()) == set(range(traffic.issued))  # at least once, none lost
        assert traffic.issued > before
        i1, i2 = net["I1"].url, net["I2"].url
        assert e1.log_lines(f"uplink {i1} lost; now through {i2}"), e1.log()[-2000:]
        assert not net.crashed() and e1.alive and e2.alive
