"""The router network on a virtual clock: routing cores, connections and the runtime's rules.

:class:`Simulator` runs one :class:`~petrel.router.routing.RoutingCore` per
router and does, for each, what ``petrel router``'s runtime does around it:
it sends what ``take_messages()`` returns, acts on the events, keeps the one
timer armed, dials the configured neighbours again with the connector's
backoff when a connection goes, and drops a connection whose neighbour the
core has lost for silence.  Nothing runs in real time: a heap of
``(time, sequence, action)`` entries is worked through in order, and the
clock jumps to the next one.  The same inputs give the same run.

A connection (:class:`Conn`) carries the control messages, the data
deliveries and their dispositions in one ordered stream per direction, as
the AMQP session over one TCP connection does: a frame arrives one latency
after it is sent, and never before a frame sent earlier the same way.  A
connection is open or closed at each end separately; the end that closes it
sends a close that the other end reads in turn.

The faults (:mod:`.faults`) are applied here:

- a **stopped** router reads nothing and runs no timer; frames for it wait
  in its inbox, with the dispositions of its clients, and are read in order
  when it resumes, before its timers run (as asyncio would on SIGCONT);
- a **killed** router's connections reset; its new incarnation starts with a
  larger instance and dials what it dials at once;
- a **partition** holds the frames on the connections across it until it
  heals (or the connection closes), and dials across it hang;
- a **slow** link has a higher latency; a **stalled** direction delivers
  nothing until the stall ends, then everything, in order.

Dials: the dialling end of an edge tries again after a loss at 0.1 s, then
0.2, 0.4, ... up to every 5 s, each delay spread by ±20 % (seeded per
edge).  A dial to a killed router is refused after one round trip; one to a
stopped or cut-off router hangs until it answers or 10 s pass.  A connection
is up ``HANDSHAKE_RTTS`` round trips after the dial (TCP, SASL, open, attach).

The data plane (:mod:`.dataplane`) and the invariants (:mod:`.oracle`) are
told of everything that concerns them: frames, connections closing,
routers dying and starting, the topology changing.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from petrel.message import Message as AmqpMessage
from petrel.router.routing import (
    AddressesChanged,
    NeighbourLost,
    NeighbourRefused,
    ProtocolError,
    RoutingCore,
    Timers,
    TopologyChanged,
)

from .faults import Fault
from .topology import Edge, Topology

if TYPE_CHECKING:
    from .dataplane import DataPlane
    from .oracle import Oracle

__all__ = ["CLOSE", "CONTROL", "DATA", "SETTLE", "Conn", "Proc", "Simulator"]

#: Frame kinds on a connection (the first item of each frame tuple).
CONTROL = "ctl"
DATA = "data"
SETTLE = "settle"
CLOSE = "close"

#: The runtime's redial backoff (``petrel.router.router.REDIAL``).
REDIAL_INITIAL = 0.1
REDIAL_MAX = 5.0
REDIAL_JITTER = 0.2
#: How long a dial that gets no answer hangs before it fails (the connector's timeout).
CONNECT_TIMEOUT = 10.0
#: Round trips from a dial to both control links attached.
HANDSHAKE_RTTS = 3

Action = Callable[..., None]


@dataclass(eq=False, slots=True)
class Proc:
    """One run (incarnation) of a router: its core and what the runtime keeps beside it."""

    id: str
    incarnation: int
    core: RoutingCore
    alive: bool = True
    #: How many stop faults hold it (SIGSTOP while above 0).
    stopped: int = 0
    #: What arrived while stopped, to be handled in order on resume.
    inbox: deque[tuple[Action, tuple[Any, ...]]] = field(default_factory=deque)
    #: The deadline of the timer entry that counts (others in the heap are stale).
    armed: float | None = None
    #: The core's last path graph seen (to notice when its view of the network changes).
    graph: object = None
    #: Edges it dials whose dial fell due while it was stopped.
    deferred: set[str] = field(default_factory=set)

    @property
    def running(self) -> bool:
        return self.alive and not self.stopped


@dataclass(eq=False, slots=True)
class Conn:
    """One inter-router connection of ``edge``; each end knows it by its own key."""

    name: str
    edge: Edge
    open: dict[str, bool]
    last_arrival: dict[str, float]
    #: Frames held by a partition, per destination end.
    held: dict[str, deque[tuple[Any, ...]]]
    #: A stalled direction delivers nothing before this time, per destination end.
    stall_until: dict[str, float]
    #: Data copies each end sent on it and has no outcome for: copy id -> transit.
    unsettled: dict[str, dict[int, Any]]
    keys: dict[str, tuple[str, str]]

    @classmethod
    def make(cls, name: str, edge: Edge) -> Conn:
        ends = (edge.a, edge.b)
        return cls(
            name,
            edge,
            dict.fromkeys(ends, True),
            dict.fromkeys(ends, 0.0),
            {end: deque() for end in ends},
            dict.fromkeys(ends, 0.0),
            {end: {} for end in ends},
            {end: (name, end) for end in ends},
        )

    def other(self, router: str) -> str:
        return self.edge.b if router == self.edge.a else self.edge.a

    def key(self, router: str) -> tuple[str, str]:
        return self.keys[router]


@dataclass(eq=False, slots=True)
class Connector:
    """The dialling end's connector for one edge."""

    edge: Edge
    rng: random.Random
    conn: Conn | None = None
    #: Failed attempts since the last connection that came up (the backoff's exponent).
    failures: int = 0
    #: Bumped to cancel what is scheduled for this connector.
    token: int = 0
    #: Since when an attempt hangs (the peer is stopped or cut off), or None.
    waiting_since: float | None = None


class Simulator:
    """Routers, connections and faults on a virtual clock (see the module docstring)."""

    #: The runtime drops the connection of a neighbour the core lost for silence (a test
    #: may turn this rule off to see the invariants catch it).
    drop_silent_neighbours = True

    def __init__(
        self,
        topology: Topology,
        *,
        seed: int,
        timers: Timers | None = None,
        measure_bytes: bool = False,
        journal: bool = False,
    ) -> None:
        self.topology = topology
        self.timers = timers or Timers()
        self.seed = seed
        self.now = 0.0
        self._heap: list[tuple[float, int, Action, tuple[Any, ...]]] = []
        self._order = itertools.count()
        self._conn_names = itertools.count(1)
        self._fault_numbers = itertools.count(1)
        self.procs: dict[str, Proc] = {}
        self.incarnations: Counter[str] = Counter()
        self.conns: dict[str, Conn] = {}
        self.connectors = {
            edge.name: Connector(edge, random.Random(f"{seed}/dial/{edge.name}"))
            for edge in topology.edges
        }
        self._edges_of: dict[str, list[Edge]] = {router: [] for router in topology.routers}
        for edge in topology.edges:
            self._edges_of[edge.a].append(edge)
            self._edges_of[edge.b].append(edge)
        #: Partitions: how many cut each pair of routers (sorted pair).
        self.cuts: Counter[tuple[str, str]] = Counter()
        #: Raised latencies of slow links, by edge name.
        self.slow: dict[str, list[float]] = {}
        #: Bumped whenever any router's path graph changes (its view of the network).
        self.graph_epoch = 0
        #: Control traffic: per phase, messages and bytes sent, and per router messages.
        self.phase = "warmup"
        self.control_messages: Counter[str] = Counter()
        self.control_bytes: Counter[str] = Counter()
        self.control_by_router: dict[str, Counter[str]] = {}
        self.measure_bytes = measure_bytes
        self._sizes: dict[str, int] = {}
        self.journal: list[tuple[float, str]] | None = [] if journal else None
        # Set by the scenario before the run: the data plane and the invariants.
        self.data: DataPlane | None = None
        self.oracle: Oracle | None = None
        #: Stop the run as soon as an invariant of this kind is broken ("*": any kind).
        self.stop_on: str | None = None

    # -- the clock --------------------------------------------------------------------------

    def at(self, when: float, action: Action, *args: Any) -> None:
        heapq.heappush(self._heap, (when, next(self._order), action, args))

    def run_until(self, end: float, until: Callable[[], bool] | None = None) -> bool:
        """Work through the heap up to ``end`` (or until ``until()`` holds, checked as time
        moves); whether ``until`` was met."""
        heap = self._heap
        oracle = self.oracle
        while heap and heap[0][0] <= end:
            when, _, action, args = heapq.heappop(heap)
            if when > self.now:
                if oracle is not None:
                    oracle.settled_instant()
                    if self.stop_on is not None and self.halted():
                        return False
                if until is not None and until():
                    return True
                self.now = when
            action(*args)
        if oracle is not None:
            oracle.settled_instant()
        self.now = max(self.now, end)
        return until is not None and until()

    def halted(self) -> bool:
        """Whether the invariant ``stop_on`` names has been broken."""
        oracle = self.oracle
        if oracle is None or self.stop_on is None or not oracle.violation_counts:
            return False
        return self.stop_on == "*" or self.stop_on in oracle.violation_counts

    def oracle_violation(self, kind: str, detail: str) -> None:
        if self.oracle is not None:
            self.oracle.violation(kind, detail)

    def note(self, text: str) -> None:
        if self.journal is not None:
            self.journal.append((self.now, text))

    # -- routers ----------------------------------------------------------------------------

    def start(self, router: str) -> Proc:
        """Start a (new) run of ``router``: a larger instance, dialling its edges at once."""
        self.incarnations[router] += 1
        number = self.incarnations[router]
        core = RoutingCore(router, instance=number, now=self.now, timers=self.timers)
        proc = self.procs[router] = Proc(router, number, core)
        self.control_by_router.setdefault(router, Counter())
        self.graph_epoch += 1
        if number > 1:
            self.note(f"{router} starts again (instance {number})")
        for edge in self._edges_of[router]:
            if edge.a == router:
                connector = self.connectors[edge.name]
                connector.failures = 0
                self._dial_later(connector, 0.0)
        if self.data is not None:
            self.data.started(proc)
        self._changed()
        self.pump(proc)
        return proc

    def kill(self, router: str) -> None:
        """The router's process dies: its connections reset, its clients lose it."""
        proc = self.procs[router]
        if not proc.alive:
            return
        self.note(f"{router} killed")
        proc.alive = False
        proc.inbox.clear()
        self.graph_epoch += 1
        for conn in list(self.conns.values()):
            if conn.open.get(router):
                conn.open[router] = False
                conn.unsettled[router].clear()
                if conn.open[conn.other(router)]:
                    self._emit(conn, router, (CLOSE,))
                else:
                    del self.conns[conn.name]
        for edge in self._edges_of[router]:
            if edge.a == router:
                connector = self.connectors[edge.name]
                connector.token += 1
                connector.conn = None
                connector.waiting_since = None
        if self.data is not None:
            self.data.killed(proc)
        self._changed()

    def stop(self, router: str) -> int | None:
        """SIGSTOP; the incarnation stopped (to resume the same one), or None if it is dead."""
        proc = self.procs[router]
        if not proc.alive:
            return None
        proc.stopped += 1
        if proc.stopped == 1:
            self.note(f"{router} stopped")
            self._changed()
        return proc.incarnation

    def resume(self, router: str, incarnation: int) -> None:
        proc = self.procs[router]
        if proc.incarnation != incarnation or not proc.alive or not proc.stopped:
            return
        proc.stopped -= 1
        if proc.stopped:
            return
        self.note(f"{router} resumed ({len(proc.inbox)} frames waiting)")
        while proc.inbox and proc.running:
            action, args = proc.inbox.popleft()
            action(*args)
        for name in sorted(proc.deferred):
            connector = self.connectors[name]
            self._attempt(connector)
        proc.deferred.clear()
        self._unblocked()
        proc.armed = None
        self._changed()
        self.pump(proc)

    def deliver(self, proc: Proc, action: Action, *args: Any) -> None:
        """Run ``action`` on ``proc`` now, or when it resumes if it is stopped; never if it
        died."""
        if not proc.alive:
            return
        if proc.stopped:
            proc.inbox.append((action, args))
        else:
            action(*args)

    def running(self, router: str) -> bool:
        return self.procs[router].running

    # -- the core's outputs -----------------------------------------------------------------

    def pump(self, proc: Proc) -> None:
        """Do what the core asks after a call: send its messages, act on its events, arm
        its timer (the runtime's ``Network.service``)."""
        if not proc.alive:
            return
        core = proc.core
        out = core.take_messages()
        if out:
            self._count(proc.id, out)
            conns = self.conns
            for key, body in out:
                assert isinstance(key, tuple)
                self.send(conns[key[0]], proc.id, (CONTROL, body))
        lost: list[NeighbourLost] = []
        oracle = self.oracle
        while (event := core.next_event()) is not None:
            if isinstance(event, TopologyChanged):
                if oracle is not None:
                    oracle.routes_moved(proc.id)
            elif isinstance(event, NeighbourLost):
                self.note(f"{proc.id} lost {event.peer_id}: {event.reason}")
                if not event.reason.startswith("connection"):
                    lost.append(event)
            elif isinstance(event, AddressesChanged) and oracle is not None:
                oracle.addresses_moved(proc.id)
        # The graph object is replaced only when it changes (Routes.recompute): a cheap way to
        # see that this router's view of the network moved.
        graph = core._routes.graph
        if graph is not proc.graph:
            proc.graph = graph
            self.graph_epoch += 1
        self.arm(proc)
        if lost and self.drop_silent_neighbours:
            for event in lost:
                for conn in list(self.conns.values()):
                    if conn.open.get(proc.id) and conn.other(proc.id) == event.peer_id:
                        self.note(f"{proc.id} drops its connection to {event.peer_id}")
                        self.close_end(conn, proc.id, notify=True)

    def _count(self, router: str, out: list[tuple[Hashable, dict[str, Any]]]) -> None:
        phase = self.phase
        self.control_messages[phase] += len(out)
        self.control_by_router[router][phase] += len(out)
        if not self.measure_bytes:
            return
        sizes = self._sizes
        total = 0
        for _, body in out:
            key = repr(body)
            size = sizes.get(key)
            if size is None:
                if len(sizes) > 200_000:
                    sizes.clear()
                size = sizes[key] = len(AmqpMessage(body=body).encode())
            total += size
        self.control_bytes[phase] += total

    def arm(self, proc: Proc) -> None:
        deadline = proc.core.get_timer()
        if deadline is None:
            proc.armed = None
        elif deadline != proc.armed:
            proc.armed = deadline
            self.at(max(deadline, self.now), self._timer, proc, deadline)

    def _timer(self, proc: Proc, deadline: float) -> None:
        if proc.armed != deadline or not proc.running:
            return
        proc.armed = None
        proc.core.handle_timer(self.now)
        self.pump(proc)
        after = proc.core.get_timer()
        if after is not None and after <= self.now and self.oracle is not None:
            self.oracle.violation("timer", f"{proc.id}'s timer is due again at once ({after})")

    # -- connections ------------------------------------------------------------------------

    def latency(self, edge: Edge) -> float:
        raised = self.slow.get(edge.name)
        return max(edge.latency, *raised) if raised else edge.latency

    def is_cut(self, a: str, b: str) -> bool:
        return bool(self.cuts) and self.cuts[(a, b) if a < b else (b, a)] > 0

    def send(self, conn: Conn, src: str, frame: tuple[Any, ...]) -> bool:
        """Send ``frame`` from ``src`` on ``conn``; False when that end is closed."""
        if not conn.open[src]:
            return False
        self._emit(conn, src, frame)
        return True

    def _emit(self, conn: Conn, src: str, frame: tuple[Any, ...]) -> None:
        dest = conn.other(src)
        held = conn.held[dest]
        if held or self.is_cut(src, dest):
            held.append(frame)
        else:
            self._transmit(conn, dest, frame)

    def _transmit(self, conn: Conn, dest: str, frame: tuple[Any, ...]) -> None:
        latency = self.latency(conn.edge)
        when = self.now + latency
        stall = conn.stall_until[dest]
        if stall > self.now:
            when = max(when, stall + latency)
        if when < conn.last_arrival[dest]:
            when = conn.last_arrival[dest]
        conn.last_arrival[dest] = when
        self.at(when, self._arrive, conn, dest, frame)

    def _arrive(self, conn: Conn, dest: str, frame: tuple[Any, ...]) -> None:
        if conn.open[dest]:
            self.deliver(self.procs[dest], self._handle, conn, dest, frame)

    def _handle(self, conn: Conn, dest: str, frame: tuple[Any, ...]) -> None:
        if not conn.open[dest]:
            return
        proc = self.procs[dest]
        kind = frame[0]
        if kind == CONTROL:
            try:
                proc.core.receive(conn.key(dest), frame[1], self.now)
            except ProtocolError as error:
                if self.oracle is not None:
                    self.oracle.violation(
                        "protocol-error", f"{dest} from {conn.other(dest)}: {error}"
                    )
                self.pump(proc)
                self.close_end(conn, dest, notify=True)
                return
            self.pump(proc)
        elif kind == CLOSE:
            self.close_end(conn, dest, notify=False)
        elif self.data is not None:
            if kind == DATA:
                self.data.copy_arrived(proc, conn, frame)
            else:
                self.data.settled(proc, conn, frame)

    def close_end(self, conn: Conn, end: str, *, notify: bool) -> None:
        """``end`` closes ``conn`` (or learns that it closed): the core and the data plane
        hear of it; ``notify`` sends the close to the other end."""
        if not conn.open[end]:
            return
        conn.open[end] = False
        other = conn.other(end)
        if notify and conn.open[other]:
            self._emit(conn, end, (CLOSE,))
        if not conn.open[other]:
            self.conns.pop(conn.name, None)
        proc = self.procs[end]
        if proc.alive:
            proc.core.link_down(conn.key(end), self.now)
            if self.data is not None:
                self.data.link_down(proc, conn)
            self.pump(proc)
        self._changed()
        connector = self.connectors[conn.edge.name]
        if end == conn.edge.a and connector.conn is conn:
            connector.conn = None
            self.note(f"connection {conn.name} closed at {end}: dialling {other} again")
            self._dial_later(connector, self._backoff(connector, 0))

    def drop(self, a: str, b: str) -> None:
        """The connection between ``a`` and ``b`` breaks: both ends see it (a stopped end
        when it resumes); what was on the wire is lost."""
        for conn in list(self.conns.values()):
            if {conn.edge.a, conn.edge.b} != {a, b} or not (conn.open[a] or conn.open[b]):
                continue
            self.note(f"connection {conn.name} dropped")
            for end in (a, b):
                if conn.open[end]:
                    proc = self.procs[end]
                    if proc.stopped:
                        proc.inbox.append((self._handle, (conn, end, (CLOSE,))))
                    else:
                        self.close_end(conn, end, notify=False)
            # What was on the wire is lost: frames still in flight find the connection
            # closed where they arrive (a stopped end reads the close first), and those a
            # partition holds are dropped here.
            for end in (a, b):
                conn.held[end].clear()

    def open_conns(self) -> list[Conn]:
        return [
            conn
            for conn in self.conns.values()
            if conn.open[conn.edge.a] and conn.open[conn.edge.b]
        ]

    # -- dialling ---------------------------------------------------------------------------

    def _backoff(self, connector: Connector, attempt: int) -> float:
        base = min(REDIAL_MAX, REDIAL_INITIAL * 2.0 ** min(attempt, 16))
        return base * (1.0 + connector.rng.uniform(-REDIAL_JITTER, REDIAL_JITTER))

    def _dial_later(self, connector: Connector, delay: float) -> None:
        connector.token += 1
        connector.waiting_since = None
        self.at(self.now + delay, self._dial, connector, connector.token)

    def _dial(self, connector: Connector, token: int) -> None:
        if token != connector.token:
            return
        dialler = self.procs[connector.edge.a]
        if not dialler.alive:
            return
        if dialler.stopped:
            dialler.deferred.add(connector.edge.name)
            return
        self._attempt(connector)

    def _attempt(self, connector: Connector) -> None:
        edge = connector.edge
        peer = self.procs.get(edge.b)
        rtt = 2 * self.latency(edge)
        token = connector.token
        if peer is None or not peer.alive:
            self.at(self.now + rtt, self._failed, connector, token)
        elif peer.stopped or self.is_cut(edge.a, edge.b):
            connector.waiting_since = self.now
            self.at(self.now + CONNECT_TIMEOUT, self._timed_out, connector, token)
        else:
            self.at(self.now + HANDSHAKE_RTTS * rtt, self._establish, connector, token)

    def _unblocked(self) -> None:
        """A router resumed or a partition healed: hanging dials that can go on, do."""
        for connector in self.connectors.values():
            if connector.waiting_since is None:
                continue
            edge = connector.edge
            peer = self.procs[edge.b]
            if peer.running and not self.is_cut(edge.a, edge.b):
                connector.waiting_since = None
                rtt = 2 * self.latency(edge)
                self.at(
                    self.now + HANDSHAKE_RTTS * rtt, self._establish, connector, connector.token
                )

    def _timed_out(self, connector: Connector, token: int) -> None:
        if token == connector.token and connector.waiting_since is not None:
            connector.waiting_since = None
            self._failed(connector, token)

    def _failed(self, connector: Connector, token: int) -> None:
        if token != connector.token:
            return
        connector.failures += 1
        self._dial_later(connector, self._backoff(connector, connector.failures))

    def _establish(self, connector: Connector, token: int) -> None:
        if token != connector.token:
            return
        edge = connector.edge
        a, b = self.procs[edge.a], self.procs[edge.b]
        if not (a.running and b.running) or self.is_cut(edge.a, edge.b):
            self._failed(connector, token)
            return
        conn = Conn.make(f"{edge.name}#{next(self._conn_names)}", edge)
        self.conns[conn.name] = conn
        try:
            a.core.link_up(conn.key(edge.a), edge.b, edge.cost, self.now)
        except NeighbourRefused as refused:
            self.note(f"{edge.a} refuses {conn.name}: {refused}")
            conn.open = dict.fromkeys(conn.open, False)
            del self.conns[conn.name]
            self._failed(connector, token)
            return
        try:
            b.core.link_up(conn.key(edge.b), edge.a, edge.cost, self.now)
        except NeighbourRefused as refused:
            self.note(f"{edge.b} refuses {conn.name}: {refused}")
            conn.open[edge.b] = False
            conn.open[edge.a] = False
            del self.conns[conn.name]
            a.core.link_down(conn.key(edge.a), self.now)
            self.pump(a)
            self._failed(connector, token)
            return
        connector.conn = conn
        connector.failures = 0
        self.note(f"connection {conn.name} up")
        self._changed()
        self.pump(a)
        self.pump(b)

    # -- faults -----------------------------------------------------------------------------

    def apply(self, fault: Fault, start: float, end: float) -> None:
        """Schedule ``fault`` (its times count from ``start``); whatever it does is undone
        by ``end`` at the latest."""
        at = start + fault.at
        if at >= end:
            return
        until = min(at + fault.duration, end)
        self.at(at, self._begin_fault, fault, until)

    def _begin_fault(self, fault: Fault, until: float) -> None:
        kind, target = fault.kind, fault.target
        if any(router not in self.procs for router in target):
            return
        number = next(self._fault_numbers)
        if kind == "drop":
            if not any({c.edge.a, c.edge.b} == set(target) for c in self.conns.values()):
                return
            self._fault_note(fault, number, began=True)
            self.drop(*target)
            self._fault_note(fault, number, began=False)  # recovered once it is back
        elif kind == "stop":
            if not self.procs[target[0]].alive:
                return
            self._fault_note(fault, number, began=True)
            incarnation = self.stop(target[0])
            self.at(until, self._end_stop, fault, number, incarnation)
        elif kind == "restart":
            if not self.procs[target[0]].alive:
                return
            self._fault_note(fault, number, began=True)
            self.kill(target[0])
            self.at(until, self._end_restart, fault, number)
        elif kind == "partition":
            side = set(target)
            pairs = [
                (min(e.a, e.b), max(e.a, e.b))
                for e in self.topology.edges
                if (e.a in side) != (e.b in side)
            ]
            if not pairs:
                return
            self._fault_note(fault, number, began=True)
            for pair in pairs:
                self.cuts[pair] += 1
            self._changed()
            self.at(until, self._heal, fault, number, pairs)
        elif kind == "slow":
            edge = self.topology.edge(*target)
            if edge is not None:
                self.note(f"fault: {fault.spec()}")
                self.slow.setdefault(edge.name, []).append(fault.latency)
                self.at(until, self._unslow, edge.name, fault.latency)
        elif kind == "reorder":
            self.note(f"fault: {fault.spec()}")
            src, dest = target
            for conn in self.conns.values():
                if {conn.edge.a, conn.edge.b} == {src, dest} and conn.open[src]:
                    conn.stall_until[dest] = max(conn.stall_until[dest], until)

    def _fault_note(self, fault: Fault, number: int, *, began: bool) -> None:
        if began:
            self.note(f"fault: {fault.spec()}")
        if self.oracle is not None:
            if began:
                self.oracle.fault_began(fault.kind, number)
            else:
                self.oracle.fault_ended(fault.kind, number)

    def _end_stop(self, fault: Fault, number: int, incarnation: int | None) -> None:
        self._fault_note(fault, number, began=False)
        if incarnation is not None:
            self.resume(fault.target[0], incarnation)

    def _end_restart(self, fault: Fault, number: int) -> None:
        self._fault_note(fault, number, began=False)
        if not self.procs[fault.target[0]].alive:
            self.start(fault.target[0])

    def _heal(self, fault: Fault, number: int, pairs: list[tuple[str, str]]) -> None:
        self._fault_note(fault, number, began=False)
        self.note("partition healed")
        for pair in pairs:
            self.cuts[pair] -= 1
            if self.cuts[pair] <= 0:
                del self.cuts[pair]
        for conn in self.conns.values():
            for dest in (conn.edge.a, conn.edge.b):
                held = conn.held[dest]
                src = conn.other(dest)
                if held and not self.is_cut(src, dest):
                    frames = list(held)
                    held.clear()
                    for frame in frames:
                        self._transmit(conn, dest, frame)
        self._unblocked()
        self._changed()

    def _unslow(self, name: str, latency: float) -> None:
        self.slow[name].remove(latency)
        if not self.slow[name]:
            del self.slow[name]

    # -- the truth --------------------------------------------------------------------------

    def _changed(self) -> None:
        if self.oracle is not None:
            self.oracle.topology_changed()

    def working_links(self) -> dict[str, dict[str, int]]:
        """What really carries messages: every running router, with its connections that
        are open at both ends, to running routers, not cut by a partition."""
        states: dict[str, dict[str, int]] = {
            router: {} for router, proc in self.procs.items() if proc.running
        }
        for conn in self.conns.values():
            a, b = conn.edge.a, conn.edge.b
            if (
                conn.open[a]
                and conn.open[b]
                and a in states
                and b in states
                and not self.is_cut(a, b)
            ):
                states[a][b] = conn.edge.cost
                states[b][a] = conn.edge.cost
        return states

    def restored(self) -> bool:
        """Every edge between running routers not cut apart has an open connection."""
        up = {conn.edge.name for conn in self.open_conns()}
        for edge in self.topology.edges:
            if edge.name in up:
                continue
            if self.running(edge.a) and self.running(edge.b) and not self.is_cut(edge.a, edge.b):
                return False
        return True
