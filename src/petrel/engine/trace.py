"""The frame trace: one log line per frame through the ``petrel.frames`` logger.

Tracing is decided once per connection, when it is made: it is on when the
``PETREL_TRACE_FRAMES`` environment variable is ``1`` (or ``true``/``yes``),
or when ``petrel.frames`` is enabled for ``DEBUG``.  When it is off the
engine pays one attribute test per frame.

Lines look like ``[container/3] -> ch=1 Attach(name='l1', handle=0, ...)``:
``->`` for frames we send, ``<-`` for frames we receive.

The environment variable is meant for a quick look without any logging set
up, so it is the one place the engine touches logging configuration: it sets
``petrel.frames`` to ``DEBUG`` and, when nothing else would print the lines,
gives that logger a handler writing to standard error.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

__all__ = ["FRAMES_LOG", "FrameTracer", "tracing_enabled"]

FRAMES_LOG = logging.getLogger("petrel.frames")

_env_handler: logging.Handler | None = None


def tracing_enabled() -> bool:
    """Whether frames should be traced (see the module docstring)."""
    global _env_handler
    if os.environ.get("PETREL_TRACE_FRAMES", "").lower() in ("1", "true", "yes", "on"):
        if FRAMES_LOG.getEffectiveLevel() > logging.DEBUG:
            FRAMES_LOG.setLevel(logging.DEBUG)
        if _env_handler is None and not FRAMES_LOG.hasHandlers():
            _env_handler = logging.StreamHandler(sys.stderr)
            _env_handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
            FRAMES_LOG.addHandler(_env_handler)
        return True
    return FRAMES_LOG.isEnabledFor(logging.DEBUG)


class FrameTracer:
    """Writes the trace lines of one connection."""

    __slots__ = ("label",)

    def __init__(self, label: str) -> None:
        self.label = label

    def frame(self, direction: str, channel: int, body: Any, payload_size: int = 0) -> None:
        """Trace one frame: ``body`` is the performative or SASL frame, ``None`` if empty."""
        if body is None:
            FRAMES_LOG.debug("[%s] %s ch=%d (empty frame)", self.label, direction, channel)
        elif payload_size:
            FRAMES_LOG.debug(
                "[%s] %s ch=%d %r + %d payload bytes",
                self.label,
                direction,
                channel,
                body,
                payload_size,
            )
        else:
            FRAMES_LOG.debug("[%s] %s ch=%d %r", self.label, direction, channel, body)

    def header(self, direction: str, header: bytes) -> None:
        """Trace a protocol header."""
        FRAMES_LOG.debug("[%s] %s %r", self.label, direction, header)
