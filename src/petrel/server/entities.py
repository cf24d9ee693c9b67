"""The management entity types every Petrel server has, and how its connections and
links are described.

The broker (and, later, the router) serves these at ``$management`` beside
types of its own; the config-backed ones come from the same pydantic models
as the config file (:meth:`~petrel.management.EntityType.from_model`), so an
entry of the file and an entity of management are one thing.
"""

from __future__ import annotations

from typing import Any

from ..engine import Link
from ..management import Attribute, EntityType
from .config import ListenerSettings, UserSettings
from .connection import ServerConnection

__all__ = [
    "CONNECTION",
    "CONNECTOR",
    "LINK",
    "LISTENER",
    "USER",
    "describe_connection",
    "describe_link",
]

LISTENER = EntityType.from_model(
    "petrel.listener",
    ListenerSettings,
    description="Where the server accepts connections (a [[listeners]] entry).",
    read_only=[
        Attribute("port", "integer", "The port it is bound to (useful with port 0)."),
        Attribute("connections", "integer", "Live connections accepted on it."),
    ],
    allows=("CREATE", "READ", "DELETE"),
)

USER = EntityType.from_model(
    "petrel.user",
    UserSettings,
    description="A user that may authenticate with SASL PLAIN (a [[users]] entry).",
    secret=["password"],
    allows=("READ",),
)

CONNECTOR = EntityType(
    "petrel.connector",
    "An outbound connection the server keeps (routers: to other routers and brokers).",
    [
        Attribute("url", "string", "Where it connects."),
        Attribute("role", "string", "normal, inter-router or route-container."),
        Attribute("cost", "integer", "The link cost (inter-router)."),
        Attribute("state", "string", "connecting, open or failed."),
    ],
    allows=("READ",),
)

CONNECTION = EntityType(
    "petrel.connection",
    "A live connection accepted by the server; DELETE closes it with amqp:connection:forced.",
    [
        Attribute("container", "string", "The client's container id."),
        Attribute("host", "string", "The client's address, host:port."),
        Attribute("hostname", "string", "The virtual host the client asked for in its open."),
        Attribute("listener", "string", "The listener it came in on."),
        Attribute("user", "string", "Who it authenticated as (null: nobody)."),
        Attribute("sasl", "string", "The SASL mechanism (null: no SASL layer)."),
        Attribute("tls", "boolean", "Whether it is encrypted."),
        Attribute("opened", "float", "When it was accepted, in seconds since the epoch."),
        Attribute("sessions", "integer", "Its sessions."),
        Attribute("links", "integer", "Its attached links."),
    ],
    allows=("READ", "DELETE"),
)

LINK = EntityType(
    "petrel.link",
    "An attached link; ``in`` carries messages to the server, ``out`` from it.",
    [
        Attribute("link_name", "string", "The link's AMQP name."),
        Attribute("connection", "string", "The identity of its connection."),
        Attribute(
            "direction",
            "string",
            "in (the client sends) or out (the client receives).",
            choices=("in", "out"),
        ),
        Attribute("address", "string", "The address it is attached to (null: the relay)."),
        Attribute("credit", "integer", "Credit the sender holds."),
        Attribute("unsettled", "integer", "Deliveries not settled yet (out links)."),
        Attribute("delivered", "integer", "Messages carried so far."),
    ],
    allows=("READ",),
)


def describe_connection(conn: ServerConnection) -> dict[str, Any]:
    """``conn`` as a :data:`CONNECTION` entity."""
    transport = conn.protocol.transport
    tls = transport is not None and transport.get_extra_info("ssl_object") is not None
    return {
        "name": conn.id,
        "identity": conn.id,
        "container": conn.container_id,
        "host": conn.peer,
        "hostname": conn.hostname,
        "listener": conn.listener.url,
        "user": conn.identity if conn.mechanism not in (None, "ANONYMOUS") else None,
        "sasl": conn.mechanism,
        "tls": tls,
        "opened": round(conn.opened_at, 3),
        "sessions": len(conn.sessions),
        "links": len(conn.links),
    }


def describe_link(conn: ServerConnection, link: Link) -> dict[str, Any]:
    """One attached link of ``conn`` as a :data:`LINK` entity."""
    handler = conn.links[link]
    identity = f"{conn.id}/{conn.link_id(link)}"
    # Our terminus: it names the node a dynamic one was given (the client's names none).
    terminus = link.source if link.is_sender else link.target
    address = getattr(terminus, "address", None)
    if address is None:
        remote = link.remote_source if link.is_sender else link.remote_target
        address = getattr(remote, "address", None)
    return {
        "name": identity,
        "identity": identity,
        "link_name": link.name,
        "connection": conn.id,
        "direction": "out" if link.is_sender else "in",
        "address": None if address is None else str(address),
        "credit": int(link.credit),
        "unsettled": len(getattr(handler, "unsettled", ())),
        "delivered": int(getattr(handler, "delivered", 0)),
    }
