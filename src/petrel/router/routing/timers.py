"""The inter-router protocol's timers, in one frozen dataclass.

The defaults are those the protocol is specified with (``docs/router.md``):
a neighbour is lost after three missed HELLOs, and RAs come every second while
the network changes and every five once it has been quiet for ten.  Tests and
simulations shorten them; the routers of one network should agree on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

__all__ = ["Timers"]


@dataclass(frozen=True, slots=True)
class Timers:
    """The protocol's timers, in seconds; each must be positive."""

    #: How often a HELLO goes to every neighbour.
    hello_interval: float = 1.0
    #: A neighbour not heard from for this long is lost.
    hello_max_age: float = 3.0
    #: How often a router originates an RA while in flux (a change within ``flux_period``).
    ra_interval: float = 1.0
    #: How often it does so once things have been stable for ``flux_period``.
    ra_interval_stable: float = 5.0
    #: How long after a change (of our link state, our addresses or the graph) we are in flux.
    flux_period: float = 10.0
    #: Another router's state not refreshed (by its RA, LSU or MAU) for this long is dropped;
    #: the check runs with each HELLO round.
    stale_age: float = 60.0
    #: The least time between two requests (LSR or MAR) for one router's state.
    request_retry: float = 1.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if not (isinstance(value, int | float) and value > 0 and math.isfinite(value)):
                raise ValueError(f"timer {item.name} must be a positive number, not {value!r}")
        if self.hello_max_age <= self.hello_interval:
            raise ValueError("hello_max_age must be longer than hello_interval")
