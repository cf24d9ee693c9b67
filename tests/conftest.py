"""Shared pytest fixtures."""

from __future__ import annotations

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
