"""Qpid Proton's native example clients (C and C++), compiled once per test session.

Debian's ``libqpid-proton11-dev-examples`` ships the sources; building them
needs ``libqpid-proton11-dev`` and ``libqpid-proton-cpp12-dev`` (``.ci/run``
installs all three).  Where they are missing, :func:`build_examples` returns
``None`` and the tests that need them skip, naming the packages.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

EXAMPLES = Path("/usr/share/proton/examples")
PACKAGES = "libqpid-proton11-dev-examples libqpid-proton11-dev libqpid-proton-cpp12-dev"

#: C examples (send.c/receive.c skip SASL) and C++ ones (speak SASL).
C_PROGRAMS = ("send", "receive")
CPP_PROGRAMS = ("simple_send", "simple_recv")


def _pkg_flags(name: str) -> list[str] | None:
    result = subprocess.run(
        ["pkg-config", "--cflags", "--libs", name], capture_output=True, text=True, check=False
    )
    return result.stdout.split() if result.returncode == 0 else None


def build_examples(into: Path) -> dict[str, Path] | None:
    """Compile the example clients into ``into``; their paths by name, or ``None``."""
    if not (EXAMPLES / "c" / "send.c").exists() or shutil.which("pkg-config") is None:
        return None
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
    return built
