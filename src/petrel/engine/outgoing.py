"""``Outgoing``: the sending half of a session (part 2.5.6).

It assigns what a session's transfers are numbered by (``next_outgoing_id``
counts transfer frames, delivery-ids count deliveries), keeps the peer's
``remote_incoming_window`` and the deliveries we sent that are not settled yet,
and writes transfer frames into the connection's :class:`~.output.Output`.  A
delivery the window does not let out whole waits here, in order, and goes on
when the peer's next flow opens the window again.

The session owns one and feeds it the peer's begin and flows; links reach it
through ``Session._send_delivery`` (which first writes the session's pending
dispositions, so frames keep the order of the calls that made them).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Final

from ..codec import (
    write_transfer_continuation,
    write_transfer_head,
    write_transfer_head_with_state,
)
from ..codec.constructors import TRUE
from .framing import HEADER_PLACEHOLDER, pack_header
from .serial import SERIAL_MASK

if TYPE_CHECKING:
    from .delivery import Delivery
    from .link import Link
    from .output import Output

__all__ = ["Outgoing"]

#: Payload slices at least this big are written as views, not copied (see Output).
_SEGMENT_MIN: Final = 16384
#: The most a first transfer frame spends before its payload: 8 bytes of frame header,
#: the descriptor and list8 header (6), handle and delivery-id (5 each), a 32-byte tag
#: (2 + 32), message-format (5), settled and more (2).
_TRANSFER_OVERHEAD: Final = 8 + 6 + 5 + 5 + 34 + 5 + 2


class _Waiting:
    """A delivery waiting for the peer's incoming window: what is left to send of it
    starts at ``offset`` of ``payload``."""

    __slots__ = ("delivery", "offset", "payload")

    def __init__(self, delivery: Delivery, payload: Any, offset: int) -> None:
        self.delivery = delivery
        self.payload = payload
        self.offset = offset


class Outgoing:
    """Transfer numbering, the peer's window and our unsettled deliveries, for one session."""

    __slots__ = (
        "_unsent",
        "channel",
        "next_delivery_id",
        "next_outgoing_id",
        "output",
        "remote_incoming_window",
        "unsettled",
        "waiting",
    )

    def __init__(self, output: Output, channel: int) -> None:
        self.output = output
        #: The channel the session sends on.
        self.channel = channel
        #: The transfer-id of our next transfer frame.
        self.next_outgoing_id = 0
        #: How many more transfer frames the peer lets us send now.
        self.remote_incoming_window = 0
        #: The delivery-id our next delivery gets.
        self.next_delivery_id = 0
        #: Our deliveries the peer has not settled (and we have not), by delivery-id.
        self.unsettled: dict[int, Delivery] = {}
        #: Deliveries not (completely) written yet, oldest first.
        self.waiting: deque[_Waiting] = deque()
        # How many of each link's deliveries wait whole or in part (a link's flow counts
        # only what has left: part 2.6.7, delivery-count).
        self._unsent: dict[Link, int] = {}

    def unsent(self, link: Link) -> int:
        """How many of ``link``'s deliveries are still waiting, whole or in part."""
        return self._unsent.get(link, 0)

    def send(self, delivery: Delivery, payload: bytes) -> None:
        """Write ``delivery`` as far as the peer's window allows; keep the rest waiting."""
        if self.waiting or self.remote_incoming_window <= 0:
            self._wait(delivery, payload, 0)
            return
        output = self.output
        if (
            len(payload) <= output.max_frame_size - _TRANSFER_OVERHEAD
            and output.tracer is None
            and delivery.state is None
        ):
            # The common case, kept short: one frame, the window open, no trace.
            delivery_id = self.next_delivery_id
            self.next_delivery_id = (delivery_id + 1) & SERIAL_MASK
            delivery.delivery_id = delivery_id
            settled = delivery.settled
            if not settled:
                self.unsettled[delivery_id] = delivery
            out = output.frames
            start = len(out)
            out += HEADER_PLACEHOLDER
            write_transfer_head(
                out,
                delivery.link.handle,  # type: ignore[arg-type]
                delivery_id,
                delivery.tag,
                delivery.message_format,
                settled,
            )
            out += payload
            pack_header(out, start, len(out) - start, 2, 0, self.channel)
            self.next_outgoing_id = (self.next_outgoing_id + 1) & SERIAL_MASK
            self.remote_incoming_window -= 1
            return
        offset = self._transmit(delivery, payload, 0)
        if offset >= 0:
            self._wait(delivery, payload, offset)

    def peer_window(self, incoming_window: int, next_incoming_id: int | None) -> None:
        """The peer's begin or flow: it takes ``incoming_window`` transfers from
        ``next_incoming_id`` on (``None``: from our next one).  Transfers we sent that
        it had not seen yet count against the window; waiting ones go out if it opens."""
        in_flight = 0
        if next_incoming_id is not None:
            in_flight = (self.next_outgoing_id - next_incoming_id) & SERIAL_MASK
        self.remote_incoming_window = window = max(0, incoming_window - in_flight)
        if window > 0 and self.waiting:
            self._resume()

    def forget(self, link: Link) -> None:
        """Drop ``link``'s waiting deliveries (it is detaching); one it had begun to
        write will never be complete, so it is not unsettled any more either."""
        if self._unsent.pop(link, 0) == 0:
            return
        kept: deque[_Waiting] = deque()
        for item in self.waiting:
            delivery = item.delivery
            if delivery.link is not link:
                kept.append(item)
            elif delivery.delivery_id is not None:
                self.unsettled.pop(delivery.delivery_id, None)
        self.waiting = kept

    def clear(self) -> None:
        """The session is over: nothing waits and nothing is unsettled."""
        self.waiting.clear()
        self._unsent.clear()
        self.unsettled.clear()

    def _wait(self, delivery: Delivery, payload: bytes, offset: int) -> None:
        self.waiting.append(_Waiting(delivery, payload, offset))
        link = delivery.link
        self._unsent[link] = self._unsent.get(link, 0) + 1

    def _resume(self) -> None:
        waiting = self.waiting
        while waiting and self.remote_incoming_window > 0:
            item = waiting[0]
            delivery = item.delivery
            offset = self._transmit(delivery, item.payload, item.offset)
            if offset >= 0:
                item.offset = offset
                return
            waiting.popleft()
            link = delivery.link
            left = self._unsent[link] - 1
            if left:
                self._unsent[link] = left
            else:
                del self._unsent[link]

    def _transmit(self, delivery: Delivery, payload: bytes, offset: int) -> int:
        """Write the frames of ``payload[offset:]`` the peer's window allows.

        Returns -1 once the delivery is complete, else the offset to resume at.
        """
        output = self.output
        out = output.frames
        max_frame = output.max_frame_size
        handle = delivery.link.handle
        assert handle is not None
        size = len(payload)
        view: Any = None
        while self.remote_incoming_window > 0:
            start = len(out)
            out += HEADER_PLACEHOLDER
            if delivery.delivery_id is None:
                delivery_id = self.next_delivery_id
                self.next_delivery_id = (delivery_id + 1) & SERIAL_MASK
                delivery.delivery_id = delivery_id
                if not delivery.settled:
                    self.unsettled[delivery_id] = delivery
                if delivery.state is None:
                    more_at = write_transfer_head(
                        out,
                        handle,
                        delivery_id,
                        delivery.tag,
                        delivery.message_format,
                        delivery.settled,
                    )
                else:  # a state on the transfer (transactional): the rare, longer head
                    more_at = write_transfer_head_with_state(
                        out,
                        handle,
                        delivery_id,
                        delivery.tag,
                        delivery.message_format,
                        delivery.settled,
                        delivery.state,
                    )
            else:
                more_at = write_transfer_continuation(out, handle, delivery.delivery_id)
            room = max_frame - (len(out) - start)
            last = size - offset <= room
            piece_len = size - offset if last else room
            if not last:
                out[more_at] = TRUE
            if piece_len >= _SEGMENT_MIN and output.tracer is None:
                # A large slice goes out as a view of the payload, not a copy.
                if view is None:
                    view = memoryview(payload)
                pack_header(out, start, len(out) - start + piece_len, 2, 0, self.channel)
                output.push_segment(out, view[offset : offset + piece_len])
            else:
                if last:
                    out += payload if offset == 0 else payload[offset:]
                else:
                    if view is None:
                        view = memoryview(payload)
                    out += view[offset : offset + room]
                pack_header(out, start, len(out) - start, 2, 0, self.channel)
            offset = -1 if last else offset + piece_len
            self.next_outgoing_id = (self.next_outgoing_id + 1) & SERIAL_MASK
            self.remote_incoming_window -= 1
            if output.tracer is not None:
                output.trace_written(start)
            if offset < 0:
                return -1
        return offset
