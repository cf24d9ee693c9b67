"""Traffic for router tests: one Proton sender and its receivers, driven from the test's
thread, numbering, resending and recording every message (split from routers.py)."""

from __future__ import annotations

import collections
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from proton import Delivery, Message
from proton.handlers import MessagingHandler
from proton.reactor import AtMostOnce, Container, LinkOption

from tests.helpers.proton_client import Capabilities
from tests.helpers.routers import ANN_INGRESS, ANN_TRACE, CAP_TRACE, TIMEOUT


@dataclass(frozen=True)
class Arrival:
    """One copy a receiver got."""

    seq: int
    receiver: str
    trace: tuple[str, ...]
    ingress: str | None
    at: float


class Traffic(MessagingHandler):
    """Numbered messages (body and message-id ``n``) from one sender to ``address``,
    and the receivers they reach, in one Proton container the test thread drives
    with :meth:`pump`.

    The sender sends unsettled (``presettled=False``) and resends each message
    that comes back released or modified, so every one is accepted at least
    once; ``total=None`` streams until :meth:`stop_sending`, ``rate`` limits
    it (messages per second).  Receivers accept every message.
    """

    def __init__(self, address: str, *, prefetch: int = 200) -> None:
        super().__init__(prefetch=prefetch, auto_accept=True, auto_settle=True)
        self.address = address
        self.container = Container(self)
        self.container.timeout = 0.01
        self.container.start()
        self.sender: Any = None
        self.sender_connection: Any = None
        self.receivers: dict[str, Any] = {}
        self.total: int | None = 0
        self.rate: float | None = None
        self.window: int | None = None
        self.presettled = False
        self.sending = False
        self._started_at = 0.0
        self.issued = 0
        self.resend: collections.deque[int] = collections.deque()
        self.unsettled: dict[Any, int] = {}
        self.sends = 0
        self.accepted: collections.Counter[int] = collections.Counter()
        self.released = 0
        self.modified = 0
        self.rejected: list[int] = []
        self.arrivals: list[Arrival] = []
        self.copies: collections.Counter[int] = collections.Counter()
        self.errors: list[str] = []
        self._names = 0

    # --- links ----------------------------------------------------------------------------

    def _connect(self, url: str) -> Any:
        return self.container.connect(url, reconnect=False, heartbeat=None)

    def add_receiver(
        self, url: str, name: str | None = None, *, trace: bool = True, address: str | None = None
    ) -> str:
        """Attach a receiver on its own connection to ``url``; its name."""
        self._names += 1
        name = name or f"rx{self._names}"
        options: list[LinkOption] | None = [Capabilities(CAP_TRACE)] if trace else None
        conn = self._connect(url)
        self.receivers[name] = self.container.create_receiver(
            conn, address or self.address, name=name, options=options
        )
        return name

    def receiver_attached(self, name: str) -> bool:
        link = self.receivers[name]
        return bool(link.state & link.REMOTE_ACTIVE)

    def close_receiver(self, name: str) -> None:
        """Close a receiver's connection (and wait until it is closed)."""
        link = self.receivers.pop(name)
        conn = link.connection
        conn.close()
        self.pump(lambda: bool(conn.state & conn.REMOTE_CLOSED), what=f"closing {name}")

    def start_sending(
        self,
        url: str,
        *,
        total: int | None = None,
        rate: float | None = None,
        window: int | None = None,
        presettled: bool = False,
    ) -> None:
        """Attach the sender on its own connection to ``url`` and start sending."""
        self.total, self.rate, self.window, self.presettled = total, rate, window, presettled
        self.sender_connection = self._connect(url)
        options: list[LinkOption] | None = [AtMostOnce()] if presettled else None
        self.sender = self.container.create_sender(
            self.sender_connection, self.address, name="tx", options=options
        )
        self.sending = True
        self._started_at = time.monotonic()

    def stop_sending(self) -> None:
        """Send no new messages (resends go on); the total is what was issued."""
        self.total = self.issued

    # --- state ----------------------------------------------------------------------------

    @property
    def credit(self) -> int:
        return int(self.sender.credit) if self.sender is not None else 0

    @property
    def done(self) -> bool:
        """Every message issued and settled with a final outcome, nothing to resend."""
        return (
            self.total is not None
            and self.issued >= self.total
            and not self.unsettled
            and not self.resend
        )

    def all_accepted(self) -> bool:
        return self.done and all(self.accepted[n] for n in range(self.issued))

    def received(self, receiver: str | None = None) -> list[int]:
        return [a.seq for a in self.arrivals if receiver is None or a.receiver == receiver]

    def duplicates(self) -> int:
        return sum(count - 1 for count in self.copies.values() if count > 1)

    def paths(self, since: int = 0) -> list[tuple[str, ...]]:
        """The traces of the copies received (from the ``since``-th on), consecutive
        repeats removed."""
        out: list[tuple[str, ...]] = []
        for arrival in self.arrivals[since:]:
            if not out or out[-1] != arrival.trace:
                out.append(arrival.trace)
        return out

    def status(self) -> str:
        return (
            f"  issued {self.issued}/{self.total}, sends {self.sends}, unsettled"
            f" {len(self.unsettled)}, to resend {len(self.resend)}, accepted"
            f" {len(self.accepted)}, released {self.released}, modified {self.modified},"
            f" rejected {len(self.rejected)}, copies {len(self.arrivals)}, credit"
            f" {self.credit}, last paths {self.paths()[-3:]}, errors {self.errors[-3:]}"
        )

    # --- driving --------------------------------------------------------------------------

    def pump(
        self, until: Callable[[], Any] | None = None, *, timeout: float = TIMEOUT, what: str = ""
    ) -> None:
        """Run the container until ``until()`` holds (or for ``timeout`` s when ``None``);
        ``AssertionError`` with the traffic's state when the deadline passes first."""
        deadline = time.monotonic() + timeout
        while True:
            self.container.process()
            self._fill()
            if until is not None and until():
                return
            if time.monotonic() > deadline:
                if until is None:
                    return
                raise AssertionError(
                    f"not reached within {timeout} s: {what or 'the condition'}\n{self.status()}"
                )

    def close(self) -> None:
        for link in list(self.receivers.values()):
            link.connection.close()
        if self.sender_connection is not None:
            self.sender_connection.close()
        with contextlib.suppress(Exception):
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline and self.container.process():
                if all(
                    c.state & c.LOCAL_CLOSED and c.state & c.REMOTE_CLOSED
                    for c in self._connections()
                ):
                    break
        self.container.stop()

    def _connections(self) -> list[Any]:
        conns = [link.connection for link in self.receivers.values()]
        if self.sender_connection is not None:
            conns.append(self.sender_connection)
        return conns

    def _fill(self) -> None:
        sender = self.sender
        if sender is None or not self.sending:
            return
        if not (sender.state & sender.REMOTE_ACTIVE) or sender.state & sender.LOCAL_CLOSED:
            return
        while sender.credit > 0:
            if self.window is not None and len(self.unsettled) >= self.window:
                return
            if self.resend:
                seq = self.resend.popleft()
            elif self.total is None or self.issued < self.total:
                if self.rate is not None:
                    allowed = (time.monotonic() - self._started_at) * self.rate
                    if self.issued >= allowed:
                        return
                seq = self.issued
                self.issued += 1
            else:
                return
            delivery = sender.send(Message(id=seq, body=seq))
            self.sends += 1
            if self.presettled:
                self.accepted[seq] += 1
            else:
                self.unsettled[delivery] = seq

    # --- Proton's events ------------------------------------------------------------------

    def on_sendable(self, event: Any) -> None:
        self._fill()

    def on_accepted(self, event: Any) -> None:
        seq = self.unsettled.pop(event.delivery, None)
        if seq is not None:
            self.accepted[seq] += 1

    def on_rejected(self, event: Any) -> None:
        seq = self.unsettled.pop(event.delivery, None)
        if seq is not None:
            self.rejected.append(seq)

    def on_released(self, event: Any) -> None:  # released and modified both
        seq = self.unsettled.pop(event.delivery, None)
        if seq is None:
            return
        if event.delivery.remote_state == Delivery.MODIFIED:
            self.modified += 1
        else:
            self.released += 1
        self.resend.append(seq)

    def on_message(self, event: Any) -> None:
        message = event.message
        annotations = message.annotations or {}
        trace = tuple(str(hop) for hop in annotations.get(ANN_TRACE) or ())
        ingress = annotations.get(ANN_INGRESS)
        seq = int(message.body)
        self.copies[seq] += 1
        self.arrivals.append(
            Arrival(
                seq,
                event.receiver.name,
                trace,
                str(ingress) if ingress is not None else None,
                time.monotonic(),
            )
        )

    def on_link_error(self, event: Any) -> None:
        self.errors.append(f"link {event.link.name}: {event.link.remote_condition}")

    def on_connection_error(self, event: Any) -> None:
        self.errors.append(f"connection: {event.connection.remote_condition}")

    def on_transport_error(self, event: Any) -> None:
        self.errors.append(f"transport: {event.transport.condition}")

    def on_disconnected(self, event: Any) -> None:
        conn = event.connection
        if conn is not None and not conn.state & conn.LOCAL_CLOSED:
            self.errors.append("disconnected")
