"""``petrel manage``: AMQP Management requests from the command line, in the manner of qdmanage.

Every command sends requests to the peer's ``$management`` node and prints
the reply body as JSON on stdout (``--pretty`` indents it): the entity's
attributes for ``create``/``read``/``update``, a list of objects for
``query``, the node's maps for the ``get-*`` commands, and whatever an
operation returns for ``call`` and the queue shortcuts (``purge``, ``move``,
``retry``, ``peek``).  A failure is one line on stderr, with the management
status code when there is one (``petrel manage: 404 Not Found: ...``), and
exit status 1; bad usage exits with 2.

Values written ``attr=value`` are JSON where they parse as JSON (``10``,
``true``, ``null``, ``{"a": 1}``, ``"quoted"``) and strings otherwise; the
agent converts strings further where an attribute wants a number.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import click

from petrel.management import ManagementClient, ManagementRequest
from petrel.management.protocol import CREATE, DELETE, READ, UPDATE

from ._connect import Peer, management_options, query_rows, run_management

__all__ = ["echo_json", "jsonable", "manage"]

#: The entity type the queue shortcuts act on.
QUEUE_TYPE = "petrel.queue"

F = TypeVar("F", bound=Callable[..., Any])


# --- values in and out --------------------------------------------------------------------


def _reject_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def parse_value(raw: str) -> Any:
    """``raw`` as JSON when it is JSON (no NaN or Infinity), else the string itself."""
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except ValueError:
        return raw


def parse_assignments(items: Sequence[str], what: str) -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}``; a usage error for an item without ``=``."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.UsageError(f"expected {what}=VALUE, got {item!r}")
        values[key] = parse_value(raw)
    return values


def parse_body(text: str | None) -> Any:
    """The ``--body`` option's JSON, or ``None`` when it was not given."""
    if text is None:
        return None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--body") from None


def jsonable(value: Any) -> Any:
    """``value`` (as AMQP decoding gives it) made of plain JSON types.

    Binary becomes its UTF-8 text, or hex when it is not UTF-8; AMQP's typed
    numbers and symbols become plain ones; anything else its ``str``.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {str(jsonable(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value.hex()
    return str(value)


def echo_json(value: Any, pretty: bool = False) -> None:
    """Print ``value`` as one JSON document (indented when ``pretty``)."""
    click.echo(json.dumps(jsonable(value), indent=2 if pretty else None))


# --- the commands' shared frame -----------------------------------------------------------


def _tool_options(command: F) -> F:
    """The connection flags, ``--router``, ``--timeout`` and ``--pretty``."""
    command = click.option("--pretty", is_flag=True, help="Indent the JSON output.")(command)
    command = click.option(
        "--timeout",
        default=10.0,
        show_default=True,
        type=click.FloatRange(min=0, min_open=True),
        help="Seconds allowed for connecting and for each request.",
    )(command)
    return management_options(command)


def _entity_key(command: F) -> F:
    """``--type``, ``--name`` and ``--identity``: which entity."""
    command = click.option("--identity", "-i", help="The entity's identity.")(command)
    command = click.option("--name", "-n", help="The entity's name.")(command)
    return click.option("--type", "-t", "entity_type", help="The entity type (petrel.queue).")(
        command
    )


def _run(
    peer: Peer, timeout: float, pretty: bool, work: Callable[[ManagementClient], Awaitable[Any]]
) -> None:
    echo_json(run_management("manage", peer, timeout, work), pretty)


def _send(peer: Peer, timeout: float, pretty: bool, request: ManagementRequest) -> None:
    """Send one request as it is (the agent checks it) and print the reply body."""

    async def work(client: ManagementClient) -> Any:
        return (await client.call(request)).body

    _run(peer, timeout, pretty, work)


def _attribute_body(body_text: str | None, attributes: Sequence[str]) -> Any:
    """The CREATE/UPDATE body: ``--body``'s JSON with the ``attr=value`` pairs laid over it."""
    body = parse_body(body_text)
    assigned = parse_assignments(attributes, "ATTR")
    if not assigned:
        return {} if body is None else body
    if body is None:
        return assigned
    if not isinstance(body, dict):
        raise click.BadParameter("ATTR=VALUE needs a JSON object here", param_hint="--body")
    return {**body, **assigned}


@click.group()
def manage() -> None:
    """Manage a broker's or a router's entities over AMQP Management; every reply is
    printed as JSON.  With --router ID, router ID's, anywhere in the network of the
    router at --url.

    Exit status: 0 on success; 1 when the peer cannot be reached or answers
    with an error (the line on stderr starts with the status code); 2 on bad
    usage.
    """


# --- entity operations --------------------------------------------------------------------


@manage.command()
@click.option("--type", "-t", "entity_type", help="The entity type (petrel.queue).")
@click.option("--name", "-n", help="The new entity's name.")
@click.argument("attributes", nargs=-1, metavar="[ATTR=VALUE]...")
@click.option("--body", metavar="JSON", help="The attributes as a JSON object.")
@_tool_options
def create(
    entity_type: str | None,
    name: str | None,
    attributes: tuple[str, ...],
    body: str | None,
    peer: Peer,
    timeout: float,
    pretty: bool,
) -> None:
    """Create an entity; print it as the server reports it (defaults filled in)."""
    request = ManagementRequest(CREATE, entity_type, name, body=_attribute_body(body, attributes))
    _send(peer, timeout, pretty, request)


@manage.command()
@_entity_key
@_tool_options
def read(
    entity_type: str | None,
    name: str | None,
    identity: str | None,
    peer: Peer,
    timeout: float,
    pretty: bool,
) -> None:
    """Print the attributes of the entity with that --name or --identity."""
    _send(peer, timeout, pretty, ManagementRequest(READ, entity_type, name, identity))


@manage.command()
@_entity_key
@click.argument("attributes", nargs=-1, metavar="[ATTR=VALUE]...")
@click.option("--body", metavar="JSON", help="The changes as a JSON object.")
@_tool_options
def update(
    entity_type: str | None,
    name: str | None,
    identity: str | None,
    attributes: tuple[str, ...],
    body: str | None,
    peer: Peer,
    timeout: float,
    pretty: bool,
) -> None:
    """Change attributes of an entity (all or none); print the entity."""
    request = ManagementRequest(
        UPDATE, entity_type, name, identity, body=_attribute_body(body, attributes)
    )
    _send(peer, timeout, pretty, request)


@manage.command()
@_entity_key
@_tool_options
def delete(
    entity_type: str | None,
    name: str | None,
    identity: str | None,
    peer: Peer,
    timeout: float,
    pretty: bool,
) -> None:
    """Delete the entity with that --name or --identity; print the (empty) reply."""
    _send(peer, timeout, pretty, ManagementRequest(DELETE, entity_type, name, identity))


@manage.command()
@click.argument("operation")
@_entity_key
@click.argument("arguments", nargs=-1, metavar="[ARG=VALUE]...")
@click.option("--body", metavar="JSON", help="The request body, as JSON.")
@_tool_options
def call(
    operation: str,
    entity_type: str | None,
    name: str | None,
    identity: str | None,
    arguments: tuple[str, ...],
    body: str | None,
    peer: Peer,
    timeout: float,
    pretty: bool,
) -> None:
    """Perform OPERATION, one of an entity type's own (PURGE); print the reply body.

    ARG=VALUE pairs are the operation's arguments (GET-OPERATIONS lists them).
    """
    request = ManagementRequest(
        operation.upper(),
        entity_type,
        name,
        identity,
        properties=parse_assignments(arguments, "ARG"),
        body=parse_body(body),
    )
    _send(peer, timeout, pretty, request)


# --- node operations ----------------------------------------------------------------------


@manage.command()
@click.option("--type", "-t", "entity_type", help="Only entities of this type (and its kin).")
@click.option("--attribute-names", metavar="A,B,...", help="Only these attributes (default: all).")
@click.option("--offset", type=click.IntRange(min=0), help="Start at this row (one page).")
@click.option("--count", type=click.IntRange(min=0), help="At most this many rows (one page).")
@_tool_options
def query(
    entity_type: str | None,
    attribute_names: str | None,
    offset: int | None,
    count: int | None,
    peer: Peer,
    timeout: float,
    pretty: bool,
) -> None:
    """Print entities as a list of objects, ordered by type then name.

    Without --offset or --count every entity is fetched, page by page;
    with them, that one page.
    """
    names = [n.strip() for n in (attribute_names or "").split(",") if n.strip()]

    async def work(client: ManagementClient) -> Any:
        if offset is None and count is None:
            return (await query_rows(client, entity_type, names)).rows
        result = await client.query(entity_type, names, offset=offset or 0, count=count)
        return result.as_dicts()

    _run(peer, timeout, pretty, work)


def _node_command(
    name: str, summary: str, method: Callable[[ManagementClient, str | None], Awaitable[Any]]
) -> None:
    @manage.command(name, help=summary)
    @click.option("--type", "-t", "entity_type", help="Only this type (and those extending it).")
    @_tool_options
    def command(entity_type: str | None, peer: Peer, timeout: float, pretty: bool) -> None:
        async def work(client: ManagementClient) -> Any:
            return await method(client, entity_type)

        _run(peer, timeout, pretty, work)


_node_command(
    "get-types",
    "Print each entity type and the types it extends.",
    lambda client, entity_type: client.get_types(entity_type),
)
_node_command(
    "get-attributes",
    "Print each entity type's attribute names.",
    lambda client, entity_type: client.get_attributes(entity_type),
)
_node_command(
    "get-operations",
    "Print each entity type's operations and their arguments.",
    lambda client, entity_type: client.get_operations(entity_type),
)


@manage.command("get-mgmt-nodes")
@_tool_options
def get_mgmt_nodes(peer: Peer, timeout: float, pretty: bool) -> None:
    """Print the addresses of the other management nodes this one knows of."""

    async def work(client: ManagementClient) -> Any:
        return await client.get_mgmt_nodes()

    _run(peer, timeout, pretty, work)


# --- queue shortcuts ----------------------------------------------------------------------


def _queue_operation(
    peer: Peer,
    timeout: float,
    pretty: bool,
    operation: str,
    queue: str,
    arguments: dict[str, Any],
) -> None:
    given = {key: value for key, value in arguments.items() if value is not None}
    request = ManagementRequest(operation, QUEUE_TYPE, queue, properties=given)
    _send(peer, timeout, pretty, request)


@manage.command()
@click.argument("queue")
@_tool_options
def purge(queue: str, peer: Peer, timeout: float, pretty: bool) -> None:
    """Remove every message from QUEUE (PURGE)."""
    _queue_operation(peer, timeout, pretty, "PURGE", queue, {})


@manage.command()
@click.argument("queue")
@click.option("--to", "target", required=True, help="The address to move them to (it must exist).")
@click.option("--selector", help="Only messages matching this JMS selector.")
@click.option("--count", type=click.IntRange(min=1), help="At most this many messages.")
@_tool_options
def move(
    queue: str,
    target: str,
    selector: str | None,
    count: int | None,
    peer: Peer,
    timeout: float,
    pretty: bool,
) -> None:
    """Move the messages waiting in QUEUE to another address, in order (MOVE)."""
    arguments = {"to": target, "selector": selector, "count": count}
    _queue_operation(peer, timeout, pretty, "MOVE", queue, arguments)


@manage.command()
@click.argument("queue")
@click.option("--count", type=click.IntRange(min=1), help="At most this many messages.")
@_tool_options
def retry(queue: str, count: int | None, peer: Peer, timeout: float, pretty: bool) -> None:
    """Send the messages in QUEUE (dead letters, expired ones) back to the queues they
    came from (RETRY)."""
    _queue_operation(peer, timeout, pretty, "RETRY", queue, {"count": count})


@manage.command()
@click.argument("queue")
@click.option("--count", type=click.IntRange(min=1), help="At most this many messages.")
@_tool_options
def peek(queue: str, count: int | None, peer: Peer, timeout: float, pretty: bool) -> None:
    """Print messages at the head of QUEUE without taking them (PEEK)."""
    _queue_operation(peer, timeout, pretty, "PEEK", queue, {"count": count})
