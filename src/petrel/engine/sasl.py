"""The SASL layer (AMQP part 5.3): pluggable mechanisms and both negotiations.

A mechanism is a small object made fresh for each connection:

- :class:`ClientMechanism` produces the initial response, answers challenges
  and may check the server's final ``additional-data`` (SCRAM does).
- :class:`ServerMechanism` takes the initial response and each later
  response, and answers with a :class:`MechanismChallenge` (send a challenge,
  wait for a response) or a :class:`MechanismOutcome` (done: the code and the
  authenticated identity).

ANONYMOUS and PLAIN are built in; EXTERNAL and SCRAM-SHA-256 fit the same
interface.  :class:`SaslClient` and :class:`SaslServer` drive one exchange:
the connection hands them SASL frames and writes what they return.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import ClassVar, TypeVar

from ..spec import (
    Composite,
    SaslChallenge,
    SaslCode,
    SaslInit,
    SaslMechanisms,
    SaslOutcome,
    SaslResponse,
)
from ..types import Symbol
from .config import SaslConfig

__all__ = [
    "AnonymousClient",
    "AnonymousServer",
    "ClientMechanism",
    "MechanismChallenge",
    "MechanismOutcome",
    "PlainClient",
    "PlainServer",
    "SaslClient",
    "SaslFailure",
    "SaslServer",
    "ServerMechanism",
]

log = logging.getLogger("petrel.engine")


class SaslFailure(Exception):
    """The SASL exchange cannot go on (no common mechanism, a bad frame, a bad server proof)."""


class MechanismChallenge:
    """A server mechanism's answer: send this challenge and wait for the client's response."""

    __slots__ = ("challenge",)

    def __init__(self, challenge: bytes) -> None:
        self.challenge = challenge


class MechanismOutcome:
    """A server mechanism's answer: the exchange is over with ``code``.

    ``identity`` is the authenticated identity (for ``SaslCode.OK``);
    ``additional_data`` goes to the client in ``sasl-outcome``.
    """

    __slots__ = ("additional_data", "code", "identity")

    def __init__(
        self,
        code: SaslCode,
        identity: str | None = None,
        additional_data: bytes | None = None,
    ) -> None:
        self.code = code
        self.identity = identity
        self.additional_data = additional_data


class ClientMechanism(ABC):
    """The client half of a SASL mechanism."""

    name: ClassVar[str]

    def __init__(self, config: SaslConfig) -> None:
        self.config = config

    @classmethod
    def usable(cls, config: SaslConfig) -> bool:
        """Whether this mechanism can run with ``config`` (PLAIN needs a username)."""
        return True

    @abstractmethod
    def initial_response(self, hostname: str | None) -> bytes | None:
        """The ``initial-response`` of ``sasl-init`` (``None`` for none)."""

    def challenge(self, challenge: bytes) -> bytes:
        """Answer a server challenge; raise :class:`SaslFailure` if it makes no sense."""
        raise SaslFailure(f"{self.name} expects no challenge")

    def outcome(self, code: SaslCode, additional_data: bytes | None) -> None:  # noqa: B027
        """Check the server's outcome (a SCRAM client verifies the server here)."""

    @property
    def identity(self) -> str | None:
        """Whom we authenticate as."""
        return self.config.username


class ServerMechanism(ABC):
    """The server half of a SASL mechanism."""

    name: ClassVar[str]

    def __init__(self, config: SaslConfig) -> None:
        self.config = config

    @classmethod
    def usable(cls, config: SaslConfig) -> bool:
        """Whether this mechanism can be offered with ``config`` (PLAIN needs an authenticator)."""
        return True

    @abstractmethod
    def start(
        self, initial_response: bytes | None, hostname: str | None
    ) -> MechanismChallenge | MechanismOutcome:
        """Handle ``sasl-init``."""

    def response(self, response: bytes) -> MechanismChallenge | MechanismOutcome:
        """Handle a ``sasl-response`` to our last challenge."""
        return MechanismOutcome(SaslCode.AUTH)


class AnonymousClient(ClientMechanism):
    """ANONYMOUS (RFC 4505): no credentials, an optional trace string."""

    name = "ANONYMOUS"

    def initial_response(self, hostname: str | None) -> bytes | None:
        return (self.config.username or "").encode("utf-8")

    @property
    def identity(self) -> str | None:
        return "anonymous"


class AnonymousServer(ServerMechanism):
    """ANONYMOUS: every client gets ``config.anonymous_identity``."""

    name = "ANONYMOUS"

    def start(
        self, initial_response: bytes | None, hostname: str | None
    ) -> MechanismChallenge | MechanismOutcome:
        return MechanismOutcome(SaslCode.OK, self.config.anonymous_identity)


class PlainClient(ClientMechanism):
    """PLAIN (RFC 4616): ``authzid NUL authcid NUL password`` in one message."""

    name = "PLAIN"

    @classmethod
    def usable(cls, config: SaslConfig) -> bool:
        return config.username is not None

    def initial_response(self, hostname: str | None) -> bytes | None:
        config = self.config
        parts = (config.authzid or "", config.username or "", config.password or "")
        return "\0".join(parts).encode("utf-8")


class PlainServer(ServerMechanism):
    """PLAIN: the credentials go to ``config.authenticator``."""

    name = "PLAIN"

    @classmethod
    def usable(cls, config: SaslConfig) -> bool:
        return config.authenticator is not None

    def start(
        self, initial_response: bytes | None, hostname: str | None
    ) -> MechanismChallenge | MechanismOutcome:
        if initial_response is None:
            # RFC 4616: an empty challenge asks the client for its message.
            return MechanismChallenge(b"")
        return self.response(initial_response)

    def response(self, response: bytes) -> MechanismChallenge | MechanismOutcome:
        try:
            authzid, username, password = response.decode("utf-8").split("\0")
        except ValueError:
            return MechanismOutcome(SaslCode.AUTH)
        authenticator = self.config.authenticator
        if authenticator is None or not username:
            return MechanismOutcome(SaslCode.AUTH)
        try:
            identity = authenticator(username, password, authzid or None)
        except Exception:
            log.exception("the SASL PLAIN authenticator failed")
            return MechanismOutcome(SaslCode.SYS)
        if identity is None:
            return MechanismOutcome(SaslCode.AUTH)
        return MechanismOutcome(SaslCode.OK, identity)


_BUILTIN: tuple[type[ClientMechanism] | type[ServerMechanism], ...] = (
    AnonymousClient,
    AnonymousServer,
    PlainClient,
    PlainServer,
)


M = TypeVar("M", ClientMechanism, ServerMechanism)


def _classes(config: SaslConfig, base: type[M]) -> dict[str, type[M]]:
    found: dict[str, type[M]] = {}
    for cls in (*_BUILTIN, *config.extra_mechanisms):
        if issubclass(cls, base):
            found[cls.name.upper()] = cls
    return found


class SaslClient:
    """The client side of one SASL exchange."""

    def __init__(self, config: SaslConfig, hostname: str | None) -> None:
        self.config = config
        self.hostname = config.hostname or hostname
        self.mechanism: ClientMechanism | None = None
        self.code: SaslCode | None = None
        self.additional_data: bytes | None = None

    @property
    def done(self) -> bool:
        """Whether the server sent its outcome."""
        return self.code is not None

    def on_frame(self, frame: Composite) -> Composite | None:
        """Handle one SASL frame from the server; return the frame to answer with, if any."""
        if isinstance(frame, SaslMechanisms) and self.mechanism is None:
            offered = {str(m).upper() for m in frame.sasl_server_mechanisms}
            classes = _classes(self.config, ClientMechanism)  # type: ignore[type-abstract]
            for name in self.config.mechanisms:
                cls = classes.get(name.upper())
                if cls is not None and name.upper() in offered and cls.usable(self.config):
                    self.mechanism = cls(self.config)
                    break
            else:
                raise SaslFailure(
                    f"no usable SASL mechanism: the server offers {sorted(offered)}, "
                    f"we allow {list(self.config.mechanisms)}"
                )
            return SaslInit(
                mechanism=Symbol(self.mechanism.name),
                initial_response=self.mechanism.initial_response(self.hostname),
                hostname=self.hostname,
            )
        if isinstance(frame, SaslChallenge) and self.mechanism is not None and not self.done:
            return SaslResponse(response=self.mechanism.challenge(frame.challenge))
        if isinstance(frame, SaslOutcome) and self.mechanism is not None and not self.done:
            self.code = SaslCode(frame.code) if frame.code in _CODES else SaslCode.SYS_PERM
            self.additional_data = frame.additional_data
            self.mechanism.outcome(self.code, frame.additional_data)
            return None
        raise SaslFailure(f"unexpected {type(frame).__name__} from the SASL server")


_CODES = frozenset(int(c) for c in SaslCode)


class SaslServer:
    """The server side of one SASL exchange."""

    def __init__(self, config: SaslConfig) -> None:
        self.config = config
        self._classes = {
            name: cls
            for name, cls in _classes(config, ServerMechanism).items()  # type: ignore[type-abstract]
            if cls.usable(config)
        }
        self.offered = tuple(
            Symbol(name.upper()) for name in config.mechanisms if name.upper() in self._classes
        )
        self.mechanism: ServerMechanism | None = None
        self.mechanism_name: str | None = None
        self.code: SaslCode | None = None
        self.identity: str | None = None
        self.additional_data: bytes | None = None

    @property
    def done(self) -> bool:
        """Whether we sent the outcome."""
        return self.code is not None

    def mechanisms_frame(self) -> SaslMechanisms:
        """The ``sasl-mechanisms`` frame that opens the exchange."""
        return SaslMechanisms(sasl_server_mechanisms=self.offered)

    def on_frame(self, frame: Composite) -> Composite:
        """Handle one SASL frame from the client; return the challenge or outcome to send."""
        if isinstance(frame, SaslInit) and self.mechanism_name is None:
            name = str(frame.mechanism).upper()
            self.mechanism_name = name
            cls = self._classes.get(name)
            if cls is None or Symbol(name) not in self.offered:
                return self._finish(MechanismOutcome(SaslCode.AUTH))
            self.mechanism = cls(self.config)
            return self._answer(self.mechanism.start(frame.initial_response, frame.hostname))
        if isinstance(frame, SaslResponse) and self.mechanism is not None and not self.done:
            return self._answer(self.mechanism.response(frame.response))
        raise SaslFailure(f"unexpected {type(frame).__name__} from the SASL client")

    def refuse(self, code: SaslCode = SaslCode.SYS_PERM) -> SaslOutcome:
        """The outcome that ends an exchange the client broke (or we could not finish)."""
        return self._finish(MechanismOutcome(code))

    def _answer(self, step: MechanismChallenge | MechanismOutcome) -> Composite:
        if isinstance(step, MechanismChallenge):
            return SaslChallenge(challenge=step.challenge)
        return self._finish(step)

    def _finish(self, outcome: MechanismOutcome) -> SaslOutcome:
        self.code = outcome.code
        self.identity = outcome.identity if outcome.code == SaslCode.OK else None
        self.additional_data = outcome.additional_data
        return SaslOutcome(code=outcome.code, additional_data=outcome.additional_data)
