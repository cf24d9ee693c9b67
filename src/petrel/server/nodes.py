"""Special nodes: addresses a server answers itself (``$management`` now, the transaction
coordinator later), looked up on the attach path before ordinary address resolution,
so they are never mistaken for queues nor auto-created as one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from ..engine import Link

if TYPE_CHECKING:
    from .connection import LinkHandler, ServerConnection

__all__ = ["Node", "NodeRegistry", "terminus_address", "terminus_capabilities"]


class Node(Protocol):
    """A special node: it takes (or refuses) the links attached to its address, and the
    messages the anonymous relay brings it."""

    def attach(self, connection: ServerConnection, link: Link) -> LinkHandler:
        """Answer ``link``'s attach and return what handles its traffic; raise an
        :class:`~petrel.errors.AmqpError` to refuse it (the link is detached with it)."""
        ...

    def relay(self, connection: ServerConnection, payload: bytes) -> None:
        """A message for this node came over ``connection``'s anonymous relay (its
        ``to`` is the node's address); raise an :class:`~petrel.errors.AmqpError` to
        reject it.  Returning accepts it."""
        ...


class NodeRegistry:
    """Special nodes by address."""

    def __init__(self) -> None:
        self._nodes: dict[str, Node] = {}

    def register(self, address: str, node: Node) -> None:
        if address in self._nodes:
            raise ValueError(f"a node is registered at {address!r} already")
        self._nodes[address] = node

    def get(self, address: str | None) -> Node | None:
        """The node at ``address``, if it is a special one."""
        if address is None or not self._nodes:
            return None
        return self._nodes.get(address)

    def __contains__(self, address: object) -> bool:
        return address in self._nodes

    def __iter__(self) -> Iterator[str]:
        return iter(self._nodes)


def terminus_address(link: Link) -> str | None:
    """The address a peer attaches ``link`` to: the source of what we send, the target of
    what we receive (``None`` for a dynamic node or the anonymous relay)."""
    terminus = link.remote_source if link.is_sender else link.remote_target
    address = getattr(terminus, "address", None)
    return None if address is None else str(address)


def terminus_capabilities(link: Link) -> set[str]:
    """The capabilities a peer gives the terminus it attaches ``link`` to (its source's
    or target's), with the link's desired capabilities: absent, one symbol, or an array."""
    terminus = link.remote_source if link.is_sender else link.remote_target
    found: set[str] = set()
    for value in (getattr(terminus, "capabilities", None), link.remote_desired_capabilities):
        if value is None:
            continue
        if isinstance(value, str):
            found.add(value)
        else:
            found.update(str(item) for item in value)
    return found
