"""The endpoint state machines of AMQP 1.0 part 2.4-2.6, written as data.

Each table maps ``(state, input)`` to the next state.  An input that has no
entry for the current state is illegal: a local one is the caller's mistake
(:class:`~petrel.errors.LocalProtocolError`), a remote one is the peer's
(answered with ``amqp:illegal-state``).  The engine changes state only through
:func:`step`, so these tables are the whole truth about which frames may be
sent and received when.

State names are the spec's (part 2.4.6 for connections, 2.5.5 for sessions);
links have no diagram in the spec and use the same vocabulary.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeVar

from ..errors import Condition, LocalProtocolError, RemoteProtocolError

__all__ = [
    "CONNECTION_TRANSITIONS",
    "LINK_TRANSITIONS",
    "SESSION_TRANSITIONS",
    "ConnectionState",
    "Input",
    "LinkState",
    "SessionState",
    "step",
]


class Input(enum.Enum):
    """What moves an endpoint: a frame (or protocol header) sent or received."""

    SEND_HEADER = "send header"
    RECV_HEADER = "receive header"
    SEND_OPEN = "send open"
    RECV_OPEN = "receive open"
    SEND_CLOSE = "send close"
    RECV_CLOSE = "receive close"
    SEND_BEGIN = "send begin"
    RECV_BEGIN = "receive begin"
    SEND_END = "send end"
    RECV_END = "receive end"
    SEND_ATTACH = "send attach"
    RECV_ATTACH = "receive attach"
    SEND_DETACH = "send detach"
    RECV_DETACH = "receive detach"
    FAIL = "protocol error"
    LOST = "lose the transport"


class ConnectionState(enum.Enum):
    """Connection states, part 2.4.6."""

    START = "START"
    HDR_RCVD = "HDR_RCVD"
    HDR_SENT = "HDR_SENT"
    HDR_EXCH = "HDR_EXCH"
    OPEN_PIPE = "OPEN_PIPE"
    OC_PIPE = "OC_PIPE"
    OPEN_RCVD = "OPEN_RCVD"
    OPEN_SENT = "OPEN_SENT"
    CLOSE_PIPE = "CLOSE_PIPE"
    OPENED = "OPENED"
    CLOSE_RCVD = "CLOSE_RCVD"
    CLOSE_SENT = "CLOSE_SENT"
    DISCARDING = "DISCARDING"
    END = "END"


class SessionState(enum.Enum):
    """Session states, part 2.5.5."""

    UNMAPPED = "UNMAPPED"
    BEGIN_SENT = "BEGIN_SENT"
    BEGIN_RCVD = "BEGIN_RCVD"
    MAPPED = "MAPPED"
    END_SENT = "END_SENT"
    END_RCVD = "END_RCVD"
    DISCARDING = "DISCARDING"
    ENDED = "ENDED"


class LinkState(enum.Enum):
    """Link states (the spec describes links in prose, part 2.6.3-2.6.6)."""

    DETACHED = "DETACHED"
    ATTACH_SENT = "ATTACH_SENT"
    ATTACH_RCVD = "ATTACH_RCVD"
    ATTACHED = "ATTACHED"
    DETACH_SENT = "DETACH_SENT"
    DETACH_RCVD = "DETACH_RCVD"
    CLOSED = "CLOSED"
    """Detached both ways: the link is over (whether or not the terminus was closed)."""


_C = ConnectionState
_S = SessionState
_L = LinkState
_I = Input

#: Part 2.4.6.  ``FAIL`` is the engine closing the connection because of an error it found.
CONNECTION_TRANSITIONS: Mapping[tuple[ConnectionState, Input], ConnectionState] = {
    (_C.START, _I.SEND_HEADER): _C.HDR_SENT,
    (_C.START, _I.RECV_HEADER): _C.HDR_RCVD,
    (_C.HDR_RCVD, _I.SEND_HEADER): _C.HDR_EXCH,
    (_C.HDR_SENT, _I.RECV_HEADER): _C.HDR_EXCH,
    (_C.HDR_SENT, _I.SEND_OPEN): _C.OPEN_PIPE,
    (_C.HDR_EXCH, _I.RECV_OPEN): _C.OPEN_RCVD,
    (_C.HDR_EXCH, _I.SEND_OPEN): _C.OPEN_SENT,
    (_C.OPEN_PIPE, _I.RECV_HEADER): _C.OPEN_SENT,
    (_C.OPEN_PIPE, _I.SEND_CLOSE): _C.OC_PIPE,
    (_C.OC_PIPE, _I.RECV_HEADER): _C.CLOSE_PIPE,
    (_C.OPEN_RCVD, _I.SEND_OPEN): _C.OPENED,
    (_C.OPEN_SENT, _I.RECV_OPEN): _C.OPENED,
    (_C.OPEN_SENT, _I.SEND_CLOSE): _C.CLOSE_PIPE,
    (_C.CLOSE_PIPE, _I.RECV_OPEN): _C.CLOSE_SENT,
    (_C.OPENED, _I.RECV_CLOSE): _C.CLOSE_RCVD,
    (_C.OPENED, _I.SEND_CLOSE): _C.CLOSE_SENT,
    (_C.CLOSE_RCVD, _I.SEND_CLOSE): _C.END,
    (_C.CLOSE_SENT, _I.RECV_CLOSE): _C.END,
    (_C.DISCARDING, _I.RECV_CLOSE): _C.END,
    # An error close: from any state in which a close may be written.
    (_C.OPEN_SENT, _I.FAIL): _C.DISCARDING,
    (_C.OPENED, _I.FAIL): _C.DISCARDING,
    (_C.CLOSE_RCVD, _I.FAIL): _C.END,
    (_C.OPEN_PIPE, _I.FAIL): _C.DISCARDING,
    (_C.OC_PIPE, _I.FAIL): _C.DISCARDING,
    (_C.CLOSE_PIPE, _I.FAIL): _C.DISCARDING,
    (_C.CLOSE_SENT, _I.FAIL): _C.DISCARDING,
    # The transport is gone (part 2.4.6 has no arc for it): nothing more is read or written.
    **{(state, _I.LOST): _C.END for state in _C},
}

#: Part 2.5.5.  ``ENDED`` is ``UNMAPPED`` after an end exchange: a session is never reused.
SESSION_TRANSITIONS: Mapping[tuple[SessionState, Input], SessionState] = {
    (_S.UNMAPPED, _I.SEND_BEGIN): _S.BEGIN_SENT,
    (_S.UNMAPPED, _I.RECV_BEGIN): _S.BEGIN_RCVD,
    (_S.BEGIN_SENT, _I.RECV_BEGIN): _S.MAPPED,
    (_S.BEGIN_SENT, _I.SEND_END): _S.END_SENT,
    (_S.BEGIN_SENT, _I.FAIL): _S.DISCARDING,
    (_S.BEGIN_RCVD, _I.SEND_BEGIN): _S.MAPPED,
    (_S.MAPPED, _I.SEND_END): _S.END_SENT,
    (_S.MAPPED, _I.RECV_END): _S.END_RCVD,
    (_S.MAPPED, _I.FAIL): _S.DISCARDING,
    (_S.END_SENT, _I.RECV_BEGIN): _S.END_SENT,
    (_S.END_SENT, _I.RECV_END): _S.ENDED,
    (_S.END_RCVD, _I.SEND_END): _S.ENDED,
    (_S.DISCARDING, _I.RECV_BEGIN): _S.DISCARDING,
    (_S.DISCARDING, _I.RECV_END): _S.ENDED,
}

#: Link attach and detach (part 2.6.3, 2.6.6).
LINK_TRANSITIONS: Mapping[tuple[LinkState, Input], LinkState] = {
    (_L.DETACHED, _I.SEND_ATTACH): _L.ATTACH_SENT,
    (_L.DETACHED, _I.RECV_ATTACH): _L.ATTACH_RCVD,
    (_L.ATTACH_SENT, _I.RECV_ATTACH): _L.ATTACHED,
    (_L.ATTACH_SENT, _I.SEND_DETACH): _L.DETACH_SENT,
    (_L.ATTACH_SENT, _I.RECV_DETACH): _L.DETACH_RCVD,
    (_L.ATTACH_RCVD, _I.SEND_ATTACH): _L.ATTACHED,
    # The peer attached and detached before we answered: we still attach, then detach.
    (_L.ATTACH_RCVD, _I.RECV_DETACH): _L.DETACH_RCVD,
    (_L.DETACH_RCVD, _I.SEND_ATTACH): _L.DETACH_RCVD,
    (_L.ATTACHED, _I.SEND_DETACH): _L.DETACH_SENT,
    (_L.ATTACHED, _I.RECV_DETACH): _L.DETACH_RCVD,
    (_L.DETACH_SENT, _I.RECV_ATTACH): _L.DETACH_SENT,
    (_L.DETACH_SENT, _I.RECV_DETACH): _L.CLOSED,
    (_L.DETACH_RCVD, _I.SEND_DETACH): _L.CLOSED,
}


S = TypeVar("S", bound=enum.Enum)


def step(
    table: Mapping[tuple[S, Input], S], state: S, event: Input, *, what: str, remote: bool
) -> S:
    """The state after ``event``; raise if the table has no such move.

    ``remote`` says whose move it is: the peer's (a frame received) raises
    :class:`~petrel.errors.RemoteProtocolError` with ``amqp:illegal-state``,
    ours raises :class:`~petrel.errors.LocalProtocolError`.
    """
    try:
        return table[state, event]
    except KeyError:
        message = f"cannot {event.value} in {what} state {state.value}"
        if remote:
            raise RemoteProtocolError(message, condition=Condition.ILLEGAL_STATE) from None
        raise LocalProtocolError(message) from None
