"""``petrel router``: run an interior router of the network until SIGINT or SIGTERM.

How the flags combine with the config file (:func:`router_settings`):

- ``--id`` sets ``[router] id`` (the file's other ``[router]`` keys stay);
- each kind of endpoint flag replaces the file's entries of that kind and
  leaves the others: ``--listen`` the normal listeners, ``--inter-router-listen``
  the inter-router listeners, ``--connect-router`` the connectors;
- when that leaves no normal listener, the router listens for clients on
  ``amqp://127.0.0.1:5672``;
- ``--log-level`` sets ``log_level``;
- ``--http URL`` replaces the file's HTTP listener, ``--no-http`` removes it, and
  without either the router serves HTTP on ``http://127.0.0.1:8672`` when the file
  names no HTTP listener and that port is free (see :mod:`petrel.server.http`).

``?cost=N`` after an ``--inter-router-listen`` or ``--connect-router`` URL sets
its cost (1 otherwise); the query is not part of the URL.  A user name and
password in a ``--connect-router`` URL become the connector's ``username`` and
``password`` (the URL is kept without them); an ``amqps://`` one checks the
peer's certificate against the system's trusted CAs (a file's ``[connectors.tls]``
says otherwise).
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import click

from petrel.driver import run
from petrel.router import Router, RouterSettings, load_router_settings
from petrel.server import ConfigError, ExitCode, configure_logging, read_settings, serve
from petrel.server.config import MAX_COST
from petrel.server.http import apply_http_options

__all__ = ["router", "router_settings", "split_cost"]


def _shown(text: str) -> str:
    """``text`` with the password of a URL in it masked, for a message."""
    return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", text)


def split_cost(text: str, flag: str) -> tuple[str, int | None]:
    """``URL?cost=N`` -> ``(URL, N)``; ``(URL, None)`` without a query.

    Raises :class:`~petrel.server.ConfigError` (naming ``flag``) for a query
    other than one ``cost`` between 1 and 2**24.
    """
    url, sep, query = text.partition("?")
    if not sep:
        return url, None
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        pairs = []
    if [name for name, _ in pairs] != ["cost"]:
        raise ConfigError(f"{flag} {_shown(text)}: the only query is ?cost=N")
    raw = pairs[0][1]
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_COST:
        raise ConfigError(
            f"{flag} {_shown(text)}: cost must be a whole number from 1 to {MAX_COST}"
        )
    return url, int(raw)


def _listener_entries(urls: Sequence[str], role: str) -> list[dict[str, Any]]:
    flag = "--listen" if role == "normal" else "--inter-router-listen"
    entries: list[dict[str, Any]] = []
    for text in urls:
        url, cost = split_cost(text, flag)
        entry: dict[str, Any] = {"url": url, "role": role}
        if cost is not None:
            if role == "normal":
                raise ConfigError(
                    f"--listen {_shown(text)}: ?cost= is for --inter-router-listen and "
                    "--connect-router"
                )
            entry["cost"] = cost
        entries.append(entry)
    return entries


def _connector_entries(urls: Sequence[str], role: str = "inter-router") -> list[dict[str, Any]]:
    flag = "--connect-router" if role == "inter-router" else "--connect-uplink"
    entries: list[dict[str, Any]] = []
    for text in urls:
        url, cost = split_cost(text, flag)
        if "://" not in url:
            url = "amqp://" + url
        entry: dict[str, Any] = {"role": role}
        parts = urlsplit(url)
        if "@" in parts.netloc:
            # The URL is shown by management: the credentials move to their own keys.
            userinfo, _, hostport = parts.netloc.rpartition("@")
            user, has_password, password = userinfo.partition(":")
            entry["username"] = unquote(user)
            if has_password:
                entry["password"] = unquote(password)
            url = urlunsplit(parts._replace(netloc=hostport))
        entry["url"] = url
        if parts.scheme.lower() == "amqps":
            entry["tls"] = {}  # the system's trusted CAs, host name checked
        if cost is not None:
            entry["cost"] = cost
        entries.append(entry)
    return entries


def _file_mode(path: str | None) -> str | None:
    """``[router] mode`` as the config file says it (None: not said, or unreadable)."""
    if path is None:
        return None
    try:
        with open(path, "rb") as handle:
            mode = tomllib.load(handle).get("router", {}).get("mode")
    except (OSError, tomllib.TOMLDecodeError, AttributeError):
        return None
    return mode if isinstance(mode, str) else None


def router_settings(
    config_file: str | None = None,
    *,
    router_id: str | None = None,
    listen: Sequence[str] = (),
    inter_router_listen: Sequence[str] = (),
    connect_router: Sequence[str] = (),
    connect_uplink: Sequence[str] = (),
    mode: str | None = None,
    log_level: str | None = None,
) -> RouterSettings:
    """The settings ``petrel router`` runs with: the config file (if any) and the flags,
    combined as the module docstring says.

    Raises :class:`~petrel.server.ConfigError` with one line naming the problem.
    """
    normal = _listener_entries(listen, "normal")
    inter = _listener_entries(inter_router_listen, "inter-router")
    connectors = _connector_entries(connect_router) + _connector_entries(connect_uplink, "edge")
    section: dict[str, Any] = {}
    if router_id is not None:
        section["id"] = router_id
    if mode is not None:
        section["mode"] = mode
    flags = listen or inter_router_listen or connect_router or connect_uplink
    try:
        settings = load_router_settings(config_file, router=section or None, log_level=log_level)
    except ConfigError:
        if not flags:
            raise
        # The flags may complete what the file lacks (an edge's uplinks): read it as an
        # interior router's, and check the edge once everything is merged.
        mode = mode or _file_mode(config_file)
        section["mode"] = "interior"
        settings = load_router_settings(config_file, router=section, log_level=log_level)
    has_normal = any(listener.role == "normal" for listener in settings.listeners)
    if not flags and has_normal:
        return settings

    def from_file(role: str) -> list[dict[str, Any]]:
        return [
            listener.model_dump(exclude_unset=True)
            for listener in settings.listeners
            if listener.role == role
        ]

    listeners = (
        (normal or from_file("normal") or [{}])
        + (inter or from_file("inter-router"))
        + from_file("http")
    )
    data = settings.model_dump(exclude_unset=True)
    if mode is not None:
        data["router"] = {**data["router"], "mode": mode}
    data["listeners"] = listeners
    data["connectors"] = connectors or [
        connector.model_dump(exclude_unset=True) for connector in settings.connectors
    ]
    return read_settings(RouterSettings, None, **data)


@click.command()
@click.option("--id", "router_id", metavar="ID", help="The router's name in the network.")
@click.option(
    "--listen",
    multiple=True,
    metavar="URL",
    help="Accept clients here (repeatable).  [default: amqp://127.0.0.1:5672]",
)
@click.option(
    "--inter-router-listen",
    multiple=True,
    metavar="URL",
    help="Accept other routers here (repeatable); URL?cost=N sets the cost (default 1).",
)
@click.option(
    "--connect-router",
    multiple=True,
    metavar="URL",
    help="Connect to the router listening there (repeatable); URL?cost=N sets the cost.",
)
@click.option(
    "--mode",
    type=click.Choice(["interior", "edge"]),
    help="interior: a member of the routing protocol; edge: joins through an uplink.  "
    "[default: interior]",
)
@click.option(
    "--connect-uplink",
    multiple=True,
    metavar="URL",
    help="Edge routers: an interior router to join through (repeatable: the first listed and open "
    "is used, the others stand by).",
)
@click.option(
    "--http",
    "http_url",
    metavar="URL",
    help="Serve /metrics and AMQP over WebSockets here (http:// or https://).  "
    "[default: http://127.0.0.1:8672 when that port is free]",
)
@click.option("--no-http", is_flag=True, help="Serve no HTTP at all.")
@click.option(
    "--config", "config_file", type=click.Path(dir_okay=False), help="A TOML config file."
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug", "trace"]),
    help="How much to log.  [default: info]",
)
def router(
    router_id: str | None,
    listen: tuple[str, ...],
    inter_router_listen: tuple[str, ...],
    connect_router: tuple[str, ...],
    mode: str | None,
    connect_uplink: tuple[str, ...],
    http_url: str | None,
    no_http: bool,
    config_file: str | None,
    log_level: str | None,
) -> None:
    """Run a Petrel router: an interior or edge router of a router network.

    The router needs an id (--id, or [router] id in the config file).  It
    serves clients on 127.0.0.1:5672 unless told otherwise, accepts other
    routers on each --inter-router-listen URL and connects to each
    --connect-router URL.  A flag replaces the config file's entries of its
    kind.  Every option can also be set from the environment
    (PETREL_ROUTER_ID, PETREL_ROUTER_CONNECT_ROUTER, ...; several URLs
    separated by spaces).  Exit status: 0 after SIGINT or SIGTERM; 2 for a
    bad configuration; 3 when it cannot start.
    """
    try:
        settings = router_settings(
            config_file,
            router_id=router_id,
            listen=listen,
            inter_router_listen=inter_router_listen,
            connect_router=connect_router,
            connect_uplink=connect_uplink,
            mode=mode,
            log_level=log_level,
        )
        settings = apply_http_options(settings, url=http_url, enabled=not no_http)
    except ConfigError as exc:
        click.echo(f"petrel router: {exc}", err=True)
        sys.exit(ExitCode.CONFIG)
    configure_logging(settings.log_level)
    try:
        server = Router(settings)
    except ConfigError as exc:  # the users file is unreadable
        click.echo(f"petrel router: {exc}", err=True)
        sys.exit(ExitCode.CONFIG)
    sys.exit(run(serve(server, "petrel router")))
