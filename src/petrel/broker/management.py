"""``$management`` in the broker: the server's management node
(:mod:`petrel.server.management`) with the broker's way of delivering a reply.

A reply that is not for one of the requesting connection's reply links goes
into the broker's address space, normally the client's dynamic reply queue:
to an address that exists (a reply never creates one), published like a
message from a producer without credit (``credited=False``).
"""

from __future__ import annotations

from ..management import ManagementAgent
from ..server.management import Deliver, ManagementNode
from .core import BrokerCore

__all__ = ["management_node", "reply_delivery"]


def reply_delivery(core: BrokerCore) -> Deliver:
    """The broker's ``deliver`` for :class:`~petrel.server.management.ManagementNode`:
    publish the reply to the address ``to`` if it exists; ``False`` if it does not, an
    :class:`~petrel.errors.AmqpError` if it refuses it (full, say)."""

    def deliver(to: str, payload: bytes) -> bool:
        info = core.lookup(to)
        if info is None:
            return False
        core.publish(info, payload, credited=False)
        return True

    return deliver


def management_node(core: BrokerCore, agent: ManagementAgent) -> ManagementNode:
    """The broker's ``$management``: ``agent`` answering, replies delivered into ``core``."""
    return ManagementNode(agent, reply_delivery(core))
