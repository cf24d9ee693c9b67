"""One accepted connection, as every Petrel server handles it before its own business.

:class:`ServerConnection` is the driver's event handler for a connection a
server accepted.  It applies the :class:`~petrel.server.policy.ConnectionPolicy`
(the refusal of a connection over the limit, anonymous clients where they are
not allowed, the session and link limits), writes the access log, hands links
to special nodes (:mod:`petrel.server.nodes`) before anything else, and routes
each link's traffic to the :class:`LinkHandler` that took it.  What a link is
for (a queue, a route) is the subclass's: the broker's ``BrokerConnection``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from mypy_extensions import mypyc_attr

from ..driver import AmqpProtocol
from ..engine import Delivery, Link, Session
from ..engine import events as ev
from ..errors import AmqpError, Condition
from .access import Access, ConnectionAccess
from .config import ListenerSettings
from .nodes import NodeRegistry, terminus_address
from .policy import ConnectionPolicy

__all__ = ["LinkHandler", "ServerConnection", "ServerState"]

log = logging.getLogger("petrel.server")
#: One line per connection opened or refused: who, from where, authenticated how.
access: Final = logging.getLogger("petrel.server.access")


@dataclass(eq=False)
class ServerState:
    """What a server shares with its connections: the policy, the special nodes and the
    live connections, never the server itself."""

    policy: ConnectionPolicy
    nodes: NodeRegistry = field(default_factory=NodeRegistry)
    #: The live connections, in the order they were accepted.
    connections: dict[AmqpProtocol, ServerConnection] = field(default_factory=dict)
    #: When the server started (``time.time()``).
    started: float = field(default_factory=time.time)
    #: Connections accepted since the start (their ids count up from it).
    accepted_total: int = 0
    #: Authorisation, vhosts and per-user limits (``[access]``); None: everything is
    #: allowed to an admitted client.
    access: Access | None = None


# A compiled build compiles this module (petrel._accel): the two base classes below stay
# open to subclasses that are not compiled (the router's, the management node's).
@mypyc_attr(allow_interpreted_subclasses=True)
class LinkHandler:
    """What takes one attached link's traffic; each method does nothing by default."""

    __slots__ = ()

    def received(self, delivery: Delivery, payload: bytes) -> None:
        """A whole message arrived on the link (we are its receiver)."""

    def aborted(self) -> None:
        """The peer aborted the message it was sending."""

    def flowed(self, drain: bool) -> None:
        """The peer changed our credit (we are the sender)."""

    def outcome(self, delivery: Delivery, state: Any, settled: bool) -> None:
        """The peer said what became of a delivery (its state, and whether it settled)."""
        if settled and not delivery.settled:
            delivery.settle()

    def close(self, closed: bool) -> None:
        """The link is over; ``closed`` is the peer's detach flag (false: suspended)."""


@mypyc_attr(allow_interpreted_subclasses=True)
class ServerConnection:
    """The event handler of one accepted connection (see the module docstring).

    Subclasses implement :meth:`attach_link` (and may extend the ``_on_*``
    hooks); ``links`` maps each attached engine link to its handler.
    """

    def __init__(
        self,
        protocol: AmqpProtocol,
        state: ServerState,
        listener: ListenerSettings,
        *,
        refusal: AmqpError | None = None,
    ) -> None:
        self.protocol = protocol
        self.engine = protocol.engine
        self.state = state
        self.policy = state.policy
        #: The link-rate budget (``limits.link_rate``): tokens left and when last counted.
        self._link_tokens = state.policy.limits.link_rate
        self._link_tokens_at = time.monotonic()
        self._throttled = False
        self.listener = listener
        #: Set when the server took this connection over a limit: the client is told so,
        #: with a close, as soon as it has opened (a close needs an open before it).
        self.refusal = refusal
        state.accepted_total += 1
        #: Its management identity, unique while the server runs: ``c<n>``.
        self.id = f"c{state.accepted_total}"
        self.container_id: str | None = None
        self.hostname: str | None = None
        self.identity: str | None = None
        self.mechanism: str | None = None
        #: What it may do, once it has opened (None: no ``[access]`` config, or not open).
        self.access: ConnectionAccess | None = None
        #: When it was accepted (``time.time()``).
        self.opened_at = time.time()
        #: Every attached link and what handles it.
        self.links: dict[Link, LinkHandler] = {}
        #: The sessions this connection serves, each with its attached links.  Limits count
        #: these sets, so a refused session or link never counts and cannot be uncounted.
        self.sessions: dict[Session, set[Link]] = {}
        self._link_ids: dict[Link, int] = {}
        self._link_counter = 0
        self._handlers: dict[type, Callable[[Any], None]] = {
            ev.SaslCompleted: self._on_sasl,
            ev.ConnectionOpened: self._on_opened,
            ev.ConnectionClosed: self._on_closed,
            ev.SessionBegun: self._on_session_begun,
            ev.SessionEnded: self._on_session_ended,
            ev.LinkAttachRequested: self._on_attach_requested,
            ev.LinkDetached: self._on_detached,
            ev.LinkFlowed: self._on_flowed,
            ev.DeliveryReceived: self._on_delivery,
            ev.DeliveryAborted: self._on_delivery_aborted,
            ev.DeliveryUpdated: self._on_delivery_updated,
        }

    def link_id(self, link: Link) -> str:
        """A short id for one of its links, unique within the connection: ``l<n>``."""
        number = self._link_ids.get(link)
        if number is None:
            self._link_counter += 1
            number = self._link_ids[link] = self._link_counter
        return f"l{number}"

    @property
    def peer(self) -> str:
        """The client's address as ``host:port``."""
        peer = self.protocol.peername
        if isinstance(peer, tuple) and len(peer) >= 2:
            return f"{peer[0]}:{peer[1]}"
        return str(peer or "?")

    @property
    def peer_host(self) -> str:
        """The client's IP address (or whatever the transport calls its peer)."""
        peer = self.protocol.peername
        if isinstance(peer, tuple) and peer:
            return str(peer[0])
        return str(peer or "")

    @property
    def may_manage(self) -> bool:
        """Whether this connection may use the management node (the policy says, or the
        ``manage`` right where ``[access]`` is configured)."""
        if self.access is not None:
            return self.access.may_manage
        return self.policy.may_manage(self.identity, self.mechanism, self.peer_host)

    # --- EventHandler -------------------------------------------------------------------------

    def handle_event(self, protocol: AmqpProtocol, event: Any) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    def attach_link(self, link: Link) -> LinkHandler:
        """Answer the attach of ``link`` to an ordinary address; raise an
        :class:`~petrel.errors.AmqpError` to refuse it.  Subclasses implement this."""
        raise AmqpError("this server takes no links", condition=Condition.NOT_IMPLEMENTED)

    # --- connection and sessions ----------------------------------------------------------------

    def _on_sasl(self, event: ev.SaslCompleted) -> None:
        self.identity = event.identity
        self.mechanism = event.mechanism
        if event.code != 0:
            # One line per failed authentication: who, as whom, how, why (never a password).
            access.info(
                "%s: authentication failed: user %r, mechanism %s, %s: %s",
                self.peer,
                event.username,
                event.mechanism,
                event.code.name.lower(),
                event.reason or "refused",
            )

    def _on_opened(self, event: ev.ConnectionOpened) -> None:
        self.container_id = event.container_id
        self.hostname = event.hostname
        who = f"{self.peer}: container {event.container_id!r}, " + (
            f"user {self.identity!r} ({self.mechanism})" if self.mechanism else "no SASL"
        )
        refusal = self.refusal or self.policy.open_refusal(
            self.listener, self.identity, self.mechanism
        )
        if (
            refusal is None
            and self.state.access is not None
            and getattr(self.listener, "role", "normal") != "inter-router"
        ):  # clients, edge routers, and AMQP over WebSockets; other routers are trusted
            refusal = self._open_access(self.state.access)
        self.engine.open()
        if refusal is not None:
            access.info("%s refused: %s", who, refusal.description)
            self.engine.close(refusal)
            return
        access.info("%s opened", who)

    def _open_access(self, authz: Access) -> AmqpError | None:
        """Choose the connection's vhost and count it against its limits; the refusal."""
        authenticated = self.identity is not None and self.mechanism not in (None, "ANONYMOUS")
        try:
            self.access = authz.open(
                self.identity if authenticated else None, self.peer_host, self.hostname
            )
        except AmqpError as exc:
            return exc
        self.protocol.closed.add_done_callback(lambda _: self._release_access())
        return None

    def _release_access(self) -> None:
        if self.access is not None:
            self.access.release()

    def _on_closed(self, event: ev.ConnectionClosed) -> None:
        offered = self.engine.sasl_offered
        if offered is not None and self.engine.sasl_outcome is None:
            # The client saw our mechanisms and left (or broke the exchange) without an
            # outcome: most likely none of them is one it may use.
            access.info(
                "%s: left during SASL without authenticating (offered: %s)%s",
                self.peer,
                ", ".join(offered) or "none",
                f"; {event.error.description}" if event.error is not None else "",
            )
        handlers = list(self.links.values())
        self.links.clear()
        self.sessions.clear()
        self._link_ids.clear()
        for handler in handlers:
            handler.close(False)

    def _spend_link_token(self) -> None:
        """One link or session begun: past the budget, stop reading this client until the
        rate has earned back what it overspent (``limits.link_rate``)."""
        rate = self.policy.limits.link_rate
        if not rate:
            return
        now = time.monotonic()
        tokens = min(rate, self._link_tokens + (now - self._link_tokens_at) * rate) - 1
        self._link_tokens = tokens
        self._link_tokens_at = now
        if tokens < 0 and not self._throttled:
            self._throttled = True
            self.protocol.pause_reading()
            self.protocol.loop.call_later(-tokens / rate, self._unthrottle)

    def _unthrottle(self) -> None:
        self._throttled = False
        self.protocol.resume_reading()

    def _on_session_begun(self, event: ev.SessionBegun) -> None:
        self._spend_link_token()
        limit = self.policy.limits.max_sessions_per_connection
        if self.access is not None and self.access.max_sessions is not None:
            limit = min(limit, self.access.max_sessions)
        if len(self.sessions) >= limit:
            event.session.end(
                AmqpError(
                    f"at most {limit} sessions per connection",
                    condition=Condition.RESOURCE_LIMIT_EXCEEDED,
                )
            )
            return
        self.sessions[event.session] = set()

    def _on_session_ended(self, event: ev.SessionEnded) -> None:
        for link in self.sessions.pop(event.session, ()):
            self._link_ids.pop(link, None)
            handler = self.links.pop(link, None)
            if handler is not None:
                handler.close(False)

    # --- links ------------------------------------------------------------------------------------

    def _on_attach_requested(self, event: ev.LinkAttachRequested) -> None:
        self._spend_link_token()
        link = event.link
        attached = self.sessions.get(link.session)
        if attached is None:
            return  # its session was refused: the engine ends the link with it
        limit = self.policy.limits.max_links_per_session
        try:
            if len(attached) >= limit:
                raise AmqpError(
                    f"at most {limit} links per session",
                    condition=Condition.RESOURCE_LIMIT_EXCEEDED,
                )
            node = self.state.nodes.get(terminus_address(link))
            if self.access is not None:
                self._check_access(self.access, link, node is not None)
            handler = node.attach(self, link) if node is not None else self.attach_link(link)
        except AmqpError as exc:
            log.info("refused link %r: %s", link.name, exc)
            link.detach(exc)
            return
        attached.add(link)
        self.links[link] = handler

    def _check_access(self, authz: ConnectionAccess, link: Link, special: bool) -> None:
        """The ``[access]`` checks of an attach: the link limit, the right it needs; and
        the vhost's message size limit goes on the link."""
        if authz.max_links is not None:
            count = sum(len(links) for links in self.sessions.values())
            if count >= authz.max_links:
                raise AmqpError(
                    f"at most {authz.max_links} links per connection for this user",
                    condition=Condition.RESOURCE_LIMIT_EXCEEDED,
                )
        authz.check_attach(link, special)
        size = authz.max_message_size
        if size is not None and not link.is_sender:
            link.max_message_size = min(link.max_message_size or size, size)

    def _on_detached(self, event: ev.LinkDetached) -> None:
        link = event.link
        attached = self.sessions.get(link.session)
        if attached is not None:
            attached.discard(link)
        handler = self.links.pop(link, None)
        self._link_ids.pop(link, None)
        if handler is not None:
            handler.close(event.closed)
        if event.by_peer:
            link.detach(closed=event.closed)

    def _on_flowed(self, event: ev.LinkFlowed) -> None:
        handler = self.links.get(event.link)
        if handler is not None:
            handler.flowed(event.drain)

    def _on_delivery(self, event: ev.DeliveryReceived) -> None:
        handler = self.links.get(event.delivery.link)
        if handler is not None:
            handler.received(event.delivery, event.payload)

    def _on_delivery_aborted(self, event: ev.DeliveryAborted) -> None:
        handler = self.links.get(event.delivery.link)
        if handler is not None:
            handler.aborted()

    def _on_delivery_updated(self, event: ev.DeliveryUpdated) -> None:
        delivery = event.delivery
        handler = self.links.get(delivery.link)
        if handler is not None:
            handler.outcome(delivery, event.state, event.settled)
        elif event.settled and not delivery.settled:
            delivery.settle()
