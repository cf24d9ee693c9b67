"""What the routing core derives from its database: paths, trees and the address table.

:class:`Routes` holds the answers the runtime asks for with every message it
forwards, so that asking is a dict lookup.  The core tells it when link
states change (:meth:`Routes.recompute`) and when a router's addresses change
(:meth:`Routes.change_addresses`); it works out what that means for paths,
for the shortest-path trees of multicast origins (built on first use and kept
until the graph changes) and for which reachable routers hold each address.
An unreachable router's addresses count for nothing, from the moment it
becomes unreachable until it is reachable again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from . import paths

__all__ = ["OriginView", "Routes"]

_NOBODY: frozenset[str] = frozenset()


@dataclass(slots=True, frozen=True)
class OriginView:
    """Where this router stands in one origin's shortest-path tree."""

    #: Our parent: the neighbour that origin's multicast copies must come from (None for
    #: the origin itself).
    parent: str | None
    #: Every router below us -> the child of ours (a neighbour) it hangs under.
    below: dict[str, str]


class Routes:
    """Paths and the mobile-address table of one router (``router_id``)."""

    def __init__(self, router_id: str) -> None:
        self.router_id = router_id
        self.graph: paths.Graph = {}
        #: Our own shortest-path tree: costs, and the parents that give first hops.
        self.tree = paths.shortest_path_tree({}, router_id)
        #: Every router we reach -> the neighbour its path starts with.
        self.hops: dict[str, str] = {}
        self.reachable: frozenset[str] = _NOBODY
        self._views: dict[str, OriginView | None] = {}
        self._addresses: dict[str, set[str]] = {}  # router -> the addresses it advertises
        self._holders: dict[str, set[str]] = {}  # address -> the routers advertising it
        self._touched: set[str] = set()
        self._effective: dict[str, frozenset[str]] = {}  # address -> reachable holders
        self._remote: frozenset[str] | None = _NOBODY

    # -- paths ----------------------------------------------------------------------------

    def recompute(self, link_states: Mapping[str, Mapping[str, int]]) -> tuple[bool, bool]:
        """New link states (ours among them).  Returns whether the two-way graph changed
        and whether our paths did (a router reached or lost, a next hop or cost moved)."""
        graph = paths.two_way_graph(link_states)
        if graph == self.graph:
            return False, False
        self.graph = graph
        self._views.clear()
        tree = paths.shortest_path_tree(graph, self.router_id)
        hops = paths.first_hops(tree)
        moved = hops != self.hops or tree.cost != self.tree.cost
        if moved:
            reachable = frozenset(hops)
            for router in reachable ^ self.reachable:
                self._touched.update(self._addresses.get(router, ()))
            self.hops, self.reachable = hops, reachable
        self.tree = tree
        return True, moved

    def view(self, origin: str) -> OriginView | None:
        """Our place in ``origin``'s tree; None when ``origin`` is unreachable."""
        if origin in self._views:
            return self._views[origin]
        view = None
        if origin == self.router_id or origin in self.reachable:
            tree = (
                self.tree
                if origin == self.router_id
                else paths.shortest_path_tree(self.graph, origin)
            )
            view = OriginView(tree.parent.get(self.router_id), paths.branches(tree, self.router_id))
        self._views[origin] = view
        return view

    # -- addresses ------------------------------------------------------------------------

    def addresses_of(self, router: str) -> frozenset[str] | set[str]:
        """The addresses ``router`` advertises, reachable or not (do not change the set)."""
        return self._addresses.get(router, _NOBODY)

    def change_addresses(self, router: str, added: Iterable[str], removed: Iterable[str]) -> None:
        held = self._addresses.setdefault(router, set())
        for address in removed:
            if address in held:
                held.discard(address)
                holders = self._holders[address]
                holders.discard(router)
                if not holders:
                    del self._holders[address]
                self._touched.add(address)
        for address in added:
            if address not in held:
                held.add(address)
                self._holders.setdefault(address, set()).add(router)
                self._touched.add(address)
        if not held:
            del self._addresses[router]

    def forget(self, router: str) -> None:
        """``router`` advertises nothing any more (it restarted, or was dropped)."""
        self.change_addresses(router, (), list(self.addresses_of(router)))

    def settle(self) -> frozenset[str]:
        """Bring the address table up to date; the addresses whose reachable holders changed."""
        if not self._touched:
            return _NOBODY
        changed = set()
        reachable, effective = self.reachable, self._effective
        for address in self._touched:
            now_at = reachable.intersection(self._holders.get(address, _NOBODY))
            if now_at != effective.get(address, _NOBODY):
                changed.add(address)
                if now_at:
                    effective[address] = now_at
                else:
                    del effective[address]
        self._touched.clear()
        if changed:
            self._remote = None
        return frozenset(changed)

    def routers_for(self, address: str) -> frozenset[str]:
        return self._effective.get(address, _NOBODY)

    def remote_addresses(self) -> frozenset[str]:
        if self._remote is None:
            self._remote = frozenset(self._effective)
        return self._remote
