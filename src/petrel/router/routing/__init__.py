"""The router's decision core, sans-IO: neighbours, link state, paths and mobile addresses.

:class:`RoutingCore` is the state machine of one router; the runtime feeds it
connection facts, control messages and time, and sends what it returns.  The
protocol it speaks is specified in ``docs/router.md``.
"""

from __future__ import annotations

from .core import NeighbourRefused, RoutingCore, Timers
from .events import (
    AddressesChanged,
    Event,
    NeighbourFound,
    NeighbourLost,
    RouterNode,
    TopologyChanged,
)
from .messages import PROTOCOL_VERSION, ProtocolError

__all__ = [
    "PROTOCOL_VERSION",
    "AddressesChanged",
    "Event",
    "NeighbourFound",
    "NeighbourLost",
    "NeighbourRefused",
    "ProtocolError",
    "RouterNode",
    "RoutingCore",
    "Timers",
    "TopologyChanged",
]
