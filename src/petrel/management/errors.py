"""Management failures: one exception class carrying an AMQP Management status code.

The same classes serve both sides.  A provider (the broker's adapter) raises
them to make the agent answer with that status; the client raises them when a
reply's ``statusCode`` is 300 or more.  Catch :class:`ManagementError` for any
failure, or a subclass for one status::

    try:
        await client.read("petrel.queue", name="orders")
    except EntityNotFound:
        ...
"""

from __future__ import annotations

from http import HTTPStatus

__all__ = [
    "BadRequest",
    "Conflict",
    "EntityNotFound",
    "Forbidden",
    "InternalError",
    "ManagementError",
    "OperationNotImplemented",
    "Unauthenticated",
    "status_text",
]


def status_text(status: int) -> str:
    """The reason phrase of an HTTP status code (``"Not Found"``), or ``"Status N"``."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"Status {status}"


class ManagementError(Exception):
    """A management operation failed with ``status`` (an HTTP status code, 300 or more).

    ``description`` is the human-readable reason: the reply's
    ``statusDescription`` (the reason phrase when the peer gave none).
    :meth:`from_status` picks the subclass that names the status.
    """

    #: The status code the subclass stands for (0 on the base class: any).
    STATUS = 0

    def __init__(self, status: int, description: str | None = None) -> None:
        self.status = int(status)
        self.description = description if description else status_text(self.status)
        super().__init__(self.status, self.description)

    def __str__(self) -> str:
        return f"{self.status} {status_text(self.status)}: {self.description}"

    @staticmethod
    def from_status(status: int, description: str | None = None) -> ManagementError:
        """The exception for ``status``: the subclass named for it, else a plain one."""
        cls = _BY_STATUS.get(status)
        if cls is None:
            return ManagementError(status, description)
        return cls(description)


class _Named(ManagementError):
    """A ManagementError for the one status its class names."""

    def __init__(self, description: str | None = None) -> None:
        super().__init__(self.STATUS, description)


class BadRequest(_Named):
    """400: the request is malformed (a missing name, a bad attribute, a body of the wrong kind)."""

    STATUS = 400


class Unauthenticated(_Named):
    """401: the client must authenticate before it may manage anything."""

    STATUS = 401


class Forbidden(_Named):
    """403: the client may not perform this operation."""

    STATUS = 403


class EntityNotFound(_Named):
    """404: no entity (or entity type) of that name or identity."""

    STATUS = 404


class Conflict(_Named):
    """409: the operation clashes with the current state (CREATE of a name that exists)."""

    STATUS = 409


class InternalError(_Named):
    """500: the server failed while performing the operation."""

    STATUS = 500


class OperationNotImplemented(_Named):
    """501: the operation is unknown, or the entity type does not support it."""

    STATUS = 501


_BY_STATUS: dict[int, type[_Named]] = {
    cls.STATUS: cls
    for cls in (
        BadRequest,
        Unauthenticated,
        Forbidden,
        EntityNotFound,
        Conflict,
        InternalError,
        OperationNotImplemented,
    )
}
