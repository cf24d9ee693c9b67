"""A boring server lifecycle: ``start -> serve -> stop``, exit codes, and signal handling
that restores what it replaced."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import gc
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Protocol

from ..errors import AmqpError

__all__ = ["ExitCode", "Servable", "capture_signals", "serve"]

log = logging.getLogger("petrel.server")


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
def capture_signals(
    stop: asyncio.Event, reload: Callable[[], None] | None = None
) -> Iterator[list[signal.Signals]]:
    """Set ``stop`` on SIGINT or SIGTERM while inside the block; yields the signals received.
    With ``reload``, SIGHUP calls it (and is not recorded).

    The previous handlers are restored on exit: the loop's, or (the loop keeps
    none of its own for a signal it did not handle) the process's.  A second
    signal while stopping is recorded; callers may treat it as "stop now".
    """
    loop = asyncio.get_running_loop()
    received: list[signal.Signals] = []

    def handler(sig: signal.Signals) -> None:
        received.append(sig)
        stop.set()

    def hangup() -> None:
        assert reload is not None
        log.info("SIGHUP: reloading")
        try:
            reload()
        except Exception:  # a reload must never stop the server
            log.exception("reloading on SIGHUP failed")

    wanted: list[tuple[signal.Signals, Callable[..., None], tuple[signal.Signals, ...]]] = [
        (signal.SIGINT, handler, (signal.SIGINT,)),
        (signal.SIGTERM, handler, (signal.SIGTERM,)),
    ]
    if reload is not None and hasattr(signal, "SIGHUP"):
        wanted.append((signal.SIGHUP, hangup, ()))
    installed = []
    for sig, callback, args in wanted:
        previous = signal.getsignal(sig)
        try:
            loop.add_signal_handler(sig, callback, *args)
        except (NotImplementedError, RuntimeError):  # not the main thread, or no support
            continue
        installed.append((sig, previous))
    try:
        yield received
    finally:
        for sig, previous in installed:
            loop.remove_signal_handler(sig)
            # remove_signal_handler leaves SIG_DFL (or Python's SIGINT handler) behind; put
            # back a handler of the process's own (not a loop's wake-up stub).
            if _restorable(previous) and signal.getsignal(sig) is not previous:
                with contextlib.suppress(ValueError, OSError, TypeError):
                    signal.signal(sig, previous)


def _restorable(handler: object) -> bool:
    module = getattr(handler, "__module__", None) or ""
    return handler is not None and not module.startswith(("asyncio", "uvloop"))


class Servable(Protocol):
    """What :func:`serve` runs: a broker or a router."""

    async def start(self) -> None:
        """Bind, recover, and become ready; raises ``OSError`` or an error saying why not."""
        ...

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every connection, release everything."""
        ...

    @property
    def bound(self) -> list[tuple[str, int]]:
        """Where it listens."""
        ...

    @property
    def failed(self) -> asyncio.Event:
        """Set when it must stop on its own (its store failed, say)."""
        ...

    @property
    def failure(self) -> str | None:
        """Why :attr:`failed` was set."""
        ...

    def reload(self) -> None:
        """Read again what may change while it runs (SIGHUP): TLS certificates, users.
        What cannot be read is logged, and the previous version kept."""
        ...


#: The cyclic collector's young-generation threshold once a server runs (CPython's is 700).
GC_YOUNG_THRESHOLD = 50_000


def tune_collector() -> None:
    """Once a server is up: freeze what starting it made (``gc.freeze``: modules, settings,
    listeners are never collected, so no full collection walks them again) and collect the
    young generation once 50,000 more tracked objects live than at the last collection,
    rather than 700.

    Every message in flight is a few tracked objects, and each collection walks the
    young ones still alive, so a broker moving messages collects constantly: with both
    changes a queue filling with 200,000 small messages costs the broker about a third
    less CPU per message (docs/performance.md).  At 10,000, messages merely passing
    through still set off a collection every 8,000 or so (1.5-2 ms each, 5% of the
    broker's CPU with 4 pairs of Proton's C clients); at 50,000 none.  A collection
    then walks up to five times as many objects (about 7 ms while queues fill).  The
    older generations keep their thresholds, so cyclic garbage is still found.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def serve(server: Servable, name: str, say: Callable[[str], None] = _stderr) -> ExitCode:
    """Run ``server`` until SIGINT or SIGTERM, or until it fails; its exit code.  SIGHUP
    makes it reload (:meth:`Servable.reload`) and carry on.

    ``name`` prefixes the one-line messages given to ``say`` (standard error):
    why it could not start (:attr:`ExitCode.STARTUP`), or why it failed
    (:attr:`ExitCode.FAILURE`).  A signal while it is still starting (a
    backup broker waiting to become live) stops it there.
    """
    stop = asyncio.Event()
    with capture_signals(stop, server.reload) as received:
        starting = asyncio.ensure_future(server.start())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await starting
            log.info("stopping on %s before becoming ready", received[0].name)
            return ExitCode.OK
        try:
            starting.result()
        except Exception as exc:
            stopping.cancel()
            say(f"{name}: {_why(exc)}")
            return ExitCode.STARTUP
        addresses = ", ".join(f"{host}:{port}" for host, port in server.bound)
        log.info("%s ready on %s", name, addresses)
        tune_collector()
        failing = asyncio.ensure_future(server.failed.wait())
        await asyncio.wait({stopping, failing}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        failing.cancel()
    if server.failure is not None:
        say(f"{name}: {server.failure}")
        await server.stop(timeout=1.0)
        return ExitCode.FAILURE
    log.info("stopping on %s", received[0].name if received else "request")
    await server.stop()
    return ExitCode.OK


def _why(exc: Exception) -> str:
    """One line for a failed start: an ``OSError``'s message names the address (``str()``
    would prefix ``[Errno 98]``); an AMQP error its description."""
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    if isinstance(exc, AmqpError):
        return f"cannot start: {exc.description}"
    return f"cannot start: {exc}"
