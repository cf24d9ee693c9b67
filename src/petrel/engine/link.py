"""Links (part 2.6): attach and detach, link flow control and the deliveries on a link.

One class serves both roles; ``link.is_sender`` says which end we are.
Commands raise :class:`~petrel.errors.LocalProtocolError` on misuse; what the
peer does arrives through the session and comes out as events.
"""

from __future__ import annotations

import enum
import logging
import struct
from typing import TYPE_CHECKING, Any, Final, Literal

from ..errors import AmqpError, Condition, LocalProtocolError
from ..spec import Attach, Detach, Error, Flow, ReceiverSettleMode, Role, SenderSettleMode
from ..spec import Transfer as _Transfer
from .delivery import Delivery
from .events import (
    DeliveryAborted,
    DeliveryReceived,
    LinkAttached,
    LinkAttachRequested,
    LinkDetached,
    LinkFlowed,
)
from .faults import LinkFault, SessionFault, as_error
from .framing import MAX_TAG_LENGTH
from .serial import SERIAL_MASK, serial_diff
from .states import LINK_TRANSITIONS, Input, LinkState, step

if TYPE_CHECKING:
    from .session import Session

__all__ = ["Link"]

_pack_tag: Final = struct.Struct(">I").pack


def _piece(buf: bytes, start: int, end: int) -> bytes | memoryview:
    """One frame's share of a multi-frame delivery, kept until its last frame.

    A view when the piece is at least a quarter of the buffer it came in (the final join
    is then its only copy); a copy otherwise, so a peer sending small pieces cannot make
    us keep reads four times the size of the message alive.
    """
    if (end - start) * 4 >= len(buf):
        return memoryview(buf)[start:end]
    return buf[start:end]


class _Unset(enum.Enum):
    """The default of an argument for which ``None`` already means something."""

    UNSET = 0


# An enum member, not a bare ``object()``: a compiled build checks argument types, and
# ``int | Literal[_Unset.UNSET] | None`` admits this sentinel where ``int | None`` would not.
_UNSET: Final = _Unset.UNSET
_ATTACHED: Final = LinkState.ATTACHED
# Final names compile to C statics; plain module names are a dict lookup per use.
_DELIVERY_RECEIVED: Final = DeliveryReceived
_SND_SETTLED: Final = int(SenderSettleMode.SETTLED)
_SND_MIXED: Final = int(SenderSettleMode.MIXED)

#: How many deliveries beyond its credit a client tolerates from a sender (see
#: ``Link._over_credit``); a server tolerates none.
CLIENT_CREDIT_SLACK: Final = 8

log = logging.getLogger("petrel.engine")


class Link:
    """One end of a link: ``role`` is ``Role.SENDER`` (False) or ``Role.RECEIVER`` (True).

    Flow state (part 2.6.7) is kept in ``delivery_count``, ``credit``,
    ``available`` and ``drain``, as this end currently sees it.  Our attach
    fields are plain attributes; the peer's are the ``remote_*`` properties.
    ``snd_settle_mode`` and ``rcv_settle_mode`` are the modes in force once
    attached (the sender decides the first, the receiver the second).
    """

    __slots__ = (
        "_chunks",
        "_detach_reported",
        "_flow_queued",
        "_incoming",
        "_limit",
        "_next_tag",
        "_overshoot_logged",
        "_peer_max_message_size",
        "_size",
        "_slack",
        "available",
        "credit",
        "delivery_count",
        "desired_capabilities",
        "drain",
        "handle",
        "initial_delivery_count",
        "is_sender",
        "max_message_size",
        "name",
        "offered_capabilities",
        "properties",
        "rcv_settle_mode",
        "remote_attach",
        "remote_detach",
        "remote_handle",
        "remote_initiated",
        "role",
        "session",
        "snd_settle_mode",
        "source",
        "state",
        "target",
    )

    def __init__(
        self,
        session: Session,
        name: str,
        role: bool,
        *,
        source: Any = None,
        target: Any = None,
        snd_settle_mode: int = SenderSettleMode.MIXED,
        rcv_settle_mode: int = ReceiverSettleMode.FIRST,
        initial_delivery_count: int = 0,
        max_message_size: int | None = None,
        offered_capabilities: Any = None,
        desired_capabilities: Any = None,
        properties: dict[Any, Any] | None = None,
        remote_initiated: bool = False,
    ) -> None:
        self.session = session
        self.name = name
        self.role = role
        self.is_sender = role is Role.SENDER
        self.state = LinkState.DETACHED
        self.remote_initiated = remote_initiated
        self.handle: int | None = None
        self.remote_handle: int | None = None
        self.source = source
        self.target = target
        self.snd_settle_mode = snd_settle_mode
        self.rcv_settle_mode = rcv_settle_mode
        self.initial_delivery_count = initial_delivery_count
        self.max_message_size = max_message_size
        self.offered_capabilities = offered_capabilities
        self.desired_capabilities = desired_capabilities
        self.properties = properties
        self.remote_attach: Attach | None = None
        self.remote_detach: Detach | None = None
        self.delivery_count = initial_delivery_count if self.is_sender else 0
        self.credit = 0
        self.available: int | None = None
        self.drain = False
        self._limit = 0
        self._flow_queued = False
        self._next_tag = 0
        self._overshoot_logged = False
        self._slack = CLIENT_CREDIT_SLACK
        self._peer_max_message_size = 0
        self._incoming: Delivery | None = None
        self._chunks: list[bytes | memoryview] = []
        self._size = 0
        self._detach_reported = False

    # --- the peer's attach ------------------------------------------------------------------

    @property
    def is_receiver(self) -> bool:
        """Whether we are the receiving end."""
        return not self.is_sender

    @property
    def remote_source(self) -> Any:
        """The peer's ``source`` (``None`` before its attach, or when it refused the link)."""
        return self.remote_attach.source if self.remote_attach else None

    @property
    def remote_target(self) -> Any:
        """The peer's ``target``."""
        return self.remote_attach.target if self.remote_attach else None

    @property
    def remote_snd_settle_mode(self) -> int | None:
        """The ``snd-settle-mode`` in the peer's attach."""
        return self.remote_attach.snd_settle_mode if self.remote_attach else None

    @property
    def remote_rcv_settle_mode(self) -> int | None:
        """The ``rcv-settle-mode`` in the peer's attach."""
        return self.remote_attach.rcv_settle_mode if self.remote_attach else None

    @property
    def remote_max_message_size(self) -> int | None:
        """The peer's ``max-message-size`` (``None`` or 0: no limit)."""
        return self.remote_attach.max_message_size if self.remote_attach else None

    @property
    def remote_initial_delivery_count(self) -> int | None:
        """The peer's ``initial-delivery-count`` (sent by senders)."""
        return self.remote_attach.initial_delivery_count if self.remote_attach else None

    @property
    def remote_offered_capabilities(self) -> tuple[Any, ...] | None:
        """The peer's ``offered-capabilities``."""
        return self.remote_attach.offered_capabilities if self.remote_attach else None

    @property
    def remote_desired_capabilities(self) -> tuple[Any, ...] | None:
        """The peer's ``desired-capabilities``."""
        return self.remote_attach.desired_capabilities if self.remote_attach else None

    @property
    def remote_properties(self) -> dict[Any, Any] | None:
        """The peer's link ``properties``."""
        return self.remote_attach.properties if self.remote_attach else None

    # --- commands ---------------------------------------------------------------------------

    def attach(
        self,
        source: Any = _UNSET,
        target: Any = _UNSET,
        *,
        snd_settle_mode: int | None = None,
        rcv_settle_mode: int | None = None,
        initial_delivery_count: int = 0,
        max_message_size: int | Literal[_Unset.UNSET] | None = _UNSET,
        offered_capabilities: Any = None,
        desired_capabilities: Any = None,
        properties: dict[Any, Any] | None = None,
    ) -> None:
        """Accept a link the peer attached (after :class:`LinkAttachRequested`).

        ``source``, ``target`` and the settle modes default to the peer's; pass
        the terminus this end really has (the address a dynamic node got, say).
        Does nothing when the link is already over (the peer detached it, or
        its session or connection ended, while the event waited).
        """
        if self.state is LinkState.CLOSED:
            return
        if self.state is not LinkState.ATTACH_RCVD:
            raise LocalProtocolError(
                f"link {self.name!r} is {self.state.value}; attach() answers a peer's attach"
            )
        remote = self.remote_attach
        assert remote is not None
        self.source = remote.source if source is _UNSET else source
        self.target = remote.target if target is _UNSET else target
        self.snd_settle_mode = (
            remote.snd_settle_mode if snd_settle_mode is None else snd_settle_mode
        )
        self.rcv_settle_mode = (
            remote.rcv_settle_mode if rcv_settle_mode is None else rcv_settle_mode
        )
        if self.is_sender:
            self.initial_delivery_count = self.delivery_count = initial_delivery_count
        if max_message_size is not _UNSET:
            self.max_message_size = max_message_size
        self.offered_capabilities = offered_capabilities
        self.desired_capabilities = desired_capabilities
        self.properties = properties
        self.session._send_attach(self)

    def detach(self, error: Error | AmqpError | None = None, closed: bool = True) -> None:
        """Detach the link: close it (``closed=True``) or just suspend it.

        On a link the peer attached and we have not answered, this refuses it:
        we attach with a null terminus and detach at once, with ``error``.
        Detaching a link that is already detaching or over does nothing.
        """
        if self.state in (LinkState.DETACH_SENT, LinkState.CLOSED, LinkState.DETACHED):
            return
        self.session._send_detach(self, as_error(error), closed)

    def flow(self, credit: int, drain: bool = False) -> None:
        """Receiver: set the link credit to ``credit`` (not add to it) and the drain flag.

        The flow frame goes out at the next ``data_to_send()``; several calls in
        one turn make one frame.  With ``drain`` the sender must use up the
        credit or hand it back; :class:`LinkFlowed` with ``drained`` says when.
        Does nothing on a link that is detaching or over.
        """
        if self.is_sender:
            raise LocalProtocolError("flow() grants credit; only a receiving link can grant it")
        if not 0 <= credit <= SERIAL_MASK:
            raise LocalProtocolError(f"credit must be a uint, got {credit}")
        if not self._flowable():
            return
        # A sender that takes new credit as absolute (RabbitMQ 3.x does) may still send
        # what it had in flight: a client tolerates up to twice the largest credit it
        # granted (see _over_credit).
        if 2 * credit > self._slack:
            self._slack = 2 * credit
        self.credit = credit
        self.drain = drain
        limit = (self.delivery_count + credit) & SERIAL_MASK
        if serial_diff(limit, self._limit) > 0:
            self._limit = limit
        self._queue_flow()

    def add_credit(self, credit: int) -> None:
        """Receiver: grant ``credit`` more deliveries on top of the current credit."""
        self.flow(self.credit + credit, self.drain)

    def drained(self) -> int:
        """Sender: answer a drain request by giving back the credit we will not use.

        Advances ``delivery_count`` past the unused credit and tells the
        receiver.  Returns how much credit was given back (0 when the receiver
        did not ask for a drain, no credit is left, or the link is over).
        """
        if not self.is_sender:
            raise LocalProtocolError("drained() is for sending links")
        if not self._flowable() or not self.drain or self.credit <= 0:
            return 0
        given_back = self.credit
        self.delivery_count = (self.delivery_count + given_back) & SERIAL_MASK
        self.credit = 0
        self._queue_flow()
        return given_back

    def offer(self, available: int) -> None:
        """Sender: tell the receiver how many deliveries we have waiting (``available``)."""
        if not self.is_sender:
            raise LocalProtocolError("offer() is for sending links")
        if not self._flowable():
            return
        self.available = available
        self._queue_flow()

    def send(
        self,
        payload: bytes,
        tag: bytes | None = None,
        settled: bool | None = None,
        message_format: int = 0,
        state: Any = None,
    ) -> Delivery:
        """Sender: send one message (encoded message bytes) as a new delivery.

        Takes one credit; the frames (split by the peer's max-frame-size) are
        written now, or as soon as the peer's session window opens.  ``settled``
        defaults to what the link's ``snd_settle_mode`` demands (pre-settled
        only on a ``settled``-mode link).  ``tag`` defaults to a counter.
        ``state`` goes on the first transfer as the delivery's state (a
        ``TransactionalState`` sends the message in a transaction).
        """
        if self.state is not _ATTACHED or not self.is_sender:
            self._send_misuse()
        if self.credit <= 0:
            raise LocalProtocolError(f"link {self.name!r} has no credit to send with")
        mode = self.snd_settle_mode
        if settled is None:
            settled = mode == _SND_SETTLED
        elif settled is not (mode == _SND_SETTLED) and mode != _SND_MIXED:
            raise LocalProtocolError(
                f"link {self.name!r} has snd-settle-mode {SenderSettleMode(mode).name.lower()}; "
                f"settled={settled} is not allowed"
            )
        if tag is None:
            tag = _pack_tag(self._next_tag)
            self._next_tag = (self._next_tag + 1) & SERIAL_MASK
        elif len(tag) > MAX_TAG_LENGTH:
            raise LocalProtocolError(f"a delivery tag is at most 32 bytes, got {len(tag)}")
        limit = self._peer_max_message_size
        if limit and len(payload) > limit:
            raise LocalProtocolError(
                f"the message is {len(payload)} bytes; the peer's max-message-size is {limit}",
                condition=Condition.MESSAGE_SIZE_EXCEEDED,
            )
        delivery = Delivery(self, None, tag, message_format, settled, False, None)
        if state is not None:
            delivery.state = state
        self.delivery_count = (self.delivery_count + 1) & SERIAL_MASK
        self.credit -= 1
        self.session._send_delivery(delivery, payload)
        return delivery

    def _send_misuse(self) -> None:
        if not self.is_sender:
            raise LocalProtocolError(f"link {self.name!r} is a receiving link; it cannot send")
        raise LocalProtocolError(
            f"link {self.name!r} is {self.state.value}; it must be attached to send"
        )

    def _flowable(self) -> bool:
        """Whether flow state can be sent: our attach is out and the link is not ending.

        On a link that is detaching or over, flow commands do nothing: events about
        it may still be waiting to be handled when its end has already happened.
        """
        state = self.state
        if state is _ATTACHED or state is LinkState.ATTACH_SENT:
            return True
        if state is LinkState.ATTACH_RCVD or state is LinkState.DETACHED:
            raise LocalProtocolError(
                f"link {self.name!r} is {state.value}; flow needs our attach sent first"
            )
        return False

    def _queue_flow(self) -> None:
        if not self._flow_queued:
            self._flow_queued = True
            session = self.session
            session._flow_links.append(self)
            session._touch()

    def _flow_frame(self, session_flow: Flow) -> Flow:
        """This link's flow: ``session_flow`` (the session's fields) with the link's added."""
        if self.is_sender:
            delivery_count: int | None = (
                self.delivery_count - self.session.outgoing.unsent(self)
            ) & SERIAL_MASK
            available = self.available
        else:
            delivery_count = self.delivery_count if self.remote_attach is not None else None
            available = None
        return Flow(
            next_incoming_id=session_flow.next_incoming_id,
            incoming_window=session_flow.incoming_window,
            next_outgoing_id=session_flow.next_outgoing_id,
            outgoing_window=session_flow.outgoing_window,
            handle=self.handle,
            delivery_count=delivery_count,
            link_credit=self.credit,
            available=available,
            drain=self.drain,
        )

    def _attach_frame(self) -> Attach:
        assert self.handle is not None
        return Attach(
            name=self.name,
            handle=self.handle,
            role=self.role,
            snd_settle_mode=self.snd_settle_mode,
            rcv_settle_mode=self.rcv_settle_mode,
            source=self.source,
            target=self.target,
            initial_delivery_count=self.initial_delivery_count if self.is_sender else None,
            max_message_size=self.max_message_size,
            offered_capabilities=self.offered_capabilities,
            desired_capabilities=self.desired_capabilities,
            properties=self.properties,
        )

    # --- what the peer does -----------------------------------------------------------------

    def _on_attach(self, attach: Attach) -> None:
        self.state = step(LINK_TRANSITIONS, self.state, Input.RECV_ATTACH, what="link", remote=True)
        self.remote_attach = attach
        self.remote_handle = attach.handle
        if self.is_sender:
            self.rcv_settle_mode = attach.rcv_settle_mode
            self._peer_max_message_size = attach.max_message_size or 0
        else:
            self.snd_settle_mode = attach.snd_settle_mode
            self.delivery_count = attach.initial_delivery_count or 0
            self._limit = (self.delivery_count + self.credit) & SERIAL_MASK
        events = self.session.output.events
        if self.state is _ATTACHED:
            events.append(LinkAttached(self))
        elif self.state is LinkState.ATTACH_RCVD:
            events.append(LinkAttachRequested(self))

    def _on_detach(self, detach: Detach) -> None:
        self.state = step(LINK_TRANSITIONS, self.state, Input.RECV_DETACH, what="link", remote=True)
        self.remote_detach = detach
        by_peer = self.state is LinkState.DETACH_RCVD
        if by_peer:
            self.session._send_detach(self, None, detach.closed)
        if not self._detach_reported:
            self._detach_reported = True
            self.session.output.events.append(
                LinkDetached(self, detach.error, detach.closed, by_peer)
            )

    def _on_flow(self, flow: Flow) -> None:
        if self.state is not _ATTACHED and self.state is not LinkState.ATTACH_RCVD:
            return  # we are detaching: the peer's flow state no longer matters
        drained = False
        if self.is_sender:
            credit = flow.link_credit
            if credit is not None:
                their_count = flow.delivery_count
                if their_count is None:
                    their_count = self.initial_delivery_count
                self.credit = max(0, credit + serial_diff(their_count, self.delivery_count))
            self.drain = flow.drain
        else:
            their_count = flow.delivery_count
            if their_count is not None and self.drain:
                # Draining: the sender advances its delivery-count past the credit it
                # will not use.  (Outside a drain we keep counting the transfers that
                # arrive: some senders, RabbitMQ among them, send a flow whose
                # delivery-count already includes transfers still on their way, and
                # taking that count early would make those transfers look like they
                # came without credit.)
                ahead = serial_diff(their_count, self.delivery_count)
                if ahead > 0:
                    self.delivery_count = their_count
                    self.credit = max(0, self.credit - ahead)
            self.available = flow.available
            if self.drain and self.credit == 0:
                self.drain = False
                drained = True
        self.session.output.events.append(
            LinkFlowed(self, self.credit, self.available, self.drain, drained, flow.properties)
        )
        if flow.echo:
            self._queue_flow()

    def _on_transfer(self, transfer: _Transfer, buf: bytes, start: int, end: int) -> None:
        if (self.state is not _ATTACHED or self.is_sender) and self._drop_transfer():
            return
        delivery_id = transfer.delivery_id
        tag = transfer.delivery_tag
        message_format = transfer.message_format
        settled = transfer.settled
        more = transfer.more
        state = transfer.state
        aborted = transfer.aborted
        delivery = self._incoming
        session = self.session
        if delivery is None:
            if aborted:
                return
            if delivery_id is None or tag is None:
                raise SessionFault(
                    session,
                    Condition.INVALID_FIELD,
                    "the first transfer of a delivery must carry delivery-id and delivery-tag",
                )
            count = self.delivery_count
            if not 0 < ((self._limit - count) & SERIAL_MASK) < 0x80000000:
                self._over_credit(delivery_id, count)
            self.delivery_count = (count + 1) & SERIAL_MASK
            credit = self.credit
            if credit > 0:
                self.credit = credit = credit - 1
            settled = settled is True
            delivery = Delivery(self, delivery_id, tag, message_format or 0, False, settled, state)
            if not settled:
                session._unsettled_in[delivery_id] = delivery
            limit = self.max_message_size
            if more:
                self._incoming = delivery
                self._chunks = [_piece(buf, start, end)]
                self._size = end - start
                if limit:
                    self._check_size(self._size)
            else:
                if limit:
                    self._check_size(end - start)
                session.output.events.append(_DELIVERY_RECEIVED(delivery, buf[start:end]))
            if credit == 0 and self.drain:
                self.drain = False
                session.output.events.append(LinkFlowed(self, 0, self.available, False, True))
            return
        # A continuation of the delivery in progress.
        if delivery_id is not None and delivery_id != delivery.delivery_id:
            raise SessionFault(
                session,
                Condition.INVALID_FIELD,
                f"transfer for delivery {delivery_id} interrupts delivery "
                f"{delivery.delivery_id}, which is not complete",
            )
        if settled:
            delivery.remote_settled = True
        if state is not None:
            delivery.remote_state = state
        if aborted:
            self._incoming = None
            self._chunks = []
            session._unsettled_in.pop(delivery.delivery_id, None)  # type: ignore[arg-type]
            session.output.events.append(DeliveryAborted(delivery))
            return
        self._chunks.append(_piece(buf, start, end))
        self._size += end - start
        self._check_size(self._size)
        if not more:
            self._incoming = None
            data = b"".join(self._chunks)
            self._chunks = []
            if delivery.remote_settled:
                session._unsettled_in.pop(delivery.delivery_id, None)  # type: ignore[arg-type]
            session.output.events.append(_DELIVERY_RECEIVED(delivery, data))

    def _drop_transfer(self) -> bool:
        """A transfer arrived where none should: drop it (we are detaching) or raise."""
        if self.state in (LinkState.DETACH_SENT, LinkState.CLOSED):
            return True
        if self.is_sender:
            raise LinkFault(self, Condition.NOT_ALLOWED, "a transfer arrived on our sending link")
        raise LinkFault(self, Condition.TRANSFER_LIMIT_EXCEEDED, "transfer before attach")

    def _over_credit(self, delivery_id: int, count: int) -> None:
        """A delivery arrived beyond the credit we granted.

        A server refuses it (``amqp:link:transfer-limit-exceeded``): credit is
        what bounds its memory.  A client lets a sender overshoot by up to twice
        the largest credit it has granted on the link (at least
        ``CLIENT_CREDIT_SLACK``), so what arrives stays within three windows;
        Proton accepts any overshoot.  RabbitMQ 3.x applies each credit update
        as absolute, ignoring what it already had in flight (and so overshoots
        by up to what was outstanding, which can build over a few updates);
        refusing those deliveries would make that broker unusable.
        """
        over = (count - self._limit) & SERIAL_MASK
        if self.session.connection.server or over >= self._slack:
            raise LinkFault(
                self,
                Condition.TRANSFER_LIMIT_EXCEEDED,
                f"delivery {delivery_id} arrived without link credit",
            )
        if not self._overshoot_logged:
            self._overshoot_logged = True
            log.warning(
                "link %r: the peer sent delivery %d beyond the credit granted; tolerated",
                self.name,
                delivery_id,
            )

    def _check_size(self, size: int) -> None:
        limit = self.max_message_size
        if limit and size > limit:
            raise LinkFault(
                self,
                Condition.MESSAGE_SIZE_EXCEEDED,
                f"the message has reached {size} bytes; our max-message-size is {limit}",
            )

    def _over(self) -> None:
        """Forget in-progress state once the link is detached both ways or its session is gone."""
        self.state = LinkState.CLOSED
        self._incoming = None
        self._chunks = []
        self.credit = 0

    def __repr__(self) -> str:
        role = "sender" if self.is_sender else "receiver"
        return f"<Link {self.name!r} {role} handle={self.handle} {self.state.value}>"
