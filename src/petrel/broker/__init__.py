"""The store-and-forward broker: queues and topics over any AMQP 1.0 client."""

from __future__ import annotations

from .broker import Broker, make_store
from .core import AddressInfo, BrokerCore
from .queues import Entry, Queue

__all__ = ["AddressInfo", "Broker", "BrokerCore", "Entry", "Queue", "make_store"]
