"""A seeded simulation of a whole router network: routing cores, runtime, faults, data plane.

Many :class:`~petrel.router.routing.RoutingCore` run on one virtual clock
(:mod:`.simulator`), wired as ``petrel router``'s runtime wires one: control
messages on ordered connections, the redial backoff, silent neighbours
dropped.  A seeded fault schedule (:mod:`.faults`) breaks connections,
stops, restarts and partitions routers, slows and stalls links; a model of
the data plane (:mod:`.dataplane`) sends at-least-once deliveries through it
all; :mod:`.oracle` checks the invariants as the run goes.  A failing run's
schedule is shrunk to the fewest events that still fail (:mod:`.shrink`).

``bench/simulate.py`` is the command line; ``tests/router/test_simulation.py``
the tests; ``docs/simulation.md`` what it measures and what it found.
"""

from __future__ import annotations

from .dataplane import DataPlane, Traffic
from .faults import KINDS, Fault, format_schedule, generate, parse_spec
from .oracle import Oracle, Violation
from .scenario import Result, Scenario, percentile, run, schedule_for
from .shrink import Shrunk, shrink
from .simulator import Simulator
from .topology import Edge, Topology, build, router_names

__all__ = [
    "KINDS",
    "DataPlane",
    "Edge",
    "Fault",
    "Oracle",
    "Result",
    "Scenario",
    "Shrunk",
    "Simulator",
    "Topology",
    "Traffic",
    "Violation",
    "build",
    "format_schedule",
    "generate",
    "parse_spec",
    "percentile",
    "router_names",
    "run",
    "schedule_for",
    "shrink",
]
