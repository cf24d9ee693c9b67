"""The engine fuzz harness: recorded real traffic, mutated, fed to fresh engines in both roles.

The corpus (``tests/fuzz/corpus``, made by ``bench/fuzz_record.py``) holds the byte
streams of real connections between Petrel's broker and Proton's Python client,
Proton's C and C++ examples, rhea and Petrel's client: ``X.c2s`` is what a client
sent (fed to a server-role engine), ``X.s2c`` what the broker sent (fed to a
client-role engine, which first replays the recorded client's begins, attaches
and credit).  :func:`mutate` changes a stream at the byte level (bit flips,
inserts, deletes, truncation, interesting bytes) and at the frame level (splices
of frames from other streams, repeated, dropped and swapped frames, size and
data-offset lies, AMQP type-code swaps).  :func:`run_input` feeds the result to
a fresh :class:`~petrel.engine.Connection` in chunks, answering its events the
way a server or client would, and returns an :class:`Outcome`.

What must hold for every input (:func:`check`):

- Nothing raises out of ``receive_data`` / ``next_event`` / ``data_to_send`` /
  ``handle_timer``; the harness's own commands may raise only
  :class:`~petrel.errors.LocalProtocolError` (the documented API-misuse error).
- The engine never ends with ``amqp:internal-error``: that is how it reports an
  exception of its own (a bug) caught at its boundary.
- A connection the engine ends carries a condition the spec defines and a
  description.
- Work is bounded by the input: events and output bytes grow at most linearly
  (:data:`MAX_EVENTS_PER_BYTE`, :data:`MAX_OUTPUT_PER_BYTE`).
- Memory: the tracemalloc peak of one input stays under
  :func:`memory_bound` (see there for why that bound).
- Determinism: the same seed gives the same inputs and the same outcomes
  (:attr:`Outcome.digest`).
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import signal
import struct
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from petrel.codec.constructors import NAMES
from petrel.engine import Connection, ConnectionConfig, ConnectionState, SaslConfig
from petrel.engine import events as ev
from petrel.errors import Condition, LocalProtocolError
from petrel.spec import Accepted, Attach, Begin, Flow, decode_from
from petrel.spec.framing import FRAME_HEADER

CORPUS_DIR = Path(__file__).parent / "corpus"

#: Every condition the spec defines (part 2.8.15-2.8.18).
CONDITIONS = frozenset(
    value for name, value in vars(Condition).items() if name.isupper() and isinstance(value, str)
)
#: Events per input byte: a frame is at least 8 bytes and yields at most a few events.
MAX_EVENTS_PER_BYTE = 1.0
#: Output per input byte, beyond a fixed allowance (the open, begin, close we always write).
#: Answers echo at most what they answer (an attach's terminus), plus one transfer per
#: flow the harness answers.
MAX_OUTPUT_PER_BYTE = 16
OUTPUT_ALLOWANCE = 16 * 1024
#: A watchdog for hangs only: an input takes microseconds to milliseconds.
HANG_SECONDS = 60.0

_BEFORE_OPEN = frozenset(
    s.value
    for s in (
        ConnectionState.START,
        ConnectionState.HDR_RCVD,
        ConnectionState.HDR_SENT,
        ConnectionState.HDR_EXCH,
    )
)
_ANSWER_PAYLOAD = b"\x00\x53\x77\xa1\x05hello"  # an amqp-value section: "hello"
_CONTAINER = "fuzz"


def memory_bound(size: int) -> int:
    """The most a fresh engine may allocate (tracemalloc peak) for an input of ``size`` bytes.

    A fixed 512 KiB covers the engine, its sessions and links, the codec's caches
    and the harness.  Per input byte, 256 bytes covers decoding: the codec's
    cheapest constructors make the largest Python objects per encoded byte (an
    empty ``sym8`` in an array is one byte on the wire and a ~60-byte ``Symbol``
    plus an 8-byte list slot; a ``map8`` pair of one-byte nulls is a dict entry
    of ~100 bytes), and an input is held at most twice (the pending chunks and
    their join).  What must never happen is memory following a *claimed* size (a
    frame size, a list count) rather than the bytes actually given: that is what
    this bound catches.
    """
    return 512 * 1024 + 256 * size


# --- the corpus -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    """One recorded stream and how to play it."""

    name: str
    server: bool
    """Fed to a server-role engine (a client's bytes) or a client-role one."""
    data: bytes
    frames: tuple[bytes, ...]
    """``data`` split into protocol headers and frames."""
    script: tuple[tuple[str, Any], ...] = ()
    """Client role: what the recorded client did first (begins, attaches, credit)."""
    sasl: bool = False


def split_frames(data: bytes) -> list[bytes]:
    """A recorded stream as its protocol headers and frames (a broken tail stays one piece)."""
    units: list[bytes] = []
    pos = 0
    while pos < len(data):
        if data[pos : pos + 4] == b"AMQP":
            units.append(data[pos : pos + 8])
            pos += 8
            continue
        if len(data) - pos < 8:
            break
        size = FRAME_HEADER.unpack_from(data, pos)[0]
        if size < 8:
            break
        units.append(data[pos : pos + size])
        pos += size
    if pos < len(data):
        units.append(data[pos:])
    return units


def _client_script(c2s: bytes) -> tuple[tuple[str, Any], ...]:
    """The recorded client's begins, attaches and first credit per link, as commands."""
    script: list[tuple[str, Any]] = []
    for unit in split_frames(c2s):
        if unit[:4] == b"AMQP" or len(unit) < 8:
            continue
        _, doff, frame_type, _ = FRAME_HEADER.unpack_from(unit, 0)
        if frame_type != 0 or doff * 4 >= len(unit):
            continue
        try:
            body, _ = decode_from(unit, doff * 4)
        except Exception:  # a recording is what it is
            continue
        if isinstance(body, Begin):
            script.append(("begin", None))
        elif isinstance(body, Attach):
            script.append(("attach", body))
        elif isinstance(body, Flow) and body.handle is not None and body.link_credit:
            script.append(("flow", (int(body.handle), int(body.link_credit))))
    return tuple(script)


def load_corpus(directory: Path = CORPUS_DIR) -> list[Seed]:
    """Every recorded stream, sorted by name (a fixed order keeps runs deterministic)."""
    seeds: list[Seed] = []
    for path in sorted(directory.glob("*.c2s")):
        c2s = path.read_bytes()
        s2c_path = path.with_suffix(".s2c")
        sasl = c2s.startswith(b"AMQP\x03")
        seeds.append(Seed(path.name, True, c2s, tuple(split_frames(c2s)), sasl=sasl))
        if s2c_path.exists():
            s2c = s2c_path.read_bytes()
            seeds.append(
                Seed(
                    s2c_path.name,
                    False,
                    s2c,
                    tuple(split_frames(s2c)),
                    script=_client_script(c2s),
                    sasl=sasl,
                )
            )
    return seeds


# --- mutations ------------------------------------------------------------------------------------

_BYTES = [0x00, 0x01, 0x02, 0x7F, 0x80, 0xFE, 0xFF, *sorted(NAMES)]
_CODES = sorted(NAMES)
_U32 = [0, 1, 7, 8, 9, 15, 16, 0xFF, 0x200, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFF]
_DOFF = [0, 1, 2, 3, 0x7F, 0xFF]


def _frame_level(units: list[bytes], rnd: random.Random, corpus: list[Seed]) -> None:
    n = len(units)
    choice = rnd.randrange(7)
    at = rnd.randrange(n) if n else 0
    if choice == 0 and corpus:  # splice in a frame from another stream
        other = rnd.choice(corpus).frames
        if other:
            units.insert(at, rnd.choice(other))
    elif choice == 1 and n:  # repeat a frame, up to 32 times
        units[at:at] = [units[at]] * rnd.randint(1, 32)
    elif choice == 2 and n:  # drop a frame
        del units[at]
    elif choice == 3 and n >= 2:  # swap two frames
        other = rnd.randrange(n)
        units[at], units[other] = units[other], units[at]
    elif choice == 4 and n and len(units[at]) >= 8 and units[at][:4] != b"AMQP":  # size lie
        size = rnd.choice(_U32) if rnd.random() < 0.5 else len(units[at]) + rnd.randint(-9, 9)
        units[at] = struct.pack(">I", size & 0xFFFFFFFF) + units[at][4:]
    elif choice == 5 and n and len(units[at]) >= 8 and units[at][:4] != b"AMQP":  # doff lie
        unit = bytearray(units[at])
        unit[4] = rnd.choice(_DOFF)
        units[at] = bytes(unit)
    elif n and len(units[at]) > 8:  # swap a type code in a frame body
        unit = bytearray(units[at])
        codes = [i for i in range(8, len(unit)) if unit[i] in NAMES]
        if codes:
            unit[rnd.choice(codes)] = rnd.choice(_CODES)
            units[at] = bytes(unit)


def _byte_level(buf: bytearray, rnd: random.Random) -> None:
    n = len(buf)
    pos = rnd.randrange(n) if n else 0
    choice = rnd.randrange(7)
    if choice == 0 and n:  # flip a bit
        buf[pos] ^= 1 << rnd.randrange(8)
    elif choice == 1 and n:  # an interesting byte
        buf[pos] = rnd.choice(_BYTES)
    elif choice == 2:  # insert random bytes
        buf[pos:pos] = rnd.randbytes(rnd.randint(1, 8))
    elif choice == 3 and n:  # delete a run
        del buf[pos : pos + rnd.randint(1, 8)]
    elif choice == 4:  # truncate
        del buf[rnd.randrange(n + 1) :]
    elif choice == 5 and n >= 4:  # an interesting 32-bit value anywhere
        pos = rnd.randrange(n - 3)
        buf[pos : pos + 4] = struct.pack(">I", rnd.choice(_U32))
    elif n:  # duplicate a run
        end = min(n, pos + rnd.randint(1, 64))
        buf[pos:pos] = buf[pos:end]


def mutate(seed: Seed, rnd: random.Random, corpus: list[Seed]) -> bytes:
    """One mutant of ``seed``: one to four mutations, frame-level or byte-level."""
    units = list(seed.frames)
    for _ in range(rnd.randint(0, 2)):
        _frame_level(units, rnd, corpus)
    buf = bytearray(b"".join(units))
    for _ in range(rnd.randint(0 if len(units) != len(seed.frames) else 1, 3)):
        _byte_level(buf, rnd)
    return bytes(buf)


# --- running one input ----------------------------------------------------------------------------


class Hang(BaseException):
    """An input took longer than :data:`HANG_SECONDS` (a loop that does not end)."""


@contextlib.contextmanager
def watchdog(seconds: float = HANG_SECONDS) -> Iterator[Callable[[], None]]:
    """Raise :class:`Hang` in the main thread if an input runs past ``seconds``: yields
    ``arm()``, to be called as each input starts (it restarts the clock)."""

    def expired(signum: int, frame: Any) -> None:
        raise Hang(f"an input ran for more than {seconds} s")

    def arm() -> None:
        signal.setitimer(signal.ITIMER_REAL, seconds)

    previous = signal.signal(signal.SIGALRM, expired)
    arm()
    try:
        yield arm
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    """What one input did to a fresh engine."""

    condition: str | None = None
    """The condition the connection ended with (``None``: still open, or closed cleanly)."""
    description: str | None = None
    closed: bool = False
    state: str = ""
    """The engine's connection state at the end."""
    events: int = 0
    output: int = 0
    local_errors: int = 0
    """Harness commands refused with LocalProtocolError (allowed, counted)."""
    peak_memory: int = 0
    endpoint_errors: list[str] = field(default_factory=list)
    """Sessions we ended and links we detached because of the input: ``session:<condition>``,
    ``link:<condition>``."""
    problems: list[str] = field(default_factory=list)
    digest: str = ""


def _config(seed: Seed) -> ConnectionConfig:
    if seed.server:
        sasl = SaslConfig(
            mechanisms=("PLAIN", "ANONYMOUS"),
            authenticator=lambda user, password, authzid: (
                user if password == "wonderland" else None
            ),
        )
    else:
        sasl = (
            SaslConfig(mechanisms=("PLAIN", "ANONYMOUS"), username="alice", password="wonderland")
            if seed.sasl
            else None
        )
    return ConnectionConfig(container_id=_CONTAINER, sasl=sasl, idle_timeout=30.0)


class _Player:
    """Answers the engine's events the way a simple server or client would."""

    def __init__(self, conn: Connection, outcome: Outcome) -> None:
        self.conn = conn
        self.outcome = outcome
        self.sent = 0

    def command(self, action: Any, *args: Any) -> None:
        try:
            action(*args)
        except LocalProtocolError:
            self.outcome.local_errors += 1

    def start_client(self, seed: Seed) -> None:
        conn = self.conn
        conn.open()
        sessions: list[Any] = []
        links: list[Any] = []
        for kind, arg in seed.script:
            try:
                if kind == "begin":
                    sessions.append(conn.begin_session())
                elif kind == "attach" and sessions:
                    if arg.role:  # the recorded client received on it
                        links.append(sessions[-1].attach_receiver(arg.name, arg.source))
                    else:
                        links.append(sessions[-1].attach_sender(arg.name, target=arg.target))
                elif kind == "flow":
                    handle, credit = arg
                    if handle < len(links) and links[handle].is_receiver:
                        links[handle].flow(min(credit, 1000))
            except LocalProtocolError:
                self.outcome.local_errors += 1

    def answer(self, event: Any) -> None:
        conn = self.conn
        kind = type(event)
        if kind is ev.ConnectionOpened:
            if conn.server:
                self.command(conn.open)
        elif kind is ev.ConnectionClosed:
            self.outcome.closed = True
            error = event.error
            if error is not None:
                self.outcome.condition = str(error.condition)
                self.outcome.description = error.description
        elif kind is ev.LinkAttachRequested:
            link = event.link
            self.command(link.attach)
            if link.is_receiver:
                self.command(link.flow, 100)
        elif kind is ev.LinkFlowed:
            link = event.link
            if link.is_sender and link.credit > 0 and self.sent < 16:
                self.sent += 1
                self.command(link.send, _ANSWER_PAYLOAD)
        elif kind is ev.DeliveryReceived:
            delivery = event.delivery
            if not delivery.settled:
                self.command(delivery.update, Accepted(), True)
        elif kind is ev.LinkDetached:
            if event.by_peer:
                self.command(event.link.detach, None, event.closed)
            elif event.error is not None:
                self._endpoint_error("link", event.error)
        elif kind is ev.SessionEnded:
            if event.by_peer:
                self.command(event.session.end)
            elif event.error is not None:
                self._endpoint_error("session", event.error)

    def _endpoint_error(self, level: str, error: Any) -> None:
        condition = str(error.condition)
        self.outcome.endpoint_errors.append(f"{level}:{condition}")
        if condition == Condition.INTERNAL_ERROR:
            self.outcome.problems.append(f"a {level} failed inside: {error.description}")
        elif condition not in CONDITIONS or not error.description:
            self.outcome.problems.append(f"a {level} ended with {condition!r}: {error.description}")


def _chunks(data: bytes, rnd: random.Random, chunking: str | None) -> Iterator[bytes]:
    """``data`` in pieces: frame by frame (some frames split), in random sizes, or whole."""
    mode = chunking or rnd.choice(("frames", "frames", "random", "whole"))
    if mode == "whole":
        yield data
    elif mode == "random":
        pos = 0
        while pos < len(data):
            step = rnd.randint(1, 512)
            yield data[pos : pos + step]
            pos += step
    else:
        for unit in split_frames(data):
            if len(unit) > 1 and rnd.random() < 0.2:
                cut = rnd.randrange(1, len(unit))
                yield unit[:cut]
                yield unit[cut:]
            else:
                yield unit


def run_input(seed: Seed, data: bytes, rnd: random.Random, chunking: str | None = None) -> Outcome:
    """Feed ``data`` to a fresh engine playing ``seed``'s role, in chunks, answering its events
    after each (``chunking``: ``frames``, ``random`` or ``whole``; by default ``rnd`` picks).

    Exceptions escaping the engine are not caught here: :func:`check_input` does that.
    """
    outcome = Outcome()
    digest = hashlib.blake2b(digest_size=12)
    conn = Connection(_config(seed), server=seed.server)
    player = _Player(conn, outcome)
    now = 0.0
    conn.handle_timer(now)
    if seed.server:
        conn.open()  # a server's open waits for the client's header
    else:
        player.start_client(seed)
    chunks = _chunks(data, rnd, chunking)
    while True:
        while (event := conn.next_event()) is not None:
            outcome.events += 1
            digest.update(type(event).__name__.encode())
            player.answer(event)
        out = conn.data_to_send()
        outcome.output += len(out)
        digest.update(out)
        chunk = next(chunks, None)
        if chunk is None or conn.finished:
            break
        conn.receive_data(chunk)
        now += 1.0
        conn.handle_timer(now)
    # Time runs out: the idle timeout ends whatever is still open, cleanly.
    conn.handle_timer(now + 1000.0)
    conn.handle_timer(now + 2000.0)
    while (event := conn.next_event()) is not None:
        outcome.events += 1
        player.answer(event)
    outcome.output += len(conn.data_to_send())
    outcome.state = conn.state.value
    digest.update(f"{outcome.condition}|{outcome.events}|{outcome.output}".encode())
    outcome.digest = digest.hexdigest()
    return outcome


def check_input(
    seed: Seed, data: bytes, rnd: random.Random, *, memory: bool, chunking: str | None = None
) -> Outcome:
    """Run one input and list what it broke in ``Outcome.problems`` (empty: all held)."""
    if memory:
        tracemalloc.start()
    try:
        try:
            outcome = run_input(seed, data, rnd, chunking)
        except Hang:
            raise
        except Exception as exc:  # exactly what the fuzzer looks for
            outcome = Outcome(problems=[f"raised out of the engine: {exc!r}"])
            outcome.digest = f"raised:{type(exc).__name__}"
            return outcome
        if memory:
            outcome.peak_memory = tracemalloc.get_traced_memory()[1]
    finally:
        if memory:
            tracemalloc.stop()
    problems = outcome.problems
    if outcome.condition == Condition.INTERNAL_ERROR:
        problems.append(f"the engine failed inside: {outcome.description}")
    elif outcome.condition is not None:
        if outcome.condition not in CONDITIONS:
            problems.append(f"closed with an unknown condition {outcome.condition!r}")
        if not outcome.description:
            problems.append(f"closed with {outcome.condition} and no description")
    if not outcome.closed and outcome.state not in _BEFORE_OPEN:
        # Before its open the engine has no idle timer: the server's open deadline
        # (limits.sasl_timeout, in petrel.server.listening) ends such connections.
        problems.append(f"the connection never ended (in {outcome.state}, idle timeout passed)")
    if outcome.events > MAX_EVENTS_PER_BYTE * len(data) + 64:
        problems.append(f"{outcome.events} events for {len(data)} bytes")
    if outcome.output > MAX_OUTPUT_PER_BYTE * len(data) + OUTPUT_ALLOWANCE:
        problems.append(f"{outcome.output} bytes written for {len(data)} bytes read")
    if memory and outcome.peak_memory > memory_bound(len(data)):
        problems.append(
            f"peak memory {outcome.peak_memory} B over the bound {memory_bound(len(data))} B"
        )
    return outcome


@dataclass
class Failure:
    """An input that broke a rule, with what reproduces it."""

    seed: str
    index: int
    data: bytes
    problems: list[str]


@dataclass
class Report:
    """What a fuzz run saw."""

    inputs: int = 0
    conditions: dict[str, int] = field(default_factory=dict)
    peak_memory: int = 0
    local_errors: int = 0
    failures: list[Failure] = field(default_factory=list)
    digest: str = ""


def fuzz(
    count: int,
    seed: int,
    *,
    corpus: list[Seed] | None = None,
    memory_every: int = 1,
    start: int = 0,
    report: Report | None = None,
) -> Report:
    """Run inputs ``start .. start+count`` of the run seeded with ``seed``.

    Input ``i`` depends only on ``(seed, i)``, so any input can be replayed alone
    (:func:`replay`).  Every ``memory_every``-th input is measured with tracemalloc.
    """
    corpus = corpus if corpus is not None else load_corpus()
    report = report or Report()
    digest = hashlib.blake2b(report.digest.encode(), digest_size=12)
    with watchdog() as arm:
        for index in range(start, start + count):
            arm()
            target, data, rnd = make_input(corpus, seed, index)
            measured = memory_every > 0 and index % memory_every == 0
            outcome = check_input(target, data, rnd, memory=measured)
            report.inputs += 1
            key = outcome.condition or ("closed" if outcome.closed else "open")
            report.conditions[key] = report.conditions.get(key, 0) + 1
            for key in outcome.endpoint_errors:
                report.conditions[key] = report.conditions.get(key, 0) + 1
            report.peak_memory = max(report.peak_memory, outcome.peak_memory)
            report.local_errors += outcome.local_errors
            digest.update(outcome.digest.encode())
            if outcome.problems:
                report.failures.append(Failure(target.name, index, data, outcome.problems))
    report.digest = digest.hexdigest()
    return report


def make_input(corpus: list[Seed], seed: int, index: int) -> tuple[Seed, bytes, random.Random]:
    """Input ``index`` of the run seeded with ``seed``: its corpus entry, bytes and chunking."""
    rnd = random.Random(f"{seed}:{index}")
    target = corpus[rnd.randrange(len(corpus))]
    data = target.data if rnd.random() < 0.02 else mutate(target, rnd, corpus)
    return target, data, rnd


def replay(seed: int, index: int) -> Outcome:
    """Run input ``index`` of the run seeded with ``seed`` again (for debugging a failure)."""
    corpus = load_corpus()
    target, data, rnd = make_input(corpus, seed, index)
    return check_input(target, data, rnd, memory=True)
