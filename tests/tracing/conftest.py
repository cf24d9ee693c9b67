"""Spans caught in memory: an OpenTelemetry SDK tracer provider of the test's own.

Petrel is handed it with ``petrel.tracing.use_tracer_provider`` (and the global one
again afterwards), so no test changes the process-wide provider the other tests run
under.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from petrel import tracing


@pytest.fixture
def tracer_provider() -> Iterator[TracerProvider]:
    provider = TracerProvider()
    tracing.use_tracer_provider(provider)
    try:
        yield provider
    finally:
        tracing.use_tracer_provider(None)
        provider.shutdown()


@pytest.fixture
def spans(tracer_provider: TracerProvider) -> InMemorySpanExporter:
    """The spans Petrel (and the test) made, as they end."""
    exporter = InMemorySpanExporter()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter
