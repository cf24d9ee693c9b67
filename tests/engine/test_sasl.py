"""The SASL layer: ANONYMOUS, PLAIN, outcomes, refusals and a pluggable mechanism."""

from __future__ import annotations

import pytest

from petrel.engine import (
    ClientMechanism,
    Connection,
    ConnectionConfig,
    MechanismChallenge,
    MechanismOutcome,
    SaslConfig,
    SaslFailure,
    ServerMechanism,
)
from petrel.engine.events import ConnectionClosed, ConnectionOpened, SaslCompleted
from petrel.errors import Condition
from petrel.spec import SaslCode, SaslInit, SaslMechanisms, SaslOutcome, SaslResponse
from petrel.spec.framing import AMQP_HEADER, FRAME_TYPE_SASL, SASL_HEADER
from petrel.types import Symbol
from tests.helpers.engine_pair import EnginePair
from tests.helpers.frames import RawPeer, frame


def check_password(username: str, password: str, authzid: str | None) -> str | None:
    if (username, password) == ("alice", "wonderland"):
        return authzid or username
    return None


def sasl_pair(
    client: SaslConfig | None, server: SaslConfig | None, **server_kw: bool
) -> EnginePair:
    return EnginePair(
        ConnectionConfig(container_id="c", hostname="broker.example", sasl=client),
        ConnectionConfig(container_id="s", sasl=server, **server_kw),  # type: ignore[arg-type]
    )


def test_anonymous() -> None:
    pair = sasl_pair(SaslConfig(), SaslConfig())
    pair.open()
    done = pair.take_one("server", SaslCompleted)
    assert done == SaslCompleted("ANONYMOUS", SaslCode.OK, "anonymous")
    assert pair.take_one("client", SaslCompleted).code == SaslCode.OK
    assert pair.take_one("server", ConnectionOpened)
    assert pair.take_one("client", ConnectionOpened)
    assert pair.server.sasl_identity == "anonymous"
    assert pair.server.sasl_mechanism == "ANONYMOUS"
    assert pair.client.sasl_outcome == SaslCode.OK


def test_plain_good_password() -> None:
    pair = sasl_pair(
        SaslConfig(username="alice", password="wonderland"),
        SaslConfig(authenticator=check_password),
        allow_no_sasl=False,
    )
    pair.open()
    assert pair.take_one("server", SaslCompleted) == SaslCompleted("PLAIN", SaslCode.OK, "alice")
    assert pair.take_one("client", SaslCompleted).identity == "alice"
    assert pair.take_one("client", ConnectionOpened)
    assert pair.server.sasl_identity == "alice"


def test_plain_authzid() -> None:
    pair = sasl_pair(
        SaslConfig(username="alice", password="wonderland", authzid="queen"),
        SaslConfig(authenticator=check_password),
    )
    pair.open()
    assert pair.server.sasl_identity == "queen"


@pytest.mark.parametrize("password", ["wrong", ""])
def test_plain_bad_password(password: str) -> None:
    pair = sasl_pair(
        SaslConfig(username="alice", password=password),
        SaslConfig(authenticator=check_password),
    )
    pair.open()
    for side in ("client", "server"):
        assert pair.take_one(side, SaslCompleted).code == SaslCode.AUTH  # type: ignore[arg-type]
        closed = pair.take_one(side, ConnectionClosed)  # type: ignore[arg-type]
        assert closed.error is not None
        assert closed.error.condition == Condition.UNAUTHORIZED_ACCESS
        assert not pair.take(side, ConnectionOpened)  # type: ignore[arg-type]
    assert pair.client.finished and pair.server.finished
    assert pair.server.sasl_identity is None


def test_authenticator_failure_is_a_system_error() -> None:
    def broken(username: str, password: str, authzid: str | None) -> str | None:
        raise RuntimeError("database down")

    pair = sasl_pair(SaslConfig(username="a", password="b"), SaslConfig(authenticator=broken))
    pair.open()
    assert pair.take_one("client", SaslCompleted).code == SaslCode.SYS


def test_client_prefers_its_first_mechanism() -> None:
    pair = sasl_pair(
        SaslConfig(mechanisms=("ANONYMOUS", "PLAIN"), username="alice", password="wonderland"),
        SaslConfig(authenticator=check_password),
    )
    pair.open()
    assert pair.server.sasl_mechanism == "ANONYMOUS"


def test_plain_needs_a_username_so_anonymous_is_used() -> None:
    pair = sasl_pair(SaslConfig(), SaslConfig(authenticator=check_password))
    pair.open()
    assert pair.server.sasl_mechanism == "ANONYMOUS"


def test_no_mechanism_in_common() -> None:
    pair = sasl_pair(SaslConfig(mechanisms=("PLAIN",)), SaslConfig(mechanisms=("ANONYMOUS",)))
    pair.open()
    closed = pair.take_one("client", ConnectionClosed)
    assert closed.error is not None and "no usable SASL mechanism" in str(closed.error.description)
    assert pair.client.finished


def test_server_without_plain_authenticator_does_not_offer_plain() -> None:
    engine = Connection(ConnectionConfig(sasl=SaslConfig()), server=True)
    peer = RawPeer(engine)
    peer.send(SASL_HEADER)
    assert peer.headers == [SASL_HEADER]
    assert peer.last(SaslMechanisms).sasl_server_mechanisms == (Symbol("ANONYMOUS"),)


def test_server_refuses_an_unoffered_mechanism() -> None:
    engine = Connection(ConnectionConfig(sasl=SaslConfig(mechanisms=("ANONYMOUS",))), server=True)
    peer = RawPeer(engine)
    peer.send(SASL_HEADER, frame(SaslInit(mechanism=Symbol("PLAIN")), frame_type=FRAME_TYPE_SASL))
    assert peer.last(SaslOutcome).code == SaslCode.AUTH
    assert engine.finished


def test_sasl_required_refuses_a_bare_amqp_client() -> None:
    pair = sasl_pair(None, SaslConfig(), allow_no_sasl=False)
    pair.open()
    server_closed = pair.take_one("server", ConnectionClosed)
    assert server_closed.error is not None
    assert server_closed.error.condition == Condition.NOT_IMPLEMENTED
    client_closed = pair.take_one("client", ConnectionClosed)
    assert client_closed.error is not None
    assert "protocol id 3" in str(client_closed.error.description)
    assert pair.client.finished and pair.server.finished


def test_bare_amqp_client_allowed_by_a_sasl_server() -> None:
    pair = sasl_pair(None, SaslConfig())
    pair.open()
    assert pair.take_one("server", ConnectionOpened)
    assert pair.server.sasl_identity is None


def test_sasl_client_against_a_server_without_sasl() -> None:
    pair = sasl_pair(SaslConfig(), None)
    pair.open()
    assert pair.take_one("client", ConnectionClosed).error is not None
    assert pair.take_one("server", ConnectionClosed).error is not None


def test_sasl_init_carries_hostname_and_plain_response() -> None:
    engine = Connection(
        ConnectionConfig(
            hostname="broker.example", sasl=SaslConfig(username="alice", password="pw")
        )
    )
    engine.open()
    peer = RawPeer(engine)
    peer.collect()
    assert peer.headers == [SASL_HEADER]
    mechanisms = SaslMechanisms(sasl_server_mechanisms=(Symbol("PLAIN"), Symbol("ANONYMOUS")))
    peer.send(SASL_HEADER, frame(mechanisms, frame_type=FRAME_TYPE_SASL))
    init = peer.last(SaslInit)
    assert init.mechanism == "PLAIN"
    assert init.hostname == "broker.example"
    assert init.initial_response == b"\0alice\0pw"
    # The outcome and the server's AMQP header may arrive in one read.
    peer.send(frame(SaslOutcome(code=SaslCode.OK), frame_type=FRAME_TYPE_SASL))
    assert peer.headers == [SASL_HEADER, AMQP_HEADER]
    assert engine.sasl_outcome == SaslCode.OK


class EchoServer(ServerMechanism):
    """A toy challenge-response mechanism: the client must send the challenge back reversed."""

    name = "X-ECHO"

    def start(
        self, initial_response: bytes | None, hostname: str | None
    ) -> MechanismChallenge | MechanismOutcome:
        return MechanismChallenge(b"nonce-123")

    def response(self, response: bytes) -> MechanismChallenge | MechanismOutcome:
        if response == b"321-ecnon":
            return MechanismOutcome(SaslCode.OK, "echo-user", b"server-proof")
        return MechanismOutcome(SaslCode.AUTH)


class EchoClient(ClientMechanism):
    name = "X-ECHO"
    seen_proof: bytes | None = None

    def initial_response(self, hostname: str | None) -> bytes | None:
        return None

    def challenge(self, challenge: bytes) -> bytes:
        return challenge[::-1]

    def outcome(self, code: SaslCode, additional_data: bytes | None) -> None:
        if additional_data != b"server-proof":
            raise SaslFailure("the server could not prove itself")
        EchoClient.seen_proof = additional_data


def test_pluggable_challenge_response_mechanism() -> None:
    pair = sasl_pair(
        SaslConfig(mechanisms=("X-ECHO",), extra_mechanisms=(EchoClient,)),
        SaslConfig(mechanisms=("X-ECHO", "ANONYMOUS"), extra_mechanisms=(EchoServer,)),
    )
    pair.open()
    assert pair.take_one("server", SaslCompleted) == SaslCompleted(
        "X-ECHO", SaslCode.OK, "echo-user"
    )
    done = pair.take_one("client", SaslCompleted)
    assert done.additional_data == b"server-proof"
    assert EchoClient.seen_proof == b"server-proof"
    assert pair.take_one("client", ConnectionOpened)


def test_client_rejects_an_unexpected_challenge() -> None:
    engine = Connection(ConnectionConfig(sasl=SaslConfig()))
    engine.open()
    peer = RawPeer(engine)
    mechanisms = SaslMechanisms(sasl_server_mechanisms=(Symbol("ANONYMOUS"),))
    from petrel.spec import SaslChallenge

    peer.send(
        SASL_HEADER,
        frame(mechanisms, frame_type=FRAME_TYPE_SASL),
        frame(SaslChallenge(challenge=b"?"), frame_type=FRAME_TYPE_SASL),
    )
    closed = peer.event(ConnectionClosed)
    assert closed.error is not None and "expects no challenge" in str(closed.error.description)


def test_server_answers_a_response_out_of_turn() -> None:
    engine = Connection(ConnectionConfig(sasl=SaslConfig()), server=True)
    peer = RawPeer(engine)
    peer.send(SASL_HEADER, frame(SaslResponse(response=b"x"), frame_type=FRAME_TYPE_SASL))
    assert peer.last(SaslOutcome).code == SaslCode.SYS_PERM
    assert engine.finished


def test_amqp_frame_during_sasl_is_refused() -> None:
    engine = Connection(ConnectionConfig(sasl=SaslConfig()), server=True)
    peer = RawPeer(engine)
    peer.send(SASL_HEADER, frame(SaslInit(mechanism=Symbol("ANONYMOUS"))))
    closed = peer.event(ConnectionClosed)
    assert closed.error is not None and closed.error.condition == Condition.FRAMING_ERROR
    assert engine.finished
