"""The inter-router control messages: their limits, their checks and their wire form.

Every control message is an AMQP map with string keys.  Four keys are common
to all of them::

    {"op": "HELLO" | "RA" | "LSU" | "LSR" | "MAU" | "MAR",
     "pv": 1,                # the protocol version of the sender
     "id": "router-a",       # the router the message is from (its originator)
     "instance": 17, ...}    # that router's instance, chosen when it started

:func:`parse` turns a decoded body into one of the frozen dataclasses below or
raises :class:`ProtocolError` saying what is wrong; nothing else escapes it.
Each dataclass's ``body()`` gives the map back, holding only ``str``, ``int``,
``list`` and ``dict`` values, so the runtime can encode it as it is.  Keys a
message does not define are ignored (a later minor revision may add some);
everything a message does define is checked for type and range, and every
list and map is bounded before anything is built from it.  The whole protocol
is written down in ``docs/router.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import Condition, RemoteProtocolError

__all__ = [
    "MAX_ADDRESSES_PER_MESSAGE",
    "MAX_ADDRESSES_PER_ROUTER",
    "MAX_ADDRESS_LENGTH",
    "MAX_COST",
    "MAX_ID_LENGTH",
    "MAX_INSTANCE",
    "MAX_ROUTERS",
    "MAX_SEQ",
    "PROTOCOL_VERSION",
    "Hello",
    "LinkStateRequest",
    "LinkStateUpdate",
    "Message",
    "MobileDiff",
    "MobileRequest",
    "MobileSnapshot",
    "NeighbourRefused",
    "ProtocolError",
    "RouterAdvert",
    "parse",
    "snapshot_parts",
]

#: The version of the inter-router protocol this module speaks.
PROTOCOL_VERSION = 1

# Bounds on what a peer may make us hold.  A router keeps state for every
# other router and every address they advertise, so each of these caps the
# memory one misbehaving (or merely huge) network can take.
#: Routers one router knows of, itself included.
MAX_ROUTERS = 1024
#: Mobile addresses one router may advertise.
MAX_ADDRESSES_PER_ROUTER = 100_000
#: Addresses in one list of one MAU; a larger set travels in several messages.
MAX_ADDRESSES_PER_MESSAGE = 10_000
#: Characters in a router id (a container id, in practice).
MAX_ID_LENGTH = 255
#: Characters in a mobile address.
MAX_ADDRESS_LENGTH = 1024
#: The largest link cost; costs are at least 1, so every hop lengthens a path.
MAX_COST = 2**31 - 1
#: Sequence numbers and instances are AMQP longs that never wrap.
MAX_SEQ = 2**63 - 1
MAX_INSTANCE = 2**63 - 1
#: Parts of one absolute MAU: the most addresses a router may have, in lists of the most a
#: message may carry.
MAX_PARTS = -(-MAX_ADDRESSES_PER_ROUTER // MAX_ADDRESSES_PER_MESSAGE)


class ProtocolError(RemoteProtocolError):
    """A neighbour sent a control message that breaks the inter-router protocol.

    ``description`` says what was wrong.  The runtime closes the connection
    the message came on with this error (``condition`` is
    ``amqp:invalid-field``, or ``amqp:resource-limit-exceeded`` when a bound
    was passed); the routing core has already forgotten that connection.
    """

    condition = Condition.INVALID_FIELD


class NeighbourRefused(Exception):
    """``RoutingCore.link_up`` refused a connection; the runtime closes it with ``reason``
    (which is also ``str()`` of the exception).

    The reasons: the peer has our router id, it speaks a newer protocol
    version, or it is connected already through another live connection.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _limit(description: str) -> ProtocolError:
    return ProtocolError(description, condition=Condition.RESOURCE_LIMIT_EXCEEDED)


# -- the messages ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    """HELLO: sent to every neighbour every ``hello_interval``; ``seen`` lists the routers
    the sender heard a HELLO from within ``hello_max_age``."""

    id: str
    instance: int
    seen: frozenset[str]

    def body(self) -> dict[str, Any]:
        return {**_head("HELLO", self.id, self.instance), "seen": sorted(self.seen)}


@dataclass(frozen=True, slots=True)
class RouterAdvert:
    """RA: a router's periodic announcement of where its state stands, flooded to all."""

    id: str
    instance: int
    ra_seq: int
    ls_seq: int
    mobile_seq: int

    def body(self) -> dict[str, Any]:
        return {
            **_head("RA", self.id, self.instance),
            "ra_seq": self.ra_seq,
            "ls_seq": self.ls_seq,
            "mobile_seq": self.mobile_seq,
        }


@dataclass(frozen=True, slots=True)
class LinkStateUpdate:
    """LSU: a router's two-way neighbours with their costs, as of ``ls_seq``."""

    id: str
    instance: int
    ls_seq: int
    links: Mapping[str, int]

    def body(self) -> dict[str, Any]:
        return {
            **_head("LSU", self.id, self.instance),
            "ls_seq": self.ls_seq,
            "links": dict(sorted(self.links.items())),
        }


@dataclass(frozen=True, slots=True)
class LinkStateRequest:
    """LSR: ask the neighbour for the link state of ``origin`` (answered with an LSU)."""

    id: str
    instance: int
    origin: str

    def body(self) -> dict[str, Any]:
        return {**_head("LSR", self.id, self.instance), "origin": self.origin}


@dataclass(frozen=True, slots=True)
class MobileDiff:
    """A differential MAU: the addresses ``add``-ed and ``remove``-d to go from
    ``mobile_seq - 1`` to ``mobile_seq`` (``"del"`` on the wire)."""

    id: str
    instance: int
    mobile_seq: int
    add: frozenset[str]
    remove: frozenset[str]

    def body(self) -> dict[str, Any]:
        return {
            **_head("MAU", self.id, self.instance),
            "mobile_seq": self.mobile_seq,
            "add": sorted(self.add),
            "del": sorted(self.remove),
        }


@dataclass(frozen=True, slots=True)
class MobileSnapshot:
    """An absolute MAU: part ``part`` (from 0) of ``parts`` of the whole address set
    as of ``mobile_seq``; the parts of one snapshot travel back to back on one link."""

    id: str
    instance: int
    mobile_seq: int
    exist: frozenset[str]
    part: int = 0
    parts: int = 1

    def body(self) -> dict[str, Any]:
        return {
            **_head("MAU", self.id, self.instance),
            "mobile_seq": self.mobile_seq,
            "exist": sorted(self.exist),
            "part": self.part,
            "parts": self.parts,
        }


@dataclass(frozen=True, slots=True)
class MobileRequest:
    """MAR: ask the neighbour for the addresses of ``origin`` (answered with an absolute MAU)."""

    id: str
    instance: int
    origin: str

    def body(self) -> dict[str, Any]:
        return {**_head("MAR", self.id, self.instance), "origin": self.origin}


Message = (
    Hello
    | RouterAdvert
    | LinkStateUpdate
    | LinkStateRequest
    | MobileDiff
    | MobileSnapshot
    | MobileRequest
)


def snapshot_parts(
    origin: str, instance: int, mobile_seq: int, addresses: frozenset[str] | set[str]
) -> list[MobileSnapshot]:
    """The absolute MAU for an address set, cut into as many parts as the per-message
    bound needs (always at least one, so an empty set is said too)."""
    ordered = sorted(addresses)
    size = MAX_ADDRESSES_PER_MESSAGE
    chunks = [ordered[i : i + size] for i in range(0, len(ordered), size)] or [[]]
    return [
        MobileSnapshot(origin, instance, mobile_seq, frozenset(chunk), n, len(chunks))
        for n, chunk in enumerate(chunks)
    ]


def _head(op: str, origin: str, instance: int) -> dict[str, Any]:
    return {"op": op, "pv": PROTOCOL_VERSION, "id": origin, "instance": instance}


# -- checking what arrives ----------------------------------------------------------------


def parse(body: object) -> Message:
    """The message a decoded control body holds; :class:`ProtocolError` if it holds none."""
    if not isinstance(body, dict):
        raise ProtocolError(f"a control message must be a map, not {type(body).__name__}")
    op = body.get("op")
    if not isinstance(op, str):
        raise ProtocolError("a control message needs a string 'op'")
    reader = _READERS.get(op)
    if reader is None:
        raise ProtocolError(f"unknown control message op {op[:32]!r}")
    pv = _integer(body, "pv", 0, MAX_SEQ)
    if pv > PROTOCOL_VERSION:
        raise ProtocolError(f"speaks protocol version {pv}; this router speaks {PROTOCOL_VERSION}")
    if pv < 1:
        raise ProtocolError(f"protocol version {pv} does not exist")
    origin = router_id(body.get("id"), "'id'")
    instance = _integer(body, "instance", 0, MAX_INSTANCE)
    return reader(body, origin, instance)


def router_id(value: object, what: str = "a router id") -> str:
    """``value`` checked as a router id: a non-empty string of at most 255 characters."""
    if not isinstance(value, str):
        raise ProtocolError(f"{what} must be a string, not {type(value).__name__}")
    if not 0 < len(value) <= MAX_ID_LENGTH:
        raise ProtocolError(f"{what} must have 1 to {MAX_ID_LENGTH} characters")
    return str(value)


def _integer(body: Mapping[str, object], key: str, low: int, high: int) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(f"{key!r} must be an integer, not {type(value).__name__}")
    if not low <= value <= high:
        raise ProtocolError(f"{key!r} is {value}, outside {low}..{high}")
    return int(value)


def _strings(body: Mapping[str, object], key: str, most: int, longest: int) -> frozenset[str]:
    value = body.get(key)
    if not isinstance(value, list):
        raise ProtocolError(f"{key!r} must be a list, not {type(value).__name__}")
    if len(value) > most:
        raise _limit(f"{key!r} holds {len(value)} items; at most {most} are allowed")
    for item in value:
        if not isinstance(item, str):
            raise ProtocolError(f"{key!r} holds a {type(item).__name__}, not a string")
        if not 0 < len(item) <= longest:
            raise ProtocolError(
                f"{key!r} holds a string of {len(item)} characters; 1 to {longest} are allowed"
            )
    return frozenset(str(item) for item in value)


def _read_hello(body: Mapping[str, object], origin: str, instance: int) -> Hello:
    seen = _strings(body, "seen", MAX_ROUTERS, MAX_ID_LENGTH)
    return Hello(origin, instance, seen)


def _read_ra(body: Mapping[str, object], origin: str, instance: int) -> RouterAdvert:
    return RouterAdvert(
        origin,
        instance,
        _integer(body, "ra_seq", 0, MAX_SEQ),
        _integer(body, "ls_seq", 0, MAX_SEQ),
        _integer(body, "mobile_seq", 0, MAX_SEQ),
    )


def _read_lsu(body: Mapping[str, object], origin: str, instance: int) -> LinkStateUpdate:
    ls_seq = _integer(body, "ls_seq", 0, MAX_SEQ)
    value = body.get("links")
    if not isinstance(value, dict):
        raise ProtocolError(f"'links' must be a map, not {type(value).__name__}")
    if len(value) >= MAX_ROUTERS:
        raise _limit(f"'links' names {len(value)} neighbours; at most {MAX_ROUTERS - 1}")
    links: dict[str, int] = {}
    for peer, cost in value.items():
        name = router_id(peer, "a neighbour in 'links'")
        if name == origin:
            raise ProtocolError(f"router {origin!r} lists itself as its own neighbour")
        if not isinstance(cost, int) or isinstance(cost, bool) or not 1 <= cost <= MAX_COST:
            raise ProtocolError(f"the cost to {name!r} must be an integer in 1..{MAX_COST}")
        links[name] = int(cost)
    return LinkStateUpdate(origin, instance, ls_seq, links)


def _read_request(kind: type[LinkStateRequest] | type[MobileRequest]) -> _Reader:
    def read(body: Mapping[str, object], origin: str, instance: int) -> Message:
        return kind(origin, instance, router_id(body.get("origin"), "'origin'"))

    return read


def _read_mau(body: Mapping[str, object], origin: str, instance: int) -> Message:
    mobile_seq = _integer(body, "mobile_seq", 0, MAX_SEQ)
    most, longest = MAX_ADDRESSES_PER_MESSAGE, MAX_ADDRESS_LENGTH
    if "exist" in body:
        if "add" in body or "del" in body:
            raise ProtocolError("a MAU is either absolute ('exist') or differential, not both")
        exist = _strings(body, "exist", most, longest)
        parts = _integer(body, "parts", 1, MAX_PARTS)
        part = _integer(body, "part", 0, parts - 1)
        return MobileSnapshot(origin, instance, mobile_seq, exist, part, parts)
    if mobile_seq == 0:
        raise ProtocolError("a differential MAU starts at mobile_seq 1")
    add = _strings(body, "add", most, longest)
    remove = _strings(body, "del", most, longest)
    if add & remove:
        raise ProtocolError("a MAU both adds and deletes one address")
    if len(add) + len(remove) > most:
        raise _limit(f"a MAU changes {len(add) + len(remove)} addresses; at most {most}")
    return MobileDiff(origin, instance, mobile_seq, add, remove)


_Reader = Callable[[Mapping[str, object], str, int], Message]

_READERS: dict[str, _Reader] = {
    "HELLO": _read_hello,
    "RA": _read_ra,
    "LSU": _read_lsu,
    "LSR": _read_request(LinkStateRequest),
    "MAU": _read_mau,
    "MAR": _read_request(MobileRequest),
}
