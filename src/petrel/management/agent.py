"""The server side of AMQP Management: a request message in, a reply message out.

:class:`ManagementAgent` is sans-IO in the sense that matters here: it owns
no link, socket or task.  The server hands it each request that arrives at
``$management`` and sends the reply it returns; the entities themselves live
behind a :class:`ManagementProvider` that the server implements::

    agent = ManagementAgent([QUEUE, ADDRESS], BrokerProvider(broker))
    reply = await agent.handle(request, allowed=user_may_manage)
    if reply is not None:
        await send(reply.to, reply)

What the agent does for the provider: it parses and checks every request,
finds the entity by ``name`` or ``identity`` (asking the provider's
:meth:`~ManagementProvider.read`), validates CREATE and UPDATE attributes
against the :class:`~petrel.management.schema.EntityType`, refuses a CREATE
of a name that exists (409), answers the node operations (QUERY with stable
order and paging, GET-TYPES, ...) from the types and the provider's
:meth:`~ManagementProvider.query`, and turns every failure into a reply with
a status code.  A provider that raises anything but a
:class:`~petrel.management.errors.ManagementError` gets a 500 reply and a
logged traceback; no request goes unanswered because of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

from .. import codec
from ..message import Message
from ._query import Entity, run_query
from .errors import (
    BadRequest,
    Conflict,
    EntityNotFound,
    Forbidden,
    InternalError,
    ManagementError,
    OperationNotImplemented,
)
from .protocol import (
    CREATE,
    DELETE,
    ENTITY_OPERATIONS,
    GET_ANNOTATIONS,
    GET_ATTRIBUTES,
    GET_MGMT_NODES,
    GET_OPERATIONS,
    GET_TYPES,
    MAX_QUERY_COUNT,
    NODE_ADDRESS,
    NODE_NAME,
    NODE_OPERATIONS,
    NODE_TYPE,
    QUERY,
    READ,
    UPDATE,
    ManagementReply,
    ManagementRequest,
)
from .schema import STANDARD_ATTRIBUTES, EntityType

__all__ = ["ManagementAgent", "ManagementProvider", "OperationResult"]

log = logging.getLogger("petrel.management")


class OperationResult(NamedTuple):
    """What an entity type's own operation returns: a status (2xx) and the reply body."""

    status: int
    body: Any = None


class ManagementProvider(Protocol):
    """The entities behind an agent; the server implements it (the broker's adapter).

    ``entity_type`` is always the full name of one of the agent's types.
    Entities are maps of attribute name to value with at least ``name`` and
    ``identity`` (strings); ``type`` is filled in by the agent and secret
    attributes are dropped before anything is sent.  Values must be plain
    AMQP-encodable Python values (``str``, ``int``, ``float``, ``bool``,
    ``None``, lists, maps, ``petrel.types`` wrappers).

    Raise :class:`~petrel.management.errors.ManagementError` (or a subclass:
    ``Conflict``, ``EntityNotFound``, ``Forbidden``, ``BadRequest``, ...) to
    answer with its status; any other exception is answered with 500.
    """

    async def query(self, entity_type: str) -> Iterable[Entity]:
        """Every entity of ``entity_type``, in any order (the agent sorts and pages)."""
        ...

    async def read(
        self, entity_type: str, *, name: str | None = None, identity: str | None = None
    ) -> Entity | None:
        """The entity with that ``name`` or ``identity`` (exactly one is given), or ``None``."""
        ...

    async def create(self, entity_type: str, name: str, attributes: dict[str, Any]) -> Entity:
        """Create the entity from validated ``attributes`` (only those the request gave:
        apply the defaults); return it as READ would.

        The agent refuses a name that exists before calling this, but two
        concurrent CREATEs can race past that check: raise ``Conflict`` then.
        """
        ...

    async def update(self, entity_type: str, identity: str, attributes: dict[str, Any]) -> Entity:
        """Change the entity's validated ``attributes``, all or none; return it as READ would."""
        ...

    async def delete(self, entity_type: str, identity: str) -> None:
        """Delete the entity."""
        ...

    async def invoke(
        self,
        entity_type: str,
        identity: str | None,
        operation: str,
        arguments: dict[str, Any],
        body: Any,
    ) -> OperationResult:
        """Perform the type's own ``operation`` (on the entity, unless ``identity`` is None
        for a type-wide operation) with its converted ``arguments`` and the request body."""
        ...


class ManagementAgent:
    """Answers AMQP Management requests for ``types`` from ``provider``.

    ``node`` is the node's address (for logging).  ``max_count`` caps the
    rows of one QUERY reply (10,000 by default): a QUERY asking for more, or
    for everything, gets the first ``max_count`` rows from its ``offset``
    and a ``statusDescription`` that says so; clients page with ``offset``
    and ``count``.  ``mgmt_nodes`` returns the addresses of *other*
    management nodes for GET-MGMT-NODES (a router knows its peers' nodes;
    by default there are none).
    """

    def __init__(
        self,
        types: Iterable[EntityType],
        provider: ManagementProvider,
        *,
        node: str = NODE_ADDRESS,
        max_count: int = MAX_QUERY_COUNT,
        mgmt_nodes: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        self._types: dict[str, EntityType] = {}
        for entity_type in sorted(types, key=lambda t: t.name):
            if entity_type.name in self._types:
                raise ValueError(f"entity type {entity_type.name!r} is given twice")
            self._types[entity_type.name] = entity_type
        if max_count < 1:
            raise ValueError("max_count must be at least 1")
        self.provider = provider
        self.node = node
        self.max_count = max_count
        self._mgmt_nodes = mgmt_nodes
        self._own_operations = {
            operation.name for t in self._types.values() for operation in t.operations
        }

    @property
    def types(self) -> Mapping[str, EntityType]:
        """The entity types by name, sorted."""
        return MappingProxyType(self._types)

    async def handle(self, request: Message, *, allowed: bool = True) -> Message | None:
        """The reply to ``request``, or ``None`` when it has no ``reply-to``.

        A request without ``reply-to`` is not performed at all: nobody could
        learn its outcome.  Otherwise there is always a reply (see
        :meth:`execute`); it goes to the request's ``reply-to``, with
        ``correlation-id`` the request's ``correlation-id``, else its
        ``message-id``.  ``allowed=False`` answers every request with 403
        (the server decides whether the peer may manage).  Never raises,
        except ``asyncio.CancelledError``.
        """
        if request.reply_to is None:
            log.debug("%s: a request without reply-to is ignored", self.node)
            return None
        reply = await self.execute(request, allowed=allowed)
        return reply.to_message(request)

    async def execute(self, request: Message, *, allowed: bool = True) -> ManagementReply:
        """Perform ``request`` and describe the outcome (whatever its ``reply-to``).

        Status codes: 200, 201 (CREATE), 204 (DELETE) on success; 400 for a
        malformed request (no name or identity, a bad attribute, a body that
        is not a map where one is needed, a bad ``offset``); 403 when not
        ``allowed``; 404 for an unknown entity or entity type; 409 for a
        CREATE of a name that exists; 501 for an unknown operation or one
        the type does not support; 500 when the provider fails.  Never
        raises, except ``asyncio.CancelledError``.
        """
        operation = "?"
        try:
            parsed = ManagementRequest.from_message(request)
            operation = parsed.operation
            if not allowed:
                raise Forbidden(f"not allowed to perform {parsed.operation} on {self.node}")
            reply = await self._dispatch(parsed)
            _check_encodable(reply.body)
            return reply
        except ManagementError as exc:
            log.debug("%s: %s failed: %s", self.node, operation, exc)
            return ManagementReply(exc.status, exc.description)
        except Exception as exc:
            log.exception("%s: %s failed", self.node, operation)
            text = f"{operation} failed: {type(exc).__name__}: {exc}"
            return ManagementReply(500, text if len(text) <= 500 else text[:497] + "...")

    # --- dispatch -----------------------------------------------------------------------

    async def _dispatch(self, request: ManagementRequest) -> ManagementReply:
        operation = request.operation
        if operation in NODE_OPERATIONS:
            return await self._node_operation(request)
        if operation == CREATE:
            return await self._create(request)
        if operation in ENTITY_OPERATIONS or operation in self._own_operations:
            return await self._entity_operation(request)
        raise OperationNotImplemented(f"unknown operation {operation!r}")

    def _entity_type(self, name: str) -> EntityType:
        """The type called ``name``, or the one whose last dotted part is ``name`` (``queue``)."""
        found = self._types.get(name)
        if found is not None:
            return found
        matches = [t for n, t in self._types.items() if n.rsplit(".", 1)[-1] == name]
        if len(matches) == 1:
            return matches[0]
        raise EntityNotFound(f"unknown entity type {name!r}")

    # --- entity operations --------------------------------------------------------------

    async def _create(self, request: ManagementRequest) -> ManagementReply:
        attributes = _attribute_map(request, CREATE)
        # qdmanage-style clients may put name and type in the body as well.
        name = _merge(request.name, attributes.pop("name", None), "name")
        type_name = _merge(request.type, attributes.pop("type", None), "type")
        if "identity" in attributes:
            raise BadRequest("identity is assigned by the server: CREATE cannot set it")
        if type_name is None:
            raise BadRequest("CREATE needs a type")
        if not name:
            raise BadRequest("CREATE needs a name")
        entity_type = self._entity_type(type_name)
        self._check_supports(entity_type, CREATE)
        values = entity_type.validate_create(attributes, name=name)
        if await self.provider.read(entity_type.name, name=name) is not None:
            raise Conflict(f"{entity_type.name} {name!r} exists")
        created = await self.provider.create(entity_type.name, name, values)
        return ManagementReply(201, body=self._output(entity_type, created))

    async def _entity_operation(self, request: ManagementRequest) -> ManagementReply:
        operation = request.operation
        entity_type = None if request.type is None else self._entity_type(request.type)
        if entity_type is not None:
            self._check_supports(entity_type, operation)
            own = entity_type.operation(operation)
            if own is not None and not own.entity:
                arguments = own.parse_arguments(request.properties)
                result = await self.provider.invoke(
                    entity_type.name, None, operation, arguments, request.body
                )
                return _operation_reply(result)
        entity_type, entity = await self._find(entity_type, request)
        self._check_supports(entity_type, operation)
        identity = entity["identity"]
        if operation == READ:
            return ManagementReply(200, body=self._output(entity_type, entity))
        if operation == UPDATE:
            changes = _attribute_map(request, UPDATE)
            for key in STANDARD_ATTRIBUTES:
                if key in changes:
                    given = changes.pop(key)
                    current = entity_type.name if key == "type" else entity.get(key)
                    if given != current and not (key == "type" and given == request.type):
                        raise BadRequest(f"UPDATE cannot change {key} ({current!r} to {given!r})")
            values = entity_type.validate_update(changes, current=entity)
            updated = await self.provider.update(entity_type.name, identity, values)
            return ManagementReply(200, body=self._output(entity_type, updated))
        if operation == DELETE:
            await self.provider.delete(entity_type.name, identity)
            return ManagementReply(204, body={})
        own = entity_type.operation(operation)
        assert own is not None  # _check_supports passed and it is not a standard operation
        arguments = own.parse_arguments(request.properties)
        result = await self.provider.invoke(
            entity_type.name, identity, operation, arguments, request.body
        )
        return _operation_reply(result)

    async def _find(
        self, entity_type: EntityType | None, request: ManagementRequest
    ) -> tuple[EntityType, Entity]:
        """The entity the request names, and its type (searched for when not given)."""
        if request.name is None and request.identity is None:
            raise BadRequest(f"{request.operation} needs a name or an identity")
        key: dict[str, str | None]
        if request.identity is not None:
            key = {"identity": request.identity}
        else:
            key = {"name": request.name}
        candidates = [entity_type] if entity_type is not None else list(self._types.values())
        found: list[tuple[EntityType, Entity]] = []
        for candidate in candidates:
            entity = await self.provider.read(candidate.name, **key)
            if entity is not None:
                found.append((candidate, entity))
        what = " ".join(f"{k}={v!r}" for k, v in key.items())
        if not found:
            where = entity_type.name if entity_type is not None else "any type"
            raise EntityNotFound(f"no entity with {what} in {where}")
        if len(found) > 1:
            kinds = ", ".join(t.name for t, _ in found)
            raise BadRequest(f"{what} names entities of several types ({kinds}): give a type")
        entity_type, entity = found[0]
        if (
            request.name is not None
            and request.identity is not None
            and entity.get("name") != request.name
        ):
            raise BadRequest(
                f"identity {request.identity!r} is {entity.get('name')!r}, not {request.name!r}"
            )
        if not isinstance(entity.get("identity"), str):
            raise InternalError(f"the provider gave {entity_type.name} {what} no string identity")
        return entity_type, entity

    def _check_supports(self, entity_type: EntityType, operation: str) -> None:
        if not entity_type.supports(operation):
            raise OperationNotImplemented(f"{entity_type.name} does not support {operation}")

    def _output(self, entity_type: EntityType, entity: Entity) -> dict[str, Any]:
        """The entity as sent: its type filled in, secret attributes left out."""
        result = {
            key: value
            for key, value in entity.items()
            if not ((attribute := entity_type.attribute(key)) is not None and attribute.secret)
        }
        result["type"] = entity_type.name
        return result

    # --- node operations ----------------------------------------------------------------

    async def _node_operation(self, request: ManagementRequest) -> ManagementReply:
        for key, value in (("name", request.name), ("identity", request.identity)):
            if value is not None and value != NODE_NAME:
                raise BadRequest(
                    f"{request.operation} is a node operation: its {key} is {NODE_NAME!r}, "
                    f"not {value!r}"
                )
        # The draft puts the entity type asked about in entityType (type being the node's own
        # type); some clients send it in type instead.
        asked = request.entity_type
        if asked is None and request.type not in (None, NODE_TYPE):
            asked = request.type
        types = self._matching(asked)
        operation = request.operation
        if operation == QUERY:
            return await run_query(self.provider.query, types, request, self.max_count)
        if operation == GET_TYPES:
            return ManagementReply(200, body={t.name: list(t.extends) for t in types})
        if operation == GET_ATTRIBUTES:
            return ManagementReply(200, body={t.name: t.attribute_names for t in types})
        if operation == GET_OPERATIONS:
            return ManagementReply(200, body={t.name: _operations_of(t) for t in types})
        if operation == GET_ANNOTATIONS:
            return ManagementReply(200, body={t.name: [] for t in types})
        assert operation == GET_MGMT_NODES
        nodes = [] if self._mgmt_nodes is None else [str(n) for n in self._mgmt_nodes()]
        return ManagementReply(200, body=nodes)

    def _matching(self, asked: str | None) -> list[EntityType]:
        """The types a node operation is about: all, or ``asked`` and the types extending it."""
        if asked is None:
            return list(self._types.values())
        matches = [t for t in self._types.values() if t.name == asked or asked in t.extends]
        if matches:
            return matches
        return [self._entity_type(asked)]  # a short name, or 404


# --- helpers ----------------------------------------------------------------------------


def _attribute_map(request: ManagementRequest, operation: str) -> dict[str, Any]:
    body = request.body
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadRequest(
            f"{operation} takes a map of attributes as its body, not {type(body).__name__}"
        )
    return dict(body)


def _merge(from_properties: str | None, from_body: Any, key: str) -> str | None:
    if from_body is not None and not isinstance(from_body, str):
        raise BadRequest(f"the {key} attribute must be a string")
    if from_properties is not None and from_body is not None and from_properties != from_body:
        raise BadRequest(
            f"the request's {key} {from_properties!r} and the body's {from_body!r} differ"
        )
    return from_properties if from_properties is not None else from_body


def _operations_of(entity_type: EntityType) -> dict[str, list[str]]:
    """GET-OPERATIONS for one type: operation name to the names of its arguments."""
    operations: dict[str, list[str]] = {name: [] for name in entity_type.allows}
    for operation in entity_type.operations:
        operations[operation.name] = operation.argument_names
    return operations


def _operation_reply(result: Any) -> ManagementReply:
    status, body = result
    if isinstance(status, bool) or not isinstance(status, int):
        raise TypeError(f"the provider's invoke() returned status {status!r}")
    return ManagementReply(status, body=body)


def _check_encodable(value: Any) -> None:
    """Raise ``TypeError`` if ``value`` holds something the AMQP codec cannot encode.

    Cheaper than encoding it twice; catches a provider's stray ``datetime``
    before the reply is sent, so it becomes a 500 reply instead of a
    rejected request.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            stack.extend(item.keys())
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif kind not in codec.ENCODERS and not any(
            issubclass(kind, known) for known in codec.ENCODERS
        ):
            raise TypeError(f"cannot send a {kind.__name__} value: {item!r:.60}")
