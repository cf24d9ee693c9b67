"""One client connection to the broker: engine events in, broker operations out."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..driver import AmqpProtocol
from ..engine import Link, Session
from ..engine import events as ev
from ..errors import AmqpError, Condition
from ..spec import (
    CAP_GLOBAL,
    CAP_QUEUE,
    CAP_SHARED,
    CAP_TOPIC,
    SELECTOR_FILTER,
    SELECTOR_FILTER_CODE,
    DistributionMode,
    ExpiryPolicy,
    Source,
    Target,
    TerminusDurability,
)
from ..types import Described
from .links import ConsumerLink, ProducerLink
from .selector import SelectorError, compile_selector

if TYPE_CHECKING:
    from .broker import Broker

__all__ = ["BrokerConnection"]

log = logging.getLogger("petrel.broker")
_SELECTOR_DESCRIPTORS = (SELECTOR_FILTER, SELECTOR_FILTER_CODE)
#: One line per connection opened or refused: who, from where, authenticated how.
access = logging.getLogger("petrel.broker.access")


class BrokerConnection:
    """The broker's :class:`~petrel.driver.EventHandler` for one connection."""

    def __init__(self, broker: Broker, protocol: AmqpProtocol) -> None:
        self.broker = broker
        self.core = broker.core
        self.protocol = protocol
        self.engine = protocol.engine
        self.container_id: str | None = None
        self.identity: str | None = None
        self.mechanism: str | None = None
        self.consumers: dict[Link, ConsumerLink] = {}
        self.producers: dict[Link, ProducerLink] = {}
        #: The sessions this connection serves, each with its attached links.  Limits count
        #: these sets, so a refused session or link never counts and cannot be uncounted.
        self.sessions: dict[Session, set[Link]] = {}
        #: Set when the broker took this connection over a limit: the client is told so,
        #: with a close, as soon as it has opened (a close needs an open before it).
        self.refusal: AmqpError | None = None
        protocol.on_writable = self._writable_again
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

    # --- EventHandler -------------------------------------------------------------------------

    def handle_event(self, protocol: AmqpProtocol, event: Any) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    def _writable_again(self) -> None:
        """The client's socket drained: its consumers may take messages again."""
        for consumer in self.consumers.values():
            self.core.mark_dirty(consumer.queue)

    def is_live(self, link: Link) -> bool:
        """Whether ``link`` still belongs to this live connection."""
        return link in self.consumers or link in self.producers

    # --- connection and sessions ----------------------------------------------------------------

    def _on_sasl(self, event: ev.SaslCompleted) -> None:
        self.identity = event.identity
        self.mechanism = event.mechanism
        if event.code != 0:
            access.info(
                "%s: SASL %s failed (%s)", self.protocol.peername, event.mechanism, event.code.name
            )

    def _on_opened(self, event: ev.ConnectionOpened) -> None:
        self.container_id = event.container_id
        who = f"{self.protocol.peername}: container {event.container_id!r}, " + (
            f"user {self.identity!r} ({self.mechanism})" if self.mechanism else "no SASL"
        )
        if self.refusal is not None:
            access.info("%s refused: %s", who, self.refusal.description)
            self.engine.open()
            self.engine.close(self.refusal)
            return
        authenticated = self.identity is not None and self.mechanism not in (None, "ANONYMOUS")
        if not authenticated and not self.broker.anonymous_allowed(self.protocol):
            access.info("%s refused: anonymous on a listener that requires authentication", who)
            self.engine.open()
            self.engine.close(
                AmqpError(
                    "this listener requires authentication (SASL PLAIN)",
                    condition=Condition.UNAUTHORIZED_ACCESS,
                )
            )
            return
        access.info("%s opened", who)
        self.engine.open()

    def _on_closed(self, event: ev.ConnectionClosed) -> None:
        for consumer in list(self.consumers.values()):
            consumer.close()
        for producer in list(self.producers.values()):
            producer.close()
        self.consumers.clear()
        self.producers.clear()
        self.sessions.clear()

    def _on_session_begun(self, event: ev.SessionBegun) -> None:
        limit = self.broker.settings.limits.max_sessions_per_connection
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
        session = event.session
        self.sessions.pop(session, None)
        for link in [lk for lk in self.consumers if lk.session is session]:
            self.consumers.pop(link).close()
        for link in [lk for lk in self.producers if lk.session is session]:
            self.producers.pop(link).close()

    # --- links ------------------------------------------------------------------------------------

    def _on_attach_requested(self, event: ev.LinkAttachRequested) -> None:
        link = event.link
        attached = self.sessions.get(link.session)
        if attached is None:
            return  # its session was refused: the engine ends the link with it
        limit = self.broker.settings.limits.max_links_per_session
        try:
            if len(attached) >= limit:
                raise AmqpError(
                    f"at most {limit} links per session",
                    condition=Condition.RESOURCE_LIMIT_EXCEEDED,
                )
            if link.is_sender:
                self._attach_consumer(link)
            else:
                self._attach_producer(link)
        except AmqpError as exc:
            log.info("refused link %r: %s", link.name, exc)
            link.detach(exc)
            return
        attached.add(link)

    def _attach_consumer(self, link: Link) -> None:
        source = link.remote_source
        if not isinstance(source, Source):
            raise AmqpError("a receiving link needs a source", condition=Condition.INVALID_FIELD)
        core = self.core
        capabilities = _symbols(source.capabilities) | _symbols(link.remote_desired_capabilities)
        selector = None
        selector_text = None
        applied_filters: dict[Any, Any] | None = None
        for key, value in (source.filter or {}).items():
            if isinstance(value, Described) and value.descriptor in _SELECTOR_DESCRIPTORS:
                if not isinstance(value.value, str):
                    raise AmqpError(
                        "a selector filter holds a string", condition=Condition.INVALID_FIELD
                    )
                try:
                    selector = compile_selector(value.value)
                except SelectorError as exc:
                    raise AmqpError(
                        f"bad selector: {exc}", condition=Condition.INVALID_FIELD
                    ) from None
                selector_text = value.value
                applied_filters = {key: value}
        browse = source.distribution_mode == DistributionMode.COPY
        temporary = owner = False
        if source.dynamic:
            queue = core.create_temporary_queue(self)
            address = queue.name
            owner = True
        else:
            if not source.address:
                raise AmqpError("the source has no address", condition=Condition.INVALID_FIELD)
            address = str(source.address)
            info = core.resolve(address, _routing_hint(capabilities))
            if info.temporary and info.owner is not self:
                # A dynamic node is its creator's (a reply queue): others may send to it,
                # none may take what is meant for it.
                raise AmqpError(
                    f"{address} is a dynamic node of another connection",
                    condition=Condition.RESOURCE_LOCKED,
                )
            if info.routing == "multicast":
                durable = (
                    source.durable != TerminusDurability.NONE
                    or source.expiry_policy == ExpiryPolicy.NEVER
                )
                queue = core.subscribe(
                    info,
                    self._subscription_name(address, link.name, capabilities, durable),
                    durable=durable,
                    selector=selector,
                    selector_text=selector_text,
                )
                selector = None  # applied as messages are routed to the subscription
                temporary = not durable
                # Browsing a subscription of its own only would let it grow for ever.
                browse = browse and not temporary
            else:
                queue = info.queue if info.queue is not None else core.targets(info)[0]
        answer = source.replace(address=address, filter=applied_filters)
        link.attach(source=answer, target=link.remote_target)
        consumer = ConsumerLink(
            self, link, queue, selector=selector, browse=browse, temporary=temporary, owner=owner
        )
        self.consumers[link] = consumer
        queue.add_consumer(consumer)

    def _subscription_name(
        self, address: str, link_name: str, capabilities: set[str], durable: bool
    ) -> str:
        """The queue name of a topic subscription.

        The link name names the subscription, scoped to the container unless
        the source has the ``global`` capability.  Members of a ``shared``
        subscription may add a ``|suffix`` to make their link names unique (Qpid
        JMS: ``sub``, ``sub|2``, ``sub|global``, ``sub|volatile1``); durable and
        non-durable shared subscriptions of one name are different ones.  An
        unshared non-durable subscription belongs to its link alone.
        """
        if CAP_SHARED in capabilities:
            name = link_name.split("|", 1)[0]
            scope = "" if CAP_GLOBAL in capabilities else f"{self.container_id}:"
            return f"{address}::{scope}{name}" + ("" if durable else "|volatile")
        if durable:
            return f"{address}::{self.container_id}:{link_name}"
        return f"{address}::{self.container_id}:{link_name}:{uuid.uuid4()}"

    def _attach_producer(self, link: Link) -> None:
        target = link.remote_target
        if not isinstance(target, Target):
            raise AmqpError("a sending link needs a target", condition=Condition.INVALID_FIELD)
        core = self.core
        info = None
        temporary = None
        if target.dynamic:
            temporary = core.create_temporary_queue(self)
            info = core.lookup(temporary.name)
            answer: Target = target.replace(address=temporary.name)
        elif target.address:
            capabilities = _symbols(target.capabilities) | _symbols(
                link.remote_desired_capabilities
            )
            info = core.resolve(str(target.address), _routing_hint(capabilities))
            answer = target
        else:
            answer = target  # anonymous relay: each message says where it goes
        link.attach(source=link.remote_source, target=answer)
        producer = ProducerLink(self, link, info, self.broker.credit_window, temporary=temporary)
        self.producers[link] = producer
        producer.start()

    def _on_detached(self, event: ev.LinkDetached) -> None:
        link = event.link
        attached = self.sessions.get(link.session)
        if attached is not None:
            attached.discard(link)
        consumer = self.consumers.pop(link, None)
        if consumer is not None:
            consumer.close()
            queue = consumer.queue
            if event.closed and queue.durable_subscription and queue.consumer_count == 0:
                # Detaching a durable subscription with closed=true is unsubscribing.
                self.core.delete_queue(queue)
        producer = self.producers.pop(link, None)
        if producer is not None:
            producer.close()
        if event.by_peer:
            link.detach(closed=event.closed)

    def _on_flowed(self, event: ev.LinkFlowed) -> None:
        consumer = self.consumers.get(event.link)
        if consumer is not None:
            consumer.flowed(event.drain)

    def _on_delivery(self, event: ev.DeliveryReceived) -> None:
        producer = self.producers.get(event.delivery.link)
        if producer is not None:
            producer.received(event.delivery, event.payload)

    def _on_delivery_aborted(self, event: ev.DeliveryAborted) -> None:
        producer = self.producers.get(event.delivery.link)
        if producer is not None:
            producer.aborted()

    def _on_delivery_updated(self, event: ev.DeliveryUpdated) -> None:
        delivery = event.delivery
        consumer = self.consumers.get(delivery.link)
        if consumer is not None:
            consumer.outcome(delivery, event.state, event.settled)
        elif event.settled and not delivery.settled:
            delivery.settle()  # a producer in rcv-settle-mode second settled its side


def _symbols(value: Any) -> set[str]:
    """A multiple-symbol field as a set: absent, one symbol, or an array of them."""
    if value is None:
        return set()
    if isinstance(value, str):
        return {value}
    return {str(item) for item in value}


def _routing_hint(capabilities: set[str]) -> str | None:
    if CAP_TOPIC in capabilities:
        return "multicast"
    if CAP_QUEUE in capabilities:
        return "anycast"
    return None
