"""Authentication against peers we did not write: Proton's Python binding built with Cyrus
SASL (SCRAM-SHA-256, SCRAM-SHA-512), Proton's C++ example clients (PLAIN) and rhea (PLAIN);
then the refusals: wrong passwords, unknown users, a mechanism not offered, PLAIN on a
listener others can reach without TLS.  Each refusal is clean, and a connection already
open carries on."""

from __future__ import annotations

import itertools
import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from proton import SASL, ConnectionException

import petrel
from petrel.client.errors import Unauthorized
from petrel.server import edit_users_file, make_user
from tests.helpers.proton_client import bodies, connect, drain, receiver, send, sender
from tests.helpers.proton_cyrus import PACKAGES, build_proton_cyrus, missing, run_client
from tests.helpers.proton_native import EXAMPLES, build_examples
from tests.helpers.proton_native import PACKAGES as NATIVE_PACKAGES
from tests.helpers.rhea import install_rhea
from tests.helpers.servers import BrokerProcess, free_port, run_broker

pytestmark = pytest.mark.interop

RHEA = Path(__file__).parent / "rhea"


def outside_address() -> str | None:
    """An IPv4 address of this machine that is not loopback (the one a default route uses)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
        host = str(probe.getsockname()[0])
    except OSError:
        return None
    finally:
        probe.close()
    return None if host.startswith("127.") or host == "0.0.0.0" else host


@dataclass
class Setup:
    broker: BrokerProcess
    url: str
    """Loopback: SCRAM-SHA-512, SCRAM-SHA-256, PLAIN; no anonymous clients."""
    scram_only: str
    """Loopback, ``sasl_mechanisms = ["SCRAM-SHA-256"]``."""
    outside: str | None
    """A non-loopback address without TLS (PLAIN not offered there), if the machine has one."""


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    directory = tmp_path_factory.mktemp("sasl-interop")
    users = directory / "users.toml"
    with edit_users_file(users, create=True) as content:
        content.users["alice"] = make_user("alice", "wonder land")
        content.users["bob"] = make_user("bob", "builder", groups=["ops"])
        # The C++ examples' option parser cuts a password at a space.
        content.users["carol"] = make_user("carol", "c4rrot!")
    port, scram_port = free_port(), free_port()
    host = outside_address()
    outside_port = free_port()
    config = f"""
users_file = "{users}"

[[listeners]]
url = "amqp://127.0.0.1:{port}"
allow_anonymous = false

[[listeners]]
url = "amqp://127.0.0.1:{scram_port}"
allow_anonymous = false
sasl_mechanisms = ["SCRAM-SHA-256"]
"""
    if host is not None:
        config += f'\n[[listeners]]\nurl = "amqp://{host}:{outside_port}"\n'
    with run_broker(config, port=port) as broker:
        yield Setup(
            broker,
            f"amqp://127.0.0.1:{port}",
            f"amqp://127.0.0.1:{scram_port}",
            f"amqp://{host}:{outside_port}" if host is not None else None,
        )


_bystanders = itertools.count(1)


@pytest.fixture
def bystander(setup: Setup) -> Iterator[object]:
    """A connection open before the refusals, which must carry on after them."""
    conn = connect(setup.url, user="bob", password="builder")
    yield conn
    address = f"bystander-{next(_bystanders)}"
    send(sender(conn, address), "still here")
    assert bodies(drain(conn, receiver(conn, address, credit=1))) == ["still here"]
    conn.close()


# --- Proton with Cyrus SASL: SCRAM ------------------------------------------------------------


@pytest.fixture(scope="module")
def cyrus() -> Path:
    why = missing()
    if why is not None:
        pytest.skip(f"building Proton with Cyrus SASL needs {why} (apt-get install {PACKAGES})")
    build = build_proton_cyrus()
    assert build is not None
    return build


def test_the_suites_own_proton_has_protons_own_sasl() -> None:
    """The suite's tests of PLAIN and ANONYMOUS are written for that build; Cyrus SASL is
    the separate one above, on a PYTHONPATH of its own."""
    assert not SASL.extended(), (
        "the installed python-qpid-proton was built with Cyrus SASL; build it with Proton's "
        "own: .venv/bin/python tests/helpers/proton_own_sasl.py --check build/pkgconfig-own-sasl"
    )


@pytest.mark.slow
@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_cyrus_scram(cyrus: Path, setup: Setup, mechanism: str) -> None:
    address = f"cyrus-{mechanism}"
    done = run_client(cyrus, setup.url, "alice", "wonder land", mechanism, address)
    assert done.stdout.strip() == f"OK {mechanism}", done.stdout + done.stderr
    assert f"user 'alice' ({mechanism}) opened" in setup.broker.log()


@pytest.mark.parametrize(
    ("user", "password", "mechanism"),
    [
        ("alice", "wonderland", "SCRAM-SHA-512"),
        ("mallory", "wonder land", "SCRAM-SHA-256"),
    ],
)
def test_cyrus_refused(
    cyrus: Path, setup: Setup, bystander: object, user: str, password: str, mechanism: str
) -> None:
    done = run_client(cyrus, setup.url, user, password, mechanism, "cyrus-refused")
    assert done.returncode == 1
    # A wrong password and an unknown user look the same to the client.
    assert done.stdout.strip() == (
        "ERROR ConnectionException: Connection "
        f"{setup.url} disconnected: Condition('amqp:unauthorized-access', "
        f"'Authentication failed [mech={mechanism}]')"
    ), done.stdout + done.stderr
    assert f"authentication failed: user {user!r}, mechanism {mechanism}, auth" in (
        setup.broker.log()
    )
    assert password not in setup.broker.log()


def test_cyrus_mechanism_not_offered(cyrus: Path, setup: Setup) -> None:
    done = run_client(cyrus, setup.scram_only, "alice", "wonder land", "SCRAM-SHA-512", "x")
    assert done.returncode == 1
    assert "amqp:unauthorized-access" in done.stdout, done.stdout + done.stderr
    assert "left during SASL without authenticating (offered: SCRAM-SHA-256)" in (
        setup.broker.log()
    )


# --- Proton's C++ examples and rhea: PLAIN ----------------------------------------------------


#: The line of simple_send.cpp and simple_recv.cpp that sets the password, and what the
#: ``_plain`` copies add: Proton's own SASL uses PLAIN without TLS only when told it may.
_PASSWORD = "        if (!password.empty()) co.password(password);\n"
_INSECURE = "        co.sasl_allow_insecure_mechs(true);\n"


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Proton's simple_send and simple_recv, as shipped but allowed PLAIN without TLS (the
    broker's listener is on loopback, where Petrel offers PLAIN)."""
    if build_examples() is None:
        pytest.skip(f"Proton's C/C++ examples need: apt-get install {NATIVE_PACKAGES}")
    into = tmp_path_factory.mktemp("proton-native")
    built = {}
    for name in ("simple_send", "simple_recv"):
        text = (EXAMPLES / "cpp" / f"{name}.cpp").read_text()
        assert _PASSWORD in text, f"{name}.cpp changed: no password line to extend"
        source = into / f"{name}_plain.cpp"
        source.write_text(text.replace(_PASSWORD, _PASSWORD + _INSECURE))
        binary = into / f"{name}_plain"
        subprocess.run(
            ["g++", "-O1", "-std=c++11", "-I", str(EXAMPLES / "cpp"), "-o", str(binary),
             str(source), "-lqpid-proton-cpp"],
            check=True, capture_output=True,
        )  # fmt: skip
        built[name] = binary
    return built


def test_cpp_clients_with_plain(native: dict[str, Path], setup: Setup) -> None:
    url = f"{setup.url}/cpp-plain"
    login = ["-u", "carol", "-p", "c4rrot!"]
    sent = subprocess.run(
        [native["simple_send"], "-a", url, "-m", "5", *login],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "all messages confirmed" in sent.stdout
    got = subprocess.run(
        [native["simple_recv"], "-a", url, "-m", "5", *login],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert got.returncode == 0, got.stdout + got.stderr
    assert got.stdout.count("\n") >= 5
    assert "user 'carol' (PLAIN) opened" in setup.broker.log()


def test_cpp_client_wrong_password(
    native: dict[str, Path], setup: Setup, bystander: object
) -> None:
    sent = subprocess.run(
        [native["simple_send"], "-a", f"{setup.url}/cpp-plain", "-m", "1", "-u", "carol",
         "-p", "nope"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert sent.returncode != 0
    assert "amqp:unauthorized-access" in sent.stdout + sent.stderr


def rhea(*args: str) -> dict[str, object]:
    install_rhea()  # from its lock file, once (another xdist worker may be doing it)
    node = shutil.which("node")
    assert node is not None
    result = subprocess.run(
        [node, str(RHEA / "peer.js"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout, result.stderr
    report: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def test_rhea_with_plain(setup: Setup) -> None:
    url = setup.url.replace("amqp://", "amqp://alice:wonder%20land@")
    assert rhea("send", url, "rhea-plain", "3") == {"sent": 3, "accepted": 3, "rejected": 0}
    assert rhea("receive", url, "rhea-plain", "3") == {"bodies": ["m0", "m1", "m2"]}
    assert "user 'alice' (PLAIN) opened" in setup.broker.log()


def test_rhea_wrong_password(setup: Setup, bystander: object) -> None:
    url = setup.url.replace("amqp://", "amqp://alice:nope@")
    report = rhea("send", url, "rhea-plain", "1")
    assert report["error"] == "amqp:unauthorized-access", report


# --- refusals with Proton's wheel and Petrel's client -----------------------------------------


def test_proton_plain_not_offered(setup: Setup, bystander: object) -> None:
    with pytest.raises(ConnectionException, match="amqp:unauthorized-access"):
        connect(setup.scram_only, user="alice", password="wonder land", allowed_mechs="PLAIN")


async def test_petrel_client_names_both_lists(setup: Setup) -> None:
    with pytest.raises(Unauthorized) as caught:
        await petrel.connect(
            setup.scram_only,
            username="alice",
            password="wonder land",
            sasl_mechanisms=["PLAIN", "ANONYMOUS"],
            reconnect=False,
            timeout=10,
        )
    assert "the server offers SCRAM-SHA-256; we allow PLAIN, ANONYMOUS" in str(caught.value)


async def test_plain_is_not_offered_outside_loopback_without_tls(setup: Setup) -> None:
    if setup.outside is None:
        pytest.skip("this machine has no non-loopback IPv4 address (tests/server covers the rule)")
    # Proton's wheel offers PLAIN only: there is nothing in common.
    with pytest.raises(ConnectionException, match="amqp:unauthorized-access"):
        connect(setup.outside, user="alice", password="wonder land", allowed_mechs="PLAIN")
    # Petrel's client does not even try PLAIN there, and SCRAM works.
    async with await petrel.connect(
        setup.outside, username="alice", password="wonder land", reconnect=False, timeout=10
    ):
        pass
    assert "(SCRAM-SHA-512) opened" in setup.broker.log()
    with pytest.raises(Unauthorized, match="the server offers SCRAM-SHA-256, SCRAM-SHA-512"):
        await petrel.connect(
            setup.outside,
            username="alice",
            password="wonder land",
            sasl_mechanisms=["PLAIN"],
            reconnect=False,
            timeout=10,
        )
