"""AMQP 1.0 part 4, transactions: the coordinator target and its messages and states."""

from __future__ import annotations

from typing import Any

from ..types import Symbol
from ._base import Composite, field

__all__ = [
    "TXN_ID_FLOW_KEY",
    "Coordinator",
    "Declare",
    "Declared",
    "Discharge",
    "TransactionCapability",
    "TransactionalState",
]


#: The key in a receiver's ``flow`` properties whose value names the transaction the
#: credit is given in: transactional acquisition (part 4.4.3).
TXN_ID_FLOW_KEY = Symbol("txn-id")


class TransactionCapability:
    """``txn-capability``: what a transaction coordinator supports."""

    LOCAL_TRANSACTIONS = Symbol("amqp:local-transactions")
    DISTRIBUTED_TRANSACTIONS = Symbol("amqp:distributed-transactions")
    PROMOTABLE_TRANSACTIONS = Symbol("amqp:promotable-transactions")
    MULTI_TXNS_PER_SSN = Symbol("amqp:multi-txns-per-ssn")
    MULTI_SSNS_PER_TXN = Symbol("amqp:multi-ssns-per-txn")


class Coordinator(Composite, descriptor=0x30, name="amqp:coordinator:list"):
    capabilities: tuple[Symbol, ...] | None = field(
        "symbol", multiple=True, requires="txn-capability"
    )


class Declare(Composite, descriptor=0x31, name="amqp:declare:list"):
    global_id: Any = field("*", requires="global-tx-id", default=None)


class Discharge(Composite, descriptor=0x32, name="amqp:discharge:list"):
    txn_id: Any = field("*", mandatory=True, requires="txn-id")
    fail: bool | None = field("boolean", default=None)


class Declared(Composite, descriptor=0x33, name="amqp:declared:list"):
    txn_id: Any = field("*", mandatory=True, requires="txn-id")


class TransactionalState(Composite, descriptor=0x34, name="amqp:transactional-state:list"):
    txn_id: Any = field("*", mandatory=True, requires="txn-id")
    outcome: Any = field("*", requires="outcome", default=None)
