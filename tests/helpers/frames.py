"""Hand-made frames and a raw peer, for testing the engine against exact bytes.

    peer = RawPeer(Connection(ConnectionConfig(container_id="s"), server=True))
    peer.engine.open()
    peer.send(AMQP_HEADER, frame(Open(container_id="raw")))
    assert peer.performatives(Open)

A :class:`RawPeer` plays the other side by hand: whatever it sends goes
straight into the engine, and everything the engine writes is parsed into
``(channel, body, payload)`` tuples.
"""

from __future__ import annotations

from typing import Any, TypeVar

from petrel import spec
from petrel.codec import encode
from petrel.engine import Connection, Event
from petrel.spec.framing import FRAME_HEADER, FRAME_TYPE_AMQP

T = TypeVar("T")


def frame(
    body: Any, channel: int = 0, payload: bytes = b"", frame_type: int = FRAME_TYPE_AMQP
) -> bytes:
    """One frame holding ``body`` (a performative or SASL frame; ``None`` for an empty frame)."""
    data = b"" if body is None else encode(body)
    data += payload
    return FRAME_HEADER.pack(8 + len(data), 2, frame_type, channel) + data


def parse(data: bytes) -> tuple[list[bytes], list[tuple[int, Any, bytes]]]:
    """Split what an engine wrote into protocol headers and ``(channel, body, payload)`` frames."""
    headers: list[bytes] = []
    frames: list[tuple[int, Any, bytes]] = []
    pos = 0
    while pos < len(data):
        if data[pos : pos + 4] == b"AMQP":
            headers.append(data[pos : pos + 8])
            pos += 8
            continue
        size, doff, _type, channel = FRAME_HEADER.unpack_from(data, pos)
        body_at = pos + doff * 4
        end = pos + size
        if body_at == end:
            frames.append((channel, None, b""))
        else:
            body, off = spec.decode_from(data[:end], body_at)
            frames.append((channel, body, data[off:end]))
        pos = end
    return headers, frames


class RawPeer:
    """The far side of one engine, played with hand-made bytes."""

    def __init__(self, engine: Connection) -> None:
        self.engine = engine
        self.headers: list[bytes] = []
        self.frames: list[tuple[int, Any, bytes]] = []
        self.events: list[Event] = []
        engine.handle_timer(0.0)

    def send(self, *chunks: bytes) -> None:
        """Feed bytes to the engine, then collect what it wrote and its events."""
        self.engine.receive_data(b"".join(chunks))
        self.collect()

    def collect(self) -> None:
        """Take what the engine wrote and the events it produced."""
        headers, frames = parse(self.engine.data_to_send())
        self.headers += headers
        self.frames += frames
        while (event := self.engine.next_event()) is not None:
            self.events.append(event)

    def performatives(self, kind: type[T]) -> list[T]:
        """The frames of one type the engine wrote so far."""
        return [body for _, body, _ in self.frames if isinstance(body, kind)]

    def last(self, kind: type[T]) -> T:
        """The last frame of one type the engine wrote."""
        found = self.performatives(kind)
        assert found, f"the engine wrote no {kind.__name__}; it wrote {self.frames!r}"
        return found[-1]

    def event(self, kind: type[T]) -> T:
        """The one event of a type the engine produced."""
        found = [e for e in self.events if isinstance(e, kind)]
        assert len(found) == 1, f"expected one {kind.__name__}, got {self.events!r}"
        return found[0]
