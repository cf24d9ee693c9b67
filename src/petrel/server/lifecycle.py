"""A boring server lifecycle: exit codes and signal handling that restores what it replaced."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import signal
from collections.abc import Iterator

__all__ = ["ExitCode", "capture_signals"]


class ExitCode(enum.IntEnum):
    """The server's exit status."""

    OK = 0
    """Stopped on request (SIGINT/SIGTERM) after a clean shutdown."""
    FAILURE = 1
    """Stopped by an unexpected error."""
    CONFIG = 2
    """The configuration or the command line is wrong."""
    STARTUP = 3
    """The server could not start (address in use, store unreadable, ...)."""


@contextlib.contextmanager
def capture_signals(stop: asyncio.Event) -> Iterator[list[signal.Signals]]:
    """Set ``stop`` on SIGINT or SIGTERM while inside the block; yields the signals received.

    The loop's previous handlers (none, usually) are restored on exit.  A
    second signal while stopping is recorded; callers may treat it as "stop
    now".
    """
    loop = asyncio.get_running_loop()
    received: list[signal.Signals] = []

    def handler(sig: signal.Signals) -> None:
        received.append(sig)
        stop.set()

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, handler, sig)
        except (NotImplementedError, RuntimeError):  # not the main thread, or no support
            continue
        installed.append(sig)
    try:
        yield received
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
