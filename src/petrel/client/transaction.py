"""Local transactions: sends and outcomes that take effect together, or not at all.

::

    async with conn.transaction() as tx:
        await tx.send(sender, Message("debit"))
        await tx.accept(delivery)
    # committed here; an exception in the block rolls it back instead

A connection keeps one link to the peer's transaction *coordinator* (AMQP 1.0
part 4), attached on the first transaction.  :meth:`Transaction.declare` asks
it for a transaction id; sends made with :meth:`Transaction.send` carry that id
on their transfers, outcomes given with :meth:`Transaction.accept` (and
friends) carry it on their dispositions; :meth:`Transaction.commit` (or
:meth:`~Transaction.rollback`) discharges it.  Several transactions may be
open on one connection at once.

A delivery accepted in a transaction stays unsettled until the commit, which
settles it; after a rollback it is the application's again to settle (the
peer keeps it for this receiver).  A transaction does not survive a lost
connection: after a reconnect its operations raise
:class:`~petrel.client.errors.TransactionError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..message import Message
from ..spec import (
    Accepted,
    Coordinator,
    Declare,
    Declared,
    Discharge,
    Received,
    ReceiverSettleMode,
    Rejected,
    SenderSettleMode,
    Source,
    TransactionalState,
    TransactionCapability,
)
from ._wait import wait_future
from .errors import (
    ClientError,
    NotImplementedByPeer,
    TransactionError,
    TransactionInDoubt,
    error_from,
)
from .links import LinkEndpoint
from .receiver import Delivery, modified, rejected, released

if TYPE_CHECKING:
    from ..engine import Delivery as EngineDelivery
    from ..engine.events import LinkFlowed
    from .connection import Connection
    from .sender import Sender

__all__ = ["Transaction"]

_ACCEPTED = Accepted()


class TransactionController(LinkEndpoint):
    """The connection's link to the peer's coordinator: declares and discharges go on it
    and their answers come back as delivery states."""

    _is_sender = True
    _kind = "coordinator"

    def __init__(self, conn: Connection, name: str) -> None:
        super().__init__(conn, name)
        self._requests: dict[EngineDelivery, asyncio.Future[Any]] = {}
        self._credit = asyncio.Event()

    def _attach_args(self) -> dict[str, Any]:
        return {
            "source": Source(),
            "target": Coordinator(capabilities=(TransactionCapability.LOCAL_TRANSACTIONS,)),
            "snd_settle_mode": SenderSettleMode.UNSETTLED,
            "rcv_settle_mode": ReceiverSettleMode.FIRST,
        }

    def _on_ready(self) -> None:
        self._wake()

    def _on_flow(self, event: LinkFlowed) -> None:
        self._wake()

    def _wake(self) -> None:
        link = self._link
        if link is not None and link.credit > 0:
            self._credit.set()

    async def request(self, body: Declare | Discharge, timeout: float | None) -> Any:
        """Send ``body`` to the coordinator; its answer (a delivery state)."""
        deadline = None if timeout is None else self._loop.time() + timeout
        while True:
            if self._error is not None:
                raise self._error
            link = self._link
            if link is not None and self._ready and link.credit > 0:
                break
            self._credit.clear()
            remaining = None if deadline is None else max(0.0, deadline - self._loop.time())
            await wait_future(
                asyncio.ensure_future(self._credit.wait()), remaining, "waiting for the coordinator"
            )
        future: asyncio.Future[Any] = self._loop.create_future()
        self._requests[link.send(Message(body).encode())] = future
        self._conn._flush()
        remaining = None if deadline is None else max(0.0, deadline - self._loop.time())
        return await wait_future(future, remaining, "waiting for the coordinator's answer")

    def _on_update(self, delivery: EngineDelivery, state: Any, settled: bool) -> None:
        future = self._requests.get(delivery)
        if future is None:
            return
        if (state is None or type(state) is Received) and not settled:
            return  # not an answer yet
        del self._requests[delivery]
        if not settled:
            delivery.settle()
            self._conn._flush()
        if not future.done():
            future.set_result(state)

    def _suspend(self) -> None:
        super()._suspend()
        self._fail_requests(
            TransactionInDoubt(
                "the connection was lost before the coordinator answered: a commit may or "
                "may not have taken effect; anything else is over"
            )
        )

    def _on_failed(self, error: ClientError) -> None:
        self._fail_requests(error)

    def _fail_requests(self, error: ClientError) -> None:
        requests, self._requests = self._requests, {}
        for future in requests.values():
            if not future.done():
                future.set_exception(error)
                future.exception()  # nobody may be waiting for it
        self._credit.set()  # wake a request waiting for credit: it finds the error


class Transaction:
    """One local transaction; made by :meth:`Connection.transaction`.

    Use it as an async context manager (declared on entry, committed on a normal
    exit, rolled back when the block raises), or call :meth:`declare` and then
    :meth:`commit` or :meth:`rollback` yourself.
    """

    def __init__(self, conn: Connection, timeout: float | None = None) -> None:
        self._conn = conn
        self._timeout = timeout
        self._controller: TransactionController | None = None
        self._epoch = -1
        #: The id the coordinator gave it (None until declared).
        self.id: bytes | None = None
        self._done = False
        #: Deliveries given an outcome in it: settled locally once it commits.
        self._retired: list[Delivery] = []
        #: The answers to its sends, not waited for yet (see :meth:`send`).
        self._sends: list[asyncio.Future[None]] = []

    @property
    def is_open(self) -> bool:
        """Declared, and neither committed nor rolled back."""
        return self.id is not None and not self._done

    async def declare(self) -> Transaction:
        """Ask the coordinator for a new transaction; returns ``self``.  Raises
        :class:`~petrel.client.errors.NotImplementedByPeer` (or another
        ``ClientError``) when the peer has no coordinator or refuses."""
        if self.id is not None:
            raise TransactionError("the transaction is declared already")
        controller = await self._conn._transaction_controller(self._timeout)
        try:
            state = await controller.request(Declare(), self._timeout)
        except TransactionInDoubt:
            raise TransactionError(
                "the connection was lost before the coordinator declared the transaction"
            ) from None
        if not isinstance(state, Declared):
            raise _refusal(state, "the coordinator did not declare a transaction")
        self._controller = controller
        self._epoch = self._conn._epoch
        self.id = bytes(state.txn_id)
        return self

    def _check(self) -> bytes:
        if self.id is None:
            raise TransactionError("the transaction is not declared yet")
        if self._done:
            raise TransactionError(f"transaction {self.id.hex()} is over (discharged)")
        if self._conn._epoch != self._epoch:
            raise TransactionError(
                f"transaction {self.id.hex()} was lost with the connection it was declared on"
            )
        return self.id

    # --- work in the transaction ----------------------------------------------------------------

    async def send(
        self,
        sender: Sender,
        message: Message | Any,
        *,
        wait: bool = False,
        timeout: float | None = None,
    ) -> None:
        """Send ``message`` on ``sender`` in this transaction: the peer takes it in now and
        makes it visible on commit.

        It returns once the message is handed to the link (when there is credit), without
        waiting for the peer's answer: sends in a transaction are pipelined, and
        :meth:`commit` waits for their answers before it discharges.  A send the peer
        refuses makes the commit fail (``TransactionError`` naming the reason).  With
        ``wait=True`` it waits for the answer and raises ``MessageRejected`` if the peer
        refused it (the transaction can then only roll back)."""
        txn_id = self._check()
        if not isinstance(message, Message):
            message = Message(message)
        if sender.address is None and message.to is None:
            raise ValueError("a message sent on an anonymous sender needs a `to` address")
        state = TransactionalState(txn_id=txn_id)
        future = await sender._send(message.encode(), timeout, wait, state)
        if future is not None:
            future.add_done_callback(_retrieve)  # its error, if any, is the commit's
            self._sends.append(future)

    async def accept(self, delivery: Delivery) -> None:
        """Accept ``delivery`` in this transaction: it is settled when the transaction
        commits; a rollback gives it back to the application, unsettled."""
        self._retire(delivery, _ACCEPTED)

    async def reject(
        self,
        delivery: Delivery,
        condition: str | None = None,
        description: str | None = None,
        *,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        """Reject ``delivery`` in this transaction (see :meth:`Delivery.reject`)."""
        self._retire(delivery, rejected(condition, description, info))

    async def release(self, delivery: Delivery, *, delivered: bool = False) -> None:
        """Release ``delivery`` in this transaction (see :meth:`Delivery.release`)."""
        self._retire(delivery, released(delivered))

    async def modify(
        self,
        delivery: Delivery,
        *,
        delivery_failed: bool = True,
        undeliverable_here: bool = False,
        annotations: Mapping[str, Any] | None = None,
    ) -> None:
        """Modify ``delivery`` in this transaction (see :meth:`Delivery.modify`)."""
        if not delivery.receiver._offers("amqp:modified:list"):
            raise NotImplementedByPeer(
                f"the source of {delivery.receiver.address!r} does not offer the modified outcome"
            )
        self._retire(delivery, modified(delivery_failed, undeliverable_here, annotations))

    def _retire(self, delivery: Delivery, outcome: Any) -> None:
        txn_id = self._check()
        engine = delivery._delivery
        if engine.settled or engine.remote_settled:
            raise TransactionError(f"delivery {engine.tag!r} is settled already")
        if delivery.receiver._link is not engine.link:
            # Its outcome could not reach the peer, which delivers the message again.
            raise TransactionError(
                f"delivery {engine.tag!r} came on a connection that was lost: the peer "
                "delivers it again"
            )
        engine.update(TransactionalState(txn_id=txn_id, outcome=outcome))
        self._retired.append(delivery)
        self._conn._flush()

    # --- discharge ------------------------------------------------------------------------------

    async def commit(self, timeout: float | None = None) -> None:
        """Make everything done in the transaction take effect, at once.  Raises
        :class:`~petrel.client.errors.TransactionError` when the peer rolled it back
        instead (a send in it was refused, it timed out, ...): nothing took effect.
        Raises :class:`~petrel.client.errors.TransactionInDoubt` when the connection was
        lost before the peer answered: it may or may not have taken effect."""
        await self._discharge(False, timeout)
        for delivery in self._retired:
            engine = delivery._delivery
            if not engine.settled:
                engine.settle()
        self._retired.clear()
        self._conn._flush()

    async def rollback(self, timeout: float | None = None) -> None:
        """Undo everything done in the transaction: its sends are dropped, and deliveries
        given an outcome in it are unsettled again (the application may settle them anew)."""
        await self._discharge(True, timeout)
        self._retired.clear()

    async def _discharge(self, fail: bool, timeout: float | None) -> None:
        txn_id = self._check()
        self._done = True
        controller = self._controller
        assert controller is not None
        if timeout is None:
            timeout = self._timeout
        sends, self._sends = self._sends, []
        if sends and not fail:
            # The sends may have gone on other sessions, and a transfer can wait in a
            # session for window: their answers say the peer has them all, in the
            # transaction, before the discharge.  (A refused one fails the commit.)
            await wait_future(
                asyncio.gather(*sends, return_exceptions=True),
                timeout,
                "waiting for the answers to the sends in the transaction",
            )
        try:
            state = await controller.request(Discharge(txn_id=txn_id, fail=fail), timeout)
        except TransactionInDoubt:
            if fail:
                return  # the peer rolls back what the lost connection left open
            raise
        if not isinstance(state, Accepted):
            what = "roll back" if fail else "commit"
            raise _refusal(state, f"the coordinator did not {what} transaction {txn_id.hex()}")

    async def __aenter__(self) -> Transaction:
        if self.id is None:
            await self.declare()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._done:
            return
        if exc_type is None:
            await self.commit()
            return
        try:
            await self.rollback()
        except ClientError as error:
            self._conn.log.info("rolling back transaction %s: %s", self, error)

    def __repr__(self) -> str:
        shown = self.id.hex() if self.id is not None else "undeclared"
        return f"<petrel.Transaction {shown}{' over' if self._done else ''}>"


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def _refusal(state: Any, description: str) -> ClientError:
    """The error for a coordinator's answer that is not the one asked for."""
    if isinstance(state, Rejected):
        return error_from(state.error, TransactionError, description)
    return TransactionError(f"{description} (it answered {state!r})")
