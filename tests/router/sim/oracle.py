"""The invariants of a simulated run, checked as it goes, and the convergence clock.

:class:`Oracle` knows the truth the routers have to find: the connections
that really carry messages (open at both ends, between running routers, not
cut by a partition).  From it, Dijkstra with the protocol's own tie-break
(:mod:`petrel.router.routing.paths`) gives every router's expected next hops
and costs.  What the oracle checks:

- **paths**: once the working topology has not changed for ``settle``
  seconds, every running router's ``reachable()``, ``cost_to()`` and
  ``next_hop()`` agree with Dijkstra on it, and each next hop is a
  connection open at that router;
- **addresses**: at the same moments, ``routers_for(address)`` on every
  running router is the set of routers it reaches that have a receiver for
  the address;
- **stuck** (through the data plane): no delivery goes unanswered for longer
  than ``stuck_after`` while the router its sender is attached to runs;
- **inconsistent**: at every change of one core's paths or addresses, its
  answers agree with each other: ``next_hop`` exactly for the routers in
  ``reachable()``, and ``routers_for`` never naming a router it does not
  reach (an unreachable router's addresses count for nothing at once);
- the data plane's own invariants (:mod:`.dataplane`) report here too, as
  do protocol errors and a core timer that is due again at once.

Convergence is tracked cheaply as the run goes: a router is re-checked only
after its paths moved (``TopologyChanged``) or the working topology changed,
and the check stops at the first router that disagrees.  Each fault's onset
and recovery is timed to the first moment the whole network agrees with the
truth again (a recovery also waits until every edge that can be up is up);
the times of faults that no other fault overlapped are also kept apart.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from petrel.router.routing import paths

if TYPE_CHECKING:
    from .simulator import Simulator

__all__ = ["Oracle", "Violation"]

#: Violations kept in full, of each kind (more are only counted).
MAX_KEPT = 10


@dataclass(frozen=True, slots=True)
class Violation:
    """An invariant broken: which (``kind``), when, and what was seen."""

    kind: str
    at: float
    detail: str

    def __str__(self) -> str:
        return f"[{self.at:.3f}] {self.kind}: {self.detail}"


@dataclass(slots=True)
class _Pending:
    label: str
    since: float
    recovery: bool
    #: Which fault (its onset and its end share it).
    fault: int
    #: Another fault began or ended while this one was awaiting convergence.
    overlapped: bool = False


class Oracle:
    """The checks of one run (see the module docstring)."""

    def __init__(self, sim: Simulator, *, settle: float, stuck_after: float) -> None:
        self.sim = sim
        self.settle = settle
        self.stuck_after = stuck_after
        self.violations: list[Violation] = []
        self.violation_counts: dict[str, int] = defaultdict(int)
        #: When the working topology (or the receivers) last changed.
        self.last_change = 0.0
        self.stable_checks = 0
        self._checked_change = -1.0
        #: Convergence times, by label (``drop``, ``drop recovery``, ...), and those of the
        #: faults no other fault overlapped.
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.samples_alone: dict[str, list[float]] = defaultdict(list)
        #: Faults whose convergence is still awaited.
        self.pending: list[_Pending] = []
        self.converged = False
        self._graph: paths.Graph | None = None
        self._expected: dict[str, tuple[dict[str, str], dict[str, int], frozenset[str]]] = {}
        self._suspects: set[str] = set()
        self._mismatched: set[str] = set()
        self._recheck_all = True
        self._evaluate = True

    # -- reports ----------------------------------------------------------------------------

    def violation(self, kind: str, detail: str) -> None:
        self.violation_counts[kind] += 1
        if self.violation_counts[kind] <= MAX_KEPT:
            self.violations.append(Violation(kind, self.sim.now, detail))

    # -- what the simulator tells us --------------------------------------------------------

    def topology_changed(self) -> None:
        """The working topology may have changed: everyone is suspect again."""
        self._graph = None
        self._expected.clear()
        self._recheck_all = True
        self._evaluate = True
        self._changed()

    def receivers_changed(self) -> None:
        self._changed()

    def routes_moved(self, router: str) -> None:
        self._suspects.add(router)
        self._evaluate = True
        self.check_consistent(router)

    def addresses_moved(self, router: str) -> None:
        self.check_consistent(router)

    def check_consistent(self, router: str) -> None:
        """What one core says agrees with itself, at every change: a next hop exactly for
        the routers it reaches, and addresses only on routers it reaches."""
        core = self.sim.procs[router].core
        reachable = core.reachable()
        for other in self.sim.topology.routers:
            if (core.next_hop(other) is not None) != (other in reachable):
                self.violation(
                    "inconsistent", f"{router}: next_hop({other}) disagrees with reachable()"
                )
                return
        data = self.sim.data
        for address in data.addresses if data is not None else ():
            beyond = core.routers_for(address) - reachable
            if beyond:
                self.violation(
                    "inconsistent",
                    f"{router}: routers_for({address!r}) holds unreachable {sorted(beyond)}",
                )
                return

    def fault_began(self, kind: str, fault: int) -> None:
        """Fault number ``fault`` began: time the network's convergence from now."""
        self._await(_Pending(kind, self.sim.now, False, fault))

    def fault_ended(self, kind: str, fault: int) -> None:
        """It ended: time until the network has converged with every link back."""
        self._await(_Pending(f"{kind} recovery", self.sim.now, True, fault))

    def _await(self, entry: _Pending) -> None:
        for other in self.pending:
            if other.fault != entry.fault:
                other.overlapped = entry.overlapped = True
        self.pending.append(entry)
        self._evaluate = True

    def settled_instant(self) -> None:
        """Everything due at this instant has happened (the clock is about to move)."""
        if not self._evaluate:
            return
        self._evaluate = False
        self.converged = self._converged()
        if self.converged and self.pending:
            self._resolve()

    def _changed(self) -> None:
        sim = self.sim
        self.last_change = sim.now
        sim.at(sim.now + self.settle, self._stable_check)

    # -- convergence ------------------------------------------------------------------------

    def _converged(self) -> bool:
        if self._recheck_all:
            self._recheck_all = False
            self._suspects = set(self.sim.procs)
        for router in sorted(self._mismatched):
            if not self.matches(router):
                return False
            self._mismatched.discard(router)
        while self._suspects:
            router = self._suspects.pop()
            if not self.matches(router):
                self._mismatched.add(router)
                return False
        return True

    def _resolve(self) -> None:
        now = self.sim.now
        restored: bool | None = None
        waiting = []
        for entry in self.pending:
            if entry.recovery:
                if restored is None:
                    restored = self.sim.restored()
                if not restored:
                    waiting.append(entry)
                    continue
            self.samples[entry.label].append(now - entry.since)
            if not entry.overlapped:
                self.samples_alone[entry.label].append(now - entry.since)
        self.pending = waiting

    def expected(self, router: str) -> tuple[dict[str, str], dict[str, int], frozenset[str]]:
        """Dijkstra on the working topology from ``router``: first hops, costs, reachable."""
        found = self._expected.get(router)
        if found is None:
            if self._graph is None:
                self._graph = paths.two_way_graph(self.sim.working_links())
            tree = paths.shortest_path_tree(self._graph, router)
            costs = {other: cost for other, cost in tree.cost.items() if other != router}
            found = self._expected[router] = (paths.first_hops(tree), costs, frozenset(costs))
        return found

    def matches(self, router: str) -> bool:
        return self.mismatch(router) is None

    def mismatch(self, router: str) -> str | None:
        """How ``router``'s paths differ from the truth (None: they do not)."""
        proc = self.sim.procs[router]
        if not proc.running:
            return None
        hops, costs, reachable = self.expected(router)
        core = proc.core
        if core.reachable() != reachable:
            missing = sorted(reachable - core.reachable())
            extra = sorted(core.reachable() - reachable)
            return f"{router} reaches {extra} it should not and not {missing}"
        conns = self.sim.conns
        for other, cost in costs.items():
            if core.cost_to(other) != cost:
                return f"{router}: cost to {other} is {core.cost_to(other)}, not {cost}"
            key = core.next_hop(other)
            conn = conns.get(key[0]) if isinstance(key, tuple) else None
            if conn is None or not conn.open.get(router):
                return f"{router}: next hop to {other} is {key}, not an open connection"
            if conn.other(router) != hops[other]:
                return f"{router}: next hop to {other} is {conn.other(router)}, not {hops[other]}"
        return None

    # -- stable moments ---------------------------------------------------------------------

    def _stable_check(self) -> None:
        sim = self.sim
        if sim.now - self.last_change < self.settle - 1e-9:
            return
        if self._checked_change == self.last_change:
            return  # already checked this still moment (many changes came at one instant)
        self.check_stable()

    def check_stable(self) -> None:
        """The network has been still for ``settle``: paths and addresses must be right."""
        self.stable_checks += 1
        self._checked_change = self.last_change
        sim = self.sim
        for router in sorted(sim.procs):
            problem = self.mismatch(router)
            if problem is not None:
                self.violation("paths", f"still for {self.settle:g} s, yet {problem}")
                break
        if sim.data is not None:
            problem = self.addresses_problem()
            if problem is not None:
                self.violation("addresses", f"still for {self.settle:g} s, yet {problem}")

    def addresses_problem(self) -> str | None:
        sim = self.sim
        data = sim.data
        assert data is not None
        holders = data.holders()
        for router in sorted(sim.procs):
            proc = sim.procs[router]
            if not proc.running:
                continue
            _, _, reachable = self.expected(router)
            core = proc.core
            for address in data.addresses:
                want = holders.get(address, frozenset()) & reachable
                have = core.routers_for(address)
                if have != want:
                    return (
                        f"{router}: routers_for({address!r}) is {sorted(have)}, not {sorted(want)}"
                    )
        return None
