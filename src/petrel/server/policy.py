"""How a server admits its connections: SASL mechanisms and users, the anonymous rule, and
the limits.

:class:`ConnectionPolicy` is made once per server from its settings and read
by every connection handler; handlers never see the server itself (the shape
of uvicorn's ``ServerState``).  The broker and the router share it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from ..engine import ConnectionConfig, SaslConfig
from ..errors import AmqpError, Condition
from ..types import Symbol
from .config import SASL_MECHANISMS, LimitSettings, ListenerSettings, ServerSettings
from .users import UserDirectory

__all__ = ["ConnectionPolicy"]


class ConnectionPolicy:
    """The admission rules of one server (see the module docstring).

    - Authentication: the mechanisms of :meth:`mechanisms_for` (SCRAM-SHA-512,
      SCRAM-SHA-256 and PLAIN against :attr:`users`; EXTERNAL where the
      transport established an identity; ANONYMOUS, and no SASL at all, where
      the listener allows anonymous clients, which by default is on loopback
      only).
    - Limits (:class:`~petrel.server.config.LimitSettings`): frame and message
      size and the idle timeout go to the engine; connections, sessions and
      links are counted by the server and its connections.
    """

    def __init__(
        self,
        settings: ServerSettings,
        *,
        offered_capabilities: Iterable[Symbol] = (),
        properties: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.limits: LimitSettings = settings.limits
        self.container_id = settings.container_id
        self.offered_capabilities = list(offered_capabilities)
        self.properties = dict(properties) if properties else None
        #: Who may authenticate (raises :class:`~petrel.server.users.UsersFileError`, a
        #: ``ConfigError``, when the users file cannot be read).
        self.users = UserDirectory(settings.users, settings.users_file)

    def mechanisms_for(
        self, listener: ListenerSettings, external_identity: str | None = None
    ) -> list[str]:
        """The SASL mechanisms offered on ``listener``, most preferred first: those it
        allows (``sasl_mechanisms``) that can work there.  PLAIN is left out on a
        listener that is neither TLS nor on loopback unless ``allow_plain_without_tls``."""
        allowed = listener.sasl_mechanisms or SASL_MECHANISMS
        users = self.users.active
        plain_safe = (
            listener.tls is not None or listener.on_loopback or listener.allow_plain_without_tls
        )
        usable = {
            "SCRAM-SHA-512": users,
            "SCRAM-SHA-256": users,
            "PLAIN": users and plain_safe,
            "EXTERNAL": external_identity is not None,
            "ANONYMOUS": listener.anonymous_allowed,
        }
        return [name for name in allowed if usable.get(name, False)]

    def connection_config(
        self, listener: ListenerSettings, *, external_identity: str | None = None
    ) -> ConnectionConfig:
        """The engine's configuration for a connection accepted on ``listener``;
        ``external_identity`` is who the transport says the client is (a TLS client
        certificate's identity), which SASL EXTERNAL grants."""
        self.users.refresh()  # one stat: picks up an edited users file
        limits = self.limits
        mechanisms = self.mechanisms_for(listener, external_identity)
        users = self.users
        return ConnectionConfig(
            container_id=self.container_id,
            max_frame_size=limits.max_frame_size,
            idle_timeout=limits.idle_timeout or None,
            offered_capabilities=self.offered_capabilities,
            properties=self.properties,
            sasl=SaslConfig(
                # Offering nothing would end the exchange before it began; ANONYMOUS (then
                # refused at open, naming what the listener requires) says more.
                mechanisms=mechanisms or ["ANONYMOUS"],
                authenticator=self.authenticate if users.active else None,
                scram_credentials=users.scram_credential if users.active else None,
                scram_secret=users.secret,
                scram_iterations=users.iterations,
                external_identity=external_identity,
            ),
            allow_no_sasl=listener.anonymous_allowed,
            max_message_size=limits.max_message_size,
        )

    def authenticate(self, username: str, password: str, authzid: str | None) -> str | None:
        """SASL PLAIN: the identity, or ``None`` when the credentials are wrong (checked
        against the user's SCRAM credential, see
        :meth:`~petrel.server.users.UserDirectory.check_password`)."""
        if not self.users.check_password(username, password):
            return None
        if authzid and authzid != username:
            return None
        return username

    def reload_users(self) -> bool:
        """Read the users file again now (for SIGHUP); whether it worked."""
        return self.users.reload()

    def over_connection_limit(self, count: int) -> tuple[AmqpError | None, bool]:
        """For the ``count``-th live connection: the refusal it gets once it has opened
        (``None``: welcome), and whether to drop its socket at once instead (a flood:
        beyond twice the limit even a refusal costs too much)."""
        limit = self.limits.max_connections
        if count <= limit:
            return None, False
        refusal = AmqpError(
            f"the server accepts at most {limit} connections",
            condition=Condition.RESOURCE_LIMIT_EXCEEDED,
        )
        return refusal, count > 2 * limit

    def open_refusal(
        self, listener: ListenerSettings, identity: str | None, mechanism: str | None
    ) -> AmqpError | None:
        """Why a client that authenticated as ``identity`` with ``mechanism`` (both
        ``None`` without SASL) may not open a connection on ``listener``, or ``None``."""
        authenticated = identity is not None and mechanism not in (None, "ANONYMOUS")
        if authenticated or listener.anonymous_allowed:
            return None
        offered = [m for m in self.mechanisms_for(listener) if m != "ANONYMOUS"]
        return AmqpError(
            "this listener requires authentication"
            + (f" ({', '.join(offered)})" if offered else ": no user may log in here"),
            condition=Condition.UNAUTHORIZED_ACCESS,
        )

    def may_manage(self, identity: str | None, mechanism: str | None, peer_host: str) -> bool:
        """Whether a connection may use the management node: an admin user, or an
        anonymous client on this machine (``peer_host`` is a loopback address)."""
        if identity is not None and mechanism not in (None, "ANONYMOUS"):
            return self.users.is_admin(identity)
        return _is_loopback(peer_host)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"
