"""Property tests: how input is split never matters, and damaged input never raises."""

from __future__ import annotations

from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from petrel.engine import Connection, ConnectionConfig, Event
from petrel.engine.events import ConnectionClosed, DeliveryReceived, LinkAttachRequested
from petrel.spec import Source, Target
from tests.helpers.engine_pair import EnginePair

CLIENT = ConnectionConfig(container_id="c", max_frame_size=512)


def client_commands(client: Connection) -> None:
    """What the client does before it reads anything: open, begin, attach a receiver, credit."""
    client.open()
    session = client.begin_session()
    receiver = session.attach_receiver("r", Source(address="q"), Target())
    receiver.flow(100)


@cache
def server_stream() -> bytes:
    """Everything a server wrote to that client: answers, 20 messages (some multi-frame), close."""
    pair = EnginePair(CLIENT)
    client_commands(pair.client)
    pair.pump()
    sender = pair.take_one("server", LinkAttachRequested).link
    for i in range(20):
        sender.send(b"message %d " % i * (1 + i * 10), settled=i % 3 == 0)
    pair.pump()
    sender.detach()
    pair.server.sessions[0].end()
    pair.server.close()
    pair.pump()
    return b"".join(data for side, data in pair.wire if side == "server")


def feed(data: bytes, cuts: list[int]) -> list[Event]:
    """Replay the client's commands and feed it ``data`` cut at ``cuts``; return its events."""
    client = Connection(CLIENT)
    client.handle_timer(0.0)
    client_commands(client)
    client.data_to_send()
    events: list[Event] = []
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        client.receive_data(data[start:cut])
        start = max(start, cut)
        client.data_to_send()
        while (event := client.next_event()) is not None:
            events.append(event)
    return events


def summary(events: list[Event]) -> list[object]:
    return [
        (type(e).__name__, e.payload) if isinstance(e, DeliveryReceived) else type(e).__name__
        for e in events
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_how_bytes_are_split_does_not_matter(data: st.DataObject) -> None:
    stream = server_stream()
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=40))
    whole = summary(feed(stream, []))
    assert summary(feed(stream, cuts)) == whole
    assert whole.count("DeliveryReceived") == 0  # payloads are in tuples
    assert len([e for e in whole if isinstance(e, tuple)]) == 20
    assert whole[-1] == "ConnectionClosed"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_input_never_raises(data: st.DataObject) -> None:
    stream = bytearray(server_stream())
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(stream) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            stream[at] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del stream[at : at + data.draw(st.integers(1, 16))]
        else:
            stream[at:at] = data.draw(st.binary(min_size=1, max_size=16))
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=5))
    events = feed(bytes(stream), cuts)
    assert len([e for e in events if isinstance(e, ConnectionClosed)]) <= 1
