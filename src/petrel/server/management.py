"""``$management`` in a server: the links and messages of the management node.

The broker and the router both serve one; what differs between them is only
where a reply goes when it is not for a reply link, which each gives the node
as its ``deliver`` callback.

Requests reach the node over a link attached to ``$management`` (a
:class:`RequestLink`), through the anonymous relay with ``to =
$management``, or (a router) from elsewhere in the network
(:meth:`ManagementNode.handle_forwarded`).  Each is answered by the
:class:`~petrel.management.ManagementAgent` (the server's entities behind it)
and the reply goes to the request's ``reply-to``: to a link the same
connection attached *from* ``$management`` whose target address (or name) is
that reply-to (a :class:`ReplyLink`, the pattern some clients use), else to
``deliver(reply_to, payload)``: into the broker's address space (normally
the client's dynamic reply queue), or a router's network.  A reply link
serves its own connection only: another client cannot catch replies by
attaching one with the same address.  A reply ``deliver`` has nowhere to put
(it returns ``False``, or raises an :class:`~petrel.errors.AmqpError`) is
logged and dropped: it never creates an address.

Whether a connection may manage is the server policy's
(:attr:`~petrel.server.ServerConnection.may_manage`); others are answered
403.  Work is bounded: a request link holds at most :data:`WINDOW` requests
in flight, and the node as a whole :data:`MAX_IN_FLIGHT` (beyond which the
relay rejects with ``amqp:resource-limit-exceeded``).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable

from ..engine import Delivery, Link
from ..errors import AmqpError, Condition, DecodeError
from ..management import ManagementAgent
from ..message import Message
from ..spec import Accepted, Error, Rejected
from ..types import Symbol
from .connection import LinkHandler, ServerConnection

__all__ = [
    "MAX_HELD_REPLIES",
    "MAX_IN_FLIGHT",
    "WINDOW",
    "Deliver",
    "ManagementNode",
    "ReplyLink",
    "RequestLink",
]

log = logging.getLogger("petrel.management")

#: Requests one link may have in flight (its credit window).
WINDOW = 16
#: Requests the node handles at once, over all links, the relay and the network.
MAX_IN_FLIGHT = 256
#: Replies a reply link keeps while its client gives no credit; older ones are dropped.
MAX_HELD_REPLIES = 256

#: How a server sends a reply to an address that is none of the connection's reply
#: links: ``deliver(to, payload)`` returns ``False`` when there is no such address, and
#: may raise an :class:`~petrel.errors.AmqpError` when the address refuses it.
Deliver = Callable[[str, bytes], bool]

_ACCEPTED = Accepted()


class ManagementNode:
    """A server's ``$management`` (see the module docstring)."""

    def __init__(self, agent: ManagementAgent, deliver: Deliver) -> None:
        self.agent = agent
        self.deliver = deliver
        self.in_flight = 0
        #: Reply links by (connection, reply-to): each serves its own connection's requests.
        self._reply_links: dict[tuple[ServerConnection, str], ReplyLink] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # --- Node -------------------------------------------------------------------------------

    def attach(self, connection: ServerConnection, link: Link) -> LinkHandler:
        link.attach(source=link.remote_source, target=link.remote_target)
        if link.is_sender:
            # The client receives from $management: replies for it come this way.
            replies = ReplyLink(self, connection, link)
            for key in replies.keys:
                self._reply_links[connection, key] = replies
            return replies
        requests = RequestLink(self, connection, link)
        requests.top_up()
        return requests

    def relay(self, connection: ServerConnection, payload: bytes) -> None:
        self._check_room()
        self.handle(connection, payload)

    # --- requests ---------------------------------------------------------------------------

    def handle(self, connection: ServerConnection, payload: bytes, done: object = None) -> None:
        """Start answering one request; raises ``amqp:decode-error`` if it is not a message.
        ``done`` (a :class:`RequestLink`) hears when the answer has gone."""
        self._start(_request(payload), connection.may_manage, connection, done)

    def handle_forwarded(self, payload: bytes, *, allowed: bool) -> None:
        """Start answering a request that came from elsewhere than a client connection of
        this server (a router: over the network, to ``_topo/0/ID/$management``); the
        reply goes to ``deliver``.  ``allowed``: whether the sender may manage.  Raises
        ``amqp:resource-limit-exceeded`` when the node is busy, ``amqp:decode-error``
        when ``payload`` is not a message."""
        self._check_room()
        self._start(_request(payload), allowed, None, None)

    def _check_room(self) -> None:
        if self.in_flight >= MAX_IN_FLIGHT:
            raise AmqpError(
                f"the management node has {MAX_IN_FLIGHT} requests in hand; try again",
                condition=Condition.RESOURCE_LIMIT_EXCEEDED,
            )

    def _start(
        self,
        request: Message,
        allowed: bool,
        connection: ServerConnection | None,
        done: object,
    ) -> None:
        self.in_flight += 1
        task = asyncio.get_running_loop().create_task(self._answer(request, allowed, connection))
        self._tasks.add(task)

        def finished(task: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            self.in_flight -= 1
            if isinstance(done, RequestLink):
                done.answered()

        task.add_done_callback(finished)

    async def _answer(
        self, request: Message, allowed: bool, connection: ServerConnection | None
    ) -> None:
        reply = await self.agent.handle(request, allowed=allowed)
        if reply is not None:
            self.route(reply, connection)

    def route(self, reply: Message, connection: ServerConnection | None) -> None:
        """Send ``reply`` to its ``to``: a reply link of ``connection`` (which sent the
        request), else through ``deliver``."""
        to = str(reply.to)
        if connection is not None:
            link = self._reply_links.get((connection, to))
            if link is not None:
                link.send(reply.encode())
                return
        try:
            delivered = self.deliver(to, reply.encode())
        except AmqpError as exc:
            log.info("dropping a management reply to %r: %s", to, exc.description)
            return
        if not delivered:
            log.info("dropping a management reply to %r: no such address", to)

    def forget(self, replies: ReplyLink) -> None:
        for key in replies.keys:
            if self._reply_links.get((replies.connection, key)) is replies:
                del self._reply_links[replies.connection, key]

    async def close(self) -> None:
        """Cancel what is still being answered (the server is stopping)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _request(payload: bytes) -> Message:
    try:
        return Message.decode(payload)
    except DecodeError as exc:
        raise AmqpError(
            f"not a management request: {exc.description}", condition=Condition.DECODE_ERROR
        ) from None


class RequestLink(LinkHandler):
    """A client's link *to* ``$management``: each message is a request."""

    __slots__ = ("connection", "in_flight", "link", "node")

    def __init__(self, node: ManagementNode, connection: ServerConnection, link: Link) -> None:
        self.node = node
        self.connection = connection
        self.link = link
        self.in_flight = 0

    def top_up(self) -> None:
        """Credit for as many requests as the window has room for."""
        room = WINDOW - self.in_flight
        credit: int = self.link.credit
        if credit < room // 2 or (credit == 0 and room > 0):
            self.link.flow(room)
            self.connection.protocol.flush()

    def received(self, delivery: Delivery, payload: bytes) -> None:
        try:
            self.node.handle(self.connection, payload, done=self)
        except AmqpError as exc:
            if not delivery.remote_settled:
                error = Error(condition=Symbol(exc.condition), description=exc.description)
                delivery.update(Rejected(error=error), settled=True)
        else:
            self.in_flight += 1
            if not delivery.remote_settled:
                delivery.update(_ACCEPTED, settled=True)
        self.connection.protocol.flush()

    def answered(self) -> None:
        self.in_flight -= 1
        if self.link in self.connection.links:
            self.top_up()


class ReplyLink(LinkHandler):
    """A client's link *from* ``$management``: replies addressed to it are sent on it."""

    __slots__ = ("connection", "held", "keys", "link", "node")

    def __init__(self, node: ManagementNode, connection: ServerConnection, link: Link) -> None:
        self.node = node
        self.connection = connection
        self.link = link
        target = link.remote_target
        address = getattr(target, "address", None)
        #: The reply-to values that mean this link: its target address, and its name.
        self.keys = [str(address)] if address else []
        self.keys.append(link.name)
        self.held: collections.deque[bytes] = collections.deque(maxlen=MAX_HELD_REPLIES)

    def send(self, payload: bytes) -> None:
        if self.link.credit > 0 and not self.held:
            self.link.send(payload, settled=True)
            self.connection.protocol.flush()
            return
        if len(self.held) == MAX_HELD_REPLIES:
            log.info("a management reply link is full; dropping its oldest reply")
        self.held.append(payload)

    def flowed(self, drain: bool) -> None:
        link = self.link
        while self.held and link.credit > 0:
            link.send(self.held.popleft(), settled=True)
        if drain and link.credit > 0:
            link.drained()
        self.connection.protocol.flush()

    def close(self, closed: bool) -> None:
        self.node.forget(self)
        self.held.clear()
