"""Two Petrel engines wired together in memory: no sockets, time passed by hand.

    pair = EnginePair()
    pair.open()                                 # headers, open both ways
    session = pair.client.begin_session()
    pair.pump()                                 # move bytes until both sides are quiet
    assert pair.take("client", SessionBegun)

Events are collected per side in ``pair.events["client"]`` / ``["server"]``
as ``pump()`` moves bytes.  With ``auto=True`` (the default) each side
answers what needs an answer the way a permissive peer would: a server
opens when the client's open arrives and every side accepts links the
peer attaches, echoing the terminus.  The module-level ``pump(a, b)`` moves
bytes between any two engines and leaves their events alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

from petrel.engine import Connection, ConnectionConfig, Event
from petrel.engine.events import ConnectionOpened, LinkAttachRequested

E = TypeVar("E", bound=Event)
Side = Literal["client", "server"]


def pump(a: Connection, b: Connection, max_rounds: int = 10_000) -> int:
    """Move bytes between two engines until both are quiet; return the bytes moved.

    Events stay in the engines for the caller to take with ``next_event()``.
    """
    moved = 0
    for _ in range(max_rounds):
        data = a.data_to_send()
        if data:
            b.receive_data(data)
        back = b.data_to_send()
        if back:
            a.receive_data(back)
        if not data and not back:
            return moved
        moved += len(data) + len(back)
    raise AssertionError("the engines never went quiet")


class EnginePair:
    """A client and a server engine connected back to back."""

    def __init__(
        self,
        client_config: ConnectionConfig | None = None,
        server_config: ConnectionConfig | None = None,
        *,
        auto: bool = True,
    ) -> None:
        self.client = Connection(client_config or ConnectionConfig(container_id="client"))
        self.server = Connection(
            server_config or ConnectionConfig(container_id="server"), server=True
        )
        self.auto = auto
        self.now = 0.0
        self.client.handle_timer(self.now)
        self.server.handle_timer(self.now)
        self.events: dict[Side, list[Event]] = {"client": [], "server": []}
        self.wire: list[tuple[Side, bytes]] = []
        #: Called for every event as it comes out (after the auto answers).
        self.on_event: Callable[[Side, Event], None] | None = None

    def engine(self, side: Side) -> Connection:
        """The engine of one side."""
        return self.client if side == "client" else self.server

    def open(self) -> None:
        """Open both ways and pump until quiet."""
        self.client.open()
        if not self.auto:
            self.server.open()
        self.pump()

    def pump(self, max_rounds: int = 10_000) -> int:
        """Move bytes both ways until neither side has anything to send; return bytes moved."""
        moved = 0
        for _ in range(max_rounds):
            self._drain_events()
            data = self.client.data_to_send()
            if data:
                self.wire.append(("client", data))
                self.server.receive_data(data)
                moved += len(data)
            self._drain_events()
            back = self.server.data_to_send()
            if back:
                self.wire.append(("server", back))
                self.client.receive_data(back)
                moved += len(back)
            if not data and not back:
                return moved
        raise AssertionError("the engines never went quiet")

    def _drain_events(self) -> None:
        for side in ("client", "server"):
            engine = self.engine(side)  # type: ignore[arg-type]
            while (event := engine.next_event()) is not None:
                if self.auto:
                    _auto_answer(engine, event)
                self.events[side].append(event)  # type: ignore[index]
                if self.on_event is not None:
                    self.on_event(side, event)  # type: ignore[arg-type]

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, firing each side's timer when it is due, then pump."""
        self.now += seconds
        for engine in (self.client, self.server):
            deadline = engine.get_timer()
            if deadline is not None and deadline <= self.now:
                engine.handle_timer(self.now)
        self.pump()

    def take(self, side: Side, kind: type[E]) -> list[E]:
        """Remove and return the events of ``kind`` collected so far on ``side``."""
        found = [e for e in self.events[side] if isinstance(e, kind)]
        self.events[side] = [e for e in self.events[side] if not isinstance(e, kind)]
        return found

    def take_one(self, side: Side, kind: type[E]) -> E:
        """Like :meth:`take` but there must be exactly one."""
        found = self.take(side, kind)
        assert len(found) == 1, f"expected one {kind.__name__} on {side}, got {found!r}"
        return found[0]

    def clear(self) -> None:
        """Forget the events collected so far."""
        self.events = {"client": [], "server": []}


def _auto_answer(engine: Connection, event: Any) -> None:
    if isinstance(event, ConnectionOpened) and engine.server and not engine._open_requested:
        engine.open()
    elif isinstance(event, LinkAttachRequested):
        event.link.attach()
