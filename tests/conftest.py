"""Shared pytest fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.postgres import postgres_url

__all__ = ["postgres_url"]

#: Skips fail the run unless tests/skips.toml allows them (with --strict-skips, as in CI).
pytest_plugins = ["tests.helpers.skips"]


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A test CA, a server certificate for 127.0.0.1/localhost and a client certificate, as
    PEM files: keys ``ca``, ``server_cert``, ``server_key``, ``client_cert``, ``client_key``."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    client = ca.issue_cert("petrel-test-client")
    root = Path(tmp_path_factory.mktemp("tls"))
    files = {
        "ca": root / "ca.pem",
        "server_cert": root / "server.pem",
        "server_key": root / "server.key",
        "client_cert": root / "client.pem",
        "client_key": root / "client.key",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    server.private_key_pem.write_to_path(str(files["server_key"]))
    server.cert_chain_pems[0].write_to_path(str(files["server_cert"]))
    for extra in server.cert_chain_pems[1:]:
        extra.write_to_path(str(files["server_cert"]), append=True)
    client.private_key_pem.write_to_path(str(files["client_key"]))
    client.cert_chain_pems[0].write_to_path(str(files["client_cert"]))
    yield {k: str(v) for k, v in files.items()}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files that hold a ``slow`` test run first, the rest in their usual order.  Under
    pytest-xdist (``make test``: one file per worker at a time, in this order) a long file
    handed out last would leave one worker running it alone at the end."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """A ``pure_python`` test, in a compiled build: run it in a pure-Python subprocess (the
    same source, so what it measures holds for both) and pass or fail with it."""
    from petrel._accel import PURE_PYTHON_VARIABLE, backend

    if pyfuncitem.get_closest_marker("pure_python") is None or backend() == "python":
        return None
    env = {**os.environ, PURE_PYTHON_VARIABLE: "1"}
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", pyfuncitem.nodeid, "-q", "-p", "no:cacheprovider"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, f"in a PETREL_PURE_PYTHON=1 subprocess:\n{run.stdout[-4000:]}"
    return True
