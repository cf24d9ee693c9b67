"""Routing around failures: links cut one after another in a mesh, the middle router of a
line killed with thousands of messages in flight.

The sender resends what comes back released or modified (at least once):
no message is lost and none stays unsettled.  Which way each message went
is read from its trace (``x-opt-petrel.trace``, asked for with the
``petrel:trace`` capability) and checked against what management says.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

from tests.helpers.routers import router_network
from tests.helpers.traffic import Traffic

#: Costs AB 100, AC 50, AD 1, BC 1, BD 20, CD 1: from A to B the cheapest way is A-D-C-B
#: (3), then without C-D A-D-B (21), then without B-D A-C-B (51), then without B-C A-B.
MESH = {"A-B": 100, "A-C": 50, "A-D": 1, "B-C": 1, "B-D": 20, "C-D": 1}


def arrived_along(traffic: Traffic, path: tuple[str, ...], since: int, count: int = 1) -> bool:
    """``count`` copies arrived along ``path`` from the ``since``-th arrival on."""
    return sum(1 for a in traffic.arrivals[since:] if a.trace == path) >= count


def finish(traffic: Traffic, timeout: float = 30.0) -> None:
    """Stop sending; wait until every message issued has its final outcome."""
    traffic.stop_sending()
    traffic.pump(lambda: traffic.done, timeout=timeout, what="every message settled")


def assert_every_message_accepted(traffic: Traffic) -> None:
    assert traffic.done, traffic.status()
    assert not traffic.unsettled and not traffic.rejected, traffic.status()
    missing = [n for n in range(traffic.issued) if not traffic.accepted[n]]
    assert not missing, f"never accepted: {missing[:20]}...\n{traffic.status()}"
    assert set(traffic.copies) == set(range(traffic.issued)), traffic.status()
    assert not traffic.errors, traffic.errors


def test_mesh_routes_around_each_cut_link(tmp_path: Path) -> None:
    with router_network(MESH, proxies=True, log_dir=tmp_path) as net:
        assert net.path("A", "B") == ["A", "D", "C", "B"]
        traffic = Traffic("mesh")
        try:
            traffic.add_receiver(net["B"].url, trace=True)
            traffic.start_sending(net["A"].url, rate=200)
            steps = [
                (None, ("A", "D", "C", "B")),
                (("C", "D"), ("A", "D", "B")),
                (("B", "D"), ("A", "C", "B")),
                (("B", "C"), ("A", "B")),
            ]
            for cut, path in steps:
                mark = len(traffic.arrivals)
                if cut is not None:
                    net.cut(*cut)
                traffic.pump(
                    lambda path=path, mark=mark: arrived_along(traffic, path, mark, 20),
                    what=f"20 messages along {'-'.join(path)} after cutting {cut}",
                )
                net.wait_converged()
                assert net.path("A", "B") == list(path)
            finish(traffic)
            assert_every_message_accepted(traffic)
            assert traffic.paths() == [path for _, path in steps]
            assert all(a.ingress == "A" for a in traffic.arrivals)
            for cut, _ in steps[1:]:
                assert cut is not None
                a, b = cut
                assert f"router {a}: neighbour {b} lost" in net[a].log()
                assert f"router {b}: neighbour {a} lost" in net[b].log()
            # Nothing is left behind in any router.
            for router in "ABCD":
                stats = net.router_stats(router)
                assert stats["deliveries_unsettled"] == 0, (router, stats)
                assert stats["deliveries_waiting"] == 0, (router, stats)
        finally:
            traffic.close()


def test_killing_the_middle_of_a_line_loses_nothing(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    """A-B-C with 2,000 unsettled messages from A to C: B is killed (SIGKILL) mid-stream and
    started again; every message is accepted at least once and none stays unsettled."""
    total = 2000
    # B dials both: restarted, it is back at once (no waiting for A's or C's redial).
    with router_network({"B-A": 1, "B-C": 1}, log_dir=tmp_path) as net:
        traffic = Traffic("line")
        try:
            traffic.add_receiver(net["C"].url, trace=True)
            traffic.start_sending(net["A"].url, total=total)
            traffic.pump(lambda: len(traffic.arrivals) >= 300, what="300 messages through B")
            in_flight = len(traffic.unsettled)
            net["B"].kill(signal.SIGKILL)
            # A's sender loses its credit (no route), its unsettled messages come back.
            traffic.pump(
                lambda: traffic.credit <= 0 and not traffic.unsettled,
                what="A takes back the credit and settles what was in flight",
            )
            assert traffic.released + traffic.modified > 0
            net["B"].start()
            net.wait_converged()
            traffic.pump(lambda: traffic.done, timeout=10, what="all settled 10 s after B is back")
            assert_every_message_accepted(traffic)
            assert traffic.issued == total
            duplicates = traffic.duplicates()
            record_property("in_flight_at_kill", in_flight)
            record_property("duplicates", duplicates)
            record_property("released", traffic.released)
            record_property("modified", traffic.modified)
            print(
                f"line kill -9: {in_flight} in flight, {traffic.released} released, "
                f"{traffic.modified} modified, {duplicates} duplicates"
            )
            assert {a.trace for a in traffic.arrivals} == {("A", "B", "C")}
            for router in "AC":
                stats = net.router_stats(router)
                assert stats["deliveries_unsettled"] == 0, (router, stats)
                assert stats["deliveries_waiting"] == 0, (router, stats)
        finally:
            traffic.close()
