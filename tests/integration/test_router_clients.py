"""Clients on a line of three routers, A-B-C: a receiver that roams from router to router
while a sender streams, and Qpid Proton's own example programs with their two halves on
different routers.

Proton's examples (Debian's ``libqpid-proton11-dev-examples``, as
tests/interop/test_proton_servers.py uses them) run unchanged but for where
they connect: ``client.py`` on A sends requests to ``server.py`` on C and
gets the answers on its dynamic reply address; ``simple_send.py`` on A
sends to ``simple_recv.py`` on C; ``helloworld.py`` (one connection, its
URL written into the source) says hello through B.
"""

from __future__ import annotations

import collections
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.proton_native import EXAMPLES
from tests.helpers.routers import RouterNetwork, router_network
from tests.helpers.servers import stop_process
from tests.helpers.traffic import Traffic

PYTHON_EXAMPLES = EXAMPLES / "python"
REQUESTS = [
    "Twas brillig, and the slithy toves",
    "Did gire and gymble in the wabe.",
    "All mimsy were the borogroves,",
    "And the mome raths outgrabe.",
]


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterNetwork]:
    with router_network({"A-B": 1, "B-C": 1}, log_dir=tmp_path_factory.mktemp("line")) as network:
        yield network


def test_receiver_roaming_from_router_to_router(net: RouterNetwork) -> None:
    """The receiver moves C, B, A, C while the sender on A streams unsettled: each place
    gets messages along the right path, and every message is accepted at least once."""
    traffic = Traffic("roaming")
    try:
        traffic.start_sending(net["A"].url, rate=200)
        stops = ["C", "B", "A", "C"]
        for n, router in enumerate(stops):
            name = traffic.add_receiver(net[router].url, f"at-{router}-{n}", trace=True)
            traffic.pump(
                lambda name=name: len(traffic.received(name)) >= 20,
                what=f"20 messages on the receiver at {router}",
            )
            traffic.close_receiver(name)
        traffic.stop_sending()
        name = traffic.add_receiver(net["B"].url, "last", trace=True)
        traffic.pump(lambda: traffic.done, what="every message settled")
        assert traffic.all_accepted(), traffic.status()
        assert set(traffic.copies) == set(range(traffic.issued))
        assert not traffic.rejected and not traffic.errors, traffic.status()
        paths = {"A": ("A",), "B": ("A", "B"), "C": ("A", "B", "C")}
        for arrival in traffic.arrivals:
            where = arrival.receiver.split("-")[1] if arrival.receiver != "last" else "B"
            assert arrival.trace == paths[where], arrival
        per_stop = collections.Counter(a.receiver for a in traffic.arrivals)
        assert all(per_stop[f"at-{r}-{n}"] >= 20 for n, r in enumerate(stops)), per_stop
    finally:
        traffic.close()


def _run(args: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _host_port(net: RouterNetwork, router: str) -> str:
    return f"127.0.0.1:{net[router].port}"


def test_proton_client_and_server_examples_on_different_routers(net: RouterNetwork) -> None:
    address = "examples.upper"
    server = subprocess.Popen(
        [sys.executable, str(PYTHON_EXAMPLES / "server.py"), "-a",
         f"{_host_port(net, 'C')}/{address}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        net.wait_for_address("A", address, ["C"])
        client = _run(
            [str(PYTHON_EXAMPLES / "client.py"), "-a", f"{_host_port(net, 'A')}/{address}"]
        )
        assert client.returncode == 0, client.stderr
        lines = client.stdout.splitlines()
        assert lines == [f"{request} => {request.upper()}" for request in REQUESTS]
    finally:
        stop_process(server, timeout=5)
        out, err = server.communicate()
    assert "Traceback" not in err, err
    assert out.count("Received") == len(REQUESTS)
    # The requests came to C through B; the reply address was A's.
    assert "reply_to='_topo/0/A/temp." in out or 'reply_to="_topo/0/A/temp.' in out, out


def test_proton_simple_send_and_receive_on_different_routers(net: RouterNetwork) -> None:
    address = "examples.simple"
    count = 25
    receiver = subprocess.Popen(
        [sys.executable, str(PYTHON_EXAMPLES / "simple_recv.py"), "-a",
         f"{_host_port(net, 'C')}/{address}", "-m", str(count)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        net.wait_for_address("A", address, ["C"])
        sender = _run(
            [str(PYTHON_EXAMPLES / "simple_send.py"), "-a", f"{_host_port(net, 'A')}/{address}",
             "-m", str(count)]
        )  # fmt: skip
        assert sender.returncode == 0, sender.stderr
        assert "all messages confirmed" in sender.stdout
        out, err = receiver.communicate(timeout=30)
    finally:
        stop_process(receiver, timeout=5)
    assert receiver.returncode == 0, err
    assert out.splitlines() == [str({"sequence": n}) for n in range(1, count + 1)]


def test_proton_helloworld_through_a_router(net: RouterNetwork, tmp_path: Path) -> None:
    source = (PYTHON_EXAMPLES / "helloworld.py").read_text()
    shipped = 'HelloWorld("localhost:5672", "examples")'
    assert shipped in source, "helloworld.py changed: no URL to redirect"
    script = tmp_path / "helloworld.py"
    script.write_text(source.replace(shipped, f'HelloWorld("{_host_port(net, "B")}", "hello")'))
    result = _run([str(script)])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Hello World!"]
