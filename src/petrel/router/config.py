"""A router's configuration: the server settings plus who it is, whom it dials, and how
its addresses are distributed.

The file is TOML, every key checked (unknown keys are errors)::

    [router]
    id = "A"                        # required: the router's name in the network

    [[listeners]]                   # clients connect here (role = "normal")
    url = "amqp://127.0.0.1:5672"

    [[listeners]]                   # other routers connect here
    url = "amqp://127.0.0.1:5673"
    role = "inter-router"
    cost = 10

    [[connectors]]                  # this router dials that one
    url = "amqp://127.0.0.1:6673"
    role = "inter-router"
    cost = 5

    [[addresses]]
    prefix = "multicast."
    distribution = "multicast"

How an address is distributed (:func:`distribution_for`): the ``[[addresses]]``
entry that matches the most characters of it literally wins.  A ``prefix``
matches an address that starts with it, and counts its length.  A ``pattern``
is segments separated by ``.`` or ``/``: a literal segment matches itself,
``*`` exactly one segment, ``#`` any number of segments (none too), and it
counts its characters that are not wildcards (``orders.*.audit``: 13,
``orders.#``: 7, ``#``: 0).  On a tie a prefix beats a pattern, then the entry
listed first wins.  An address no entry matches is ``balanced``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..driver import parse_url
from ..server.config import (
    ConnectorSettings,
    ServerSettings,
    read_settings,
)

__all__ = [
    "DEFAULT_DISTRIBUTION",
    "AddressPolicy",
    "AutolinkSettings",
    "Distribution",
    "LinkRouteSettings",
    "RouterSection",
    "RouterSettings",
    "distribution_for",
    "is_waypoint",
    "load_router_settings",
]

Distribution = Literal["closest", "balanced", "multicast"]

#: How an address no ``[[addresses]]`` entry matches is distributed.
DEFAULT_DISTRIBUTION: Distribution = "balanced"

#: A router id: what names it in the network (and in ``_topo/0/ID/...`` addresses).
_ROUTER_ID = re.compile(r"[A-Za-z0-9._:-]{1,255}")
#: What separates the segments of an address, for patterns.
_SEPARATORS = re.compile(r"[./]")
_WILDCARDS = ("*", "#")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RouterSection(_Model):
    """The ``[router]`` table: who this router is."""

    id: str
    """The router's name in the network: 1 to 255 of ``A-Z a-z 0-9 . _ : -``, unique
    among the routers.  It is also the container id unless ``container_id`` is set."""
    mode: Literal["interior", "edge"] = "interior"
    """``interior``: a full member of the network, forwarding for the others.  ``edge``:
    joins the network through an interior router (its ``role = "edge"`` connectors,
    the uplinks), without taking part in the routing protocol."""

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _ROUTER_ID.fullmatch(value):
            raise ValueError(f"{value!r} is not a router id: 1-255 of A-Z a-z 0-9 . _ : -")
        return value


class AddressPolicy(_Model):
    """An ``[[addresses]]`` entry: how the addresses it matches are distributed.

    Exactly one of ``prefix`` and ``pattern`` (see the module docstring).
    """

    prefix: str | None = Field(default=None, min_length=1)
    """Addresses that start with this."""
    pattern: str | None = Field(default=None, min_length=1)
    """Addresses of this shape: segments separated by ``.`` or ``/``; ``*`` one segment,
    ``#`` any number of them."""
    distribution: Distribution = DEFAULT_DISTRIBUTION
    """``closest``: each message to one receiver, a local one if any, else the nearest.
    ``balanced``: each message to one receiver, the least busy (unsettled deliveries,
    plus the path cost for one on another router).  ``multicast``: each message to
    every receiver."""
    waypoint: bool = False
    """The addresses it matches pass through a queue on a broker (``[[autolinks]]``):
    what senders send goes to the broker, and receivers get what comes out of it.
    Every router of the network must say so for the same addresses."""

    @field_validator("pattern")
    @classmethod
    def _check_pattern(cls, value: str | None) -> str | None:
        if value is None:
            return None
        for segment in _SEPARATORS.split(value):
            if segment not in _WILDCARDS and any(w in segment for w in _WILDCARDS):
                raise ValueError(
                    f"pattern {value!r}: * and # stand for whole segments "
                    f"({segment!r} mixes them with text)"
                )
        return value

    @model_validator(mode="after")
    def _check_one(self) -> AddressPolicy:
        if (self.prefix is None) == (self.pattern is None):
            raise ValueError("an [[addresses]] entry has exactly one of prefix and pattern")
        return self

    def strength(self, address: str) -> int | None:
        """How many characters of ``address`` this entry matches literally; ``None`` if it
        does not match it at all."""
        if self.prefix is not None:
            return len(self.prefix) if address.startswith(self.prefix) else None
        assert self.pattern is not None
        if not _matches(_SEPARATORS.split(self.pattern), _SEPARATORS.split(address)):
            return None
        return sum(1 for char in self.pattern if char not in _WILDCARDS)


def _matches(pattern: Sequence[str], segments: Sequence[str]) -> bool:
    """Whether the pattern's segments match the address's (``#``: any number of them)."""
    # reachable[j]: the pattern so far can have consumed exactly j segments.
    reachable = [True] + [False] * len(segments)
    for token in pattern:
        if token == "#":
            for j in range(1, len(reachable)):
                reachable[j] = reachable[j] or reachable[j - 1]
            continue
        step = [False] * len(reachable)
        for j in range(len(segments)):
            if reachable[j] and (token == "*" or token == segments[j]):
                step[j + 1] = True
        reachable = step
    return reachable[-1]


def _endpoint(url: str) -> str:
    """What tells two listeners (or connectors) apart: ``amqp://host:port``."""
    return str(parse_url(url))


class AutolinkSettings(_Model):
    """An ``[[autolinks]]`` entry: a link the router keeps to a queue on a broker (a
    waypoint), over a ``route-container`` connector."""

    address: str = Field(min_length=1)
    """The address in the network (it must be a waypoint: ``[[addresses]]`` with
    ``waypoint = true`` on every router)."""
    connector: str = Field(min_length=1)
    """The name of the ``[[connectors]]`` entry (``role = "route-container"``) to the
    broker."""
    direction: Literal["in", "out"]
    """``out``: messages sent to the address go into the broker's queue.  ``in``:
    messages in the broker's queue go to the address's receivers."""
    external_address: str | None = Field(default=None, min_length=1)
    """The queue's name on the broker (default: ``address``)."""

    @property
    def queue(self) -> str:
        return self.external_address or self.address


class LinkRouteSettings(_Model):
    """A ``[[link_routes]]`` entry: links attached to matching addresses are routed
    through the network to a broker, as links (not messages)."""

    prefix: str | None = Field(default=None, min_length=1)
    pattern: str | None = Field(default=None, min_length=1)
    direction: Literal["in", "out"]
    """``in``: clients' receiving links (messages come in from the broker).  ``out``:
    clients' sending links (messages go out to the broker)."""
    connector: str | None = Field(default=None, min_length=1)
    """The ``route-container`` connector to the broker, on the router attached to it.
    Without one, the entry tells this router that the addresses are link-routed
    somewhere in the network (an attach is refused while no broker serves them)."""

    @model_validator(mode="after")
    def _check_one(self) -> LinkRouteSettings:
        if (self.prefix is None) == (self.pattern is None):
            raise ValueError("a [[link_routes]] entry has exactly one of prefix and pattern")
        if self.pattern is not None:
            AddressPolicy(pattern=self.pattern)  # the same checks
        return self

    @property
    def matcher(self) -> AddressPolicy:
        return AddressPolicy(prefix=self.prefix, pattern=self.pattern)

    @property
    def key(self) -> str:
        """The mobile address under which the router attached to the broker advertises
        this link route while it has the broker: ``_lr/<direction>/P:<prefix>`` or
        ``_lr/<direction>/T:<pattern>``."""
        spec = f"P:{self.prefix}" if self.prefix is not None else f"T:{self.pattern}"
        return f"_lr/{self.direction}/{spec}"


class RouterSettings(ServerSettings):
    """Everything a router can be told (and all :class:`ServerSettings` keys)."""

    router: RouterSection
    connectors: list[ConnectorSettings] = Field(default_factory=list)
    """The connections this router opens and keeps open.  After validation every one
    has a name (``connector-N`` when the file gave none)."""
    addresses: list[AddressPolicy] = Field(default_factory=list)
    autolinks: list[AutolinkSettings] = Field(default_factory=list)
    link_routes: list[LinkRouteSettings] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        section = data.get("router")
        if section is None:
            section = {}
        if isinstance(section, dict) and section.get("id") is None:
            raise ValueError(
                "router.id: required: name this router ([router] id = ... in the config "
                "file, or --id)"
            )
        router_id = section.id if isinstance(section, RouterSection) else section.get("id")
        if "container_id" not in data and isinstance(router_id, str):
            data = {**data, "container_id": router_id}
        return data

    @field_validator("connectors")
    @classmethod
    def _name_connectors(cls, connectors: list[ConnectorSettings]) -> list[ConnectorSettings]:
        return [
            c if c.name is not None else c.model_copy(update={"name": f"connector-{n}"})
            for n, c in enumerate(connectors, 1)
        ]

    @model_validator(mode="after")
    def _check(self) -> RouterSettings:
        _once(
            "listener",
            [_endpoint(listener.url) for listener in self.listeners if listener.role != "http"],
        )
        _once("connector", [_endpoint(connector.url) for connector in self.connectors])
        _once("connector name", [str(connector.name) for connector in self.connectors])
        roles = {str(c.name): c.role for c in self.connectors}
        uplinks = [c for c in self.connectors if c.role == "edge"]
        if self.router.mode == "edge":
            if not uplinks:
                raise ValueError(
                    'router.mode = "edge" needs an uplink: a [[connectors]] entry with '
                    'role = "edge" (or --connect-uplink)'
                )
            extra = [c for c in self.connectors if c.role == "inter-router"]
            if extra or any(listener.role == "inter-router" for listener in self.listeners):
                raise ValueError(
                    "an edge router has no inter-router listeners or connectors; it joins "
                    'through its uplinks (role = "edge")'
                )
        elif uplinks:
            raise ValueError(
                'a role = "edge" connector is an edge router\'s uplink: set router.mode = "edge"'
            )
        for route in self.link_routes:
            if route.connector is not None and roles.get(route.connector) != "route-container":
                raise ValueError(
                    f"link route {route.prefix or route.pattern}: no route-container "
                    f"connector named {route.connector!r}"
                )
        for link in self.autolinks:
            role = roles.get(link.connector)
            if role is None:
                raise ValueError(f"autolink {link.address}: no connector named {link.connector!r}")
            if role != "route-container":
                raise ValueError(
                    f"autolink {link.address}: connector {link.connector!r} is {role}; "
                    'an autolink needs role = "route-container"'
                )
            if not is_waypoint(self.addresses, link.address):
                raise ValueError(
                    f"autolink {link.address}: the address is not a waypoint (add an "
                    "[[addresses]] entry matching it with waypoint = true)"
                )
        return self


def _once(what: str, values: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value} is listed twice")
        seen.add(value)


def is_waypoint(policies: RouterSettings | Sequence[AddressPolicy], address: str) -> bool:
    """Whether ``address`` passes through a broker's queue (its best-matching
    ``[[addresses]]`` entry, chosen as for :func:`distribution_for`, says waypoint)."""
    entry = _best(policies, address)
    return entry is not None and entry.waypoint


def load_router_settings(path: str | Path | None = None, **overrides: Any) -> RouterSettings:
    """A router's settings: :func:`~petrel.server.config.read_settings` with
    :class:`RouterSettings` (raises :class:`~petrel.server.ConfigError`, one line)."""
    return read_settings(RouterSettings, path, **overrides)


def distribution_for(
    policies: RouterSettings | Sequence[AddressPolicy], address: str
) -> Distribution:
    """How ``address`` is distributed under ``policies`` (a router's settings or their
    ``addresses``): the entry matching the most characters literally; on a tie a prefix
    before a pattern, then the first listed; ``balanced`` when none matches."""
    entry = _best(policies, address)
    return entry.distribution if entry is not None else DEFAULT_DISTRIBUTION


def _best(policies: RouterSettings | Sequence[AddressPolicy], address: str) -> AddressPolicy | None:
    entries = policies.addresses if isinstance(policies, RouterSettings) else policies
    best: tuple[int, int] | None = None
    chosen: AddressPolicy | None = None
    for entry in entries:
        strength = entry.strength(address)
        if strength is None:
            continue
        rank = (strength, 1 if entry.prefix is not None else 0)
        if best is None or rank > best:
            best, chosen = rank, entry
    return chosen
