"""Least-cost paths over the link-state database, computed alike on every router.

Two functions do the work.  :func:`two_way_graph` turns link states (each
router's list of neighbours with costs) into the graph paths are found on:
an edge joins A and B only when A lists B *and* B lists A, and it costs the
larger of the two advertised costs, so the graph is undirected and a router
that merely claims a neighbour gains nothing.  :func:`shortest_path_tree`
runs Dijkstra over it from one root.

Ties are broken by one rule that depends on the graph alone, never on the
order work is done in: of the equal-cost ways into a router, its tree takes
the one whose last hop comes from the **lowest router id** (plain ``str``
order, by Unicode code point).  Because every cost is at least 1, each
candidate predecessor is settled before the router itself, so the rule picks
the same parent whatever the heap or dict order.  Two routers holding the
same database therefore build the same tree for a given root; that is what
keeps multicast free of duplicates (each router accepts a copy only from its
parent in the origin's tree, and each parent sends it only to its children).

The functions are pure and take plain dicts; the routing core caches their
results per topology version.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Graph", "Tree", "branches", "first_hops", "shortest_path_tree", "two_way_graph"]

#: router id -> {neighbour id: edge cost}, symmetric.
Graph = dict[str, dict[str, int]]


@dataclass(frozen=True, slots=True)
class Tree:
    """A shortest-path tree: what :func:`shortest_path_tree` found from ``root``."""

    root: str
    #: Every router reachable from the root, the root included (at 0): its least cost.
    cost: dict[str, int]
    #: Every reachable router but the root: the router before it on its path.
    parent: dict[str, str]
    #: The reachable routers in the order they were settled (cost, then id).
    order: tuple[str, ...]

    def path(self, router: str) -> list[str] | None:
        """The routers from the root to ``router``, both included; None if unreachable."""
        if router not in self.cost:
            return None
        hops = [router]
        while hops[-1] != self.root:
            hops.append(self.parent[hops[-1]])
        hops.reverse()
        return hops


def two_way_graph(link_states: Mapping[str, Mapping[str, int]]) -> Graph:
    """The undirected graph of the links both ends advertise, each at the larger cost."""
    graph: Graph = {}
    for a, links in link_states.items():
        for b, cost in links.items():
            if a >= b:
                continue  # each pair is looked at once, from its lower id
            back = link_states.get(b)
            if back is None or a not in back:
                continue
            edge = max(cost, back[a])
            graph.setdefault(a, {})[b] = edge
            graph.setdefault(b, {})[a] = edge
    return graph


def shortest_path_tree(graph: Mapping[str, Mapping[str, int]], root: str) -> Tree:
    """Dijkstra from ``root``; of equal-cost predecessors, the lowest id is the parent.

    Edge costs must be at least 1 (the link-state checks make sure of it).
    """
    cost = {root: 0}
    parent: dict[str, str] = {}
    order: list[str] = []
    settled: set[str] = set()
    heap = [(0, root)]
    while heap:
        here, node = heapq.heappop(heap)
        if node in settled:
            continue
        settled.add(node)
        order.append(node)
        for peer, edge in graph.get(node, {}).items():
            there = here + edge
            known = cost.get(peer)
            if known is None or there < known:
                cost[peer] = there
                parent[peer] = node
                heapq.heappush(heap, (there, peer))
            elif there == known and peer not in settled and node < parent[peer]:
                parent[peer] = node
    return Tree(root, cost, parent, tuple(order))


def branches(tree: Tree, node: str) -> dict[str, str]:
    """Every router below ``node`` in ``tree`` -> the child of ``node`` it hangs under.

    Empty when ``node`` is not in the tree or is a leaf.
    """
    below: dict[str, str] = {}
    if node not in tree.cost:
        return below
    for router in tree.order:  # parents are settled before their children
        up = tree.parent.get(router)
        if up == node:
            below[router] = router
        elif up is not None and up in below:
            below[router] = below[up]
    return below


def first_hops(tree: Tree) -> dict[str, str]:
    """Every router the root reaches -> the neighbour of the root its path starts with."""
    return branches(tree, tree.root)
