"""Request/response over AMQP: a dynamic reply queue and correlation ids.

:class:`Requester` is behind :meth:`Connection.request`: one dynamic
receiver per connection takes every response, and each is matched to its
waiting request by ``correlation_id`` right in the event handler.  A reply's
``correlation_id`` may equal the request's ``message_id`` or be a copy of its
``correlation_id``: both conventions are in use.
:class:`Responder` is behind :meth:`Connection.serve`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import itertools
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from ..errors import Condition
from ..message import Message
from ..spec import ANONYMOUS_RELAY
from ._wait import wait_future
from .errors import ClientError, ConnectionLost, LinkClosed

if TYPE_CHECKING:
    from .connection import Connection
    from .receiver import Delivery, Receiver
    from .sender import Sender

__all__ = ["Requester", "Responder", "ResponseHandler"]

#: What :meth:`Connection.serve` calls: the request in, the response (or its body) out.
ResponseHandler: TypeAlias = Callable[[Message], "Message | Any | Awaitable[Message | Any]"]

#: How many per-address senders a requester or responder keeps open.
_MAX_SENDERS = 32


class _Senders:
    """Senders by address, or one anonymous sender when the peer offers ANONYMOUS-RELAY."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._by_address: OrderedDict[str, Sender] = OrderedDict()
        self._anonymous: Sender | None = None
        self._lock = asyncio.Lock()

    async def get(self, address: str) -> tuple[Sender, bool]:
        """A sender for ``address``; the flag says whether messages need ``to`` set."""
        async with self._lock:
            if ANONYMOUS_RELAY in self._conn._offered:
                sender = self._anonymous
                if sender is None or not sender.is_open:
                    sender = self._anonymous = await self._conn.open_sender(None)
                return sender, True
            sender = self._by_address.get(address)
            if sender is not None and sender.is_open:
                self._by_address.move_to_end(address)
                return sender, False
            sender = await self._conn.open_sender(address)
            self._by_address[address] = sender
            if len(self._by_address) > _MAX_SENDERS:
                _, oldest = self._by_address.popitem(last=False)
                await oldest.close()
            return sender, False

    async def close(self) -> None:
        senders = list(self._by_address.values())
        if self._anonymous is not None:
            senders.append(self._anonymous)
        self._by_address.clear()
        self._anonymous = None
        for sender in senders:
            with contextlib.suppress(ClientError):
                await sender.close(timeout=1.0)


class Requester:
    """The request side of one connection (see the module docstring)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._receiver: Receiver | None = None
        self._senders = _Senders(conn)
        self._pending: dict[Any, asyncio.Future[Message]] = {}
        self._prefix = uuid.uuid4().hex
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()

    async def _reply_receiver(self) -> Receiver:
        async with self._lock:
            receiver = self._receiver
            if receiver is None or not receiver.is_open:
                receiver = await self._conn.open_receiver(None, dynamic=True, credit=100)
                receiver._callback = self._on_reply
                self._receiver = receiver
            return receiver

    async def request(self, address: str, message: Any, timeout: float | None) -> Message:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout

        def remaining() -> float | None:
            return None if deadline is None else max(0.0, deadline - loop.time())

        receiver = await self._reply_receiver()
        await receiver._wait_ready(remaining())  # its address changes with each connection
        if not isinstance(message, Message):
            message = Message(message)
        message_id = message.message_id
        if message_id is None:
            message_id = f"{self._prefix}-{next(self._ids)}"
        # Servers answer with correlation-id set either to the request's message-id (the
        # usual rule, and Petrel's responder) or to a copy of its correlation-id (Proton's
        # example servers).  A request without a correlation-id gets its message-id there
        # too, so both conventions name the same key; one of its own is a second key.
        correlation_id = message.correlation_id
        if correlation_id is None:
            correlation_id = message_id
        keys = {message_id, correlation_id}
        for key in keys:
            if key in self._pending:
                raise ValueError(f"a request with the id {key!r} is already waiting")
        sender, needs_to = await self._senders.get(address)
        message = dataclasses.replace(
            message,
            message_id=message_id,
            correlation_id=correlation_id,
            reply_to=receiver.address,
            to=address if needs_to else message.to,
        )
        response: asyncio.Future[Message] = loop.create_future()
        for key in keys:
            self._pending[key] = response
        try:
            outcome = await sender.send(message, wait=False, timeout=remaining())
            outcome.add_done_callback(lambda done: _refused(done, response))
            return await wait_future(  # type: ignore[no-any-return]
                response, remaining(), f"waiting for the response from {address!r}"
            )
        finally:
            for key in keys:
                self._pending.pop(key, None)

    def _on_reply(self, delivery: Delivery) -> None:
        delivery.settle()
        try:
            message = delivery.message
        except Exception:
            self._conn.log.warning("dropping a response that cannot be decoded")
            return
        waiter = self._pending.get(message.correlation_id)
        if waiter is None:
            self._conn.log.debug("a response nobody waits for: %r", message.correlation_id)
        elif not waiter.done():
            waiter.set_result(message)

    def _suspend(self, error: ClientError) -> None:
        """The connection was lost: the reply address goes with it, so fail what waits."""
        lost = ConnectionLost(f"the connection was lost while waiting for a response: {error}")
        for waiter in self._pending.values():
            if not waiter.done():
                waiter.set_exception(lost)

    def _fail(self, error: ClientError) -> None:
        for waiter in self._pending.values():
            if not waiter.done():
                waiter.set_exception(error)


def _refused(outcome: asyncio.Future[None], response: asyncio.Future[Message]) -> None:
    if outcome.cancelled():
        return
    error = outcome.exception()
    if error is not None and not response.done():
        response.set_exception(error)


class Responder:
    """Answers the requests arriving at one address; made by :meth:`Connection.serve`.

    Requests are handled one at a time, in order.  Use it as an async
    context manager, or call :meth:`close`.
    """

    def __init__(self, conn: Connection, address: str, handler: ResponseHandler) -> None:
        self._conn = conn
        self.address = address
        self._handler = handler
        self._senders = _Senders(conn)
        self._receiver: Receiver | None = None
        self._task: asyncio.Task[None] | None = None
        self._busy = False
        self._stopping = False
        #: How many requests were answered.
        self.handled = 0

    async def _start(self, *, credit: int, name: str | None) -> None:
        self._receiver = await self._conn.open_receiver(self.address, credit=credit, name=name)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        receiver = self._receiver
        assert receiver is not None
        try:
            async for delivery in receiver:
                self._busy = True
                try:
                    await self._answer(delivery)
                finally:
                    self._busy = False
                if self._stopping:
                    break
        except LinkClosed as exc:
            self._conn.log.info("responder on %r stopped: %s", self.address, exc)
        except ClientError as exc:
            self._conn.log.warning("responder on %r stopped: %s", self.address, exc)

    async def _answer(self, delivery: Delivery) -> None:
        try:
            request = delivery.message
            result = self._handler(request)
            if inspect.isawaitable(result):
                result = await result
            reply_to = request.reply_to
            if reply_to is None:
                self._conn.log.warning("a request on %r has no reply-to; dropped", self.address)
                await delivery.accept()
                return
            response = result if isinstance(result, Message) else Message(result)
            correlation = request.message_id
            if correlation is None:
                correlation = request.correlation_id
            sender, needs_to = await self._senders.get(str(reply_to))
            response = dataclasses.replace(
                response,
                correlation_id=correlation,
                to=str(reply_to) if needs_to else response.to,
            )
            await sender.send(response)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._conn.log.warning("request on %r failed: %r", self.address, exc)
            await delivery.reject(Condition.INTERNAL_ERROR, f"the request failed: {exc}")
            return
        await delivery.accept()
        self.handled += 1

    async def _stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        task = self._task
        self._task = None
        if task is not None and not task.done():
            if not self._busy:
                task.cancel()  # waiting for a request: nothing is lost
            # Otherwise let the request in hand finish (its answer sent, it accepted).
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout)
        if self._receiver is not None and self._receiver.is_open and not self._conn._closing:
            await self._receiver.close(timeout=1.0)
        if not self._conn._closing:
            await self._senders.close()

    async def close(self) -> None:
        """Stop answering: detach the request receiver and the reply senders."""
        await self._stop()
        with contextlib.suppress(ValueError):
            self._conn._responders.remove(self)

    async def __aenter__(self) -> Responder:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()
