"""SCRAM-SHA-256/512 and EXTERNAL: RFC 7677's test vector, engine pairs, malformed input."""

from __future__ import annotations

import base64

import pytest

from petrel.engine import (
    Connection,
    ConnectionConfig,
    MechanismChallenge,
    MechanismOutcome,
    SaslConfig,
    ScramCredential,
    derive_credential,
)
from petrel.engine.events import ConnectionClosed, ConnectionOpened, SaslCompleted
from petrel.engine.sasl import ScramSha256Server
from petrel.engine.scram import (
    MAX_ITERATIONS,
    MAX_MESSAGE,
    ScramClientExchange,
    ScramError,
    ScramServerExchange,
    fake_credential,
    saslprep,
)
from petrel.errors import Condition
from petrel.spec import SaslChallenge, SaslCode, SaslInit, SaslOutcome
from petrel.spec.framing import FRAME_TYPE_SASL, SASL_HEADER
from petrel.types import Symbol
from tests.helpers.engine_pair import EnginePair
from tests.helpers.frames import RawPeer, frame

# RFC 7677 section 3: user "user", password "pencil".
RFC_CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
RFC_CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
RFC_CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
RFC_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")


def test_rfc7677_vector_client() -> None:
    client = ScramClientExchange("SCRAM-SHA-256", "user", "pencil", nonce=RFC_CLIENT_NONCE)
    assert client.first() == RFC_CLIENT_FIRST
    assert client.final(RFC_SERVER_FIRST) == RFC_CLIENT_FINAL
    client.verify(RFC_SERVER_FINAL)
    assert client.verified


def test_rfc7677_vector_server() -> None:
    credential = derive_credential("SCRAM-SHA-256", "pencil", salt=RFC_SALT, iterations=4096)
    server = ScramServerExchange("SCRAM-SHA-256", nonce=RFC_SERVER_NONCE)
    assert server.first(RFC_CLIENT_FIRST) == "user"
    assert server.challenge(credential) == RFC_SERVER_FIRST
    assert server.final(RFC_CLIENT_FINAL) == RFC_SERVER_FINAL


def test_rfc7677_vector_wrong_password_fails() -> None:
    credential = derive_credential("SCRAM-SHA-256", "pencil!", salt=RFC_SALT, iterations=4096)
    server = ScramServerExchange("SCRAM-SHA-256", nonce=RFC_SERVER_NONCE)
    server.first(RFC_CLIENT_FIRST)
    server.challenge(credential)
    with pytest.raises(ScramError, match="wrong password"):
        server.final(RFC_CLIENT_FINAL)


def test_client_refuses_a_forged_server_signature() -> None:
    client = ScramClientExchange("SCRAM-SHA-256", "user", "pencil", nonce=RFC_CLIENT_NONCE)
    client.final(RFC_SERVER_FIRST)
    forged = b"v=" + base64.b64encode(bytes(32))
    with pytest.raises(ScramError, match="signature is wrong"):
        client.verify(forged)
    with pytest.raises(ScramError, match="refused: invalid-proof"):
        client.verify(b"e=invalid-proof")


def test_saslprep() -> None:
    assert saslprep("I\u00adX") == "IX"  # soft hyphen mapped to nothing
    assert saslprep("user") == "user"
    assert saslprep("\u00aa") == "a"  # NFKC
    assert saslprep("\u2168") == "IX"
    with pytest.raises(ScramError):
        saslprep("\u0007")
    with pytest.raises(ScramError):
        saslprep("\u0627\u0031")  # right-to-left text must end right-to-left


# --- engine pairs ---------------------------------------------------------------------------

USERS = {
    (name, mechanism): derive_credential(mechanism, password, iterations=4096)
    for name, password in (("alice", "wonderland"), ("bob", "builder"))
    for mechanism in MECHANISMS
}
SECRET = b"k" * 32


def lookup(username: str, mechanism: str) -> ScramCredential | None:
    return USERS.get((username, mechanism))


def server_config(**kw: object) -> SaslConfig:
    return SaslConfig(
        mechanisms=("SCRAM-SHA-512", "SCRAM-SHA-256", "ANONYMOUS"),
        scram_credentials=lookup,
        scram_secret=SECRET,
        scram_iterations=4096,
        **kw,  # type: ignore[arg-type]
    )


def scram_pair(client: SaslConfig, server: SaslConfig) -> EnginePair:
    return EnginePair(
        ConnectionConfig(container_id="c", sasl=client),
        ConnectionConfig(container_id="s", sasl=server, allow_no_sasl=False),
    )


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_scram_exchange(mechanism: str) -> None:
    client = SaslConfig(mechanisms=(mechanism,), username="alice", password="wonderland")
    pair = scram_pair(client, server_config())
    pair.open()
    assert pair.take_one("server", SaslCompleted) == SaslCompleted(mechanism, SaslCode.OK, "alice")
    done = pair.take_one("client", SaslCompleted)
    assert done.code == SaslCode.OK and done.additional_data is not None
    assert done.additional_data.startswith(b"v=")
    assert pair.take_one("client", ConnectionOpened)
    assert pair.server.sasl_identity == "alice"


def test_client_prefers_sha512() -> None:
    client = SaslConfig(
        mechanisms=("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"),
        username="alice",
        password="wonderland",
    )
    pair = scram_pair(client, server_config())
    pair.open()
    assert pair.server.sasl_mechanism == "SCRAM-SHA-512"


def _failed_exchange(username: str, password: str) -> tuple[EnginePair, list[bytes]]:
    """Run a SCRAM-SHA-256 exchange and return the pair and the server's challenges."""
    client = SaslConfig(mechanisms=("SCRAM-SHA-256",), username=username, password=password)
    pair = scram_pair(client, server_config())
    sent: list[bytes] = []
    original = pair.server._handshake._write_sasl

    def spy(body: object) -> None:
        if isinstance(body, SaslChallenge):
            sent.append(body.challenge)
        original(body)  # type: ignore[arg-type]

    pair.server._handshake._write_sasl = spy  # type: ignore[method-assign]
    pair.open()
    return pair, sent


@pytest.mark.parametrize(("username", "why"), [("alice", "wrong password"), ("eve", "unknown")])
def test_wrong_password_and_unknown_user_fail_alike(username: str, why: str) -> None:
    pair, challenges = _failed_exchange(username, "guess")
    server_done = pair.take_one("server", SaslCompleted)
    assert server_done.code == SaslCode.AUTH
    assert server_done.username == username
    assert server_done.reason is not None and why in server_done.reason
    client_done = pair.take_one("client", SaslCompleted)
    assert client_done.code == SaslCode.AUTH and client_done.additional_data is None
    closed = pair.take_one("client", ConnectionClosed)
    assert closed.error is not None and closed.error.condition == Condition.UNAUTHORIZED_ACCESS
    # On the wire both got one server-first message of the same shape: r=..., s=..., i=4096.
    assert len(challenges) == 1
    fields = [part[:2] for part in challenges[0].split(b",")]
    assert fields == [b"r=", b"s=", b"i="] and challenges[0].endswith(b",i=4096")


def test_unknown_user_gets_the_same_salt_every_time() -> None:
    salts = []
    for _ in range(2):
        _, challenges = _failed_exchange("eve", "guess")
        salts.append(challenges[0].split(b",")[1])
    assert salts[0] == salts[1]
    other = fake_credential("SCRAM-SHA-256", "mallory", SECRET, 4096)
    assert base64.b64encode(other.salt) != salts[0][2:]


class ForgingServer(ScramSha256Server):
    """A server that accepts any proof and signs with a key it made up."""

    def response(self, response: bytes) -> MechanismChallenge | MechanismOutcome:
        return MechanismOutcome(
            SaslCode.OK, "x", additional_data=b"v=" + base64.b64encode(b"0" * 32)
        )


class SilentServer(ScramSha256Server):
    """A server that accepts any proof and proves nothing."""

    def response(self, response: bytes) -> MechanismChallenge | MechanismOutcome:
        return MechanismOutcome(SaslCode.OK, "x")


@pytest.mark.parametrize(
    ("server", "message"),
    [(ForgingServer, "signature is wrong"), (SilentServer, "without proving")],
)
def test_client_fails_a_server_that_cannot_prove_itself(server: type, message: str) -> None:
    client = SaslConfig(mechanisms=("SCRAM-SHA-256",), username="alice", password="wonderland")
    pair = scram_pair(client, server_config(extra_mechanisms=(server,)))
    pair.open()
    closed = pair.take_one("client", ConnectionClosed)
    assert closed.error is not None
    assert closed.error.condition == Condition.UNAUTHORIZED_ACCESS
    assert message in str(closed.error.description)
    assert not pair.take("client", ConnectionOpened)


def test_server_final_as_a_second_challenge_is_verified() -> None:
    """Some servers send the server-final message as a challenge; the client answers empty."""

    class ChallengingServer(ScramSha256Server):
        final: bytes | None = None

        def response(self, response: bytes) -> MechanismChallenge | MechanismOutcome:
            if self.final is None:
                outcome = super().response(response)
                assert isinstance(outcome, MechanismOutcome) and outcome.additional_data
                self.final = outcome.additional_data
                return MechanismChallenge(self.final)
            assert response == b""
            return MechanismOutcome(SaslCode.OK, "alice")

    client = SaslConfig(mechanisms=("SCRAM-SHA-256",), username="alice", password="wonderland")
    pair = scram_pair(client, server_config(extra_mechanisms=(ChallengingServer,)))
    pair.open()
    assert pair.take_one("client", ConnectionOpened)


def test_channel_binding_is_refused() -> None:
    engine = Connection(ConnectionConfig(sasl=server_config()), server=True)
    peer = RawPeer(engine)
    init = SaslInit(
        mechanism=Symbol("SCRAM-SHA-256"), initial_response=b"p=tls-unique,,n=alice,r=abcdef"
    )
    peer.send(SASL_HEADER, frame(init, frame_type=FRAME_TYPE_SASL))
    assert peer.last(SaslOutcome).code == SaslCode.AUTH
    done = peer.event(SaslCompleted)
    assert done.reason is not None and "channel binding" in done.reason
    assert engine.finished


def test_gs2_flag_y_is_accepted() -> None:
    client = ScramClientExchange("SCRAM-SHA-256", "user", "pencil", nonce=RFC_CLIENT_NONCE)
    client.gs2_header = "y,,"
    credential = derive_credential("SCRAM-SHA-256", "pencil", salt=RFC_SALT, iterations=4096)
    server = ScramServerExchange("SCRAM-SHA-256", nonce=RFC_SERVER_NONCE)
    assert server.first(client.first()) == "user"
    final = client.final(server.challenge(credential))
    assert final.startswith(b"c=eSws,")  # base64("y,,")
    client.verify(server.final(final))


def test_authzid_other_than_the_user_is_refused() -> None:
    client = SaslConfig(
        mechanisms=("SCRAM-SHA-256",), username="alice", password="wonderland", authzid="bob"
    )
    pair = scram_pair(client, server_config())
    pair.open()
    done = pair.take_one("server", SaslCompleted)
    assert done.code == SaslCode.AUTH and done.reason is not None and "act as" in done.reason


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (b"", "does not start with"),
        (b"x,,n=u,r=abc", "does not start with"),
        (b"n", "no gs2 header"),
        (b"n,n=u,r=abc", "malformed authzid"),
        (b"n,b=x,n=u,r=abc", "malformed authzid"),
        (b"n,,r=abc", "lacks its n="),
        (b"n,,n=u", "lacks its r="),
        (b"n,,m=ext,n=u,r=abc", "extension"),
        (b"n,,n=a=2Xb,r=abc", "bad escape"),
        (b"n,,n=,r=abc", "empty name"),
        (b"n,,n=u,r=ab c", "printable ASCII"),
        (b"n,,n=u,r=" + b"a" * 300, "longer than"),
        (b"n,,n=\xff,r=abc", "not UTF-8"),
        (b"n,,n=" + b"u" * MAX_MESSAGE + b",r=abc", "at most"),
        (b"n,,n=u,rabc", "malformed attribute"),
    ],
)
def test_server_rejects_malformed_client_first(message: bytes, problem: str) -> None:
    with pytest.raises(ScramError, match=problem):
        ScramServerExchange("SCRAM-SHA-256").first(message)


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (b"c=biws,r=WRONG,p=" + base64.b64encode(bytes(32)), "nonce is not the one agreed"),
        (b"c=eSws,r={nonce},p=" + base64.b64encode(bytes(32)), "channel binding differs"),
        (b"c=biws,r={nonce}", "no proof"),
        (b"c=biws,r={nonce},p=AAAA", "not 32"),
        (b"c=biws,r={nonce},p=!!!", "not valid base64"),
    ],
)
def test_server_rejects_malformed_client_final(message: bytes, problem: str) -> None:
    server = ScramServerExchange("SCRAM-SHA-256", nonce=RFC_SERVER_NONCE)
    server.first(RFC_CLIENT_FIRST)
    server.challenge(derive_credential("SCRAM-SHA-256", "pencil", salt=RFC_SALT, iterations=4096))
    nonce = (RFC_CLIENT_NONCE + RFC_SERVER_NONCE).encode()
    with pytest.raises(ScramError, match=problem):
        server.final(message.replace(b"{nonce}", nonce))


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (b"r=someoneelse,s=QUJD,i=4096", "does not extend ours"),
        (b"r=" + RFC_CLIENT_NONCE.encode() + b",s=QUJD,i=4096", "does not extend ours"),
        (b"r=" + RFC_CLIENT_NONCE.encode() + b"x,s=QUJD,i=1000", "we accept 4096"),
        (
            b"r=" + RFC_CLIENT_NONCE.encode() + b"x,s=QUJD,i=" + str(MAX_ITERATIONS + 1).encode(),
            "we accept",
        ),
        (b"r=" + RFC_CLIENT_NONCE.encode() + b"x,s=QUJD,i=9999999999", "not a number"),
        (b"r=" + RFC_CLIENT_NONCE.encode() + b"x,s=!!,i=4096", "not valid base64"),
        (b"r=" + RFC_CLIENT_NONCE.encode() + b"x,s=,i=4096", "salt must be"),
        (b"r=" + RFC_CLIENT_NONCE.encode() + b"x,i=4096", "lacks its s="),
        (b"m=x,r=a,s=QUJD,i=4096", "extension"),
        (b"e=other-error", "malformed attribute|lacks its r="),
    ],
)
def test_client_rejects_malformed_server_first(message: bytes, problem: str) -> None:
    client = ScramClientExchange("SCRAM-SHA-256", "user", "pencil", nonce=RFC_CLIENT_NONCE)
    with pytest.raises(ScramError, match=problem):
        client.final(message)


def test_malformed_server_first_fails_the_connection_clearly() -> None:
    engine = Connection(
        ConnectionConfig(sasl=SaslConfig(mechanisms=("SCRAM-SHA-256",), username="u", password="p"))
    )
    engine.open()
    peer = RawPeer(engine)
    from petrel.spec import SaslMechanisms

    offer = SaslMechanisms(sasl_server_mechanisms=(Symbol("SCRAM-SHA-256"),))
    peer.send(
        SASL_HEADER,
        frame(offer, frame_type=FRAME_TYPE_SASL),
        frame(SaslChallenge(challenge=b"r=x,s=QUJD,i=4096"), frame_type=FRAME_TYPE_SASL),
    )
    closed = peer.event(ConnectionClosed)
    assert closed.error is not None
    assert "SCRAM-SHA-256: the server-first message's nonce does not extend ours" in str(
        closed.error.description
    )


def test_derive_credential_bounds_iterations() -> None:
    with pytest.raises(ScramError, match="iterations must be in"):
        derive_credential("SCRAM-SHA-256", "pw", iterations=1000)
    with pytest.raises(ScramError, match="not a SCRAM mechanism"):
        derive_credential("SCRAM-SHA-1", "pw")


# --- EXTERNAL -------------------------------------------------------------------------------


def test_external_is_offered_only_with_an_identity() -> None:
    from petrel.spec import SaslMechanisms

    for identity, offered in ((None, ("ANONYMOUS",)), ("CN=alice", ("EXTERNAL", "ANONYMOUS"))):
        config = SaslConfig(mechanisms=("EXTERNAL", "ANONYMOUS"), external_identity=identity)
        peer = RawPeer(Connection(ConnectionConfig(sasl=config), server=True))
        peer.send(SASL_HEADER)
        assert peer.last(SaslMechanisms).sasl_server_mechanisms == tuple(map(Symbol, offered))


@pytest.mark.parametrize(
    ("authzid", "code"), [(None, SaslCode.OK), ("alice", SaslCode.OK), ("bob", SaslCode.AUTH)]
)
def test_external(authzid: str | None, code: SaslCode) -> None:
    pair = scram_pair(
        SaslConfig(mechanisms=("EXTERNAL",), authzid=authzid),
        SaslConfig(mechanisms=("EXTERNAL",), external_identity="alice"),
    )
    pair.open()
    done = pair.take_one("server", SaslCompleted)
    assert done.code == code
    if code == SaslCode.OK:
        assert done.identity == "alice"
        assert pair.take_one("client", ConnectionOpened)
    else:
        assert done.reason is not None and "may not act as 'bob'" in done.reason


def test_unoffered_mechanism_names_what_is_offered() -> None:
    engine = Connection(ConnectionConfig(sasl=server_config()), server=True)
    peer = RawPeer(engine)
    peer.send(SASL_HEADER, frame(SaslInit(mechanism=Symbol("PLAIN")), frame_type=FRAME_TYPE_SASL))
    assert peer.last(SaslOutcome).code == SaslCode.AUTH
    done = peer.event(SaslCompleted)
    assert done.reason == (
        "the client chose PLAIN, which is not offered "
        "(offered: SCRAM-SHA-512, SCRAM-SHA-256, ANONYMOUS)"
    )


def test_no_common_mechanism_names_both_sides() -> None:
    pair = scram_pair(
        SaslConfig(mechanisms=("SCRAM-SHA-256", "PLAIN")),
        SaslConfig(mechanisms=("EXTERNAL", "ANONYMOUS"), external_identity="x"),
    )
    pair.open()
    closed = pair.take_one("client", ConnectionClosed)
    assert closed.error is not None
    assert str(closed.error.description) == (
        "SASL: no usable SASL mechanism: the server offers ANONYMOUS, EXTERNAL; we allow "
        "SCRAM-SHA-256, PLAIN (PLAIN and SCRAM need a user name and a password)"
    )
