"""A network that grows: routers added while traffic flows, and multicast over a ring.

Two routers A and C joined by a dear link (cost 10) carry a stream from A to
C.  Router D, joining both at cost 1, offers a cheaper way: the traffic moves
to A-D-C.  Router E, joining both at cost 10, offers only a dearer one:
nothing changes, and no message is released or modified.

Multicast over a ring of four routers, where two equal-cost ways lead to the
opposite router, still gives each receiver exactly one copy.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.routers import RouterNetwork, router_network
from tests.helpers.traffic import Traffic


def moved_to(traffic: Traffic, path: tuple[str, ...], since: int, count: int = 20) -> bool:
    recent = traffic.arrivals[since:][-count:]
    return len(recent) == count and {a.trace for a in recent} == {path}


def test_cheaper_router_takes_the_traffic_and_a_dearer_one_changes_nothing(
    tmp_path: Path,
) -> None:
    with router_network({"A-C": 10}, log_dir=tmp_path) as net:
        traffic = Traffic("grow")
        try:
            traffic.add_receiver(net["C"].url, trace=True)
            traffic.start_sending(net["A"].url, rate=200)
            traffic.pump(lambda: moved_to(traffic, ("A", "C"), 0), what="traffic along A-C")

            added_at = len(traffic.arrivals)
            net.add_router("D", {"D-A": 1, "D-C": 1})
            traffic.pump(
                lambda: moved_to(traffic, ("A", "D", "C"), added_at),
                what="traffic moving to A-D-C",
            )
            net.wait_converged()
            assert net.path("A", "C") == ["A", "D", "C"]

            settled = len(traffic.accepted)
            released, modified = traffic.released, traffic.modified
            dearer_at = len(traffic.arrivals)
            net.add_router("E", {"E-A": 10, "E-C": 10})
            net.wait_converged()
            assert net.costs("A") == {"C": 2, "D": 1, "E": 10}
            traffic.pump(
                lambda: (
                    len(traffic.arrivals) - dearer_at >= 100
                    and len(traffic.accepted) > settled + 100
                ),
                what="100 more messages after E joined",
            )
            assert {a.trace for a in traffic.arrivals[dearer_at:]} == {("A", "D", "C")}
            assert net.path("A", "C") == ["A", "D", "C"]
            traffic.stop_sending()
            traffic.pump(lambda: traffic.done, what="every message settled")
            # E's arrival released nothing and modified nothing.
            assert (traffic.released, traffic.modified) == (released, modified)
            assert traffic.all_accepted(), traffic.status()
            assert set(traffic.copies) == set(range(traffic.issued))
            # No message went through E.
            through_e = [
                r for r in net.query("E", "petrel.router.address") if r["address"] == "grow"
            ]
            assert all(row["delivered_in"] == 0 for row in through_e), through_e
            assert "router A: neighbour E up (cost 10)" in net["A"].log()
        finally:
            traffic.close()


MULTICAST = """
[[addresses]]
prefix = "multicast."
distribution = "multicast"
"""


@pytest.fixture(scope="module")
def ring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterNetwork]:
    """A ring A-B-C-D-A, all costs 1: C is two hops from A both ways round (and D from B)."""
    links = {"A-B": 1, "B-C": 1, "C-D": 1, "D-A": 1}
    with router_network(
        links, config=MULTICAST, log_dir=tmp_path_factory.mktemp("ring")
    ) as network:
        yield network


@pytest.mark.parametrize("origin", ["A", "B"])
def test_multicast_over_a_ring(ring: RouterNetwork, origin: str) -> None:
    net = ring
    address = f"multicast.ring.{origin}"
    total = 40
    where = {"a": "A", "b": "B", "c1": "C", "c2": "C", "d": "D"}
    traffic = Traffic(address)
    try:
        for name, router in where.items():
            traffic.add_receiver(net[router].url, name, trace=True)
        traffic.pump(
            lambda: all(traffic.receiver_attached(n) for n in where),
            what="receivers attached",
        )
        net.wait_for_receivers(address, sorted(set(where.values())))
        traffic.start_sending(net[origin].url, total=total)
        traffic.pump(
            lambda: traffic.done and len(traffic.arrivals) >= total * len(where),
            what="every copy delivered",
        )
        traffic.pump(timeout=0.5)  # a duplicate would have arrived by now
        per_receiver = collections.Counter(a.receiver for a in traffic.arrivals)
        assert per_receiver == dict.fromkeys(where, total)
        for name in where:  # each one once: none missing, none twice
            assert sorted(traffic.received(name)) == list(range(total)), name
        # Each copy took a shortest way: at most two hops from the origin.
        assert all(len(a.trace) <= 3 for a in traffic.arrivals)
        assert traffic.all_accepted(), traffic.status()
    finally:
        traffic.close()
