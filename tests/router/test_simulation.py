"""The whole router network in simulation: every fault kind, the invariants, and the shrinker.

Each run plays ten routing cores with the runtime's rules around them on a
virtual clock (``tests/router/sim``), sends at-least-once deliveries from
random routers to balanced, closest and multicast addresses, and applies a
seeded schedule of every fault kind: connections dropped, routers stopped,
restarted and partitioned, links slowed and stalled.  The oracle checks the
invariants as the run goes (paths equal Dijkstra's once the network is
still, addresses likewise, no delivery stuck or looping, multicast never
twice to a receiver while views stay fixed, every message accepted in the
end).  The last tests break a rule on purpose and check that the simulator
notices, and that the shrinker cuts the fault schedule down to what it takes.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections import Counter
from collections.abc import Hashable

import pytest

from petrel.router.routing import RoutingCore

from .sim import KINDS, Fault, Scenario, Simulator, format_schedule, parse_spec, run, shrink
from .sim.dataplane import DataPlane

#: Every fault kind, often enough that each one happens several times in 60 s.
ALL_FAULTS = "drop=0.15,stop=0.08,restart=0.08,partition=0.05,slow=0.08,reorder=0.1"


def scenario(topology: str, seed: int, faults: str = ALL_FAULTS, **changes: object) -> Scenario:
    base = Scenario(
        routers=10, topology=topology, seed=seed, faults=faults, duration=60, warmup=3, rest=0
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("topology", "seed"),
    [("ring", 1), ("ring", 11), ("mesh", 8), ("random", 3), ("random", 10)],
)
def test_every_fault_kind_keeps_the_invariants(topology: str, seed: int) -> None:
    result = run(scenario(topology, seed))
    assert result.ok, "\n".join(str(v) for v in result.violations)
    kinds = Counter(fault.kind for fault in result.schedule)
    assert set(kinds) == set(KINDS), kinds
    # The checks really ran: still moments were found, and faults were timed to convergence.
    assert result.stable_checks >= 3
    for kind in ("drop", "stop", "restart", "partition"):
        if kinds[kind]:
            assert result.convergence[kind]["n"] >= 1, kind
    deliveries = result.deliveries
    assert deliveries["sent"] > 1000
    assert deliveries["accepted"] == deliveries["sent"]
    assert deliveries["attempts"] > deliveries["sent"]  # faults made senders resend
    assert deliveries["modified_on_lost_connection"] > 0


def test_a_network_at_rest_converges_quickly_and_stays_quiet() -> None:
    result = run(scenario("mesh", 5, "none", duration=10, warmup=12, rest=20))
    assert result.ok, result.violations
    assert result.convergence["start recovery"]["max"] < 1.0
    assert result.deliveries["resent"] == {}
    # At rest: a HELLO per link per second, and RAs every 5 s flooded on every link.
    rest = result.control["rest"]["msgs_per_router_s"]
    assert 9 < rest < 40, rest


def test_the_same_seed_gives_the_same_run() -> None:
    one = run(scenario("random", 4, duration=20))
    two = run(scenario("random", 4, duration=20))
    assert one.summary() | {"wall_s": 0} == two.summary() | {"wall_s": 0}
    assert one.samples == two.samples and one.latencies == two.latencies


def test_the_fault_language_round_trips() -> None:
    rates, events = parse_spec(
        "drop=0.2,stop=0.1;drop@12.5:R1-R2;stop@20:R3/5;partition@30:R1+R2/8;"
        "slow@5:R4-R5/10/0.5;reorder@7:R1>R2/0.3;restart@9:R4/0.8"
    )
    assert rates == {"drop": 0.2, "stop": 0.1}
    assert events[0] == Fault(5.0, "slow", ("R4", "R5"), 10.0, 0.5)
    assert parse_spec(format_schedule(events)) == ({}, events)
    assert parse_spec("all=0.3")[0] == dict.fromkeys(KINDS, 0.3)
    for bad in ("drop=x", "flood=1", "drop@1:R1", "stop@1:R1", "slow@1:R1-R2/3"):
        with pytest.raises(ValueError):
            parse_spec(bad)
    with pytest.raises(ValueError, match="no link"):
        run(scenario("ring", 1, "drop@1:R1-R5"))


def test_explicit_events_play_as_written() -> None:
    faults = "partition@2:R0+R1+R2/6;stop@10:R5/5;restart@20:R7/1;drop@25:R3-R4"
    result = run(scenario("ring", 2, faults, duration=30))
    assert result.ok, result.violations
    assert [f.spec() for f in result.schedule] == faults.split(";")
    convergence = result.convergence
    assert convergence["stop"]["max"] < 5.0  # lost after 3 s without a HELLO, then flooded
    assert convergence["drop"]["max"] < 2.0
    assert convergence["restart recovery"]["max"] < 2.0  # killed routers' peers redial fast


# -- broken rules are caught ----------------------------------------------------------------


def test_a_stale_next_hop_is_caught_and_the_schedule_shrinks_to_one_fault(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A deliberate bug in a core query: after its first lost connection, a core keeps
    # answering next_hop from what it knew before (a cache never invalidated).
    next_hop, link_down = RoutingCore.next_hop, RoutingCore.link_down
    frozen: weakref.WeakKeyDictionary[RoutingCore, dict[str, Hashable | None]] = (
        weakref.WeakKeyDictionary()
    )

    def stale_link_down(self: RoutingCore, link: Hashable, now: float) -> None:
        frozen.setdefault(self, {r: next_hop(self, r) for r in self.reachable()})
        link_down(self, link, now)

    def stale_next_hop(self: RoutingCore, router_id: str) -> Hashable | None:
        answers = frozen.get(self)
        if answers is not None and router_id in answers:
            return answers[router_id]
        return next_hop(self, router_id)

    monkeypatch.setattr(RoutingCore, "link_down", stale_link_down)
    monkeypatch.setattr(RoutingCore, "next_hop", stale_next_hop)
    chosen = scenario("ring", 3, "all=0.2", duration=30)
    result = run(chosen)
    assert "paths" in result.violation_counts
    assert len(result.schedule) > 10
    first = next(v for v in result.violations if v.kind == "paths")
    frozen.clear()
    shrunk = shrink(chosen, result.schedule, first.kind, max_runs=60)
    assert shrunk.complete
    assert len(shrunk.faults) == 1  # one fault that closes a connection is all it takes
    assert shrunk.faults[0].kind in ("drop", "stop", "restart", "partition")
    assert "paths" in shrunk.replay.violation_counts
    report = shrunk.report()
    assert f"--faults '{shrunk.spec}'" in report
    assert "bench/simulate.py" in report and "what happened" in report


def test_skipping_the_loop_guard_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DataPlane, "loop_guard", lambda self, proc, trace: False)
    result = run(scenario("ring", 1, "all=0.2", duration=30))
    assert "loop" in result.violation_counts
    assert "routes message" in next(str(v) for v in result.violations if v.kind == "loop")


def test_keeping_a_silent_neighbours_connection_leaves_deliveries_stuck(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The runtime drops the connection of a neighbour lost for silence, so that what was
    # sent to it comes back at once.  Without that, deliveries into a stopped router wait
    # for as long as it stays stopped.
    monkeypatch.setattr(Simulator, "drop_silent_neighbours", False)
    faults = "slow@1:R1-R2/5/0.3;stop@4:R4/40;drop@30:R7-R8;reorder@33:R0>R1/0.5"
    chosen = scenario(
        "ring",
        5,
        faults,
        duration=50,
        traffic=dataclasses.replace(scenario("ring", 5).traffic, rate=40.0),
    )
    result = run(chosen)
    assert "stuck" in result.violation_counts
    shrunk = shrink(chosen, result.schedule, "stuck", max_runs=30)
    assert shrunk.spec == "stop@4:R4/40"


def test_multicast_duplicates_with_fixed_views_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # Accepting copies from any neighbour and copying to every neighbour floods: receivers
    # get a message twice though no router's view of the network changes.
    def any_neighbour(self: RoutingCore, origin: str, link: Hashable) -> bool:
        return origin != self.router_id and link in self.neighbours().values()

    def every_neighbour(self: RoutingCore, origin: str, routers: object) -> set[Hashable]:
        return set(self.neighbours().values())

    monkeypatch.setattr(RoutingCore, "valid_origin", any_neighbour)
    monkeypatch.setattr(RoutingCore, "multicast_links", every_neighbour)
    result = run(scenario("ring", 1, "none", duration=5))
    assert "multicast-duplicate" in result.violation_counts
