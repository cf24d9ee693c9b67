"""W3C trace context on messages, and OpenTelemetry spans for each step of their path.

When OpenTelemetry's API is installed (``pip install petrel[otel]``) the client
starts a producer span for each message it sends and writes that span's
context into the message's application properties as ``traceparent`` (and
``tracestate``), the W3C Trace Context fields; a receiver starts a consumer
span linked to it.  The application properties are part of the bare message,
which no broker or router may change, so the context travels from end to end
and any AMQP client sees it as an ordinary string property.

The broker and routers, with ``[tracing] enabled = true``, read ``traceparent``
from the message as it passes (only that entry of the map, never re-encoding
anything) and add short spans as its children: ``publish``/``deliver``/
``acknowledge`` on the broker, ``route`` on each router.  A message that
carries no ``traceparent`` gets no server spans: whether a message is traced
is its producer's decision.

Whether OpenTelemetry is there is decided once, at import: without it
:data:`client` is ``None`` and the servers refuse the setting, so the hot
paths pay one attribute test per message.  Spans go to the global tracer
provider (the application sets it up, exporter included), or to the one given
to :func:`use_tracer_provider`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

from ._version import __version__
from .errors import DecodeError
from .message import Message, MessageView

try:
    from opentelemetry import trace as _otel_trace
    from opentelemetry.trace import (
        Link,
        NonRecordingSpan,
        ProxyTracerProvider,
        SpanContext,
        SpanKind,
        Status,
        StatusCode,
        TraceFlags,
        TraceState,
    )
except ImportError:  # pragma: no cover - exercised where OpenTelemetry is not installed
    _otel_trace = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer, TracerProvider

__all__ = [
    "AVAILABLE",
    "MESSAGING_SYSTEM",
    "TRACEPARENT",
    "TRACESTATE",
    "ClientTracing",
    "ServerTracing",
    "client",
    "context_of",
    "server_tracing",
    "use_tracer_provider",
]

#: Whether OpenTelemetry's API could be imported (decided once, here).
AVAILABLE: Final = _otel_trace is not None

#: The application-property keys the context travels in (W3C Trace Context names).
TRACEPARENT: Final = "traceparent"
TRACESTATE: Final = "tracestate"

#: ``messaging.system`` on every span Petrel makes.
MESSAGING_SYSTEM: Final = "amqp"

# OpenTelemetry messaging semantic conventions (attribute names).
_SYSTEM = "messaging.system"
_DESTINATION = "messaging.destination.name"
_OPERATION = "messaging.operation.name"
_OPERATION_TYPE = "messaging.operation.type"
_MESSAGE_ID = "messaging.message.id"
#: Which server made a span (its container or router id) and what it was told.
_NODE = "petrel.node"
_OUTCOME = "petrel.outcome"
_COPIES = "petrel.copies"
_ROUTED_BY = "petrel.routed_by"


#: What OpenTelemetry reads for a global tracer provider named in the environment.
_PROVIDER_VARIABLE = "OTEL_PYTHON_TRACER_PROVIDER"
#: A module global OpenTelemetry no longer has (then it is asked every time).
_UNKNOWN = object()


class _Current:
    """The tracer every span is made with (replaced by :func:`use_tracer_provider`)."""

    __slots__ = ("given", "named_in_environment", "tracer", "unset_until_set")

    def __init__(self) -> None:
        self.tracer: Tracer | None = None
        #: A provider was given to :func:`use_tracer_provider`.
        self.given = False
        #: The environment names a global provider (OpenTelemetry loads it on first use).
        self.named_in_environment = _PROVIDER_VARIABLE in os.environ
        #: No global provider can appear unless one is set: then OpenTelemetry's module
        #: global ``_TRACER_PROVIDER`` being ``None`` means none is (see :meth:`may_record`).
        self.unset_until_set = (
            getattr(_otel_trace, "_TRACER_PROVIDER", _UNKNOWN) is not _UNKNOWN
            and not self.named_in_environment
        )

    def may_record(self) -> bool:
        """False when no span can be recorded: no provider given, none set globally.

        Asked once per send and receive (as :meth:`ClientTracing.recording`).
        Until a global provider is set, ``get_tracer_provider()`` looks the
        environment up on every call (about 3 us, a tenth of a send), so while
        OpenTelemetry's module global says none is set, and the environment
        named none when Petrel was imported, the answer is no without asking it.
        """
        if self.given:
            return True
        if self.unset_until_set and _otel_trace._TRACER_PROVIDER is None:
            return False
        return type(_otel_trace.get_tracer_provider()) is not ProxyTracerProvider


_current = _Current()
if _otel_trace is not None:
    _current.tracer = _otel_trace.get_tracer("petrel", __version__)


def use_tracer_provider(provider: TracerProvider | None) -> None:
    """Make Petrel's spans with ``provider`` instead of the global tracer provider
    (``None``: the global one again).  For programs and tests that keep several
    providers, or do not want to set the process-wide one."""
    if _otel_trace is None:
        raise RuntimeError("OpenTelemetry is not installed: pip install petrel[otel]")
    _current.tracer = _otel_trace.get_tracer("petrel", __version__, tracer_provider=provider)
    _current.given = provider is not None


#: ``version-traceid-parentid-flags`` (W3C Trace Context, lowercase hex); a later
#: version may add fields after a dash.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")


def _extract(traceparent: Any, tracestate: Any) -> Context | None:
    """The remote context a ``traceparent`` (and ``tracestate``) value names; ``None``
    when it is not a valid one.  Parsed here rather than by OpenTelemetry's propagator,
    which costs several times more: the broker reads it for every span it makes."""
    if type(traceparent) is not str:
        return None
    match = _TRACEPARENT.fullmatch(traceparent)
    if match is None:
        return None
    version, trace_id, span_id, flags, more = match.groups()
    if version == "ff" or (version == "00" and more):
        return None
    trace_number = int(trace_id, 16)
    span_number = int(span_id, 16)
    if not trace_number or not span_number:
        return None
    state = TraceState.from_header([tracestate]) if type(tracestate) is str else None
    span_context = SpanContext(
        trace_number,
        span_number,
        is_remote=True,
        trace_flags=TraceFlags(int(flags, 16) & 0xFF),
        trace_state=state,
    )
    return _otel_trace.set_span_in_context(NonRecordingSpan(span_context))


def context_of(properties: Mapping[str, Any] | None) -> Context | None:
    """The trace context a message's application properties carry (``None``: none, or
    OpenTelemetry is not installed): the parent for an application's own processing
    span, ``tracer.start_as_current_span("work", context=context_of(props))``."""
    if _otel_trace is None or not properties:
        return None
    return _extract(properties.get(TRACEPARENT), properties.get(TRACESTATE))


def _fail(span: Span, error: BaseException | None) -> None:
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, str(error) or type(error).__name__))
    span.end()


class ClientTracing:
    """The client's spans: ``send`` (producer) and ``receive`` (consumer)."""

    __slots__ = ()

    #: Whether a span made now could be recorded: a tracer provider was set (globally or
    #: with :func:`use_tracer_provider`).  Without one every span is a no-op, so the client
    #: sends and receives without building any.  Asked twice per message: the one
    #: :meth:`_Current.may_record`, called straight.
    recording = staticmethod(_current.may_record)

    def start_send(self, message: Message, address: str | None) -> tuple[Span, Message]:
        """Start the producer span of one send; returns it and the message to send: a
        copy carrying the span's context, or ``message`` itself when there is no
        context to carry (no tracer provider, nothing sampled above it)."""
        tracer = _current.tracer
        assert tracer is not None
        destination = address if address is not None else str(message.to)
        attributes: dict[str, Any] = {
            _SYSTEM: MESSAGING_SYSTEM,
            _DESTINATION: destination,
            _OPERATION: "send",
            _OPERATION_TYPE: "send",
        }
        if message.message_id is not None:
            attributes[_MESSAGE_ID] = str(message.message_id)
        span = tracer.start_span(
            f"send {destination}", kind=SpanKind.PRODUCER, attributes=attributes
        )
        context = span.get_span_context()
        if not context.is_valid:
            return span, message
        properties = dict(message.application_properties or ())
        properties[TRACEPARENT] = (
            f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
        )
        state = context.trace_state.to_header() if context.trace_state else ""
        if state:
            properties[TRACESTATE] = state
        else:
            properties.pop(TRACESTATE, None)  # not a stale one from the application
        return span, replace(message, application_properties=properties)

    @staticmethod
    def end_send(span: Span, error: BaseException | None = None) -> None:
        """The send's outcome came (``error``: it failed)."""
        _fail(span, error)

    @staticmethod
    def ended_with(span: Span) -> Any:
        """A done-callback for the outcome future of ``send(wait=False)``."""

        def done(future: Any) -> None:
            _fail(span, None if future.cancelled() else future.exception())

        return done

    def received(self, payload: bytes, address: str | None) -> None:
        """A delivery was handed to the application: one consumer span, linked to the
        producer's (and its child, when the application has no span of its own).

        Callers ask :meth:`recording` first: without a tracer provider the span
        would be a no-op, so they spare the parsing and the call."""
        tracer = _current.tracer
        assert tracer is not None
        try:
            view = MessageView(payload)
            context = _extract(
                view.application_property(TRACEPARENT), view.application_property(TRACESTATE)
            )
        except DecodeError:
            context = None
        links = None
        parent = None
        if context is not None:
            links = [Link(_otel_trace.get_current_span(context).get_span_context())]
            if not _otel_trace.get_current_span().get_span_context().is_valid:
                parent = context
        destination = address or ""
        tracer.start_span(
            f"receive {destination}",
            context=parent,
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={
                _SYSTEM: MESSAGING_SYSTEM,
                _DESTINATION: destination,
                _OPERATION: "receive",
                _OPERATION_TYPE: "receive",
            },
        ).end()


class ServerTracing:
    """A broker's or router's spans, each a child of the context the message carries.

    Each span is made and ended at once (a message may wait in a queue for days:
    no span stays open across that).  A message without a valid ``traceparent``,
    or whose application properties do not decode, gets none.
    """

    __slots__ = ("node",)

    def __init__(self, node: str) -> None:
        #: The container id (broker) or router id, on every span as ``petrel.node``.
        self.node = node

    def _span(
        self,
        view: MessageView,
        operation: str,
        operation_type: str,
        destination: str,
        kind: Any,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        try:
            traceparent = view.application_property(TRACEPARENT)
            if traceparent is None:
                return
            context = _extract(traceparent, view.application_property(TRACESTATE))
        except DecodeError:
            return
        if context is None:
            return
        tracer = _current.tracer
        assert tracer is not None
        attributes: dict[str, Any] = {
            _SYSTEM: MESSAGING_SYSTEM,
            _DESTINATION: destination,
            _OPERATION: operation,
            _OPERATION_TYPE: operation_type,
            _NODE: self.node,
        }
        if extra:
            attributes.update(extra)
        tracer.start_span(
            f"{operation} {destination}", context=context, kind=kind, attributes=attributes
        ).end()

    def publish(self, view: MessageView, address: str) -> None:
        """The broker took a message in for ``address`` (it is queued)."""
        self._span(view, "publish", "receive", address, SpanKind.CONSUMER)

    def deliver(self, view: MessageView, queue: str) -> None:
        """The broker sent a message from ``queue`` to a consumer."""
        self._span(view, "deliver", "send", queue, SpanKind.PRODUCER)

    def acknowledge(self, view: MessageView, queue: str, outcome: str) -> None:
        """A consumer settled a message of ``queue`` with ``outcome`` (accepted, ...)."""
        self._span(view, "acknowledge", "settle", queue, SpanKind.INTERNAL, {_OUTCOME: outcome})

    def route(self, view: MessageView, address: str, copies: int, key: str) -> None:
        """A router forwarded ``copies`` copies of a message to ``address`` (``key``: the
        address it was routed by, ``_phase/0/orders`` on the way to a waypoint's queue)."""
        extra = {_COPIES: copies, _ROUTED_BY: key}
        self._span(view, "route", "process", address, SpanKind.CONSUMER, extra)


#: The client's tracing, or ``None`` when OpenTelemetry is not installed.
client: ClientTracing | None = ClientTracing() if AVAILABLE else None


def server_tracing(enabled: bool, node: str) -> ServerTracing | None:
    """A server's tracing (``[tracing] enabled``), or ``None`` when it is off.

    Raises :class:`RuntimeError` when it is asked for without OpenTelemetry (the
    settings refuse that earlier, with the same words)."""
    if not enabled:
        return None
    if not AVAILABLE:
        raise RuntimeError(f"tracing.enabled {NOT_INSTALLED}")
    return ServerTracing(node)


#: Why ``[tracing] enabled = true`` cannot be honoured.
NOT_INSTALLED: Final = (
    "needs OpenTelemetry's API, which is not installed (pip install 'petrel[otel]')"
)
