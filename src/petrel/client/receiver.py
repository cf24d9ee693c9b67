"""Receiving messages: a prefetch window refilled in batches, deliveries and their outcomes."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import tracing
from ..errors import Condition
from ..message import Message
from ..spec import (
    CAP_GLOBAL,
    CAP_SHARED,
    SELECTOR_FILTER,
    SELECTOR_FILTER_KEY,
    Accepted,
    DistributionMode,
    Error,
    ExpiryPolicy,
    Modified,
    ReceiverSettleMode,
    Rejected,
    Released,
    SenderSettleMode,
    Source,
    Target,
    TerminusDurability,
)
from ..types import Described, Symbol
from ._wait import wait_future
from .errors import ClientError, NotImplementedByPeer
from .links import LinkEndpoint

if TYPE_CHECKING:
    from ..engine import Delivery as EngineDelivery
    from ..engine import Link
    from ..engine.events import LinkFlowed
    from .connection import Connection

__all__ = [
    "Delivery",
    "Receiver",
    "modified",
    "rejected",
    "released",
    "selector_filter",
]

#: The descriptor of JMS-style selector filters (the Apache/OASIS filter registry).

_ACCEPTED = Accepted()
_RELEASED = Released()


def selector_filter(selector: str) -> Described:
    """The filter-set entry value for a JMS-style ``selector`` (``"color = 'red'"``)."""
    return Described(SELECTOR_FILTER, selector)


def rejected(
    condition: str | None = None,
    description: str | None = None,
    info: Mapping[str, Any] | None = None,
) -> Rejected:
    """The ``rejected`` outcome (see :meth:`Delivery.reject`)."""
    error = None
    if condition is not None or description is not None or info:
        error = Error(
            condition=Symbol(condition or Condition.INTERNAL_ERROR),
            description=description,
            info={Symbol(k): v for k, v in info.items()} if info else None,
        )
    return Rejected(error=error)


#: The descriptor a source lists when it offers the ``modified`` outcome.
_MODIFIED_OUTCOME = "amqp:modified:list"


def released(delivered: bool = False) -> Released | Modified:
    """The ``released`` outcome, or ``modified`` with delivery-failed if ``delivered``."""
    return Modified(delivery_failed=True) if delivered else _RELEASED


def modified(
    delivery_failed: bool = True,
    undeliverable_here: bool = False,
    annotations: Mapping[str, Any] | None = None,
) -> Modified:
    """The ``modified`` outcome (see :meth:`Delivery.modify`)."""
    return Modified(
        delivery_failed=delivery_failed,
        undeliverable_here=undeliverable_here,
        message_annotations={Symbol(k): v for k, v in annotations.items()} if annotations else None,
    )


class Delivery:
    """A message received on a :class:`Receiver`, and what we do with it.

    ``message`` is decoded the first time it is read.  Settle each delivery
    once: :meth:`accept`, :meth:`reject`, :meth:`release` or :meth:`modify`
    (a second call does nothing).  Deliveries of an at-most-once receiver
    arrive settled; settling them does nothing.  After a reconnect, settling
    a delivery that came on the old connection does nothing: the peer sends
    it again.
    """

    __slots__ = ("_delivery", "_message", "_payload", "_receiver")

    def __init__(self, receiver: Receiver, delivery: EngineDelivery, payload: bytes) -> None:
        self._receiver = receiver
        self._delivery = delivery
        self._payload = payload
        self._message: Message | None = None

    @property
    def message(self) -> Message:
        """The message, decoded (once) on first access."""
        message = self._message
        if message is None:
            message = self._message = Message.decode(self._payload)
        return message

    @property
    def payload(self) -> bytes:
        """The encoded message, as it arrived."""
        return self._payload

    @property
    def tag(self) -> bytes:
        """The delivery tag."""
        return self._delivery.tag

    @property
    def receiver(self) -> Receiver:
        """The receiver it arrived on."""
        return self._receiver

    @property
    def settled(self) -> bool:
        """Whether it is settled (by us, or pre-settled by the sender)."""
        delivery = self._delivery
        return delivery.settled or delivery.remote_settled

    async def accept(self) -> None:
        """Accept the message: processed, the peer may forget it."""
        self.settle(_ACCEPTED)

    async def reject(
        self,
        condition: str | None = None,
        description: str | None = None,
        *,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        """Reject the message as invalid, with an optional error.

        The peer usually dead-letters it.  ``condition`` defaults to
        ``amqp:internal-error`` when a ``description`` or ``info`` is given.
        """
        self.settle(rejected(condition, description, info))

    async def release(self, *, delivered: bool = False) -> None:
        """Give the message back unprocessed; the peer may deliver it again.

        ``delivered=True`` counts this as a delivery attempt (``modified`` with
        delivery-failed), as Proton's ``release(delivered=True)`` does, where the
        peer's source offers ``modified``; where it does not (RabbitMQ 3), the
        message is released plainly rather than the session put at risk.
        """
        if delivered and not self._receiver._offers(_MODIFIED_OUTCOME):
            delivered = False
        self.settle(released(delivered))

    async def modify(
        self,
        *,
        delivery_failed: bool = True,
        undeliverable_here: bool = False,
        annotations: Mapping[str, Any] | None = None,
    ) -> None:
        """Give the message back changed: ``delivery_failed`` raises its delivery
        count, ``undeliverable_here`` asks not to deliver it to this receiver
        again, ``annotations`` are merged into its message annotations.

        Raises :class:`NotImplementedByPeer`, settling nothing, where the peer's
        source does not offer the ``modified`` outcome (the peer would end the
        session over it); :meth:`release` or :meth:`reject` remain.
        """
        receiver = self._receiver
        if not receiver._offers(_MODIFIED_OUTCOME):
            raise NotImplementedByPeer(
                f"the source of {receiver.address!r} does not offer the modified outcome "
                f"(it offers {', '.join(receiver._outcomes() or ())})"
            )
        self.settle(modified(delivery_failed, undeliverable_here, annotations))

    def settle(self, outcome: Any = _ACCEPTED) -> None:
        """Settle with ``outcome`` (a ``petrel.spec`` delivery state) without awaiting.

        This is what :meth:`accept` and friends do; it may be called from
        plain functions.  The disposition leaves with the next write, batched
        with its neighbours.
        """
        delivery = self._delivery
        if delivery.settled or delivery.remote_settled:
            return
        delivery.update(outcome, settled=True)
        self._receiver._conn._flush()

    def __repr__(self) -> str:
        return f"<petrel.Delivery tag={self._delivery.tag!r} settled={self.settled}>"


class Receiver(LinkEndpoint):
    """A receiving link; made by :meth:`Connection.open_receiver`.

    Get messages with :meth:`receive` or ``async for delivery in receiver``.
    Use it as an async context manager, or call :meth:`close` (or
    :meth:`detach` to keep a durable subscription).
    """

    _is_sender = False
    _kind = "receiver"

    def __init__(
        self,
        conn: Connection,
        name: str,
        address: str | None,
        *,
        credit: int = 100,
        auto_accept: bool = False,
        selector: str | None = None,
        filter: Mapping[str, Any] | None = None,
        browse: bool = False,
        durable: bool = False,
        shared: bool | str = False,
        dynamic: bool = False,
        at_most_once: bool = False,
        capabilities: Sequence[str] | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(conn, name)
        self._address = address
        self._window = credit
        self._low = max(1, credit // 2)
        self._auto_accept = auto_accept
        self._durable = durable
        self._at_most_once = at_most_once
        self._properties = {Symbol(k): v for k, v in properties.items()} if properties else None
        self._source = _source(
            address, selector, filter, browse, durable, shared, dynamic, capabilities
        )
        self._buffer: deque[Delivery] = deque()
        self._getters: deque[asyncio.Future[Delivery]] = deque()
        self._callback: Callable[[Delivery], None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._manual_credit = 0
        self._remote_address: str | None = None
        self._stopped = False

    @property
    def address(self) -> str | None:
        """The source address; for a dynamic receiver, the one the peer assigned."""
        return self._remote_address if self._remote_address is not None else self._address

    @property
    def remote_source(self) -> Source | None:
        """The source as the peer answered it (what it really applied: filters,
        distribution mode, the dynamic address); ``None`` while not attached."""
        link = self._link
        return link.remote_source if link is not None else None

    def _outcomes(self) -> tuple[str, ...] | None:
        """The outcomes the peer's source offers; ``None`` when it does not say."""
        source = self.remote_source
        outcomes = source.outcomes if source is not None else None
        if not outcomes:
            return None
        return (str(outcomes),) if isinstance(outcomes, str) else tuple(map(str, outcomes))

    def _offers(self, outcome: str) -> bool:
        """Whether ``outcome`` may be chosen here: a source that lists no outcomes
        leaves them all to us (as every broker does in practice)."""
        outcomes = self._outcomes()
        return outcomes is None or outcome in outcomes

    @property
    def credit(self) -> int:
        """The credit the peer has from us right now."""
        link = self._link
        return link.credit if link is not None else 0

    @property
    def buffered(self) -> int:
        """Deliveries received and not yet handed to the application."""
        return len(self._buffer)

    # --- receiving --------------------------------------------------------------------------

    async def receive(self, timeout: float | None = None) -> Delivery:
        """The next delivery; waits for one (at most ``timeout`` seconds, then raises
        :class:`~petrel.client.errors.Timeout`).

        Raises the link's error once it is over (``LinkClosed`` after
        :meth:`close`, the peer's error when it detached the link).
        """
        buffer = self._buffer
        if buffer:
            delivery = buffer.popleft()
        else:
            if self._error is not None:
                raise self._error
            future: asyncio.Future[Delivery] = self._loop.create_future()
            self._getters.append(future)
            try:
                delivery = await wait_future(future, timeout, f"receiving from {self.address!r}")
            except BaseException:
                if future.done() and not future.cancelled() and future.exception() is None:
                    buffer.appendleft(future.result())  # arrived as we were cancelled: keep it
                else:
                    with contextlib.suppress(ValueError):
                        self._getters.remove(future)
                raise
        self._handed_over()
        traced = tracing.client
        if traced is not None and traced.recording():
            traced.received(delivery.payload, self.address)
        if self._auto_accept:
            delivery.settle(_ACCEPTED)
        return delivery

    def receive_nowait(self) -> Delivery | None:
        """The next buffered delivery, or ``None`` if none has arrived."""
        if not self._buffer:
            if self._error is not None:
                raise self._error
            return None
        delivery = self._buffer.popleft()
        self._handed_over()
        traced = tracing.client
        if traced is not None and traced.recording():
            traced.received(delivery.payload, self.address)
        if self._auto_accept:
            delivery.settle(_ACCEPTED)
        return delivery

    def __aiter__(self) -> Receiver:
        return self

    async def __anext__(self) -> Delivery:
        try:
            return await self.receive()
        except ClientError:
            if self._stopped or self._conn._closing:
                raise StopAsyncIteration from None
            raise

    def _handed_over(self) -> None:
        """Refill the credit window once half of it has been used."""
        window = self._window
        if window:
            link = self._link
            if link is not None and not self._closing:
                room = window - len(self._buffer)
                if room - link.credit >= self._low:
                    link.flow(room)
                    self._conn._flush()

    # --- manual credit ----------------------------------------------------------------------

    def add_credit(self, credit: int) -> None:
        """Let the peer send ``credit`` more messages (for ``credit=0`` receivers)."""
        if self._error is not None:
            raise self._error
        if credit <= 0:
            return
        link = self._link
        if link is None:
            self._manual_credit += credit  # granted when the link is attached again
            return
        link.add_credit(credit)
        self._conn._flush()

    async def drain(self, timeout: float | None = None) -> None:
        """Ask the peer to use up our credit now or give it back; wait until it has.

        Afterwards the credit is 0 and every message the peer had for us is
        in the buffer (:attr:`buffered`).
        """
        if self._error is not None:
            raise self._error
        link = self._link
        if link is None or link.credit == 0:
            return
        future: asyncio.Future[None] = self._loop.create_future()
        self._drain_waiter = future
        link.flow(link.credit, drain=True)
        self._conn._flush()
        try:
            await wait_future(future, timeout, "draining")
        finally:
            self._drain_waiter = None

    # --- events -----------------------------------------------------------------------------

    def _attach_args(self) -> dict[str, Any]:
        return {
            "source": self._source,
            "target": Target(),
            "snd_settle_mode": (
                SenderSettleMode.SETTLED if self._at_most_once else SenderSettleMode.MIXED
            ),
            "rcv_settle_mode": ReceiverSettleMode.FIRST,
            "properties": self._properties,
        }

    def _after_attach_sent(self, link: Link) -> None:
        if self._window:
            credit = self._window - len(self._buffer)
        else:
            credit = self._manual_credit
            self._manual_credit = 0
        if credit > 0:
            link.flow(credit)

    def _on_ready(self) -> None:
        link = self._link
        if link is not None and self._source.dynamic:
            source = link.remote_source
            address = getattr(source, "address", None)
            self._remote_address = str(address) if address is not None else None

    def _on_delivery(self, delivery: EngineDelivery, payload: bytes) -> None:
        if self._closing:
            return  # unsettled, it goes back to the peer with the detach
        item = Delivery(self, delivery, payload)
        callback = self._callback
        if callback is not None:
            traced = tracing.client
            if traced is not None and traced.recording():
                traced.received(payload, self.address)
            callback(item)
            self._handed_over()
            return
        getters = self._getters
        while getters:
            getter = getters.popleft()
            if not getter.done():
                getter.set_result(item)
                return
        self._buffer.append(item)

    def _on_flow(self, event: LinkFlowed) -> None:
        waiter = self._drain_waiter
        if event.drained and waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _suspend(self) -> None:
        link = self._link
        if link is not None and not self._window:
            self._manual_credit += link.credit
        super()._suspend()
        if self._source.dynamic:
            self._remote_address = None  # the node went with the connection
        # Unsettled deliveries of the lost connection come again; keep only pre-settled ones.
        if self._buffer:
            self._buffer = deque(d for d in self._buffer if d._delivery.remote_settled)
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _on_failed(self, error: ClientError) -> None:
        getters = self._getters
        while getters:
            getter = getters.popleft()
            if not getter.done():
                getter.set_exception(error)
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    # --- closing ----------------------------------------------------------------------------

    async def close(self, timeout: float | None = 5.0) -> None:
        """Detach and close the link; for a durable subscription this ends it.

        Deliveries received but not settled go back to the peer (it releases them).
        """
        self._stopped = True
        self._buffer.clear()
        await self._detach(True, timeout)

    async def detach(self, timeout: float | None = 5.0) -> None:
        """Detach without closing: a durable subscription keeps its messages for
        a receiver that attaches again with the same name (and container id)."""
        self._stopped = True
        self._buffer.clear()
        await self._detach(False, timeout)

    async def __aenter__(self) -> Receiver:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        if self._durable:
            await self.detach()
        else:
            await self.close()


def _source(
    address: str | None,
    selector: str | None,
    filters: Mapping[str, Any] | None,
    browse: bool,
    durable: bool,
    shared: bool | str,
    dynamic: bool,
    capabilities: Sequence[str] | None,
) -> Source:
    filter_set: dict[Any, Any] = {}
    if selector is not None:
        filter_set[SELECTOR_FILTER_KEY] = selector_filter(selector)
    if filters:
        filter_set.update({Symbol(k) if type(k) is str else k: v for k, v in filters.items()})
    caps = [Symbol(c) for c in capabilities or ()]
    if shared:
        caps.append(CAP_SHARED)
        if shared == "global":
            caps.append(CAP_GLOBAL)
    fields: dict[str, Any] = {}
    if durable:
        fields["durable"] = TerminusDurability.UNSETTLED_STATE
        fields["expiry_policy"] = ExpiryPolicy.NEVER
    return Source(
        address=address,
        dynamic=dynamic,
        filter=filter_set or None,
        distribution_mode=DistributionMode.COPY if browse else None,
        capabilities=tuple(caps) or None,
        **fields,
    )
