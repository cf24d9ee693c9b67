"""Outbound connections that keep trying: a list of addresses, gone round with backoff.

The client reconnects with it after a lost connection, and a router dials
other routers and brokers with it.  What to do once connected (attach links
again, say) is the caller's; the connector only establishes.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..engine import ConnectionConfig
from ..errors import AmqpError
from .listen import connect
from .protocol import AmqpProtocol, EventHandler
from .tls import TlsConfig
from .url import Address

__all__ = ["Backoff", "Connector", "GaveUp"]

log = logging.getLogger("petrel.driver")


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait between connection attempts.

    Before attempt ``n`` (counting from 0) the wait is ``min(max_delay,
    initial_delay * multiplier ** n)``, spread by ``jitter`` (0.2: anything
    between 80% and 120% of it) so that many peers do not come back in step.
    After ``max_attempts`` failed attempts in a row (``None``: never) the
    connector gives up.
    """

    initial_delay: float = 0.05
    """Seconds before the first attempt after a loss."""
    max_delay: float = 5.0
    """The longest wait between two attempts."""
    multiplier: float = 2.0
    """How much the wait grows after each failed attempt."""
    jitter: float = 0.2
    """The fraction by which each wait is randomly lengthened or shortened."""
    max_attempts: int | None = 30
    """Give up after this many failed attempts in a row (``None``: keep trying)."""

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (0 is the first)."""
        base = min(self.max_delay, self.initial_delay * self.multiplier ** min(attempt, 64))
        if self.jitter:
            base *= 1.0 + random.uniform(-self.jitter, self.jitter)
        return max(0.0, base)


class GaveUp(Exception):
    """:attr:`Backoff.max_attempts` attempts failed in a row; ``error`` is the last one."""

    def __init__(self, attempts: int, error: BaseException | None) -> None:
        super().__init__(f"gave up after {attempts} attempts: {error}")
        self.attempts = attempts
        self.error = error


class Connector:
    """Connects to one of ``addresses`` (see the module docstring).

    ``config_for(address)`` gives the engine's configuration for each attempt
    (credentials and virtual host may differ per address); ``handler`` gets
    the connection's events.  An error for which ``is_final(error)`` is true
    (a refused login, say) ends the attempts at once and is raised as it is.
    ``on_connected(protocol, index)`` runs as each attempt succeeds; an
    exception from it makes the attempt a failed one.
    """

    def __init__(
        self,
        addresses: Sequence[Address],
        config_for: Callable[[Address], ConnectionConfig],
        handler: EventHandler,
        *,
        tls: TlsConfig | None = None,
        timeout: float | None = 30.0,
        backoff: Backoff | None = None,
        is_final: Callable[[BaseException], bool] = lambda error: False,
        on_connected: Callable[[AmqpProtocol, int], None] | None = None,
    ) -> None:
        if not addresses:
            raise ValueError("a connector needs at least one address")
        self.addresses = list(addresses)
        self.config_for = config_for
        self.handler = handler
        self.tls = tls
        self.timeout = timeout
        self.backoff = backoff or Backoff()
        self.is_final = is_final
        self.on_connected = on_connected

    async def connect_to(self, index: int) -> AmqpProtocol:
        """One attempt at the address at ``index``: its open arrived, or this raises
        (``OSError``, ``TimeoutError``, an :class:`~petrel.errors.AmqpError`)."""
        address = self.addresses[index]
        tls = self.tls if (address.tls or self.tls is not None) else None
        protocol = await connect(
            address, self.config_for(address), self.handler, tls=tls, timeout=self.timeout
        )
        if self.on_connected is not None:
            try:
                self.on_connected(protocol, index)
            except BaseException:
                protocol.abort_if_open()
                raise
        return protocol

    async def connect(
        self,
        start: int = 0,
        *,
        wait_first: bool = True,
        on_failure: Callable[[int, Address, BaseException], None] | None = None,
    ) -> tuple[AmqpProtocol, int]:
        """Go round the addresses from ``start`` until one opens; the protocol and the index
        of its address.  ``wait_first`` waits the first backoff delay before the first
        attempt (after a loss, not at the very start).  ``on_failure(attempt, address,
        error)`` hears of each failed attempt.  Raises :class:`GaveUp`, or a final error.
        """
        backoff = self.backoff
        count = len(self.addresses)
        attempt = 0
        error: BaseException | None = None
        while backoff.max_attempts is None or attempt < backoff.max_attempts:
            if attempt or wait_first:
                await asyncio.sleep(backoff.delay(attempt))
            index = (start + attempt) % count
            try:
                return await self.connect_to(index), index
            except (OSError, TimeoutError, AmqpError) as exc:
                if self.is_final(exc):
                    raise
                attempt += 1
                error = exc
                log.debug("attempt %d to %s failed: %s", attempt, self.addresses[index], exc)
                if on_failure is not None:
                    on_failure(attempt, self.addresses[index], exc)
        raise GaveUp(attempt, error)
