"""How a server admits its connections: SASL, the anonymous rule, and the limits.

:class:`ConnectionPolicy` is made once per server from its settings and read
by every connection handler; handlers never see the server itself (the shape
of uvicorn's ``ServerState``).  The broker and the router share it.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from ..engine import ConnectionConfig, SaslConfig
from ..errors import AmqpError, Condition
from ..types import Symbol
from .config import LimitSettings, ListenerSettings, ServerSettings

__all__ = ["ConnectionPolicy"]


class ConnectionPolicy:
    """The admission rules of one server (see the module docstring).

    - Authentication: SASL PLAIN against the configured users; ANONYMOUS (and
      no SASL at all) where the listener allows anonymous clients, which by
      default is on loopback only.
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
        self._users = {user.name: user.password for user in settings.users}
        self._admins = frozenset(user.name for user in settings.users if user.admin)

    def connection_config(self, listener: ListenerSettings) -> ConnectionConfig:
        """The engine's configuration for a connection accepted on ``listener``."""
        limits = self.limits
        mechanisms = ["PLAIN"] if self._users else []
        if listener.anonymous_allowed:
            mechanisms.append("ANONYMOUS")
        return ConnectionConfig(
            container_id=self.container_id,
            max_frame_size=limits.max_frame_size,
            idle_timeout=limits.idle_timeout or None,
            offered_capabilities=self.offered_capabilities,
            properties=self.properties,
            sasl=SaslConfig(
                mechanisms=mechanisms or ["ANONYMOUS"],
                authenticator=self.authenticate if self._users else None,
            ),
            allow_no_sasl=listener.anonymous_allowed,
            max_message_size=limits.max_message_size,
        )

    def authenticate(self, username: str, password: str, authzid: str | None) -> str | None:
        """SASL PLAIN: the identity, or ``None`` when the credentials are wrong."""
        expected = self._users.get(username)
        if expected is None:
            # Compare anyway so a wrong user name takes as long as a wrong password.
            hmac.compare_digest(password.encode(), password.encode())
            return None
        if not hmac.compare_digest(expected.encode(), password.encode()):
            return None
        if authzid and authzid != username:
            return None
        return username

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
        return AmqpError(
            "this listener requires authentication (SASL PLAIN)",
            condition=Condition.UNAUTHORIZED_ACCESS,
        )

    def may_manage(self, identity: str | None, mechanism: str | None, peer_host: str) -> bool:
        """Whether a connection may use the management node: an admin user, or an
        anonymous client on this machine (``peer_host`` is a loopback address)."""
        if identity is not None and mechanism not in (None, "ANONYMOUS"):
            return identity in self._admins
        return _is_loopback(peer_host)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"
