"""The router's data plane: in-links, out-links, and the deliveries in transit between them.

A message enters a router on an :class:`InLink` (a client's sending link, or
a data link from a neighbouring router) and leaves on one or more
:class:`OutLink` (a client's receiving link, or a data link to a neighbour).
Between the two it is a :class:`Transit`: the ingress delivery, the copies
still waiting for credit, the copies sent and not yet settled, and the
outcome so far.  The router keeps no messages of its own: a copy waits on
its out-link only until that link has credit, and an in-link's credit is
its window less the transits it still holds, so the bytes inside a router
are bounded by the credit it granted (backpressure flows through credit
only).

Outcomes travel back along the path: a copy's outcome settles the transit,
which tells the ingress delivery.  A single copy passes its outcome through
unchanged (a rejection keeps its error, a modification its flags); several
copies (multicast) settle with the aggregate: rejected if any copy was
rejected, else accepted if any was accepted, else modified if any was, else
released.  When an out-link dies, copies that never left are released and
copies sent but unsettled are modified with ``delivery-failed``: no delivery
waits for ever.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

from ..engine import Delivery, Link, LinkState
from ..server.connection import LinkHandler
from ..spec import Accepted, Modified, Rejected, Released, SenderSettleMode
from ..spec.transport import ReceiverSettleMode

if TYPE_CHECKING:
    from ..driver import AmqpProtocol
    from .table import AddressTable

__all__ = ["InLink", "OutLink", "Stats", "Toward", "Transit"]

log = logging.getLogger("petrel.router")

ACCEPTED: Final = Accepted()
RELEASED: Final = Released()
FAILED: Final = Modified(delivery_failed=True)
_TERMINAL: Final = (Accepted, Rejected, Released, Modified)
#: Read once: compiled, a module constant is a C global, not a lookup per delivery.
_SETTLE_SECOND: Final = ReceiverSettleMode.SECOND
#: The terminus capability by which a sender asks the network to forward its released
#: deliveries again (a path broke, the receiver went) instead of handing them back.
CAP_RESEND_RELEASED: Final = "petrel:resend-released"
#: How often, and how far apart (growing), a released delivery is forwarded again.
RESEND_ATTEMPTS: Final = 10
RESEND_DELAY: Final = 0.2


class Stats:
    """A router's delivery counters (read by management)."""

    __slots__ = (
        "delayed_1s",
        "delayed_10s",
        "delivered_in",
        "delivered_out",
        "dropped_loops",
        "modified",
        "released",
        "resent",
    )

    def __init__(self) -> None:
        #: Deliveries whose outcome took over 1 s, and over 10 s, to come back.
        self.delayed_1s = 0
        self.delayed_10s = 0
        #: Released deliveries the router forwarded again for a sender that asked.
        self.resent = 0
        self.delivered_in = 0
        self.delivered_out = 0
        self.released = 0
        self.modified = 0
        #: Messages that came back to a router they had passed (the trace said so).
        self.dropped_loops = 0


class Toward(Protocol):
    """What a balanced copy reports to as it ends (an address entry)."""

    def copy_done(self, router: str) -> None: ...


class Transit:
    """One message on its way through this router (see the module docstring).

    ``delivery`` is the ingress delivery to answer (``None`` when it came
    pre-settled, or the router made the message itself); ``source`` the
    in-link holding it against its credit until every copy has left.
    """

    __slots__ = (
        "accepted",
        "attempt",
        "born",
        "delivery",
        "modified",
        "multi",
        "payload",
        "rejected",
        "source",
        "state",
        "toward",
        "unsent",
        "unsettled",
    )

    def __init__(
        self,
        delivery: Delivery | None,
        source: InLink | None,
        payload: bytes | None = None,
        attempt: int = 0,
    ) -> None:
        self.delivery = delivery
        self.source = source
        self.born = time.monotonic()
        #: Kept only for a sender that asked for released deliveries to be sent again.
        self.payload = payload
        self.attempt = attempt
        self.unsent = 0
        self.unsettled = 0
        self.multi = False
        self.accepted = False
        self.modified = False
        self.rejected: Any = None
        #: The outcome of a single copy, passed through as it is.
        self.state: Any = None
        #: A balanced copy's ``(address entry, router)``: told as the copy ends, so the
        #: entry's count of deliveries in flight toward that router stays right.
        self.toward: tuple[Toward, str] | None = None

    def expect(self, copies: int) -> None:
        """``copies`` copies are about to be pushed onto out-links."""
        self.unsent = copies
        self.multi = copies > 1
        if copies and self.source is not None:
            self.source.held += 1
        elif not copies:
            self.finish_if_done()

    def sent(self, settled: bool) -> None:
        """A copy left on its out-link (pre-settled or not)."""
        if not settled:
            self.unsettled += 1
        elif self.delivery is not None:
            self._record(ACCEPTED)
        self._one_less_unsent()

    def _one_less_unsent(self) -> None:
        self.unsent -= 1
        if self.unsent == 0:
            source = self.source
            if source is not None:
                source.held -= 1
                source.top_up()
            self.finish_if_done()

    def unsent_failed(self) -> None:
        """A copy never left: its out-link went away."""
        self._record(RELEASED)
        if self.toward is not None:
            self._toward_done()
        self._one_less_unsent()

    def outcome(self, state: Any) -> None:
        """A sent copy reached a terminal outcome (or was lost: ``FAILED``)."""
        self.unsettled -= 1
        self._record(state)
        if self.toward is not None:
            self._toward_done()
        self.finish_if_done()

    def _toward_done(self) -> None:
        entry, router = self.toward  # type: ignore[misc]
        self.toward = None
        entry.copy_done(router)

    def _record(self, state: Any) -> None:
        if not self.multi:
            self.state = state
        elif isinstance(state, Accepted):
            self.accepted = True
        elif isinstance(state, Rejected):
            if self.rejected is None:
                self.rejected = state
        elif isinstance(state, Modified):
            self.modified = True

    def finish_if_done(self) -> None:
        delivery = self.delivery
        if delivery is None or self.unsent or self.unsettled:
            return
        self.delivery = None
        if self.multi:
            if self.rejected is not None:
                state: Any = self.rejected
            elif self.accepted:
                state = ACCEPTED
            elif self.modified:
                state = FAILED
            else:
                state = RELEASED
        else:
            state = self.state if self.state is not None else RELEASED
        source = self.source
        if (
            source is not None
            and self.payload is not None
            and isinstance(state, Released)
            and self.attempt < RESEND_ATTEMPTS
        ):
            # resend-released: nobody took it (the path broke, the receiver went): try
            # again once the network has had a moment to find another way.
            source.stats.resent += 1
            delay = RESEND_DELAY * (self.attempt + 1)
            source.protocol.loop.call_later(
                delay, source.again, delivery, self.payload, self.attempt + 1
            )
            return
        answer(delivery, state)
        if source is not None:
            stats = source.stats
            age = time.monotonic() - self.born
            if age > 1.0:
                stats.delayed_1s += 1
                if age > 10.0:
                    stats.delayed_10s += 1
            if isinstance(state, Released):
                stats.released += 1
            elif isinstance(state, Modified):
                stats.modified += 1
            source.protocol.flush()


def answer(delivery: Delivery, state: Any) -> None:
    """Tell the sender of ``delivery`` its outcome, settling it unless the link asked to
    settle second (then the sender settles, and we follow)."""
    if delivery.settled or delivery.remote_settled:
        if not delivery.settled:
            delivery.settle()
        return
    link = delivery.link
    # Its link may have detached meanwhile (sent and closed at once): the delivery is the
    # session's until settled, so the outcome still goes, settled, as nothing more will
    # come on that link to settle it second.
    second = link.rcv_settle_mode == _SETTLE_SECOND and link.state is LinkState.ATTACHED
    delivery.update(state, settled=not second)


class InLink(LinkHandler):
    """A link on which messages come into the router (we are its receiver).

    Its credit is ``window`` less the transits it still holds (copies not yet
    sent); :meth:`open` and :meth:`shut` let a client's link get credit only
    while its address has somewhere to go.
    """

    __slots__ = (
        "active",
        "address",
        "from_router",
        "held",
        "link",
        "on_close",
        "owner",
        "protocol",
        "received_count",
        "relay_check",
        "resend",
        "stats",
        "table",
        "window",
    )

    def __init__(
        self,
        link: Link,
        protocol: AmqpProtocol,
        window: int,
        table: AddressTable,
        *,
        owner: Any = None,
        address: str | None = None,
        active: bool = True,
        from_router: bool = False,
    ) -> None:
        self.link = link
        #: A data link from a neighbouring router (else a client's link).
        self.from_router = from_router
        #: Routes what comes in (:meth:`~petrel.router.table.AddressTable.deliver`).
        self.table = table
        self.stats: Stats = table.stats
        #: The client's connection, or the neighbour a data link comes from.
        self.owner = owner
        self.protocol = protocol
        self.window = window
        #: The address of a client's link (``None``: the anonymous relay, or a data link).
        self.address = address
        self.active = active
        self.held = 0
        self.received_count = 0
        #: Called once when the link goes (the owner forgets it).
        self.on_close: Any = None
        #: The sender asked for released deliveries to be forwarded again.
        self.resend = False
        #: A client's anonymous relay under ``[access]``: ``relay_check(to)`` is where a
        #: message for ``to`` goes, or raises the error it is rejected with.
        self.relay_check: Callable[[str], str] | None = None

    def top_up(self) -> None:
        link = self.link
        if link.state is not LinkState.ATTACHED:
            return
        target = self.window - self.held if self.active else 0
        if target < 0:
            target = 0
        credit: int = link.credit
        if credit > target:
            if target:
                return  # held copies will leave; credit once given is used up, not revoked
        elif target - credit < (self.window >> 2 or 1):
            # Credit in batches of a quarter window at least: a trickle of small grants
            # along a chain of routers would make every hop wait on the next one.
            return
        link.flow(target)
        self.protocol.flush()

    def open(self) -> None:
        """The address has a destination now: grant credit."""
        if not self.active:
            self.active = True
            self.top_up()

    def shut(self) -> None:
        """The address lost its last destination: take the credit back."""
        if self.active:
            self.active = False
            self.top_up()

    def received(self, delivery: Delivery, payload: bytes) -> None:
        self.received_count += 1
        self.table.deliver(self, delivery, payload, 0)
        self.top_up()

    def again(self, delivery: Delivery, payload: bytes, attempt: int) -> None:
        """Forward a released delivery once more (resend-released)."""
        if self.link.state is LinkState.ATTACHED:
            self.table.deliver(self, delivery, payload, attempt)
        else:  # the sender closed its link meanwhile: it hears the release
            answer(delivery, RELEASED)
            self.protocol.flush()

    def aborted(self) -> None:
        self.top_up()

    def outcome(self, delivery: Delivery, state: Any, settled: bool) -> None:
        if settled and not delivery.settled:
            delivery.settle()

    def close(self, closed: bool) -> None:
        if self.on_close is not None:
            callback, self.on_close = self.on_close, None
            callback(self)


class OutLink(LinkHandler):
    """A link on which the router sends (to a client's receiver, or to a neighbour).

    Copies wait in ``pending`` while the link has no credit (or its socket is
    full); their number is bounded by the credit the in-links granted.
    """

    __slots__ = (
        "blocked_since",
        "delivered",
        "keep_trace",
        "link",
        "on_close",
        "pending",
        "presettled",
        "protocol",
        "unsettled",
    )

    def __init__(self, link: Link, protocol: AmqpProtocol, *, keep_trace: bool = False) -> None:
        self.link = link
        self.protocol = protocol
        self.keep_trace = keep_trace
        self.presettled = link.snd_settle_mode == SenderSettleMode.SETTLED
        self.pending: collections.deque[tuple[bytes, Transit]] = collections.deque()
        self.unsettled: dict[Delivery, Transit] = {}
        self.delivered = 0
        #: Called once when the link goes (the owner forgets it).
        self.on_close: Any = None
        #: Since when copies have waited here (``time.monotonic()``), or None.
        self.blocked_since: float | None = None

    @property
    def credit(self) -> int:
        if not self.protocol.writable:
            return 0
        credit: int = self.link.credit
        return credit

    @property
    def outstanding(self) -> int:
        """Copies on this link not yet settled (waiting or sent)."""
        return len(self.pending) + len(self.unsettled)

    def push(self, payload: bytes, transit: Transit) -> None:
        if not self.pending and self.credit > 0:
            self._send(payload, transit)
            self.protocol.flush()
        else:
            if not self.pending:
                self.blocked_since = time.monotonic()
            self.pending.append((payload, transit))

    def _send(self, payload: bytes, transit: Transit) -> None:
        settled = self.presettled or transit.delivery is None
        delivery = self.link.send(payload, settled=settled)
        self.delivered += 1
        if not settled:
            self.unsettled[delivery] = transit
        transit.sent(settled)

    def pump(self) -> None:
        """Send what waits, as far as the credit goes."""
        pending = self.pending
        if not pending:
            return
        while pending and self.credit > 0:
            payload, transit = pending.popleft()
            self._send(payload, transit)
        self.blocked_since = time.monotonic() if pending else None
        self.protocol.flush()

    def flowed(self, drain: bool) -> None:
        self.pump()
        if drain and self.link.credit > 0 and not self.pending:
            self.link.drained()
            self.protocol.flush()

    def outcome(self, delivery: Delivery, state: Any, settled: bool) -> None:
        if isinstance(state, _TERMINAL) or settled:
            transit = self.unsettled.pop(delivery, None)
            if not delivery.settled:
                delivery.settle()
            if transit is not None:
                transit.outcome(state if state is not None else ACCEPTED)

    def close(self, closed: bool) -> None:
        pending = list(self.pending)
        self.pending.clear()
        unsettled = list(self.unsettled.values())
        # Settle the copies we gave up on: their deliveries outlive the link in its
        # session, and nothing else would settle them now.
        for delivery in self.unsettled:
            if not delivery.settled:
                delivery.settle()
        self.unsettled.clear()
        for _payload, transit in pending:
            transit.unsent_failed()
        for transit in unsettled:
            transit.outcome(FAILED)
        if self.on_close is not None:
            callback, self.on_close = self.on_close, None
            callback(self)
