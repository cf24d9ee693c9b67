"""The HTTP listener of a broker or router (aiohttp).

Paths:

- ``GET /metrics``: the Prometheus text format (:mod:`.metrics`).  Open to
  clients on loopback; from elsewhere it needs HTTP Basic credentials of a
  user who may manage the server (the same rule, and the same users, as the
  ``$management`` node: :meth:`~petrel.server.policy.ConnectionPolicy.may_manage`).
- ``/`` and ``/amqp`` with a WebSocket upgrade: AMQP over WebSockets (the
  OASIS binding, subprotocol ``amqp``; :mod:`.websocket`).  A plain ``GET /``
  redirects a browser (``Accept: text/html``) to the web console and answers
  others with a short index.
- ``GET /console/``: the web console's pages, and ``POST /api/management``: the
  ``$management`` node as JSON (:mod:`.console`).  Both need the manage right,
  as ``/metrics`` does.

Which listener, and when (:meth:`HttpService.start_default`): a ``[[listeners]]``
entry with ``role = "http"`` (``--http URL``) is bound like any listener,
and a failure to bind it stops the server from starting.  Without one, a
server whose settings say ``[http] default_listener = true`` (``petrel broker``
and ``petrel router`` unless ``--no-http``) tries :data:`DEFAULT_HTTP_URL` and,
when that port is taken (by another Petrel on the machine, say), logs a
warning and runs without HTTP.  A server made in a program (``Broker(settings)``)
gets HTTP only from an explicit listener.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import BasicAuth, hdrs, web
from prometheus_client import CollectorRegistry, generate_latest

from ..._version import __version__
from ...driver import AmqpProtocol, server_context
from ...management import ManagementAgent
from ...store import CommitStats
from ..config import ListenerSettings, ServerSettings, read_settings
from ..listening import Listeners, _tls_config
from ..policy import ConnectionPolicy
from .console import (
    API_PATH,
    CONSOLE_PATH,
    ConsoleFiles,
    answer_management,
    rebinding_refusal,
)
from .metrics import PetrelCollector, take_snapshot
from .websocket import serve_amqp_websocket

__all__ = [
    "DEFAULT_HTTP_URL",
    "HttpListener",
    "HttpService",
    "HttpView",
    "apply_http_options",
    "http_listeners",
]

log = logging.getLogger("petrel.server.http")

#: Where ``petrel broker`` and ``petrel router`` serve HTTP when told nothing else.
DEFAULT_HTTP_URL = "http://127.0.0.1:8672"
#: Seconds the HTTP server waits for its requests to finish at shutdown.
SHUTDOWN_TIMEOUT = 2.0
#: The classic Prometheus text format, which every Prometheus reads (what
#: ``generate_latest`` writes for names like ours).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: The paths that take AMQP over WebSocket upgrades.
WEBSOCKET_PATHS = ("/", "/amqp")


def _no_stats() -> CommitStats | None:
    return None


@dataclass(frozen=True, slots=True)
class HttpView:
    """What the HTTP side sees of its server (never the server itself)."""

    kind: str
    """``broker`` or ``router``: named in ``petrel_server_info``."""
    agent: ManagementAgent
    """The server's entity model (what ``/metrics`` reads)."""
    policy: ConnectionPolicy
    """Who may read ``/metrics``: :meth:`~ConnectionPolicy.authenticate` and
    :meth:`~ConnectionPolicy.may_manage`."""
    accept: Callable[[ListenerSettings], AmqpProtocol]
    """A new server connection for a WebSocket accepted on a listener
    (:meth:`~petrel.server.listening.Listeners.accept`)."""
    commit_stats: Callable[[], CommitStats | None] = _no_stats
    """The store's commit figures, if it has them."""


def http_listeners(settings: ServerSettings) -> list[ListenerSettings]:
    """The ``role = "http"`` entries of ``settings.listeners``."""
    return [listener for listener in settings.listeners if listener.role == "http"]


SettingsT = TypeVar("SettingsT", bound=ServerSettings)


def apply_http_options(settings: SettingsT, *, url: str | None, enabled: bool) -> SettingsT:
    """``settings`` as ``petrel broker`` and ``petrel router`` run them: ``url`` (``--http``)
    replaces the HTTP listener of the file; ``enabled`` false (``--no-http``) removes it;
    otherwise :data:`DEFAULT_HTTP_URL` is served when the file names no HTTP listener
    (``[http] default_listener``).  Raises :class:`~petrel.server.ConfigError`."""
    data = settings.model_dump(exclude_unset=True)
    listeners = [
        listener.model_dump(exclude_unset=True)
        for listener in settings.listeners
        if listener.role != "http" or (enabled and url is None)
    ]
    if enabled and url is not None:
        listeners.append({"url": url, "role": "http"})
    data["listeners"] = listeners
    data["http"] = {**data.get("http", {}), "default_listener": enabled}
    return read_settings(type(settings), None, **data)


class HttpListener:
    """One bound HTTP listener (kept by :class:`~petrel.server.listening.Listeners` beside
    the AMQP ones)."""

    def __init__(self, settings: ListenerSettings, site: web.TCPSite, bound: list[Any]) -> None:
        self.settings = settings
        self.site = site
        self._bound = [(str(name[0]), int(name[1])) for name in bound]
        self._closed = False

    @property
    def bound(self) -> list[tuple[str, int]]:
        return [] if self._closed else list(self._bound)

    async def close(self) -> None:
        """Stop accepting; WebSockets already open carry on (the server closes them)."""
        if not self._closed:
            self._closed = True
            await self.site.stop()


class HttpService:
    """The HTTP side of one server (see the module docstring)."""

    def __init__(self, view: HttpView, settings: ServerSettings) -> None:
        self.view = view
        self.settings = settings
        self.http = settings.http
        self._runners: list[web.AppRunner] = []
        self._sockets: set[web.WebSocketResponse] = set()
        self._console: ConsoleFiles | None = None

    def attach(self, listeners: Listeners) -> None:
        """Let ``listeners`` bind ``role = "http"`` entries through this service."""
        listeners.start_http = self.start_listener

    async def start_default(self, listeners: Listeners) -> None:
        """Without an HTTP listener in the settings, try :data:`DEFAULT_HTTP_URL` if the
        settings ask for it; a port in use there is a warning, not a failure."""
        if not self.http.default_listener or http_listeners(self.settings):
            return
        try:
            await listeners.add(ListenerSettings(url=DEFAULT_HTTP_URL, role="http"))
        except OSError as exc:
            log.warning(
                "no HTTP (metrics, WebSockets): %s; give --http URL for another port, or --no-http",
                exc.strerror or exc,
            )

    async def start_listener(self, settings: ListenerSettings) -> HttpListener:
        """Bind one HTTP listener; raises ``OSError`` naming its URL when it cannot."""
        app = web.Application(handler_args={"max_field_size": 8190})
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get(CONSOLE_PATH.rstrip("/"), self._console_file)
        app.router.add_get(CONSOLE_PATH + "{name:[A-Za-z0-9_.-]*}", self._console_file)
        app.router.add_post(API_PATH, self._management)

        async def root(request: web.Request) -> web.StreamResponse:
            return await self._root(request, settings)

        for path in WEBSOCKET_PATHS:
            app.router.add_get(path, root)
        runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT, handle_signals=False
        )
        await runner.setup()
        address = settings.url.split("://", 1)[1].rstrip("/")
        host, _, port = address.rpartition(":")
        ssl_context = None
        tls = _tls_config(settings)
        if tls is not None:
            ssl_context = server_context(tls)
        site = web.TCPSite(
            runner, host.strip("[]") or None, int(port), ssl_context=ssl_context, backlog=128
        )
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(exc.errno, f"cannot listen on {settings.url}: {exc.strerror}") from exc
        self._runners.append(runner)
        bound = list(runner.addresses)
        for name in bound:
            log.info("HTTP on %s://%s:%s", settings.url.split("://")[0], name[0], name[1])
        return HttpListener(settings, site, bound)

    async def close(self) -> None:
        """Release everything: call after the server has closed its connections (those
        over WebSockets among them), so that nothing is cut short here."""
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close()
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()

    # --- handlers -------------------------------------------------------------------------

    async def _root(self, request: web.Request, listener: ListenerSettings) -> web.StreamResponse:
        if _is_upgrade(request):
            if not self.http.websockets:
                return _text(404, "AMQP over WebSockets is turned off on this server\n")
            return await serve_amqp_websocket(
                request, lambda: self.view.accept(listener), self._sockets, self.settings
            )
        if request.path != "/":
            return _text(
                400,
                "this path takes AMQP over WebSocket only: a WebSocket upgrade with "
                "Sec-WebSocket-Protocol: amqp\n",
            )
        if "text/html" in request.headers.get(hdrs.ACCEPT, ""):
            raise web.HTTPFound(CONSOLE_PATH)  # a browser: to the console
        return _text(
            200,
            f"Petrel {self.view.kind} {__version__}\n\n"
            f"{CONSOLE_PATH:<20}the web console (a browser on / goes there)\n"
            f"{API_PATH:<20}$management as JSON (POST)\n"
            "/metrics            Prometheus metrics\n"
            "/  /amqp            AMQP over WebSocket (subprotocol amqp)\n",
        )

    async def _console_file(self, request: web.Request) -> web.StreamResponse:
        refusal = self._check_access(request, "the console") or rebinding_refusal(request)
        if refusal is not None:
            return refusal
        if request.path == CONSOLE_PATH.rstrip("/"):
            raise web.HTTPFound(CONSOLE_PATH)
        if self._console is None:
            self._console = ConsoleFiles()
        return self._console.response(request.match_info.get("name", ""))

    async def _management(self, request: web.Request) -> web.StreamResponse:
        refusal = self._check_access(request, "management") or rebinding_refusal(request)
        if refusal is not None:
            return refusal
        return await answer_management(request, self.view.agent)

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        refusal = self._check_access(request, "the metrics")
        if refusal is not None:
            return refusal
        snapshot = await take_snapshot(
            self.view.kind,
            self.view.agent,
            commit_stats=self.view.commit_stats(),
            connection_metrics=self.http.connection_metrics,
            version=__version__,
        )
        registry = CollectorRegistry(auto_describe=False)
        registry.register(PetrelCollector(snapshot))
        # Formatting a large server's series takes a moment: not on the event loop.
        body = await asyncio.get_running_loop().run_in_executor(None, generate_latest, registry)
        response = web.Response(body=body)
        response.headers[hdrs.CONTENT_TYPE] = CONTENT_TYPE
        return response

    def _check_access(self, request: web.Request, what: str) -> web.Response | None:
        """None when ``request`` may manage the server (read ``what``); else the refusal."""
        policy = self.view.policy
        peer = request.remote or ""
        header = request.headers.get(hdrs.AUTHORIZATION)
        if header is None:
            if policy.may_manage(None, None, peer):
                return None
            return _text(
                401,
                f"the credentials of a user who may manage this server are needed for {what}\n",
                {hdrs.WWW_AUTHENTICATE: 'Basic realm="petrel", charset="UTF-8"'},
            )
        try:
            credentials = BasicAuth.decode(header, encoding="utf-8")
        except (ValueError, binascii.Error):
            return _text(400, "the Authorization header is not HTTP Basic credentials\n")
        identity = policy.authenticate(credentials.login, credentials.password, None)
        if identity is None:
            log.info("%s refused to %s: wrong user name or password", what, peer)
            return _text(
                401,
                "wrong user name or password\n",
                {hdrs.WWW_AUTHENTICATE: 'Basic realm="petrel", charset="UTF-8"'},
            )
        if not policy.may_manage(identity, "PLAIN", peer):
            log.info("%s refused to %s: user %r may not manage", what, peer, identity)
            return _text(403, f"user {identity!r} may not manage this server\n")
        return None


def _is_upgrade(request: web.Request) -> bool:
    return request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"


def _text(status: int, text: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=text, headers=headers)
