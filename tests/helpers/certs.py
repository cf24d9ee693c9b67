"""Certificates for TLS tests, made with ``trustme`` (on ``cryptography``) as PEM files.

    authority = Authority(tmp_path, "ca1")
    server = authority.issue("server", "localhost", "127.0.0.1")
    client = authority.issue("client", common_name="app-7", organization_name="Example")
    expired = authority.issue("old", common_name="old", expired=True)

Each :class:`Pem` names its certificate file (the leaf, then any intermediates)
and its key file; :meth:`Pem.copy_to` writes them over other paths (a server
rotating its certificate in place).
"""

from __future__ import annotations

import datetime
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = ["Authority", "Pem"]


@dataclass(frozen=True)
class Pem:
    cert: str
    key: str
    subject: str
    """The certificate's subject in RFC 4514 form, as ``cryptography`` writes it."""

    def copy_to(self, cert: str | Path, key: str | Path) -> None:
        shutil.copyfile(self.cert, cert)
        shutil.copyfile(self.key, key)


class Authority:
    """A test CA whose certificate is ``<dir>/<name>.pem``."""

    def __init__(self, directory: Path, name: str) -> None:
        trustme = pytest.importorskip("trustme")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.ca = trustme.CA(organization_name=f"Petrel tests {name}")
        self.cert = str(self.directory / f"{name}.pem")
        self.ca.cert_pem.write_to_path(self.cert)

    def issue(self, file: str, *identities: str, expired: bool = False, **names: Any) -> Pem:
        """A certificate for ``identities`` (DNS names, IP addresses; may be none) with the
        subject fields ``names`` (``common_name``, ``organization_name``,
        ``organization_unit_name``), written to ``<dir>/<file>.pem`` and ``.key``."""
        from cryptography import x509

        if expired:
            now = datetime.datetime.now(datetime.UTC)
            names["not_before"] = now - datetime.timedelta(days=30)
            names["not_after"] = now - datetime.timedelta(days=1)
        # trustme wants a subject alternative name: a client certificate gets a made-up one.
        leaf = self.ca.issue_cert(*(identities or (f"{file}.clients.test",)), **names)
        cert = self.directory / f"{file}.pem"
        key = self.directory / f"{file}.key"
        cert.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
        leaf.private_key_pem.write_to_path(str(key))
        subject = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes()).subject
        return Pem(str(cert), str(key), subject.rfc4514_string())

    def issue_subject(self, file: str, attributes: list[tuple[Any, str]]) -> Pem:
        """A client certificate whose subject is exactly ``attributes`` (``(NameOID.X,
        value)`` pairs, most general first), which trustme cannot write (two CNs, say)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            NoEncryption,
            PrivateFormat,
        )

        key = ec.generate_private_key(ec.SECP256R1())
        issuer = x509.load_pem_x509_certificate(self.ca.cert_pem.bytes())
        subject = x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(self.ca._private_key, hashes.SHA256())  # trustme keeps the CA's key there
        )
        cert = self.directory / f"{file}.pem"
        pem_key = self.directory / f"{file}.key"
        cert.write_bytes(certificate.public_bytes(Encoding.PEM))
        pem_key.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        return Pem(str(cert), str(pem_key), subject.rfc4514_string())
