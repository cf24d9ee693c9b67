"""The client connection: :func:`connect`, reconnect and failover, links by address.

One :class:`Connection` is one AMQP connection at a time, with one session
carrying all its links.  It is the driver's event handler: engine events are
routed to the :class:`~petrel.client.Sender` or
:class:`~petrel.client.Receiver` they concern, inside the driver's flush
loop, without tasks or queues in between.  Commands made outside that loop
(a send, an accept) end with ``protocol.flush()``, so everything done in one
loop turn leaves in one socket write.

When the connection is lost, the client reconnects (see
:class:`~petrel.client.Reconnect`): it goes round the URL list with backoff,
begins a new session, attaches every link again under its old name, grants
receivers their credit again and sends again every at-least-once message
whose outcome had not arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..driver import Address, AmqpProtocol, parse_url
from ..driver.connector import Connector, GaveUp
from ..engine import ConnectionConfig, SaslConfig
from ..engine import events as ev
from ..errors import AmqpError, Condition
from ..message import Message
from ..spec import ANONYMOUS_RELAY, Error
from ..types import Symbol
from .errors import (
    ClientError,
    ConnectionClosed,
    ConnectionLost,
    NotFound,
    NotImplementedByPeer,
    ResourceLimitExceeded,
    Unauthorized,
    error_from,
)
from .options import ConnectOptions, Urls, takes_connect_options
from .state import ConnectionState, StateChange, StateChanges

if TYPE_CHECKING:
    from ..engine import Link, Session
    from .links import LinkEndpoint
    from .receiver import Receiver
    from .request import Requester, Responder, ResponseHandler
    from .sender import Sender
    from .transaction import Transaction, TransactionController

__all__ = ["ANONYMOUS_RELAY", "Connection", "connect"]

log = logging.getLogger("petrel.client")

#: The connection capability of peers that route messages by their ``to`` (anonymous senders).

_conn_ids = itertools.count(1)
#: Bytes of messages sent without a pause after which the sender writes them and yields.
_BURST = 65536


class _Prefixed(logging.LoggerAdapter[logging.Logger]):
    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[{self.extra['prefix'] if self.extra else '?'}] {msg}", kwargs


def default_mechanisms(
    username: str | None, password: str | None, *, tls: bool, host: str
) -> tuple[str, ...]:
    """The SASL mechanisms a client allows when the caller names none, most preferred first:
    with a user name and password SCRAM-SHA-512, SCRAM-SHA-256, then PLAIN, which sends the
    password itself and so only over TLS or to this machine; ANONYMOUS last (and alone
    without credentials).  EXTERNAL only when asked for (``sasl_mechanisms``)."""
    if username is None:
        return ("ANONYMOUS",)
    if password is None:
        return ("PLAIN", "ANONYMOUS") if tls or _is_loopback(host) else ("ANONYMOUS",)
    plain = ("PLAIN",) if tls or _is_loopback(host) else ()
    return ("SCRAM-SHA-512", "SCRAM-SHA-256", *plain, "ANONYMOUS")


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@takes_connect_options
async def connect(url: Urls, options: ConnectOptions) -> Connection:
    """Open a connection to an AMQP 1.0 peer and wait until it is open.

    ``url`` is ``amqp[s]://[user[:password]@]host[:port][/vhost]``, or a list
    of them for failover: they are tried in order, and reconnecting goes round
    the list.  The keyword options are the fields of
    :class:`~petrel.client.ConnectOptions` (``container_id``, ``username``,
    ``password``, ``sasl_mechanisms``, ``sasl``, ``tls``, ``hostname``,
    ``idle_timeout``, ``max_frame_size``, ``properties``, ``reconnect``,
    ``on_state_change``, ``timeout``), documented there.

    Raises :class:`~petrel.client.errors.ConnectionLost` when no URL can be
    reached, :class:`~petrel.client.errors.Unauthorized` when authentication
    fails.
    """
    return await Connection.open(url, options)


class Connection:
    """A client connection; made by :func:`connect`.

    Use it as an async context manager, or call :meth:`close`.  All its
    methods must be called from the event loop it was opened in (the
    :mod:`petrel.blocking` facade is the thread-safe way in).
    """

    @classmethod
    async def open(cls, url: Urls, options: ConnectOptions) -> Connection:
        """:func:`connect` with its options as one :class:`ConnectOptions`."""
        urls = [url] if isinstance(url, str) else list(url)
        if not urls:
            raise ValueError("connect() needs at least one URL")
        conn = cls([parse_url(u) for u in urls], options)
        await conn._start()
        return conn

    def __init__(self, addresses: list[Address], settings: ConnectOptions) -> None:
        self._loop = asyncio.get_running_loop()
        self._addresses = addresses
        self._settings = settings
        self._container_id = settings.container_id or f"petrel-{uuid.uuid4()}"
        self._reconnect = settings.reconnect_policy
        self._connector = Connector(
            addresses,
            self._config,
            self,
            tls=settings.tls,
            timeout=settings.timeout,
            backoff=self._reconnect,
            is_final=_refused_login,
            on_connected=self._adopt,
        )
        self._index = 0
        self._protocol: AmqpProtocol | None = None
        self._session: Session | None = None
        #: The engine link of each attached client link, on the current connection.
        self._links: dict[Link, LinkEndpoint] = {}
        #: Every client link that is open, whatever the connection's state.
        self._endpoints: list[LinkEndpoint] = []
        #: Senders closed with messages in flight, by their detached engine link: the
        #: outcomes may still come (deliveries belong to the session, not the link).
        self._closed_senders: dict[Link, Sender] = {}
        self._state = ConnectionState.CONNECTING
        self._error: ClientError | None = None
        self._closing = False
        self._closed: asyncio.Future[ClientError | None] = self._loop.create_future()
        self._reconnect_task: asyncio.Task[None] | None = None
        self._callbacks: list[Callable[[StateChange], None]] = []
        if settings.on_state_change is not None:
            self._callbacks.append(settings.on_state_change)
        self._watchers: list[asyncio.Queue[StateChange]] = []
        self._link_ids = itertools.count(1)
        self._requester: Requester | None = None
        self._responders: list[Responder] = []
        self._controller: TransactionController | None = None
        #: Counts the transports adopted (a transaction belongs to one of them).
        self._epoch = 0
        self._offered: tuple[Symbol, ...] = ()
        self._burst = 0
        self.name = f"{self._container_id}/c{next(_conn_ids)}"
        self.log = _Prefixed(log, {"prefix": self.name})
        self._dispatch: dict[type, Callable[[Any], None]] = {
            ev.DeliveryReceived: self._on_delivery,
            ev.DeliveryUpdated: self._on_update,
            ev.LinkFlowed: self._on_flow,
            ev.LinkAttached: self._on_attached,
            ev.LinkDetached: self._on_detached,
            ev.LinkAttachRequested: self._on_attach_requested,
            ev.SessionEnded: self._on_session_ended,
            ev.ConnectionClosed: self._on_closed,
        }

    # --- public view ------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """Where the connection is: connecting, open, reconnecting or closed."""
        return self._state

    @property
    def url(self) -> str:
        """The peer we are (or were last) connected to, as ``scheme://host:port``."""
        return str(self._addresses[self._index])

    @property
    def container_id(self) -> str:
        """Our container id."""
        return self._container_id

    @property
    def remote_container_id(self) -> str | None:
        """The peer's container id (``None`` while not connected)."""
        protocol = self._protocol
        if protocol is None or protocol.engine.remote_open is None:
            return None
        return str(protocol.engine.remote_open.container_id)

    @property
    def offered_capabilities(self) -> tuple[str, ...]:
        """The capabilities the peer offered in its ``open`` (``ANONYMOUS-RELAY``, ...)."""
        return tuple(str(c) for c in self._offered)

    @property
    def is_closed(self) -> bool:
        """Whether the connection is over for good."""
        return self._state is ConnectionState.CLOSED

    def add_state_callback(self, callback: Callable[[StateChange], None]) -> None:
        """Call ``callback(change)`` on every later state change (in the event loop)."""
        self._callbacks.append(callback)

    def state_changes(self) -> StateChanges:
        """An async iterator over the state changes from now on; it ends after ``CLOSED``."""
        queue: asyncio.Queue[StateChange] = asyncio.Queue()
        if self._state is ConnectionState.CLOSED:
            queue.put_nowait(StateChange(self._state, self.url, self._error))
        else:
            self._watchers.append(queue)
        return StateChanges(queue, self._watchers)

    async def wait_closed(self) -> ClientError | None:
        """Wait until the connection is over for good; the error that ended it, if any."""
        return await asyncio.shield(self._closed)

    # --- opening links ----------------------------------------------------------------------

    async def open_sender(
        self,
        address: str | None,
        *,
        name: str | None = None,
        at_most_once: bool = False,
        retry_released: int = 0,
        capabilities: Sequence[str] | None = None,
        properties: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Sender:
        """Attach a sending link to ``address`` and wait for the peer's answer.

        ``address=None`` opens an anonymous sender: each message goes where
        its ``to`` says (the peer must offer ``ANONYMOUS-RELAY``).
        ``at_most_once`` makes every send pre-settled: ``send()`` returns as
        soon as the message is written and nothing is resent.  Otherwise (at
        least once) ``send()`` waits for the peer's outcome; a released or
        modified message is sent again up to ``retry_released`` times before
        :class:`~petrel.client.errors.MessageReleased` (or
        ``MessageModified``) is raised.  Raises ``NotFound``,
        ``Unauthorized``, ... when the peer refuses the link, ``Timeout``
        after ``timeout`` seconds (default: the connection's).
        """
        from .sender import Sender

        self._check_usable()
        if address is None and self._state is ConnectionState.OPEN:
            self._require_anonymous_relay()
        sender = Sender(
            self,
            name or self._link_name("sender"),
            address,
            at_most_once=at_most_once,
            retry_released=retry_released,
            capabilities=capabilities,
            properties=properties,
        )
        await sender._open(self._timeout(timeout))
        return sender

    async def open_receiver(
        self,
        address: str | None,
        *,
        credit: int = 100,
        auto_accept: bool = False,
        name: str | None = None,
        selector: str | None = None,
        filter: Mapping[str, Any] | None = None,
        browse: bool = False,
        durable: bool = False,
        shared: bool | str = False,
        dynamic: bool = False,
        at_most_once: bool = False,
        capabilities: Sequence[str] | None = None,
        properties: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Receiver:
        """Attach a receiving link from ``address`` and wait for the peer's answer.

        - ``credit``: the prefetch window, refilled automatically once half
          of it has been handed to the application; ``0`` for manual credit
          (:meth:`Receiver.add_credit`, :meth:`Receiver.drain`).
        - ``auto_accept``: accept each delivery when it is handed over.
        - ``selector``: a JMS-style selector (``apache.org:selector-filter:string``);
          ``filter``: more entries for the source's filter set (values are
          :class:`~petrel.types.Described` filters).
        - ``browse``: look at messages without taking them (distribution-mode copy).
        - ``durable``: a durable subscription, named ``name`` (required): the
          terminus is durable, never expires, and survives ``detach()``.
        - ``shared``: a shared subscription (capability ``shared``; ``"global"``
          adds ``global``): receivers with the same ``name`` share its messages.
        - ``dynamic``: ask the peer to create a temporary node; its address is
          :attr:`Receiver.address` (``address`` must be ``None``).
        - ``at_most_once``: ask for pre-settled deliveries (nothing to accept).

        Raises ``NotFound``, ``Unauthorized``, ... when the peer refuses the
        link, ``Timeout`` after ``timeout`` seconds.
        """
        from .receiver import Receiver

        self._check_usable()
        if durable and not name:
            raise ValueError("a durable subscription needs a name (the subscription's name)")
        if dynamic and address is not None:
            raise ValueError("a dynamic receiver takes no address (the peer assigns one)")
        if credit < 0:
            raise ValueError(f"credit must be 0 or more, got {credit}")
        receiver = Receiver(
            self,
            name or self._link_name("receiver"),
            address,
            credit=credit,
            auto_accept=auto_accept,
            selector=selector,
            filter=filter,
            browse=browse,
            durable=durable,
            shared=shared,
            dynamic=dynamic,
            at_most_once=at_most_once,
            capabilities=capabilities,
            properties=properties,
        )
        await receiver._open(self._timeout(timeout))
        return receiver

    # --- request / response -----------------------------------------------------------------

    async def request(
        self, address: str, message: Message | Any, *, timeout: float | None = 30.0
    ) -> Message:
        """Send ``message`` to ``address`` and wait for the response.

        The request gets a fresh ``message_id`` (unless it has one) and
        ``reply_to`` set to a dynamic receiver of this connection; the
        response is the message that comes back there with that
        ``correlation_id``.  A body that is not a :class:`~petrel.Message`
        is sent as ``Message(body)``.  Raises :class:`Timeout` after
        ``timeout`` seconds, ``MessageRejected`` when the request is refused.
        """
        from .request import Requester

        self._check_usable()
        if self._requester is None:
            self._requester = Requester(self)
        return await self._requester.request(address, message, timeout)

    async def serve(
        self,
        address: str,
        handler: ResponseHandler,
        *,
        credit: int = 10,
        name: str | None = None,
    ) -> Responder:
        """Answer requests arriving at ``address`` with ``handler(request) -> response``.

        ``handler`` is a function or coroutine function taking the request
        :class:`~petrel.Message` and returning the response (a ``Message`` or a
        body).  The response goes to the request's ``reply_to`` with
        ``correlation_id`` set to the request's ``message_id``; the request
        is accepted once the response is sent, or rejected with
        ``amqp:internal-error`` if the handler raises.  Close the returned
        :class:`~petrel.client.Responder` (or use it as an async context
        manager) to stop.
        """
        from .request import Responder

        self._check_usable()
        responder = Responder(self, address, handler)
        await responder._start(credit=credit, name=name)
        self._responders.append(responder)
        return responder

    # --- transactions -------------------------------------------------------------------------

    def transaction(self, *, timeout: float | None = None) -> Transaction:
        """A local transaction: ``async with conn.transaction() as tx:`` declares it,
        commits it when the block ends and rolls it back when the block raises.  Send
        with ``await tx.send(sender, message)``, settle with ``await tx.accept(delivery)``
        (or ``reject``, ``release``, ``modify``).  See :mod:`petrel.client.transaction`."""
        from .transaction import Transaction

        self._check_usable()
        return Transaction(self, self._timeout(timeout))

    async def _transaction_controller(self, timeout: float | None) -> TransactionController:
        """The link to the peer's coordinator, attached on first use."""
        from .transaction import TransactionController

        controller = self._controller
        if controller is None or not controller.is_open:
            controller = self._controller = TransactionController(
                self, self._link_name("coordinator")
            )
            try:
                await controller._open(timeout)
            except BaseException:
                self._controller = None
                raise
        await controller._wait_ready(timeout)
        return controller

    # --- closing ----------------------------------------------------------------------------

    async def close(self, error: AmqpError | None = None, *, timeout: float = 5.0) -> None:
        """Close the connection (and so every link), waiting up to ``timeout`` s for the peer.

        Sends still waiting for credit or an outcome fail with
        :class:`~petrel.client.errors.ConnectionClosed`.  Closing twice does nothing.
        """
        if self._closing or self._state is ConnectionState.CLOSED:
            await asyncio.shield(self._closed)
            return
        self._closing = True
        task = self._reconnect_task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for responder in list(self._responders):
            await responder._stop()
        protocol = self._protocol
        if protocol is not None:
            try:
                await protocol.close(error, timeout=timeout)
            finally:
                self._protocol = None
        self._finish(ConnectionClosed("the connection was closed by the application"))

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<petrel.Connection {self.name} {self.url} {self._state.value}>"

    # --- connecting -------------------------------------------------------------------------

    async def _start(self) -> None:
        """The first connection: each URL once (or with backoff, if the policy says so)."""
        policy = self._reconnect
        if policy is not None and policy.connect_initial:
            await self._connect_with_backoff(None, initial=True)
            if self._state is ConnectionState.CLOSED:
                raise self._error or ConnectionLost("could not connect")
            return
        errors: list[str] = []
        for index, address in enumerate(self._addresses):
            try:
                await self._open_transport(index)
            except Unauthorized:
                raise
            except (ResourceLimitExceeded, NotFound) as exc:
                # The server refused the open (over a limit, no such virtual host): with
                # nowhere else to try, its reason is the answer.
                if len(self._addresses) == 1:
                    raise
                errors.append(f"{address}: {_describe(exc)}")
                continue
            except (OSError, TimeoutError, AmqpError) as exc:
                self.log.debug("cannot connect to %s: %s", address, exc)
                errors.append(f"{address}: {_describe(exc)}")
                continue
            self._set_state(ConnectionState.OPEN)
            return
        raise ConnectionLost(f"could not connect to {'; '.join(errors)}")

    def _config(self, address: Address) -> ConnectionConfig:
        s = self._settings
        sasl: SaslConfig | None = None
        if s.sasl:
            username = s.username if s.username is not None else address.user
            password = s.password if s.password is not None else address.password
            mechanisms = tuple(s.sasl_mechanisms) if s.sasl_mechanisms else None
            if mechanisms is None:
                mechanisms = default_mechanisms(
                    username, password, tls=address.tls or s.tls is not None, host=address.host
                )
            sasl = SaslConfig(mechanisms=mechanisms, username=username, password=password)
        return ConnectionConfig(
            container_id=self._container_id,
            hostname=s.hostname or address.vhost or address.host or None,
            max_frame_size=s.max_frame_size,
            idle_timeout=s.idle_timeout,
            properties=s.properties,
            sasl=sasl,
        )

    async def _open_transport(self, index: int) -> None:
        """One attempt at the address at ``index``; on success it is the current connection.
        Raises a :class:`ClientError` (or ``OSError``/``TimeoutError``)."""
        try:
            await self._connector.connect_to(index)
        except AmqpError as exc:
            raise error_from(exc, ConnectionLost) from None

    def _adopt(self, protocol: AmqpProtocol, index: int) -> None:
        """A connection to the address at ``index`` opened: make it the current one and
        attach the links again (the connector's ``on_connected``)."""
        address = self._addresses[index]
        if protocol.closed.done():
            # The peer's open came with its close (a refusal: over a limit, not admitted):
            # its error says why, so it is what the caller sees.
            raise error_from(
                protocol.closed.result(),
                ConnectionClosed,
                f"{address} closed the connection as it opened",
            )
        self._protocol = protocol
        self._index = index
        self._epoch += 1
        remote = protocol.engine.remote_open
        self._offered = tuple(remote.offered_capabilities or ()) if remote else ()
        self._session = protocol.engine.begin_session()
        self.log.debug("connected to %s (peer %s)", address, self.remote_container_id)
        for endpoint in self._endpoints:
            endpoint._attach()
        protocol.flush()

    async def _connect_with_backoff(self, error: Exception | None, *, initial: bool) -> None:
        def failed(attempt: int, address: Address, exc: BaseException) -> None:
            self.log.info(
                "connection attempt %d to %s failed: %s", attempt, address, _describe(exc)
            )
            cause = error_from(exc, ConnectionLost) if isinstance(exc, AmqpError) else exc
            assert isinstance(cause, Exception)  # the connector catches no more than these
            self._set_state(ConnectionState.RECONNECTING, cause, attempt)

        try:
            _, index = await self._connector.connect(
                self._index, wait_first=not initial, on_failure=failed
            )
        except GaveUp as exc:
            last = exc.error or error
            why = f"; the last error: {_describe(last)}" if last else ""
            verb = "connecting" if initial else "reconnecting"
            self._finish(ConnectionLost(f"gave up {verb} after {exc.attempts} attempts{why}"))
            return
        except AmqpError as exc:  # final: authentication refused
            self._finish(error_from(exc, ConnectionLost))
            return
        self.log.info("connected to %s", self._addresses[index])
        self._set_state(ConnectionState.OPEN)

    # --- events from the driver -------------------------------------------------------------

    def handle_event(self, protocol: AmqpProtocol, event: Any) -> None:
        """The driver's callback: route one engine event (see the module docstring)."""
        if protocol is not self._protocol:
            return
        handler = self._dispatch.get(type(event))
        if handler is not None:
            handler(event)

    def _on_delivery(self, event: ev.DeliveryReceived) -> None:
        delivery = event.delivery
        endpoint = self._links.get(delivery.link)
        if endpoint is not None:
            endpoint._on_delivery(delivery, event.payload)

    def _on_update(self, event: ev.DeliveryUpdated) -> None:
        delivery = event.delivery
        endpoint = self._links.get(delivery.link)
        if endpoint is None:  # a sender closed with messages in flight, maybe
            endpoint = self._closed_senders.get(delivery.link)
        if endpoint is not None:
            endpoint._on_update(delivery, event.state, event.settled)

    def _on_flow(self, event: ev.LinkFlowed) -> None:
        endpoint = self._links.get(event.link)
        if endpoint is not None:
            endpoint._on_flow(event)

    def _on_attached(self, event: ev.LinkAttached) -> None:
        endpoint = self._links.get(event.link)
        if endpoint is not None:
            endpoint._on_attached(event.link)

    def _on_detached(self, event: ev.LinkDetached) -> None:
        endpoint = self._links.pop(event.link, None)
        if endpoint is not None:
            endpoint._on_detached(event.error, event.closed)

    def _on_attach_requested(self, event: ev.LinkAttachRequested) -> None:
        # A client does not take links the peer opens towards it.
        event.link.detach(
            error=Error(
                condition=Symbol(Condition.NOT_ALLOWED),
                description="this client does not accept links it did not ask for",
            )
        )

    def _on_session_ended(self, event: ev.SessionEnded) -> None:
        if event.session is not self._session:
            return
        self._session = None
        self._outcomes_lost(event.session)
        error = error_from(event.error, ConnectionClosed, "the peer ended the session")
        for link, endpoint in list(self._links.items()):
            if link.session is event.session:
                del self._links[link]
                endpoint._on_detached(event.error, True, error)

    def _on_closed(self, event: ev.ConnectionClosed) -> None:
        self._protocol = None
        self._session = None
        self._links.clear()
        self._outcomes_lost(None)
        if self._closing:
            return
        if event.by_peer:
            error = error_from(event.error, ConnectionClosed, "the peer closed the connection")
        else:
            error = error_from(event.error, ConnectionLost, "the connection was lost")
        policy = self._reconnect
        if policy is None or isinstance(error, Unauthorized):
            self.log.info("connection over: %s", error)
            self._finish(error)
            return
        self.log.info("connection lost (%s); reconnecting", error)
        for endpoint in self._endpoints:
            endpoint._suspend()
        if self._requester is not None:
            self._requester._suspend(error)
        self._set_state(ConnectionState.RECONNECTING, error)
        self._reconnect_task = self._loop.create_task(
            self._connect_with_backoff(error, initial=False)
        )

    # --- for senders and receivers ----------------------------------------------------------

    def _timeout(self, timeout: float | None) -> float | None:
        return self._settings.timeout if timeout is None else timeout

    def _link_name(self, kind: str) -> str:
        return f"{kind}-{next(self._link_ids)}-{uuid.uuid4().hex[:8]}"

    def _check_usable(self) -> None:
        if self._closing or self._state is ConnectionState.CLOSED:
            raise self._error or ConnectionClosed("the connection is closed")

    def _require_anonymous_relay(self) -> None:
        if ANONYMOUS_RELAY not in self._offered:
            raise NotImplementedByPeer(
                "the peer does not offer ANONYMOUS-RELAY; open a sender per address instead"
            )

    def _add_endpoint(self, endpoint: LinkEndpoint) -> None:
        """Track a new client link and attach it now if the connection is up."""
        self._endpoints.append(endpoint)
        protocol = self._protocol
        if protocol is None:
            return  # attached once reconnected
        if self._session is None:
            # The peer ended our session (it detached its links with it): begin another.
            self._session = protocol.engine.begin_session()
        endpoint._attach()
        self._flush()

    def _remove_endpoint(self, endpoint: LinkEndpoint) -> None:
        with contextlib.suppress(ValueError):
            self._endpoints.remove(endpoint)
        link = endpoint._link
        if link is not None and self._links.get(link) is endpoint:
            del self._links[link]

    def _outcomes_lost(self, session: Session | None) -> None:
        """``session`` (None: every one) ended: closed senders' sends still open fail."""
        if self._closed_senders:
            from .sender import outcomes_lost

            outcomes_lost(self._closed_senders, session)

    def _new_link(self, endpoint: LinkEndpoint, sender: bool, **attach: Any) -> Link:
        session = self._session
        assert session is not None
        if sender:
            link = session.attach_sender(endpoint.name, **attach)
        else:
            link = session.attach_receiver(endpoint.name, **attach)
        self._links[link] = endpoint
        return link

    @property
    def _connected(self) -> bool:
        return self._session is not None

    def _flush(self) -> None:
        protocol = self._protocol
        if protocol is not None:
            protocol.flush()

    def _wrote(self, size: int) -> bool:
        """A message of ``size`` bytes went into the engine: schedule the write.

        A long run of sends that never waits (credit to spare) would keep the
        loop busy and hold everything in the engine until it ends.  Every
        :data:`_BURST` bytes the output is written at once instead, and the
        answer is true: the sender then yields once, so the loop can read
        what came in meanwhile (dispositions, flow, other connections).
        """
        protocol = self._protocol
        if protocol is None:
            return False
        burst = self._burst + size
        if burst < _BURST:
            self._burst = burst
            protocol.flush()
            return False
        self._burst = 0
        protocol.transmit()
        return True

    # --- state ------------------------------------------------------------------------------

    def _set_state(
        self, state: ConnectionState, error: Exception | None = None, attempt: int = 0
    ) -> None:
        if state is self._state and state is not ConnectionState.RECONNECTING:
            return
        self._state = state
        change = StateChange(state, self.url, error, attempt)
        for callback in list(self._callbacks):
            try:
                callback(change)
            except Exception:
                self.log.exception("state-change callback %r failed", callback)
        for queue in self._watchers:
            queue.put_nowait(change)
        if state is ConnectionState.CLOSED:
            self._watchers.clear()

    def _finish(self, error: ClientError) -> None:
        """The connection is over for good: fail whatever still waits."""
        if self._state is ConnectionState.CLOSED:
            return
        if self._error is None:
            self._error = error
        protocol = self._protocol
        self._protocol = None
        self._session = None
        self._links.clear()
        self._outcomes_lost(None)
        if protocol is not None:
            protocol.abort_if_open()
        for endpoint in list(self._endpoints):
            endpoint._fail(error)
        self._endpoints.clear()
        if self._requester is not None:
            self._requester._fail(error)
        graceful = isinstance(error, ConnectionClosed) and self._closing
        self._set_state(ConnectionState.CLOSED, None if graceful else error)
        if not self._closed.done():
            self._closed.set_result(None if graceful else error)


def _refused_login(error: BaseException) -> bool:
    """Whether a failed attempt is a refused login, which trying again will not mend."""
    if isinstance(error, Unauthorized):
        return True
    return isinstance(error, AmqpError) and error.condition == Condition.UNAUTHORIZED_ACCESS


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
