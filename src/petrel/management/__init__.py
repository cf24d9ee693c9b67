"""AMQP Management: the entity model, the agent that serves ``$management``, and its client.

Petrel speaks the OASIS "AMQP Management Version 1.0" working draft:
request/response messages at the node ``$management`` whose
application-properties say what to do (``operation``, ``type``, ``name``,
``identity``) and whose replies carry ``statusCode`` and
``statusDescription``.  This package knows nothing of any server:

- :mod:`~petrel.management.schema`: :class:`EntityType`, :class:`Attribute`,
  :class:`Operation`; config-backed types come from the same pydantic model
  as the config file (:meth:`EntityType.from_model`).
- :mod:`~petrel.management.agent`: :class:`ManagementAgent` turns a request
  message into a reply message; a server implements
  :class:`ManagementProvider` for its entities and moves the messages.
- :mod:`~petrel.management.client`: :class:`ManagementClient` (asyncio) and
  :class:`BlockingManagementClient`, for ``petrel stat``, ``petrel manage``
  and applications.
- :mod:`~petrel.management.protocol`: the wire format, once, for both sides.
- :mod:`~petrel.management.errors`: :class:`ManagementError` and one subclass
  per status code.
"""

from __future__ import annotations

from .agent import ManagementAgent, ManagementProvider, OperationResult
from .client import BlockingManagementClient, ManagementClient, QueryResult
from .errors import (
    BadRequest,
    Conflict,
    EntityNotFound,
    Forbidden,
    InternalError,
    ManagementError,
    OperationNotImplemented,
    Unauthenticated,
)
from .protocol import (
    MAX_QUERY_COUNT,
    NODE_ADDRESS,
    NODE_NAME,
    NODE_TYPE,
    ManagementReply,
    ManagementRequest,
)
from .schema import Attribute, AttributeType, EntityType, Operation

__all__ = [
    "MAX_QUERY_COUNT",
    "NODE_ADDRESS",
    "NODE_NAME",
    "NODE_TYPE",
    "Attribute",
    "AttributeType",
    "BadRequest",
    "BlockingManagementClient",
    "Conflict",
    "EntityNotFound",
    "EntityType",
    "Forbidden",
    "InternalError",
    "ManagementAgent",
    "ManagementClient",
    "ManagementError",
    "ManagementProvider",
    "ManagementReply",
    "ManagementRequest",
    "Operation",
    "OperationNotImplemented",
    "OperationResult",
    "QueryResult",
    "Unauthenticated",
]
