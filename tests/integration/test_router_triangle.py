"""A triangle with a cheap and a dear way from A to C: A-B-C (cost 2) and A-C (cost 10).

When B dies (SIGKILL) or hangs (SIGSTOP: its connections stay open, its
HELLOs stop) traffic from A to C moves to the dear link, and back once B
returns; no message is lost on the way.  Multicast over the same triangle
gives every receiver exactly one copy of each message, whichever router the
sender is on.
"""

from __future__ import annotations

import collections
import signal
from collections.abc import Iterator

import pytest

from tests.helpers.routers import RouterNetwork, router_network
from tests.helpers.traffic import Traffic

CHEAP = ("A", "B", "C")
DEAR = ("A", "C")
MULTICAST = """
[[addresses]]
prefix = "multicast."
distribution = "multicast"
"""


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterNetwork]:
    # B dials both of its neighbours, so that a restarted B is back at once.
    links = {"B-A": 1, "B-C": 1, "A-C": 10}
    with router_network(
        links, config=MULTICAST, log_dir=tmp_path_factory.mktemp("triangle")
    ) as network:
        yield network


@pytest.fixture
def whole(net: RouterNetwork) -> Iterator[RouterNetwork]:
    """The triangle with all three routers up (a test that stops B brings it back)."""
    if net.crashed():
        pytest.fail(f"routers exited on their own: {net.crashed()}\n{net.logs()}")
    assert net.path("A", "C") == list(CHEAP)
    yield net
    if net["B"].stopped:
        net["B"].kill(signal.SIGCONT)
    if not net["B"].alive:
        net["B"].start()
    net.wait_converged()


def last_paths(traffic: Traffic, count: int) -> set[tuple[str, ...]]:
    return {a.trace for a in traffic.arrivals[-count:]} if len(traffic.arrivals) >= count else set()


def moved_to(traffic: Traffic, path: tuple[str, ...], since: int, count: int = 20) -> bool:
    """The last ``count`` copies (all after the ``since``-th) came along ``path``."""
    return len(traffic.arrivals) - since >= count and last_paths(traffic, count) == {path}


def settle_all(traffic: Traffic) -> None:
    traffic.stop_sending()
    traffic.pump(lambda: traffic.done, what="every message settled")
    assert traffic.all_accepted(), traffic.status()
    assert set(traffic.copies) == set(range(traffic.issued)), traffic.status()
    assert not traffic.rejected and not traffic.errors, traffic.status()


def test_sigkill_on_the_cheap_path(whole: RouterNetwork) -> None:
    net = whole
    traffic = Traffic("triangle.kill")
    try:
        traffic.add_receiver(net["C"].url, trace=True)
        traffic.start_sending(net["A"].url, rate=200)
        traffic.pump(lambda: moved_to(traffic, CHEAP, 0), what="traffic along A-B-C")
        killed_at = len(traffic.arrivals)
        net["B"].kill(signal.SIGKILL)
        traffic.pump(lambda: moved_to(traffic, DEAR, killed_at), what="traffic moving to A-C")
        back_at = len(traffic.arrivals)
        net["B"].start()
        traffic.pump(lambda: moved_to(traffic, CHEAP, back_at), what="traffic back on A-B-C")
        settle_all(traffic)
        assert traffic.paths() == [CHEAP, DEAR, CHEAP]
        assert "router A: neighbour B lost" in net["A"].log()
    finally:
        traffic.close()


def test_sigstop_on_the_cheap_path(whole: RouterNetwork) -> None:
    """A hung B (SIGSTOP) is noticed by its silence; after SIGCONT it carries traffic again.
    Messages it held while stopped may still arrive along A-B-C after the move."""
    net = whole
    traffic = Traffic("triangle.stop")
    try:
        traffic.add_receiver(net["C"].url, trace=True)
        traffic.start_sending(net["A"].url, rate=200)
        traffic.pump(lambda: moved_to(traffic, CHEAP, 0), what="traffic along A-B-C")
        stopped_at = len(traffic.arrivals)
        net["B"].kill(signal.SIGSTOP)
        traffic.pump(lambda: moved_to(traffic, DEAR, stopped_at), what="traffic moving to A-C")
        net.wait_converged()  # B is gone from A's and C's tables
        assert net.path("A", "C") == list(DEAR)
        resumed_at = len(traffic.arrivals)
        net["B"].kill(signal.SIGCONT)
        traffic.pump(lambda: moved_to(traffic, CHEAP, resumed_at, 40), what="traffic back on A-B-C")
        net.wait_converged()
        settle_all(traffic)
        assert {a.trace for a in traffic.arrivals} == {CHEAP, DEAR}
        assert traffic.paths()[0] == CHEAP and traffic.paths()[-1] == CHEAP
        assert DEAR in traffic.paths()
        assert "router A: neighbour B lost" in net["A"].log()
    finally:
        traffic.close()


@pytest.mark.parametrize("origin", ["A", "B"])
def test_multicast_gives_each_receiver_one_copy(whole: RouterNetwork, origin: str) -> None:
    net = whole
    address = f"multicast.triangle.{origin}"
    total = 50
    traffic = Traffic(address)
    try:
        where = {"a1": "A", "a2": "A", "b1": "B", "c1": "C", "c2": "C"}
        for name, router in where.items():
            traffic.add_receiver(net[router].url, name, trace=True)
        traffic.pump(
            lambda: all(traffic.receiver_attached(n) for n in where), what="receivers attached"
        )
        net.wait_for_receivers(address, sorted(set(where.values())))
        looped = sum(net.router_stats(r)["deliveries_looped"] for r in "ABC")
        traffic.start_sending(net[origin].url, total=total)
        traffic.pump(
            lambda: traffic.done and len(traffic.arrivals) >= total * len(where),
            what="every copy delivered",
        )
        traffic.pump(timeout=0.5)  # a duplicate would have arrived by now
        per_receiver = collections.Counter(a.receiver for a in traffic.arrivals)
        assert per_receiver == dict.fromkeys(where, total)
        for name in where:
            assert sorted(traffic.received(name)) == list(range(total)), name
        assert all(a.ingress == origin for a in traffic.arrivals)
        assert all(a.trace[0] == origin for a in traffic.arrivals)
        assert all(a.trace[-1] == where[a.receiver] for a in traffic.arrivals)
        assert traffic.all_accepted(), traffic.status()
        # No copy came back to a router it had passed.
        assert sum(net.router_stats(r)["deliveries_looped"] for r in "ABC") == looped
    finally:
        traffic.close()
