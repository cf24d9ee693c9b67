"""TLS for AMQP connections (``amqps://``) and listeners.

- :func:`client_context` and :func:`server_context` build contexts from a
  :class:`TlsConfig` (PEM files); both refuse anything older than TLS 1.2.
- :class:`ServerTls` is a listener's context that can be rebuilt from its
  files while the listener runs (new connections get the new certificate,
  open ones keep theirs); a broken file keeps the old context.
- :class:`TlsPeer` is what a finished handshake tells about the client: the
  protocol version, the cipher, and the subject of its verified certificate
  in RFC 4514 form (:func:`rfc4514_name`).
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ServerTls",
    "TlsConfig",
    "TlsPeer",
    "client_context",
    "describe_handshake_error",
    "rfc4514_name",
    "server_context",
]

log = logging.getLogger("petrel.driver")

#: The oldest protocol either side accepts: TLS 1.0 and 1.1 are deprecated (RFC 8996).
MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS settings; every path is a PEM file."""

    ca_file: str | None = None
    """Certificates to trust.  ``None`` trusts the system store (clients) or, on a
    listener, means client certificates are not asked for."""
    cert_file: str | None = None
    """Our certificate chain: a listener's server certificate, or a client certificate."""
    key_file: str | None = None
    """The private key of ``cert_file`` (may be inside ``cert_file``)."""
    verify: bool = True
    """Clients: check the server's certificate and host name.  Listeners with a
    ``ca_file``: require a client certificate signed by it (false: ask for one, and
    check the one given, but let clients without one in)."""
    check_hostname: bool = True
    """Clients that verify: also check that the certificate names the host dialled
    (off: any certificate the CAs signed will do, e.g. a router reached by address)."""


def client_context(config: TlsConfig | None = None) -> ssl.SSLContext:
    """A client context: verification on by default, TLS 1.2 at least."""
    config = config or TlsConfig()
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=config.ca_file)
    except OSError as exc:
        raise _naming(exc, f"the TLS CA certificates {config.ca_file}") from exc
    context.minimum_version = MINIMUM_VERSION
    if not config.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif not config.check_hostname:
        context.check_hostname = False
    if config.cert_file:
        _load_cert_chain(context, config.cert_file, config.key_file)
    return context


def server_context(config: TlsConfig) -> ssl.SSLContext:
    """A listener context: ``cert_file`` is required; client certificates are asked for
    and checked against ``ca_file`` when it is given (required if ``config.verify``)."""
    if not config.cert_file:
        raise ValueError(
            "a TLS listener needs cert_file (and key_file unless the key is inside it)"
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = MINIMUM_VERSION
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


# --- a listener's context, reloadable -----------------------------------------------------------


class ServerTls:
    """A listener's TLS context, rebuilt from its files on :meth:`reload`.

    The listener reads :attr:`context` for every handshake, so a reload changes
    what new connections get and leaves open ones alone.  Building the first
    context raises (``OSError`` naming the file, ``ValueError``); a reload that
    fails logs one line and keeps the context in use.
    """

    def __init__(self, config: TlsConfig, *, name: str = "TLS listener") -> None:
        self.config = config
        self.name = name
        self._stamp = self._files_stamp()
        self.context = server_context(config)

    @property
    def files(self) -> list[str]:
        """The PEM files the context is built from."""
        config = self.config
        return [f for f in (config.cert_file, config.key_file, config.ca_file) if f]

    def reload(self) -> bool:
        """Build a new context from the files; whether it is now in use."""
        self._stamp = self._files_stamp()
        try:
            context = server_context(self.config)
        except (OSError, ValueError) as exc:
            log.error(
                "%s: reloading the TLS files failed, still using the previous ones: %s",
                self.name,
                exc.strerror if isinstance(exc, OSError) and exc.strerror else exc,
            )
            return False
        self.context = context
        log.info("%s: TLS certificate and CA files reloaded", self.name)
        return True

    def files_changed(self) -> bool:
        """Whether any file changed (or appeared, or vanished) since the last (re)load."""
        return self._files_stamp() != self._stamp

    def _files_stamp(self) -> tuple[tuple[int, int, int] | None, ...]:
        stamps: list[tuple[int, int, int] | None] = []
        for path in self.files:
            try:
                st = os.stat(path)
            except OSError:
                stamps.append(None)
            else:
                stamps.append((st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(stamps)


# --- what the handshake tells about the client --------------------------------------------------


@dataclass(frozen=True, slots=True)
class TlsPeer:
    """The TLS side of an accepted connection, once its handshake is done."""

    version: str
    """The protocol, e.g. ``TLSv1.3``."""
    cipher: str
    """The cipher suite's OpenSSL name."""
    subject: str | None = None
    """The client certificate's subject in RFC 4514 form (``CN=app,O=Example``), if it
    offered one and the listener verified it; ``None`` otherwise."""
    common_names: tuple[str, ...] = ()
    """The subject's ``CN`` values, most specific first (as in :attr:`subject`)."""

    @classmethod
    def of(cls, ssl_object: Any) -> TlsPeer:
        """From an ``ssl.SSLObject`` (or uvloop's equivalent) after the handshake."""
        version = ssl_object.version() or "TLS"
        cipher = ssl_object.cipher()
        # getpeercert() holds a certificate only when it was verified (CERT_OPTIONAL or
        # CERT_REQUIRED and the CAs signed it); otherwise it is empty.
        certificate = ssl_object.getpeercert() or {}
        rdns = certificate.get("subject")
        if not rdns:
            return cls(version, cipher[0] if cipher else "")
        ordered = list(reversed(rdns))
        names = tuple(value for rdn in ordered for key, value in rdn if key == "commonName")
        return cls(version, cipher[0] if cipher else "", rfc4514_name(rdns), names)


#: RFC 4514 section 3's short names, keyed by the long names ``getpeercert()`` uses.
_SHORT_NAMES = {
    "commonName": "CN",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}
#: Other attributes seen in client certificates; RFC 4514 writes them as dotted OIDs.
_OIDS = {
    "emailAddress": "1.2.840.113549.1.9.1",
    "serialNumber": "2.5.4.5",
    "surname": "2.5.4.4",
    "givenName": "2.5.4.42",
    "title": "2.5.4.12",
    "initials": "2.5.4.43",
    "generationQualifier": "2.5.4.44",
    "dnQualifier": "2.5.4.46",
    "pseudonym": "2.5.4.65",
    "businessCategory": "2.5.4.15",
    "postalCode": "2.5.4.17",
    "organizationIdentifier": "2.5.4.97",
    "jurisdictionCountryName": "1.3.6.1.4.1.311.60.2.1.3",
}
#: Characters a value escapes with a backslash wherever they are (RFC 4514 section 2.4).
_SPECIAL = frozenset('"+,;<>\\')


def rfc4514_name(rdns: Iterable[Iterable[tuple[str, str]]]) -> str:
    """A distinguished name as ``getpeercert()`` gives it (RDNs from the root down, each
    a tuple of ``(attribute, value)``) in RFC 4514's string form: most specific RDN
    first, attributes by their short names (else dotted OIDs), values escaped."""
    return ",".join(
        "+".join(f"{_attribute(key)}={_escape(value)}" for key, value in rdn)
        for rdn in reversed(list(rdns))
    )


def _attribute(key: str) -> str:
    return _SHORT_NAMES.get(key) or _OIDS.get(key) or key


def _escape(value: str) -> str:
    out = []
    for char in value:
        if char in _SPECIAL:
            out.append("\\" + char)
        elif char == "\0":
            out.append("\\00")
        else:
            out.append(char)
    if out and out[0] in ("#", " "):
        out[0] = "\\" + out[0]
    if out and out[-1] == " ":
        out[-1] = "\\ "
    return "".join(out)


# --- why a handshake failed -------------------------------------------------------------------

#: OpenSSL's reasons for a failed handshake, as an operator would say them.
_REASONS = {
    "WRONG_VERSION_NUMBER": "not a TLS client (plain AMQP on a TLS port?)",
    "HTTP_REQUEST": "not a TLS client (an HTTP request)",
    "UNSUPPORTED_PROTOCOL": "the client offered only TLS versions older than 1.2",
    "TLSV1_ALERT_PROTOCOL_VERSION": "no TLS version both sides accept (1.2 is the oldest here)",
    "NO_SHARED_CIPHER": "no cipher suite both sides accept",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "the client sent no certificate, and one is required",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the client sent no certificate, and one is required",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the client refused our certificate",
    "TLSV1_ALERT_UNKNOWN_CA": "the client does not trust the CA that signed our certificate",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "the client says our certificate has expired",
}


def describe_handshake_error(exc: BaseException) -> str:
    """One readable line for why a TLS handshake failed."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the client certificate was refused: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        reason = _REASONS.get(exc.reason or "")
        return reason or f"{exc.reason or exc}".lower().replace("_", " ")
    if isinstance(exc, TimeoutError | ConnectionAbortedError) and "longer" in str(exc):
        return "the handshake took too long"
    if isinstance(exc, ConnectionError | EOFError):
        return "the client closed the connection during the handshake"
    return str(exc) or type(exc).__name__
