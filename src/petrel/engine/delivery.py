"""One message transfer on a link, from the first frame until both sides settle it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import LocalProtocolError

if TYPE_CHECKING:
    from .link import Link

__all__ = ["Delivery"]


class Delivery:
    """A delivery (part 2.6.12): its id, tag, format, and both sides' state and settlement.

    ``state``/``settled`` are ours; ``remote_state``/``remote_settled`` the
    peer's, as its transfers and dispositions said.  An outgoing delivery has
    no ``delivery_id`` until its first frame is written (frames wait while the
    peer's session window is closed).

    Deliveries are made for every message, so this class is kept lean: slots,
    no per-delivery allocations beyond the object itself.
    """

    __slots__ = (
        "_queued",
        "delivery_id",
        "link",
        "message_format",
        "remote_settled",
        "remote_state",
        "settled",
        "state",
        "tag",
    )

    def __init__(
        self,
        link: Link,
        delivery_id: int | None,
        tag: bytes,
        message_format: int,
        settled: bool,
        remote_settled: bool,
        remote_state: Any,
    ) -> None:
        self.link = link
        self.delivery_id = delivery_id
        self.tag = tag
        self.message_format = message_format
        self.settled = settled
        self.remote_settled = remote_settled
        self.state: Any = None
        self.remote_state = remote_state
        self._queued = False

    @property
    def outgoing(self) -> bool:
        """Whether we are the sender of this delivery."""
        return self.link.is_sender

    def update(self, state: Any, settled: bool = False) -> None:
        """Set our delivery state (an outcome, ``Received``, a txn state) and maybe settle.

        The change goes to the peer in a ``disposition`` at the next
        ``data_to_send()``, coalesced with neighbouring deliveries into ranges.
        Nothing is sent when the peer has already settled the delivery, and
        updates are dropped once the session is over.  A delivery outlives its
        link: while the session lasts, an outcome given after the link detached
        still goes to the peer (a disposition names deliveries, not links).
        Raises :class:`~petrel.errors.LocalProtocolError` if we already settled it.
        """
        if self.settled:
            raise LocalProtocolError(f"delivery {self.tag!r} is already settled")
        self.state = state
        self._changed(settled)

    def settle(self) -> None:
        """Settle the delivery (keeping its current state); settling twice does nothing."""
        if not self.settled:
            self._changed(True)

    def _changed(self, settled: bool) -> None:
        # The session keeps the books: its unsettled maps and the dispositions to write.
        self.link.session._delivery_changed(self, settled)

    def __repr__(self) -> str:
        return (
            f"<Delivery id={self.delivery_id} tag={self.tag!r} settled={self.settled} "
            f"state={self.state!r} remote_settled={self.remote_settled} "
            f"remote_state={self.remote_state!r}>"
        )
