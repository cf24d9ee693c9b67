"""One simulated run from start to finish, and the figures it gives.

A :class:`Scenario` names everything a run depends on: the network (size,
shape, seed), the faults (a ``--faults`` spec, see :mod:`.faults`), the
traffic and the phases.  :func:`run` plays it:

1. **warm-up** (``warmup`` s): every router starts at 0 and dials its edges;
   traffic begins after 2 s;
2. **rest** (``rest`` s): nothing goes wrong; the control traffic of a
   network at rest is measured here;
3. **faults** (``duration`` s): the schedule is applied, each fault ending
   by the end of the phase at the latest; control traffic "in flux" is
   measured here, and each fault's convergence time;
4. **tail** (up to ``tail`` s): no more faults nor new messages; the run
   waits until the network has been still for ``settle`` s and every
   message has been accepted, then makes the final checks.

The same scenario and schedule give the same run, event for event.
:func:`schedule_for` gives the network and the fault schedule a scenario
stands for, so that a run can be repeated with part of the schedule (the
shrinker does that).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from petrel.router.routing import Timers

from .dataplane import DataPlane, Traffic
from .faults import Fault, generate, parse_spec
from .oracle import Oracle, Violation
from .simulator import Simulator
from .topology import Topology, build

__all__ = [
    "Result",
    "Scenario",
    "convergence_figures",
    "figures",
    "percentile",
    "run",
    "schedule_for",
]

#: Traffic starts this long after the routers (or at the end of the warm-up, if sooner).
TRAFFIC_START = 2.0


@dataclass(frozen=True)
class Scenario:
    """Everything a run depends on (see the module docstring)."""

    routers: int = 10
    topology: str = "ring"
    seed: int = 1
    faults: str = "all=0.1"
    duration: float = 60.0
    warmup: float = 12.0
    rest: float = 20.0
    tail: float = 60.0
    #: How long the network must be still before paths and addresses must be right.
    settle: float = 6.0
    #: How long a delivery may go unanswered while its sender's router runs.
    stuck_after: float = 20.0
    traffic: Traffic = field(default_factory=Traffic)
    max_cost: int = 10
    mesh_k: int | None = None
    timers: Timers = field(default_factory=Timers)
    #: Encode every control message to count bytes (costs time; only the figures need it).
    measure_bytes: bool = False

    def command(self, faults: str) -> str:
        """The ``bench/simulate.py`` command line that plays this scenario with ``faults``."""
        words = [
            f"python bench/simulate.py --routers {self.routers} --topology {self.topology}",
            f"--seed {self.seed} --duration {self.duration:g} --rest {self.rest:g}",
            f"--warmup {self.warmup:g} --rate {self.traffic.rate:g}",
        ]
        if self.settle != Scenario.settle:
            words.append(f"--settle {self.settle:g}")
        if self.max_cost != Scenario.max_cost:
            words.append(f"--max-cost {self.max_cost}")
        if self.mesh_k is not None:
            words.append(f"--mesh-k {self.mesh_k}")
        return " ".join([*words, f"--faults '{faults}'"])


@dataclass
class Result:
    """What a run found: violations, and the figures."""

    scenario: Scenario
    topology: Topology
    schedule: list[Fault]
    violations: list[Violation]
    violation_counts: dict[str, int]
    convergence: dict[str, dict[str, Any]]
    control: dict[str, dict[str, float]]
    deliveries: dict[str, Any]
    simulated: float
    wall: float
    #: How many times the network was still for ``settle`` and paths and addresses were checked.
    stable_checks: int = 0
    #: The raw convergence times behind ``convergence`` (all, and of faults alone), and every
    #: delivery's latency.
    samples: dict[str, list[float]] = field(default_factory=dict)
    samples_alone: dict[str, list[float]] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    journal: list[tuple[float, str]] | None = None

    @property
    def ok(self) -> bool:
        return not self.violation_counts

    def summary(self) -> dict[str, Any]:
        """The figures as one JSON-ready dict."""
        scenario = self.scenario
        return {
            "name": "simulate",
            "routers": scenario.routers,
            "topology": scenario.topology,
            "links": len(self.topology.edges),
            "seed": scenario.seed,
            "faults": scenario.faults,
            "fault_events": len(self.schedule),
            "duration": scenario.duration,
            "convergence": self.convergence,
            "control": self.control,
            "deliveries": self.deliveries,
            "violations": dict(self.violation_counts),
            "first_violation": str(self.violations[0]) if self.violations else None,
            "stable_checks": self.stable_checks,
            "simulated_s": round(self.simulated, 3),
            "wall_s": round(self.wall, 2),
        }


def schedule_for(scenario: Scenario) -> tuple[Topology, list[Fault]]:
    """The network of ``scenario`` and its fault schedule (seeded and explicit events)."""
    topology = build(
        scenario.topology,
        scenario.routers,
        random.Random(f"{scenario.seed}/topology"),
        max_cost=scenario.max_cost,
        mesh_k=scenario.mesh_k,
    )
    rates, events = parse_spec(scenario.faults)
    known = set(topology.routers)
    for event in events:
        unknown = [router for router in event.target if router not in known]
        if unknown:
            raise ValueError(f"{event.spec()}: no router {', '.join(unknown)} in this network")
        if event.kind in ("drop", "slow", "reorder") and topology.edge(*event.target) is None:
            raise ValueError(f"{event.spec()}: no link between {' and '.join(event.target)}")
    faults = generate(rates, topology, scenario.seed, scenario.duration) + events
    return topology, sorted(faults, key=lambda fault: (fault.at, fault.kind, fault.target))


def run(
    scenario: Scenario,
    faults: list[Fault] | None = None,
    *,
    stop_on: str | None = None,
    journal: bool = False,
) -> Result:
    """Play ``scenario`` (with ``faults`` instead of its own schedule, if given).

    ``stop_on`` ends the run at the first violation of that kind (``"*"``:
    any), for the shrinker; ``journal`` keeps a log of what happened.
    """
    wall = time.perf_counter()
    topology, schedule = schedule_for(scenario)
    if faults is not None:
        schedule = list(faults)
    sim = Simulator(
        topology,
        seed=scenario.seed,
        timers=scenario.timers,
        measure_bytes=scenario.measure_bytes,
        journal=journal,
    )
    oracle = sim.oracle = Oracle(sim, settle=scenario.settle, stuck_after=scenario.stuck_after)
    data = sim.data = DataPlane(sim, scenario.traffic, scenario.seed)
    sim.stop_on = stop_on
    rest_at = scenario.warmup
    faults_at = rest_at + scenario.rest
    end = faults_at + scenario.duration
    oracle.fault_ended("start", 0)
    for router in topology.routers:
        sim.start(router)
    data.schedule(min(TRAFFIC_START, scenario.warmup), end)
    for fault in schedule:
        sim.apply(fault, faults_at, end)
    sim.at(rest_at, _set_phase, sim, "rest")
    sim.at(faults_at, _set_phase, sim, "flux")
    sim.at(end, _set_phase, sim, "tail")
    sim.at(1.0, _tick, sim, data, oracle)

    sim.run_until(end)
    give_up = end + scenario.tail
    while not sim.halted() and sim.now < give_up:
        still = sim.now - oracle.last_change >= scenario.settle
        if still and data.all_done() and oracle.converged:
            break
        sim.run_until(min(give_up, sim.now + 1.0))
    if not sim.halted():
        if sim.now - oracle.last_change >= scenario.settle:
            oracle.check_stable()
        else:
            oracle.violation("unsettled", f"the network was never still for {scenario.settle:g} s")
        data.check_end()
    return _result(scenario, topology, schedule, sim, oracle, data, time.perf_counter() - wall)


def _set_phase(sim: Simulator, phase: str) -> None:
    sim.phase = phase


def _tick(sim: Simulator, data: DataPlane, oracle: Oracle) -> None:
    data.check_stuck(sim.now - oracle.stuck_after)
    sim.at(sim.now + 1.0, _tick, sim, data, oracle)


def percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile (``share`` from 0 to 1); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))
    return ordered[rank]


def figures(values: list[float]) -> dict[str, Any]:
    """n, p50, p99 and max of ``values`` (rounded to the millisecond)."""

    def r(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    return {
        "n": len(values),
        "p50": r(percentile(values, 0.5)),
        "p99": r(percentile(values, 0.99)),
        "max": r(max(values, default=None)),
    }


def convergence_figures(
    samples: dict[str, list[float]], alone: dict[str, list[float]]
) -> dict[str, dict[str, Any]]:
    """Per label: the figures of every sample, and under ``alone`` those of the faults no
    other fault overlapped."""
    return {
        label: figures(values) | {"alone": figures(alone.get(label, []))}
        for label, values in sorted(samples.items())
    }


def _result(
    scenario: Scenario,
    topology: Topology,
    schedule: list[Fault],
    sim: Simulator,
    oracle: Oracle,
    data: DataPlane,
    wall: float,
) -> Result:
    convergence = convergence_figures(oracle.samples, oracle.samples_alone)
    unresolved = Counter(entry.label for entry in oracle.pending)
    for label, count in unresolved.items():
        convergence.setdefault(label, figures([]))["unresolved"] = count
    routers = len(topology.routers)
    control: dict[str, dict[str, float]] = {}
    for phase, seconds in (("rest", scenario.rest), ("flux", scenario.duration)):
        if seconds <= 0:
            continue
        busiest = max((c[phase] for c in sim.control_by_router.values()), default=0)
        control[phase] = {
            "msgs_per_router_s": round(sim.control_messages[phase] / routers / seconds, 2),
            "busiest_router_msgs_s": round(busiest / seconds, 2),
        }
        if scenario.measure_bytes:
            control[phase]["bytes_per_router_s"] = round(
                sim.control_bytes[phase] / routers / seconds, 1
            )
    stats = data.stats
    deliveries: dict[str, Any] = {
        "sent": len(data.messages),
        "accepted": stats["accepted"],
        "attempts": stats["attempts"],
        "resent": {
            key.removeprefix("resent after "): value
            for key, value in sorted(stats.items())
            if key.startswith("resent after ")
        },
        "received": stats["received"],
        "redelivered": stats["redelivered"],
        "multicast_duplicates_in_flux": stats["duplicates in flux"],
        "released": {
            key.removeprefix("released: "): value
            for key, value in sorted(stats.items())
            if key.startswith("released: ")
        },
        "modified_on_lost_connection": stats["modified: connection lost"],
        "latency_s": figures(data.latencies),
    }
    return Result(
        scenario,
        topology,
        schedule,
        list(oracle.violations),
        dict(oracle.violation_counts),
        convergence,
        control,
        deliveries,
        sim.now,
        wall,
        oracle.stable_checks,
        {label: list(values) for label, values in oracle.samples.items()},
        {label: list(values) for label, values in oracle.samples_alone.items()},
        list(data.latencies),
        sim.journal,
    )
