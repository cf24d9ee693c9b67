"""Fault schedules: what goes wrong, when, and for how long, written as data.

A schedule is a list of :class:`Fault`, each a self-contained event: its
start, its kind, what it hits and how long it lasts (its end is part of the
event, so any sub-list of a schedule is a schedule too; that is what lets
the shrinker drop events freely).  Times count from the start of the fault
phase of a run.

The six kinds, and what the simulator does for each:

- ``drop``: the connection between two routers breaks (both ends see it at
  once, whatever was on the wire is lost); the dialling end dials again with
  the runtime's backoff.
- ``stop``: a router freezes as under SIGSTOP for ``duration`` seconds: no
  timers, nothing read; what is sent to it waits in its socket buffers.
- ``restart``: a router is killed (its connections reset) and starts again
  ``duration`` seconds later as a new, larger instance.
- ``partition``: the routers of one side and the rest can no longer reach
  each other for ``duration`` seconds; frames on the connections across wait
  (as TCP would retransmit them) and dials across fail.
- ``slow``: a connection's latency is raised to ``latency`` for ``duration``.
- ``reorder``: one direction of one connection stalls for ``duration``
  (head-of-line blocking); frames on it arrive late, together and in their
  order, after what other connections carried meanwhile.  AMQP links are
  ordered, so this is the only reordering a real network can do: between
  connections, never within one.  Most stalls are short (under 0.8 s); one
  in five outlasts ``hello_max_age``, so that one end stops hearing the other
  while still being heard (a one-way silence).

The spec language of ``--faults`` is a list of items separated by ``,`` or
``;``.  ``KIND=RATE`` (``all=RATE`` for every kind) asks for faults of that
kind at RATE per simulated second over the whole network, at seeded random
times and places; ``KIND@TIME:TARGET[/SECONDS[/LATENCY]]`` is one explicit
event.  Targets: ``A-B`` (a connection: drop, slow), ``A`` (a router: stop,
restart), ``A+B+C`` (one side of a partition), ``A>B`` (a direction:
reorder)::

    drop=0.2,stop=0.1,restart=0.1,partition=0.05,slow=0.1,reorder=0.05
    drop@12.5:R1-R2;stop@20:R3/5;partition@30:R1+R2/8;slow@5:R4-R5/10/0.5
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from .topology import Topology

__all__ = ["KINDS", "Fault", "format_schedule", "generate", "parse_spec"]

KINDS = ("drop", "stop", "restart", "partition", "slow", "reorder")

#: The ranges seeded faults draw from (seconds).
STOP_SECONDS = (1.0, 8.0)
RESTART_DOWNTIME = (0.2, 2.0)
PARTITION_SECONDS = (1.0, 12.0)
SLOW_SECONDS = (2.0, 10.0)
SLOW_LATENCY = (0.1, 0.8)
REORDER_STALL = (0.05, 0.8)
#: One stall in five is long: longer than ``hello_max_age``, so the far end stops hearing the
#: near one while it is still heard itself (a one-way silence).
LONG_STALL = (3.0, 5.0)
LONG_STALL_SHARE = 0.2


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault: ``kind`` at ``at`` (seconds into the fault phase) on ``target``.

    ``target`` holds router ids: two for a connection (drop, slow), one router
    (stop, restart), one side (partition), a direction ``(from, to)``
    (reorder).  ``duration`` is how long it lasts (a restart: the downtime;
    a drop: 0), ``latency`` the raised latency of a slow link.
    """

    at: float
    kind: str
    target: tuple[str, ...]
    duration: float = 0.0
    latency: float = 0.0

    def spec(self) -> str:
        """The event in the ``--faults`` language (parsing it gives it back)."""
        if self.kind in ("drop", "slow"):
            where = "-".join(self.target)
        elif self.kind == "reorder":
            where = ">".join(self.target)
        else:
            where = "+".join(self.target)
        text = f"{self.kind}@{_num(self.at)}:{where}"
        if self.kind != "drop":
            text += f"/{_num(self.duration)}"
        if self.kind == "slow":
            text += f"/{_num(self.latency)}"
        return text


def format_schedule(faults: list[Fault]) -> str:
    """A schedule in the ``--faults`` language (``none`` when empty)."""
    return ";".join(fault.spec() for fault in faults) or "none"


def _num(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


_EVENT = re.compile(r"^(?P<kind>[a-z]+)@(?P<at>[0-9.]+):(?P<target>[^/]+)(?P<rest>(/[0-9.]+)*)$")


def parse_spec(spec: str) -> tuple[dict[str, float], list[Fault]]:
    """The rates and the explicit events of a ``--faults`` spec; ValueError if malformed."""
    rates: dict[str, float] = {}
    events: list[Fault] = []
    for raw in re.split(r"[,;]", spec.strip()):
        item = raw.strip()
        if not item or item == "none":
            continue
        if "@" in item:
            events.append(_parse_event(item))
            continue
        kind, equals, value = item.partition("=")
        kind = kind.strip()
        if not equals or (kind not in KINDS and kind != "all"):
            raise ValueError(f"{item!r}: expected KIND=RATE or KIND@TIME:TARGET (kinds: {KINDS})")
        try:
            rate = float(value)
        except ValueError:
            raise ValueError(f"{item!r}: the rate must be a number") from None
        if rate < 0:
            raise ValueError(f"{item!r}: a rate cannot be negative")
        for one in KINDS if kind == "all" else (kind,):
            rates[one] = rate
    return rates, sorted(events, key=lambda fault: fault.at)


def _parse_event(item: str) -> Fault:
    match = _EVENT.match(item)
    if match is None:
        raise ValueError(f"{item!r}: expected KIND@TIME:TARGET[/SECONDS[/LATENCY]]")
    kind = match["kind"]
    if kind not in KINDS:
        raise ValueError(f"{item!r}: unknown fault kind {kind!r}")
    numbers = [float(n) for n in match["rest"].split("/")[1:]]
    target = match["target"]
    separator = {"drop": "-", "slow": "-", "reorder": ">", "partition": "+"}.get(kind)
    routers = tuple(target.split(separator)) if separator else (target,)
    expected = {"drop": 2, "slow": 2, "reorder": 2, "stop": 1, "restart": 1}.get(kind)
    if (expected is not None and len(routers) != expected) or not all(routers):
        raise ValueError(f"{item!r}: a {kind} needs {expected} router(s) in its target")
    wanted = {"drop": 0, "slow": 2}.get(kind, 1)
    if len(numbers) != wanted:
        raise ValueError(f"{item!r}: a {kind} takes {wanted} number(s) after its target")
    duration = numbers[0] if numbers else 0.0
    latency = numbers[1] if len(numbers) > 1 else 0.0
    return Fault(float(match["at"]), kind, routers, duration, latency)


def generate(
    rates: dict[str, float], topology: Topology, seed: int, duration: float
) -> list[Fault]:
    """Seeded faults at ``rates`` (per simulated second) over ``duration`` seconds.

    Each kind draws from a random stream of its own (seeded by ``seed`` and
    the kind), so changing the rate of one kind leaves the others' events as
    they were.  Events are Poisson arrivals on random targets.
    """
    faults: list[Fault] = []
    adjacency = topology.adjacency()
    for kind in KINDS:
        rate = rates.get(kind, 0.0)
        if rate <= 0:
            continue
        rng = random.Random(f"{seed}/faults/{kind}")
        at = rng.expovariate(rate)
        while at < duration:
            faults.append(_one(kind, round(at, 3), topology, adjacency, rng))
            at += rng.expovariate(rate)
    return sorted(faults, key=lambda fault: (fault.at, fault.kind))


def _one(
    kind: str, at: float, topology: Topology, adjacency: dict[str, list[str]], rng: random.Random
) -> Fault:
    def seconds(bounds: tuple[float, float]) -> float:
        return round(rng.uniform(*bounds), 3)

    if kind in ("drop", "slow", "reorder"):
        edge = rng.choice(topology.edges)
        ends = (edge.a, edge.b) if rng.random() < 0.5 else (edge.b, edge.a)
        if kind == "drop":
            return Fault(at, kind, ends)
        if kind == "slow":
            return Fault(at, kind, ends, seconds(SLOW_SECONDS), seconds(SLOW_LATENCY))
        long = rng.random() < LONG_STALL_SHARE
        return Fault(at, kind, ends, seconds(LONG_STALL if long else REORDER_STALL))
    if kind in ("stop", "restart"):
        router = rng.choice(topology.routers)
        return Fault(
            at, kind, (router,), seconds(STOP_SECONDS if kind == "stop" else RESTART_DOWNTIME)
        )
    # A partition: a connected piece of the network, of up to half of it, grown from a router.
    size = rng.randint(1, max(1, len(topology.routers) // 2))
    start = rng.choice(topology.routers)
    side = [start]
    frontier = list(adjacency[start])
    while len(side) < size and frontier:
        peer = frontier.pop(rng.randrange(len(frontier)))
        if peer not in side:
            side.append(peer)
            frontier.extend(p for p in adjacency[peer] if p not in side)
    return Fault(at, kind, tuple(sorted(side)), seconds(PARTITION_SECONDS))
