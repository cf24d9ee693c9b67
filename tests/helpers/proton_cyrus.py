"""Proton's Python binding built against Cyrus SASL, beside (never instead of) the suite's.

The suite's python-qpid-proton has Proton's own SASL only (ANONYMOUS, PLAIN, EXTERNAL:
``proton.SASL.extended()`` is False; ``make test`` builds it so, see
:mod:`tests.helpers.proton_own_sasl`). Built from its sdist where ``pkg-config
libsasl2`` answers (Debian's ``libsasl2-dev``), it uses Cyrus SASL, whose SCRAM plugin
(Debian's ``libsasl2-modules``) speaks SCRAM-SHA-256 and SCRAM-SHA-512.
:func:`build_proton_cyrus` builds the same version as the one installed into
``build/proton-cyrus-VERSION-pyXY`` (see :data:`tests.helpers.locks.BUILD`), once (about
15 s of one core; one process at a time), and returns that directory, to go on the
``PYTHONPATH`` of a client subprocess; the suite's own ``proton`` is untouched. ``None``
when a package is missing (:data:`PACKAGES`).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from .locks import BUILD, exclusive
from .proton_own_sasl import build_proton, uses_cyrus

#: What the build and the SCRAM client need from Debian (``.ci/run`` installs them).
PACKAGES = "libsasl2-dev libsasl2-modules"
#: The Python script a test runs with the Cyrus build (see cyrus_client.py).
CLIENT = Path(__file__).with_name("cyrus_client.py")


def missing() -> str | None:
    """Why the Cyrus build cannot be made here, or ``None``."""
    if shutil.which("pkg-config") is None or shutil.which("cc") is None:
        return "pkg-config and a C compiler"
    found = subprocess.run(["pkg-config", "--exists", "libsasl2"], check=False).returncode == 0
    if not found:
        return "libsasl2-dev"
    if not glob.glob("/usr/lib/*/sasl2/libscram.so*") and not glob.glob(
        "/usr/lib/sasl2/libscram.so*"
    ):
        return "libsasl2-modules (the SCRAM plugin)"
    return None


def build_proton_cyrus() -> Path | None:
    """The directory of the Cyrus-enabled binding (built on first use), or ``None``."""
    if missing() is not None:
        return None
    wanted = version("python-qpid-proton")
    python = "{}{}".format(*sys.version_info[:2])
    target = BUILD / f"proton-cyrus-{wanted}-py{python}"
    with exclusive("proton-cyrus"):  # another xdist worker may be building it
        if (target / "proton").is_dir() and uses_cyrus(target):
            return target
        return _build(target)


def _build(target: Path) -> Path:
    shutil.rmtree(target, ignore_errors=True)
    building = target.with_name(target.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    # -O0: the build is a SCRAM client for a few tests, not a fast one; unoptimised, its
    # C compiles in a third of the CPU time (14 s against 41 s).
    env = dict(os.environ, CFLAGS=f"{os.environ.get('CFLAGS', '')} -O0 -g0".strip())
    build_proton("--target", str(building), env=env)
    if not uses_cyrus(building):
        raise RuntimeError(f"the Proton built in {building} does not use Cyrus SASL")
    building.rename(target)
    return target


def run_client(
    build: Path, url: str, user: str, password: str, mechanism: str, address: str
) -> subprocess.CompletedProcess[str]:
    """Run :data:`CLIENT` with the Cyrus build: it sends one message to ``address`` and
    receives it back, authenticating with ``mechanism`` only."""
    env = dict(os.environ, PYTHONPATH=str(build))
    return subprocess.run(
        [sys.executable, str(CLIENT), url, user, password, mechanism, address],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
