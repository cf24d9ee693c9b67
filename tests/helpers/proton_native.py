"""Qpid Proton's native example clients (C and C++), compiled once per test session
(the first caller's directory holds them; later callers get the same binaries).

Debian's ``libqpid-proton11-dev-examples`` ships the sources; building them
needs ``libqpid-proton11-dev`` and ``libqpid-proton-cpp12-dev`` (``.ci/run``
installs all three).  Where they are missing, :func:`build_examples` and
:func:`build_ssl_client_cert` return ``None`` and the tests that need them
skip, naming the packages.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

EXAMPLES = Path("/usr/share/proton/examples")
PACKAGES = "libqpid-proton11-dev-examples libqpid-proton11-dev libqpid-proton-cpp12-dev"

#: C examples (send.c/receive.c skip SASL; broker.c is the C example broker) and C++ ones
#: (speak SASL).
C_PROGRAMS = ("send", "receive", "broker")
CPP_PROGRAMS = ("simple_send", "simple_recv", "server")

#: What this test session compiled already, by builder: each is compiled once (a C++
#: example takes seconds of the compiler), and later callers get the same binaries.
_BUILT: dict[str, dict[str, Path]] = {}


def _built_before(builder: str) -> dict[str, Path] | None:
    built = _BUILT.get(builder)
    if built is None or not all(path.exists() for path in built.values()):
        return None
    return dict(built)


def _pkg_flags(name: str) -> list[str] | None:
    result = subprocess.run(
        ["pkg-config", "--cflags", "--libs", name], capture_output=True, text=True, check=False
    )
    return result.stdout.split() if result.returncode == 0 else None


def build_examples(into: Path) -> dict[str, Path] | None:
    """Compile the example clients into ``into`` (unless this session did already, then
    those); their paths by name, or ``None``."""
    if not (EXAMPLES / "c" / "send.c").exists() or shutil.which("pkg-config") is None:
        return None
    if (before := _built_before("examples")) is not None:
        return before
    c_flags = _pkg_flags("libqpid-proton")
    # Debian's libqpid-proton-cpp.pc names .pc files Debian does not ship; link directly.
    cpp_flags = _pkg_flags("libqpid-proton-cpp") or ["-lqpid-proton-cpp"]
    if c_flags is None:
        return None
    into.mkdir(parents=True, exist_ok=True)
    built: dict[str, Path] = {}
    for name in C_PROGRAMS:
        binary = into / name
        if not binary.exists():
            source = EXAMPLES / "c" / f"{name}.c"
            subprocess.run(
                ["gcc", "-O1", "-I", str(EXAMPLES / "c"), "-o", str(binary), str(source),
                 *c_flags, "-lpthread"],
                check=True, capture_output=True,
            )  # fmt: skip
        built[name] = binary
    for name in CPP_PROGRAMS:
        binary = into / name
        if not binary.exists():
            source = EXAMPLES / "cpp" / f"{name}.cpp"
            subprocess.run(
                ["g++", "-O1", "-std=c++11", "-I", str(EXAMPLES / "cpp"), "-o", str(binary),
                 str(source), *cpp_flags],
                check=True, capture_output=True,
            )  # fmt: skip
        built[name] = binary
    _BUILT["examples"] = dict(built)
    return built


#: The line of ``ssl_client_cert.cpp`` that points its client at its own listener, and what
#: ``ssl_client_cert_to`` does instead: connect to ``$PROTON_EXAMPLE_URL``, stop the listener.
_SELF_CONNECT = (
    "            std::ostringstream url;\n"
    '            url << "//:" << l.port() << "/example"; // Connect to the actual port\n'
    "            l.container().open_sender(url.str());\n"
)
_CONNECT_ELSEWHERE = (
    '            l.container().open_sender(std::getenv("PROTON_EXAMPLE_URL"));\n'
    "            l.stop();\n"
)


def build_ssl_client_cert(into: Path) -> dict[str, Path] | None:
    """Proton's C++ ``ssl_client_cert`` example, as shipped and redirected; ``None`` if the
    sources or headers are missing.

    The example is a whole TLS conversation in one process: it listens on a
    free port (server certificate, client certificates required), connects to
    that port itself with a client certificate, checking the server's with
    ``VERIFY_PEER`` (not its name) and allowing SASL EXTERNAL only, sends
    "Hello World!" to ``example`` and exits 0 once that is accepted; on any
    error it prints it to stderr and exits 1.  Its one argument is a directory
    of PEM files: ``tserver-certificate.pem``, ``tserver-private-key.pem``
    (password ``tserverpw``) and the same for ``tclient``; each certificate
    file is also the CA list the other side trusts, and the example prints
    both certificates' CN, failing without one.

    Like :func:`build_examples`, once per test session.  ``ssl_client_cert`` is
    built as shipped.  ``ssl_client_cert_to`` is the same source with one change:
    its client connects to ``$PROTON_EXAMPLE_URL`` and its own listener stops
    unused, so the client half can meet another server.
    """
    source = EXAMPLES / "cpp" / "ssl_client_cert.cpp"
    headers = Path("/usr/include/proton/container.hpp")
    if not (source.exists() and headers.exists()) or shutil.which("g++") is None:
        return None
    if (before := _built_before("ssl_client_cert")) is not None:
        return before
    text = source.read_text()
    if _SELF_CONNECT not in text:
        raise RuntimeError(f"{source} changed: no self-connecting line to redirect")
    into.mkdir(parents=True, exist_ok=True)
    redirected = into / "ssl_client_cert_to.cpp"
    redirected.write_text("#include <cstdlib>\n" + text.replace(_SELF_CONNECT, _CONNECT_ELSEWHERE))
    # As in build_examples: Debian's .pc file names others it does not ship; link directly.
    flags = _pkg_flags("libqpid-proton-cpp") if shutil.which("pkg-config") else None
    flags = flags or ["-lqpid-proton-cpp"]
    built: dict[str, Path] = {}
    for name, path in (("ssl_client_cert", source), ("ssl_client_cert_to", redirected)):
        binary = into / name
        if not binary.exists():
            subprocess.run(
                ["g++", "-O1", "-std=c++11", "-o", str(binary), str(path), *flags],
                check=True, capture_output=True,
            )  # fmt: skip
        built[name] = binary
    _BUILT["ssl_client_cert"] = dict(built)
    return built
