"""Many routing cores on a virtual clock: convergence, addresses and multicast.

Every scenario runs on :class:`~tests.router.simnet.SimNet` with the default
timers (HELLO every 1 s, a neighbour lost after 3 s of silence) and 10 ms
links.  "Converged" means every live router's next hops and costs are those
of Dijkstra over the connections that really work (``SimNet.converged``).
"""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest

from petrel.router.routing import NeighbourRefused

from .simnet import SimNet

MESH = [
    ("A", "B", 100),
    ("A", "C", 50),
    ("A", "D", 1),
    ("B", "C", 1),
    ("B", "D", 20),
    ("C", "D", 1),
]


def build(links: list[tuple[str, str, int]], *, seed: int = 0, jitter: float = 0.0) -> SimNet:
    net = SimNet(seed=seed, jitter=jitter)
    for router in sorted({r for a, b, _ in links for r in (a, b)}):
        net.add_router(router)
    for a, b, cost in links:
        net.connect(a, b, cost)
    assert net.time_to(net.converged, 2.0) is not None
    return net


def ring(size: int) -> list[tuple[str, str, int]]:
    names = [f"R{n}" for n in range(size)]
    return [(names[n], names[(n + 1) % size], 1) for n in range(size)]


TRIANGLE = [("A", "B", 1), ("B", "C", 1), ("A", "C", 1)]


# -- unicast paths --------------------------------------------------------------------------


def test_the_mesh_routes_around_each_cut_within_two_seconds() -> None:
    net = build(MESH)
    assert net.path("A", "B") == ["A", "D", "C", "B"]
    assert net.path("B", "A") == ["B", "C", "D", "A"]
    for cut, path in [(("C", "D"), "ADB"), (("B", "D"), "ACB"), (("B", "C"), "AB")]:
        net.cut(*cut)
        assert not net.converged()  # the far routers have not heard yet
        took = net.time_to(net.converged, 2.0)
        assert took is not None and 0 < took < 2.0, cut
        assert net.path("A", "B") == list(path)
        assert net.path("B", "A") == list(reversed(path))
        assert net.core("A").cost_to("B") == {"ADB": 21, "ACB": 51, "AB": 100}[path]
    assert net.protocol_errors == []


def test_a_silent_router_is_routed_around_within_five_seconds() -> None:
    net = build(MESH)
    net.run_for(0.37)  # somewhere between two HELLO rounds
    net.silence("D")
    assert not net.converged()
    took = net.time_to(net.converged, 5.0)
    assert took is not None and 2.0 < took < 5.0  # it takes a lost neighbour to notice
    assert net.path("A", "B") == ["A", "C", "B"]
    assert "D" not in net.core("A").reachable()
    net.resume("D")
    assert net.time_to(net.converged, 5.0) is not None
    assert net.path("A", "B") == ["A", "D", "C", "B"]


def test_a_restarted_router_comes_back() -> None:
    net = build(MESH)
    net.restart("C")
    took = net.time_to(net.converged, 2.0)
    assert took is not None
    assert net.path("A", "B") == ["A", "D", "C", "B"]
    node = next(node for node in net.core("A").nodes() if node.id == "C")
    assert node.instance == net.core("C").instance


def test_a_second_connection_between_two_routers_is_refused() -> None:
    net = build(TRIANGLE)
    with pytest.raises(NeighbourRefused):
        net.connect("A", "B", 1)
    net.run_for(5.0)
    assert net.converged() and net.core("A").neighbours().keys() == {"B", "C"}


def test_a_partition_heals() -> None:
    net = build([("A", "B", 1), ("B", "C", 1), ("C", "D", 1)])
    net.add_receiver("D", "d-queue")
    assert net.time_to(net.addresses_agree, 2.0) is not None
    net.cut("B", "C")
    assert net.time_to(net.converged, 2.0) is not None
    assert net.core("A").reachable() == {"B"}
    assert net.core("A").routers_for("d-queue") == frozenset()
    net.add_receiver("C", "c-queue")  # while apart
    net.run_for(3.0)
    net.connect("B", "C", 1)
    assert net.time_to(lambda: net.converged() and net.addresses_agree(), 2.0) is not None
    assert net.core("A").routers_for("c-queue") == {"C"}
    assert net.core("A").routers_for("d-queue") == {"D"}


# -- mobile addresses -----------------------------------------------------------------------


def test_an_address_reaches_every_router_within_two_seconds_and_leaves_with_its_receiver() -> None:
    net = build(MESH)
    net.add_receiver("B", "orders")
    assert not net.addresses_agree()
    took = net.time_to(net.addresses_agree, 2.0)
    assert took is not None and 0 < took < 2.0
    assert all(net.core(r).routers_for("orders") == {"B"} for r in "ACD")
    net.add_receiver("C", "orders")
    assert net.time_to(net.addresses_agree, 2.0) is not None
    assert net.core("A").routers_for("orders") == {"B", "C"}
    net.remove_receiver("B", "orders")
    net.remove_receiver("C", "orders")
    took = net.time_to(net.addresses_agree, 2.0)
    assert took is not None and 0 < took < 2.0
    assert all(net.core(r).remote_addresses() == frozenset() for r in "ABCD")


def test_an_address_leaves_when_its_router_becomes_unreachable() -> None:
    net = build(MESH)
    net.add_receiver("B", "orders")
    assert net.time_to(net.addresses_agree, 2.0) is not None
    for peer in "ACD":
        net.cut("B", peer)
    took = net.time_to(lambda: all(not net.core(r).routers_for("orders") for r in "ACD"), 2.0)
    assert took is not None and took < 2.0
    # A silent router's addresses go with its reachability too.
    net = build(MESH)
    net.add_receiver("C", "orders")
    assert net.time_to(net.addresses_agree, 2.0) is not None
    net.silence("C")
    took = net.time_to(lambda: all(not net.core(r).routers_for("orders") for r in "ABD"), 5.0)
    assert took is not None and took < 5.0


def test_a_restarted_routers_old_addresses_never_come_back() -> None:
    net = build(MESH)
    net.add_receiver("B", "orders")
    assert net.time_to(net.addresses_agree, 2.0) is not None
    net.restart("B")  # the new instance has no receivers
    end = net.now + 15.0
    while net.now < end:
        net.run_for(0.01)
        for router in "ACD":
            assert net.core(router).routers_for("orders") == frozenset(), (net.now, router)
    assert net.converged() and net.addresses_agree()
    net.add_receiver("B", "orders")
    assert net.time_to(net.addresses_agree, 2.0) is not None


def test_a_lost_mau_is_repaired_by_the_ra_and_mar() -> None:
    net = build([("A", "B", 1), ("B", "C", 1)])
    net.silence("B")  # B misses what C floods now (and the link to it stays up)
    net.add_receiver("C", "late")
    net.run_for(1.5)
    net.resume("B")
    assert net.core("A").routers_for("late") == frozenset()
    took = net.time_to(net.addresses_agree, 8.0)
    assert took is not None
    assert net.core("A").routers_for("late") == {"C"}


# -- multicast ------------------------------------------------------------------------------


def _check_exactly_once(net: SimNet, address: str) -> None:
    receivers = net.receivers_of(address)
    for origin in sorted(net.routers):
        copies = net.flood(origin, address)
        assert max(copies.values()) == 1, (origin, copies)
        assert {r for r in receivers if copies[r] == 1} == receivers, (origin, copies)


@pytest.mark.parametrize(
    "links", [TRIANGLE, ring(5), ring(6), MESH], ids=["triangle", "ring5", "ring6", "mesh"]
)
def test_multicast_reaches_every_receiver_exactly_once(links: list[tuple[str, str, int]]) -> None:
    net = build(links)
    routers = sorted(net.routers)
    # Every set of receiving routers, for the small networks; a few for the larger ones.
    sets = [c for n in range(1, len(routers) + 1) for c in itertools.combinations(routers, n)]
    for n, chosen in enumerate(sets[:24]):
        address = f"topic-{n}"
        for router in chosen:
            net.add_receiver(router, address)
    assert net.time_to(net.addresses_agree, 2.0) is not None
    for n in range(min(len(sets), 24)):
        _check_exactly_once(net, f"topic-{n}")


def test_copies_go_only_where_receivers_are() -> None:
    net = build(ring(6))
    net.add_receiver("R1", "t")
    assert net.time_to(net.addresses_agree, 2.0) is not None
    copies = net.flood("R0", "t")
    assert copies == Counter({"R0": 1, "R1": 1})
    # R3 is as far from R0 one way as the other: the trees of R0 break the tie by the
    # lowest id (R2 before R4), on every router alike.
    net.add_receiver("R3", "t")
    assert net.time_to(net.addresses_agree, 2.0) is not None
    assert net.flood("R0", "t") == Counter({"R0": 1, "R1": 1, "R2": 1, "R3": 1})


@pytest.mark.parametrize(
    ("links", "faults"),
    [
        (MESH, [("cut", "C", "D"), ("cut", "B", "D"), ("cut", "A", "D")]),
        (ring(6), [("cut", "R0", "R1"), ("cut", "R3", "R4")]),
        (MESH, [("silence", "D", "")]),
        (ring(5), [("silence", "R2", ""), ("cut", "R4", "R0")]),
    ],
    ids=["mesh-cuts", "ring-cuts", "mesh-silent", "ring-silent-and-cut"],
)
def test_multicast_never_duplicates_while_the_network_converges(
    links: list[tuple[str, str, int]], faults: list[tuple[str, str, str]]
) -> None:
    net = build(links)
    routers = sorted(net.routers)
    for router in routers:
        net.add_receiver(router, "all")
    net.add_receiver(routers[-1], "one")
    assert net.time_to(net.addresses_agree, 2.0) is not None
    for kind, a, b in faults:
        if kind == "cut":
            net.cut(a, b)
        else:
            net.silence(a)
        end = net.now + 5.0
        while net.now < end:  # a flood from every origin at every 5 ms of the change
            net.run_for(0.005)
            for origin in routers:
                if net.routers[origin].silent:
                    continue
                for address in ("all", "one"):
                    copies = net.flood(origin, address)
                    assert max(copies.values()) <= 1, (kind, a, b, net.now, origin, copies)
        assert net.converged()
    live = {r for r in routers if not net.routers[r].silent}
    reach = {o: {o} | set(net.expected_routes(o)[1]) for o in live}
    for origin in live:
        copies = net.flood(origin, "all")
        assert {r for r in copies if copies[r] == 1} == reach[origin]


@pytest.mark.parametrize("seed", [28, 34])
def test_multicast_never_duplicates_on_random_networks_with_uneven_latency(seed: int) -> None:
    # Links of very different latencies make routers disagree for a while about the
    # trees; these seeds are ones where accepting a copy from any neighbour (rather
    # than only from the parent in the origin's tree) gives some router two copies.
    rng = random.Random(seed)
    names = [f"N{n}" for n in range(6)]
    net = SimNet(seed=seed)
    for name in names:
        net.add_router(name)
    pairs = [pair for pair in itertools.combinations(names, 2) if rng.random() < 0.5]
    for a, b in pairs:
        net.connect(a, b, rng.randint(1, 5), latency=rng.choice([0.005, 0.01, 0.05, 0.2]))
    for name in names:
        net.add_receiver(name, "all")
    net.run_for(3.0)
    for _ in range(4):
        up = [pair for pair in pairs if net.between(*pair)]
        if not up:
            break
        net.cut(*rng.choice(up))
        for _ in range(200):
            net.run_for(0.005)
            for origin in names:
                copies = net.flood(origin, "all")
                assert max(copies.values()) <= 1, (net.now, origin, copies)


# -- random faults --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_cuts_heals_restarts_and_stops_end_consistent(seed: int) -> None:
    names = ["A", "B", "C", "D", "E"]
    net = SimNet(seed=seed, jitter=0.02)
    rng = net.random
    for name in names:
        net.add_router(name)
    costs = {pair: rng.randint(1, 20) for pair in itertools.combinations(names, 2)}
    for (a, b), cost in costs.items():
        if rng.random() < 0.7:
            net.connect(a, b, cost)
    for name in names:
        net.add_receiver(name, f"{name}-only")
    for _ in range(25):
        action = rng.random()
        up = [p for p in costs if net.between(*p)]
        down = [p for p in costs if not net.between(*p)]
        if action < 0.4 and up:
            net.cut(*rng.choice(up))
        elif action < 0.75 and down:
            a, b = rng.choice(down)
            net.connect(a, b, costs[(a, b)])
        elif action < 0.82:
            net.restart(rng.choice(names))
        elif action < 0.88:
            net.silence(rng.choice(names))
        elif action < 0.94:
            for name in names:
                net.resume(name)
        else:
            who = rng.choice(names)
            net.add_receiver(who, f"extra-{rng.randrange(3)}")
        net.run_for(rng.uniform(0.0, 1.5))
        for origin in names:
            copies = net.flood(origin, "A-only")
            assert max(copies.values()) <= 1
    for name in names:
        net.resume(name)
    took = net.time_to(lambda: net.converged() and net.addresses_agree(), 10.0)
    assert took is not None
    assert net.protocol_errors == []
    for a, b in itertools.permutations(names, 2):
        if b in net.core(a).reachable():
            net.path(a, b)  # no loop, no dead end
    # Stable from here on: nothing changes in a long quiet spell.
    net.run_for(120.0)
    assert net.converged() and net.addresses_agree()


def test_the_same_seed_gives_the_same_run() -> None:
    def run() -> list[tuple[float, str, str]]:
        net = SimNet(seed=7, jitter=0.05)
        for name in "ABCDE":
            net.add_router(name)
        for a, b in itertools.combinations("ABCDE", 2):
            net.connect(a, b, net.random.randint(1, 9))
        net.add_receiver("C", "x")
        net.run_for(2.0)
        net.cut("A", "B")
        net.silence("D")
        net.run_for(6.0)
        return [(t, r, repr(e)) for t, r, e in net.events] + [
            (net.now, "delivered", str(net.delivered))
        ]

    assert run() == run()
