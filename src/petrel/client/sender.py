"""Sending messages: credit as backpressure, outcomes as results, resending after a reconnect.

The hot path of :meth:`Sender.send` is one encode, one engine ``link.send``
(which writes the transfer frame into the connection's output buffer) and,
for at-least-once sends, one future.  No task is created per message; the
driver writes everything sent in one loop turn in one socket write.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

from .. import tracing
from ..errors import LocalProtocolError
from ..message import Message
from ..spec import (
    Accepted,
    Modified,
    Received,
    ReceiverSettleMode,
    Rejected,
    Released,
    SenderSettleMode,
    Source,
    Target,
    TransactionalState,
)
from ..types import Symbol
from ._wait import wait_future
from .errors import (
    ClientError,
    DeliveryError,
    LinkClosed,
    MessageModified,
    MessageRejected,
    MessageReleased,
    Timeout,
    TransactionError,
    error_from,
)
from .links import LinkEndpoint

if TYPE_CHECKING:
    from ..engine import Delivery as EngineDelivery
    from ..engine import Link, Session
    from ..engine.events import LinkFlowed
    from .connection import Connection

__all__ = ["Sender"]


class _Pending:
    """An at-least-once message whose outcome has not come yet."""

    __slots__ = ("future", "payload", "retries", "state")

    def __init__(self, payload: bytes, future: asyncio.Future[None], state: Any = None) -> None:
        self.payload = payload
        self.future = future
        self.retries = 0
        #: The transactional state it was sent with (None: not in a transaction).
        self.state = state


class Sender(LinkEndpoint):
    """A sending link; made by :meth:`Connection.open_sender`.

    Use it as an async context manager, or call :meth:`close`.
    """

    _is_sender = True
    _kind = "sender"

    def __init__(
        self,
        conn: Connection,
        name: str,
        address: str | None,
        *,
        at_most_once: bool = False,
        retry_released: int = 0,
        capabilities: Sequence[str] | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(conn, name)
        self._address = address
        self._at_most_once = at_most_once
        self._retry_released = retry_released
        self._capabilities = tuple(Symbol(c) for c in capabilities) if capabilities else None
        self._properties = {Symbol(k): v for k, v in properties.items()} if properties else None
        #: Sent, outcome not yet known, by engine delivery (in sending order).
        self._unsettled: dict[EngineDelivery, _Pending] = {}
        #: To send (again) before anything new: after a reconnect, or released.
        self._backlog: deque[_Pending] = deque()
        #: Sends waiting for credit, in order.
        self._waiters: deque[asyncio.Future[None]] = deque()
        #: Waiters woken with credit that have not sent yet.
        self._reserved = 0
        #: The (shared, completed) outcome of at-most-once sends made with ``wait=False``.
        self._done: asyncio.Future[None] | None = None

    @property
    def address(self) -> str | None:
        """The target address (``None`` for an anonymous sender)."""
        return self._address

    @property
    def credit(self) -> int:
        """How many messages the peer lets us send right now."""
        link = self._link
        return link.credit if link is not None else 0

    @property
    def unsettled(self) -> int:
        """How many at-least-once messages are waiting for their outcome."""
        return len(self._unsettled) + len(self._backlog)

    # --- sending ----------------------------------------------------------------------------

    @overload
    async def send(
        self, message: Message | Any, *, timeout: float | None = ..., wait: Literal[True] = ...
    ) -> None: ...

    @overload
    async def send(
        self, message: Message | Any, *, timeout: float | None = ..., wait: Literal[False]
    ) -> asyncio.Future[None]: ...

    async def send(
        self, message: Message | Any, *, timeout: float | None = None, wait: bool = True
    ) -> asyncio.Future[None] | None:
        """Send ``message``: wait for credit, write it, then wait for the peer's outcome.

        A value that is not a :class:`~petrel.Message` is sent as
        ``Message(value)``.  Returns once the peer accepted the message;
        raises :class:`~petrel.client.errors.MessageRejected` (with the peer's
        error) if it rejected it, ``MessageReleased``/``MessageModified`` once
        the sender's ``retry_released`` resends are used up.  An at-most-once
        sender returns as soon as the message is written.

        With ``wait=False`` it returns, once the message is written, a future
        of the outcome instead (``await`` it later: many sends in flight).
        ``timeout`` (seconds) bounds the whole call; past it
        :class:`~petrel.client.errors.Timeout` is raised, but a message
        already written may still arrive.  After a reconnect, messages whose
        outcome had not come are sent again (so the peer may see duplicates).
        """
        if not isinstance(message, Message):
            message = Message(message)
        if self._address is None and message.to is None:
            raise ValueError("a message sent on an anonymous sender needs a `to` address")
        traced = tracing.client
        if traced is None or not traced.recording():
            return await self._send(message.encode(), timeout, wait, None)
        return await self._send_traced(traced, message, timeout, wait)

    async def _send_traced(
        self, traced: tracing.ClientTracing, message: Message, timeout: float | None, wait: bool
    ) -> asyncio.Future[None] | None:
        """:meth:`send` in a producer span, its context carried in the message."""
        span, message = traced.start_send(message, self._address)
        try:
            outcome = await self._send(message.encode(), timeout, wait, None)
        except BaseException as exc:
            traced.end_send(span, exc)
            raise
        if outcome is None:
            traced.end_send(span)
        else:
            outcome.add_done_callback(traced.ended_with(span))
        return outcome

    async def _send(
        self, payload: bytes, timeout: float | None, wait: bool, state: Any
    ) -> asyncio.Future[None] | None:
        """:meth:`send` of an encoded message, with ``state`` on its transfer (a
        ``TransactionalState`` sends it in a transaction)."""
        deadline = None if timeout is None else self._loop.time() + timeout
        link = self._link
        if (
            link is None
            or link.credit <= self._reserved
            or self._waiters
            or self._backlog
            or not self._ready
            or not self._conn._protocol.writable  # type: ignore[union-attr]
        ):
            link = await self._wait_for_credit(deadline)
        if self._at_most_once:
            try:
                link.send(payload, settled=True, state=state)
            except LocalProtocolError as exc:
                raise error_from(exc) from None
            if self._conn._wrote(len(payload)):
                await asyncio.sleep(0)  # a burst went out: let the loop breathe
            if wait:
                return None
            done = self._done
            if done is None:
                done = self._done = self._loop.create_future()
                done.set_result(None)
            return done
        future = self._loop.create_future()
        try:
            delivery = link.send(payload, state=state)
        except LocalProtocolError as exc:
            raise error_from(exc) from None
        self._unsettled[delivery] = _Pending(payload, future, state)
        if self._conn._wrote(len(payload)):
            await asyncio.sleep(0)  # a burst went out: let the loop breathe
        if not wait:
            return future
        if deadline is None:
            await future
        else:
            await wait_future(
                future, max(0.0, deadline - self._loop.time()), "waiting for the outcome"
            )
        return None

    async def _wait_for_credit(self, deadline: float | None) -> Link:
        """Wait until this send may go: attached, credit, its turn, and a writable socket."""
        woken = False
        while True:
            if self._error is not None:
                raise self._error
            link = self._link
            if (
                link is not None
                and self._ready
                and link.credit > self._reserved
                and not self._backlog
                and (woken or not self._waiters)
            ):
                protocol = self._conn._protocol
                if protocol is None or protocol.writable:
                    return link
                await protocol.wait_writable()
                continue
            future: asyncio.Future[None] = self._loop.create_future()
            if woken:
                self._waiters.appendleft(future)
            else:
                self._waiters.append(future)
            remaining = None if deadline is None else max(0.0, deadline - self._loop.time())
            try:
                await wait_future(future, remaining, "waiting for credit")
            except BaseException:
                if future.done() and not future.cancelled() and future.exception() is None:
                    # Woken, then cancelled before sending: pass the credit on.
                    self._reserved -= 1
                    self._pump()
                else:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(future)
                raise
            self._reserved -= 1
            woken = True

    def _pump(self) -> None:
        """Use the credit we have: resend the backlog, then wake waiting sends."""
        link = self._link
        if link is None or not self._ready:
            return
        backlog = self._backlog
        if backlog:
            unsettled = self._unsettled
            while backlog and link.credit > 0:
                pending = backlog.popleft()
                unsettled[link.send(pending.payload, state=pending.state)] = pending
            self._conn._flush()
        waiters = self._waiters
        room = link.credit - self._reserved
        while waiters and room > 0:
            future = waiters.popleft()
            if future.done():
                continue
            future.set_result(None)
            self._reserved += 1
            room -= 1
        if link.drain and link.credit > 0 and not waiters and not backlog and not self._reserved:
            link.drained()
            self._conn._flush()

    # --- events -----------------------------------------------------------------------------

    def _attach_args(self) -> dict[str, Any]:
        return {
            "source": Source(),
            "target": Target(address=self._address, capabilities=self._capabilities),
            "snd_settle_mode": (
                SenderSettleMode.SETTLED if self._at_most_once else SenderSettleMode.UNSETTLED
            ),
            "rcv_settle_mode": ReceiverSettleMode.FIRST,
            "properties": self._properties,
        }

    def _on_ready(self) -> None:
        self._pump()

    def _on_flow(self, event: LinkFlowed) -> None:
        self._pump()

    def _on_update(self, delivery: EngineDelivery, state: Any, settled: bool) -> None:
        pending = self._unsettled.get(delivery)
        if pending is None:
            return
        if type(state) is TransactionalState:  # sent in a transaction: its outcome in it
            state = state.outcome
        kind = type(state)
        if kind is not Accepted and (state is None or kind is Received) and not settled:
            return  # not an outcome yet
        del self._unsettled[delivery]
        if not settled:
            delivery.settle()
            self._conn._flush()
        if self._closing and not self._unsettled:  # closed: the last outcome came
            self._conn._closed_senders.pop(delivery.link, None)
        future = pending.future
        if kind is Accepted or state is None:
            if not future.done():
                future.set_result(None)
            return
        error: DeliveryError
        if kind is Rejected:
            peer_error = state.error
            if peer_error is not None:
                error = MessageRejected(
                    peer_error.description or "the peer rejected the message",
                    condition=str(peer_error.condition),
                    info=peer_error.info,
                    outcome=state,
                )
            else:
                error = MessageRejected("the peer rejected the message", outcome=state)
        elif kind is Released or kind is Modified:
            if pending.retries < self._retry_released and not self._closing:
                pending.retries += 1
                self._backlog.append(pending)
                self._pump()
                return
            if kind is Released:
                error = MessageReleased("the peer released the message", outcome=state)
            else:
                error = MessageModified(
                    "the peer did not process the message (modified)", outcome=state
                )
        else:
            error = DeliveryError(f"the peer settled the message with {state!r}", outcome=state)
        if not future.done():
            future.set_exception(error)

    def _suspend(self) -> None:
        super()._suspend()
        if self._unsettled:
            # Their outcomes will never come: send them again, first, after reconnecting;
            # not those sent in a transaction, which went with the connection.
            lost = TransactionError(
                "the connection was lost: the transaction the message was sent in is over"
            )
            again: deque[_Pending] = deque()
            for pending in self._unsettled.values():
                if pending.state is None:
                    again.append(pending)
                elif not pending.future.done():
                    pending.future.set_exception(lost)
                    pending.future.exception()  # nobody may be waiting for it
            again.extend(self._backlog)
            self._backlog = again
            self._unsettled = {}

    def _on_failed(self, error: ClientError) -> None:
        unsettled = self._unsettled
        if unsettled and self._closing and self._await_outcomes(next(iter(unsettled))):
            # Closed by us with messages in flight: their deliveries belong to the session,
            # so their outcomes may still come; they fail if the session ends first.
            pending = [*self._backlog]
        else:
            pending = [*unsettled.values(), *self._backlog]
            for delivery in unsettled:  # given up: settle them, or the session keeps them
                if not delivery.settled:
                    delivery.settle()
            self._unsettled = {}
        self._backlog.clear()
        for item in pending:
            if not item.future.done():
                item.future.set_exception(error)
                # Nobody may be waiting (send(wait=False) results dropped on the floor).
                item.future.exception()
        waiters = self._waiters
        while waiters:
            future = waiters.popleft()
            if not future.done():
                future.set_exception(error)

    def _on_detached(self, error: Any, closed: bool, exception: ClientError | None = None) -> None:
        if self._closing and self._unsettled:
            # Our close: outcomes may follow the peer's detach in the same read.
            self._await_outcomes(next(iter(self._unsettled)))
        super()._on_detached(error, closed, exception)

    def _await_outcomes(self, delivery: EngineDelivery) -> bool:
        """Have the connection route outcomes for our deliveries here after the detach,
        while their session lasts; false when it is already over."""
        conn = self._conn
        session = delivery.link.session
        if conn._session is not session:
            return False
        conn._closed_senders[delivery.link] = self
        return True

    def _outcomes_lost(self, error: ClientError) -> None:
        """Closed with messages in flight, and the session ended before their outcomes."""
        pending = self._unsettled
        self._unsettled = {}
        for item in pending.values():
            if not item.future.done():
                item.future.set_exception(error)
                item.future.exception()

    # --- closing ----------------------------------------------------------------------------

    async def wait_settled(self, timeout: float | None = None) -> None:
        """Wait until every message sent so far has its outcome (or ``timeout`` s passed).

        Outcomes that are errors are not raised here; they are in the futures
        ``send(wait=False)`` returned.  Raises :class:`Timeout` after ``timeout``.
        """
        futures = [p.future for p in (*self._unsettled.values(), *self._backlog)]
        if not futures:
            return
        _, not_done = await asyncio.wait(futures, timeout=timeout)
        if not_done:
            raise Timeout(f"{len(not_done)} messages still have no outcome after {timeout:g} s")

    async def close(self, timeout: float | None = 5.0) -> None:
        """Wait (up to ``timeout`` s) for the outcomes of messages in flight, then detach.

        Outcomes that come after the detach still resolve the futures of
        ``send(wait=False)`` (a delivery outlives its link in the session); those
        still open when the connection or its session ends fail with
        :class:`~petrel.client.errors.LinkClosed`.
        """
        if self._error is None and not self._closing:
            try:
                await self.wait_settled(timeout)
            except Timeout:
                self._conn.log.warning(
                    "closing sender %r with %d messages unsettled", self.name, self.unsettled
                )
        await self._detach(True, timeout)

    async def __aenter__(self) -> Sender:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()


def outcomes_lost(closed: dict[Link, Sender], session: Session | None) -> None:
    """``session`` (None: every one) ended: the sends still open on senders closed with
    messages in flight (``closed``, by their detached link) fail."""
    for link, sender in list(closed.items()):
        if session is None or link.session is session:
            del closed[link]
            sender._outcomes_lost(
                LinkClosed(f"the sender {sender.name!r} was closed and its session ended")
            )
