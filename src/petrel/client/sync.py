"""The blocking facade: the async client on a background event loop, for threaded code.

    import petrel

    with petrel.blocking.connect("amqp://localhost") as conn:
        conn.open_sender("orders").send(petrel.Message(body="hi"))
        delivery = conn.open_receiver("orders").receive(timeout=5)
        delivery.accept()

Each :class:`BlockingConnection` runs one event loop in a daemon thread and
the async :class:`~petrel.client.Connection` on it.  Every method hands its
work to that loop and waits for the result, so the objects are safe to use
from any number of threads; nothing of the client's logic is repeated here.
Settling a delivery (accept, reject, ...) does not wait: it is queued on the
loop, in order, and written with the next batch.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any, Literal, TypeVar, overload

from ..driver.loop import uvloop_available
from ..message import Message
from . import connection as _connection
from .connection import Connection
from .errors import ClientError, ConnectionClosed
from .options import ConnectOptions, Urls, takes_connect_options
from .receiver import Delivery, Receiver, rejected
from .request import Responder
from .sender import Sender
from .state import ConnectionState, StateChange, StateChanges
from .transaction import Transaction

__all__ = [
    "BlockingConnection",
    "BlockingDelivery",
    "BlockingReceiver",
    "BlockingResponder",
    "BlockingSender",
    "connect",
]

T = TypeVar("T")


class _LoopThread:
    """An event loop running forever in a daemon thread, until :meth:`stop`."""

    def __init__(self) -> None:
        if uvloop_available():
            import uvloop

            self.loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        else:
            self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="petrel-client-loop", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
            tasks = asyncio.all_tasks(self.loop)
            for task in tasks:
                task.cancel()
            if tasks:
                self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for its result (in the calling thread)."""
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("a blocking call was made from the client's own event loop")
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        except RuntimeError:  # the loop is closed
            coro.close()
            raise ConnectionClosed("the connection is closed") from None
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def call(self, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` on the loop soon; do not wait (nothing if it is closed)."""
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(function, *args)

    def stop(self) -> None:
        """Stop the loop and wait for its thread (cancelling what still runs)."""
        if self.loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # closed meanwhile
            self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.current_thread() is not self.thread:
            self.thread.join()


@takes_connect_options
def connect(url: Urls, options: ConnectOptions) -> BlockingConnection:
    """Open a connection; the options are those of :func:`petrel.connect`
    (:class:`~petrel.client.ConnectOptions`).

    ``on_state_change`` is called in the client's loop thread: keep it short.
    """
    runner = _LoopThread()
    try:
        conn = runner.run(_connection.Connection.open(url, options))
    except BaseException:
        runner.stop()
        raise
    return BlockingConnection(conn, runner)


class BlockingConnection:
    """A connection for threaded code; made by :func:`connect`.  Thread-safe."""

    def __init__(self, conn: Connection, runner: _LoopThread) -> None:
        self._conn = conn
        self._runner = runner

    @property
    def connection(self) -> Connection:
        """The async connection underneath (use it only from its loop)."""
        return self._conn

    @property
    def state(self) -> ConnectionState:
        """Where the connection is: connecting, open, reconnecting or closed."""
        return self._conn.state

    @property
    def url(self) -> str:
        """The peer we are (or were last) connected to."""
        return self._conn.url

    @property
    def container_id(self) -> str:
        """Our container id."""
        return self._conn.container_id

    @property
    def offered_capabilities(self) -> tuple[str, ...]:
        """The capabilities the peer offered."""
        return self._conn.offered_capabilities

    def open_sender(self, address: str | None, **options: Any) -> BlockingSender:
        """Attach a sender; the options are those of :meth:`Connection.open_sender`."""
        sender = self._runner.run(self._conn.open_sender(address, **options))
        return BlockingSender(sender, self._runner)

    def open_receiver(self, address: str | None, **options: Any) -> BlockingReceiver:
        """Attach a receiver; the options are those of :meth:`Connection.open_receiver`."""
        receiver = self._runner.run(self._conn.open_receiver(address, **options))
        return BlockingReceiver(receiver, self._runner)

    def transaction(self, *, timeout: float | None = None) -> BlockingTransaction:
        """A local transaction: ``with conn.transaction() as tx:`` declares it, commits it
        when the block ends and rolls it back when the block raises (see
        :meth:`Connection.transaction`)."""
        return BlockingTransaction(self._conn.transaction(timeout=timeout), self._runner)

    def request(
        self, address: str, message: Message | Any, *, timeout: float | None = 30.0
    ) -> Message:
        """Send a request and wait for its response (see :meth:`Connection.request`)."""
        return self._runner.run(self._conn.request(address, message, timeout=timeout))

    def serve(
        self,
        address: str,
        handler: Callable[[Message], Message | Any],
        *,
        credit: int = 10,
        name: str | None = None,
    ) -> BlockingResponder:
        """Answer requests at ``address`` with ``handler(request) -> response``.

        ``handler`` is a plain function; it runs in a worker thread (the
        loop's default executor), one request at a time.
        """

        async def start() -> Responder:
            loop = asyncio.get_running_loop()

            async def call(request: Message) -> Any:
                return await loop.run_in_executor(None, handler, request)

            return await self._conn.serve(address, call, credit=credit, name=name)

        return BlockingResponder(self._runner.run(start()), self._runner)

    def state_changes(self) -> Iterator[StateChange]:
        """An iterator over the state changes from now on; it ends after ``CLOSED``.

        Each ``next()`` blocks until the next change.
        """
        changes = self._runner.run(_start_watching(self._conn))
        runner = self._runner

        class Changes:
            def __iter__(self) -> Changes:
                return self

            def __next__(self) -> StateChange:
                try:
                    if runner.loop.is_closed():
                        # Closed: what was recorded before the end is all there is.
                        change = changes.next_nowait()
                        if change is None:
                            raise StopIteration
                        return change
                    return runner.run(changes.__anext__())
                except StopAsyncIteration:
                    raise StopIteration from None

        return Changes()

    def wait_closed(self, timeout: float | None = None) -> ClientError | None:
        """Block until the connection is over for good; the error that ended it."""

        async def wait() -> ClientError | None:
            return await asyncio.wait_for(self._conn.wait_closed(), timeout)

        return self._runner.run(wait())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the connection's event loop and wait for its result: the way
        to use async APIs built on :attr:`connection` (a management client, say) from
        threaded code.  Raises what it raises; never call it from that loop itself."""
        return self._runner.run(coro)

    def close(self, *, timeout: float = 5.0) -> None:
        """Close the connection and stop its loop thread."""
        try:
            if not self._runner.loop.is_closed():
                self._runner.run(self._conn.close(timeout=timeout))
        finally:
            self._runner.stop()

    def __enter__(self) -> BlockingConnection:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<petrel.blocking.BlockingConnection {self._conn.url} {self.state.value}>"


async def _start_watching(conn: Connection) -> StateChanges:
    return conn.state_changes()


class BlockingSender:
    """A sending link for threaded code.  Thread-safe."""

    def __init__(self, sender: Sender, runner: _LoopThread) -> None:
        self._sender = sender
        self._runner = runner

    @property
    def address(self) -> str | None:
        """The target address (``None`` for an anonymous sender)."""
        return self._sender.address

    @property
    def name(self) -> str:
        """The link name."""
        return self._sender.name

    @property
    def credit(self) -> int:
        """How many messages the peer lets us send right now."""
        return self._sender.credit

    @overload
    def send(
        self, message: Message | Any, *, timeout: float | None = ..., wait: Literal[True] = ...
    ) -> None: ...

    @overload
    def send(
        self, message: Message | Any, *, timeout: float | None = ..., wait: Literal[False]
    ) -> concurrent.futures.Future[None]: ...

    def send(
        self, message: Message | Any, *, timeout: float | None = None, wait: bool = True
    ) -> concurrent.futures.Future[None] | None:
        """Send and wait for the outcome (see :meth:`Sender.send`).

        With ``wait=False`` it returns once the message is written, with a
        :class:`concurrent.futures.Future` of the outcome.
        """
        if wait:
            self._runner.run(self._sender.send(message, timeout=timeout))
            return None

        async def submit() -> concurrent.futures.Future[None]:
            outcome = await self._sender.send(message, timeout=timeout, wait=False)
            result: concurrent.futures.Future[None] = concurrent.futures.Future()
            outcome.add_done_callback(lambda done: _copy_outcome(done, result))
            return result

        return self._runner.run(submit())

    def wait_settled(self, timeout: float | None = None) -> None:
        """Wait until every message sent so far has its outcome."""
        self._runner.run(self._sender.wait_settled(timeout))

    def close(self, timeout: float | None = 5.0) -> None:
        """Wait for outcomes in flight, then detach."""
        self._runner.run(self._sender.close(timeout))

    def __enter__(self) -> BlockingSender:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def _copy_outcome(done: asyncio.Future[None], result: concurrent.futures.Future[None]) -> None:
    if done.cancelled():
        result.cancel()
    elif (error := done.exception()) is not None:
        result.set_exception(error)
    else:
        result.set_result(None)


class BlockingReceiver:
    """A receiving link for threaded code.  Thread-safe.

    ``for delivery in receiver:`` receives until the receiver is closed.
    """

    def __init__(self, receiver: Receiver, runner: _LoopThread) -> None:
        self._receiver = receiver
        self._runner = runner

    @property
    def address(self) -> str | None:
        """The source address (for a dynamic receiver, the one the peer assigned)."""
        return self._receiver.address

    @property
    def name(self) -> str:
        """The link name."""
        return self._receiver.name

    @property
    def credit(self) -> int:
        """The credit the peer has from us right now."""
        return self._receiver.credit

    def receive(self, timeout: float | None = None) -> BlockingDelivery:
        """The next delivery; raises :class:`~petrel.client.errors.Timeout` after ``timeout`` s."""
        delivery = self._runner.run(self._receiver.receive(timeout))
        return BlockingDelivery(delivery, self._runner)

    def __iter__(self) -> Iterator[BlockingDelivery]:
        return self

    def __next__(self) -> BlockingDelivery:
        try:
            return self.receive()
        except ClientError:
            if self._receiver._stopped or self._receiver._conn._closing:
                raise StopIteration from None
            raise

    def add_credit(self, credit: int) -> None:
        """Let the peer send ``credit`` more messages (for ``credit=0`` receivers)."""

        async def add() -> None:
            self._receiver.add_credit(credit)

        self._runner.run(add())

    def drain(self, timeout: float | None = None) -> None:
        """Have the peer use up or give back our credit (see :meth:`Receiver.drain`)."""
        self._runner.run(self._receiver.drain(timeout))

    def close(self, timeout: float | None = 5.0) -> None:
        """Detach and close the link (ends a durable subscription)."""
        self._runner.run(self._receiver.close(timeout))

    def detach(self, timeout: float | None = 5.0) -> None:
        """Detach without closing (a durable subscription is kept)."""
        self._runner.run(self._receiver.detach(timeout))

    def __enter__(self) -> BlockingReceiver:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._receiver._durable:
            self.detach()
        else:
            self.close()


class BlockingDelivery:
    """A received message for threaded code; settling it does not block."""

    __slots__ = ("_delivery", "_runner")

    def __init__(self, delivery: Delivery, runner: _LoopThread) -> None:
        self._delivery = delivery
        self._runner = runner

    @property
    def message(self) -> Message:
        """The message, decoded on first access."""
        return self._delivery.message

    @property
    def payload(self) -> bytes:
        """The encoded message."""
        return self._delivery.payload

    @property
    def tag(self) -> bytes:
        """The delivery tag."""
        return self._delivery.tag

    @property
    def settled(self) -> bool:
        """Whether it is settled."""
        return self._delivery.settled

    def accept(self) -> None:
        """Accept the message."""
        self._runner.call(self._delivery.settle)

    def reject(
        self,
        condition: str | None = None,
        description: str | None = None,
        *,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        """Reject the message (see :meth:`Delivery.reject`)."""
        self._runner.call(self._delivery.settle, rejected(condition, description, info))

    def release(self, *, delivered: bool = False) -> None:
        """Give the message back unprocessed (see :meth:`Delivery.release`)."""
        self._runner.run(self._delivery.release(delivered=delivered))

    def modify(
        self,
        *,
        delivery_failed: bool = True,
        undeliverable_here: bool = False,
        annotations: Mapping[str, Any] | None = None,
    ) -> None:
        """Give the message back changed (see :meth:`Delivery.modify`)."""
        self._runner.run(
            self._delivery.modify(
                delivery_failed=delivery_failed,
                undeliverable_here=undeliverable_here,
                annotations=annotations,
            )
        )


class BlockingTransaction:
    """A local transaction for threaded code (see :class:`~petrel.client.Transaction`)."""

    def __init__(self, transaction: Transaction, runner: _LoopThread) -> None:
        self._tx = transaction
        self._runner = runner

    @property
    def id(self) -> bytes | None:
        """The id the coordinator gave it (None until declared)."""
        return self._tx.id

    def declare(self) -> BlockingTransaction:
        """Ask the coordinator for the transaction (``with`` does it on entry)."""
        self._runner.run(self._tx.declare())
        return self

    def send(
        self,
        sender: BlockingSender,
        message: Message | Any,
        *,
        wait: bool = False,
        timeout: float | None = None,
    ) -> None:
        """Send in the transaction (see :meth:`Transaction.send`: pipelined unless ``wait``)."""
        self._runner.run(self._tx.send(sender._sender, message, wait=wait, timeout=timeout))

    def accept(self, delivery: BlockingDelivery) -> None:
        """Accept in the transaction: settled on commit."""
        self._runner.run(self._tx.accept(delivery._delivery))

    def reject(
        self,
        delivery: BlockingDelivery,
        condition: str | None = None,
        description: str | None = None,
        *,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        """Reject in the transaction (see :meth:`Transaction.reject`)."""
        self._runner.run(self._tx.reject(delivery._delivery, condition, description, info=info))

    def release(self, delivery: BlockingDelivery, *, delivered: bool = False) -> None:
        """Release in the transaction."""
        self._runner.run(self._tx.release(delivery._delivery, delivered=delivered))

    def modify(
        self,
        delivery: BlockingDelivery,
        *,
        delivery_failed: bool = True,
        undeliverable_here: bool = False,
        annotations: Mapping[str, Any] | None = None,
    ) -> None:
        """Modify in the transaction."""
        self._runner.run(
            self._tx.modify(
                delivery._delivery,
                delivery_failed=delivery_failed,
                undeliverable_here=undeliverable_here,
                annotations=annotations,
            )
        )

    def commit(self, timeout: float | None = None) -> None:
        """Commit (see :meth:`Transaction.commit`)."""
        self._runner.run(self._tx.commit(timeout))

    def rollback(self, timeout: float | None = None) -> None:
        """Roll back (see :meth:`Transaction.rollback`)."""
        self._runner.run(self._tx.rollback(timeout))

    def __enter__(self) -> BlockingTransaction:
        if self._tx.id is None:
            self.declare()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._runner.run(self._tx.__aexit__(exc_type, exc, tb))


class BlockingResponder:
    """Answers requests at one address (see :meth:`BlockingConnection.serve`)."""

    def __init__(self, responder: Responder, runner: _LoopThread) -> None:
        self._responder = responder
        self._runner = runner

    @property
    def handled(self) -> int:
        """How many requests were answered."""
        return self._responder.handled

    def close(self) -> None:
        """Stop answering."""
        self._runner.run(self._responder.close())

    def __enter__(self) -> BlockingResponder:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
