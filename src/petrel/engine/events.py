"""What the engine tells its user: facts about the peer, in the past tense.

``Connection.next_event()`` returns these, in the order they happened.  Each
is a small slotted dataclass, read-only by convention: not ``frozen``, because
a frozen dataclass costs about 2.5 times as much to build and events are built
for every message.  Events name the engine objects they concern
(:class:`~petrel.engine.Session`, :class:`~petrel.engine.Link`,
:class:`~petrel.engine.Delivery`), which carry the full current state.

Endpoint-over events (:class:`ConnectionClosed`, :class:`SessionEnded`,
:class:`LinkDetached`) come once per endpoint: when the peer's frame arrives,
or at once when the engine itself ended the endpoint because the peer broke
the protocol (``by_peer`` is false then and ``error`` is what we sent).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..spec import Error, SaslCode
from ..types import Symbol

if TYPE_CHECKING:
    from .delivery import Delivery
    from .link import Link
    from .session import Session

__all__ = [
    "ConnectionClosed",
    "ConnectionOpened",
    "DeliveryAborted",
    "DeliveryReceived",
    "DeliveryUpdated",
    "Event",
    "LinkAttachRequested",
    "LinkAttached",
    "LinkDetached",
    "LinkFlowed",
    "SaslCompleted",
    "SessionBegun",
    "SessionEnded",
]


@dataclass(slots=True)
class Event:
    """Base class of every engine event."""


@dataclass(slots=True)
class SaslCompleted(Event):
    """The SASL exchange finished, well or badly (part 5.3).

    ``code`` is the outcome; anything but ``SaslCode.OK`` is followed by
    :class:`ConnectionClosed`.  ``identity`` is who the server authenticated
    (on a server), or whom we authenticated as (on a client).
    """

    mechanism: str | None
    code: SaslCode
    identity: str | None = None
    additional_data: bytes | None = None
    username: str | None = field(default=None, compare=False)
    """Server: the user name the client gave, even when refused (for the log)."""
    reason: str | None = field(default=None, compare=False)
    """Server: why it was refused (for the log; the client is told only ``code``)."""


@dataclass(slots=True)
class ConnectionOpened(Event):
    """The peer's ``open`` arrived; its fields as the peer sent them (``idle_timeout`` in s)."""

    container_id: str
    hostname: str | None
    max_frame_size: int
    channel_max: int
    idle_timeout: float | None
    outgoing_locales: tuple[Symbol, ...] | None
    incoming_locales: tuple[Symbol, ...] | None
    offered_capabilities: tuple[Symbol, ...] | None
    desired_capabilities: tuple[Symbol, ...] | None
    properties: dict[Any, Any] | None


@dataclass(slots=True)
class ConnectionClosed(Event):
    """The connection is over.

    ``by_peer`` is true when the peer sent ``close`` first; ``error`` is the
    peer's error then.  When we closed first it is the error in the peer's
    answering close (usually ``None``); when the engine closed because of a
    protocol violation, the transport going away or a failed handshake, it is
    the error we found.  All sessions and links of the connection are over
    too; no events follow for them.
    """

    error: Error | None
    by_peer: bool


@dataclass(slots=True)
class SessionBegun(Event):
    """A session is mapped both ways.

    ``remote_initiated`` is true when the peer began it; the engine has already
    answered with our ``begin`` (windows from the connection's config).
    """

    session: Session
    remote_initiated: bool


@dataclass(slots=True)
class SessionEnded(Event):
    """A session is over (see the module docstring for ``by_peer`` and ``error``).

    Its links are detached with it; no :class:`LinkDetached` follows for them.
    """

    session: Session
    error: Error | None
    by_peer: bool


@dataclass(slots=True)
class LinkAttachRequested(Event):
    """The peer attached a link we did not ask for; it needs an answer.

    Inspect ``link.remote_source``/``link.remote_target`` (and the other
    ``remote_*`` fields), then call ``link.attach(...)`` to accept it or
    ``link.detach(error=...)`` to refuse it.
    """

    link: Link


@dataclass(slots=True)
class LinkAttached(Event):
    """The peer answered our ``attach``: the link is attached both ways.

    A peer that refuses a link answers with a null terminus and then detaches;
    a :class:`LinkDetached` follows in that case.
    """

    link: Link


@dataclass(slots=True)
class LinkDetached(Event):
    """A link is over (see the module docstring for ``by_peer`` and ``error``).

    ``closed`` is the peer's ``closed`` flag: true when the terminus was
    closed, false when the link was only suspended.
    """

    link: Link
    error: Error | None
    closed: bool
    by_peer: bool


@dataclass(slots=True)
class LinkFlowed(Event):
    """The peer sent link flow state (part 2.6.7).

    On a sender, ``credit`` is how many deliveries we may now send and
    ``drain`` whether the receiver asked us to use it all up or give it back
    (``link.drained()``).  On a receiver, ``available`` is what the sender says
    it has and ``drained`` is true when a drain we asked for has completed.
    ``properties`` are the flow's own (a ``txn-id`` there asks for transactional
    acquisition, part 4.4.3).
    """

    link: Link
    credit: int
    available: int | None
    drain: bool
    drained: bool = False
    properties: dict[Any, Any] | None = None
    """The flow's ``properties`` (part 2.7.4), as the peer sent them."""


@dataclass(slots=True)
class DeliveryReceived(Event):
    """A complete message arrived (all its transfer frames).

    ``payload`` is the message's bytes, ``delivery`` its engine object: settle
    it or update its state with ``delivery.update(...)``.
    """

    delivery: Delivery
    payload: bytes

    @property
    def link(self) -> Link:
        """The receiving link."""
        return self.delivery.link

    @property
    def tag(self) -> bytes:
        """The delivery tag."""
        return self.delivery.tag

    @property
    def settled(self) -> bool:
        """Whether the sender settled the delivery (pre-settled: at most once)."""
        return self.delivery.remote_settled

    @property
    def message_format(self) -> int:
        """The ``message-format`` code (0 for a standard AMQP message)."""
        return self.delivery.message_format

    @property
    def state(self) -> Any:
        """The delivery state the sender gave on the transfer (usually ``None``)."""
        return self.delivery.remote_state


@dataclass(slots=True)
class DeliveryAborted(Event):
    """The sender aborted a delivery part way through; what had arrived is dropped."""

    delivery: Delivery


@dataclass(slots=True)
class DeliveryUpdated(Event):
    """The peer changed a delivery's state or settled it (a ``disposition``).

    One event per delivery, even when the peer's disposition covered a range.
    """

    delivery: Delivery
    state: Any
    settled: bool
