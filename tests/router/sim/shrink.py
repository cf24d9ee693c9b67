"""Shrinking a failing schedule to the fewest fault events that still fail.

:func:`shrink` is delta debugging (Zeller's *ddmin*) over the list of
:class:`~.faults.Fault` events of a run that broke an invariant: it first
tries no faults at all, then halves of the schedule, then the complements
of its pieces, splitting finer whenever neither fails, until no single
event can be dropped (the result is 1-minimal).  "Still fails" means the
same kind of invariant is broken again; each trial run stops at that
moment, so trials are cheaper than the run they shrink.

Every fault carries its own end, so any sub-list of a schedule is a
schedule; the traffic and the network come from the seed and stay as they
were.  :meth:`Shrunk.report` prints the result as a ``--faults`` spec, the
command that replays it, and the journal of the replay up to the failure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .faults import Fault, format_schedule
from .scenario import Result, Scenario, run

__all__ = ["Shrunk", "shrink"]


@dataclass
class Shrunk:
    """A shrunk schedule, the replay that shows it failing, and what it took."""

    kind: str
    original: int
    faults: list[Fault]
    replay: Result
    runs: int
    seconds: float
    complete: bool

    @property
    def spec(self) -> str:
        return format_schedule(self.faults)

    def report(self, *, lines: int = 40) -> str:
        scenario = self.replay.scenario
        first = next((v for v in self.replay.violations if v.kind == self.kind), None)
        text = [
            f"network: {self.replay.topology.describe()}, seed {scenario.seed}",
            f"invariant broken: {first if first is not None else self.kind}",
            f"shrunk from {self.original} to {len(self.faults)} fault event(s) in {self.runs} "
            f"runs ({self.seconds:.1f} s){'' if self.complete else ', stopped early'}:",
            f"  --faults '{self.spec}'",
            f"replay: {scenario.command(self.spec)}",
        ]
        journal = self.replay.journal or []
        if journal:
            text.append(f"what happened (the last {min(lines, len(journal))} events):")
            text.extend(f"  [{at:9.3f}] {line}" for at, line in journal[-lines:])
        return "\n".join(text)


def shrink(
    scenario: Scenario,
    faults: list[Fault],
    kind: str,
    *,
    max_runs: int = 200,
    max_seconds: float = 600.0,
) -> Shrunk:
    """The smallest sub-list of ``faults`` found that still breaks ``kind``."""
    started = time.perf_counter()
    runs = 0
    complete = True

    def fails(candidate: list[Fault]) -> bool:
        nonlocal runs
        runs += 1
        return kind in run(scenario, candidate, stop_on=kind).violation_counts

    def budget_left() -> bool:
        return runs < max_runs and time.perf_counter() - started < max_seconds

    current = list(faults)
    if fails([]):
        current = []
    pieces = 2
    while len(current) >= 2:
        if not budget_left():
            complete = False
            break
        size = -(-len(current) // pieces)
        chunks = [current[i : i + size] for i in range(0, len(current), size)]
        for chunk in chunks:
            if fails(chunk):
                current, pieces = chunk, 2
                break
        else:
            for index in range(len(chunks) if len(chunks) > 2 else 0):
                rest = [f for n, chunk in enumerate(chunks) if n != index for f in chunk]
                if fails(rest):
                    current, pieces = rest, max(pieces - 1, 2)
                    break
            else:
                if pieces >= len(current):
                    break
                pieces = min(len(current), pieces * 2)
    replay = run(scenario, current, stop_on=kind, journal=True)
    return Shrunk(
        kind, len(faults), current, replay, runs + 1, time.perf_counter() - started, complete
    )
