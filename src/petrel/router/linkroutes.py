"""Link routes: links, not messages, routed through the network to a broker.

A client's attach to an address a ``[[link_routes]]`` entry matches is not
answered by the router it reaches.  That router attaches a link of its own
toward the broker (to the next router on the least-cost path to the router
attached to the broker, or to the broker itself), each router on the way does
the same, and the broker's answer comes back the same way.  From then on each
router pairs the two links of its hop (a :class:`LinkProxy`) and passes
everything across one for one: credit and drain, transfers, dispositions and
settlement, detach.  So what the broker offers on a link — selectors, browse,
drain, transactions — works as if the client were attached to it directly.

The router attached to the broker advertises each of its link routes as a
mobile address (:attr:`~petrel.router.config.LinkRouteSettings.key`) while its
connection to the broker is open; other routers find a route by matching the
attach's address against the link routes advertised (prefix or pattern, the
longest literal match winning, as for ``[[addresses]]``).  An attach that a
link route matches while no broker serves it is refused with
``amqp:not-found``; a link whose broker (or any hop) goes away mid-stream is
detached with ``amqp:link:detach-forced`` naming what was lost.
"""

from __future__ import annotations

import collections
import itertools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..engine import Delivery, Link, LinkState
from ..engine import events as ev
from ..errors import AmqpError, Condition
from ..server.connection import LinkHandler
from ..spec import Modified, Released
from ..types import Symbol
from .config import AddressPolicy

if TYPE_CHECKING:
    from .connection import RouterConnection

__all__ = [
    "COORDINATOR_ADDRESS",
    "LR_PREFIX",
    "PROP_LINK_ROUTE",
    "LinkProxy",
    "match_link_route",
    "near_handler",
]

log = logging.getLogger("petrel.router")

#: The address a coordinator link (transactions) is routed by, as Dispatch does: a link
#: route whose prefix or pattern matches it carries the coordinator to a broker.
COORDINATOR_ADDRESS = "$coordinator"
#: The link property naming the router a routed attach is for (on inter-router links).
PROP_LINK_ROUTE = Symbol("petrel:link-route")
LR_PREFIX = "_lr/"

_names = itertools.count(1)
FAILED = Modified(delivery_failed=True)
RELEASED = Released()
#: Deliveries a proxy keeps for a side with no credit (a peer that overshoots its credit).
MAX_WAITING = 1000


def match_link_route(keys: Any, address: str, direction: str) -> str | None:
    """The best link-route key of ``keys`` for an attach to ``address`` in ``direction``
    (``in``: the client receives; ``out``: it sends), or None."""
    best: tuple[int, int] | None = None
    chosen = None
    head = f"{LR_PREFIX}{direction}/"
    for key in keys:
        if not key.startswith(head):
            continue
        spec = key[len(head) :]
        kind, _, text = spec.partition(":")
        try:
            matcher = AddressPolicy(prefix=text) if kind == "P" else AddressPolicy(pattern=text)
        except ValueError:
            continue
        strength = matcher.strength(address)
        if strength is None:
            continue
        rank = (strength, 1 if kind == "P" else 0)
        if best is None or rank > best:
            best, chosen = rank, key
    return chosen


class LinkProxy:
    """The two links of one hop of a routed link: ``near`` toward the client, ``far``
    toward the broker (see the module docstring)."""

    def __init__(self, near: Link, near_conn: RouterConnection) -> None:
        self.near = near
        self.near_conn = near_conn
        self.far: Link | None = None
        self.far_conn: RouterConnection | None = None
        #: Deliveries paired across the hop, both ways.
        self.pairs: dict[Delivery, Delivery] = {}
        self.done = False
        #: ``on_far_lost(proxy)``: the far side's connection went; True when the proxy was
        #: given another (an edge router's standby uplink), so the client keeps its link.
        self.on_far_lost: Callable[[LinkProxy], bool] | None = None
        #: Called once when the proxy is over.
        self.on_done: Callable[[LinkProxy], None] | None = None
        #: ``intercept(delivery, payload)``: a message from the client that this router
        #: answers itself (True: taken) instead of passing it on.
        self.intercept: Callable[[Delivery, bytes], bool] | None = None
        #: What the client sent while its far link was being attached again (bounded by
        #: the credit the client had), or what a peer sent beyond the credit the other
        #: side has (tolerated by the engine: RabbitMQ does it), until credit comes
        #: (at most MAX_WAITING).
        self.waiting: collections.deque[tuple[Delivery, bytes]] = collections.deque()

    # --- attaching ----------------------------------------------------------------------------

    def extend(self, far_conn: RouterConnection, destination: str | None) -> None:
        """Attach the far link on ``far_conn`` (to the next router, naming ``destination``,
        or to the broker when ``destination`` is None)."""
        near = self.near
        session = far_conn.routed_session()
        name = f"{near.name}~{far_conn.network.router_id}.{next(_names)}"
        properties = {PROP_LINK_ROUTE: destination} if destination is not None else None
        modes: dict[str, Any] = {}
        if near.remote_snd_settle_mode is not None:
            modes["snd_settle_mode"] = near.remote_snd_settle_mode
        if near.remote_rcv_settle_mode is not None:
            modes["rcv_settle_mode"] = near.remote_rcv_settle_mode
        if near.is_sender:  # the client receives: we receive from the broker's side
            far = session.attach_receiver(
                name,
                near.remote_source,
                near.remote_target,
                desired_capabilities=near.remote_desired_capabilities,
                properties=properties,
                **modes,
            )
        else:
            far = session.attach_sender(
                name,
                near.remote_source,
                near.remote_target,
                desired_capabilities=near.remote_desired_capabilities,
                properties=properties,
                **modes,
            )
        self.far = far
        self.far_conn = far_conn
        far_conn.adopt(far, _Far(self, far))
        far_conn.when_attached(far, self._far_attached)
        far_conn.protocol.flush()

    def rehome(self, far_conn: RouterConnection) -> None:
        """Carry on over ``far_conn`` after the far side's connection went: deliveries
        the client sent and had no outcome for are settled modified (``delivery-failed``,
        so it sends them again); what it receives comes again by the new way."""
        near = self.near
        if not near.is_sender:
            for delivery in list(self.pairs):
                if delivery.link is near and not delivery.settled:
                    delivery.update(FAILED, settled=True)
        self.pairs.clear()
        self.extend(far_conn, None)
        self.near_conn.protocol.flush()

    def _far_attached(self) -> None:
        far = self.far
        assert far is not None
        if far.remote_source is None and far.remote_target is None:
            return  # refused: its detach follows and detaches the client's link
        near = self.near
        if near.state is LinkState.ATTACHED:  # rehomed: the client's link stays as it is
            if near.is_sender:
                if near.credit:
                    far.flow(near.credit, near.drain)
                    self._flush_far()
            else:
                waiting, self.waiting = self.waiting, collections.deque()
                for delivery, payload in waiting:
                    if far.credit > 0:
                        self._pass(near, far, delivery, payload)
                    elif not delivery.settled:
                        delivery.update(FAILED, settled=True)
                if far.credit:
                    near.flow(far.credit, far.drain)
                self.near_conn.protocol.flush()
            return
        near.attach(
            source=far.remote_source,
            target=far.remote_target,
            snd_settle_mode=far.remote_snd_settle_mode,
            rcv_settle_mode=far.remote_rcv_settle_mode,
            initial_delivery_count=far.remote_initial_delivery_count or 0,
            offered_capabilities=far.remote_offered_capabilities,
        )
        # Credit given while the attach travelled is in the links' state: pass it on now.
        if near.is_sender:
            if near.credit:
                far.flow(near.credit, near.drain)
                self._flush_far()
        elif far.credit:
            near.flow(far.credit, far.drain)
        self.near_conn.protocol.flush()

    def refuse(self, error: AmqpError) -> None:
        self.near.detach(error)
        self.near_conn.protocol.flush()

    # --- both ways -----------------------------------------------------------------------------

    def flowed(self, link: Link, event: ev.LinkFlowed) -> None:
        """Credit or drain changed on one side: pass it to the other."""
        far = self.far
        if (
            far is None
            or far.state is not LinkState.ATTACHED
            or self.near.state is not LinkState.ATTACHED
        ):
            return
        near = self.near
        if link is near:
            if near.is_sender:  # the client gave credit (or asked to drain)
                if self.waiting:
                    self._send_waiting(far, near)
                far.flow(near.credit, event.drain)
                self._flush_far()
            elif event.drained:  # the client finished a drain the broker asked for
                far.drained()
                self._flush_far()
        elif far.is_sender:  # the broker gave credit (or asked to drain)
            if self.waiting:
                self._send_waiting(near, far)
            near.flow(far.credit, event.drain)
            self.near_conn.protocol.flush()
        elif event.drained:  # the broker finished a drain the client asked for
            near.drained()
            self.near_conn.protocol.flush()

    def received(self, link: Link, delivery: Delivery, payload: bytes) -> None:
        """A transfer on one side goes on across the hop."""
        if link is self.near and self.intercept is not None and self.intercept(delivery, payload):
            self.near_conn.protocol.flush()
            return
        other = self.far if link is self.near else self.near
        if other is None or other.state is not LinkState.ATTACHED:
            if other is not None and other.state is LinkState.ATTACH_SENT:
                # A far link on its way (moved to another uplink): it goes once attached.
                self.waiting.append((delivery, payload))
            elif not delivery.remote_settled and not delivery.settled:
                # Nowhere to go now: the sender gets it back to send again.
                delivery.update(FAILED if link is self.near else RELEASED, settled=True)
                self._flush(link)
            return
        if other.is_sender and other.credit <= 0:
            # Sent beyond the credit the other side gave (the engine tolerates it): it
            # goes on when credit comes, or back to its sender if too much waits.
            if len(self.waiting) < MAX_WAITING:
                self.waiting.append((delivery, payload))
            elif not delivery.remote_settled and not delivery.settled:
                delivery.update(RELEASED, settled=True)
                self._flush(link)
            return
        self._pass(link, other, delivery, payload)

    def _send_waiting(self, link: Link, other: Link) -> None:
        """Pass on what waited for credit on ``other`` (received on ``link``)."""
        waiting = self.waiting
        while waiting and other.credit > 0:
            delivery, payload = waiting.popleft()
            if not delivery.settled:
                self._pass(link, other, delivery, payload)

    def _pass(self, link: Link, other: Link, delivery: Delivery, payload: bytes) -> None:
        settled = delivery.remote_settled
        # The transfer's state goes along (a transactional send names its transaction).
        sent = other.send(payload, tag=delivery.tag, settled=settled, state=delivery.remote_state)
        if not settled:
            self.pairs[delivery] = sent
            self.pairs[sent] = delivery
        self._flush(other)

    def outcome(self, delivery: Delivery, state: Any, settled: bool) -> None:
        """A disposition on one side goes across to the paired delivery."""
        pair = self.pairs.get(delivery)
        if settled:
            self.pairs.pop(delivery, None)
            if pair is not None:
                self.pairs.pop(pair, None)
            if not delivery.settled:
                delivery.settle()
        if pair is None or pair.settled:
            return
        if state is not None:
            pair.update(state, settled=settled)
        elif settled:
            pair.settle()
        self._flush(pair.link)

    def closed(self, link: Link, error: Any, closed: bool) -> None:
        """One side detached: detach the other, with the same error (or one saying what
        was lost when a connection went)."""
        if self.done:
            return
        if (
            link is self.far
            and self.on_far_lost is not None
            and self.near.state is LinkState.ATTACHED
            and self.on_far_lost(self)
        ):
            return
        self.done = True
        if self.on_done is not None:
            self.on_done(self)
        other = self.far if link is self.near else self.near
        self._let_go()
        if other is None:
            return
        if error is None and link.remote_detach is None:
            error = AmqpError(
                "the link route lost its way to the broker"
                if link is self.far
                else "the client's side of the routed link went away",
                condition=Condition.DETACH_FORCED,
            )
        other.detach(error, closed=closed)
        self._flush(other)

    def _let_go(self) -> None:
        """Settle every delivery still paired: the sessions would otherwise keep those of
        the detached links until they end (2.7.6).  What a sender gave us and has no
        outcome for is released, so it may send it again."""
        for delivery in self.pairs:
            if not delivery.settled:
                if delivery.outgoing:
                    delivery.settle()
                else:
                    delivery.update(RELEASED, settled=True)
        self.pairs.clear()
        waiting, self.waiting = self.waiting, collections.deque()
        for delivery, _ in waiting:
            if not delivery.settled:
                delivery.update(RELEASED, settled=True)

    def _flush(self, link: Link) -> None:
        conn = self.near_conn if link is self.near else self.far_conn
        if conn is not None:
            conn.protocol.flush()

    def _flush_far(self) -> None:
        if self.far_conn is not None:
            self.far_conn.protocol.flush()


class _Near(LinkHandler):
    """The client's side (or the upstream router's) of a routed link."""

    __slots__ = ("proxy",)

    def __init__(self, proxy: LinkProxy) -> None:
        self.proxy = proxy

    def received(self, delivery: Delivery, payload: bytes) -> None:
        self.proxy.received(self.proxy.near, delivery, payload)

    def outcome(self, delivery: Delivery, state: Any, settled: bool) -> None:
        self.proxy.outcome(delivery, state, settled)

    def close(self, closed: bool) -> None:
        near = self.proxy.near
        error = near.remote_detach.error if near.remote_detach is not None else None
        self.proxy.closed(near, error, closed)


class _Far(LinkHandler):
    """The broker's side (or the next router's) of a routed link."""

    __slots__ = ("link", "proxy")

    def __init__(self, proxy: LinkProxy, link: Link) -> None:
        self.proxy = proxy
        self.link = link

    def received(self, delivery: Delivery, payload: bytes) -> None:
        if self.proxy.far is self.link:
            self.proxy.received(self.link, delivery, payload)

    def outcome(self, delivery: Delivery, state: Any, settled: bool) -> None:
        self.proxy.outcome(delivery, state, settled)

    def close(self, closed: bool) -> None:
        far = self.link
        if self.proxy.far is not far:
            return  # an earlier far link of a proxy that has moved on
        error = far.remote_detach.error if far.remote_detach is not None else None
        self.proxy.closed(far, error, closed)


def near_handler(proxy: LinkProxy) -> LinkHandler:
    """The handler of a routed link's near side."""
    return _Near(proxy)
