"""Connection states, state-change records and the reconnect policy."""

from __future__ import annotations

import asyncio
import contextlib
import enum
from dataclasses import dataclass

from ..driver.connector import Backoff

__all__ = ["ConnectionState", "Reconnect", "StateChange", "StateChanges"]


class ConnectionState(enum.Enum):
    """Where a client connection is in its life."""

    CONNECTING = "connecting"
    """Opening the first connection."""
    OPEN = "open"
    """Connected: the peer's open arrived."""
    RECONNECTING = "reconnecting"
    """The connection was lost; trying the URLs again with backoff."""
    CLOSED = "closed"
    """Over for good: closed by the application, by the peer, or reconnecting gave up."""


@dataclass(frozen=True, slots=True)
class StateChange:
    """One change of a connection's state, as given to ``on_state_change`` callbacks and
    yielded by ``Connection.state_changes()``."""

    state: ConnectionState
    """The new state."""
    url: str | None
    """The peer the connection is (or was last) connected to, as ``scheme://host:port``."""
    error: Exception | None = None
    """Why: the error that ended the connection (``RECONNECTING``, ``CLOSED``), if any."""
    attempt: int = 0
    """``RECONNECTING``: how many connection attempts failed so far."""


@dataclass(frozen=True, slots=True)
class Reconnect(Backoff):
    """How to reconnect after a lost connection.

    Attempts go round the connection's URL list (failover), starting with
    the URL that was lost, waiting as :class:`~petrel.driver.connector.Backoff`
    says between them; after ``max_attempts`` failed attempts in a row
    (``None``: never give up) the connection closes with
    :class:`~petrel.client.errors.ConnectionLost`.  Authentication failures
    are not retried.
    """

    connect_initial: bool = False
    """Also retry with backoff when the very first connection fails (normally
    :func:`~petrel.client.connect` tries each URL once and raises)."""


class StateChanges:
    """An async iterator over a connection's state changes (see ``Connection.state_changes``)."""

    def __init__(
        self, queue: asyncio.Queue[StateChange], watchers: list[asyncio.Queue[StateChange]]
    ) -> None:
        self._queue = queue
        self._watchers = watchers
        self._done = False

    def __aiter__(self) -> StateChanges:
        return self

    async def __anext__(self) -> StateChange:
        if self._done:
            raise StopAsyncIteration
        change = await self._queue.get()
        if change.state is ConnectionState.CLOSED:
            self._done = True
        return change

    def next_nowait(self) -> StateChange | None:
        """The next change if one is waiting, else ``None``; raises ``StopAsyncIteration``
        after ``CLOSED``."""
        if self._done:
            raise StopAsyncIteration
        try:
            change = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None
        if change.state is ConnectionState.CLOSED:
            self._done = True
        return change

    def close(self) -> None:
        """Stop watching."""
        self._done = True
        with contextlib.suppress(ValueError):
            self._watchers.remove(self._queue)
