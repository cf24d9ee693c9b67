"""Server configuration: one typed model, read from TOML, overridden by the command line.

The config file is TOML.  Every key is optional; a file may be as small as::

    [[listeners]]
    url = "amqp://0.0.0.0:5672"
    allow_anonymous = true

    [[queues]]
    name = "orders"
    max_messages = 100000
    dead_letter_address = "orders.dlq"

Unknown keys are errors (a typo must not be silently ignored).  Problems are
reported as one :class:`ConfigError` line naming the file, the key and what
is wrong.
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .. import tracing
from ..driver import parse_url
from .access import AccessSettings
from .tls import IdentityRule

__all__ = [
    "MAX_COST",
    "SASL_MECHANISMS",
    "AddressSettings",
    "BrokerSettings",
    "ConfigError",
    "ConnectorSettings",
    "ConnectorTlsSettings",
    "HttpSettings",
    "LimitSettings",
    "ListenerSettings",
    "QueueSettings",
    "ServerSettings",
    "TlsSettings",
    "TracingSettings",
    "UserSettings",
    "load_settings",
    "read_settings",
]


class ConfigError(ValueError):
    """The configuration is unusable; the message is one line naming the problem."""


#: The highest cost a listener or connector may give an inter-router connection.
MAX_COST = 2**24
#: The SASL mechanisms a listener may offer, in the order a server prefers them.
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN", "EXTERNAL", "ANONYMOUS")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsSettings(_Model):
    """TLS for a listener (PEM files)."""

    cert_file: str
    """The server certificate chain."""
    key_file: str | None = None
    """Its private key, unless it is inside ``cert_file``."""
    ca_file: str | None = None
    """CA certificates that sign client certificates.  Given: clients are asked for a
    certificate, and one offered must be signed by them (a client without one still
    gets in, unless ``require_client_cert``).  None: client certificates are not asked
    for."""
    require_client_cert: bool = False
    """Refuse clients without a certificate signed by ``ca_file`` (which is then
    required)."""
    external_identity: str | None = None
    """How a verified client certificate names its user for SASL EXTERNAL: ``"cn"`` (the
    subject's common name), ``"subject"`` (the whole subject, RFC 4514:
    ``CN=app,O=Example``), or a regular expression matching the whole RFC 4514 subject
    with a group ``(?P<user>...)``.  Needs ``ca_file``.  None: EXTERNAL is not offered,
    and the certificate admits the client to the TLS layer only."""
    reload_interval: float = Field(default=5.0, ge=0)
    """Seconds between checks of the certificate, key and CA files: when they change,
    new connections get the new ones (open ones carry on).  0: reload on SIGHUP only."""

    @field_validator("external_identity")
    @classmethod
    def _check_identity(cls, value: str | None) -> str | None:
        if value is not None:
            IdentityRule(value)  # raises ValueError naming what is wrong
        return value

    @model_validator(mode="after")
    def _check_ca(self) -> TlsSettings:
        if self.external_identity is not None and not self.ca_file:
            # Without CAs no client certificate is asked for: EXTERNAL would never work.
            raise ValueError(
                "tls.external_identity needs tls.ca_file (the CA certificates that sign "
                "client certificates)"
            )
        return self


def _check_amqp_url(value: str, what: str) -> str:
    """``value`` if it is an ``amqp://`` or ``amqps://`` URL (a bare ``host:port`` means
    ``amqp://``) with a usable port; else a ``ValueError`` naming it."""
    if "://" in value and value.split("://", 1)[0].lower() not in ("amqp", "amqps"):
        raise ValueError(f"{value!r}: a {what} URL starts with amqp:// or amqps://")
    parse_url(value)  # raises ValueError naming a bad port
    if "?" in value:
        # parse_url ignores a query: a "?cost=5" here would be silently lost.
        raise ValueError(f"{value!r}: a {what} URL has no ?query part")
    return value


def _is_amqps(url: str) -> bool:
    return url.lower().startswith("amqps://")


def _is_http_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() in ("http", "https") if "://" in url else False


def _check_http_url(value: str) -> str:
    """``value`` if it is an ``http://host:port`` or ``https://host:port`` URL with no path
    or query; else a ``ValueError`` naming the problem."""
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"bad port in URL {value!r}") from None
    if port is None:
        raise ValueError(f"{value!r}: an HTTP listener URL names its port (http://host:port)")
    if parts.path not in ("", "/") or parts.query or parts.username or parts.password:
        raise ValueError(f"{value!r}: an HTTP listener URL is http[s]://host:port, nothing more")
    return value


class ListenerSettings(_Model):
    """Where the server accepts connections, and how it authenticates them."""

    url: str = "amqp://127.0.0.1:5672"
    """``amqp://host:port`` or ``amqps://host:port`` (then ``tls`` is required); for
    ``role = "http"``, ``http://host:port`` or ``https://host:port`` (likewise)."""
    allow_anonymous: bool | None = None
    """Serve clients that skip SASL or choose ANONYMOUS.  Unset: yes on a loopback
    address, no elsewhere (a safe default for a listener others can reach)."""
    tls: TlsSettings | None = None
    role: Literal["normal", "inter-router", "http"] = "normal"
    """``normal``: clients connect here.  ``inter-router``: other routers of the network
    connect here (routers only; a broker refuses it).  ``http``: the server's one HTTP
    listener: ``/metrics`` (Prometheus) and AMQP over WebSockets (see docs/http.md)."""
    cost: int = Field(default=1, ge=1, le=MAX_COST)
    """Inter-router listeners: the cost of the connections accepted here, in the
    network's least-cost paths (the higher of both ends' costs counts).  Setting it
    on a normal listener is an error."""
    sasl_mechanisms: list[str] | None = None
    """The SASL mechanisms offered here, from SCRAM-SHA-512, SCRAM-SHA-256, PLAIN,
    EXTERNAL and ANONYMOUS (each still only where it can work: PLAIN and SCRAM with
    users, EXTERNAL with a client certificate, ANONYMOUS where anonymous clients are
    allowed).  Unset: all of them."""
    allow_plain_without_tls: bool = False
    """Offer PLAIN (passwords in the clear) on a listener that is neither TLS nor on a
    loopback address.  Off: such a listener offers SCRAM only."""

    @field_validator("sasl_mechanisms")
    @classmethod
    def _check_mechanisms(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        names = [name.upper() for name in value]
        for name in names:
            if name not in SASL_MECHANISMS:
                raise ValueError(
                    f"unknown SASL mechanism {name!r}; the allowed ones are "
                    f"{', '.join(SASL_MECHANISMS)}"
                )
        if not names:
            raise ValueError(f"name at least one of {', '.join(SASL_MECHANISMS)}")
        return list(dict.fromkeys(names))

    @property
    def on_loopback(self) -> bool:
        """Whether it listens on a loopback address only (``localhost``, ``127.x``, ``::1``)."""
        host = self.url.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
        if host in ("localhost", ""):
            return host == "localhost"
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if _is_http_url(value):
            return _check_http_url(value)
        return _check_amqp_url(value, "listener")

    @model_validator(mode="after")
    def _check_tls(self) -> ListenerSettings:
        if self.role != "http" and _is_http_url(self.url):
            raise ValueError(
                f"{self.url!r}: a listener URL starts with amqp:// or amqps:// "
                '(an http:// or https:// one is for role = "http")'
            )
        if self.role == "http" and not _is_http_url(self.url):
            raise ValueError(
                f'listener {self.url}: role = "http" goes with an http:// or https:// URL'
            )
        amqps = _is_amqps(self.url) or self.url.lower().startswith("https://")
        if amqps and self.tls is None:
            raise ValueError(
                f"listener {self.url} is {self.url.split(':')[0]}:// but has no [tls] settings"
            )
        if not amqps and self.tls is not None:
            # Otherwise the settings would be ignored: clients would talk in the clear.
            raise ValueError(
                f"listener {self.url} has [tls] settings but is not amqps:// (or https://)"
            )
        if self.tls is not None and self.tls.require_client_cert and not self.tls.ca_file:
            # Without CAs to check them against, no client certificate would be asked for.
            raise ValueError(
                f"listener {self.url}: tls.require_client_cert = true needs tls.ca_file "
                "(the CA certificates that sign client certificates)"
            )
        if self.role == "normal" and "cost" in self.model_fields_set:
            # A cost there would be ignored: most likely role = "inter-router" is missing.
            raise ValueError(
                f'listener {self.url}: cost applies to role = "inter-router" listeners only'
            )
        return self

    @property
    def anonymous_allowed(self) -> bool:
        """Whether anonymous clients are served here (see ``allow_anonymous``)."""
        if self.allow_anonymous is not None:
            return self.allow_anonymous
        host = self.url.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
        if host in ("localhost", ""):
            return host == "localhost"
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


class ConnectorTlsSettings(_Model):
    """TLS for a connector (PEM files): how the server checks the peer it dials, and the
    certificate it shows when the peer asks for one."""

    ca_file: str | None = None
    """CA certificates that sign the peer's certificate.  None: the system's trusted CAs."""
    cert_file: str | None = None
    """Our certificate chain, for a peer that asks for a client certificate.  A connector
    with one and no ``username`` logs in with SASL EXTERNAL where the peer offers it (the
    peer maps the certificate to a user), else ANONYMOUS."""
    key_file: str | None = None
    """Its private key, unless it is inside ``cert_file``."""
    verify_hostname: bool = True
    """Check that the peer's certificate names the host of the URL.  False still checks
    that the certificate is signed by ``ca_file`` (for peers reached by IP address)."""

    @model_validator(mode="after")
    def _check_key(self) -> ConnectorTlsSettings:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("tls.key_file needs tls.cert_file (the certificate it belongs to)")
        return self


class ConnectorSettings(_Model):
    """A connection the server opens itself and keeps open (re-dialling after a loss):
    a router to another router now; later, a router to a broker.

    ``role`` says what the peer is to us; each role has its own keys (``cost`` is the
    inter-router one).  A new role (``route-container``, for brokers) is one more
    literal here, and its keys refused for the others in ``_check``.
    """

    name: str | None = Field(default=None, min_length=1)
    """What management calls it.  Unset: ``connector-N``, N its place (from 1) in the
    ``[[connectors]]`` list (a server's settings fill it in)."""
    url: str
    """``amqp://host:port`` or ``amqps://host:port`` (then ``tls`` is required).  No user
    name or password in it: those go in ``username`` and ``password``."""
    role: Literal["inter-router", "route-container", "edge"] = "inter-router"
    """What the peer is: ``inter-router``, another router of the network."""
    cost: int = Field(default=1, ge=1, le=MAX_COST)
    """The connection's cost in the network's least-cost paths."""
    username: str | None = Field(default=None, min_length=1)
    """Authenticate with SASL PLAIN as this user (with ``password``).  Unset: ANONYMOUS."""
    password: str | None = None
    tls: ConnectorTlsSettings | None = None

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        _check_amqp_url(value, "connector")
        address = parse_url(value)
        if not address.host:
            raise ValueError(f"{value!r}: a connector URL names the host to dial")
        if address.user is not None or address.password is not None:
            # The URL is shown by management and in logs: keep secrets out of it.
            raise ValueError(
                f"connector {address}: put the user name and password in username and "
                "password, not in the URL"
            )
        return value

    @model_validator(mode="after")
    def _check(self) -> ConnectorSettings:
        amqps = _is_amqps(self.url)
        if amqps and self.tls is None:
            raise ValueError(f"connector {self.url} is amqps:// but has no [tls] settings")
        if not amqps and self.tls is not None:
            raise ValueError(f"connector {self.url} has [tls] settings but is not amqps://")
        if self.password is not None and self.username is None:
            raise ValueError(f"connector {self.url}: password needs username")
        return self


class UserSettings(_Model):
    """A user written in the config itself (``[[users]]``), password and all.  The server
    turns the password into SCRAM credentials as it loads; a users file
    (``users_file``, edited with ``petrel user``) keeps credentials only."""

    name: str = Field(min_length=1)
    password: str
    admin: bool = False
    """May use the management node (``$management``): ``petrel stat``, ``petrel manage``."""
    groups: list[str] = Field(default_factory=list)
    """The groups it belongs to (for ``[access]`` rules that name ``@group``)."""


class QueueSettings(_Model):
    """A queue's policies; the same keys set the defaults for auto-created queues."""

    name: str = ""
    """The queue's name (for declared queues)."""
    address: str | None = None
    """The address that routes to it; defaults to the name."""
    routing: Literal["anycast", "multicast"] = "anycast"
    max_messages: int | None = Field(default=None, ge=1)
    """At most this many messages; then ``full_policy`` applies."""
    max_bytes: int | None = Field(default=None, ge=1)
    """At most this many bytes of messages; then ``full_policy`` applies."""
    full_policy: Literal["block", "reject"] = "block"
    """``block``: producers get no more credit until there is room.  ``reject``:
    a message that does not fit is rejected with ``amqp:resource-limit-exceeded``."""
    max_delivery_attempts: int = Field(default=10, ge=0)
    """A message delivered this many times without being accepted goes to the
    dead-letter address (0: no limit)."""
    dead_letter_address: str | None = None
    expiry_address: str | None = None
    """Where expired messages go; none: they are dropped."""
    default_ttl: float | None = Field(default=None, gt=0)
    """Seconds to live for messages that carry no TTL of their own."""
    memory_limit_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    """Beyond this many bytes of message bodies in memory the queue pages new bodies to
    disk and reads them back ahead of its consumers (0: never page)."""


class AddressSettings(_Model):
    """An address declared up front."""

    name: str = Field(min_length=1)
    routing: Literal["anycast", "multicast"] = "anycast"


class LimitSettings(_Model):
    """Resource limits that protect the server from any one client."""

    max_connections: int = Field(default=10_000, ge=1)
    max_sessions_per_connection: int = Field(default=256, ge=1)
    max_links_per_session: int = Field(default=1024, ge=1)
    max_message_size: int = Field(default=100 * 1024 * 1024, ge=512)
    max_frame_size: int = Field(default=65536, ge=512)
    idle_timeout: float = Field(default=60.0, ge=0)
    """Seconds of silence after which a client is disconnected (0: never)."""
    sasl_timeout: float = Field(default=10.0, gt=0)
    """Seconds a client may take from connecting to finishing its open."""
    max_pending_per_host: int = Field(default=1000, ge=1)
    """Connections from one IP address that may be between connecting and finishing their
    open at once; more are dropped at once (a flood, or a slowloris)."""
    write_stall_timeout: float = Field(default=60.0, ge=0)
    """Seconds a client may leave the server's output to it unread (the write buffer over
    its high-water mark with nothing drained) before it is cut (0: never)."""
    max_write_backlog: int = Field(default=1024 * 1024, ge=64 * 1024)
    """Bytes a client that does not read may make the server queue for it (answers to
    what it sends) after the write buffer filled; past them the server stops reading it
    until it drains."""
    link_rate: float = Field(default=1000.0, ge=0)
    """Links and sessions a client may begin per second on one connection, with bursts of
    as many at once; past that the server reads from it only as fast as the rate allows
    (nothing is refused: a client churning links cannot take the server from the others).
    0: no limit."""
    refusal_log_period: float = Field(default=10.0, gt=0)
    """Seconds of each period in which at most 10 refusals of one kind (connections
    dropped by these limits, failed TLS handshakes) are logged one by one; the others
    are counted in one line when the period ends."""


class HttpSettings(_Model):
    """The ``[http]`` section: what the HTTP listener (``role = "http"``) serves."""

    default_listener: bool = False
    """When no ``[[listeners]]`` entry has ``role = "http"``, serve HTTP on
    ``http://127.0.0.1:8672`` anyway, if that port is free (a warning otherwise).
    ``petrel broker`` and ``petrel router`` turn it on (``--no-http`` off); a server made
    in a program gets HTTP only from an explicit listener."""
    connection_metrics: bool = False
    """Also serve per-connection and per-link series on ``/metrics`` (one series per
    connection and link: many, on a busy server)."""
    websockets: bool = True
    """Accept AMQP over WebSockets on the HTTP listener (paths ``/`` and ``/amqp``)."""


class TracingSettings(_Model):
    """The ``[tracing]`` section: OpenTelemetry spans for the messages that pass (see
    :mod:`petrel.tracing`); they go to the process's global tracer provider."""

    enabled: bool = False
    """Add a span for each step of a traced message (one that carries ``traceparent``):
    publish, deliver and acknowledge on the broker, route on a router.  Needs
    OpenTelemetry's API (``pip install 'petrel[otel]'``)."""

    @field_validator("enabled")
    @classmethod
    def _check_installed(cls, enabled: bool) -> bool:
        if enabled and not tracing.AVAILABLE:
            raise ValueError(tracing.NOT_INSTALLED)
        return enabled


class ServerSettings(_Model):
    """What every Petrel server (the broker, a router) is told: who it is, where it
    listens, whom it lets in, and its limits."""

    container_id: str = "petrel"
    listeners: list[ListenerSettings] = Field(default_factory=lambda: [ListenerSettings()])
    users: list[UserSettings] = Field(default_factory=list)
    users_file: str | None = None
    """A users file (``petrel user add --file PATH NAME``): SCRAM credentials, groups and
    the admin flag of each user, reloaded when it changes.  Relative paths are taken from
    the working directory.  Its users join the inline ``[[users]]``."""
    limits: LimitSettings = Field(default_factory=LimitSettings)
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = "info"
    http: HttpSettings = Field(default_factory=HttpSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    access: AccessSettings | None = None
    """Authorisation, virtual hosts and per-user/per-host limits (:mod:`.access`).
    Unset: every admitted client may use every address, as without it."""

    @model_validator(mode="after")
    def _check_http(self) -> ServerSettings:
        http = [listener.url for listener in self.listeners if listener.role == "http"]
        if len(http) > 1:
            raise ValueError(f"a server has one HTTP listener, not {len(http)}: {', '.join(http)}")
        return self


class BrokerSettings(ServerSettings):
    """Everything the broker can be told."""

    auto_create: bool = True
    """Create a queue (or topic) when a client attaches to an unknown address."""
    store: Literal["memory", "sqlite", "postgresql"] = "sqlite"
    store_url: str | None = None
    """The PostgreSQL connection URL (``postgresql://...``) for ``store = "postgresql"``."""
    data_dir: str = "petrel-data"
    addresses: list[AddressSettings] = Field(default_factory=list)
    queues: list[QueueSettings] = Field(default_factory=list)
    queue_defaults: QueueSettings = Field(default_factory=QueueSettings)
    transaction_timeout: float = Field(default=60.0, ge=0)
    """Seconds a transaction may stay idle (nothing sent, settled or discharged in it)
    before the broker rolls it back (``amqp:transaction:timeout``); 0: never."""
    max_transaction_work: int = Field(default=10_000, ge=1)
    """Messages sent plus outcomes given in one transaction, at most, until it is discharged
    (the broker holds them in memory meanwhile)."""

    @model_validator(mode="after")
    def _check(self) -> BrokerSettings:
        for listener in self.listeners:
            if listener.role not in ("normal", "http"):
                raise ValueError(
                    f"listener {listener.url}: role = {listener.role!r} is for routers; "
                    'a broker\'s listeners are role = "normal" or "http"'
                )
        if self.store == "postgresql" and not self.store_url:
            raise ValueError('store = "postgresql" needs store_url')
        names = [q.name for q in self.queues]
        for queue in self.queues:
            if not queue.name:
                raise ValueError("every [[queues]] entry needs a name")
            if queue.routing != "anycast":
                raise ValueError(
                    f"queue {queue.name!r}: a [[queues]] entry is a queue (anycast); declare a "
                    'topic in [[addresses]] with routing = "multicast"'
                )
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"queue {sorted(duplicates)[0]!r} is declared twice")
        return self


SettingsT = TypeVar("SettingsT", bound=ServerSettings)


def load_settings(path: str | Path | None = None, **overrides: Any) -> BrokerSettings:
    """The broker's settings: :func:`read_settings` with :class:`BrokerSettings`."""
    return read_settings(BrokerSettings, path, **overrides)


def read_settings(
    model: type[SettingsT], path: str | Path | None = None, **overrides: Any
) -> SettingsT:
    """Read a TOML config file (if given) into ``model``, a server's settings class, and
    apply ``overrides`` (non-``None`` values win).

    Raises :class:`ConfigError` with one readable line.
    """
    data: dict[str, Any] = {}
    source = "command line"
    if path is not None:
        source = str(path)
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    for key, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown setting"
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{location}: {message}{suffix}" if location else f"{message}{suffix}"
