"""The management entity types every Petrel server has, and how its connections and
links are described.

The broker (and, later, the router) serves these at ``$management`` beside
types of its own; the config-backed ones come from the same pydantic models
as the config file (:meth:`~petrel.management.EntityType.from_model`), so an
entry of the file and an entity of management are one thing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from ..engine import Link
from ..management import Attribute, BadRequest, Conflict, EntityNotFound, EntityType
from .config import ListenerSettings
from .connection import ServerConnection
from .users import User, UserDirectory, UsersFileError

__all__ = [
    "CONNECTION",
    "CONNECTOR",
    "LINK",
    "LISTENER",
    "USER",
    "UserEntities",
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

USER = EntityType(
    "petrel.user",
    "A user that may authenticate (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN): an entry of the "
    "users file (users_file), which CREATE, UPDATE and DELETE edit, or of the config's "
    "[[users]], which they cannot change.",
    [
        Attribute(
            "password",
            "string",
            "Written, never read back: the server keeps SCRAM credentials made from it.",
            required=True,
            writable=True,
            nullable=False,
            secret=True,
        ),
        Attribute(
            "groups", "list", "The groups it belongs to.", create=True, writable=True, default=[]
        ),
        Attribute(
            "admin",
            "boolean",
            "Whether it may manage (use $management).",
            create=True,
            writable=True,
            default=False,
            nullable=False,
        ),
        Attribute(
            "source",
            "string",
            "Where it is defined: file (the users file) or config (the config's [[users]]).",
            choices=("file", "config"),
        ),
        Attribute("mechanisms", "list", "The SCRAM mechanisms it has credentials for."),
    ],
    allows=("CREATE", "READ", "UPDATE", "DELETE"),
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


class UserEntities:
    """The :data:`USER` entities of a server, for its management provider: what the
    :class:`~petrel.server.users.UserDirectory` holds, and edits of its users file.  The
    edits derive credentials and write a file, so they run in a worker thread."""

    def __init__(self, users: UserDirectory) -> None:
        self.users = users

    def query(self) -> Iterable[dict[str, Any]]:
        return [_describe_user(user) for user in self.users.users.values()]

    def read(
        self, *, name: str | None = None, identity: str | None = None
    ) -> dict[str, Any] | None:
        if identity is not None:
            if not identity.startswith("user/"):
                return None
            name = identity.removeprefix("user/")
        user = self.users.users.get(name or "")
        return None if user is None else _describe_user(user)

    async def create(self, name: str, attributes: dict[str, Any]) -> dict[str, Any]:
        password = attributes.get("password")
        if not isinstance(password, str) or not password:
            raise BadRequest("a user needs a password (a non-empty string)")
        groups = _groups(attributes.get("groups") or [])
        admin = bool(attributes.get("admin") or False)
        user = await self._edit(
            lambda: self.users.add(name, password, groups=groups, admin=admin), exists=True
        )
        return _describe_user(user)

    async def update(self, identity: str, attributes: dict[str, Any]) -> dict[str, Any]:
        name = identity.removeprefix("user/")
        password = attributes.get("password")
        if "password" in attributes and (not isinstance(password, str) or not password):
            raise BadRequest("a password is a non-empty string")
        groups = _groups(attributes["groups"] or []) if "groups" in attributes else None
        admin = bool(attributes["admin"]) if "admin" in attributes else None
        user = await self._edit(
            lambda: self.users.update(name, password=password, groups=groups, admin=admin)
        )
        return _describe_user(user)

    async def delete(self, identity: str) -> None:
        name = identity.removeprefix("user/")
        await self._edit(lambda: self.users.delete(name))

    async def _edit(self, work: Any, *, exists: bool = False) -> Any:
        try:
            return await asyncio.to_thread(work)
        except UsersFileError as exc:
            text = str(exc)
            if exists and text.endswith("exists"):
                raise Conflict(text) from None
            if text.startswith("no user"):
                raise EntityNotFound(text) from None
            raise BadRequest(text) from None


def _groups(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(g, str) and g for g in value):
        raise BadRequest("groups is a list of non-empty names")
    return value


def _describe_user(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "identity": f"user/{user.name}",
        "groups": sorted(user.groups),
        "admin": user.admin,
        "source": user.source,
        "mechanisms": sorted(user.credentials),
    }
