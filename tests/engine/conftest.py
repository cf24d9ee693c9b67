"""Fixtures for the engine tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from petrel.engine import Connection, ConnectionConfig, Link, Session
from petrel.engine.events import LinkAttachRequested
from petrel.spec import Begin, Open, Source, Target
from petrel.spec.framing import AMQP_HEADER
from tests.helpers.engine_pair import EnginePair
from tests.helpers.frames import RawPeer, frame


@pytest.fixture
def pair() -> EnginePair:
    """An open client/server pair."""
    p = EnginePair()
    p.open()
    p.clear()
    return p


@pytest.fixture
def session(pair: EnginePair) -> Session:
    """A begun client session on ``pair``."""
    s = pair.client.begin_session()
    pair.pump()
    pair.clear()
    return s


LinkPair = tuple[Link, Link]


def attach(pair: EnginePair, session: Session, name: str = "link", **kwargs: object) -> LinkPair:
    """Attach a client sender and return it with the server's receiving end."""
    sender = session.attach_sender(name, Source(address="src"), Target(address="q"), **kwargs)  # type: ignore[arg-type]
    pair.pump()
    receiver = pair.take_one("server", LinkAttachRequested).link
    pair.clear()
    return sender, receiver


@pytest.fixture
def links(pair: EnginePair, session: Session) -> LinkPair:
    """A client sender and the server's receiver, attached."""
    return attach(pair, session)


@pytest.fixture
def raw_server() -> Callable[..., RawPeer]:
    """Make a server engine opened by a hand-played client with one session on channel 0."""

    def make(config: ConnectionConfig | None = None, begin: bool = True) -> RawPeer:
        engine = Connection(config or ConnectionConfig(container_id="server"), server=True)
        engine.open()
        peer = RawPeer(engine)
        chunks = [AMQP_HEADER, frame(Open(container_id="raw", max_frame_size=65536))]
        if begin:
            chunks.append(
                frame(Begin(next_outgoing_id=0, incoming_window=100, outgoing_window=100), 0)
            )
        peer.send(*chunks)
        return peer

    return make
