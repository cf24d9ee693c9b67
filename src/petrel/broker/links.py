"""The broker's two kinds of link: consumers (we send) and producers (we receive).

A :class:`ConsumerLink` is the :class:`~petrel.broker.entry.Consumer` of one
queue: it turns queue entries into transfers within the link's credit and
turns the client's outcomes back into queue operations.  A
:class:`ProducerLink` publishes what arrives, settles each delivery once the
message is queued (and, when durable, committed to disk), and keeps the
producer's credit topped up while the queues have room.
"""

from __future__ import annotations

import itertools
import logging
from typing import TYPE_CHECKING, Any, Final

from ..engine import Delivery, Link, LinkState
from ..errors import AmqpError, Condition, DecodeError
from ..message import MessageView
from ..server.connection import LinkHandler
from ..spec import (
    Accepted,
    Error,
    Modified,
    Rejected,
    Released,
    SenderSettleMode,
    TransactionalState,
)
from ..spec.transport import ReceiverSettleMode
from ..types import Symbol
from .lookup import selector_lookup
from .queues import Entry, Queue
from .selector import Selector

if TYPE_CHECKING:
    from ..store import StoreError
    from .connection import BrokerConnection
    from .core import AddressInfo, BrokerCore

__all__ = ["ConsumerLink", "ProducerLink"]

log = logging.getLogger("petrel.broker")

_consumer_ids: Final = itertools.count(1)
# Final names compile to C statics; plain module names are a dict lookup per use.
_ACCEPTED: Final = Accepted()
# The outcome classes, as C statics when compiled (a bare imported name is a module-dict
# lookup per use).  States are told apart by exact type: they are decoded values, never
# subclasses, and ``isinstance`` of a non-instance also looks up ``__class__``.
_ACCEPTED_TYPE: Final = Accepted
_RELEASED_TYPE: Final = Released
_MODIFIED_TYPE: Final = Modified
_REJECTED_TYPE: Final = Rejected
_TRANSACTIONAL_STATE: Final = TransactionalState
_ATTACHED: Final = LinkState.ATTACHED
_SETTLE_SECOND: Final = ReceiverSettleMode.SECOND
#: The outcomes an ``acknowledge`` span names.
_OUTCOME_NAMES: Final[dict[type, str]] = {
    Accepted: "accepted",
    Released: "released",
    Modified: "modified",
    Rejected: "rejected",
}


class ConsumerLink(LinkHandler):
    """A client receiving from a queue (our link is the sender)."""

    __slots__ = (
        "browse",
        "browse_cursor",
        "connection",
        "core",
        "delivered",
        "drain_owed",
        "id",
        "link",
        "max_unsettled",
        "owner",
        "presettled",
        "queue",
        "selector",
        "temporary",
        "unsettled",
    )

    def __init__(
        self,
        connection: BrokerConnection,
        link: Link,
        queue: Queue,
        *,
        selector: Selector | None = None,
        browse: bool = False,
        temporary: bool = False,
        owner: bool = False,
    ) -> None:
        self.id = next(_consumer_ids)
        self.connection = connection
        self.core: BrokerCore = connection.core
        self.link = link
        self.queue = queue
        self.selector = selector
        self.browse = browse
        self.browse_cursor = 0
        #: The queue goes with its last consumer (a non-durable subscription).
        self.temporary = temporary
        #: The queue goes with this link, which created it (a dynamic node).
        self.owner = owner
        self.presettled = link.snd_settle_mode == SenderSettleMode.SETTLED
        #: Our deliveries the client has not settled yet, with their entries.
        self.unsettled: dict[Delivery, Entry] = {}
        #: Messages sent on it so far.
        self.delivered = 0
        #: The client asked for a drain while its socket was full: finish it once it drains.
        self.drain_owed = False
        access = connection.access
        #: At most this many deliveries wait for the client's outcome (``[access]`` limits);
        #: None: no limit, or nothing waits (pre-settled).
        self.max_unsettled = (
            access.max_unsettled if access is not None and not self.presettled else None
        )

    @property
    def credit(self) -> int:
        # A client that does not read its socket gets nothing more until the write
        # buffer drains, whatever credit it gave: the broker's memory stays bounded.
        if not self.connection.protocol.writable:
            return 0
        credit: int = self.link.credit
        limit = self.max_unsettled
        if limit is not None:
            return max(0, min(credit, limit - len(self.unsettled)))
        return credit

    def accepts(self, entry: Entry) -> bool:
        selector = self.selector
        if selector is None:
            return True
        view = self.core.view_of(entry)
        try:
            return selector.matches(selector_lookup(view, entry.priority, entry.delivery_count))
        except DecodeError:
            return False

    def deliver(self, entry: Entry) -> None:
        self.delivered += 1
        payload = self.core.payload(entry)
        if self.browse:
            self.link.send(payload, settled=self.presettled)
        elif self.presettled:
            # At most once: the message is gone the moment it is written.
            self.link.send(payload, settled=True)
            self.queue.accept(entry)
        else:
            delivery = self.link.send(payload, settled=False)
            self.unsettled[delivery] = entry
        tracing = self.core.tracing
        if tracing is not None:
            tracing.deliver(self.core.view_of(entry), self.queue.name)
        self.connection.protocol.flush()

    def outcome(self, delivery: Delivery, state: Any, settled: bool) -> None:
        """The client said what became of a delivery."""
        entry = self.unsettled.pop(delivery, None)
        if entry is None:
            if settled and not delivery.settled:
                delivery.settle()
            return
        if type(state) is _TRANSACTIONAL_STATE:
            self._transactional(delivery, entry, state, settled)
            return
        if state is None and not settled:
            self.unsettled[delivery] = entry  # only a Received or nothing yet
            return
        if not self.retire(entry, state):
            # A non-terminal state (received): wait for the outcome.
            self.unsettled[delivery] = entry
            return
        if not delivery.settled:
            delivery.settle()

    def _transactional(
        self, delivery: Delivery, entry: Entry, state: TransactionalState, settled: bool
    ) -> None:
        """An outcome given in a transaction: held until the commit (the entry stays
        acquired); a bad txn-id detaches the link with the transaction error."""
        transactions = self.connection.transactions
        try:
            if state.outcome is None:  # associated with the transaction, no outcome yet
                transactions.lookup(state.txn_id)
                self.unsettled[delivery] = entry
            else:
                transactions.enlist_retire(state.txn_id, self, delivery, entry, state.outcome)
        except AmqpError as exc:
            self.unsettled[delivery] = entry
            log.info("%s: %s", self.link.name, exc)
            self.link.detach(exc)
            self.connection.protocol.flush()
            return
        if settled and not delivery.settled:
            delivery.settle()

    def retire(self, entry: Entry, state: Any) -> bool:
        """Apply the consumer's outcome to ``entry``: ``None`` (settled with no state)
        accepts; false when ``state`` is no outcome (``received``)."""
        queue = self.queue
        if self.core.tracing is not None and entry.data is not None:
            outcome = "accepted" if state is None else _OUTCOME_NAMES.get(type(state))
            if outcome is not None:
                self.core.tracing.acknowledge(self.core.view_of(entry), queue.name, outcome)
        if state is None or type(state) is _ACCEPTED_TYPE:
            queue.accept(entry)
        elif type(state) is _RELEASED_TYPE:
            queue.released_total += 1
            queue.release(entry)
        elif type(state) is _MODIFIED_TYPE:
            queue.modified_total += 1
            queue.release(
                entry,
                delivery_failed=bool(state.delivery_failed),
                undeliverable_here=bool(state.undeliverable_here),
            )
        elif type(state) is _REJECTED_TYPE:
            queue.rejected_total += 1
            error = state.error
            queue.reject(
                entry,
                str(error.condition) if error is not None else "amqp:rejected",
                (error.description or "") if error is not None else "rejected by the consumer",
            )
        else:
            return False
        self.core.mark_dirty(queue)
        return True

    def flowed(self, drain: bool) -> None:
        """The client changed our credit: send what we can, then answer a drain."""
        if self.link.credit > 0:
            self.queue.dispatch(self.core.now_ms())
        if drain and self.link.credit > 0:
            # A full socket (the client reads slower than we send) is no reason to end a
            # drain: the messages are there.  It ends when the socket drains again.
            self.drain_owed = not self.connection.protocol.writable
            if not self.drain_owed:
                self.link.drained()
        self.connection.protocol.flush()

    def close(self, closed: bool) -> None:
        """The link is gone: hand unsettled messages back, forget the consumer; a dynamic
        node goes with the link that made it, a non-durable subscription with its last
        consumer, and a durable one with its last consumer when that one detaches with
        ``closed`` (unsubscribing)."""
        queue = self.queue
        unsettled = self.unsettled
        held = list(unsettled.values())
        # The messages go back to the queue: settle their deliveries, which the session
        # keeps past the detach until someone does (the client learns we let go, and a
        # late outcome from it finds nothing to apply to).
        for delivery in unsettled:
            if not delivery.settled:
                delivery.settle()
        unsettled.clear()
        queue.remove_consumer(self, held)
        last = queue.consumer_count == 0
        if self.owner or (last and (self.temporary or (closed and queue.durable_subscription))):
            self.core.delete_queue(queue)
        else:
            self.core.mark_dirty(queue)

    def __repr__(self) -> str:
        return f"<ConsumerLink {self.link.name!r} on {self.queue.name!r}>"


class ProducerLink(LinkHandler):
    """A client sending to an address (our link is the receiver).

    ``info`` is ``None`` for an anonymous-relay link: each message names its
    address in ``properties.to``.

    Credit is a window, topped up when half is used, and never more than the
    queues behind the address can take: a queue with a limit under the
    ``block`` policy counts the credit producers hold as used
    (:meth:`~petrel.broker.queues.Queue.credit_room`), so a producer that has
    credit can always be taken in, and one that has none waits for room.
    """

    __slots__ = (
        "awaiting",
        "blocked",
        "connection",
        "core",
        "delivered",
        "info",
        "link",
        "max_unsettled",
        "reserved",
        "reserved_in",
        "temporary",
        "window",
    )

    def __init__(
        self,
        connection: BrokerConnection,
        link: Link,
        info: AddressInfo | None,
        window: int,
        *,
        temporary: Queue | None = None,
    ) -> None:
        self.connection = connection
        self.core: BrokerCore = connection.core
        self.link = link
        self.info = info
        self.window = window
        self.blocked = False
        #: Credit this link holds against the limits of ``reserved_in``.
        self.reserved = 0
        self.reserved_in: list[Queue] = []
        #: The dynamic node this link created, deleted with the link.
        self.temporary = temporary
        #: Messages received on it so far.
        self.delivered = 0
        #: Deliveries received and not settled yet (waiting for the store).
        self.awaiting = 0
        access = connection.access
        #: Credit plus ``awaiting`` stay within it (``[access]`` limits); None: no limit.
        self.max_unsettled = access.max_unsettled if access is not None else None

    def start(self) -> None:
        """Grant the first credit (or wait until the address has room)."""
        self.top_up()

    def top_up(self) -> None:
        """Restore the credit window as far as the queues have room, or wait for room."""
        link = self.link
        credit: int = link.credit
        window = self.window
        if self.max_unsettled is not None:
            window = min(window, self.max_unsettled - self.awaiting)
            if window <= 0:
                return  # a settlement tops up again
        if credit > window // 2 or self.blocked:
            return
        info = self.info
        if info is None:  # anonymous relay: each message is checked as it comes
            link.flow(window)
            self.connection.protocol.flush()
            return
        queues = self.core.targets(info)
        # The engine counts transfers as it parses them; those not handed to received()
        # yet are still covered by the reservation, not by the link's credit.
        pending = self.reserved - credit if self.reserved > credit else 0
        self._unreserve()
        room = window
        limited = []
        for queue in queues:
            queue_room = queue.credit_room()
            if queue_room is not None:
                limited.append(queue)
                room = min(room, queue_room - pending)
        grant = max(credit, room)  # credit once given is not taken back
        if grant > credit:
            link.flow(grant)
            self.connection.protocol.flush()
        if limited:
            self.reserved = reserved = grant + pending
            self.reserved_in = limited
            for queue in limited:
                queue.reserved += reserved
        if grant == 0:
            self.blocked = True
            self.core.when_room(limited, self._unblocked)

    def _unreserve(self) -> None:
        reserved = self.reserved
        if reserved:
            for queue in self.reserved_in:
                queue.reserved -= reserved
        self.reserved = 0
        self.reserved_in = []

    def _unblocked(self) -> None:
        self.blocked = False
        if self.connection.is_live(self.link):
            self.top_up()

    def received(self, delivery: Delivery, payload: bytes) -> None:
        """One message arrived: route it, settle it, keep credit flowing."""
        self.delivered += 1
        core = self.core
        # Settle second waits for the client to settle first, but not on a link it has
        # already detached (sent and closed at once): the outcome goes out settled.
        link = self.link
        settle_now = link.rcv_settle_mode != _SETTLE_SECOND or link.state is not _ATTACHED
        if self.reserved:
            self.reserved -= 1
            for queue in self.reserved_in:
                queue.reserved -= 1
        try:
            view = MessageView(payload)
            info = self.info
            if info is None:
                to = view.to
                if not to:
                    raise AmqpError(
                        "an anonymous-relay message needs properties.to",
                        condition=Condition.NOT_FOUND,
                    )
                address = str(to)
                connection = self.connection
                if connection.access is not None:  # [access]: the right to send there
                    connection.access.relay(address)
                node = connection.state.nodes.get(address)
                if node is not None:  # $management, say: never a queue
                    node.relay(self.connection, payload)
                    if not delivery.remote_settled:
                        delivery.update(_ACCEPTED, settled=settle_now)
                    self.top_up()
                    return
                info = connection.resolve(address)
            txn = delivery.remote_state
            if type(txn) is _TRANSACTIONAL_STATE:  # held until the commit
                self.connection.transactions.enlist_send(txn.txn_id, info, payload, view)
                if not delivery.remote_settled:
                    delivery.update(
                        TransactionalState(txn_id=txn.txn_id, outcome=_ACCEPTED),
                        settled=settle_now,
                    )
                self.top_up()
                return
            durable = core.publish(info, payload, view=view, credited=self.info is not None)
            if core.tracing is not None:
                core.tracing.publish(view, info.name)
        except AmqpError as exc:
            if self._refused_in_transaction(delivery, exc, settle_now):
                pass
            elif not delivery.remote_settled:
                delivery.update(
                    Rejected(
                        error=Error(
                            condition=Symbol(exc.condition),
                            description=exc.description,
                        )
                    ),
                    settled=settle_now,
                )
            log.debug("rejected a message on %r: %s", self.link.name, exc)
        else:
            if delivery.remote_settled:
                pass
            elif durable:
                # One call per batch for all of this link's deliveries in it.
                self.awaiting += 1
                core.store.when_committed_each(self._committed, delivery)
            else:
                delivery.update(_ACCEPTED, settled=settle_now)
        self.top_up()

    def _refused_in_transaction(self, delivery: Delivery, exc: AmqpError, settle: bool) -> bool:
        """A message sent in a transaction was refused: the transaction can only roll back,
        and the rejection is given in it.  False for a message not sent in an open one."""
        state = delivery.remote_state
        if not isinstance(state, TransactionalState):
            return False
        transactions = self.connection.transactions
        try:
            txn = transactions.lookup(state.txn_id)
        except AmqpError:
            return False  # an unknown or timed-out id: rejected outside any transaction
        transactions.fail(txn, exc)
        log.debug("rejected a message in transaction %s: %s", txn.id.hex(), exc)
        if not delivery.remote_settled:
            error = Error(condition=Symbol(exc.condition), description=exc.description)
            delivery.update(
                TransactionalState(txn_id=state.txn_id, outcome=Rejected(error=error)),
                settled=settle,
            )
        return True

    def aborted(self) -> None:
        """The client aborted a delivery part way: it used a credit, and brought nothing."""
        if self.reserved:
            self.reserved -= 1
            for queue in self.reserved_in:
                queue.reserved -= 1
                queue.room_changed()
        self.top_up()

    def _committed(self, deliveries: list[Delivery], error: StoreError | None) -> None:
        """The store wrote (or failed to write) the batch holding ``deliveries``."""
        self.awaiting -= len(deliveries)
        link = self.link
        live = self.connection.is_live(link)
        # Settle second waits for the client's settlement, but not once the link is gone:
        # the delivery is still the session's, so the client hears the outcome (settled:
        # nothing more will come on that link).  Gone with the session, the engine drops
        # it and the client sends the message again.
        settle = not live or link.rcv_settle_mode != _SETTLE_SECOND
        if error is not None:
            self.core.store_failed(error)
            outcome: Any = Rejected(
                error=Error(
                    condition=Symbol(Condition.INTERNAL_ERROR),
                    description=f"the store could not write the message: {error}",
                )
            )
        else:
            outcome = _ACCEPTED
        for delivery in deliveries:
            if not delivery.settled:
                delivery.update(outcome, settled=settle)
        if live and self.max_unsettled is not None:
            self.top_up()
        self.connection.protocol.flush()

    def close(self, closed: bool) -> None:
        """The link is gone (nothing to hand back: messages were queued as they came); the
        credit it held is free for other producers."""
        self.blocked = False
        held = self.reserved_in
        self._unreserve()
        for queue in held:
            queue.room_changed()
        if self.temporary is not None:
            self.core.delete_queue(self.temporary)

    def __repr__(self) -> str:
        return f"<ProducerLink {self.link.name!r} to {self.info.name if self.info else '*'}>"
