"""How a connection is set up: :class:`ConnectionConfig` and :class:`SaslConfig`."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..spec.framing import MIN_MAX_FRAME_SIZE

if TYPE_CHECKING:
    from .sasl import ClientMechanism, ServerMechanism
    from .scram import ScramCredential

__all__ = ["Authenticator", "ConnectionConfig", "SaslConfig", "ScramLookup"]

#: A server's check of PLAIN credentials: ``(username, password, authzid) -> identity``.
#: It returns the authenticated identity (usually the username), or ``None`` to refuse.
Authenticator = Callable[[str, str, str | None], str | None]
#: A server's SCRAM credentials: ``(username, mechanism) -> credential``, ``None`` for a
#: user it does not know (``mechanism`` is ``SCRAM-SHA-256`` or ``SCRAM-SHA-512``).
ScramLookup = Callable[[str, str], "ScramCredential | None"]

_UINT_MAX = 0xFFFFFFFF


@dataclass
class SaslConfig:
    """The SASL layer (AMQP part 5.3), for either role.

    A client offers ``mechanisms`` in order of preference and uses the first
    one the server offers too (PLAIN and SCRAM only when it has a ``username``
    and a ``password``).  A server offers ``mechanisms`` (PLAIN only when it
    has an ``authenticator``, SCRAM only with ``scram_credentials``, EXTERNAL
    only with an ``external_identity``) and runs the one the client picks.
    ``ANONYMOUS``, ``PLAIN``, ``EXTERNAL``, ``SCRAM-SHA-256`` and
    ``SCRAM-SHA-512`` are built in; ``extra_mechanisms`` adds or replaces
    mechanisms by name: classes implementing
    :class:`~petrel.engine.sasl.ClientMechanism` or
    :class:`~petrel.engine.sasl.ServerMechanism`.
    """

    mechanisms: Sequence[str] = ("PLAIN", "ANONYMOUS")
    """Client: mechanisms we may use, most preferred first.  Server: mechanisms we offer."""
    username: str | None = None
    """Client: the authentication identity (PLAIN's ``authcid``)."""
    password: str | None = None
    """Client: the password (PLAIN)."""
    authzid: str | None = None
    """Client: the identity to act as, if not the username (PLAIN's ``authzid``)."""
    hostname: str | None = None
    """Client: the ``hostname`` of ``sasl-init``; defaults to the connection's hostname."""
    authenticator: Authenticator | None = None
    """Server: decides PLAIN credentials (see :data:`Authenticator`)."""
    anonymous_identity: str = "anonymous"
    """Server: the identity given to clients that authenticate with ANONYMOUS."""
    scram_credentials: ScramLookup | None = None
    """Server: looks up SCRAM credentials (see :data:`ScramLookup`)."""
    scram_secret: bytes | None = None
    """Server: the key from which an unknown user's fake SCRAM salt is derived, so that
    the same unknown name always gets the same salt, as a real user would.  ``None``: a
    random key made once per process."""
    scram_iterations: int = 16384
    """Server: the iteration count shown to an unknown user (make it your users')."""
    external_identity: str | None = None
    """Server: the identity the transport established (a TLS client certificate's), which
    EXTERNAL grants; EXTERNAL is offered only when it is set."""
    extra_mechanisms: Sequence[type[ClientMechanism] | type[ServerMechanism]] = ()
    """Mechanism classes added to (or replacing) the built-in ones, by their ``name``."""


@dataclass
class ConnectionConfig:
    """Everything one side of a connection announces and enforces.

    Sizes are in bytes, times in seconds (sent on the wire as milliseconds).
    """

    container_id: str = field(default_factory=lambda: f"petrel-{uuid.uuid4()}")
    """Our ``container-id``, sent in ``open``."""
    hostname: str | None = None
    """The ``hostname`` of ``open`` (the virtual host a client wants)."""
    max_frame_size: int = 65536
    """The largest frame we accept; bigger ones close the connection with a framing error."""
    channel_max: int = 65535
    """The highest channel number we accept (so at most ``channel_max + 1`` sessions)."""
    idle_timeout: float | None = None
    """Close with ``amqp:resource-limit-exceeded`` when the peer is silent this long.

    The peer is asked to send heartbeats at least every half of it."""
    offered_capabilities: Sequence[str] | None = None
    """``open.offered-capabilities``: extensions we support."""
    desired_capabilities: Sequence[str] | None = None
    """``open.desired-capabilities``: extensions we would like the peer to support."""
    properties: Mapping[str, Any] | None = None
    """``open.properties``: connection properties (keys are sent as symbols)."""
    outgoing_locales: Sequence[str] | None = None
    """``open.outgoing-locales``: locales we may write descriptions in."""
    incoming_locales: Sequence[str] | None = None
    """``open.incoming-locales``: locales we would like descriptions in."""
    sasl: SaslConfig | None = None
    """The SASL layer; ``None``: a client speaks plain AMQP, a server offers no SASL."""
    allow_no_sasl: bool = True
    """Server with SASL: whether a client may also skip SASL and send a bare AMQP header."""
    incoming_window: int = 65536
    """Default ``incoming-window`` (in transfer frames) of the sessions we begin or accept."""
    outgoing_window: int = 0x7FFFFFFF
    """Default ``outgoing-window`` of the sessions we begin or accept."""
    handle_max: int = 65535
    """Default ``handle-max``: the highest link handle we accept on a session."""
    max_message_size: int | None = None
    """Default ``max-message-size`` of our receiving links (``None``: no limit)."""

    def __post_init__(self) -> None:
        if not MIN_MAX_FRAME_SIZE <= self.max_frame_size <= _UINT_MAX:
            raise ValueError(
                f"max_frame_size must be in [{MIN_MAX_FRAME_SIZE}, {_UINT_MAX}], "
                f"got {self.max_frame_size}"
            )
        if not 0 <= self.channel_max <= 0xFFFF:
            raise ValueError(f"channel_max must be in [0, 65535], got {self.channel_max}")
        if self.idle_timeout is not None and not 0 < self.idle_timeout * 1000 <= _UINT_MAX:
            raise ValueError(f"idle_timeout must be positive, got {self.idle_timeout}")
        for name in ("incoming_window", "outgoing_window", "handle_max"):
            value = getattr(self, name)
            if not 0 <= value <= _UINT_MAX:
                raise ValueError(f"{name} must be a uint, got {value}")
