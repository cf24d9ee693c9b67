"""The options of a client connection, declared once.

:class:`ConnectOptions` is the one declaration: :func:`petrel.connect` and
:func:`petrel.blocking.connect` take exactly its fields as keyword arguments
(:func:`takes_connect_options` gives them its signature, for type checkers and
for ``help()`` alike), and the command-line tools build one from their flags.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

from ..driver import TlsConfig
from .state import Reconnect, StateChange

__all__ = ["ConnectOptions", "Urls", "takes_connect_options"]

#: One URL, or a list of them for failover.
Urls = str | Sequence[str]


@dataclass(frozen=True, kw_only=True)
class ConnectOptions:
    """How to connect (all optional; see :func:`petrel.connect`)."""

    container_id: str | None = None
    """Our container id (default: ``petrel-<uuid>``); it names shared and durable
    subscriptions, so give a stable one for those."""
    username: str | None = None
    """SASL user name (overrides the URL's)."""
    password: str | None = None
    """SASL password (overrides the URL's)."""
    sasl_mechanisms: Sequence[str] | None = None
    """The mechanisms we may use, most preferred first: the first the server offers too is
    used.  Default: with a user name and password SCRAM-SHA-512, SCRAM-SHA-256, then
    PLAIN only over TLS or to a loopback address (it sends the password itself), then
    ANONYMOUS; without, ANONYMOUS.  Naming PLAIN here allows it anywhere.  EXTERNAL (the
    identity of a TLS client certificate, ``tls.cert_file``) is used only when named."""
    sasl: bool = True
    """``False`` skips the SASL layer entirely."""
    tls: TlsConfig | None = None
    """CA file, client certificate and key, ``verify`` (on by default); used for
    ``amqps://``, or for ``amqp://`` too when given."""
    hostname: str | None = None
    """The virtual host sent in ``open`` (default: the URL's path, else its host)."""
    idle_timeout: float | None = None
    """Seconds of silence after which we drop the connection (the peer is asked to send
    heartbeats at least every half of it)."""
    max_frame_size: int = 65536
    """Announced in our ``open``."""
    properties: Mapping[str, Any] | None = None
    """Connection properties announced in our ``open``."""
    reconnect: bool | Reconnect = True
    """``True`` (the default :class:`~petrel.client.Reconnect` policy), ``False``, or a
    ``Reconnect`` of your own."""
    on_state_change: Callable[[StateChange], None] | None = None
    """Called with a :class:`~petrel.client.StateChange` on every state change (in the
    event loop; it must not block)."""
    timeout: float | None = 30.0
    """Seconds allowed for each connection attempt, and the default for opening links."""

    @property
    def reconnect_policy(self) -> Reconnect | None:
        """:attr:`reconnect` as a policy, or ``None`` for no reconnecting."""
        if self.reconnect is True:
            return Reconnect()
        if self.reconnect is False:
            return None
        return self.reconnect


P = ParamSpec("P")
R = TypeVar("R")
#: ``connect(url, options)``, and what it becomes: ``connect(url, **options)``.
_Takes = Callable[[Urls, ConnectOptions], R]


def _options_parameters(
    options: Callable[P, ConnectOptions],
) -> Callable[[Callable[[Urls, ConnectOptions], R]], Callable[Concatenate[Urls, P], R]]:
    def decorate(
        function: Callable[[Urls, ConnectOptions], R],
    ) -> Callable[Concatenate[Urls, P], R]:
        @functools.wraps(function)
        def with_options(url: Urls, /, *args: P.args, **kwargs: P.kwargs) -> R:
            return function(url, options(*args, **kwargs))

        url = inspect.Parameter("url", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="Urls")
        fields = inspect.signature(ConnectOptions).parameters.values()
        signature = inspect.signature(function)
        with_options.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[url, *fields]
        )
        return with_options

    return decorate


#: Decorates ``connect(url, options)`` into ``connect(url, **fields of ConnectOptions)``.
takes_connect_options = _options_parameters(ConnectOptions)
