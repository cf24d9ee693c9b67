"""A network of routing cores on a virtual clock: the routers' runtime, simulated.

:class:`SimNet` holds any number of :class:`~petrel.router.routing.RoutingCore`
and the connections between them.  A connection has a cost and a one-way
latency (plus, if asked, seeded jitter that never reorders a direction: AMQP
links deliver in order).  The clock only moves when :meth:`SimNet.run_until`
moves it, straight to the next thing due: a message arriving or a core's
timer.  Every message goes through a JSON round trip on its way, which
checks that bodies hold only wire-safe values and that no core keeps a
reference to what another one received.

Faults: :meth:`SimNet.cut` closes a connection (``link_down`` at both ends,
in-flight messages lost); :meth:`SimNet.silence` freezes a router the way
SIGSTOP does (its timers stop, messages to and from it are lost, its
connections stay up) until :meth:`SimNet.resume`; :meth:`SimNet.restart`
replaces a router by a new instance with the same id and the same
connections.  A :class:`~petrel.router.routing.ProtocolError` is recorded in
``protocol_errors`` and handled as the runtime would: the connection closes.

:meth:`SimNet.expected_routes` is the oracle: Dijkstra over the connections
that really work, which :meth:`SimNet.converged` compares with every core's
answers.  :meth:`SimNet.flood` pushes one multicast message through the
network as it stands, using only ``valid_origin`` and ``multicast_links``.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from petrel.router.routing import Event, ProtocolError, RoutingCore, Timers, paths

#: Timers for simulations: the defaults, which the convergence bounds are stated against.
SIM_TIMERS = Timers()


@dataclass(eq=False)
class SimLink:
    """One connection between routers ``a`` and ``b``; each end knows it by its own key."""

    name: str
    a: str
    b: str
    cost: int
    latency: float
    up: bool = True

    def key(self, router: str) -> tuple[str, str]:
        assert router in (self.a, self.b)
        return (self.name, router)

    def other(self, router: str) -> str:
        return self.b if router == self.a else self.a


@dataclass(eq=False)
class SimRouter:
    core: RoutingCore
    silent: bool = False
    receivers: set[str] = field(default_factory=set)


class SimNet:
    """Routing cores wired together on a virtual clock (see the module docstring)."""

    def __init__(self, *, seed: int = 0, timers: Timers = SIM_TIMERS, jitter: float = 0.0) -> None:
        self.now = 0.0
        self.timers = timers
        self.random = random.Random(seed)
        self.jitter = jitter
        self.routers: dict[str, SimRouter] = {}
        self.links: dict[str, SimLink] = {}
        self.events: list[tuple[float, str, Event]] = []
        self.protocol_errors: list[tuple[float, str, str, ProtocolError]] = []
        self.delivered = 0
        self._queue: list[tuple[float, int, str, str, str]] = []
        self._order = itertools.count()
        self._last_arrival: dict[tuple[str, str], float] = {}
        self._names = itertools.count(1)
        self._instances = itertools.count(1)

    # -- building ---------------------------------------------------------------------------

    def add_router(self, router_id: str) -> RoutingCore:
        core = RoutingCore(
            router_id, instance=next(self._instances), now=self.now, timers=self.timers
        )
        self.routers[router_id] = SimRouter(core)
        return core

    def core(self, router_id: str) -> RoutingCore:
        return self.routers[router_id].core

    def connect(self, a: str, b: str, cost: int = 1, latency: float = 0.01) -> SimLink:
        """Open a connection; ``NeighbourRefused`` from either end closes it again."""
        link = SimLink(f"{a}-{b}#{next(self._names)}", a, b, cost, latency)
        self.links[link.name] = link
        self.core(a).link_up(link.key(a), b, cost, self.now)
        try:
            self.core(b).link_up(link.key(b), a, cost, self.now)
        except Exception:
            link.up = False
            self.core(a).link_down(link.key(a), self.now)
            self._pump(a)
            raise
        self._pump(a)
        self._pump(b)
        return link

    def between(self, a: str, b: str) -> SimLink | None:
        for link in self.links.values():
            if link.up and {link.a, link.b} == {a, b}:
                return link
        return None

    def cut(self, a: str, b: str) -> None:
        link = self.between(a, b)
        assert link is not None, f"no connection between {a} and {b}"
        self._close(link)

    def silence(self, router_id: str) -> None:
        self.routers[router_id].silent = True

    def resume(self, router_id: str) -> None:
        self.routers[router_id].silent = False

    def restart(self, router_id: str) -> RoutingCore:
        """The router stops (its connections close) and starts again as a new instance
        with no receivers, and connects to the same peers at the same costs."""
        old = [link for link in self.links.values() if link.up and router_id in (link.a, link.b)]
        for link in old:
            self._close(link)
        core = self.add_router(router_id)
        for link in old:
            self.connect(link.a, link.b, link.cost, link.latency)
        return core

    def add_receiver(self, router_id: str, address: str) -> None:
        router = self.routers[router_id]
        router.receivers.add(address)
        router.core.add_address(address, self.now)
        self._pump(router_id)

    def remove_receiver(self, router_id: str, address: str) -> None:
        router = self.routers[router_id]
        router.receivers.discard(address)
        router.core.remove_address(address, self.now)
        self._pump(router_id)

    # -- running ----------------------------------------------------------------------------

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    def run_until(self, end: float, until: Callable[[], bool] | None = None) -> bool:
        """Advance to ``end``, or until ``until()`` holds (checked whenever time moves);
        whether ``until`` was met (False without one)."""
        while True:
            if until is not None and until():
                return True
            due = self._next_due()
            if due is None or due > end:
                self.now = max(self.now, end)
                return until is not None and until()
            self.now = max(self.now, due)
            self._process_due()

    def time_to(self, condition: Callable[[], bool], limit: float) -> float | None:
        """How long from now until ``condition`` holds; None if not within ``limit``."""
        start = self.now
        return self.now - start if self.run_until(start + limit, condition) else None

    def _next_due(self) -> float | None:
        due = [self._queue[0][0]] if self._queue else []
        for router in self.routers.values():
            timer = router.core.get_timer()
            if not router.silent and timer is not None:
                due.append(timer)
        return min(due, default=None)

    def _process_due(self) -> None:
        while self._queue and self._queue[0][0] <= self.now:
            _, _, name, to, wire = heapq.heappop(self._queue)
            link = self.links[name]
            src = link.other(to)
            if not link.up or self.routers[to].silent or self.routers[src].silent:
                continue
            self.delivered += 1
            try:
                self.core(to).receive(link.key(to), json.loads(wire), self.now)
            except ProtocolError as error:
                self.protocol_errors.append((self.now, to, src, error))
                self._close(link)
            self._pump(to)
        for router_id, router in self.routers.items():
            timer = router.core.get_timer()
            if not router.silent and timer is not None and timer <= self.now:
                router.core.handle_timer(self.now)
                self._pump(router_id)
                after = router.core.get_timer()
                assert after is None or after > self.now, f"{router_id}'s timer is stuck"

    def _pump(self, router_id: str) -> None:
        router = self.routers[router_id]
        core = router.core
        for key, body in core.take_messages():
            assert isinstance(key, tuple)
            link = self.links[key[0]]
            if not link.up or router.silent:
                continue
            to = link.other(router_id)
            delay = link.latency + (self.random.uniform(0, self.jitter) if self.jitter else 0.0)
            arrival = max(self.now + delay, self._last_arrival.get((link.name, to), 0.0))
            self._last_arrival[(link.name, to)] = arrival
            heapq.heappush(
                self._queue, (arrival, next(self._order), link.name, to, json.dumps(body))
            )
        while (event := core.next_event()) is not None:
            self.events.append((self.now, router_id, event))

    def _close(self, link: SimLink) -> None:
        if not link.up:
            return
        link.up = False
        for end in (link.a, link.b):
            router = self.routers[end]
            router.core.link_down(link.key(end), self.now)
            self._pump(end)

    # -- the oracle -------------------------------------------------------------------------

    def working_links(self) -> dict[str, dict[str, int]]:
        """Each live router's connections that really carry messages, with their costs."""
        states: dict[str, dict[str, int]] = {r: {} for r, s in self.routers.items() if not s.silent}
        for link in self.links.values():
            if link.up and link.a in states and link.b in states:
                states[link.a][link.b] = link.cost
                states[link.b][link.a] = link.cost
        return states

    def expected_routes(self, router_id: str) -> tuple[dict[str, str], dict[str, int]]:
        """Dijkstra over the working connections: (router -> first hop, router -> cost)."""
        tree = paths.shortest_path_tree(paths.two_way_graph(self.working_links()), router_id)
        costs = {r: c for r, c in tree.cost.items() if r != router_id}
        return paths.first_hops(tree), costs

    def routes(self, router_id: str) -> tuple[dict[str, str], dict[str, int]]:
        """What the core of ``router_id`` says: (router -> first hop, router -> cost)."""
        core = self.core(router_id)
        hops: dict[str, str] = {}
        costs: dict[str, int] = {}
        for other in self.routers:
            link = core.next_hop(other)
            if link is not None:
                assert isinstance(link, tuple)
                hops[other] = self.links[link[0]].other(router_id)
            cost = core.cost_to(other)
            if cost is not None and other != router_id:
                costs[other] = cost
        return hops, costs

    def converged(self) -> bool:
        """Every live router's next hops and costs are those of global Dijkstra."""
        for router_id, router in self.routers.items():
            if router.silent:
                continue
            if self.routes(router_id) != self.expected_routes(router_id):
                return False
            if router.core.reachable() != set(self.expected_routes(router_id)[1]):
                return False
        return True

    def addresses_agree(self) -> bool:
        """Every live router's ``routers_for`` matches the receivers of the routers it
        should reach."""
        for router_id, router in self.routers.items():
            if router.silent:
                continue
            reach = set(self.expected_routes(router_id)[1])
            wanted: dict[str, set[str]] = {}
            for other in reach:
                for address in self.routers[other].receivers:
                    wanted.setdefault(address, set()).add(other)
            core = router.core
            if core.remote_addresses() != set(wanted):
                return False
            if any(core.routers_for(a) != holders for a, holders in wanted.items()):
                return False
        return True

    def path(self, a: str, b: str) -> list[str]:
        """The path a message from ``a`` to ``b`` takes, hop by hop, by each router's own
        next hop (a loop or dead end raises)."""
        hops = [a]
        while hops[-1] != b:
            link = self.core(hops[-1]).next_hop(b)
            assert link is not None, f"{hops[-1]} has no next hop toward {b} ({hops})"
            assert isinstance(link, tuple)
            hops.append(self.links[link[0]].other(hops[-1]))
            assert len(hops) <= len(self.routers), f"a forwarding loop: {hops}"
        return hops

    # -- multicast --------------------------------------------------------------------------

    def flood(self, origin: str, address: str) -> Counter[str]:
        """Send one multicast message for ``address`` from ``origin`` through the network
        as it stands now; how many copies each router accepted (the origin counts its
        own).  A router forwards a copy it accepted on ``multicast_links`` toward the
        routers it knows have a receiver; the next router accepts it only if
        ``valid_origin`` says so.  A copy over a connection that is closed or touches a
        silent router is lost."""
        accepted: Counter[str] = Counter({origin: 1})
        queue = deque([origin])
        budget = 10 * len(self.routers) ** 2
        while queue:
            budget -= 1
            assert budget > 0, "multicast copies without end"
            here = queue.popleft()
            core = self.core(here)
            for key in core.multicast_links(origin, core.routers_for(address)):
                assert isinstance(key, tuple)
                link = self.links[key[0]]
                there = link.other(here)
                if not link.up or self.routers[here].silent or self.routers[there].silent:
                    continue
                if self.core(there).valid_origin(origin, link.key(there)):
                    accepted[there] += 1
                    queue.append(there)
        return accepted

    def receivers_of(self, address: str) -> set[str]:
        return {r for r, router in self.routers.items() if address in router.receivers}
