"""What senders and receivers share: attaching, re-attaching after a reconnect, detaching."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, ClassVar

from ..engine import LinkState
from ._wait import wait_future
from .errors import ClientError, LinkClosed, Timeout, error_from

if TYPE_CHECKING:
    from ..engine import Delivery as EngineDelivery
    from ..engine import Link
    from ..engine.events import LinkFlowed
    from .connection import Connection

__all__ = ["LinkEndpoint"]


class LinkEndpoint:
    """One client link: its engine link on the current connection, if any.

    A client link outlives the engine links under it: when the connection is
    lost it is *suspended* (no engine link), and once the client has
    reconnected it is attached again under the same name.  It is over when
    the application closes it, the peer detaches it, or the connection ends
    for good; ``_error`` then says why, and every later call raises it.
    """

    _is_sender: ClassVar[bool]
    _kind: ClassVar[str]

    def __init__(self, conn: Connection, name: str) -> None:
        self._conn = conn
        self._loop = conn._loop
        self.name = name
        self._link: Link | None = None
        self._ready = False
        self._attached_once: asyncio.Future[None] = self._loop.create_future()
        self._detached: asyncio.Future[None] | None = None
        self._error: ClientError | None = None
        self._closing = False
        self._ready_event = asyncio.Event()

    @property
    def connection(self) -> Connection:
        """The connection this link belongs to."""
        return self._conn

    @property
    def is_open(self) -> bool:
        """Whether the link can still be used (it may be waiting for a reconnect)."""
        return self._error is None and not self._closing

    # --- for subclasses ---------------------------------------------------------------------

    def _attach_args(self) -> dict[str, Any]:
        raise NotImplementedError

    def _after_attach_sent(self, link: Link) -> None:
        """Called right after our attach is written (receivers grant credit here)."""

    def _on_ready(self) -> None:
        """Called when the peer's attach arrived."""

    def _on_failed(self, error: ClientError) -> None:
        """Called once when the link is over: fail whatever waits on it."""

    def _on_delivery(self, delivery: EngineDelivery, payload: bytes) -> None:
        pass

    def _on_update(self, delivery: EngineDelivery, state: Any, settled: bool) -> None:
        pass

    def _on_flow(self, event: LinkFlowed) -> None:
        pass

    # --- attach -----------------------------------------------------------------------------

    async def _open(self, timeout: float | None) -> None:
        self._conn._add_endpoint(self)
        try:
            await wait_future(self._attached_once, timeout, f"attaching {self._kind} {self.name!r}")
        except BaseException as exc:
            self._abandon(exc)
            raise
        if self._error is not None:
            # The peer refused the link: its detach came right behind its attach.
            raise self._error

    def _attach(self) -> None:
        """Attach on the connection's current session (first time, or after a reconnect)."""
        self._ready = False
        link = self._conn._new_link(self, self._is_sender, **self._attach_args())
        self._link = link
        self._after_attach_sent(link)

    def _on_attached(self, link: Link) -> None:
        if link.state is not LinkState.ATTACHED:
            return  # already detached again: the detach event follows
        terminus = link.remote_target if self._is_sender else link.remote_source
        if terminus is None:
            return  # a refusal: the peer's detach follows
        self._ready = True
        self._ready_event.set()
        if not self._attached_once.done():
            self._attached_once.set_result(None)
        self._on_ready()

    def _on_detached(self, error: Any, closed: bool, exception: ClientError | None = None) -> None:
        self._link = None
        self._ready = False
        if self._closing:
            if self._detached is not None and not self._detached.done():
                self._detached.set_result(None)
            return
        exc = exception or error_from(error, LinkClosed, f"the peer detached {self.name!r}")
        self._conn.log.info("%s %r detached by the peer: %s", self._kind, self.name, exc)
        self._conn._remove_endpoint(self)
        self._fail(exc)

    def _suspend(self) -> None:
        """The connection was lost; the link will be attached again after a reconnect."""
        self._link = None
        self._ready = False
        self._ready_event.clear()

    async def _wait_ready(self, timeout: float | None) -> None:
        """Wait until the link is attached on the current connection (after a reconnect)."""
        if not self._ready_event.is_set():
            try:
                await asyncio.wait_for(self._ready_event.wait(), timeout)
            except TimeoutError:
                raise Timeout(f"{self._kind} {self.name!r} is not attached") from None
        if self._error is not None:
            raise self._error

    def _fail(self, error: ClientError) -> None:
        """The link is over for good."""
        if self._error is None:
            self._error = error
        self._link = None
        self._ready = False
        if not self._attached_once.done():
            self._attached_once.set_exception(error)
        if self._detached is not None and not self._detached.done():
            self._detached.set_result(None)
        self._ready_event.set()  # wake whoever waits for it: they find the error
        self._on_failed(self._error)

    def _abandon(self, exc: BaseException) -> None:
        """Opening failed or was cancelled: forget the link (detaching it if it got that far)."""
        link = self._link
        self._closing = True
        if link is not None and link.state in (LinkState.ATTACH_SENT, LinkState.ATTACHED):
            link.detach()
            self._conn._flush()
        self._conn._remove_endpoint(self)
        error = exc if isinstance(exc, ClientError) else LinkClosed(f"opening {self.name!r} failed")
        self._fail(error)

    # --- detach -----------------------------------------------------------------------------

    async def _detach(self, closed: bool, timeout: float | None) -> None:
        if self._closing or self._error is not None:
            return
        self._closing = True
        link = self._link
        if link is not None and link.state in (LinkState.ATTACH_SENT, LinkState.ATTACHED):
            self._detached = self._loop.create_future()
            link.detach(closed=closed)
            self._conn._flush()
            try:
                await wait_future(self._detached, timeout, f"detaching {self.name!r}")
            except Timeout:
                self._conn.log.warning("no detach from the peer for %r", self.name)
        self._conn._remove_endpoint(self)
        self._fail(LinkClosed(f"the {self._kind} {self.name!r} is closed"))

    def __repr__(self) -> str:
        state = "over" if self._error else ("attached" if self._ready else "attaching")
        return f"<petrel.{type(self).__name__} {self.name!r} {state}>"
