"""A model of the routers' data plane: at-least-once deliveries, hop by hop, with faults.

Senders attached to random routers send unsettled messages to addresses
whose receivers are attached to other random routers.  Each router a
message reaches decides where it goes with its own routing core at that
moment, by the rules of ``petrel.router.table.AddressTable``:

- ``balanced``: a local receiver or the reachable remote router with the
  least ``cost + deliveries in flight toward it`` (the routers already in
  the trace left out); ``closest``: a local receiver if there is one, else
  the cheapest router; both go on by ``next_hop``;
- ``multicast``: a copy taken from a neighbour only if ``valid_origin``
  says that neighbour is our parent in the ingress router's tree, then a
  copy to each local receiver and on each of ``multicast_links``.

The runtime's failure rules, as ``petrel.router.forwarding`` has them:

- a router that finds itself in the trace releases the message (the loop
  guard, :meth:`DataPlane.loop_guard`);
- a message with nowhere to go is released;
- when a connection closes at a router, every copy it sent on it and has no
  outcome for is settled *modified* (delivery-failed) back toward the sender;
- outcomes travel back hop by hop on the same connection; a multicast
  transit settles with the aggregate (accepted if any copy was, else
  modified if any was, else released);
- a sender resends a message whose delivery came back released or modified
  (after 0.1 s, doubling to 1 s), or that its router lost by dying; it sends
  one delivery of a message at a time, and stops once one is accepted.

Receivers accept every message ``RECEIVER_DELAY`` after it reaches them.
Credit is not modelled: links have room for whatever is offered, so nothing
waits for credit and "released because it never left" does not occur.

Invariants checked as deliveries move (reported to the oracle):

- ``loop``: no router routes one delivery twice (the trace guard holds);
- ``anycast-twice``: a balanced or closest delivery reaches at most one receiver, once;
- ``multicast-duplicate``: a multicast delivery reaches a receiver twice only
  if some router's view of the network changed while it travelled (such
  duplicates are counted as ``duplicates_in_flux``, not reported);
- ``false-accept``: a sender told *accepted* had its delivery received;
- ``stuck``: no delivery stays unanswered longer than the oracle allows while
  its sender's router runs; and at the end, ``undelivered``: every message was
  accepted, and ``held``: no router still holds a delivery.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .simulator import DATA, SETTLE, Conn, Proc

if TYPE_CHECKING:
    from .simulator import Simulator

__all__ = ["ACCEPTED", "MODIFIED", "RELEASED", "Attempt", "DataPlane", "Message", "Traffic"]

ACCEPTED = "accepted"
RELEASED = "released"
MODIFIED = "modified"
BALANCED, CLOSEST, MULTICAST = "balanced", "closest", "multicast"

#: How long a receiver takes to accept what it is given.
RECEIVER_DELAY = 0.001
#: How long after its router (re)starts a client is attached again.
REATTACH = 0.1
#: A sender's resend delay: this, doubled at each failure in a row, up to RESEND_MAX.
RESEND_FIRST = 0.1
RESEND_MAX = 1.0


@dataclass(frozen=True, slots=True)
class Traffic:
    """The clients of a run: addresses, where their receivers are, and the send rate."""

    #: Messages per simulated second, over the whole network.
    rate: float = 20.0
    balanced: int = 3
    closest: int = 2
    multicast: int = 2
    #: Routers with a receiver for each balanced and closest address.
    receivers: int = 2
    #: The share of routers with a receiver for each multicast address.
    multicast_share: float = 0.3


@dataclass(eq=False, slots=True)
class Message:
    id: int
    address: str
    distribution: str
    sender: str
    born: float
    attempts: int = 0
    failures: int = 0
    accepted_at: float | None = None
    seen_by: set[str] = field(default_factory=set)


@dataclass(eq=False, slots=True)
class Attempt:
    """One delivery of a message by its sender (a resend is a new attempt)."""

    message: Message
    number: int
    sent_at: float
    epoch: int = -1
    outcome: str | None = None
    receipts: dict[str, int] = field(default_factory=dict)
    routed_by: set[str] = field(default_factory=set)
    stuck: bool = False


@dataclass(eq=False, slots=True)
class Receiver:
    id: str
    router: str
    address: str
    outstanding: int = 0
    attached: bool = True


@dataclass(eq=False, slots=True)
class Transit:
    """A delivery passing through one router: where its outcome goes, and its copies."""

    attempt: Attempt
    proc: Proc
    upstream: Conn | None
    copy_id: int
    pending: int
    accepted: bool = False
    modified: bool = False
    toward: str | None = None


@dataclass(eq=False, slots=True)
class _RouterData:
    receivers: dict[str, list[Receiver]] = field(default_factory=dict)
    #: address -> remote router -> deliveries in flight toward it (the balanced measure).
    outstanding: dict[str, Counter[str]] = field(default_factory=dict)
    transits: dict[Transit, None] = field(default_factory=dict)
    #: Deliveries from clients of this router without an outcome yet.
    clients: dict[Attempt, None] = field(default_factory=dict)


class DataPlane:
    """Clients and forwarding for one run (see the module docstring)."""

    def __init__(self, sim: Simulator, traffic: Traffic, seed: int) -> None:
        self.sim = sim
        self.traffic = traffic
        self.rng = random.Random(f"{seed}/traffic")
        routers = list(sim.topology.routers)
        self.addresses: dict[str, str] = {}
        for kind, count in (
            (BALANCED, traffic.balanced),
            (CLOSEST, traffic.closest),
            (MULTICAST, traffic.multicast),
        ):
            for n in range(count):
                self.addresses[f"{kind[:5]}-{n}"] = kind
        #: router -> (receiver id, address) of the receivers attached there.
        self.placement: dict[str, list[tuple[str, str]]] = {router: [] for router in routers}
        for address, kind in self.addresses.items():
            if kind == MULTICAST:
                count = max(2, round(len(routers) * traffic.multicast_share))
            else:
                count = traffic.receivers
            chosen = sorted(self.rng.sample(routers, min(count, len(routers))))
            for router in chosen:
                self.placement[router].append((f"{address}@{router}", address))
            if kind == MULTICAST:  # one router with two receivers for it
                self.placement[chosen[0]].append((f"{address}@{chosen[0]}#2", address))
        self.messages: list[Message] = []
        self.live: dict[Attempt, None] = {}
        self.state: dict[Proc, _RouterData] = {}
        self.waiting: dict[str, list[Message]] = {}
        self.stats: Counter[str] = Counter()
        self.latencies: list[float] = []
        self._copy_ids = itertools.count(1)

    # -- traffic ----------------------------------------------------------------------------

    def schedule(self, start: float, end: float) -> None:
        """Messages from random routers to random addresses, Poisson at the traffic rate."""
        rate = self.traffic.rate
        if rate <= 0:
            return
        routers = list(self.sim.topology.routers)
        names = list(self.addresses)
        at = start + self.rng.expovariate(rate)
        while at < end:
            address = self.rng.choice(names)
            sender = self.rng.choice(routers)
            message = Message(len(self.messages), address, self.addresses[address], sender, at)
            self.messages.append(message)
            self.sim.at(at, self._send, message)
            at += self.rng.expovariate(rate)

    def _send(self, message: Message) -> None:
        if message.accepted_at is not None:
            return
        sim = self.sim
        proc = sim.procs[message.sender]
        if not proc.alive:
            self.waiting.setdefault(message.sender, []).append(message)
            return
        message.attempts += 1
        attempt = Attempt(message, message.attempts, sim.now)
        self.live[attempt] = None
        self.state[proc].clients[attempt] = None
        self.stats["attempts"] += 1
        sim.deliver(proc, self._ingress, proc, attempt)

    def _ingress(self, proc: Proc, attempt: Attempt) -> None:
        attempt.sent_at = self.sim.now
        attempt.epoch = self.sim.graph_epoch
        self._forward(proc, attempt, None, 0, (), proc.id)

    def _answer(self, proc: Proc, attempt: Attempt, outcome: str) -> None:
        """The sender hears the outcome of ``attempt``."""
        state = self.state.get(proc)
        if state is not None:
            state.clients.pop(attempt, None)
        self.live.pop(attempt, None)
        attempt.outcome = outcome
        message = attempt.message
        sim = self.sim
        if outcome == ACCEPTED:
            if not attempt.receipts:
                sim.oracle_violation(
                    "false-accept", f"message {message.id} attempt {attempt.number} accepted unseen"
                )
            message.accepted_at = sim.now
            self.latencies.append(sim.now - message.born)
            self.stats["accepted"] += 1
            return
        self.stats[f"resent after {outcome}"] += 1
        message.failures += 1
        delay = min(RESEND_MAX, RESEND_FIRST * 2 ** (message.failures - 1))
        sim.at(sim.now + delay, self._send, message)

    # -- routers coming and going -----------------------------------------------------------

    def started(self, proc: Proc) -> None:
        self.state[proc] = _RouterData()
        sim = self.sim
        sim.at(sim.now + REATTACH, sim.deliver, proc, self._attach, proc)
        for message in self.waiting.pop(proc.id, []):
            sim.at(sim.now + REATTACH, self._send, message)

    def _attach(self, proc: Proc) -> None:
        state = self.state[proc]
        for receiver_id, address in self.placement[proc.id]:
            state.receivers.setdefault(address, []).append(Receiver(receiver_id, proc.id, address))
            proc.core.add_address(address, self.sim.now)
        self.sim.pump(proc)
        if self.sim.oracle is not None:
            self.sim.oracle.receivers_changed()

    def killed(self, proc: Proc) -> None:
        state = self.state.pop(proc, None)
        if state is None:
            return
        for receivers in state.receivers.values():
            for receiver in receivers:
                receiver.attached = False
        for attempt in state.clients:
            self.live.pop(attempt, None)
            attempt.outcome = "lost"
            self.stats["resent after its router died"] += 1
            self.waiting.setdefault(proc.id, []).append(attempt.message)

    def holders(self) -> dict[str, frozenset[str]]:
        """Address -> the live routers with a receiver attached for it."""
        found: dict[str, set[str]] = {}
        for proc, state in self.state.items():
            if not proc.alive:
                continue
            for address, receivers in state.receivers.items():
                if any(r.attached for r in receivers):
                    found.setdefault(address, set()).add(proc.id)
        return {address: frozenset(routers) for address, routers in found.items()}

    # -- forwarding -------------------------------------------------------------------------

    def loop_guard(self, proc: Proc, trace: tuple[str, ...]) -> bool:
        """Whether a message that came with ``trace`` has been here before."""
        return proc.id in trace

    def choose(
        self, proc: Proc, attempt: Attempt, trace: tuple[str, ...], origin: str, came: Conn | None
    ) -> list[tuple[Receiver | Conn, str | None]]:
        """Where the copies go: local receivers and connections, each with the remote
        router a balanced copy is counted toward."""
        state = self.state[proc]
        core = proc.core
        message = attempt.message
        address, distribution = message.address, message.distribution
        consumers = state.receivers.get(address, [])
        conns = self.sim.conns
        if distribution == MULTICAST:
            if came is not None and not core.valid_origin(origin, came.key(proc.id)):
                self.stats["multicast copies not from the parent"] += 1
                return []
            targets: list[tuple[Receiver | Conn, str | None]] = [(r, None) for r in consumers]
            routers = core.routers_for(address)
            if routers:
                links = [conns[key[0]] for key in core.multicast_links(origin, routers)]  # type: ignore[index]
                targets.extend(
                    (conn, None) for conn in sorted(links, key=lambda c: c.other(proc.id))
                )
            return targets
        remote = core.routers_for(address)
        if trace and remote:
            remote = remote.difference(trace)
        best_local: Receiver | None = None
        best = -1
        for receiver in consumers:
            if best_local is None or receiver.outstanding < best:
                best_local, best = receiver, receiver.outstanding
        if distribution == CLOSEST and best_local is not None:
            return [(best_local, None)]
        outstanding = state.outstanding.get(address)
        best_router: str | None = None
        best_remote = -1
        for router in sorted(remote):
            cost = core.cost_to(router)
            if cost is None:
                continue
            measure = cost
            if distribution == BALANCED and outstanding is not None:
                measure += outstanding[router]
            if best_router is None or measure < best_remote:
                best_router, best_remote = router, measure
        if best_local is not None and (best_router is None or best <= best_remote):
            return [(best_local, None)]
        if best_router is None:
            return []
        key = core.next_hop(best_router)
        conn = conns.get(key[0]) if isinstance(key, tuple) else None
        if conn is None or not conn.open.get(proc.id):
            return []
        return [(conn, best_router if distribution == BALANCED else None)]

    def _forward(
        self,
        proc: Proc,
        attempt: Attempt,
        upstream: Conn | None,
        copy_id: int,
        trace: tuple[str, ...],
        origin: str,
    ) -> None:
        message = attempt.message
        if message.distribution != MULTICAST:
            if proc.id in attempt.routed_by:
                self.sim.oracle_violation(
                    "loop",
                    f"{proc.id} routes message {message.id} attempt {attempt.number} again "
                    f"(trace {'>'.join(trace)})",
                )
            attempt.routed_by.add(proc.id)
        targets = self.choose(proc, attempt, trace, origin, upstream)
        transit = Transit(attempt, proc, upstream, copy_id, len(targets))
        if not targets:
            self.stats[
                "released: no route" if upstream is None else "released: no route inside"
            ] += 1
            self._finish(transit, RELEASED)
            return
        state = self.state[proc]
        state.transits[transit] = None
        onward = (*trace, proc.id)
        sim = self.sim
        for target, toward in targets:
            if isinstance(target, Receiver):
                target.outstanding += 1
                self._receipt(attempt, target)
                sim.at(sim.now + RECEIVER_DELAY, self._receiver_settles, proc, transit, target)
                continue
            copy_id = next(self._copy_ids)
            target.unsettled[proc.id][copy_id] = transit
            if toward is not None:
                transit.toward = toward
                state.outstanding.setdefault(message.address, Counter())[toward] += 1
            sim.send(target, proc.id, (DATA, attempt, onward, origin, copy_id))

    def _receipt(self, attempt: Attempt, receiver: Receiver) -> None:
        message = attempt.message
        count = attempt.receipts.get(receiver.id, 0) + 1
        attempt.receipts[receiver.id] = count
        self.stats["received"] += 1
        sim = self.sim
        if message.distribution == MULTICAST:
            if count > 1 and attempt.epoch == sim.graph_epoch:
                sim.oracle_violation(
                    "multicast-duplicate",
                    f"{receiver.id} got message {message.id} attempt {attempt.number} twice "
                    "and no router's view changed meanwhile",
                )
            elif count > 1:
                self.stats["duplicates in flux"] += 1
        elif sum(attempt.receipts.values()) > 1:
            sim.oracle_violation(
                "anycast-twice",
                f"message {message.id} attempt {attempt.number} reached {sorted(attempt.receipts)}",
            )
        if count == 1 and receiver.id in message.seen_by:
            self.stats["redelivered"] += 1
        message.seen_by.add(receiver.id)

    def _receiver_settles(self, proc: Proc, transit: Transit, receiver: Receiver) -> None:
        if receiver.attached:
            self.sim.deliver(proc, self._accepted_by, transit, receiver)

    def _accepted_by(self, transit: Transit, receiver: Receiver) -> None:
        if receiver.attached:
            receiver.outstanding -= 1
            self._copy_done(transit, ACCEPTED)

    def _copy_done(self, transit: Transit, outcome: str) -> None:
        transit.pending -= 1
        if transit.toward is not None:
            state = self.state.get(transit.proc)
            if state is not None:
                state.outstanding[transit.attempt.message.address][transit.toward] -= 1
            transit.toward = None
        if outcome == ACCEPTED:
            transit.accepted = True
        elif outcome == MODIFIED:
            transit.modified = True
        if transit.pending <= 0:
            self._finish(
                transit,
                ACCEPTED if transit.accepted else MODIFIED if transit.modified else RELEASED,
            )

    def _finish(self, transit: Transit, outcome: str) -> None:
        proc = transit.proc
        state = self.state.get(proc)
        if state is None:
            return  # the router died with it
        state.transits.pop(transit, None)
        if transit.upstream is None:
            self._answer(proc, transit.attempt, outcome)
        else:
            self.sim.send(transit.upstream, proc.id, (SETTLE, transit.copy_id, outcome))

    # -- frames from the simulator ----------------------------------------------------------

    def copy_arrived(self, proc: Proc, conn: Conn, frame: tuple[Any, ...]) -> None:
        _, attempt, trace, origin, copy_id = frame
        if self.loop_guard(proc, trace):
            self.stats["released: loop guard"] += 1
            self.sim.send(conn, proc.id, (SETTLE, copy_id, RELEASED))
            return
        self._forward(proc, attempt, conn, copy_id, trace, origin)

    def settled(self, proc: Proc, conn: Conn, frame: tuple[Any, ...]) -> None:
        _, copy_id, outcome = frame
        transit = conn.unsettled[proc.id].pop(copy_id, None)
        if transit is not None:
            self._copy_done(transit, outcome)

    def link_down(self, proc: Proc, conn: Conn) -> None:
        unsettled = conn.unsettled[proc.id]
        transits = list(unsettled.values())
        unsettled.clear()
        self.stats["modified: connection lost"] += len(transits)
        for transit in transits:
            self._copy_done(transit, MODIFIED)

    # -- checks -----------------------------------------------------------------------------

    def all_done(self) -> bool:
        """Every message sent so far has been accepted."""
        return not self.live and self.stats["accepted"] == len(self.messages)

    def check_stuck(self, older_than: float) -> None:
        """Report deliveries sent before ``older_than`` with no outcome yet, from a sender
        whose router runs (a sender on a stopped router waits with it)."""
        procs = self.sim.procs
        for attempt in self.live:
            if attempt.stuck or attempt.sent_at >= older_than:
                continue
            message = attempt.message
            if procs[message.sender].running:
                attempt.stuck = True
                self.sim.oracle_violation(
                    "stuck",
                    f"message {message.id} ({message.address}, from {message.sender}) attempt "
                    f"{attempt.number} sent at {attempt.sent_at:.3f} has no outcome",
                )

    def check_end(self) -> None:
        """At the end of a run: every message accepted, nothing held anywhere."""
        undelivered = [m for m in self.messages if m.accepted_at is None]
        if undelivered:
            first = undelivered[0]
            self.sim.oracle_violation(
                "undelivered",
                f"{len(undelivered)} message(s) never accepted, the first {first.id} "
                f"({first.address} from {first.sender}, {first.attempts} attempts)",
            )
        for proc, state in self.state.items():
            if proc.alive and state.transits:
                self.sim.oracle_violation(
                    "held", f"{proc.id} still holds {len(state.transits)} delivery(ies)"
                )
