"""Least-cost paths: the two-way rule, the larger of two costs, Dijkstra and its tie-break."""

from __future__ import annotations

import itertools
import random

import pytest

from petrel.router.routing.paths import (
    branches,
    first_hops,
    shortest_path_tree,
    two_way_graph,
)

# The four-router mesh of the routing tests: AB 100, AC 50, AD 1, BC 1, BD 20, CD 1.
MESH = {
    ("A", "B"): 100,
    ("A", "C"): 50,
    ("A", "D"): 1,
    ("B", "C"): 1,
    ("B", "D"): 20,
    ("C", "D"): 1,
}


def states_of(edges: dict[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    """Link states in which both ends advertise every edge at its cost."""
    states: dict[str, dict[str, int]] = {}
    for (a, b), cost in edges.items():
        states.setdefault(a, {})[b] = cost
        states.setdefault(b, {})[a] = cost
    return states


def test_an_edge_counts_only_when_both_ends_list_each_other() -> None:
    graph = two_way_graph({"A": {"B": 1, "C": 1}, "B": {"A": 1}, "C": {}, "D": {"A": 1}})
    assert graph == {"A": {"B": 1}, "B": {"A": 1}}


def test_an_edge_costs_the_larger_of_the_two_advertised_costs() -> None:
    graph = two_way_graph({"A": {"B": 3}, "B": {"A": 7, "C": 2}, "C": {"B": 9}})
    assert graph == {"A": {"B": 7}, "B": {"A": 7, "C": 9}, "C": {"B": 9}}


def test_a_router_that_claims_a_cheap_link_alone_gains_nothing() -> None:
    # C says it is 1 from A, A does not list C: the path to C goes the long way round.
    states = {"A": {"B": 5}, "B": {"A": 5, "C": 5}, "C": {"A": 1, "B": 5}}
    tree = shortest_path_tree(two_way_graph(states), "A")
    assert tree.cost == {"A": 0, "B": 5, "C": 10}
    assert tree.path("C") == ["A", "B", "C"]


def test_dijkstra_on_the_mesh() -> None:
    graph = two_way_graph(states_of(MESH))
    tree = shortest_path_tree(graph, "A")
    assert tree.cost == {"A": 0, "D": 1, "C": 2, "B": 3}
    assert tree.path("B") == ["A", "D", "C", "B"]
    assert first_hops(tree) == {"B": "D", "C": "D", "D": "D"}
    assert tree.order == ("A", "D", "C", "B")
    from_b = shortest_path_tree(graph, "B")
    assert from_b.path("A") == ["B", "C", "D", "A"]


@pytest.mark.parametrize(
    ("cut", "path"),
    [
        ([("C", "D")], ["A", "D", "B"]),
        ([("C", "D"), ("B", "D")], ["A", "C", "B"]),
        ([("C", "D"), ("B", "D"), ("B", "C")], ["A", "B"]),
    ],
)
def test_the_mesh_path_after_cuts(cut: list[tuple[str, str]], path: list[str]) -> None:
    edges = {pair: cost for pair, cost in MESH.items() if pair not in cut}
    tree = shortest_path_tree(two_way_graph(states_of(edges)), "A")
    assert tree.path("B") == path


def test_unreachable_routers_are_absent() -> None:
    graph = two_way_graph(states_of({("A", "B"): 1, ("C", "D"): 1}))
    tree = shortest_path_tree(graph, "A")
    assert tree.cost == {"A": 0, "B": 1}
    assert tree.path("C") is None
    lone = shortest_path_tree(graph, "Z")
    assert lone.cost == {"Z": 0} and lone.parent == {} and first_hops(lone) == {}


def test_of_equal_cost_predecessors_the_lowest_id_is_the_parent() -> None:
    # Two equal ways from S to T: through "m" and through "k"; "k" < "m".
    states = states_of({("S", "m"): 1, ("m", "T"): 1, ("S", "k"): 1, ("k", "T"): 1})
    tree = shortest_path_tree(two_way_graph(states), "S")
    assert tree.parent["T"] == "k"
    assert tree.path("T") == ["S", "k", "T"]


def test_the_tie_break_looks_at_the_last_hop_not_the_first() -> None:
    # S-a-z-T and S-b-y-T cost the same; the parent of T is y (y < z) even though
    # the other path starts with the lower id.
    states = states_of(
        {("S", "a"): 1, ("a", "z"): 1, ("z", "T"): 1, ("S", "b"): 1, ("b", "y"): 1, ("y", "T"): 1}
    )
    tree = shortest_path_tree(two_way_graph(states), "S")
    assert tree.path("T") == ["S", "b", "y", "T"]


def test_ids_compare_by_code_point() -> None:
    states = states_of({("S", "B"): 1, ("B", "T"): 1, ("S", "a"): 1, ("a", "T"): 1})
    tree = shortest_path_tree(two_way_graph(states), "S")
    assert tree.parent["T"] == "B"  # "B" (66) < "a" (97)


def _shuffled(graph: dict[str, dict[str, int]], rng: random.Random) -> dict[str, dict[str, int]]:
    nodes = list(graph)
    rng.shuffle(nodes)
    out: dict[str, dict[str, int]] = {}
    for node in nodes:
        peers = list(graph[node].items())
        rng.shuffle(peers)
        out[node] = dict(peers)
    return out


def _random_graph(rng: random.Random, size: int) -> dict[str, dict[str, int]]:
    names = [f"r{n:02d}" for n in range(size)]
    edges = {
        (a, b): rng.choice([1, 1, 2, 3])  # small costs: many ties
        for a, b in itertools.combinations(names, 2)
        if rng.random() < 0.35
    }
    graph = two_way_graph(states_of(edges))
    for name in names:
        graph.setdefault(name, {})
    return graph


def _bellman_ford(graph: dict[str, dict[str, int]], root: str) -> dict[str, int]:
    cost = {root: 0}
    for _ in graph:
        for a, peers in graph.items():
            for b, w in peers.items():
                if a in cost and cost[a] + w < cost.get(b, 1 << 60):
                    cost[b] = cost[a] + w
    return cost


@pytest.mark.parametrize("seed", range(25))
def test_trees_match_an_independent_oracle_and_the_stated_rule(seed: int) -> None:
    rng = random.Random(seed)
    graph = _random_graph(rng, rng.randint(2, 12))
    for root in graph:
        tree = shortest_path_tree(graph, root)
        assert tree.cost == _bellman_ford(graph, root)
        for node, parent in tree.parent.items():
            candidates = [
                u for u, w in graph[node].items() if tree.cost.get(u, -99) + w == tree.cost[node]
            ]
            assert parent == min(candidates)
        # Every router holding the same database builds the same tree, whatever order its
        # dicts happen to be in.
        for _ in range(3):
            again = shortest_path_tree(_shuffled(graph, rng), root)
            assert again.parent == tree.parent and again.cost == tree.cost


@pytest.mark.parametrize("seed", range(10))
def test_hop_by_hop_forwarding_reaches_the_destination_at_least_cost(seed: int) -> None:
    # Each router forwards by its own tree; the path that results costs what the
    # source's tree says, so routers never loop even where ties abound.
    rng = random.Random(100 + seed)
    graph = _random_graph(rng, 10)
    trees = {node: shortest_path_tree(graph, node) for node in graph}
    hops = {node: first_hops(tree) for node, tree in trees.items()}
    for source, target in itertools.permutations(graph, 2):
        if target not in trees[source].cost:
            assert target not in hops[source]
            continue
        here, total, seen = source, 0, {source}
        while here != target:
            step = hops[here][target]
            total += graph[here][step]
            here = step
            assert here not in seen
            seen.add(here)
        assert total == trees[source].cost[target]


def test_branches_map_each_router_below_a_node_to_its_child() -> None:
    #      R
    #     / \
    #    a   b
    #   / \   \
    #  c   d   e
    #  |
    #  f
    edges = {
        ("R", "a"): 1,
        ("R", "b"): 1,
        ("a", "c"): 1,
        ("a", "d"): 1,
        ("b", "e"): 1,
        ("c", "f"): 1,
    }
    tree = shortest_path_tree(two_way_graph(states_of(edges)), "R")
    assert first_hops(tree) == {"a": "a", "b": "b", "c": "a", "d": "a", "e": "b", "f": "a"}
    assert branches(tree, "a") == {"c": "c", "d": "d", "f": "c"}
    assert branches(tree, "e") == {}
    assert branches(tree, "nowhere") == {}
