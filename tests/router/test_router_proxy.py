"""The router tests' own tools (tests/helpers/routers.py): the TCP proxy that cuts a link,
and the path costs a network spec implies.  The integration tests trust both."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Iterator

import pytest

from tests.helpers.routers import TcpProxy, expected_costs, parse_links, wait_until


@pytest.fixture
def echo() -> Iterator[int]:
    """A TCP echo server in a thread; its port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=echo_one, args=(conn,), daemon=True).start()

    def echo_one(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the proxy may reset it
            while data := conn.recv(4096):
                conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        server.close()


def roundtrip(port: int, data: bytes = b"ping") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        return sock.recv(4096)


def test_proxy_relays_cuts_and_heals(echo: int) -> None:
    proxy = TcpProxy(echo)
    try:
        assert roundtrip(proxy.port) == b"ping"
        held = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        held.sendall(b"one")
        assert held.recv(16) == b"one"
        proxy.cut()
        assert proxy.is_cut
        # The connection through it is closed, and a new one is refused.
        assert held.recv(16) == b""
        held.close()
        with pytest.raises(ConnectionRefusedError):
            roundtrip(proxy.port)
        proxy.heal()
        assert roundtrip(proxy.port, b"again") == b"again"
        assert proxy.connections == 3
    finally:
        proxy.cut()


def test_a_cut_proxy_drops_connections_waiting_to_write(echo: int) -> None:
    """A peer that stops reading (a SIGSTOPped router) cannot keep a cut link alive: the
    relay blocked writing to it is undone by the cut."""
    proxy = TcpProxy(echo)
    size = 64 * 1024 * 1024  # far more than the socket buffers on the way hold
    try:
        conn = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        writer = threading.Thread(target=_send_quietly, args=(conn, b"x" * size), daemon=True)
        writer.start()
        # We read nothing: the echo's answer fills the buffers and the proxy's relay blocks.
        wait_until(lambda: proxy.connections == 1, what="the connection through the proxy")
        writer.join(timeout=0.5)
        assert writer.is_alive()  # still blocked writing: everything is full
        proxy.cut()
        received = 0
        with contextlib.suppress(ConnectionResetError):  # or the end of what was in flight
            while chunk := conn.recv(1 << 20):  # a hang would end in TimeoutError
                received += len(chunk)
        assert received < size
        writer.join(timeout=10)
        assert not writer.is_alive()
        conn.close()
    finally:
        proxy.cut()


def _send_quietly(conn: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(data)


def test_links_spec() -> None:
    assert parse_links({"A-B": 5, "CD": 1, ("E", "F"): 2, "east-west": 3}) == {
        ("A", "B"): 5,
        ("C", "D"): 1,
        ("E", "F"): 2,
        ("east", "west"): 3,
    }
    with pytest.raises(ValueError):
        parse_links({"ABC": 1})


def test_expected_costs_of_the_mesh() -> None:
    mesh = parse_links({"A-B": 100, "A-C": 50, "A-D": 1, "B-C": 1, "B-D": 20, "C-D": 1})
    assert expected_costs(mesh, "A") == {"B": 3, "C": 2, "D": 1}
    without_cd = {link: cost for link, cost in mesh.items() if link != ("C", "D")}
    assert expected_costs(without_cd, "A") == {"B": 21, "C": 22, "D": 1}
    assert expected_costs({("A", "B"): 1}, "C") == {}


def test_wait_until_returns_the_value_or_says_what_it_waited_for() -> None:
    values = iter([0, None, 7])
    assert wait_until(lambda: next(values), interval=0) == 7
    with pytest.raises(AssertionError, match=re.escape("within 0.05 s: nothing\nit is 3")):
        wait_until(lambda: False, timeout=0.05, what="nothing", status=lambda: "it is 3")
