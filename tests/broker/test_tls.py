"""TLS listeners of a ``petrel broker`` process.

Clients check the broker's certificate, and the broker checks theirs where the
listener says so.  Proton's Python client plays most clients; Proton's C++
``ssl_client_cert`` example plays one too, and shows how far it gets (see
:func:`test_ssl_client_cert_example_reaches_petrel_but_wants_sasl_external`).
Certificates: the ``tls_files`` CA signs the broker's and the good client's;
a second CA (:func:`other_ca`) signs the ones nobody here should accept.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from proton import SSL, ConnectionException, SSLDomain
from proton.utils import BlockingConnection

from petrel.broker import Broker
from petrel.server.config import BrokerSettings, LimitSettings, ListenerSettings, TlsSettings
from tests.helpers.proton_client import TIMEOUT, bodies, drain, receiver, send, sender, settle
from tests.helpers.proton_native import PACKAGES, build_ssl_client_cert
from tests.helpers.servers import BrokerProcess, free_port, run_broker

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not SSL.present(), reason="Proton was built without SSL"),
]

PETREL = str(Path(sys.executable).with_name("petrel"))


# --- certificates -----------------------------------------------------------------------------


@dataclass
class OtherCa:
    """A second CA and what it signed (PEM file paths)."""

    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    example_dir: str
    """The same certificates in the layout Proton's ``ssl_client_cert`` example reads:
    ``tserver-*`` and ``tclient-*``, each certificate file followed by the CA's."""


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> OtherCa:
    """A CA unrelated to ``tls_files``'.  Its certificates carry common names, which the
    C++ example prints (and fails without)."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1", common_name="localhost")
    client = ca.issue_cert("petrel-example-client", common_name="petrel-example-client")
    root = tmp_path_factory.mktemp("other-ca")
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    example = root / "example"
    example.mkdir()
    for name, leaf in (("server", server), ("client", client)):
        leaf.cert_chain_pems[0].write_to_path(str(root / f"{name}.pem"))
        leaf.private_key_pem.write_to_path(str(root / f"{name}.key"))
        # The example trusts its peer's certificate file as a CA list: put the CA in it.
        chain = b"".join(pem.bytes() for pem in leaf.cert_chain_pems) + ca.cert_pem.bytes()
        (example / f"t{name}-certificate.pem").write_bytes(chain)
        leaf.private_key_pem.write_to_path(str(example / f"t{name}-private-key.pem"))
    return OtherCa(
        ca=str(root / "ca.pem"),
        server_cert=str(root / "server.pem"),
        server_key=str(root / "server.key"),
        client_cert=str(root / "client.pem"),
        client_key=str(root / "client.key"),
        example_dir=str(example),
    )


# --- the broker -------------------------------------------------------------------------------


@dataclass
class TlsBroker:
    process: BrokerProcess
    server_only: int
    """Its certificate, no client certificates asked for."""
    mutual: int
    """Client certificates signed by our CA required."""
    checked: int
    """Client certificates optional, but one offered must be signed by our CA."""
    example: int
    """The other CA's server certificate; its client certificates required."""


def _tls_table(cert: str, key: str, ca: str | None = None, require: bool = False) -> str:
    table = f'cert_file = "{cert}", key_file = "{key}"'
    if ca is not None:
        table += f', ca_file = "{ca}"'
    if require:
        table += ", require_client_cert = true"
    return "{ " + table + " }"


@pytest.fixture(scope="module")
def tls_broker(tls_files: dict[str, str], other_ca: OtherCa) -> Iterator[TlsBroker]:
    ports = [free_port() for _ in range(4)]
    ours = (tls_files["server_cert"], tls_files["server_key"])
    tables = [
        _tls_table(*ours),
        _tls_table(*ours, ca=tls_files["ca"], require=True),
        _tls_table(*ours, ca=tls_files["ca"]),
        _tls_table(other_ca.server_cert, other_ca.server_key, ca=other_ca.ca, require=True),
    ]
    config = "".join(
        f'[[listeners]]\nurl = "amqps://127.0.0.1:{port}"\ntls = {table}\n\n'
        for port, table in zip(ports, tables, strict=True)
    )
    with run_broker(config, port=ports[0]) as process:
        yield TlsBroker(process, *ports)


def tls_connect(
    port: int, ca: str, cert: str | None = None, key: str | None = None
) -> BlockingConnection:
    """A Proton connection over TLS that verifies the broker's certificate and name against
    ``ca``, presenting ``cert`` if given.  (Proton matches names, not IP addresses: the
    name it checks is ``localhost``, which the broker's certificate holds.)"""
    domain = SSLDomain(SSLDomain.MODE_CLIENT)
    domain.set_trusted_ca_db(ca)
    domain.set_peer_authentication(SSLDomain.VERIFY_PEER_NAME)
    if cert is not None:
        domain.set_credentials(cert, key, None)
    return BlockingConnection(
        f"amqps://127.0.0.1:{port}", timeout=TIMEOUT, ssl_domain=domain, virtual_host="localhost"
    )


def round_trip(conn: BlockingConnection, address: str) -> None:
    """Send a message to ``address`` and receive it back on ``conn``, then close it."""
    try:
        send(sender(conn, address), "over TLS")
        got = drain(conn, receiver(conn, address))
        assert bodies(got) == ["over TLS"]
        settle(got[0][1])
    finally:
        conn.close()


def refused(port: int, ca: str, cert: str | None = None, key: str | None = None) -> str:
    """Connect as :func:`tls_connect` does, expecting the TLS handshake to fail; why it did."""
    with pytest.raises(ConnectionException) as caught:
        tls_connect(port, ca, cert, key).close()
    assert "SSL Failure" in str(caught.value), caught.value
    return str(caught.value)


# --- Proton's Python client -------------------------------------------------------------------


def test_clients_check_the_broker_certificate(
    tls_broker: TlsBroker, tls_files: dict[str, str], other_ca: OtherCa
) -> None:
    assert "certificate verify failed" in refused(tls_broker.server_only, other_ca.ca)
    round_trip(tls_connect(tls_broker.server_only, tls_files["ca"]), "tls.server-only")


def test_a_required_client_certificate(
    tls_broker: TlsBroker, tls_files: dict[str, str], other_ca: OtherCa
) -> None:
    ca = tls_files["ca"]
    refused(tls_broker.mutual, ca)
    refused(tls_broker.mutual, ca, other_ca.client_cert, other_ca.client_key)
    good = tls_connect(tls_broker.mutual, ca, tls_files["client_cert"], tls_files["client_key"])
    round_trip(good, "tls.mutual")


def test_an_optional_client_certificate_is_still_checked(
    tls_broker: TlsBroker, tls_files: dict[str, str], other_ca: OtherCa
) -> None:
    ca = tls_files["ca"]
    round_trip(tls_connect(tls_broker.checked, ca), "tls.checked.anonymous")
    refused(tls_broker.checked, ca, other_ca.client_cert, other_ca.client_key)
    good = tls_connect(tls_broker.checked, ca, tls_files["client_cert"], tls_files["client_key"])
    round_trip(good, "tls.checked.certified")


# --- Proton's C++ ssl_client_cert example -----------------------------------------------------
#
# The example is not a client of some broker: it starts its own listener and connects to
# it, both ends in one process, and its client allows SASL EXTERNAL only.  The shipped one
# runs as a control (it needs no broker); ``ssl_client_cert_to`` is the same source with
# its client pointed at $PROTON_EXAMPLE_URL (see tests/helpers/proton_native.py).


@pytest.fixture(scope="module")
def ssl_example() -> dict[str, Path]:
    built = build_ssl_client_cert()
    if built is None:
        pytest.skip(f"Proton's C++ example sources or headers are missing ({PACKAGES})")
    return built


def run_example(
    binary: Path, cert_dir: str, url: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if url is not None:
        env["PROTON_EXAMPLE_URL"] = url
    return subprocess.run(
        [str(binary), cert_dir], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def test_ssl_client_cert_example_accepts_these_certificates(
    ssl_example: dict[str, Path], other_ca: OtherCa
) -> None:
    """The control: as shipped, with our certificate files, the example talks to itself."""
    result = run_example(ssl_example["ssl_client_cert"], other_ca.example_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Inbound client certificate identity CN=petrel-example-client" in result.stdout
    assert "Server certificate identity CN=localhost" in result.stdout
    assert "Hello World!" in result.stdout


def test_ssl_client_cert_example_reaches_petrel_but_wants_sasl_external(
    ssl_example: dict[str, Path], other_ca: OtherCa, tls_broker: TlsBroker
) -> None:
    """Against a listener that requires its certificate, the example's client gets through
    TLS both ways (each side verifies the other), then finds no SASL mechanism it may
    use: it allows only EXTERNAL, which this listener does not offer (it has no
    ``tls.external_identity``; tests/integration/test_tls_everywhere.py has one that
    does).  It never opens."""
    url = f"amqps://127.0.0.1:{tls_broker.example}/example"
    result = run_example(ssl_example["ssl_client_cert_to"], other_ca.example_dir, url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "amqp:unauthorized-access: Authentication failed [mech=none]" in result.stderr
    assert "SSL" not in result.stderr
    assert "Outgoing client connection connected" not in result.stdout


def test_ssl_client_cert_example_refused_by_a_listener_of_another_ca(
    ssl_example: dict[str, Path], other_ca: OtherCa, tls_broker: TlsBroker
) -> None:
    """What a TLS failure looks like to the example, for contrast with the test above."""
    url = f"amqps://127.0.0.1:{tls_broker.mutual}/example"
    result = run_example(ssl_example["ssl_client_cert_to"], other_ca.example_dir, url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "SSL Failure" in result.stderr
    assert "certificate verify failed" in result.stderr


# --- configuration ----------------------------------------------------------------------------


def _broker_cli(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PETREL, "broker", "--store", "memory", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_require_client_cert_without_ca_file_is_a_config_error(
    tmp_path: Path, tls_files: dict[str, str]
) -> None:
    # Without CAs to check them against, the broker would ask for no certificate at all.
    url = f"amqps://127.0.0.1:{free_port()}"
    table = _tls_table(tls_files["server_cert"], tls_files["server_key"], require=True)
    config = tmp_path / "broker.toml"
    config.write_text(f'[[listeners]]\nurl = "{url}"\ntls = {table}\n')
    result = _broker_cli(config)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"petrel broker: {config}: ")
    assert url in lines[0]
    assert "require_client_cert" in lines[0]
    assert "ca_file" in lines[0]


def test_tls_settings_on_a_plain_listener_are_a_config_error(
    tmp_path: Path, tls_files: dict[str, str]
) -> None:
    # Ignoring them would leave clients talking in the clear on a listener meant for TLS.
    url = f"amqp://127.0.0.1:{free_port()}"
    table = _tls_table(tls_files["server_cert"], tls_files["server_key"])
    config = tmp_path / "broker.toml"
    config.write_text(f'[[listeners]]\nurl = "{url}"\ntls = {table}\n')
    result = _broker_cli(config)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        f"petrel broker: {config}: listeners.0: listener {url} has [tls] settings but is "
        "not amqps:// (or https://)"
    )


def test_a_missing_certificate_file_is_named(tmp_path: Path, tls_files: dict[str, str]) -> None:
    missing = tmp_path / "no-such-cert.pem"
    config = tmp_path / "broker.toml"
    table = _tls_table(str(missing), tls_files["server_key"])
    config.write_text(f'[[listeners]]\nurl = "amqps://127.0.0.1:{free_port()}"\ntls = {table}\n')
    result = _broker_cli(config)
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(missing) in lines[0]


async def test_a_failed_handshake_leaves_no_connection_behind(
    tls_files: dict[str, str], other_ca: OtherCa
) -> None:
    """asyncio never tells the protocol of a TLS handshake that failed; the open deadline
    ends such a connection, so nothing lingers in the broker (or in its management)."""
    listener = ListenerSettings(
        url="amqps://127.0.0.1:0",
        tls=TlsSettings(cert_file=tls_files["server_cert"], key_file=tls_files["server_key"]),
    )
    broker = Broker(
        BrokerSettings(store="memory", listeners=[listener], limits=LimitSettings(sasl_timeout=0.3))
    )
    await broker.start()
    try:
        distrustful = ssl.create_default_context(cafile=other_ca.ca)
        with pytest.raises(ssl.SSLError):
            await asyncio.open_connection("127.0.0.1", broker.bound[0][1], ssl=distrustful)
        for _ in range(100):
            if not broker.connections:
                break
            await asyncio.sleep(0.05)
        assert not broker.connections
    finally:
        await broker.stop(timeout=1.0)
