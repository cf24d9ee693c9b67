"""Qpid Proton's native example clients (C and C++), compiled once per checkout into
``build/proton-native-KEY/`` (KEY hashes the sources and compiler flags, so an upgraded
package compiles afresh); a file lock lets one process compile while any other
(an xdist worker, another session) waits and then uses the same binaries.

Debian's ``libqpid-proton11-dev-examples`` ships the sources; building them
needs ``libqpid-proton11-dev`` and ``libqpid-proton-cpp12-dev`` (``.ci/run``
installs all three).  Where they are missing, :func:`build_examples` and
:func:`build_ssl_client_cert` return ``None`` and the tests that need them
skip, naming the packages.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from .locks import BUILD, exclusive

EXAMPLES = Path("/usr/share/proton/examples")
PACKAGES = "libqpid-proton11-dev-examples libqpid-proton11-dev libqpid-proton-cpp12-dev"

#: C examples (send.c/receive.c skip SASL; broker.c is the C example broker) and C++ ones
#: (speak SASL).
C_PROGRAMS = ("send", "receive", "broker")
CPP_PROGRAMS = ("simple_send", "simple_recv", "server")

#: One compile command: the binary's name, the source, the compiler and its arguments
#: (without ``-o``).
_Job = tuple[str, Path, list[str]]


def _compiled(builder: str, jobs: list[_Job], extra: bytes = b"") -> dict[str, Path]:
    """Run the compile ``jobs`` into ``build/proton-native-BUILDER-KEY/`` unless they ran
    there already (KEY hashes the sources, ``extra``, the commands and the installed
    Proton's version); their paths."""
    version = b""  # the C and C++ libraries come from one Proton release
    if shutil.which("pkg-config") is not None:
        version = subprocess.run(
            ["pkg-config", "--modversion", "libqpid-proton"], capture_output=True, check=False
        ).stdout
    digest = hashlib.sha256(extra + version)
    for name, source, command in jobs:
        digest.update(repr((name, command)).encode() + source.read_bytes())
    into = BUILD / f"proton-native-{builder}-{digest.hexdigest()[:16]}"
    built = {name: into / name for name, _, _ in jobs}
    with exclusive(f"proton-native-{builder}"):
        if all(path.exists() for path in built.values()):
            return built
        building = into.with_name(into.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(parents=True)
        for name, _, command in jobs:
            subprocess.run([*command, "-o", str(building / name)], check=True, capture_output=True)
        shutil.rmtree(into, ignore_errors=True)
        building.rename(into)
    return built


def _pkg_flags(name: str) -> list[str] | None:
    result = subprocess.run(
        ["pkg-config", "--cflags", "--libs", name], capture_output=True, text=True, check=False
    )
    return result.stdout.split() if result.returncode == 0 else None


def build_examples() -> dict[str, Path] | None:
    """The example clients and broker, compiled (once: see the module docstring); their
    paths by name, or ``None``."""
    if not (EXAMPLES / "c" / "send.c").exists() or shutil.which("pkg-config") is None:
        return None
    c_flags = _pkg_flags("libqpid-proton")
    # Debian's libqpid-proton-cpp.pc names .pc files Debian does not ship; link directly.
    cpp_flags = _pkg_flags("libqpid-proton-cpp") or ["-lqpid-proton-cpp"]
    if c_flags is None:
        return None
    jobs: list[_Job] = []
    for name in C_PROGRAMS:
        source = EXAMPLES / "c" / f"{name}.c"
        command = ["gcc", "-O1", "-I", str(EXAMPLES / "c"), str(source), *c_flags, "-lpthread"]
        jobs.append((name, source, command))
    for name in CPP_PROGRAMS:
        source = EXAMPLES / "cpp" / f"{name}.cpp"
        command = ["g++", "-O1", "-std=c++11", "-I", str(EXAMPLES / "cpp"), str(source),
                   *cpp_flags]  # fmt: skip
        jobs.append((name, source, command))
    # The C examples include headers beside them: those count too.
    headers = b"".join(path.read_bytes() for path in sorted((EXAMPLES / "c").glob("*.h")))
    return _compiled("examples", jobs, headers)


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


def build_ssl_client_cert() -> dict[str, Path] | None:
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

    Like :func:`build_examples`, compiled once.  ``ssl_client_cert`` is
    built as shipped.  ``ssl_client_cert_to`` is the same source with one change:
    its client connects to ``$PROTON_EXAMPLE_URL`` and its own listener stops
    unused, so the client half can meet another server.
    """
    source = EXAMPLES / "cpp" / "ssl_client_cert.cpp"
    headers = Path("/usr/include/proton/container.hpp")
    if not (source.exists() and headers.exists()) or shutil.which("g++") is None:
        return None
    text = source.read_text()
    if _SELF_CONNECT not in text:
        raise RuntimeError(f"{source} changed: no self-connecting line to redirect")
    # As in build_examples: Debian's .pc file names others it does not ship; link directly.
    flags = _pkg_flags("libqpid-proton-cpp") if shutil.which("pkg-config") else None
    flags = flags or ["-lqpid-proton-cpp"]
    # Written whole under a name of its own, then renamed: another process may be reading it.
    BUILD.mkdir(parents=True, exist_ok=True)
    redirected = BUILD / "ssl_client_cert_to.cpp"
    partial = BUILD / f"ssl_client_cert_to.cpp.{os.getpid()}"
    partial.write_text("#include <cstdlib>\n" + text.replace(_SELF_CONNECT, _CONNECT_ELSEWHERE))
    partial.replace(redirected)
    jobs: list[_Job] = [
        (name, path, ["g++", "-O1", "-std=c++11", str(path), *flags])
        for name, path in (("ssl_client_cert", source), ("ssl_client_cert_to", redirected))
    ]
    return _compiled("ssl_client_cert", jobs)
