"""One client connection to the broker: engine events in, broker operations out.

The connection's admission, limits and special nodes are the server layer's
(:class:`~petrel.server.connection.ServerConnection`); this adds what a link
to an ordinary address means in a broker: a consumer of a queue or a
subscription, or a producer into an address.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Final

from ..driver import AmqpProtocol
from ..engine import Link
from ..engine import events as ev
from ..errors import AmqpError, Condition
from ..server.config import ListenerSettings
from ..server.connection import LinkHandler, ServerConnection, ServerState
from ..server.nodes import terminus_capabilities
from ..spec import (
    CAP_GLOBAL,
    CAP_QUEUE,
    CAP_SHARED,
    CAP_TOPIC,
    SELECTOR_FILTER,
    SELECTOR_FILTER_CODE,
    TXN_ID_FLOW_KEY,
    Coordinator,
    DistributionMode,
    ExpiryPolicy,
    Source,
    Target,
    TerminusDurability,
)
from ..types import Described
from .core import DYNAMIC_PREFIX, AddressInfo, BrokerCore
from .links import ConsumerLink, ProducerLink
from .selector import SelectorError, compile_selector
from .transactions import Transactions

__all__ = ["BrokerConnection"]

log = logging.getLogger("petrel.broker")
_SELECTOR_DESCRIPTORS: Final = (SELECTOR_FILTER, SELECTOR_FILTER_CODE)


class BrokerConnection(ServerConnection):
    """The broker's :class:`~petrel.driver.EventHandler` for one connection."""

    def __init__(
        self,
        protocol: AmqpProtocol,
        state: ServerState,
        listener: ListenerSettings,
        core: BrokerCore,
        credit_window: int,
        *,
        refusal: AmqpError | None = None,
    ) -> None:
        super().__init__(protocol, state, listener, refusal=refusal)
        self.core = core
        self.credit_window = credit_window
        #: Its transactions (declared on its coordinator links).
        self.transactions = Transactions(self)
        protocol.on_writable = self._writable_again

    @property
    def consumers(self) -> list[ConsumerLink]:
        """The links that take messages from the broker's queues."""
        return [h for h in self.links.values() if isinstance(h, ConsumerLink)]

    def _writable_again(self) -> None:
        """The client's socket drained: its consumers may take messages again."""
        for consumer in self.consumers:
            if consumer.drain_owed:
                consumer.flowed(True)
            else:
                self.core.mark_dirty(consumer.queue)

    def is_live(self, link: Link) -> bool:
        """Whether ``link`` still belongs to this live connection."""
        return link in self.links

    def _on_flowed(self, event: ev.LinkFlowed) -> None:
        link = event.link
        if link.is_sender and event.properties and TXN_ID_FLOW_KEY in event.properties:
            self._refuse_transactional_acquisition(link)
            return
        super()._on_flowed(event)

    def _refuse_transactional_acquisition(self, link: Link) -> None:
        """A receiver asked for messages in a transaction (a ``txn-id`` in its flow): not
        supported, so the link is closed with ``amqp:not-implemented`` (its messages go
        back to the queue; a durable subscription stays)."""
        handler = self.links.pop(link, None)
        if handler is not None:
            handler.close(False)
        error = AmqpError(
            "transactional acquisition (a txn-id in a flow's properties) is not supported: "
            "take the messages outside the transaction and accept them in it",
            condition=Condition.NOT_IMPLEMENTED,
        )
        log.info("%s: link %r: %s", self.id, link.name, error.description)
        link.detach(error)
        self.protocol.flush()

    def resolve(self, address: str, routing_hint: str | None = None) -> AddressInfo:
        """The broker's address for the client's ``address`` (in the connection's vhost),
        created on first use if auto-create is on and the ``create`` right is given."""
        access = self.access
        if access is None:
            return self.core.resolve(address, routing_hint)
        inner = access.inner(address)
        core = self.core
        if (
            core.settings.auto_create
            and core.lookup(inner) is None
            and not inner.startswith(DYNAMIC_PREFIX)
        ):
            access.require(address, "create")
        return core.resolve(inner, routing_hint)

    def attach_link(self, link: Link) -> LinkHandler:
        if isinstance(link.remote_target, Coordinator) and not link.is_sender:
            return self.transactions.attach(link)
        if link.is_sender:
            return self._attach_consumer(link)
        return self._attach_producer(link)

    def _attach_consumer(self, link: Link) -> ConsumerLink:
        source = link.remote_source
        if not isinstance(source, Source):
            raise AmqpError("a receiving link needs a source", condition=Condition.INVALID_FIELD)
        core = self.core
        capabilities = terminus_capabilities(link)
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
            info = self.resolve(address, _routing_hint(capabilities))
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
                    self._subscription_name(info.name, link.name, capabilities, durable),
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
        queue.add_consumer(consumer)
        return consumer

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

    def _attach_producer(self, link: Link) -> ProducerLink:
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
            capabilities = terminus_capabilities(link)
            info = self.resolve(str(target.address), _routing_hint(capabilities))
            answer = target
        else:
            answer = target  # anonymous relay: each message says where it goes
        link.attach(source=link.remote_source, target=answer)
        producer = ProducerLink(self, link, info, self.credit_window, temporary=temporary)
        producer.start()
        return producer


def _routing_hint(capabilities: set[str]) -> str | None:
    if CAP_TOPIC in capabilities:
        return "multicast"
    if CAP_QUEUE in capabilities:
        return "anycast"
    return None
