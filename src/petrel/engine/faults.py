"""How far a peer's protocol violation reaches: the connection, one session or one link.

The frame handlers raise these; the connection's read loop catches them and
answers with a ``close``, an ``end`` or a ``detach`` carrying the condition.
A plain :class:`~petrel.errors.RemoteProtocolError` ends the connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import AmqpError, RemoteProtocolError
from ..spec import Error
from ..types import Symbol

if TYPE_CHECKING:
    from .link import Link
    from .session import Session

__all__ = ["LinkFault", "SessionFault", "as_error", "error_of"]


class SessionFault(RemoteProtocolError):
    """The peer broke the protocol within one session: end it with ``condition``."""

    def __init__(self, session: Session, condition: str, description: str) -> None:
        super().__init__(description, condition=condition)
        self.session = session


class LinkFault(RemoteProtocolError):
    """The peer broke the protocol on one link: detach it with ``condition``."""

    def __init__(self, link: Link, condition: str, description: str) -> None:
        super().__init__(description, condition=condition)
        self.link = link


def error_of(condition: str, description: str | None = None) -> Error:
    """A spec ``error`` for ``condition``."""
    return Error(condition=Symbol(condition), description=description or None)


def as_error(error: Error | AmqpError | None) -> Error | None:
    """What a command was given as an error, as the spec ``error`` to send."""
    if error is None or isinstance(error, Error):
        return error
    if isinstance(error, AmqpError):
        info = error.info
        if info:
            info = {Symbol(k) if type(k) is str else k: v for k, v in info.items()}
        return Error(
            condition=Symbol(error.condition),
            description=error.description or None,
            info=info or None,
        )
    raise TypeError(f"expected a spec Error or an AmqpError, got {type(error).__name__}")
