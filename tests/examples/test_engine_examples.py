"""The engine examples (``examples/engine/``), each run as a real program against peers we did
not write: Proton's C example broker and ``send``/``receive`` clients, and Proton's Python
client.  The blocking and trio clients also run against Petrel's own broker (with SASL PLAIN).

Every test checks that messages arrive exactly once, with their content.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.proton_client import connect, drain, fetch, send, sender, settle
from tests.helpers.proton_native import PACKAGES, build_examples
from tests.helpers.servers import BrokerProcess, run_broker, stop_process

pytestmark = pytest.mark.interop

EXAMPLES = Path(__file__).parents[2] / "examples" / "engine"

#: Petrel's broker with one user, for the clients' SASL PLAIN.
BROKER_CONFIG = """
[[users]]
name = "alice"
password = "secret"

[[access.rules]]
who = ["alice"]
addresses = ["#"]
rights = ["send", "receive", "create"]
"""


def test_every_engine_example_is_tested() -> None:
    assert {p.name for p in EXAMPLES.glob("*.py")} == {
        "blocking_client.py",
        "selectors_server.py",
        "trio_driver.py",
    }


# --- running things --------------------------------------------------------------------------


def run_example(name: str, *args: str | int) -> subprocess.CompletedProcess[str]:
    """Run one example to its end; its output, whatever the exit code."""
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


@contextlib.contextmanager
def listening(args: list[str], marker: str = "listening on ") -> Iterator[int]:
    """Start a server that prints ``listening on [HOST:]PORT``; yield the port, kill it after."""
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(marker):
                port = int(line.strip().rsplit(":", 1)[-1].rsplit(" ", 1)[-1])
                break
        else:
            raise RuntimeError(f"{args[0]} exited: {proc.stderr.read() if proc.stderr else ''}")
        yield port
        assert proc.poll() is None, f"{args} died: {proc.stderr.read() if proc.stderr else ''}"
    finally:
        stop_process(proc)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def assert_sent_and_received_once(result: subprocess.CompletedProcess[str], count: int) -> None:
    """The example sent ``count`` messages, all accepted, and received each exactly once."""
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"sent {count} messages, all accepted" in result.stdout
    received = collections.Counter(
        line.removeprefix("received: ")
        for line in result.stdout.splitlines()
        if line.startswith("received: ")
    )
    assert received == {f"message {i}": 1 for i in range(count)}, result.stdout


def leftovers(broker: BrokerProcess, address: str) -> list[object]:
    """What ``address`` still holds on Petrel's broker, taken with Proton's client (a drain)."""
    conn = connect(broker.url, user="alice", password="secret", allowed_mechs="PLAIN")
    try:
        rx = conn.create_receiver(address, name="leftovers")
        return [message.body for message, _ in drain(conn, rx)]
    finally:
        conn.close()


# --- peers -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def native() -> dict[str, Path]:
    built = build_examples()
    if built is None:
        pytest.skip(f"Proton's example sources or headers are missing (apt-get install {PACKAGES})")
    return built


@pytest.fixture(scope="module")
def c_broker(native: dict[str, Path]) -> Iterator[int]:
    """Proton's C example broker (SASL ANONYMOUS or none; it sends messages pre-settled)."""
    with listening([str(native["broker"]), "127.0.0.1", "0"]) as port:
        yield port


@pytest.fixture(scope="module")
def petrel_broker() -> Iterator[BrokerProcess]:
    with run_broker(BROKER_CONFIG) as broker:
        yield broker


@pytest.fixture(scope="module")
def toy_server() -> Iterator[int]:
    """``selectors_server.py`` with its defaults."""
    with listening([sys.executable, str(EXAMPLES / "selectors_server.py")]) as port:
        yield port


# --- the blocking client and the trio driver -------------------------------------------------


def test_blocking_client_against_protons_c_broker(c_broker: int) -> None:
    # The C broker grants a producer 5 credits at a time: 60 messages take 12 grants.
    result = run_example("blocking_client.py", "--port", c_broker, "--address", "bc", "--count", 60)
    assert_sent_and_received_once(result, 60)
    assert "authenticated with ANONYMOUS" in result.stderr


def test_blocking_client_against_petrel_broker_with_plain(petrel_broker: BrokerProcess) -> None:
    result = run_example(
        "blocking_client.py", "--port", petrel_broker.port, "--address", "bc.petrel",
        "--count", 60, "--user", "alice", "--password", "secret", "--drain",
    )  # fmt: skip
    assert_sent_and_received_once(result, 60)
    assert "authenticated with PLAIN as alice" in result.stderr
    assert "drained: 0 more" in result.stdout
    assert leftovers(petrel_broker, "bc.petrel") == []  # every delivery was settled


def test_blocking_client_says_why_the_peer_refused(petrel_broker: BrokerProcess) -> None:
    result = run_example(
        "blocking_client.py", "--port", petrel_broker.port, "--user", "alice", "--password", "no"
    )
    assert result.returncode == 1
    assert "error: the connection closed: amqp:unauthorized-access" in result.stderr


def test_trio_driver_against_protons_c_broker(c_broker: int) -> None:
    result = run_example("trio_driver.py", "--port", c_broker, "--address", "trio", "--count", 60)
    assert_sent_and_received_once(result, 60)


def test_trio_driver_against_petrel_broker_with_plain(petrel_broker: BrokerProcess) -> None:
    result = run_example(
        "trio_driver.py", "--port", petrel_broker.port, "--address", "trio.petrel",
        "--count", 60, "--user", "alice", "--password", "secret",
    )  # fmt: skip
    assert_sent_and_received_once(result, 60)
    assert leftovers(petrel_broker, "trio.petrel") == []


# --- the selectors server --------------------------------------------------------------------


def test_selectors_server_serves_protons_c_send_and_receive(
    native: dict[str, Path], toy_server: int
) -> None:
    port = str(toy_server)
    sent = subprocess.run(
        [str(native["send"]), "127.0.0.1", port, "c.queue", "300"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "300 messages sent and acknowledged" in sent.stdout
    got = subprocess.run(
        [str(native["receive"]), "127.0.0.1", port, "c.queue", "300"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert got.returncode == 0, got.stdout + got.stderr
    lines = got.stdout.splitlines()
    assert lines[-1] == "300 messages received"
    # send.c numbers its messages from 1 in a map body; receive.c prints each body.
    assert collections.Counter(lines[:-1]) == {f'{{"sequence"={i}}}': 1 for i in range(1, 301)}


def test_selectors_server_serves_protons_python_client(toy_server: int) -> None:
    conn = connect(f"amqp://127.0.0.1:{toy_server}")
    try:
        tx = sender(conn, "py.queue")
        for i in range(30):
            send(tx, f"m{i}")  # returns once the server settled it as accepted
        rx = conn.create_receiver("py.queue", name="py-rx")
        rx.link.flow(5)
        first = [fetch(conn, rx) for _ in range(5)]
        assert [m.body for m, _ in first] == [f"m{i}" for i in range(5)]
        settle(first[0][1], "release")  # back to the head of the queue
        for _, delivery in first[1:]:
            settle(delivery, "accept")
        rest = drain(conn, rx, limit=100)
        for _, delivery in rest:
            settle(delivery, "accept")
        assert [m.body for m, _ in rest] == ["m0"] + [f"m{i}" for i in range(5, 30)]
        assert drain(conn, rx, limit=100) == []  # a drain with nothing left ends at once
    finally:
        conn.close()


def test_selectors_server_stops_credit_when_a_queue_is_full() -> None:
    args = [sys.executable, str(EXAMPLES / "selectors_server.py"), "--max-depth", "5"]
    with listening(args) as port:
        conn = connect(f"amqp://127.0.0.1:{port}")
        try:
            tx = sender(conn, "full")
            conn.wait(lambda: tx.link.credit > 0, timeout=10, msg="credit")
            assert tx.link.credit == 5  # the queue's room, not the window of 10
            for i in range(5):
                send(tx, f"m{i}")
            assert tx.link.credit == 0
            rx = conn.create_receiver("full", name="full-rx")
            rx.link.flow(2)
            taken = [fetch(conn, rx) for _ in range(2)]
            for _, delivery in taken:
                settle(delivery, "accept")
            # Two messages gone: room for two more, and the producer hears of it.
            conn.wait(lambda: tx.link.credit == 2, timeout=10, msg="credit after consuming")
            assert [m.body for m, _ in taken] == ["m0", "m1"]
        finally:
            conn.close()


#: A consumer that takes 5 messages, settles none and waits to be killed.
HOLDER = textwrap.dedent(
    """
    import sys, time
    from tests.helpers.proton_client import connect, fetch
    conn = connect(sys.argv[1])
    rx = conn.create_receiver("vanish", name="holder")
    rx.link.flow(5)
    held = [fetch(conn, rx)[0].body for _ in range(5)]
    print("holding", *held, flush=True)
    time.sleep(600)
    """
)


def test_selectors_server_survives_peers_that_vanish(toy_server: int) -> None:
    url = f"amqp://127.0.0.1:{toy_server}"
    conn = connect(url)
    try:
        tx = sender(conn, "vanish")
        for i in range(10):
            send(tx, f"m{i}")
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, url],
            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2],
        )  # fmt: skip
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().split() == ["holding", "m0", "m1", "m2", "m3", "m4"]
        finally:
            holder.send_signal(signal.SIGKILL)  # gone without a close: its socket just ends
            holder.wait(timeout=10)
            if holder.stdout is not None:
                holder.stdout.close()
        # Garbage, and a client that hangs up at once: each ends only its own connection.
        # (The server answers the garbage in a select round that also saw the killed
        # consumer's socket end, which was earlier: so its messages are back by then.)
        with socket.create_connection(("127.0.0.1", toy_server), timeout=10) as junk:
            junk.sendall(b"GET / HTTP/1.1\r\n\r\n")
            answer = b""
            while chunk := junk.recv(100):
                answer += chunk
            assert answer == b"AMQP\x03\x01\x00\x00"  # the header it speaks, then it hangs up
        socket.create_connection(("127.0.0.1", toy_server), timeout=10).close()
        # What the killed consumer held is back, in order, ahead of the rest; nothing twice.
        rx = conn.create_receiver("vanish", name="after")
        got = drain(conn, rx, limit=100)
        for _, delivery in got:
            settle(delivery, "accept")
        assert [m.body for m, _ in got] == [f"m{i}" for i in range(10)]
    finally:
        conn.close()
