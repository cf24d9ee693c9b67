"""What the routing core keeps about each connection and each other router.

Plain mutable records, owned by :class:`~.core.RoutingCore` and changed only
by it; a sequence number of -1 means that nothing is held yet.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, field

__all__ = ["MobileAssembly", "NeighbourLink", "OriginState"]


@dataclass(slots=True, eq=False)
class NeighbourLink:
    """One inter-router connection, as the core knows it."""

    key: Hashable
    peer: str
    cost: int
    #: The peer's instance, from its first HELLO.
    instance: int | None = None
    #: When its last HELLO came; None when never, or not within hello_max_age.
    heard_at: float | None = None
    #: Its last HELLO listed us (and it is heard): the neighbour counts.
    two_way: bool = False
    #: An absolute MAU in several parts, half received.
    assembly: MobileAssembly | None = None


@dataclass(slots=True, eq=False)
class MobileAssembly:
    """An absolute MAU in several parts, put together as they come."""

    origin: str
    instance: int
    mobile_seq: int
    parts: int
    next_part: int
    addresses: set[str]


@dataclass(slots=True, eq=False)
class OriginState:
    """What we hold about another router (-1 for a sequence: nothing held yet)."""

    instance: int
    refreshed_at: float
    changed_at: float
    ra_seq: int = -1
    ls_seq: int = -1
    links: dict[str, int] = field(default_factory=dict)
    mobile_seq: int = -1
    ls_asked_at: float = -math.inf
    mobile_asked_at: float = -math.inf
