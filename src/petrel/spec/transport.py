"""AMQP 1.0 part 2, transport: the nine performatives, ``error`` and their restricted types."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from ..types import Symbol
from ._base import Composite, field

__all__ = [
    "PERFORMATIVES",
    "Attach",
    "Begin",
    "Close",
    "Detach",
    "Disposition",
    "End",
    "Error",
    "Flow",
    "Open",
    "ReceiverSettleMode",
    "Role",
    "SenderSettleMode",
    "Transfer",
]


class Role:
    """``role``: which end of a link an attach or disposition speaks for."""

    SENDER = False
    RECEIVER = True


class SenderSettleMode(IntEnum):
    """``sender-settle-mode``."""

    UNSETTLED = 0
    SETTLED = 1
    MIXED = 2


class ReceiverSettleMode(IntEnum):
    """``receiver-settle-mode``."""

    FIRST = 0
    SECOND = 1


class Open(Composite, descriptor=0x10, name="amqp:open:list"):
    """The ``open`` performative (part 2.7.1): the first frame each side sends."""

    container_id: str = field("string", mandatory=True)
    hostname: str | None = field("string", default=None)
    max_frame_size: int = field("uint", default=4294967295)
    channel_max: int = field("ushort", default=65535)
    idle_time_out: int | None = field("milliseconds", default=None)
    outgoing_locales: tuple[Symbol, ...] | None = field(
        "ietf-language-tag", multiple=True, default=None
    )
    incoming_locales: tuple[Symbol, ...] | None = field(
        "ietf-language-tag", multiple=True, default=None
    )
    offered_capabilities: tuple[Symbol, ...] | None = field("symbol", multiple=True, default=None)
    desired_capabilities: tuple[Symbol, ...] | None = field("symbol", multiple=True, default=None)
    properties: dict[Any, Any] | None = field("fields", default=None)


class Begin(Composite, descriptor=0x11, name="amqp:begin:list"):
    """The ``begin`` performative (part 2.7.2): starts a session on a channel, with its windows."""

    remote_channel: int | None = field("ushort", default=None)
    next_outgoing_id: int = field("transfer-number", mandatory=True)
    incoming_window: int = field("uint", mandatory=True)
    outgoing_window: int = field("uint", mandatory=True)
    handle_max: int = field("handle", default=4294967295)
    offered_capabilities: tuple[Symbol, ...] | None = field("symbol", multiple=True, default=None)
    desired_capabilities: tuple[Symbol, ...] | None = field("symbol", multiple=True, default=None)
    properties: dict[Any, Any] | None = field("fields", default=None)


class Attach(Composite, descriptor=0x12, name="amqp:attach:list"):
    """The ``attach`` performative (part 2.7.3): a link end, its terminus and settle modes."""

    name: str = field("string", mandatory=True)
    handle: int = field("handle", mandatory=True)
    role: bool = field("role", mandatory=True)
    snd_settle_mode: int = field("sender-settle-mode", default=2)
    rcv_settle_mode: int = field("receiver-settle-mode", default=0)
    source: Any = field("*", requires="source", default=None)
    target: Any = field("*", requires="target", default=None)
    unsettled: dict[Any, Any] | None = field("map", default=None)
    incomplete_unsettled: bool = field("boolean", default=False)
    initial_delivery_count: int | None = field("sequence-no", default=None)
    max_message_size: int | None = field("ulong", default=None)
    offered_capabilities: tuple[Symbol, ...] | None = field("symbol", multiple=True, default=None)
    desired_capabilities: tuple[Symbol, ...] | None = field("symbol", multiple=True, default=None)
    properties: dict[Any, Any] | None = field("fields", default=None)


class Flow(Composite, descriptor=0x13, name="amqp:flow:list"):
    """The ``flow`` performative (part 2.7.4): session windows and (with a handle) link credit."""

    next_incoming_id: int | None = field("transfer-number", default=None)
    incoming_window: int = field("uint", mandatory=True)
    next_outgoing_id: int = field("transfer-number", mandatory=True)
    outgoing_window: int = field("uint", mandatory=True)
    handle: int | None = field("handle", default=None)
    delivery_count: int | None = field("sequence-no", default=None)
    link_credit: int | None = field("uint", default=None)
    available: int | None = field("uint", default=None)
    drain: bool = field("boolean", default=False)
    echo: bool = field("boolean", default=False)
    properties: dict[Any, Any] | None = field("fields", default=None)


class Transfer(Composite, descriptor=0x14, name="amqp:transfer:list"):
    """The ``transfer`` performative (part 2.7.5): one frame of a message, payload after it."""

    handle: int = field("handle", mandatory=True)
    delivery_id: int | None = field("delivery-number", default=None)
    delivery_tag: bytes | None = field("delivery-tag", default=None)
    message_format: int | None = field("message-format", default=None)
    settled: bool | None = field("boolean", default=None)
    more: bool = field("boolean", default=False)
    rcv_settle_mode: int | None = field("receiver-settle-mode", default=None)
    state: Any = field("*", requires="delivery-state", default=None)
    resume: bool = field("boolean", default=False)
    aborted: bool = field("boolean", default=False)
    batchable: bool = field("boolean", default=False)


class Disposition(Composite, descriptor=0x15, name="amqp:disposition:list"):
    """The ``disposition`` performative (part 2.7.6): state or settlement of deliveries."""

    role: bool = field("role", mandatory=True)
    first: int = field("delivery-number", mandatory=True)
    last: int | None = field("delivery-number", default=None)
    settled: bool = field("boolean", default=False)
    state: Any = field("*", requires="delivery-state", default=None)
    batchable: bool = field("boolean", default=False)


class Detach(Composite, descriptor=0x16, name="amqp:detach:list"):
    """The ``detach`` performative (part 2.7.7): detaches a link end (``closed``: for good)."""

    handle: int = field("handle", mandatory=True)
    closed: bool = field("boolean", default=False)
    error: Error | None = field("error", default=None)


class End(Composite, descriptor=0x17, name="amqp:end:list"):
    """The ``end`` performative (part 2.7.8): ends a session."""

    error: Error | None = field("error", default=None)


class Close(Composite, descriptor=0x18, name="amqp:close:list"):
    """The ``close`` performative (part 2.7.9): closes the connection."""

    error: Error | None = field("error", default=None)


class Error(Composite, descriptor=0x1D, name="amqp:error:list"):
    """The ``error`` type (part 2.8.14): a condition, a description and an info map."""

    condition: Symbol = field("symbol", mandatory=True, requires="error-condition")
    description: str | None = field("string", default=None)
    info: dict[Any, Any] | None = field("fields", default=None)


#: The performatives, by descriptor code.
PERFORMATIVES: dict[int, type[Composite]] = {
    cls.DESCRIPTOR: cls
    for cls in (Open, Begin, Attach, Flow, Transfer, Disposition, Detach, End, Close)
}
