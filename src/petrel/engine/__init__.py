"""The sans-IO AMQP 1.0 protocol engine.

No sockets, no event loop, no clock: bytes go in through
:meth:`Connection.receive_data`, events come out of
:meth:`Connection.next_event` and bytes to write out of
:meth:`Connection.data_to_send`; time is passed in through
:meth:`Connection.handle_timer`, and :meth:`Connection.get_timer` says when
it is next due.  A program drives it with whatever I/O it likes (a blocking
socket, ``selectors``, asyncio, trio); ``examples/engine/`` has one of each
kind and ``docs/engine.md`` is the guide.

The names in ``__all__`` are the public, stable API: a :class:`Connection`,
its :class:`Session`, :class:`Link` and :class:`Delivery` objects and their
commands, the :class:`Event` classes (also as the module ``events``), the
endpoint state enums, :class:`ConnectionConfig` and :class:`SaslConfig`, and
the SASL mechanism interfaces.  Submodules and names outside ``__all__`` are
private and may change in any release.
"""

from __future__ import annotations

from . import events
from .config import Authenticator, ConnectionConfig, SaslConfig, ScramLookup
from .connection import Connection
from .delivery import Delivery
from .events import (
    ConnectionClosed,
    ConnectionOpened,
    DeliveryAborted,
    DeliveryReceived,
    DeliveryUpdated,
    Event,
    LinkAttached,
    LinkAttachRequested,
    LinkDetached,
    LinkFlowed,
    SaslCompleted,
    SessionBegun,
    SessionEnded,
)
from .link import Link
from .sasl import (
    ClientMechanism,
    MechanismChallenge,
    MechanismOutcome,
    SaslFailure,
    ServerMechanism,
)
from .scram import ScramCredential, ScramError, derive_credential
from .session import Session
from .states import ConnectionState, LinkState, SessionState

__all__ = [
    "Authenticator",
    "ClientMechanism",
    "Connection",
    "ConnectionClosed",
    "ConnectionConfig",
    "ConnectionOpened",
    "ConnectionState",
    "Delivery",
    "DeliveryAborted",
    "DeliveryReceived",
    "DeliveryUpdated",
    "Event",
    "Link",
    "LinkAttachRequested",
    "LinkAttached",
    "LinkDetached",
    "LinkFlowed",
    "LinkState",
    "MechanismChallenge",
    "MechanismOutcome",
    "SaslCompleted",
    "SaslConfig",
    "SaslFailure",
    "ScramCredential",
    "ScramError",
    "ScramLookup",
    "ServerMechanism",
    "Session",
    "SessionBegun",
    "SessionEnded",
    "SessionState",
    "derive_credential",
    "events",
]
