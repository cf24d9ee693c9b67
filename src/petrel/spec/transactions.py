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
    """The ``coordinator`` target (part 4.5.1): the node that runs transactions."""

    capabilities: tuple[Symbol, ...] | None = field(
        "symbol", multiple=True, requires="txn-capability"
    )


class Declare(Composite, descriptor=0x31, name="amqp:declare:list"):
    """The ``declare`` message body (part 4.5.2): asks the coordinator for a new transaction."""

    global_id: Any = field("*", requires="global-tx-id", default=None)


class Discharge(Composite, descriptor=0x32, name="amqp:discharge:list"):
    """The ``discharge`` body (part 4.5.3): commit, or (``fail``) roll back, a transaction."""

    txn_id: Any = field("*", mandatory=True, requires="txn-id")
    fail: bool | None = field("boolean", default=None)


class Declared(Composite, descriptor=0x33, name="amqp:declared:list"):
    """The ``declared`` outcome (part 4.5.4): the coordinator's answer, with the transaction id."""

    txn_id: Any = field("*", mandatory=True, requires="txn-id")


class TransactionalState(Composite, descriptor=0x34, name="amqp:transactional-state:list"):
    """The ``transactional-state`` (part 4.5.5): a transfer or outcome in a transaction."""

    txn_id: Any = field("*", mandatory=True, requires="txn-id")
    outcome: Any = field("*", requires="outcome", default=None)
