"""Reaching a peer from the command line: the connection flags every client tool shares.

``@connection_options`` adds ``--url``, ``--user``, ``--password``,
``--sasl-mechanisms``, ``--ca-file``, ``--cert-file``, ``--key-file`` and
``--no-verify`` to a click command and hands the command one :class:`Peer`
(keyword ``peer``) instead of eight values.  The flags map onto the fields of
:class:`petrel.ConnectOptions`, the one declaration of how a client connects;
the tools add their own ``--timeout``, whose meaning differs from tool to tool.

``@management_options`` adds those and ``--router ID``, for the tools that
talk to a management node: without it the node is the peer's own
``$management``; with it, router ID's anywhere in the network of the router
at ``--url`` (``_topo/0/ID/$management``, which the routers forward).
:func:`run_management` is the frame of ``petrel stat`` and ``petrel manage``:
connect, run the work with a :class:`~petrel.management.ManagementClient`
for that node, close, and turn every failure (unreachable, refused, a
management status) into one line on stderr and exit status 1.
:func:`query_rows` pages through a QUERY for them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

import petrel
from petrel.management import NODE_ADDRESS, ManagementClient, ManagementError

from ._common import fail

__all__ = [
    "DEFAULT_URL",
    "Peer",
    "Rows",
    "connection_options",
    "management_options",
    "query_rows",
    "router_management_address",
    "run_management",
]

#: Where the tools connect unless told otherwise.
DEFAULT_URL = "amqp://127.0.0.1:5672"

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

#: Rows asked for per QUERY request.
PAGE_SIZE = 1000

_FLAGS = ("url", "user", "password", "sasl_mechanisms", "ca_file", "cert_file", "key_file")
_PEM = click.Path(exists=True, dir_okay=False)


@dataclass(frozen=True, slots=True)
class Peer:
    """Where to connect and how: a URL and the connect options the flags gave."""

    url: str
    options: petrel.ConnectOptions
    management_node: str = NODE_ADDRESS
    """The management node the management tools talk to (``--router``)."""

    async def connect(self, timeout: float) -> petrel.Connection:
        """Open the connection (no reconnecting: a tool reports the failure instead)."""
        options = dataclasses.replace(self.options, reconnect=False, timeout=timeout)
        return await petrel.Connection.open(self.url, options)


def _mechanisms(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    names = tuple(name.upper() for name in re.split(r"[\s,]+", text.strip()) if name)
    if not names:
        raise click.BadParameter("name at least one mechanism", param_hint="--sasl-mechanisms")
    return names


def _peer(flags: dict[str, Any], no_verify: bool) -> Peer:
    tls = None
    if no_verify or any(flags[key] for key in ("ca_file", "cert_file", "key_file")):
        tls = petrel.TlsConfig(
            ca_file=flags["ca_file"],
            cert_file=flags["cert_file"],
            key_file=flags["key_file"],
            verify=not no_verify,
        )
    options = petrel.ConnectOptions(
        username=flags["user"],
        password=flags["password"],
        sasl_mechanisms=_mechanisms(flags["sasl_mechanisms"]),
        tls=tls,
    )
    return Peer(flags["url"], options)


def connection_options(command: F) -> F:
    """Give a click command the connection flags; it receives them as ``peer: Peer``."""

    @functools.wraps(command)
    def with_peer(*args: Any, **kwargs: Any) -> Any:
        flags = {key: kwargs.pop(key) for key in _FLAGS}
        peer = _peer(flags, kwargs.pop("no_verify"))
        return command(*args, peer=peer, **kwargs)

    decorators = (
        click.option(
            "--url",
            default=DEFAULT_URL,
            show_default=True,
            help="Where to connect: amqp[s]://[user[:password]@]host[:port].",
        ),
        click.option("--user", help="SASL user name; overrides the URL's."),
        click.option("--password", help="SASL password; overrides the URL's."),
        click.option(
            "--sasl-mechanisms",
            metavar="NAMES",
            help="SASL mechanisms we may use, most preferred first, from SCRAM-SHA-512, "
            "SCRAM-SHA-256, PLAIN, EXTERNAL, ANONYMOUS.  [default: with --user, the SCRAMs, "
            "then PLAIN over TLS or to loopback only, then ANONYMOUS]",
        ),
        click.option("--ca-file", type=_PEM, help="TLS: CA certificates to trust (PEM)."),
        click.option("--cert-file", type=_PEM, help="TLS: our client certificate (PEM)."),
        click.option("--key-file", type=_PEM, help="TLS: the client certificate's key (PEM)."),
        click.option(
            "--no-verify", is_flag=True, help="TLS: do not check the server's certificate."
        ),
    )
    decorated: Callable[..., Any] = with_peer
    for decorator in reversed(decorators):
        decorated = decorator(decorated)
    return decorated  # type: ignore[return-value]


def router_management_address(router_id: str) -> str:
    """The address of router ``router_id``'s management node, from anywhere in its network."""
    return f"_topo/0/{router_id}/{NODE_ADDRESS}"


def _router_id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and (not value or "/" in value):
        raise click.BadParameter("a router id is a non-empty name without '/'")
    return value


def management_options(command: F) -> F:
    """The connection flags and ``--router ID``; the command receives ``peer: Peer`` whose
    ``management_node`` is the one to talk to."""

    @functools.wraps(command)
    def with_node(*args: Any, **kwargs: Any) -> Any:
        router_id = kwargs.pop("router_id")
        if router_id is not None:
            kwargs["peer"] = dataclasses.replace(
                kwargs["peer"], management_node=router_management_address(router_id)
            )
        return command(*args, **kwargs)

    option = click.option(
        "--router",
        "router_id",
        metavar="ID",
        callback=_router_id,
        help="Talk to router ID's management node, through the router at --url.",
    )
    return connection_options(option(with_node))  # type: ignore[return-value]


def run_management(
    tool: str,
    peer: Peer,
    timeout: float,
    work: Callable[[ManagementClient], Awaitable[T]],
) -> T:
    """Connect to ``peer``, return what ``work`` does with a management client.

    ``timeout`` (seconds) bounds the connecting and each request.  Any
    failure ends the process: one line ``petrel TOOL: ...`` on stderr (with
    the status code for a management error), exit status 1.
    """

    async def session() -> T:
        async with await peer.connect(timeout) as conn:
            client = ManagementClient(conn, address=peer.management_node, timeout=timeout)
            return await work(client)

    try:
        return asyncio.run(session())
    except (ManagementError, petrel.AmqpError, OSError, TimeoutError) as exc:
        fail(tool, exc)


@dataclass(frozen=True, slots=True)
class Rows:
    """What a QUERY found: attribute names, one map per entity, whether more were left out."""

    names: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    more: bool = False


async def query_rows(
    client: ManagementClient,
    entity_type: str | None,
    attribute_names: Sequence[str] = (),
    *,
    limit: int | None = None,
) -> Rows:
    """Every entity of ``entity_type`` (every type when ``None``), or the first ``limit``
    (see :meth:`~petrel.management.ManagementClient.query_all` for how it pages)."""
    found = await client.query_all(entity_type, attribute_names, page_size=PAGE_SIZE, limit=limit)
    return Rows(found.attribute_names, found.as_dicts(), more=found.more)
