"""The client side of AMQP Management: operations as method calls over ``Connection.request``.

    async with await petrel.connect("amqp://localhost") as conn:
        manage = ManagementClient(conn)
        await manage.create("petrel.queue", "orders", max_messages=10_000)
        for queue in (await manage.query_all("petrel.queue", ["name", "depth"])).as_dicts():
            print(queue["name"], queue["depth"])

Every call sends one request to the management node (``$management``) and
waits up to ``timeout`` seconds for the reply (then ``petrel.Timeout``).  A
reply whose ``statusCode`` is not 2xx raises
:class:`~petrel.management.errors.ManagementError` (the subclass for the
status: ``EntityNotFound`` for 404, ``Conflict`` for 409, ...), with the
peer's ``status`` and ``description``.  A reply that is not what the draft
says the operation returns raises it with status 502.

:class:`BlockingManagementClient` offers the same methods on a
:class:`petrel.blocking.BlockingConnection`, running the async client on
that connection's event loop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import ManagementError
from .protocol import (
    ATTRIBUTE_NAMES,
    CREATE,
    DELETE,
    GET_ATTRIBUTES,
    GET_MGMT_NODES,
    GET_OPERATIONS,
    GET_TYPES,
    MAX_QUERY_COUNT,
    NODE_ADDRESS,
    NODE_NAME,
    NODE_TYPE,
    QUERY,
    READ,
    RESULTS,
    UPDATE,
    ManagementReply,
    ManagementRequest,
)

if TYPE_CHECKING:
    from ..client import Connection
    from ..client.sync import BlockingConnection

__all__ = ["BlockingManagementClient", "ManagementClient", "QueryResult"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class QueryResult:
    """A QUERY's answer: attribute names, and one row of values per entity, in that order.

    A value is ``None`` where an attribute does not apply to an entity's type.
    """

    attribute_names: list[str]
    results: list[list[Any]] = field(default_factory=list)
    more: bool = False
    """:meth:`ManagementClient.query_all` with a ``limit``: some were left out."""

    def as_dicts(self) -> list[dict[str, Any]]:
        """Each row as a map of attribute name to value."""
        return [dict(zip(self.attribute_names, row, strict=False)) for row in self.results]

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[list[Any]]:
        return iter(self.results)


#: Rows each page of :meth:`ManagementClient.query_all` repeats of the one before.
OVERLAP = 16
#: What tells entities apart across pages.
_KEY = ("type", "identity")


def _bad_reply(operation: str, body: Any) -> ManagementError:
    return ManagementError(502, f"malformed {operation} reply body: {body!r:.200}")


def _query_result(body: Any) -> QueryResult:
    if not isinstance(body, dict):
        raise _bad_reply(QUERY, body)
    names = body.get(ATTRIBUTE_NAMES)
    rows = body.get(RESULTS)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _bad_reply(QUERY, body)
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise _bad_reply(QUERY, body)
    return QueryResult([str(n) for n in names], rows)


def _map_of_lists(operation: str, body: Any) -> dict[str, list[Any]]:
    if not isinstance(body, dict) or not all(isinstance(v, list) for v in body.values()):
        raise _bad_reply(operation, body)
    return {str(k): list(v) for k, v in body.items()}


def _operations(body: Any) -> dict[str, dict[str, list[str]]]:
    """GET-OPERATIONS as the draft has it (type -> operation -> argument names).

    Qpid Dispatch answers with type -> list of operation names; that becomes
    operations without arguments.
    """
    if not isinstance(body, dict):
        raise _bad_reply(GET_OPERATIONS, body)
    result: dict[str, dict[str, list[str]]] = {}
    for type_name, operations in body.items():
        if isinstance(operations, list):
            result[str(type_name)] = {str(op): [] for op in operations}
        elif isinstance(operations, dict):
            result[str(type_name)] = {
                str(op): list(args) if isinstance(args, list) else []
                for op, args in operations.items()
            }
        else:
            raise _bad_reply(GET_OPERATIONS, body)
    return result


def _entity(operation: str, reply: ManagementReply) -> dict[str, Any]:
    if not isinstance(reply.body, dict):
        raise _bad_reply(operation, reply.body)
    return dict(reply.body)


def _realign(page: QueryResult, names: list[str]) -> QueryResult:
    """``page`` with its columns in the order of ``names`` (the types changed between pages)."""
    index = {name: i for i, name in enumerate(page.attribute_names)}
    return QueryResult(
        names, [[row[index[n]] if n in index else None for n in names] for row in page.results]
    )


def _without(result: QueryResult, names: Sequence[str]) -> QueryResult:
    """``result`` without the columns ``names``."""
    keep = [i for i, name in enumerate(result.attribute_names) if name not in names]
    return QueryResult(
        [result.attribute_names[i] for i in keep],
        [[row[i] for i in keep] for row in result.results],
        more=result.more,
    )


def _check_key(operation: str, name: str | None, identity: str | None) -> None:
    if name is None and identity is None:
        raise ValueError(f"{operation} needs a name or an identity")


class ManagementClient:
    """Management operations on the node at ``address`` through ``conn``.

    ``timeout`` (seconds, ``None``: wait forever) bounds each call.
    ``locales`` is sent with every request (Petrel's agent answers in
    English whatever it asks for).
    """

    def __init__(
        self,
        conn: Connection,
        *,
        address: str = NODE_ADDRESS,
        timeout: float | None = 10.0,
        locales: str | None = None,
    ) -> None:
        self.connection = conn
        self.address = address
        self.timeout = timeout
        self.locales = locales

    async def call(self, request: ManagementRequest) -> ManagementReply:
        """Send ``request``, return the reply; the building block of the other methods.

        Raises :class:`~petrel.management.errors.ManagementError` for a
        status outside 2xx (502 for a reply without one), ``petrel.Timeout``
        when no reply comes within ``timeout``, and the connection's
        ``petrel.ClientError`` s (``ConnectionLost``; ``MessageRejected`` if
        the peer refuses the request message; ``NotFound`` if it has no such
        node).
        """
        if self.locales is not None and request.locales is None:
            request = dataclasses.replace(request, locales=self.locales)
        message = request.to_message()
        response = await self.connection.request(self.address, message, timeout=self.timeout)
        reply = ManagementReply.from_message(response)
        reply.raise_for_status()
        return reply

    async def _node(
        self, operation: str, entity_type: str | None = None, **kwargs: Any
    ) -> ManagementReply:
        return await self.call(
            ManagementRequest(operation, NODE_TYPE, NODE_NAME, entity_type=entity_type, **kwargs)
        )

    # --- entity operations --------------------------------------------------------------

    async def create(
        self,
        type: str,
        name: str,
        attributes: Mapping[str, Any] | None = None,
        **more: Any,
    ) -> dict[str, Any]:
        """Create the entity ``name`` of ``type`` with ``attributes`` and/or keyword attributes.

        (An attribute called ``attributes`` goes in the map; ``name``,
        ``identity`` and ``type`` are not attributes a request may set.)

        Returns the new entity's attributes as the server reports them
        (defaults filled in).  409 (``Conflict``) if it exists.
        """
        body = {**(attributes or {}), **more}
        reply = await self.call(ManagementRequest(CREATE, type, name, body=body))
        return _entity(CREATE, reply)

    async def read(
        self, type: str | None, name: str | None = None, identity: str | None = None
    ) -> dict[str, Any]:
        """The attributes of the entity with that ``name`` or ``identity``.

        ``type`` may be ``None``: the server then looks in every type.
        404 (``EntityNotFound``) if there is none.
        """
        _check_key(READ, name, identity)
        return _entity(READ, await self.call(ManagementRequest(READ, type, name, identity)))

    async def update(
        self,
        type: str | None,
        name: str | None = None,
        identity: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        **more: Any,
    ) -> dict[str, Any]:
        """Change attributes of the entity with that ``name`` or ``identity``; return it.

        ``client.update("petrel.queue", "orders", max_messages=5)``; the
        attributes may also be given as a map.  All change or none do.
        """
        _check_key(UPDATE, name, identity)
        body = {**(attributes or {}), **more}
        reply = await self.call(ManagementRequest(UPDATE, type, name, identity, body=body))
        return _entity(UPDATE, reply)

    async def delete(
        self, type: str | None, name: str | None = None, identity: str | None = None
    ) -> None:
        """Delete the entity with that ``name`` or ``identity``."""
        _check_key(DELETE, name, identity)
        await self.call(ManagementRequest(DELETE, type, name, identity))

    async def invoke(
        self,
        type: str,
        operation: str,
        name: str | None = None,
        identity: str | None = None,
        *,
        body: Any = None,
        arguments: Mapping[str, Any] | None = None,
    ) -> Any:
        """Perform ``type`` 's own ``operation`` (``PURGE``); return the reply body.

        ``arguments`` go in the request's application-properties, as
        GET-OPERATIONS lists them; ``body`` is the request body.  Without a
        ``name`` or ``identity`` the operation is on the type as a whole.
        """
        request = ManagementRequest(
            operation, type, name, identity, properties=dict(arguments or {}), body=body
        )
        return (await self.call(request)).body

    # --- node operations ----------------------------------------------------------------

    async def query(
        self,
        type: str | None = None,
        attribute_names: Sequence[str] = (),
        *,
        offset: int = 0,
        count: int | None = None,
    ) -> QueryResult:
        """One page of entities: those of ``type`` (all types when ``None``), rows ordered by
        type then name, from ``offset``, at most ``count`` of them.

        ``attribute_names`` empty asks for every attribute.  The server may
        return fewer rows than ``count`` (Petrel's at most 10,000 per
        request); :meth:`query_all` pages through everything.
        """
        properties: dict[str, Any] = {"offset": offset}
        if count is not None:
            properties["count"] = count
        reply = await self._node(
            QUERY,
            type,
            properties=properties,
            body={ATTRIBUTE_NAMES: list(attribute_names)},
        )
        return _query_result(reply.body)

    async def query_all(
        self,
        type: str | None = None,
        attribute_names: Sequence[str] = (),
        *,
        page_size: int = 1000,
        limit: int | None = None,
    ) -> QueryResult:
        """Every entity (or the first ``limit``), fetched ``page_size`` rows per request
        (at most 10,000, Petrel's cap); :attr:`QueryResult.more` says whether ``limit``
        left some out.

        Offsets shift while entities come and go between two requests, so each
        page after the first starts :data:`OVERLAP` rows early and rows already
        seen (by type and identity) are skipped: no entity twice, and none
        missed unless more than :data:`OVERLAP` earlier ones vanished between
        two pages.  A server that ignores ``count`` and sends everything at
        once is taken at its word.
        """
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        page_size = min(page_size, MAX_QUERY_COUNT)
        asked = list(attribute_names)
        extra = [key for key in _KEY if asked and key not in asked]
        names: list[str] | None = None
        rows: list[list[Any]] = []
        seen: set[Any] = set()
        overlap = min(OVERLAP, page_size - 1)  # each page must get past the one before
        offset = 0
        while True:
            count = page_size if limit is None else min(page_size, limit + 1 - len(rows))
            if offset:
                count += overlap
            page = await self.query(type, [*asked, *extra], offset=offset, count=count)
            if names is None:
                names = page.attribute_names
            elif page.attribute_names != names:
                page = _realign(page, names)
            if len(page.results) > count:
                if offset:
                    raise ManagementError(502, "the server ignores the count of QUERY")
                count = len(page.results) + 1  # everything came at once
            key_at = [names.index(key) for key in _KEY if key in names]
            before = len(rows)
            for row in page.results:
                key = tuple(row[i] for i in key_at) if key_at else tuple(map(repr, row))
                if key not in seen:
                    seen.add(key)
                    rows.append(row)
            if len(page.results) < count or (limit is not None and len(rows) > limit):
                break
            if len(rows) == before:  # a whole page of what was seen: the server ignores offset
                raise ManagementError(502, "the server ignores the offset of QUERY")
            offset += len(page.results) - overlap
        more = limit is not None and len(rows) > limit
        result = QueryResult(names, rows[:limit] if more else rows, more=more)
        return _without(result, extra) if extra else result

    async def get_types(self, type: str | None = None) -> dict[str, list[str]]:
        """Entity type -> the types it extends; all types, or ``type`` and its extensions."""
        return _map_of_lists(GET_TYPES, (await self._node(GET_TYPES, type)).body)

    async def get_attributes(self, type: str | None = None) -> dict[str, list[str]]:
        """Entity type -> its attribute names."""
        return _map_of_lists(GET_ATTRIBUTES, (await self._node(GET_ATTRIBUTES, type)).body)

    async def get_operations(self, type: str | None = None) -> dict[str, dict[str, list[str]]]:
        """Entity type -> operation name -> the names of its arguments."""
        return _operations((await self._node(GET_OPERATIONS, type)).body)

    async def get_mgmt_nodes(self) -> list[str]:
        """The addresses of the other management nodes this one knows of."""
        body = (await self._node(GET_MGMT_NODES)).body
        if not isinstance(body, list):
            raise _bad_reply(GET_MGMT_NODES, body)
        return [str(address) for address in body]


class BlockingManagementClient:
    """:class:`ManagementClient` for threaded code, on a
    :class:`~petrel.blocking.BlockingConnection`; thread-safe.

    Each method runs its async twin on the connection's event loop and waits
    for it; the arguments, results and errors are the same.
    """

    def __init__(
        self,
        conn: BlockingConnection,
        *,
        address: str = NODE_ADDRESS,
        timeout: float | None = 10.0,
        locales: str | None = None,
    ) -> None:
        self._conn = conn
        self.client = ManagementClient(
            conn.connection, address=address, timeout=timeout, locales=locales
        )

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        # The blocking connection's loop runner: it refuses calls from the loop's own thread
        # and turns a closed loop into ConnectionClosed.
        return self._conn.run(coro)

    def call(self, request: ManagementRequest) -> ManagementReply:
        """See :meth:`ManagementClient.call`."""
        return self._run(self.client.call(request))

    def create(
        self, type: str, name: str, attributes: Mapping[str, Any] | None = None, **more: Any
    ) -> dict[str, Any]:
        """See :meth:`ManagementClient.create`."""
        return self._run(self.client.create(type, name, attributes, **more))

    def read(
        self, type: str | None, name: str | None = None, identity: str | None = None
    ) -> dict[str, Any]:
        """See :meth:`ManagementClient.read`."""
        return self._run(self.client.read(type, name, identity))

    def update(
        self,
        type: str | None,
        name: str | None = None,
        identity: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        **more: Any,
    ) -> dict[str, Any]:
        """See :meth:`ManagementClient.update`."""
        return self._run(self.client.update(type, name, identity, attributes, **more))

    def delete(
        self, type: str | None, name: str | None = None, identity: str | None = None
    ) -> None:
        """See :meth:`ManagementClient.delete`."""
        self._run(self.client.delete(type, name, identity))

    def invoke(
        self,
        type: str,
        operation: str,
        name: str | None = None,
        identity: str | None = None,
        *,
        body: Any = None,
        arguments: Mapping[str, Any] | None = None,
    ) -> Any:
        """See :meth:`ManagementClient.invoke`."""
        return self._run(
            self.client.invoke(type, operation, name, identity, body=body, arguments=arguments)
        )

    def query(
        self,
        type: str | None = None,
        attribute_names: Sequence[str] = (),
        *,
        offset: int = 0,
        count: int | None = None,
    ) -> QueryResult:
        """See :meth:`ManagementClient.query`."""
        return self._run(self.client.query(type, attribute_names, offset=offset, count=count))

    def query_all(
        self, type: str | None = None, attribute_names: Sequence[str] = (), *, page_size: int = 1000
    ) -> QueryResult:
        """See :meth:`ManagementClient.query_all`."""
        return self._run(self.client.query_all(type, attribute_names, page_size=page_size))

    def get_types(self, type: str | None = None) -> dict[str, list[str]]:
        """See :meth:`ManagementClient.get_types`."""
        return self._run(self.client.get_types(type))

    def get_attributes(self, type: str | None = None) -> dict[str, list[str]]:
        """See :meth:`ManagementClient.get_attributes`."""
        return self._run(self.client.get_attributes(type))

    def get_operations(self, type: str | None = None) -> dict[str, dict[str, list[str]]]:
        """See :meth:`ManagementClient.get_operations`."""
        return self._run(self.client.get_operations(type))

    def get_mgmt_nodes(self) -> list[str]:
        """See :meth:`ManagementClient.get_mgmt_nodes`."""
        return self._run(self.client.get_mgmt_nodes())
