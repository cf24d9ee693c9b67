"""The SASL layer (AMQP part 5.3): pluggable mechanisms and both negotiations.

A mechanism is a small object made fresh for each connection:

- :class:`ClientMechanism` produces the initial response, answers challenges
  and may check the server's final ``additional-data`` (SCRAM does).
- :class:`ServerMechanism` takes the initial response and each later
  response, and answers with a :class:`MechanismChallenge` (send a challenge,
  wait for a response) or a :class:`MechanismOutcome` (done: the code and the
  authenticated identity).

ANONYMOUS, PLAIN, EXTERNAL, SCRAM-SHA-256 and SCRAM-SHA-512 are built in
(SCRAM's message logic is :mod:`petrel.engine.scram`); others fit the same
interface.  :class:`SaslClient` and :class:`SaslServer` drive one exchange:
the connection hands them SASL frames and writes what they return.
"""

from __future__ import annotations

import logging
import os
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
from .scram import ScramClientExchange, ScramError, ScramServerExchange, fake_credential

__all__ = [
    "AnonymousClient",
    "AnonymousServer",
    "ClientMechanism",
    "ExternalClient",
    "ExternalServer",
    "MechanismChallenge",
    "MechanismOutcome",
    "PlainClient",
    "PlainServer",
    "SaslClient",
    "SaslFailure",
    "SaslServer",
    "ScramClient",
    "ScramServer",
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
    ``additional_data`` goes to the client in ``sasl-outcome``.  ``username``
    (the name the client gave, even when refused) and ``reason`` (why it was
    refused) are for the server's log only, never sent: a client must not
    learn whether a user exists.
    """

    __slots__ = ("additional_data", "code", "identity", "reason", "username")

    def __init__(
        self,
        code: SaslCode,
        identity: str | None = None,
        additional_data: bytes | None = None,
        *,
        username: str | None = None,
        reason: str | None = None,
    ) -> None:
        self.code = code
        self.identity = identity
        self.additional_data = additional_data
        self.username = username if username is not None else identity
        self.reason = reason


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
        if len(response) > _MAX_PLAIN:
            return MechanismOutcome(
                SaslCode.AUTH, reason=f"a PLAIN message over {_MAX_PLAIN} bytes"
            )
        try:
            authzid, username, password = response.decode("utf-8").split("\0")
        except ValueError:
            return MechanismOutcome(SaslCode.AUTH, reason="a malformed PLAIN message")
        authenticator = self.config.authenticator
        if authenticator is None or not username:
            return MechanismOutcome(SaslCode.AUTH, reason="no user name")
        try:
            identity = authenticator(username, password, authzid or None)
        except Exception:
            log.exception("the SASL PLAIN authenticator failed")
            return MechanismOutcome(SaslCode.SYS, username=username, reason="internal error")
        if identity is None:
            return MechanismOutcome(
                SaslCode.AUTH, username=username, reason="unknown user or wrong password"
            )
        return MechanismOutcome(SaslCode.OK, identity, username=username)


#: The longest PLAIN message accepted: a user name, an authzid and a password.
_MAX_PLAIN = 4096


class ExternalClient(ClientMechanism):
    """EXTERNAL (RFC 4422 appendix A): the transport (a TLS client certificate) says who we
    are; the message is the identity to act as, or empty for the transport's own."""

    name = "EXTERNAL"

    def initial_response(self, hostname: str | None) -> bytes | None:
        return (self.config.authzid or "").encode("utf-8")

    @property
    def identity(self) -> str | None:
        return self.config.authzid or self.config.username


class ExternalServer(ServerMechanism):
    """EXTERNAL: grants ``config.external_identity``, the identity the transport established
    (offered only when there is one).  A client may name that same identity, or none."""

    name = "EXTERNAL"

    @classmethod
    def usable(cls, config: SaslConfig) -> bool:
        return config.external_identity is not None

    def start(
        self, initial_response: bytes | None, hostname: str | None
    ) -> MechanismChallenge | MechanismOutcome:
        if initial_response is None:
            return MechanismChallenge(b"")
        return self.response(initial_response)

    def response(self, response: bytes) -> MechanismChallenge | MechanismOutcome:
        identity = self.config.external_identity
        try:
            wanted = response.decode("utf-8") if len(response) <= _MAX_PLAIN else None
        except UnicodeDecodeError:
            wanted = None
        if identity is None or wanted is None:
            return MechanismOutcome(SaslCode.AUTH, username=identity, reason="a malformed message")
        if wanted and wanted != identity:
            return MechanismOutcome(
                SaslCode.AUTH,
                username=identity,
                reason=f"the certificate's identity may not act as {wanted[:100]!r}",
            )
        return MechanismOutcome(SaslCode.OK, identity)


class ScramClient(ClientMechanism):
    """SCRAM (RFC 5802/7677) over SASL: ``sasl-init`` carries the client-first message, the
    one challenge the server-first, our response the client-final.  The server-final
    message, which proves the server knows our credentials, comes in the outcome's
    ``additional-data`` (or, from some servers, as a second challenge answered empty); a
    missing or wrong one fails the connection."""

    name: ClassVar[str] = ""

    def __init__(self, config: SaslConfig) -> None:
        super().__init__(config)
        self._exchange = ScramClientExchange(
            self.name, config.username or "", config.password or "", authzid=config.authzid
        )
        self._challenges = 0

    @classmethod
    def usable(cls, config: SaslConfig) -> bool:
        return config.username is not None and config.password is not None

    def initial_response(self, hostname: str | None) -> bytes | None:
        return self._exchange.first()

    def challenge(self, challenge: bytes) -> bytes:
        self._challenges += 1
        try:
            if self._challenges == 1:
                return self._exchange.final(challenge)
            if self._challenges == 2:
                self._exchange.verify(challenge)
                return b""
        except ScramError as exc:
            raise SaslFailure(f"{self.name}: {exc}") from None
        raise SaslFailure(f"{self.name}: the server sent a third challenge")

    def outcome(self, code: SaslCode, additional_data: bytes | None) -> None:
        if code != SaslCode.OK or self._exchange.verified:
            return
        if not additional_data:
            raise SaslFailure(
                f"{self.name}: the server accepted us without proving it knows our "
                "credentials (no server signature in its outcome)"
            )
        try:
            self._exchange.verify(additional_data)
        except ScramError as exc:
            raise SaslFailure(f"{self.name}: {exc}") from None


class ScramSha256Client(ScramClient):
    name = "SCRAM-SHA-256"


class ScramSha512Client(ScramClient):
    name = "SCRAM-SHA-512"


#: The fake-salt key of servers that set no ``scram_secret``: one per process.
_PROCESS_SECRET = os.urandom(32)


class ScramServer(ServerMechanism):
    """SCRAM over SASL, the server's half: credentials from ``config.scram_credentials``.

    An unknown user gets the whole exchange with a fake credential (a salt
    derived from ``config.scram_secret``, keys nothing matches) and fails
    only at the proof, with ``auth``: just as a wrong password does.
    """

    name: ClassVar[str] = ""

    def __init__(self, config: SaslConfig) -> None:
        super().__init__(config)
        self._exchange = ScramServerExchange(self.name)
        self._unknown = False

    @classmethod
    def usable(cls, config: SaslConfig) -> bool:
        return config.scram_credentials is not None

    def _refuse(self, reason: str, code: SaslCode = SaslCode.AUTH) -> MechanismOutcome:
        return MechanismOutcome(code, username=self._exchange.username, reason=reason)

    def start(
        self, initial_response: bytes | None, hostname: str | None
    ) -> MechanismChallenge | MechanismOutcome:
        if initial_response is None:
            return self._refuse("no client-first message in sasl-init")
        try:
            username = self._exchange.first(initial_response)
        except ScramError as exc:
            return self._refuse(str(exc))
        lookup = self.config.scram_credentials
        assert lookup is not None  # usable() checked it
        try:
            credential = lookup(username, self.name)
        except Exception:
            log.exception("the SCRAM credential lookup failed")
            return self._refuse("internal error", SaslCode.SYS)
        if credential is None:
            self._unknown = True
            secret = self.config.scram_secret or _PROCESS_SECRET
            credential = fake_credential(self.name, username, secret, self.config.scram_iterations)
        return MechanismChallenge(self._exchange.challenge(credential))

    def response(self, response: bytes) -> MechanismChallenge | MechanismOutcome:
        exchange = self._exchange
        try:
            server_final = exchange.final(response)
        except ScramError as exc:
            return self._refuse("unknown user" if self._unknown else str(exc))
        username = exchange.username
        if exchange.authzid and exchange.authzid != username:
            return self._refuse(f"{username!r} may not act as {exchange.authzid[:100]!r}")
        return MechanismOutcome(SaslCode.OK, username, additional_data=server_final)


class ScramSha256Server(ScramServer):
    name = "SCRAM-SHA-256"


class ScramSha512Server(ScramServer):
    name = "SCRAM-SHA-512"


_BUILTIN: tuple[type[ClientMechanism] | type[ServerMechanism], ...] = (
    AnonymousClient,
    AnonymousServer,
    PlainClient,
    PlainServer,
    ExternalClient,
    ExternalServer,
    ScramSha256Client,
    ScramSha256Server,
    ScramSha512Client,
    ScramSha512Server,
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
                needs = ""
                if self.config.username is None or self.config.password is None:
                    needs = " (PLAIN and SCRAM need a user name and a password)"
                raise SaslFailure(
                    f"no usable SASL mechanism: the server offers "
                    f"{', '.join(sorted(offered)) or 'none'}; we allow "
                    f"{', '.join(self.config.mechanisms) or 'none'}{needs}"
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
        #: The user name the client gave (even when refused), and why it was refused: for
        #: the server's log, never sent.
        self.username: str | None = None
        self.reason: str | None = None

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
            name = str(frame.mechanism).upper()[:64]
            self.mechanism_name = name
            cls = self._classes.get(name)
            if cls is None or Symbol(name) not in self.offered:
                offered = ", ".join(str(m) for m in self.offered) or "none"
                reason = f"the client chose {name}, which is not offered (offered: {offered})"
                return self._finish(MechanismOutcome(SaslCode.AUTH, reason=reason))
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
        self.username = outcome.username
        self.reason = outcome.reason
        return SaslOutcome(code=outcome.code, additional_data=outcome.additional_data)
