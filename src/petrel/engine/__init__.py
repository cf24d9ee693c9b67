"""The sans-IO AMQP 1.0 protocol engine.

No sockets, no event loop, no clock: bytes go in through
``Connection.receive_data``, events come out of ``Connection.next_event`` and
bytes to write out of ``Connection.data_to_send``; time is passed in through
``Connection.handle_timer``.  See :mod:`petrel.engine.connection` for the loop.
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
