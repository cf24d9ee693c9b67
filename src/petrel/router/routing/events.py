"""What the routing core tells the runtime: events, in the past tense, and router nodes.

``RoutingCore.next_event()`` returns the events in the order they happened;
they are small frozen dataclasses.  They are news, not state: every fact an
event reports can also be read from the core's queries at any time, so a
runtime that only logs them loses nothing.  :class:`RouterNode` is the row
``RoutingCore.nodes()`` gives management for each router the core knows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "AddressesChanged",
    "Event",
    "NeighbourFound",
    "NeighbourLost",
    "RouterNode",
    "TopologyChanged",
]


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of every routing event."""


@dataclass(frozen=True, slots=True)
class TopologyChanged(Event):
    """Our paths changed: a router became reachable or unreachable, or the next hop or
    the cost toward one changed.  ``next_hop``, ``cost_to`` and ``reachable`` already
    give the new answers."""


@dataclass(frozen=True, slots=True)
class AddressesChanged(Event):
    """For each of ``addresses``, the set of reachable remote routers with a receiver
    (``routers_for``) changed, by an advertisement or by a router coming or going."""

    addresses: frozenset[str]


@dataclass(frozen=True, slots=True)
class NeighbourFound(Event):
    """``peer_id`` became a two-way neighbour: its HELLO lists us and ours lists it."""

    peer_id: str


@dataclass(frozen=True, slots=True)
class NeighbourLost(Event):
    """``peer_id`` stopped being a two-way neighbour; ``reason`` says why (its connection
    closed, its HELLOs stopped, its HELLO no longer lists us, a protocol error)."""

    peer_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class RouterNode:
    """One router as this router sees it, for management (``RoutingCore.nodes()``)."""

    #: The router's id.
    id: str
    #: Its instance (changes when it restarts).
    instance: int
    #: The neighbour of ours the path toward it starts with; None for us and the unreachable.
    next_hop: str | None
    #: The cost of the least-cost path to it; 0 for us, None when unreachable.
    cost: int | None
    #: The two-way neighbours it advertises, with the cost it gives each.
    neighbours: Mapping[str, int]
    #: For a neighbour of ours: the origins whose multicast copies we accept when they
    #: come from it (it is our parent in their shortest-path trees).  Empty otherwise.
    valid_origins: tuple[str, ...]
    #: Whether we have a path to it (always true for us).
    reachable: bool
    #: The ``now`` at which its link state last changed here (for us: our own).
    last_topology_change: float
    #: The sequence numbers of its link state and of its mobile addresses (-1: not held yet).
    ls_seq: int
    mobile_seq: int
    #: How many mobile addresses it advertises.
    address_count: int
