"""The AMQP Management wire format: request and reply messages as named values.

This follows the OASIS "AMQP Management Version 1.0" working draft.  A
request is a message sent to the management node (``$management``) with a
``reply-to`` address and these application-properties (all strings):

``operation``
    ``CREATE``, ``READ``, ``UPDATE``, ``DELETE``, an operation an entity type
    defines (``PURGE``), or a node operation: ``QUERY``, ``GET-TYPES``,
    ``GET-ATTRIBUTES``, ``GET-OPERATIONS``, ``GET-MGMT-NODES``,
    ``GET-ANNOTATIONS``.
``type``
    The entity type (``petrel.queue``); ``org.amqp.management`` for node
    operations.
``name``, ``identity``
    Which entity; ``name`` is ``self`` for node operations.
``locales``
    The languages the client reads (Petrel answers in English whatever it says).
``entityType``, ``offset``, ``count``
    Node operations: the entity type asked about, and QUERY's paging.

The reply goes to the request's ``reply-to`` with ``correlation-id`` set to the
request's ``correlation-id`` if it has one, else to its ``message-id`` (draft
section 3.2), and with the application-properties ``statusCode`` (an AMQP
``int``: an HTTP status code) and ``statusDescription`` (a string).  Bodies
are ``amqp-value`` sections; which value depends on the operation.

:class:`ManagementRequest` and :class:`ManagementReply` hold one message each
and convert from and to :class:`petrel.Message`: the agent reads requests and
writes replies with them, the client the other way round, so the format is
written down once, here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Final

from ..message import Message
from ..types import Int
from .errors import BadRequest, ManagementError, status_text

__all__ = [
    "ATTRIBUTE_NAMES",
    "CREATE",
    "DELETE",
    "DEREGISTER",
    "ENTITY_OPERATIONS",
    "GET_ANNOTATIONS",
    "GET_ATTRIBUTES",
    "GET_MGMT_NODES",
    "GET_OPERATIONS",
    "GET_TYPES",
    "MAX_QUERY_COUNT",
    "NODE_ADDRESS",
    "NODE_NAME",
    "NODE_OPERATIONS",
    "NODE_TYPE",
    "QUERY",
    "READ",
    "REGISTER",
    "RESULTS",
    "UPDATE",
    "ManagementReply",
    "ManagementRequest",
]

#: The management node's address.
NODE_ADDRESS: Final = "$management"
#: The ``type`` of node operations: the management node's own type.
NODE_TYPE: Final = "org.amqp.management"
#: The ``name`` of node operations.
NODE_NAME: Final = "self"
#: The most rows one QUERY reply carries, whatever ``count`` asks for (page with ``offset``).
MAX_QUERY_COUNT: Final = 10_000

CREATE: Final = "CREATE"
READ: Final = "READ"
UPDATE: Final = "UPDATE"
DELETE: Final = "DELETE"
QUERY: Final = "QUERY"
GET_TYPES: Final = "GET-TYPES"
GET_ATTRIBUTES: Final = "GET-ATTRIBUTES"
GET_OPERATIONS: Final = "GET-OPERATIONS"
GET_MGMT_NODES: Final = "GET-MGMT-NODES"
GET_ANNOTATIONS: Final = "GET-ANNOTATIONS"
REGISTER: Final = "REGISTER"
DEREGISTER: Final = "DEREGISTER"

#: The operations on one entity that the draft defines, in the order they are listed.
ENTITY_OPERATIONS: Final = (CREATE, READ, UPDATE, DELETE)
#: The operations on the management node itself that Petrel implements.
NODE_OPERATIONS: Final = (
    QUERY,
    GET_TYPES,
    GET_ATTRIBUTES,
    GET_OPERATIONS,
    GET_MGMT_NODES,
    GET_ANNOTATIONS,
)

# Application-property keys.
_OPERATION = "operation"
_TYPE = "type"
_NAME = "name"
_IDENTITY = "identity"
_LOCALES = "locales"
_ENTITY_TYPE = "entityType"
_STATUS_CODE = "statusCode"
_STATUS_DESCRIPTION = "statusDescription"
# Some peers (Azure's CBS node among them) spell the status keys this way.
_STATUS_CODE_ALT = "status-code"
_STATUS_DESCRIPTION_ALT = "status-description"
_REQUEST_KEYS = frozenset({_OPERATION, _TYPE, _NAME, _IDENTITY, _LOCALES, _ENTITY_TYPE})
_REPLY_KEYS = frozenset(
    {_STATUS_CODE, _STATUS_DESCRIPTION, _STATUS_CODE_ALT, _STATUS_DESCRIPTION_ALT}
)

#: QUERY body keys.
ATTRIBUTE_NAMES: Final = "attributeNames"
RESULTS: Final = "results"


def _string(properties: Mapping[str, Any], key: str) -> str | None:
    value = properties.get(key)
    if value is None or isinstance(value, str):
        return None if value is None else str(value)
    raise BadRequest(
        f"the application property {key!r} must be a string, not {type(value).__name__}"
    )


@dataclass(frozen=True, slots=True)
class ManagementRequest:
    """One management request.

    ``operation`` is upper case (the agent matches operation names without
    regard to case, as Qpid Dispatch does).  ``entity_type`` is the
    ``entityType`` property of node operations.  ``properties`` holds the
    application-properties not named by a field: QUERY's ``offset`` and
    ``count``, and the arguments of operations that entity types define.
    """

    operation: str
    type: str | None = None
    name: str | None = None
    identity: str | None = None
    _: KW_ONLY
    entity_type: str | None = None
    locales: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    body: Any = None

    @classmethod
    def from_message(cls, message: Message) -> ManagementRequest:
        """Read a request message.

        Raises :class:`~petrel.management.errors.BadRequest` when it has no
        ``operation`` or a standard property (``operation``, ``type``,
        ``name``, ``identity``, ``locales``, ``entityType``) is not a string.
        Other application-properties are kept, whatever their values.
        """
        properties = message.application_properties or {}
        operation = _string(properties, _OPERATION)
        if not operation:
            raise BadRequest("the request has no 'operation' application property")
        return cls(
            operation.upper(),
            _string(properties, _TYPE),
            _string(properties, _NAME),
            _string(properties, _IDENTITY),
            entity_type=_string(properties, _ENTITY_TYPE),
            locales=_string(properties, _LOCALES),
            properties={k: v for k, v in properties.items() if k not in _REQUEST_KEYS},
            body=message.body,
        )

    def to_message(self) -> Message:
        """The request as a message, without ``message-id`` and ``reply-to`` (the sender's)."""
        standard = (
            (_OPERATION, self.operation),
            (_TYPE, self.type),
            (_NAME, self.name),
            (_IDENTITY, self.identity),
            (_LOCALES, self.locales),
            (_ENTITY_TYPE, self.entity_type),
        )
        properties: dict[str, Any] = {k: v for k, v in standard if v is not None}
        properties.update(self.properties)
        return Message(self.body, application_properties=properties)


@dataclass(frozen=True, slots=True)
class ManagementReply:
    """One management reply: a status code, its description, a body.

    ``properties`` holds application-properties besides the status (QUERY's
    ``count``).  A status in the 2xx range is a success; anything else a
    failure, whose body clients ignore (draft section 3.2.2).
    """

    status: int
    description: str | None = None
    body: Any = None
    _: KW_ONLY
    properties: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the status is a success (2xx)."""
        return 200 <= self.status < 300

    def raise_for_status(self) -> None:
        """Raise the :class:`~petrel.management.errors.ManagementError` for a status
        outside 2xx; do nothing on success."""
        if not self.ok:
            raise ManagementError.from_status(self.status, self.description)

    def to_message(self, request: Message) -> Message:
        """The reply to ``request``: to its ``reply-to``, correlated per the draft.

        ``correlation-id`` is the request's ``correlation-id`` if it has one,
        else its ``message-id``.  ``statusCode`` is sent as an AMQP ``int``,
        ``statusDescription`` defaults to the status's reason phrase (``OK``).
        """
        correlation = request.correlation_id
        if correlation is None:
            correlation = request.message_id
        properties: dict[str, Any] = {
            _STATUS_CODE: Int(self.status),
            _STATUS_DESCRIPTION: self.description or status_text(self.status),
        }
        properties.update(self.properties)
        return Message(
            self.body,
            to=request.reply_to,
            correlation_id=correlation,
            application_properties=properties,
        )

    @classmethod
    def from_message(cls, message: Message) -> ManagementReply:
        """Read a reply message.

        Accepts ``statusCode`` as any integer (or a string of digits), and the
        ``status-code``/``status-description`` spelling some peers use.
        Raises :class:`~petrel.management.errors.ManagementError` with status
        502 (Bad Gateway) when there is no usable status code.
        """
        properties = message.application_properties or {}
        status = properties.get(_STATUS_CODE, properties.get(_STATUS_CODE_ALT))
        if isinstance(status, str) and status.isdigit():
            status = int(status)
        if not isinstance(status, int) or isinstance(status, bool):
            raise ManagementError(502, f"the reply has no integer statusCode: {properties!r}")
        description = properties.get(_STATUS_DESCRIPTION, properties.get(_STATUS_DESCRIPTION_ALT))
        return cls(
            int(status),
            None if description is None else str(description),
            message.body,
            properties={k: v for k, v in properties.items() if k not in _REPLY_KEYS},
        )
