"""The shapes of simulated networks: rings, meshes and seeded random graphs, with costs.

A :class:`Topology` is the configuration of a network, not its state: the
routers and, for each :class:`Edge`, which router dials which, the link's
cost and its one-way latency.  What is up at any moment is the simulator's
business; the topology says what the runtime keeps trying to connect.

Router ids are ``R0`` ... ``R9`` (``R000`` ... ``R127`` for larger
networks): zero-padded, so that the protocol's lowest-id tie-break (plain
string order) agrees with the numbering.

Every builder takes a :class:`random.Random` and draws from it alone, so a
seed gives the same network on every run.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass

__all__ = ["KINDS", "Edge", "Topology", "build", "router_names"]

#: The topology kinds :func:`build` knows.
KINDS = ("ring", "mesh", "random")

#: Link latencies are drawn from this range (seconds, one way) unless a builder says otherwise.
MIN_LATENCY = 0.002
MAX_LATENCY = 0.02


@dataclass(frozen=True, slots=True)
class Edge:
    """A configured inter-router connection: ``a`` dials ``b``."""

    a: str
    b: str
    cost: int
    latency: float

    @property
    def name(self) -> str:
        return f"{self.a}-{self.b}"

    def other(self, router: str) -> str:
        return self.b if router == self.a else self.a


@dataclass(frozen=True, slots=True)
class Topology:
    """A network's configuration: its routers and the connections they keep."""

    kind: str
    routers: tuple[str, ...]
    edges: tuple[Edge, ...]

    def edge(self, a: str, b: str) -> Edge | None:
        """The edge between ``a`` and ``b``, whichever dials."""
        for edge in self.edges:
            if {edge.a, edge.b} == {a, b}:
                return edge
        return None

    def adjacency(self) -> dict[str, list[str]]:
        table: dict[str, list[str]] = {router: [] for router in self.routers}
        for edge in self.edges:
            table[edge.a].append(edge.b)
            table[edge.b].append(edge.a)
        return table

    def describe(self) -> str:
        routers, links = len(self.routers), len(self.edges)
        return f"{self.kind}: {routers} routers, {links} links (degree {2 * links / routers:.1f})"


def router_names(count: int) -> list[str]:
    """``count`` router ids, zero-padded so that string order is numeric order."""
    width = len(str(max(0, count - 1)))
    return [f"R{n:0{width}d}" for n in range(count)]


def build(
    kind: str, count: int, rng: random.Random, *, max_cost: int = 10, mesh_k: int | None = None
) -> Topology:
    """A network of ``count`` routers of ``kind`` (see :data:`KINDS`).

    - ``ring``: each router linked to the next, the last to the first.
    - ``mesh``: every pair linked when ``mesh_k`` is None and ``count`` is at
      most 16; otherwise routers are scattered over a unit square and each is
      linked to its ``mesh_k`` (default 4) nearest, the latency growing with
      the distance, and the pieces joined if that left several.
    - ``random``: a random spanning tree plus random extra links, up to an
      average degree of 3.

    Costs are drawn from 1 to ``max_cost``; the dialling end of each link is
    drawn too.
    """
    if count < 2:
        raise ValueError("a network needs at least two routers")
    names = router_names(count)
    pairs: list[tuple[str, str, float]]  # (a, b, latency)
    if kind == "ring":
        pairs = [
            (names[n], names[(n + 1) % count], _latency(rng))
            for n in range(count if count > 2 else 1)
        ]
    elif kind == "mesh":
        if mesh_k is None and count <= 16:
            pairs = [(a, b, _latency(rng)) for a, b in itertools.combinations(names, 2)]
        else:
            pairs = _nearest(names, rng, mesh_k or 4)
    elif kind == "random":
        pairs = _random_graph(names, rng, degree=3.0)
    else:
        raise ValueError(f"unknown topology {kind!r}: one of {', '.join(KINDS)}")
    edges = []
    for a, b, latency in pairs:
        if rng.random() < 0.5:
            a, b = b, a
        edges.append(Edge(a, b, rng.randint(1, max_cost), latency))
    return Topology(kind, tuple(names), tuple(edges))


def _latency(rng: random.Random) -> float:
    return round(rng.uniform(MIN_LATENCY, MAX_LATENCY), 4)


def _random_graph(
    names: list[str], rng: random.Random, degree: float
) -> list[tuple[str, str, float]]:
    linked: set[tuple[str, str]] = set()
    for n in range(1, len(names)):
        a, b = names[rng.randrange(n)], names[n]
        linked.add((min(a, b), max(a, b)))
    wanted = min(round(degree * len(names) / 2), len(names) * (len(names) - 1) // 2)
    while len(linked) < wanted:
        a, b = rng.sample(names, 2)
        linked.add((min(a, b), max(a, b)))
    return [(a, b, _latency(rng)) for a, b in sorted(linked)]


def _nearest(names: list[str], rng: random.Random, k: int) -> list[tuple[str, str, float]]:
    where = {name: (rng.random(), rng.random()) for name in names}

    def distance(a: str, b: str) -> float:
        (xa, ya), (xb, yb) = where[a], where[b]
        return math.hypot(xa - xb, ya - yb)

    linked: set[tuple[str, str]] = set()
    for a in names:
        closest = sorted((distance(a, b), b) for b in names if b != a)[:k]
        linked.update((min(a, b), max(a, b)) for _, b in closest)
    # Join the pieces: the closest pair between the first piece and the rest, until one.
    while True:
        pieces = _components(names, linked)
        if len(pieces) == 1:
            break
        first, rest = pieces[0], set(names) - pieces[0]
        _, a, b = min((distance(a, b), a, b) for a in first for b in rest)
        linked.add((min(a, b), max(a, b)))
    span = MAX_LATENCY - MIN_LATENCY
    return [
        (a, b, round(MIN_LATENCY + span * min(1.0, distance(a, b) / 0.5), 4))
        for a, b in sorted(linked)
    ]


def _components(names: list[str], linked: set[tuple[str, str]]) -> list[set[str]]:
    table: dict[str, set[str]] = {name: set() for name in names}
    for a, b in linked:
        table[a].add(b)
        table[b].add(a)
    seen: set[str] = set()
    pieces = []
    for name in names:
        if name in seen:
            continue
        piece = {name}
        todo = [name]
        while todo:
            for peer in table[todo.pop()]:
                if peer not in piece:
                    piece.add(peer)
                    todo.append(peer)
        seen |= piece
        pieces.append(piece)
    return pieces
