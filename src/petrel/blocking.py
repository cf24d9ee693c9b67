"""The blocking API: Petrel's async client on a background event loop, for threaded code.

    import petrel

    with petrel.blocking.connect("amqp://localhost") as conn:
        conn.open_sender("orders").send(petrel.Message(body="hi"))
        delivery = conn.open_receiver("orders").receive(timeout=5)
        delivery.accept()

See :mod:`petrel.client.sync` for how it works and ``docs/client.md`` for the guide.
"""

from __future__ import annotations

from .client.sync import (
    BlockingConnection,
    BlockingDelivery,
    BlockingReceiver,
    BlockingResponder,
    BlockingSender,
    BlockingTransaction,
    connect,
)

__all__ = [
    "BlockingConnection",
    "BlockingDelivery",
    "BlockingReceiver",
    "BlockingResponder",
    "BlockingSender",
    "BlockingTransaction",
    "connect",
]
