"""AMQP 1.0 part 5.3, SASL: the five SASL frames and the outcome codes."""

from __future__ import annotations

from enum import IntEnum

from ..types import Symbol
from ._base import Composite, field

__all__ = [
    "SASL_FRAMES",
    "SaslChallenge",
    "SaslCode",
    "SaslInit",
    "SaslMechanisms",
    "SaslOutcome",
    "SaslResponse",
]


class SaslCode(IntEnum):
    """``sasl-code``: the outcome of a SASL exchange."""

    OK = 0
    AUTH = 1
    SYS = 2
    SYS_PERM = 3
    SYS_TEMP = 4


class SaslMechanisms(Composite, descriptor=0x40, name="amqp:sasl-mechanisms:list"):
    """The ``sasl-mechanisms`` frame (part 5.3.3.1): the mechanisms a server offers."""

    sasl_server_mechanisms: tuple[Symbol, ...] = field("symbol", mandatory=True, multiple=True)


class SaslInit(Composite, descriptor=0x41, name="amqp:sasl-init:list"):
    """The ``sasl-init`` frame (part 5.3.3.2): the client's mechanism and first response."""

    mechanism: Symbol = field("symbol", mandatory=True)
    initial_response: bytes | None = field("binary", default=None)
    hostname: str | None = field("string", default=None)


class SaslChallenge(Composite, descriptor=0x42, name="amqp:sasl-challenge:list"):
    """The ``sasl-challenge`` frame (part 5.3.3.3): the server's challenge."""

    challenge: bytes = field("binary", mandatory=True)


class SaslResponse(Composite, descriptor=0x43, name="amqp:sasl-response:list"):
    """The ``sasl-response`` frame (part 5.3.3.4): the client's answer to a challenge."""

    response: bytes = field("binary", mandatory=True)


class SaslOutcome(Composite, descriptor=0x44, name="amqp:sasl-outcome:list"):
    """The ``sasl-outcome`` frame (part 5.3.3.5): how the exchange ended."""

    code: int = field("sasl-code", mandatory=True)
    additional_data: bytes | None = field("binary", default=None)


#: The SASL frame bodies, by descriptor code.
SASL_FRAMES: dict[int, type[Composite]] = {
    cls.DESCRIPTOR: cls
    for cls in (SaslMechanisms, SaslInit, SaslChallenge, SaslResponse, SaslOutcome)
}
