"""TLS everywhere, with certificates both ways, between real processes.

- Proton's Python client authenticates with SASL EXTERNAL (its certificate's
  CN) to a ``petrel broker`` and to a ``petrel router``; Proton's C++
  ``ssl_client_cert`` example does the same to the broker.
- Routers talk to routers, and a router to a broker (a waypoint), over
  ``amqps://``: each side checks the other's certificate, the dialling router
  authenticates with EXTERNAL, and messages flow end to end.
- SIGHUP makes a broker read its certificate again: a client trusting only the
  new CA gets in afterwards, a connection opened before carries on.
- Bad peers on the subprocess (uvloop) broker are logged, one line each.

The listeners that check certificates allow no anonymous clients, so EXTERNAL
is the only way in; the logs show who came in (``user 'app-7' (EXTERNAL)``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from proton import SSL, ConnectionException, Delivery, Message, SSLDomain
from proton.utils import BlockingConnection

from tests.helpers.certs import Authority, Pem
from tests.helpers.proton_client import (
    TIMEOUT,
    bodies,
    drain,
    flush,
    receiver,
    send,
    sender,
    settle,
)
from tests.helpers.proton_native import PACKAGES, build_ssl_client_cert
from tests.helpers.routers import PETREL, RouterProcess, wait_until
from tests.helpers.servers import BrokerProcess, free_port, run_broker

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not SSL.present(), reason="Proton was built without SSL"),
]


# --- certificates -----------------------------------------------------------------------------


@dataclass
class Pki:
    ca: Authority
    server: Pem
    """For every listener here: localhost and 127.0.0.1, CN localhost."""
    app: Pem
    """Proton's client: CN app-7."""
    routers: dict[str, Pem]
    """Each router's client certificate for its connectors: CN router-<id>."""
    example_dir: str
    """The certificates in the layout Proton's C++ example reads (see test_tls.py)."""
    second_ca: Authority
    rotated: Pem
    """A server certificate from ``second_ca``, for the SIGHUP test."""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    ca = Authority(root, "ca")
    server = ca.issue("server", "localhost", "127.0.0.1", common_name="localhost")
    app = ca.issue("app", common_name="app-7", organization_name="Example")
    routers = {rid: ca.issue(f"router-{rid}", common_name=f"router-{rid}") for rid in "ABC"}
    example = root / "example"
    example.mkdir()
    client = ca.issue("example-client", common_name="petrel-example-client")
    for name, pem in (("server", server), ("client", client)):
        # The example trusts its peer's certificate file as a CA list: the CA goes in it.
        chain = Path(pem.cert).read_bytes() + Path(ca.cert).read_bytes()
        (example / f"t{name}-certificate.pem").write_bytes(chain)
        (example / f"t{name}-private-key.pem").write_bytes(Path(pem.key).read_bytes())
    second = Authority(root, "second")
    rotated = second.issue("rotated", "localhost", "127.0.0.1", common_name="localhost")
    return Pki(ca, server, app, routers, str(example), second, rotated)


def tls_table(pki: Pki, *, cert: str | None = None, key: str | None = None, **more: str) -> str:
    """A listener's ``tls`` inline table: our server certificate, client certificates from
    the CA required and mapped to their CN."""
    table = {
        "cert_file": cert or pki.server.cert,
        "key_file": key or pki.server.key,
        "ca_file": pki.ca.cert,
        "require_client_cert": "true",
        "external_identity": "cn",
        **more,
    }
    items = ", ".join(
        f"{k} = {v}" if v in ("true", "false") or v.replace(".", "").isdigit() else f'{k} = "{v}"'
        for k, v in table.items()
    )
    return "{ " + items + " }"


def connector_tls(pki: Pki, router_id: str) -> str:
    pem = pki.routers[router_id]
    return (
        f'{{ ca_file = "{pki.ca.cert}", cert_file = "{pem.cert}", key_file = "{pem.key}", '
        "verify_hostname = false }"
    )


def proton_tls(
    port: int, ca: str, pem: Pem | None = None, *, mechs: str = "EXTERNAL"
) -> BlockingConnection:
    """Proton over TLS to 127.0.0.1:``port``, checking the server's certificate and name
    (``localhost``) against ``ca``, showing ``pem``, allowing only ``mechs``."""
    domain = SSLDomain(SSLDomain.MODE_CLIENT)
    domain.set_trusted_ca_db(ca)
    domain.set_peer_authentication(SSLDomain.VERIFY_PEER_NAME)
    if pem is not None:
        domain.set_credentials(pem.cert, pem.key, None)
    return BlockingConnection(
        f"amqps://127.0.0.1:{port}",
        timeout=TIMEOUT,
        ssl_domain=domain,
        virtual_host="localhost",
        allowed_mechs=mechs,
    )


def round_trip(conn: BlockingConnection, address: str, body: str = "over TLS") -> None:
    send(sender(conn, address), body)
    got = drain(conn, receiver(conn, address))
    assert bodies(got) == [body]
    settle(got[0][1])


def routed(
    on_tx: BlockingConnection,
    on_rx: BlockingConnection,
    address: str,
    body: str,
    known: Callable[[], bool] = lambda: True,
) -> None:
    """Send ``body`` to ``address`` on ``on_tx`` and receive it on ``on_rx`` through routers:
    once ``known()`` (the sender's router knows the receiver) and the sender has credit,
    the receiver accepts, and the sender sees that outcome (routers settle end to end)."""
    rx = on_rx.create_receiver(address, name=f"rx-{address}")
    wait_until(known, timeout=30, what=f"the receiver for {address} known across the network")
    tx = sender(on_tx, address)
    on_tx.wait(lambda: tx.link.credit > 0, timeout=30, msg=f"credit for {address}")
    delivery = tx.link.send(Message(body=body))
    # A blocking connection moves its bytes only while it is run: with two of them, the
    # sender's runs in a thread (waiting for the outcome) while this one receives.
    outcome = threading.Thread(
        target=on_tx.wait, args=(lambda: bool(delivery.remote_state),), kwargs={"timeout": 30}
    )
    if on_tx is not on_rx:
        outcome.start()
    assert rx.receive(timeout=TIMEOUT).body == body
    rx.accept()
    if on_tx is on_rx:
        on_tx.wait(lambda: bool(delivery.remote_state), timeout=TIMEOUT, msg="the outcome")
    else:
        while outcome.is_alive():
            flush(on_rx)  # the accept goes out
            outcome.join(0.05)
    assert delivery.remote_state == Delivery.ACCEPTED


def knows(router: RouterProcess, address: str) -> bool:
    """Whether ``router`` knows of receivers for ``address`` on other routers (management
    over its plain loopback listener, where anonymous clients may manage)."""
    import petrel
    from petrel.management import BlockingManagementClient

    with petrel.blocking.connect(router.url, reconnect=False, timeout=5) as conn:
        rows = BlockingManagementClient(conn, timeout=5).query_all("petrel.router.address", [])
        return any(
            row.get("address") == address and row.get("remote_routers") for row in rows.as_dicts()
        )


def wait_for_log(log: Callable[[], str], text: str, timeout: float = 20.0) -> None:
    wait_until(lambda: text in log(), timeout=timeout, what=f"a log line saying {text!r}")


# --- processes --------------------------------------------------------------------------------


@dataclass
class TlsBroker:
    process: BrokerProcess
    tls_port: int


@contextlib.contextmanager
def tls_broker(pki: Pki, *, cert: str | None = None, key: str | None = None) -> Iterator[TlsBroker]:
    """A broker with a plain loopback listener (for readiness) and an ``amqps://`` one that
    takes only EXTERNAL with a certificate from the CA."""
    plain, secure = free_port(), free_port()
    config = (
        f'[[listeners]]\nurl = "amqp://127.0.0.1:{plain}"\n\n'
        f'[[listeners]]\nurl = "amqps://127.0.0.1:{secure}"\nallow_anonymous = false\n'
        f"tls = {tls_table(pki, cert=cert, key=key, reload_interval='0')}\n"
    )
    with run_broker(config, port=plain) as process:
        yield TlsBroker(process, secure)


class ConfiguredRouter(RouterProcess):
    """A router run from its config file alone (every listener and connector in it)."""

    def command(self) -> list[str]:
        path = self.log_path.with_suffix(".toml")
        path.write_text(self.config or "")
        return [str(PETREL), "router", "--config", str(path), "--no-http", "--log-level", "info"]


@contextlib.contextmanager
def tls_router(
    pki: Pki, router_id: str, directory: Path, extra: str = "", *, inter_router: bool = True
) -> Iterator[tuple[RouterProcess, int, int]]:
    """A router with a plain client listener, an ``amqps://`` client listener (EXTERNAL
    only) and, with ``inter_router``, an ``amqps://`` inter-router listener (EXTERNAL
    only); yields it, the secure client port and the inter-router port."""
    plain, secure, inter = free_port(), free_port(), free_port()
    config = (
        f'[router]\nid = "{router_id}"\n\n'
        f'[[listeners]]\nurl = "amqp://127.0.0.1:{plain}"\n\n'
        f'[[listeners]]\nurl = "amqps://127.0.0.1:{secure}"\nallow_anonymous = false\n'
        f"tls = {tls_table(pki)}\n\n"
    )
    if inter_router:
        config += (
            f'[[listeners]]\nurl = "amqps://127.0.0.1:{inter}"\nrole = "inter-router"\n'
            f"allow_anonymous = false\ntls = {tls_table(pki)}\n\n"
        )
    config += extra
    router = ConfiguredRouter(router_id, plain, inter, directory / f"router-{router_id}.log")
    router.config = config
    try:
        router.start()
        yield router, secure, inter
    finally:
        router.stop()


# --- Proton's clients with EXTERNAL -----------------------------------------------------------


def test_proton_authenticates_with_its_certificate_to_the_broker(pki: Pki) -> None:
    with tls_broker(pki) as broker:
        conn = proton_tls(broker.tls_port, pki.ca.cert, pki.app)
        try:
            round_trip(conn, "tls.external")
        finally:
            conn.close()
        wait_for_log(broker.process.log, "user 'app-7' (EXTERNAL)")
        # Without a certificate there is no way in: TLS refuses it.
        with pytest.raises(ConnectionException, match="SSL"):
            proton_tls(broker.tls_port, pki.ca.cert, mechs="ANONYMOUS").close()


def test_proton_authenticates_with_its_certificate_to_a_router(pki: Pki, tmp_path: Path) -> None:
    with tls_router(pki, "A", tmp_path, inter_router=False) as (router, secure, _):
        conn = proton_tls(secure, pki.ca.cert, pki.app)
        try:
            routed(conn, conn, "tls.routed", "routed over TLS")
        finally:
            conn.close()
        wait_for_log(router.log, "user 'app-7' (EXTERNAL)")


@pytest.fixture(scope="module")
def ssl_example() -> dict[str, Path]:
    built = build_ssl_client_cert()
    if built is None:
        pytest.skip(f"Proton's C++ example sources or headers are missing ({PACKAGES})")
    return built


def test_protons_cpp_ssl_client_cert_example_logs_in_with_external(
    pki: Pki, ssl_example: dict[str, Path]
) -> None:
    """The example allows SASL EXTERNAL only: it gets through TLS both ways, logs in as
    its certificate's CN, and its "Hello World!" reaches the queue.

    It closes its sender right after sending and closes the connection when the accept
    comes: the broker's disposition follows its answer to that detach (the delivery is
    the session's until settled), and the example exits 0 by itself."""
    with tls_broker(pki) as broker:
        env = dict(os.environ, PROTON_EXAMPLE_URL=f"amqps://127.0.0.1:{broker.tls_port}/example")
        example = subprocess.Popen(
            [str(ssl_example["ssl_client_cert_to"]), pki.example_dir],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            out, err = example.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            example.kill()
            out, err = example.communicate(timeout=10)
            pytest.fail(f"the example never heard its message accepted:\n{out}{err}")
        assert example.returncode == 0, out + err
        assert "connected via SSL.  Server certificate identity CN=localhost" in out, out + err
        wait_for_log(broker.process.log, "user 'petrel-example-client' (EXTERNAL)")
        conn = proton_tls(broker.tls_port, pki.ca.cert, pki.app)
        try:
            got = drain(conn, receiver(conn, "example"))
            assert bodies(got) == ["Hello World!"]
            settle(got[0][1])
            flush(conn)
        finally:
            conn.close()


# --- routers to routers, routers to brokers ---------------------------------------------------


def test_routers_connect_over_tls_with_external(pki: Pki, tmp_path: Path) -> None:
    """B dials A's inter-router listener over amqps (each checks the other's certificate,
    B logs in as router-B); a message sent on A reaches a receiver on B."""
    with tls_router(pki, "A", tmp_path) as (a, a_secure, a_inter):
        dial = (
            f'[[connectors]]\nurl = "amqps://127.0.0.1:{a_inter}"\nrole = "inter-router"\n'
            f"tls = {connector_tls(pki, 'B')}\n"
        )
        with tls_router(pki, "B", tmp_path, dial) as (_, b_secure, _):
            wait_for_log(a.log, "user 'router-B' (EXTERNAL)")
            on_b = proton_tls(b_secure, pki.ca.cert, pki.app)
            on_a = proton_tls(a_secure, pki.ca.cert, pki.app)
            try:
                routed(on_a, on_b, "across", "hop by hop over TLS", lambda: knows(a, "across"))
            finally:
                on_a.close()
                on_b.close()


def test_a_router_reaches_a_broker_over_tls_with_external(pki: Pki, tmp_path: Path) -> None:
    """A waypoint: the router's route-container connector dials the broker's amqps listener
    with its certificate (EXTERNAL, router-A); what is sent to the router lands in the
    broker's queue."""
    with tls_broker(pki) as broker:
        extra = (
            f'[[connectors]]\nname = "broker1"\nurl = "amqps://127.0.0.1:{broker.tls_port}"\n'
            f'role = "route-container"\ntls = {connector_tls(pki, "A")}\n\n'
            '[[autolinks]]\naddress = "orders"\nconnector = "broker1"\ndirection = "out"\n\n'
            '[[addresses]]\nprefix = "orders"\nwaypoint = true\n'
        )
        with tls_router(pki, "A", tmp_path, extra, inter_router=False) as (_, secure, _):
            wait_for_log(broker.process.log, "user 'router-A' (EXTERNAL)")
            on_router = proton_tls(secure, pki.ca.cert, pki.app)
            try:
                tx = sender(on_router, "orders")
                # Credit comes once the autolink to the broker is attached.
                on_router.wait(lambda: tx.link.credit > 0, timeout=30, msg="credit for orders")
                send(tx, "through the router")
            finally:
                on_router.close()
            on_broker = proton_tls(broker.tls_port, pki.ca.cert, pki.app)
            try:
                got = drain(on_broker, receiver(on_broker, "orders"))
                assert bodies(got) == ["through the router"]
                settle(got[0][1])
            finally:
                on_broker.close()


# --- reload and bad peers on a broker process -------------------------------------------------


def test_sighup_gives_new_connections_the_new_certificate(pki: Pki, tmp_path: Path) -> None:
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    pki.server.copy_to(cert, key)
    with tls_broker(pki, cert=str(cert), key=str(key)) as broker:
        old = proton_tls(broker.tls_port, pki.ca.cert, pki.app)
        try:
            round_trip(old, "before.reload")
            with pytest.raises(ConnectionException, match="SSL"):
                proton_tls(broker.tls_port, pki.second_ca.cert, pki.app).close()

            pki.rotated.copy_to(cert, key)
            os.kill(broker.process.pid, signal.SIGHUP)
            wait_for_log(broker.process.log, "TLS certificate and CA files reloaded")

            new = proton_tls(broker.tls_port, pki.second_ca.cert, pki.app)
            round_trip(new, "after.reload.new")
            new.close()
            round_trip(old, "after.reload.old")  # opened before the reload: still good
        finally:
            old.close()
        assert broker.process.proc.poll() is None  # SIGHUP did not stop it


def test_bad_peers_on_a_broker_process_are_logged(pki: Pki) -> None:
    with tls_broker(pki) as broker:
        good = proton_tls(broker.tls_port, pki.ca.cert, pki.app)
        try:
            with socket.create_connection(("127.0.0.1", broker.tls_port)) as plain:
                plain.sendall(b"AMQP\x03\x01\x00\x00")
                plain.settimeout(10)
                assert plain.recv(100) == b""
            wait_for_log(broker.process.log, "failed: not a TLS client (plain AMQP on a TLS port?)")
            stranger = Authority(Path(pki.example_dir).parent / "stranger", "stranger")
            pem = stranger.issue("stranger", common_name="stranger")
            context = ssl.create_default_context(cafile=pki.ca.cert)
            context.load_cert_chain(pem.cert, pem.key)
            try:
                with (
                    socket.create_connection(("127.0.0.1", broker.tls_port)) as raw,
                    context.wrap_socket(raw, server_hostname="localhost") as tls,
                ):
                    tls.settimeout(10)
                    tls.sendall(b"AMQP\x03\x01\x00\x00")
                    tls.recv(100)
            except (ssl.SSLError, OSError):
                pass
            wait_for_log(
                broker.process.log,
                "failed: the client certificate was refused: unable to get local issuer "
                "certificate",
            )
            round_trip(good, "after.bad.peers")
        finally:
            good.close()
