"""The whole router network in simulation: convergence, control traffic and deliveries under
seeded faults.

    python bench/simulate.py --routers N --topology ring|mesh|random --seed S \\
        --faults SPEC [--duration SECONDS] [--seeds K]

Runs N routing cores (``petrel.router.routing``) on a virtual clock with the
runtime's rules around them, a model of the data plane sending at-least-once
deliveries through them, and a seeded schedule of faults (see
``tests/router/sim`` and ``docs/simulation.md``).  ``--faults`` takes rates
per simulated second (``drop=0.2,stop=0.1,restart=0.1,partition=0.05,
slow=0.1,reorder=0.05``, or ``all=0.1``) and explicit events
(``drop@12.5:R1-R2;stop@20:R3/5``), times counted from the start of the
fault phase.

One JSON line per seed, then (with ``--seeds`` above 1) one line pooling
them:

- ``convergence``: for each fault kind, the time from the fault until every
  running router's paths were those of Dijkstra on the live topology again
  (``kind``), and from its end until that held with every link that can be
  up back up (``kind recovery``): n, p50, p99, max, virtual seconds, for
  every fault and (``alone``) for the faults no other fault overlapped;
- ``control``: control messages (and bytes, encoded as AMQP messages) sent
  per router per second, at rest (``--rest`` seconds before the faults) and
  in flux (during the fault phase);
- ``deliveries``: messages sent and accepted, deliveries resent (after
  released, modified, or a sender's router dying), redeliveries, multicast
  duplicates while views changed, and the send-to-accept latency;
- ``violations``: the invariants broken, by kind.

A seed that breaks an invariant has its fault schedule shrunk to the fewest
events that still break it (``--no-shrink`` to skip); the shrunk schedule,
the command that replays it and what happened are printed on stderr, and
the exit status is 1.  Benchmarks are not tests: the figures are reported,
not asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository's tests

from tests.router.sim import KINDS, Result, Scenario, Traffic, run, shrink
from tests.router.sim.scenario import convergence_figures, figures
from tests.router.sim.topology import KINDS as TOPOLOGIES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--routers", type=int, default=10, help="how many routers (default 10)")
    parser.add_argument("--topology", choices=TOPOLOGIES, default="ring")
    parser.add_argument("--seed", type=int, default=1, help="the first seed (default 1)")
    parser.add_argument("--seeds", type=int, default=1, help="how many seeds from --seed")
    parser.add_argument(
        "--faults", default="all=0.1", help=f"rates and events (kinds: {', '.join(KINDS)})"
    )
    parser.add_argument("--duration", type=float, default=60.0, help="fault phase, seconds")
    parser.add_argument("--rest", type=float, default=20.0, help="quiet phase before, seconds")
    parser.add_argument("--warmup", type=float, default=12.0, help="start-up phase, seconds")
    parser.add_argument("--tail", type=float, default=60.0, help="most to wait at the end")
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second")
    parser.add_argument("--settle", type=float, default=6.0, help="still time before checks")
    parser.add_argument("--max-cost", type=int, default=10, help="link costs from 1 to this")
    parser.add_argument("--mesh-k", type=int, default=None, help="mesh: links per router")
    parser.add_argument("--no-bytes", action="store_true", help="do not count control bytes")
    parser.add_argument("--no-shrink", action="store_true", help="do not shrink failures")
    parser.add_argument("--shrink-runs", type=int, default=200, help="most runs to shrink")
    args = parser.parse_args()

    base = Scenario(
        routers=args.routers,
        topology=args.topology,
        seed=args.seed,
        faults=args.faults,
        duration=args.duration,
        warmup=args.warmup,
        rest=args.rest,
        tail=args.tail,
        settle=args.settle,
        traffic=Traffic(rate=args.rate),
        max_cost=args.max_cost,
        mesh_k=args.mesh_k,
        measure_bytes=not args.no_bytes,
    )
    results: list[Result] = []
    failed = False
    for seed in range(args.seed, args.seed + args.seeds):
        scenario = dataclasses.replace(base, seed=seed)
        try:
            result = run(scenario)
        except ValueError as error:
            sys.exit(f"simulate: {error}")
        line = result.summary()
        if not result.ok:
            failed = True
            kind = (
                result.violations[0].kind
                if result.violations
                else next(iter(result.violation_counts))
            )
            print(
                f"seed {seed}: {result.violations[0] if result.violations else kind}",
                file=sys.stderr,
            )
            if not args.no_shrink:
                quick = dataclasses.replace(scenario, measure_bytes=False)
                shrunk = shrink(quick, result.schedule, kind, max_runs=args.shrink_runs)
                line["shrunk"] = shrunk.spec
                print(shrunk.report(), file=sys.stderr)
        print(json.dumps(line), flush=True)
        results.append(result)
    if len(results) > 1:
        print(json.dumps(pooled(results)), flush=True)
    sys.exit(1 if failed else 0)


def pooled(results: list[Result]) -> dict[str, Any]:
    """One line for several seeds: convergence samples pooled, rates averaged, counts summed."""
    first = results[0].scenario
    samples: dict[str, list[float]] = {}
    alone: dict[str, list[float]] = {}
    for result in results:
        for label, values in result.samples.items():
            samples.setdefault(label, []).extend(values)
        for label, values in result.samples_alone.items():
            alone.setdefault(label, []).extend(values)
    control: dict[str, dict[str, float]] = {}
    for phase in ("rest", "flux"):
        rows = [r.control[phase] for r in results if phase in r.control]
        if rows:
            control[phase] = {
                key: round(statistics.fmean(row[key] for row in rows), 2) for key in rows[0]
            }
    counts: dict[str, Any] = {}
    for result in results:
        for key, value in result.deliveries.items():
            if isinstance(value, int):
                counts[key] = counts.get(key, 0) + value
            elif key != "latency_s":
                inner = counts.setdefault(key, {})
                for name, number in value.items():
                    inner[name] = inner.get(name, 0) + number
    counts["latency_s"] = figures([v for r in results for v in r.latencies])
    violations: dict[str, int] = {}
    for result in results:
        for kind, count in result.violation_counts.items():
            violations[kind] = violations.get(kind, 0) + count
    return {
        "name": "simulate-pooled",
        "routers": first.routers,
        "topology": first.topology,
        "seeds": [r.scenario.seed for r in results],
        "faults": first.faults,
        "duration": first.duration,
        "convergence": convergence_figures(samples, alone),
        "control": control,
        "deliveries": counts,
        "violations": violations,
        "failed_seeds": [r.scenario.seed for r in results if not r.ok],
        "wall_s": round(sum(r.wall for r in results), 2),
    }


if __name__ == "__main__":
    main()
