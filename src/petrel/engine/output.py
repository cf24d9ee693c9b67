"""``Output``: what one connection has to say, shared by its sessions and links.

A connection owns one :class:`Output`; its sessions and links hold a reference
and write into it: AMQP frames (performatives through :meth:`write_frame`,
transfers written in place by the session), the events the driver will read
with ``Connection.next_event``, and the sessions that have frames to flush
before the next write.  Nothing else of the connection is touched from below,
so each object's own state stays its own (as aioquic's streams return frames
and events to their connection instead of reaching into it).

The connection decides when output may leave (nothing before its open is
written) and joins it in ``Connection.data_to_send``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from ..codec import decode_from, encode_into
from ..errors import Condition, LocalProtocolError
from ..spec.framing import FRAME_HEADER, FRAME_TYPE_AMQP
from .framing import HEADER_PLACEHOLDER, pack_header

if TYPE_CHECKING:
    from ..spec import Composite
    from .events import Event
    from .session import Session
    from .trace import FrameTracer

__all__ = ["Output"]

_NO_LIMIT: Final = 0xFFFFFFFF
_unpack_header: Final = FRAME_HEADER.unpack_from


class Output:
    """Frames, events and dirty sessions of one connection (see the module docstring)."""

    __slots__ = (
        "dirty",
        "events",
        "events_read",
        "frames",
        "max_frame_size",
        "segments",
        "segments_len",
        "tracer",
    )

    def __init__(self, tracer: FrameTracer | None) -> None:
        #: Events for the driver, oldest first: ``Connection.take_events`` hands them out
        #: a list at a time, ``Connection.next_event`` one at a time from
        #: :attr:`events_read` on.  (A list, not a deque: appending to a list is a C call
        #: in compiled code, a deque's ``append`` a method lookup.)
        self.events: list[Event] = []
        self.events_read = 0
        #: AMQP frames not yet handed out.
        self.frames = bytearray()
        #: Output that comes before :attr:`frames`: finished runs of frames and large
        #: payload slices kept as memoryviews, so a big message is copied once (by the
        #: final join) rather than into a growing bytearray and out again.
        self.segments: list[bytes | memoryview] = []
        self.segments_len = 0
        #: Sessions with dispositions or flows to write before the next output.
        self.dirty: list[Session] = []
        #: The frame tracer, or ``None`` when frames are not traced.
        self.tracer = tracer
        #: The largest frame the peer takes (its open's ``max-frame-size``).
        self.max_frame_size = _NO_LIMIT

    def write_frame(self, channel: int, frame: Composite) -> None:
        """Append one AMQP frame (a performative without payload)."""
        out = self.frames
        start = len(out)
        out += HEADER_PLACEHOLDER
        try:
            encode_into(out, frame)
        except BaseException:
            del out[start:]
            raise
        size = len(out) - start
        if size > self.max_frame_size:
            del out[start:]
            raise LocalProtocolError(
                f"a {type(frame).__name__} of {size} bytes does not fit the peer's "
                f"max-frame-size {self.max_frame_size}",
                condition=Condition.FRAME_SIZE_TOO_SMALL,
            )
        pack_header(out, start, size, 2, FRAME_TYPE_AMQP, channel)
        if self.tracer is not None:
            self.tracer.frame("->", channel, frame)

    def push_segment(self, out: bytearray, piece: memoryview) -> None:
        """Move the frames in ``out`` and then ``piece`` (a large payload slice) to the
        segment list; ``out`` is left empty for what follows."""
        data = bytes(out)
        out.clear()
        self.segments.append(data)
        self.segments.append(piece)
        self.segments_len += len(data) + len(piece)

    def trace_written(self, start: int) -> None:
        """Trace a frame written in place (a transfer) at ``start`` of :attr:`frames`."""
        assert self.tracer is not None
        data = bytes(self.frames[start:])
        channel = _unpack_header(data, 0)[3]
        frame: Any
        frame, off = decode_from(data, 8)
        self.tracer.frame("->", channel, frame, len(data) - off)

    def pending(self) -> int:
        """Bytes of frames held here."""
        return len(self.frames) + self.segments_len

    def clear(self) -> None:
        """Drop everything held (the connection is lost)."""
        self.frames.clear()
        self.segments.clear()
        self.segments_len = 0
