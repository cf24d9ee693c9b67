"""Hand-made frames and a raw peer, for testing the engine against exact bytes.

    peer = RawPeer(Connection(ConnectionConfig(container_id="s"), server=True))
    peer.engine.open()
    peer.send(AMQP_HEADER, frame(Open(container_id="raw")))
    assert peer.performatives(Open)

A :class:`RawPeer` plays the other side by hand: whatever it sends goes
straight into the engine, and everything the engine writes is parsed into
``(channel, body, payload)`` tuples.  A :class:`RawClient` does the same over a
real socket, against a server in another process:

    with RawClient(broker.port) as client:
        client.send(AMQP_HEADER, frame(Open(container_id="raw")))
        client.expect(Open)
        client.wait_closed()             # everything the server wrote is in client.frames

:func:`nested` builds values nested deeper than the encoder would write them.
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Any, TypeVar

from petrel import spec
from petrel.codec import encode
from petrel.engine import Connection, Event
from petrel.spec.framing import FRAME_HEADER, FRAME_TYPE_AMQP, FRAME_TYPE_SASL
from petrel.types import Described, ULong

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


def sasl_frame(body: Any) -> bytes:
    """One SASL frame (frame type 1) holding ``body``."""
    return frame(body, frame_type=FRAME_TYPE_SASL)


_COMPOUND32 = struct.Struct(">BII")  # list32/map32: constructor, size, count


def nested(leaf: bytes, depth: int, key: bytes | None = None) -> bytes:
    """The encoded ``leaf`` wrapped ``depth`` times: in one-element lists (``list32``), or,
    with ``key`` (an encoded key), in one-entry maps (``map32``).

    Built from the inside out without recursion, so any depth can be written, far
    beyond what a decoder should accept.
    """
    code, count, prefix = (0xD0, 1, b"") if key is None else (0xD1, 2, key)
    headers: list[bytes] = []
    size = len(leaf)
    for _ in range(depth):
        body = len(prefix) + size
        headers.append(_COMPOUND32.pack(code, 4 + body, count) + prefix)
        size = 9 + body
    headers.reverse()
    return b"".join(headers) + leaf


class RawClient:
    """A hand-played client on a TCP socket to ``127.0.0.1:port``.

    :meth:`send` writes bytes as they are; what the server writes is parsed
    into :attr:`headers` and ``(channel, body, payload)`` :attr:`frames` as it
    arrives.  :meth:`expect` waits for the next frame of a kind, reading on
    only as far as it has to; :meth:`wait_closed` reads until the server hangs
    up.  Each wait fails the test after ``timeout`` seconds.
    """

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self.headers: list[bytes] = []
        self.frames: list[tuple[int, Any, bytes]] = []
        self.eof = False
        self._buf = b""
        self._next = 0  # frames before this one were returned by expect()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, *chunks: bytes) -> None:
        self.sock.sendall(b"".join(chunks))

    def _read(self, deadline: float) -> None:
        """Read once, then parse; raise once ``deadline`` has passed."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(
                f"waited {self.timeout} s; the server wrote {self.headers!r} {self.frames!r}"
            )
        self._receive(left)

    def read_for(self, seconds: float) -> None:
        """Read whatever the server writes within ``seconds`` (nothing is fine)."""
        end = time.monotonic() + seconds
        while not self.eof and (left := end - time.monotonic()) > 0:
            self._receive(left)

    def _receive(self, left: float) -> None:
        """Wait at most ``left`` s for data; parse what came."""
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            chunk = None
        except ConnectionResetError:
            chunk = b""
        if chunk is None:
            return
        if not chunk:
            self.eof = True
            return
        buf = self._buf + chunk
        pos = 0
        while len(buf) - pos >= 8:
            if buf[pos : pos + 4] == b"AMQP":
                self.headers.append(buf[pos : pos + 8])
                pos += 8
                continue
            size = FRAME_HEADER.unpack_from(buf, pos)[0]
            assert size >= 8, f"a frame header with size {size}: {buf[pos:]!r}"
            if len(buf) - pos < size:
                break
            self.frames += parse(buf[pos : pos + size])[1]
            pos += size
        self._buf = buf[pos:]

    def expect(self, kind: type[T]) -> T:
        """The next frame of type ``kind`` after the last one this returned; frames in
        between stay in :attr:`frames`."""
        deadline = time.monotonic() + self.timeout
        while True:
            for index in range(self._next, len(self.frames)):
                body = self.frames[index][1]
                if isinstance(body, kind):
                    self._next = index + 1
                    return body
            if self.eof:
                raise AssertionError(
                    f"the server closed the socket without a {kind.__name__}; "
                    f"it wrote {self.headers!r} {self.frames!r}"
                )
            self._read(deadline)

    def wait_closed(self) -> None:
        """Read until the server closes the socket."""
        deadline = time.monotonic() + self.timeout
        while not self.eof:
            self._read(deadline)

    def performatives(self, kind: type[T]) -> list[T]:
        """The frames of one type the server wrote so far."""
        return [body for _, body, _ in self.frames if isinstance(body, kind)]


def section(kind: Any, value: bytes) -> bytes:
    """A message section of ``kind`` (a section class of ``petrel.spec``, such as
    ``ApplicationProperties``) around an already-encoded ``value``."""
    described_null = encode(Described(ULong(kind.DESCRIPTOR), None))
    return described_null[:-1] + value  # the null is one byte: the descriptor stays
