"""TLS contexts for AMQP connections (``amqps://``) and listeners."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

__all__ = ["TlsConfig", "client_context", "server_context"]


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS settings; every path is a PEM file."""

    ca_file: str | None = None
    """Certificates to trust.  ``None`` trusts the system store (clients) or, on a
    listener, means client certificates are not checked."""
    cert_file: str | None = None
    """Our certificate chain: a listener's server certificate, or a client certificate."""
    key_file: str | None = None
    """The private key of ``cert_file`` (may be inside ``cert_file``)."""
    verify: bool = True
    """Clients: check the server's certificate and host name.  Listeners: require a
    client certificate signed by ``ca_file``."""
    check_hostname: bool = True
    """Clients that verify: also check that the certificate names the host dialled
    (off: any certificate the CAs signed will do, e.g. a router reached by address)."""


def client_context(config: TlsConfig | None = None) -> ssl.SSLContext:
    """A client context: verification on by default, TLS 1.2 at least."""
    config = config or TlsConfig()
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=config.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not config.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif not config.check_hostname:
        context.check_hostname = False
    if config.cert_file:
        _load_cert_chain(context, config.cert_file, config.key_file)
    return context


def server_context(config: TlsConfig) -> ssl.SSLContext:
    """A listener context: ``cert_file`` is required; client certs checked with ``ca_file``."""
    if not config.cert_file:
        raise ValueError(
            "a TLS listener needs cert_file (and key_file unless the key is inside it)"
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_cert_chain(context, config.cert_file, config.key_file)
    if config.ca_file:
        try:
            context.load_verify_locations(config.ca_file)
        except OSError as exc:
            raise _naming(exc, f"the TLS CA certificates {config.ca_file}") from exc
        context.verify_mode = ssl.CERT_REQUIRED if config.verify else ssl.CERT_OPTIONAL
    return context


def _load_cert_chain(context: ssl.SSLContext, cert_file: str, key_file: str | None) -> None:
    try:
        context.load_cert_chain(cert_file, key_file)
    except OSError as exc:
        key = f" with the key {key_file}" if key_file else ""
        raise _naming(exc, f"the TLS certificate {cert_file}{key}") from exc


def _naming(exc: OSError, what: str) -> OSError:
    """``exc`` again (same type and errno), its message naming the files: ``ssl`` names none."""
    return type(exc)(exc.errno, f"cannot load {what}: {exc.strerror or exc}")
