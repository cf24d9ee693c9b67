"""Sessions (part 2.5): begin and end, session flow control, handles and dispositions.

Session flow control follows part 2.5.6 exactly: ``next_outgoing_id`` and
``next_incoming_id`` count transfer frames, ``remote_incoming_window`` is
what the peer lets us send (transfers wait in the session's sending half,
:class:`~.outgoing.Outgoing`, while it is zero) and ``incoming_window`` is
what we let the peer send; a transfer beyond it ends the session with
``amqp:session:window-violation``.  We announce a fresh window once half of it
has been used.

Dispositions and flow frames are not written when a command asks for them:
they are collected and written at ``data_to_send()`` time (or before a
detach/end/close), so a burst of settlements becomes a few ranged
dispositions and one flow frame per link.
"""

from __future__ import annotations

import heapq
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Final

from ..errors import AmqpError, Condition, LocalProtocolError, RemoteProtocolError
from ..spec import (
    Attach,
    Begin,
    Detach,
    Disposition,
    End,
    Error,
    Flow,
    ReceiverSettleMode,
    Role,
    SenderSettleMode,
    Transfer,
)
from .delivery import Delivery
from .events import DeliveryUpdated, SessionBegun, SessionEnded
from .faults import SessionFault, as_error, error_of
from .link import Link
from .outgoing import Outgoing
from .serial import SERIAL_MASK
from .states import LINK_TRANSITIONS, SESSION_TRANSITIONS, Input, LinkState, SessionState, step

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["Session"]

# What the hot paths use of modules that are not compiled, as C statics when compiled
# (a bare imported name is a module-dict lookup per use).
_MAPPED: Final = SessionState.MAPPED
_BEGIN_SENT: Final = SessionState.BEGIN_SENT
_RECEIVER: Final = Role.RECEIVER
_SENDER: Final = Role.SENDER
_DISPOSITION: Final = Disposition
_DELIVERY_UPDATED: Final = DeliveryUpdated
_by_id: Final = attrgetter("delivery_id")


def _in_id_order(deliveries: list[Delivery]) -> bool:
    """Whether the deliveries' ids go up (wrapping aside, which only costs a sort)."""
    for i in range(1, len(deliveries)):
        if deliveries[i].delivery_id <= deliveries[i - 1].delivery_id:  # type: ignore[operator]
            return False
    return True


class Session:
    """One session of a connection; made by ``Connection.begin_session()`` or by the peer.

    ``channel`` is ours (the one we send on), ``remote_channel`` the peer's.
    """

    def __init__(
        self,
        connection: Connection,
        channel: int,
        *,
        incoming_window: int,
        outgoing_window: int,
        handle_max: int,
        offered_capabilities: Any = None,
        desired_capabilities: Any = None,
        properties: dict[Any, Any] | None = None,
        remote_initiated: bool = False,
    ) -> None:
        self.connection = connection
        #: Where this session and its links write frames and events (the connection's).
        self.output = connection.output
        self.channel = channel
        self.remote_channel: int | None = None
        self.state = SessionState.UNMAPPED
        self.remote_initiated = remote_initiated
        self.offered_capabilities = offered_capabilities
        self.desired_capabilities = desired_capabilities
        self.properties = properties
        self.remote_begin: Begin | None = None
        self.remote_end: End | None = None
        #: The sending half: transfer and delivery numbering, the peer's incoming window,
        #: our unsettled deliveries and the transfers waiting for the window.
        self.outgoing = Outgoing(connection.output, channel)
        # Part 2.5.6 session flow control, the receiving half.
        self.outgoing_window = outgoing_window
        self.incoming_window = incoming_window
        self.next_incoming_id: int | None = None
        self.remote_outgoing_window = 0
        self.handle_max = handle_max
        self.remote_handle_max = 0xFFFFFFFF
        self._window_size = incoming_window
        self._window_low = incoming_window // 2
        # Links by our handle and by the peer's; locally attached links awaiting their answer.
        self._handles: dict[int, Link] = {}
        self._remote_handles: dict[int, Link] = {}
        self._awaiting_attach: dict[tuple[str, bool], Link] = {}
        self._by_name: dict[tuple[str, bool], Link] = {}
        self._free_handles: list[int] = []
        self._handle_counter = 0
        # The peer's deliveries we have not settled (nor it), by delivery-id.
        self._unsettled_in: dict[int, Delivery] = {}
        # Work collected for the next flush, and transfers waiting for the peer's window.
        self._disposition_out: list[Delivery] = []
        self._disposition_in: list[Delivery] = []
        self._flow_links: list[Link] = []
        self._flow_session = False
        self._dirty = False
        self._end_reported = False

    # --- public view ------------------------------------------------------------------------

    @property
    def links(self) -> list[Link]:
        """The links currently attached (or attaching) on this session."""
        seen = {id(link): link for link in self._handles.values()}
        for link in self._remote_handles.values():
            seen.setdefault(id(link), link)
        return list(seen.values())

    @property
    def next_outgoing_id(self) -> int:
        """The transfer-id our next transfer frame gets."""
        return self.outgoing.next_outgoing_id

    @property
    def remote_incoming_window(self) -> int:
        """How many more transfer frames the peer lets us send now."""
        return self.outgoing.remote_incoming_window

    @property
    def remote_properties(self) -> dict[Any, Any] | None:
        """The peer's session ``properties``."""
        return self.remote_begin.properties if self.remote_begin else None

    @property
    def remote_offered_capabilities(self) -> tuple[Any, ...] | None:
        """The peer's ``offered-capabilities`` for this session."""
        return self.remote_begin.offered_capabilities if self.remote_begin else None

    @property
    def remote_desired_capabilities(self) -> tuple[Any, ...] | None:
        """The peer's ``desired-capabilities`` for this session."""
        return self.remote_begin.desired_capabilities if self.remote_begin else None

    # --- commands ---------------------------------------------------------------------------

    def attach_sender(
        self,
        name: str,
        source: Any = None,
        target: Any = None,
        *,
        snd_settle_mode: int = SenderSettleMode.MIXED,
        rcv_settle_mode: int = ReceiverSettleMode.FIRST,
        initial_delivery_count: int = 0,
        max_message_size: int | None = None,
        offered_capabilities: Any = None,
        desired_capabilities: Any = None,
        properties: dict[Any, Any] | None = None,
    ) -> Link:
        """Attach a link on which we send; :class:`LinkAttached` comes with the peer's answer."""
        link = Link(
            self,
            name,
            Role.SENDER,
            source=source,
            target=target,
            snd_settle_mode=snd_settle_mode,
            rcv_settle_mode=rcv_settle_mode,
            initial_delivery_count=initial_delivery_count,
            max_message_size=max_message_size,
            offered_capabilities=offered_capabilities,
            desired_capabilities=desired_capabilities,
            properties=properties,
        )
        return self._attach_new(link)

    def attach_receiver(
        self,
        name: str,
        source: Any = None,
        target: Any = None,
        *,
        snd_settle_mode: int = SenderSettleMode.MIXED,
        rcv_settle_mode: int = ReceiverSettleMode.FIRST,
        max_message_size: int | None = None,
        offered_capabilities: Any = None,
        desired_capabilities: Any = None,
        properties: dict[Any, Any] | None = None,
    ) -> Link:
        """Attach a link on which we receive; grant credit with ``link.flow()`` to get messages.

        ``max_message_size`` defaults to the connection config's.
        """
        if max_message_size is None:
            max_message_size = self.connection.config.max_message_size
        link = Link(
            self,
            name,
            Role.RECEIVER,
            source=source,
            target=target,
            snd_settle_mode=snd_settle_mode,
            rcv_settle_mode=rcv_settle_mode,
            max_message_size=max_message_size,
            offered_capabilities=offered_capabilities,
            desired_capabilities=desired_capabilities,
            properties=properties,
        )
        return self._attach_new(link)

    def end(self, error: Error | AmqpError | None = None) -> None:
        """End the session (its links go with it); :class:`SessionEnded` follows the peer's end.

        Ending a session that is already ending or over does nothing.
        """
        if self.state in (SessionState.END_SENT, SessionState.DISCARDING, SessionState.ENDED):
            return
        new_state = step(
            SESSION_TRANSITIONS, self.state, Input.SEND_END, what="session", remote=False
        )
        self._flush()
        self.output.write_frame(self.channel, End(error=as_error(error)))
        self.state = new_state
        self._links_over()
        if new_state is SessionState.ENDED:
            self.connection._session_over(self)

    # --- attach and detach ------------------------------------------------------------------

    def _attach_new(self, link: Link) -> Link:
        if self.state not in (SessionState.BEGIN_SENT, _MAPPED):
            raise LocalProtocolError(f"session is {self.state.value}; links need it begun")
        key = (link.name, link.role)
        if key in self._by_name:
            raise LocalProtocolError(f"a link named {link.name!r} with this role is attached")
        self._send_attach(link)
        if link.state is LinkState.ATTACH_SENT:
            self._awaiting_attach[key] = link
        return link

    def _allocate_handle(self) -> int:
        if self._free_handles:
            return heapq.heappop(self._free_handles)
        handle = self._handle_counter
        if handle > min(self.remote_handle_max, 0xFFFFFFFF):
            raise LocalProtocolError(
                f"no free link handle: the peer's handle-max is {self.remote_handle_max}"
            )
        self._handle_counter += 1
        return handle

    def _release_handle(self, link: Link) -> None:
        handle = link.handle
        if handle is not None and self._handles.get(handle) is link:
            del self._handles[handle]
            heapq.heappush(self._free_handles, handle)
        key = (link.name, link.role)
        if self._by_name.get(key) is link:
            del self._by_name[key]

    def _send_attach(self, link: Link) -> None:
        new_state = step(LINK_TRANSITIONS, link.state, Input.SEND_ATTACH, what="link", remote=False)
        handle = self._allocate_handle()
        link.handle = handle
        try:
            self.output.write_frame(self.channel, link._attach_frame())
        except BaseException:
            link.handle = None
            heapq.heappush(self._free_handles, handle)
            raise
        self._handles[handle] = link
        self._by_name[link.name, link.role] = link
        link.state = new_state

    def _send_detach(self, link: Link, error: Error | None, closed: bool) -> None:
        if link.handle is None:
            # Refusing the peer's link (or answering one it already detached): attach with a
            # null terminus on our side, then detach.
            if link.is_sender:
                link.source = None
                link.target = link.remote_target
            else:
                link.target = None
                link.source = link.remote_source
            self._send_attach(link)
        new_state = step(LINK_TRANSITIONS, link.state, Input.SEND_DETACH, what="link", remote=False)
        self._flush()
        assert link.handle is not None
        self.output.write_frame(
            self.channel, Detach(handle=link.handle, closed=closed, error=error)
        )
        # A link detached before the peer answered its attach stays in _awaiting_attach:
        # the answer is still to come and must find it.
        link.state = new_state
        self._forget_link(link)
        if new_state is LinkState.CLOSED:
            self._release_handle(link)
            link._over()

    def _forget_link(self, link: Link) -> None:
        """Drop what a detaching link had not finished: transfers still waiting for the
        peer's window, and a delivery half sent or half received (the peer drops it too).

        Its complete deliveries stay in the session's unsettled maps until one side
        settles them or the session ends: delivery-ids belong to the session, and a
        disposition names no link (part 2.7.6: it "MAY refer to deliveries on links that
        are no longer attached").  So a receiver can still give the outcome of what it
        got before the detach, and the sender still hears it.  Nothing is scanned here:
        the cost is the transfers still waiting, if any.
        """
        self.outgoing.forget(link)
        incoming = link._incoming
        if incoming is not None:  # part received: the rest will not come
            self._unsettled_in.pop(incoming.delivery_id, None)  # type: ignore[arg-type]
            link._incoming = None
            link._chunks = []

    def _links_over(self) -> None:
        for link in self.links:
            link._over()
        self._handles.clear()
        self._remote_handles.clear()
        self._awaiting_attach.clear()
        self._by_name.clear()
        self.outgoing.clear()
        self._unsettled_in.clear()
        self._disposition_in.clear()
        self._disposition_out.clear()
        self._flow_links.clear()

    # --- begin and end from the peer --------------------------------------------------------

    def _begin_frame(self) -> Begin:
        return Begin(
            remote_channel=self.remote_channel if self.remote_initiated else None,
            next_outgoing_id=self.outgoing.next_outgoing_id,
            incoming_window=self.incoming_window,
            outgoing_window=self.outgoing_window,
            handle_max=self.handle_max,
            offered_capabilities=self.offered_capabilities,
            desired_capabilities=self.desired_capabilities,
            properties=self.properties,
        )

    def _send_begin(self) -> None:
        new_state = step(
            SESSION_TRANSITIONS, self.state, Input.SEND_BEGIN, what="session", remote=False
        )
        self.output.write_frame(self.channel, self._begin_frame())
        self.state = new_state
        if new_state is _MAPPED:
            self.output.events.append(SessionBegun(self, self.remote_initiated))

    def _on_begin(self, channel: int, begin: Begin) -> None:
        self.state = step(
            SESSION_TRANSITIONS, self.state, Input.RECV_BEGIN, what="session", remote=True
        )
        self.remote_channel = channel
        self.remote_begin = begin
        self.next_incoming_id = begin.next_outgoing_id
        # The peer's begin says what it lets us send, from our first transfer on.
        self.outgoing.peer_window(begin.incoming_window, None)
        self.remote_outgoing_window = begin.outgoing_window
        self.remote_handle_max = begin.handle_max
        if self.state is _MAPPED:
            self.output.events.append(SessionBegun(self, self.remote_initiated))

    def _on_end(self, end: End) -> None:
        state = step(SESSION_TRANSITIONS, self.state, Input.RECV_END, what="session", remote=True)
        self.remote_end = end
        by_peer = state is SessionState.END_RCVD
        self.state = state
        self._links_over()
        if by_peer:
            self.output.write_frame(self.channel, End())
            self.state = step(
                SESSION_TRANSITIONS, state, Input.SEND_END, what="session", remote=False
            )
        if not self._end_reported:
            self._end_reported = True
            self.output.events.append(SessionEnded(self, end.error, by_peer))
        self.connection._session_over(self)

    def _fail(self, condition: str, description: str) -> None:
        """End the session because the peer broke the protocol within it."""
        if self.state not in (SessionState.BEGIN_SENT, _MAPPED):
            return
        error = error_of(condition, description)
        self.output.write_frame(self.channel, End(error=error))
        self.state = step(SESSION_TRANSITIONS, self.state, Input.FAIL, what="session", remote=False)
        self._links_over()
        self._end_reported = True
        self.output.events.append(SessionEnded(self, error, False))

    # --- frames on an attached session ------------------------------------------------------

    def _discarding(self, what: str) -> bool:
        """Whether to drop a frame because we ended the session; raise if it is out of place."""
        state = self.state
        if state is _MAPPED:
            return False
        if state in (SessionState.END_SENT, SessionState.DISCARDING):
            return True
        raise RemoteProtocolError(
            f"{what} on a session in state {state.value}", condition=Condition.ILLEGAL_STATE
        )

    def _link_for(self, handle: int, what: str) -> Link:
        link = self._remote_handles.get(handle)
        if link is None:
            raise SessionFault(
                self,
                Condition.UNATTACHED_HANDLE,
                f"{what} on handle {handle}, which is not attached",
            )
        return link

    def _on_attach(self, attach: Attach) -> None:
        if self._discarding("attach"):
            return
        handle = attach.handle
        if handle > self.handle_max:
            raise RemoteProtocolError(
                f"attach uses handle {handle}, above our handle-max {self.handle_max}",
                condition=Condition.FRAMING_ERROR,
            )
        if handle in self._remote_handles:
            raise SessionFault(self, Condition.HANDLE_IN_USE, f"handle {handle} is already in use")
        our_role = not attach.role
        link = self._awaiting_attach.pop((attach.name, our_role), None)
        if link is None:
            link = Link(self, attach.name, our_role, remote_initiated=True)
            if not link.is_sender:
                link.max_message_size = self.connection.config.max_message_size
        self._remote_handles[handle] = link
        link._on_attach(attach)

    def _on_detach(self, detach: Detach) -> None:
        if self._discarding("detach"):
            return
        link = self._link_for(detach.handle, "detach")
        del self._remote_handles[detach.handle]
        link._on_detach(detach)
        if link.state is LinkState.CLOSED:
            self._release_handle(link)
            link._over()

    def _on_flow(self, flow: Flow) -> None:
        if self._discarding("flow"):
            return
        next_incoming_id = flow.next_incoming_id
        if next_incoming_id is None:
            next_incoming_id = 0  # the peer has not seen our begin: our first transfer-id
        self.remote_outgoing_window = flow.outgoing_window
        if flow.handle is not None:
            self._link_for(flow.handle, "flow")._on_flow(flow)
        elif flow.echo:
            self._flow_session = True
            self._touch()
        self.outgoing.peer_window(flow.incoming_window, next_incoming_id)

    def _on_transfer(self, transfer: Transfer, buf: bytes, start: int, end: int) -> None:
        if self.state is not _MAPPED and self._discarding("transfer"):
            return
        link = self._remote_handles.get(transfer.handle)
        if link is None:
            raise SessionFault(
                self,
                Condition.UNATTACHED_HANDLE,
                f"transfer on handle {transfer.handle}, which is not attached",
            )
        window = self.incoming_window
        if window <= 0:
            raise SessionFault(
                self,
                Condition.WINDOW_VIOLATION,
                f"transfer {self.next_incoming_id} arrived with our incoming-window at 0",
            )
        self.incoming_window = window = window - 1
        self.next_incoming_id = (self.next_incoming_id + 1) & SERIAL_MASK  # type: ignore[operator]
        if self.remote_outgoing_window > 0:
            self.remote_outgoing_window -= 1
        if window <= self._window_low and not self._flow_session:
            self._flow_session = True
            self._touch()
        link._on_transfer(transfer, buf, start, end)

    def _on_disposition(self, disposition: Disposition) -> None:
        if self.state is not _MAPPED and self._discarding("disposition"):
            return
        role = disposition.role
        first = disposition.first
        last = disposition.last
        settled = disposition.settled
        state = disposition.state
        # The peer's role tells whose deliveries these are: a receiver speaks of ours.
        unsettled = self.outgoing.unsettled if role is _RECEIVER else self._unsettled_in
        if not unsettled:
            return
        span = 0 if last is None else (last - first) & SERIAL_MASK
        ids: Any
        if span < len(unsettled):
            ids = range(first, first + span + 1)
        else:
            # A wide range: walk what we have rather than every number in it.
            ids = sorted(
                (i for i in unsettled if ((i - first) & SERIAL_MASK) <= span),
                key=lambda i: (i - first) & SERIAL_MASK,
            )
        append = self.output.events.append
        lookup = unsettled.pop if settled else unsettled.get
        for delivery_id in ids:
            delivery = lookup(delivery_id & SERIAL_MASK, None)
            if delivery is None:
                continue
            if state is not None:
                delivery.remote_state = state
            if settled:
                delivery.remote_settled = True
            append(_DELIVERY_UPDATED(delivery, state, settled))

    # --- sending ----------------------------------------------------------------------------

    def _send_delivery(self, delivery: Delivery, payload: bytes) -> None:
        """A link's new delivery: out through :attr:`outgoing`, after any dispositions
        made before it (a transaction's outcomes go before its discharge)."""
        if self._disposition_in or self._disposition_out:
            self._write_pending_dispositions()
        self.outgoing.send(delivery, payload)

    # --- the flush --------------------------------------------------------------------------

    def _delivery_changed(self, delivery: Delivery, settled: bool) -> None:
        """One of our deliveries was settled or given a state here: forget it once settled,
        and queue its disposition unless the peer settled it already.  (A detached link's
        deliveries are still the session's until settled, part 2.7.6.)"""
        delivery_id = delivery.delivery_id
        outgoing = delivery.link.is_sender
        if settled:
            delivery.settled = True
            if delivery_id is not None:
                unsettled = self.outgoing.unsettled if outgoing else self._unsettled_in
                unsettled.pop(delivery_id, None)
        if (
            delivery.remote_settled
            or delivery_id is None
            or delivery._queued
            or self.state is not _MAPPED
        ):
            return
        delivery._queued = True
        if outgoing:
            self._disposition_out.append(delivery)
        else:
            self._disposition_in.append(delivery)
        if not self._dirty:
            self._touch()

    def _touch(self) -> None:
        if not self._dirty:
            self._dirty = True
            self.output.dirty.append(self)

    def _flush(self) -> None:
        """Write the dispositions and flow frames collected since the last flush."""
        self._dirty = False
        if self.state is not _MAPPED and self.state is not _BEGIN_SENT:
            return
        self._write_pending_dispositions()
        if self._flow_links or self._flow_session:
            self._write_flows()

    def _write_pending_dispositions(self) -> None:
        if self.state is not _MAPPED and self.state is not _BEGIN_SENT:
            return
        if self._disposition_in:
            pending = self._disposition_in
            self._disposition_in = []
            self._write_dispositions(_RECEIVER, pending)
        if self._disposition_out:
            pending = self._disposition_out
            self._disposition_out = []
            self._write_dispositions(_SENDER, pending)

    def _write_dispositions(self, role: bool, pending: list[Delivery]) -> None:
        if not _in_id_order(pending):  # usually they are: settled in the order they came
            pending.sort(key=_by_id)
        write = self.output.write_frame
        channel = self.channel
        i = 0
        n = len(pending)
        while i < n:
            delivery = pending[i]
            delivery._queued = False
            first = last = delivery.delivery_id
            assert first is not None
            state = delivery.state
            settled = delivery.settled
            i += 1
            while i < n:
                other = pending[i]
                if (
                    other.delivery_id != (last + 1) & SERIAL_MASK  # type: ignore[operator]
                    or other.settled is not settled
                    or (other.state is not state and other.state != state)
                ):
                    break
                other._queued = False
                last = other.delivery_id
                i += 1
            write(
                channel,
                _DISPOSITION(
                    role=role,
                    first=first,
                    last=None if last == first else last,
                    settled=settled,
                    state=state,
                ),
            )

    def _session_flow(self) -> Flow:
        """A flow with this session's fields only; links add theirs to it."""
        # Every flow we send re-opens our incoming window to its full size.
        self.incoming_window = self._window_size
        self._flow_session = False
        return Flow(
            next_incoming_id=self.next_incoming_id,
            incoming_window=self.incoming_window,
            next_outgoing_id=self.outgoing.next_outgoing_id,
            outgoing_window=self.outgoing_window,
        )

    def _write_flows(self) -> None:
        session_flow = self._session_flow()
        write = self.output.write_frame
        links = self._flow_links
        self._flow_links = []
        wrote = False
        for link in links:
            link._flow_queued = False
            if link.state is LinkState.ATTACH_SENT or link.state is LinkState.ATTACHED:
                write(self.channel, link._flow_frame(session_flow))
                wrote = True
        if not wrote:
            write(self.channel, session_flow)

    def __repr__(self) -> str:
        return f"<Session channel={self.channel} remote={self.remote_channel} {self.state.value}>"
