"""Local transactions (AMQP 1.0 part 4): the coordinator link and the work held aside.

A client attaches a sending link whose target is a ``coordinator`` and sends it
``declare`` (the answer is ``declared`` with a new txn-id) and ``discharge``
(commit, or roll back with ``fail``).  Between the two, work is done *in* the
transaction by naming its id:

- a transfer whose state is ``transactional-state`` is a send in it: the
  message is checked, answered ``transactional-state`` with ``accepted``, and
  held here, out of every queue, until the commit;
- a disposition whose state is ``transactional-state`` with an outcome retires
  a message the broker sent in it: the entry stays acquired (no other consumer
  sees it) until the commit applies the outcome.

The commit applies all of it in one loop turn inside
:meth:`~petrel.store.MessageStore.atomic`, so a durable store writes it in one
SQL transaction: a crash leaves all of it or none of it.  The discharge is
settled once that transaction is on disk, and the sends reach their queues
then too, not before: a consumer never sees a message of a transaction that a
crash could still undo.  A rollback drops the held sends and
undoes the outcomes: a message whose delivery is still unsettled on a live link
is the consumer's again (it may settle it anew); one whose consumer went away
returns to its queue counted as a failed delivery, as for any consumer that
leaves; one the consumer had settled returns to its queue as released.

A transaction is rolled back when its coordinator link goes (detach, end of
session, close of connection), and when it stays idle longer than
``transaction_timeout``; a timed-out id is then refused with
``amqp:transaction:timeout``, an id never declared (or already discharged)
with ``amqp:transaction:unknown-id``.  A transaction in which a send was
refused cannot commit: its discharge fails with ``amqp:transaction:rollback``
naming the reason.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from ..engine import Delivery, Link
from ..errors import AmqpError, Condition, DecodeError
from ..message import Message, MessageView
from ..server.connection import LinkHandler
from ..server.nodes import terminus_capabilities
from ..spec import (
    Accepted,
    Coordinator,
    Declare,
    Declared,
    Discharge,
    Error,
    Rejected,
    TransactionalState,
    TransactionCapability,
)
from ..spec.transport import ReceiverSettleMode
from ..types import Symbol
from .queues import ACQUIRED

if TYPE_CHECKING:
    from .connection import BrokerConnection
    from .core import AddressInfo
    from .links import ConsumerLink
    from .queues import Entry, Queue

__all__ = ["CoordinatorLink", "Transaction", "Transactions"]

log = logging.getLogger("petrel.broker")

_ids = itertools.count(1)
_ACCEPTED = Accepted()
#: The capabilities the coordinator offers; a client asking for another is refused.
OFFERED = (
    TransactionCapability.LOCAL_TRANSACTIONS,
    TransactionCapability.MULTI_TXNS_PER_SSN,
    TransactionCapability.MULTI_SSNS_PER_TXN,
)
_UNSUPPORTED = {
    str(TransactionCapability.DISTRIBUTED_TRANSACTIONS),
    str(TransactionCapability.PROMOTABLE_TRANSACTIONS),
}
#: Credit window of a coordinator link (declares and discharges in flight).
COORDINATOR_WINDOW = 100
#: How many timed-out ids a connection remembers, to answer them with the right error.
REMEMBERED_TIMEOUTS = 1000


class _Send:
    """A message sent in a transaction: where it goes, and its bytes."""

    __slots__ = ("info", "payload", "view")

    def __init__(self, info: AddressInfo, payload: bytes, view: MessageView) -> None:
        self.info = info
        self.payload = payload
        self.view = view


class _Retire:
    """An outcome given in a transaction to a message the broker sent."""

    __slots__ = ("consumer", "delivery", "entry", "outcome")

    def __init__(
        self, consumer: ConsumerLink, delivery: Delivery, entry: Entry, outcome: Any
    ) -> None:
        self.consumer = consumer
        self.delivery = delivery
        self.entry = entry
        self.outcome = outcome


class Transaction:
    """One declared transaction: its id, its coordinator link and the work held aside."""

    __slots__ = ("coordinator", "failure", "id", "last_active", "retires", "sends", "timer")

    def __init__(self, txn_id: bytes, coordinator: CoordinatorLink) -> None:
        self.id = txn_id
        self.coordinator = coordinator
        self.sends: list[_Send] = []
        #: By delivery: a later outcome for the same delivery replaces the earlier one.
        self.retires: dict[Delivery, _Retire] = {}
        #: Set when a send in it was refused: it can only roll back.
        self.failure: str | None = None
        self.last_active = 0.0
        self.timer: asyncio.TimerHandle | None = None

    @property
    def work(self) -> int:
        return len(self.sends) + len(self.retires)

    def __repr__(self) -> str:
        return f"<Transaction {self.id.hex()} sends={len(self.sends)} retires={len(self.retires)}>"


class Transactions:
    """The transactions of one connection, by id (see the module docstring)."""

    def __init__(self, connection: BrokerConnection) -> None:
        self.connection = connection
        settings = connection.core.settings
        self.timeout = settings.transaction_timeout
        self.max_work = settings.max_transaction_work
        self.open: dict[bytes, Transaction] = {}
        self._timed_out: OrderedDict[bytes, None] = OrderedDict()
        #: Committed and rolled back since the connection opened.
        self.committed = 0
        self.rolled_back = 0

    # --- attach -----------------------------------------------------------------------------

    def attach(self, link: Link) -> CoordinatorLink:
        """Answer a link to the coordinator (local transactions only)."""
        target = link.remote_target
        assert isinstance(target, Coordinator)
        unsupported = sorted(terminus_capabilities(link) & _UNSUPPORTED)
        if unsupported:
            raise AmqpError(
                f"the coordinator offers local transactions only, not {', '.join(unsupported)}",
                condition=Condition.NOT_IMPLEMENTED,
            )
        link.attach(
            source=link.remote_source,
            target=Coordinator(capabilities=OFFERED),
            offered_capabilities=OFFERED,
        )
        handler = CoordinatorLink(self, link)
        handler.top_up()
        return handler

    # --- lookup -------------------------------------------------------------------------------

    def lookup(self, txn_id: Any) -> Transaction:
        """The open transaction ``txn_id``; raises ``amqp:transaction:timeout`` for one
        that timed out, ``amqp:transaction:unknown-id`` for any other."""
        key = bytes(txn_id) if isinstance(txn_id, (bytes, bytearray, memoryview)) else None
        txn = self.open.get(key) if key is not None else None
        if txn is not None:
            if self.timeout <= 0 or self._idle(txn) < self.timeout:
                return txn
            self._time_out(txn)  # its timer is due but has not run yet: it is over all the same
        if key is not None and key in self._timed_out:
            raise AmqpError(
                f"transaction {key.hex()} was rolled back: idle for more than {self.timeout:g} s",
                condition=Condition.TRANSACTION_TIMEOUT,
            )
        shown = key.hex() if key is not None else repr(txn_id)
        raise AmqpError(
            f"no transaction {shown} is open on this connection (never declared, or "
            "discharged already)",
            condition=Condition.TRANSACTION_UNKNOWN_ID,
        )

    def _touch(self, txn: Transaction) -> None:
        txn.last_active = asyncio.get_running_loop().time()

    # --- work in a transaction ------------------------------------------------------------------

    def enlist_send(
        self, txn_id: Any, info: AddressInfo, payload: bytes, view: MessageView
    ) -> None:
        """Hold a message sent in ``txn_id`` for ``info`` until the commit.  Raises an
        :class:`AmqpError` naming what is wrong: an unknown or timed-out id (the
        transaction is not touched), too much work (the transaction can then only
        roll back)."""
        txn = self.lookup(txn_id)
        self._touch(txn)
        if txn.work >= self.max_work:
            error = AmqpError(
                f"a transaction holds at most {self.max_work} messages and outcomes",
                condition=Condition.RESOURCE_LIMIT_EXCEEDED,
            )
            self.fail(txn, error)
            raise error
        txn.sends.append(_Send(info, payload, view))

    def fail(self, txn: Transaction, error: AmqpError) -> None:
        """Work in ``txn`` was refused: it can only roll back now."""
        if txn.failure is None:
            txn.failure = error.description or str(error.condition)

    def enlist_retire(
        self, txn_id: Any, consumer: ConsumerLink, delivery: Delivery, entry: Entry, outcome: Any
    ) -> None:
        """Hold ``outcome`` for a message ``consumer`` sent, until the commit; the entry
        stays acquired meanwhile.  Raises like :meth:`enlist_send` (the entry is then
        untouched)."""
        txn = self.lookup(txn_id)
        self._touch(txn)
        if delivery not in txn.retires and txn.work >= self.max_work:
            error = AmqpError(
                f"a transaction holds at most {self.max_work} messages and outcomes",
                condition=Condition.RESOURCE_LIMIT_EXCEEDED,
            )
            self.fail(txn, error)
            raise error
        txn.retires[delivery] = _Retire(consumer, delivery, entry, outcome)

    # --- declare and discharge --------------------------------------------------------------------

    def declare(self, coordinator: CoordinatorLink) -> Transaction:
        txn = Transaction(next(_ids).to_bytes(8, "big"), coordinator)
        self.open[txn.id] = txn
        coordinator.transactions.add(txn)
        self._touch(txn)
        if self.timeout > 0:
            self._arm(txn, self.timeout)
        return txn

    def _arm(self, txn: Transaction, delay: float) -> None:
        txn.timer = asyncio.get_running_loop().call_later(delay, self._check_idle, txn)

    @staticmethod
    def _idle(txn: Transaction) -> float:
        return asyncio.get_running_loop().time() - txn.last_active

    def _check_idle(self, txn: Transaction) -> None:
        txn.timer = None
        if self.open.get(txn.id) is not txn:
            return
        idle = self._idle(txn)
        if idle < self.timeout:
            self._arm(txn, self.timeout - idle)
            return
        self._time_out(txn)
        self.connection.protocol.flush()

    def _time_out(self, txn: Transaction) -> None:
        log.info(
            "%s: transaction %s idle for more than %g s: rolled back",
            self.connection.id,
            txn.id.hex(),
            self.timeout,
        )
        self.rollback(txn)
        self._timed_out[txn.id] = None
        while len(self._timed_out) > REMEMBERED_TIMEOUTS:
            self._timed_out.popitem(last=False)

    def _end(self, txn: Transaction) -> None:
        self.open.pop(txn.id, None)
        txn.coordinator.transactions.discard(txn)
        if txn.timer is not None:
            txn.timer.cancel()
            txn.timer = None

    def rollback(self, txn: Transaction) -> None:
        """Drop what ``txn`` sent and undo its outcomes (see the module docstring)."""
        self._end(txn)
        self.rolled_back += 1
        txn.sends.clear()
        core = self.connection.core
        for retire in txn.retires.values():
            entry = retire.entry
            if entry.state != ACQUIRED:
                continue
            consumer = retire.consumer
            delivery = retire.delivery
            queue = consumer.queue
            if not delivery.settled and consumer.connection.is_live(consumer.link):
                consumer.unsettled[delivery] = entry  # the consumer's to settle again
            elif delivery.settled:
                queue.release(entry)
                core.mark_dirty(queue)
            else:
                queue.release(entry, delivery_failed=True)
                core.mark_dirty(queue)
        txn.retires.clear()

    def commit(self, txn: Transaction) -> asyncio.Future[None]:
        """Apply ``txn``'s work all at once (one store batch); the future resolves when it
        is durable.  Raises ``amqp:transaction:rollback`` (having rolled back) when it
        cannot commit: a send in it was refused, or a queue has no room for its sends."""
        reason = txn.failure or self._no_room(txn)
        if reason is not None:
            self.rollback(txn)
            raise AmqpError(
                f"transaction {txn.id.hex()} rolled back: {reason}",
                condition=Condition.TRANSACTION_ROLLBACK,
            )
        self._end(txn)
        core = self.connection.core
        # The sends are queued once the batch is on disk, not before: a consumer given
        # one before a crash would have seen part of a transaction that never was.
        held: list[Entry] = []
        with core.store.atomic():
            for send in txn.sends:
                core.publish(send.info, send.payload, view=send.view, held=held)
            for retire in txn.retires.values():
                if retire.entry.state == ACQUIRED:
                    retire.consumer.retire(retire.entry, retire.outcome)
                delivery = retire.delivery
                if not delivery.settled and retire.consumer.connection.is_live(
                    retire.consumer.link
                ):
                    delivery.update(retire.outcome, settled=True)
        self.committed += 1
        done = core.commit()
        if held:

            def written(future: asyncio.Future[None]) -> None:
                if not future.cancelled() and future.exception() is None:
                    core.enqueue_held(held)

            done.add_done_callback(written)
        return done

    def _no_room(self, txn: Transaction) -> str | None:
        """Why the queues cannot take ``txn``'s sends under the ``reject`` policy (a queue
        that blocks producers takes them: they had credit for it), or None."""
        adding: dict[Queue, list[int]] = {}
        for send in txn.sends:
            for queue in self.connection.core.targets(send.info):
                if queue.settings.full_policy == "reject":
                    counts = adding.setdefault(queue, [0, 0])
                    counts[0] += 1
                    counts[1] += len(send.payload)
        for queue, (count, nbytes) in adding.items():
            limits = queue.settings
            if (limits.max_messages is not None and queue.depth + count > limits.max_messages) or (
                limits.max_bytes is not None and queue.bytes + nbytes > limits.max_bytes
            ):
                return f"queue {queue.name!r} has no room for the {count} messages sent in it"
        return None


class CoordinatorLink(LinkHandler):
    """The link a client attached to the coordinator: declares and discharges arrive on it,
    and the transactions declared on it end with it."""

    __slots__ = ("link", "owner", "transactions")

    def __init__(self, owner: Transactions, link: Link) -> None:
        self.owner = owner
        self.link = link
        self.transactions: set[Transaction] = set()

    def top_up(self) -> None:
        if self.link.credit <= COORDINATOR_WINDOW // 2:
            self.link.flow(COORDINATOR_WINDOW)
            self.owner.connection.protocol.flush()

    def received(self, delivery: Delivery, payload: bytes) -> None:
        settle = self.link.rcv_settle_mode != ReceiverSettleMode.SECOND
        try:
            body = _control_body(payload)
            if isinstance(body, Declare):
                if body.global_id is not None:
                    raise AmqpError(
                        "distributed transactions (a declare with a global-id) are not supported",
                        condition=Condition.NOT_IMPLEMENTED,
                    )
                txn = self.owner.declare(self)
                delivery.update(Declared(txn_id=txn.id), settled=settle)
            else:
                self._discharge(delivery, body, settle)
        except AmqpError as exc:
            log.info("%s: coordinator refused a request: %s", self.owner.connection.id, exc)
            _reject(delivery, exc, settle)
        self.top_up()
        self.owner.connection.protocol.flush()

    def _discharge(self, delivery: Delivery, discharge: Discharge, settle: bool) -> None:
        owner = self.owner
        txn = owner.lookup(discharge.txn_id)
        if discharge.fail:
            owner.rollback(txn)
            delivery.update(_ACCEPTED, settled=settle)
            return
        done = owner.commit(txn)
        connection = owner.connection

        def committed(future: asyncio.Future[None]) -> None:
            if not connection.is_live(self.link) or delivery.settled:
                return
            error = future.exception() if not future.cancelled() else None
            if error is None:
                delivery.update(_ACCEPTED, settled=settle)
            else:
                _reject(
                    delivery,
                    AmqpError(
                        f"the store could not write the transaction: {error}",
                        condition=Condition.INTERNAL_ERROR,
                    ),
                    settle,
                )
            connection.protocol.flush()

        done.add_done_callback(committed)

    def close(self, closed: bool) -> None:
        """The coordinator link went: what was declared on it and not discharged rolls back."""
        for txn in list(self.transactions):
            log.info(
                "%s: transaction %s abandoned (its coordinator link went): rolled back",
                self.owner.connection.id,
                txn.id.hex(),
            )
            self.owner.rollback(txn)

    def __repr__(self) -> str:
        return f"<CoordinatorLink {self.link.name!r} open={len(self.transactions)}>"


def _control_body(payload: bytes) -> Declare | Discharge:
    try:
        body = Message.decode(payload).body
    except DecodeError as exc:
        raise AmqpError(
            f"a coordinator message must decode: {exc}", condition=Condition.DECODE_ERROR
        ) from None
    if not isinstance(body, (Declare, Discharge)):
        raise AmqpError(
            "a coordinator message holds a declare or a discharge as its amqp-value body, not "
            f"{type(body).__name__}",
            condition=Condition.DECODE_ERROR,
        )
    return body


def _reject(delivery: Delivery, exc: AmqpError, settle: bool) -> None:
    if delivery.remote_settled or delivery.settled:
        return
    error = Error(condition=Symbol(exc.condition), description=exc.description)
    delivery.update(Rejected(error=error), settled=settle)


def transactional_outcome(txn_id: Any, outcome: Any) -> TransactionalState:
    """The state a send in a transaction is answered with."""
    return TransactionalState(txn_id=txn_id, outcome=outcome)
