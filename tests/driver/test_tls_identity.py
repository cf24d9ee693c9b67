"""Who a verified client certificate says the client is: the subject in RFC 4514 form, and a
listener's ``external_identity`` rule turning it into the user SASL EXTERNAL grants.

``cryptography`` (under ``trustme``) writes the expected RFC 4514 subjects; an
in-process broker serves Petrel's client choosing EXTERNAL.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import petrel
from petrel.broker import Broker
from petrel.driver import AmqpProtocol, Listener, TlsConfig, TlsPeer, connect
from petrel.engine import ConnectionConfig
from petrel.server.config import (
    BrokerSettings,
    ConfigError,
    ListenerSettings,
    TlsSettings,
    read_settings,
)
from tests.helpers.certs import Authority, Pem


class _Opener:
    def __init__(self, protocol: AmqpProtocol) -> None:
        pass

    def handle_event(self, protocol: AmqpProtocol, event: object) -> None:
        if type(event).__name__ == "ConnectionOpened":
            protocol.engine.open()


@pytest.fixture
def ca(tmp_path: Path) -> Authority:
    return Authority(tmp_path, "ca")


@pytest.fixture
def server(ca: Authority) -> Pem:
    return ca.issue("server", "localhost", "127.0.0.1", common_name="localhost")


@pytest.mark.parametrize(
    "names",
    [
        {"common_name": "app-7"},
        {"common_name": "app-7", "organization_name": "Example", "organization_unit_name": "Ops"},
        # Every character RFC 4514 escapes, and leading and trailing spaces.
        {"common_name": ' a,b+c"d\\e<f>g;h ', "organization_name": "#hash"},
        {"common_name": "ünïcødé ✓"},
    ],
)
async def test_the_subject_in_rfc4514_form(
    ca: Authority, server: Pem, names: dict[str, str]
) -> None:
    client = ca.issue("client", **names)
    peers: list[TlsPeer] = []

    def config(peer: TlsPeer) -> ConnectionConfig:
        peers.append(peer)
        return ConnectionConfig()

    tls = TlsConfig(cert_file=server.cert, key_file=server.key, ca_file=ca.cert, verify=False)
    async with Listener(
        ["amqps://127.0.0.1:0"], ConnectionConfig, _Opener, tls=tls, peer_config_factory=config
    ) as listener:
        url = f"amqps://localhost:{listener.bound[0][1]}"
        mine = TlsConfig(ca_file=ca.cert, cert_file=client.cert, key_file=client.key)
        protocol = await connect(url, ConnectionConfig(), tls=mine)
        await protocol.close()
        # Without a certificate (asked for, not required): no subject.
        protocol = await connect(url, ConnectionConfig(), tls=TlsConfig(ca_file=ca.cert))
        await protocol.close()
    assert [p.subject for p in peers] == [client.subject, None]
    assert peers[0].common_names == (names["common_name"],)
    assert peers[0].version in ("TLSv1.2", "TLSv1.3")


async def _broker(ca: Authority, server: Pem, rule: str, *, require: bool = False) -> Broker:
    tls = TlsSettings(
        cert_file=server.cert,
        key_file=server.key,
        ca_file=ca.cert,
        require_client_cert=require,
        external_identity=rule,
    )
    broker = Broker(
        BrokerSettings(
            store="memory", listeners=[ListenerSettings(url="amqps://127.0.0.1:0", tls=tls)]
        )
    )
    await broker.start()
    return broker


async def _external(broker: Broker, ca: Authority, client: Pem | None) -> petrel.Connection:
    tls = TlsConfig(
        ca_file=ca.cert,
        cert_file=client.cert if client else None,
        key_file=client.key if client else None,
    )
    return await petrel.connect(
        f"amqps://localhost:{broker.bound[0][1]}",
        tls=tls,
        sasl_mechanisms=["EXTERNAL"],
        reconnect=False,
        timeout=10,
    )


def _users(broker: Broker) -> list[tuple[str | None, str | None]]:
    return [(c.identity, c.mechanism) for c in broker.connections.values()]


RULES = [
    ("cn", "app-7"),
    ("subject", None),  # the whole subject: the certificate's, computed in the test
    (r"CN=(?P<user>[a-z]+)-\d+,OU=Apps,O=Example", "app"),
]


@pytest.mark.parametrize(("rule", "expected"), RULES)
async def test_external_grants_the_identity_the_rule_gives(
    ca: Authority, server: Pem, rule: str, expected: str | None
) -> None:
    client = ca.issue(
        "client", common_name="app-7", organization_unit_name="Apps", organization_name="Example"
    )
    broker = await _broker(ca, server, rule)
    try:
        conn = await _external(broker, ca, client)
        try:
            assert _users(broker) == [(expected or client.subject, "EXTERNAL")]
            sender = await conn.open_sender("external")
            await sender.send(petrel.Message("who am I"))
        finally:
            await conn.close()
    finally:
        await broker.stop(timeout=1.0)


async def test_a_certificate_the_rule_does_not_fit_gets_no_external(
    ca: Authority, server: Pem, caplog: pytest.LogCaptureFixture
) -> None:
    """EXTERNAL is not offered to it (the client allowing only EXTERNAL cannot log in), one
    line names the subject; a certificate that fits, and a client without one using
    another mechanism, are served on the same listener."""
    stranger = ca.issue("stranger", common_name="app-7", organization_unit_name="Elsewhere")
    fits = ca.issue("fits", common_name="app-7", organization_unit_name="Apps")
    broker = await _broker(ca, server, r"CN=(?P<user>[^,]+),OU=Apps,.*")
    try:
        with caplog.at_level(logging.INFO, logger="petrel"), pytest.raises(Exception) as refused:
            await _external(broker, ca, stranger)
        assert "EXTERNAL" in str(refused.value), refused.value
        lines = [
            r.getMessage() for r in caplog.records if "SASL EXTERNAL identity" in r.getMessage()
        ]
        assert lines == [
            f"client certificate {stranger.subject!r} gives no SASL EXTERNAL identity "
            r"(no match for 'CN=(?P<user>[^,]+),OU=Apps,.*')"
        ]
        # The rule matches the whole subject, not a part of it.
        from cryptography.x509.oid import NameOID

        inside = ca.issue_subject(
            "inside",
            [
                (NameOID.ORGANIZATION_NAME, "Example"),
                (NameOID.ORGANIZATIONAL_UNIT_NAME, "Apps"),
                (NameOID.COMMON_NAME, "app-7"),
                (NameOID.USER_ID, "mallory"),
            ],
        )
        with pytest.raises(Exception, match="EXTERNAL"):
            await _external(broker, ca, inside)
        conn = await _external(broker, ca, fits)
        anonymous = await petrel.connect(
            f"amqps://localhost:{broker.bound[0][1]}", tls=TlsConfig(ca_file=ca.cert)
        )
        assert sorted(_users(broker), key=str) == sorted(
            [("app-7", "EXTERNAL"), ("anonymous", "ANONYMOUS")], key=str
        )
        await anonymous.close()
        await conn.close()
    finally:
        await broker.stop(timeout=1.0)


async def test_cn_refuses_a_subject_with_two_common_names(
    ca: Authority, server: Pem, caplog: pytest.LogCaptureFixture
) -> None:
    """A subject with two CNs is ambiguous: "cn" gives no identity rather than guess."""
    from cryptography.x509.oid import NameOID

    client = ca.issue_subject("twice", [(NameOID.COMMON_NAME, "one"), (NameOID.COMMON_NAME, "two")])
    broker = await _broker(ca, server, "cn")
    try:
        with caplog.at_level(logging.INFO, logger="petrel"), pytest.raises(Exception) as refused:
            await _external(broker, ca, client)
        assert "EXTERNAL" in str(refused.value), refused.value
        assert "CN=two,CN=one' gives no SASL EXTERNAL identity (2 common names" in caplog.text
    finally:
        await broker.stop(timeout=1.0)


@pytest.mark.parametrize(
    ("tls", "problem"),
    [
        ('external_identity = "cn"', "tls.external_identity needs tls.ca_file"),
        ('ca_file = "ca.pem", external_identity = "CN=(?P<user>"', "valid regular expression"),
        ('ca_file = "ca.pem", external_identity = "CN=(.*)"', "(?P<user>...)"),
    ],
)
def test_bad_identity_rules_are_config_errors(tmp_path: Path, tls: str, problem: str) -> None:
    config = tmp_path / "broker.toml"
    config.write_text(
        f'[[listeners]]\nurl = "amqps://127.0.0.1:5671"\n'
        f'tls = {{ cert_file = "server.pem", {tls} }}\n'
    )
    with pytest.raises(ConfigError) as error:
        read_settings(BrokerSettings, config)
    assert problem in str(error.value)
    assert str(error.value).startswith(f"{config}: listeners.0")
