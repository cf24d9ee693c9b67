"""The access rules as data: patterns, rights, groups, vhosts and limits, without a server."""

from __future__ import annotations

import logging

import pytest

from petrel.errors import AmqpError, Condition
from petrel.server import ConfigError, read_settings
from petrel.server.access import Access, AccessSettings, compile_patterns
from petrel.server.config import ServerSettings


def _access(**settings: object) -> Access:
    return Access(
        AccessSettings.model_validate(settings), is_reply_address=lambda a: a.startswith("dynamic.")
    )


@pytest.mark.parametrize(
    ("pattern", "address", "matches"),
    [
        ("orders", "orders", True),
        ("orders", "orders.eu", False),
        ("orders", "order", False),
        ("orders.*", "orders.eu", True),
        ("orders.*", "orders", False),
        ("orders.*", "orders.eu.paris", False),
        ("orders.#", "orders", True),
        ("orders.#", "orders.eu", True),
        ("orders.#", "orders.eu.paris", True),
        ("orders.#", "ordersx", False),
        ("*.eu", "orders.eu", True),
        ("*.eu", "eu", False),
        ("#.eu", "eu", True),
        ("#.eu", "a.b.eu", True),
        ("#.eu", "a.b.us", False),
        ("a.#.z", "a.z", True),
        ("a.#.z", "a.b.c.z", True),
        ("a.#.z", "a.b.c", False),
        ("#", "anything.at.all", True),
        ("ord*", "orders", False),  # a wildcard is a whole segment; here a literal
        ("ord*", "ord*", True),
        ("a+b.(x)", "a+b.(x)", True),  # no regular-expression leaks
        ("a+b.(x)", "aab.x", False),
    ],
)
def test_patterns(pattern: str, address: str, matches: bool) -> None:
    matcher = compile_patterns([pattern])
    assert matcher is not None
    assert matcher(address) is matches


def test_no_patterns_match_nothing() -> None:
    assert compile_patterns([]) is None


def test_rights_by_user_group_and_everyone() -> None:
    access = _access(
        groups=[{"name": "traders", "members": ["alice"]}],
        rules=[
            {"who": ["@traders"], "addresses": ["orders.#"], "rights": ["send", "receive"]},
            {"who": ["bob"], "addresses": ["orders.*"], "rights": ["browse"]},
            {"who": ["*"], "addresses": ["public"], "rights": ["send"]},
            {"who": ["$anonymous"], "addresses": ["guest.#"], "rights": ["receive"]},
            {"who": ["admin"], "addresses": ["$management"], "rights": ["manage"]},
        ],
    )
    alice = access.open("alice", "127.0.0.1", None)
    assert alice.allowed("orders.eu", "send")
    assert alice.allowed("orders.eu", "receive")
    assert alice.allowed("orders.eu", "browse")  # receive includes browse
    assert not alice.allowed("orders.eu", "create")
    assert not alice.allowed("invoices", "send")
    assert alice.allowed("public", "send")
    assert not alice.may_manage
    bob = access.open("bob", "127.0.0.1", None)
    assert bob.allowed("orders.eu", "browse")
    assert not bob.allowed("orders.eu", "receive")
    assert not bob.allowed("guest.x", "receive")
    anonymous = access.open(None, "127.0.0.1", None)
    assert anonymous.allowed("guest.x", "receive")
    assert anonymous.allowed("public", "send")
    assert not anonymous.allowed("orders.eu", "send")
    assert access.open("admin", "127.0.0.1", None).may_manage


def test_groups_from_elsewhere() -> None:
    access = Access(
        AccessSettings.model_validate(
            {"rules": [{"who": ["@ops"], "addresses": ["#"], "rights": ["manage"]}]}
        ),
        groups_of=lambda user: ["ops"] if user == "carol" else [],
    )
    assert access.open("carol", "10.0.0.1", None).may_manage
    assert not access.open("dave", "10.0.0.1", None).may_manage


def test_a_refusal_names_address_and_right_and_is_audited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    access = _access(rules=[{"who": ["alice"], "addresses": ["orders"], "rights": ["send"]}])
    alice = access.open("alice", "192.0.2.7", None)
    with caplog.at_level(logging.INFO, logger="petrel.audit"):
        with pytest.raises(AmqpError) as caught:
            alice.require("invoices", "receive")
        alice.require("orders", "send")
        with pytest.raises(AmqpError):
            alice.require("invoices", "receive")  # the same decision: logged once
    assert caught.value.condition == Condition.UNAUTHORIZED_ACCESS
    assert "'invoices'" in caught.value.description and "receive" in caught.value.description
    lines = [r.getMessage() for r in caplog.records if r.name == "petrel.audit"]
    assert lines == [
        "refused: user 'alice' from 192.0.2.7, vhost $default, address 'invoices', right receive"
    ]


def test_reply_addresses_and_reserved_names() -> None:
    access = _access(rules=[{"who": ["*"], "addresses": ["#"], "rights": ["send", "receive"]}])
    nobody = _access().open("eve", "127.0.0.1", None)
    assert nobody.allowed("dynamic.1234", "send")  # a reply address is a capability
    assert not nobody.allowed("dynamic.1234", "receive")
    everyone = access.open("eve", "127.0.0.1", None)
    assert not everyone.allowed("$vhost/other/orders", "send")  # the server's own names


def test_vhosts_by_hostname_and_the_default() -> None:
    access = _access(
        rules=[{"addresses": ["#"], "rights": ["send"]}],
        vhosts=[
            {
                "hostname": "Tenant-A.example",
                "admit": ["alice"],
                "rules": [
                    {"addresses": ["orders"], "rights": ["receive"]},
                    {"addresses": ["in"], "rights": ["send"]},
                ],
            }
        ],
    )
    tenant = access.open("alice", "127.0.0.1", "tenant-a.example")
    assert tenant.vhost == "Tenant-A.example"
    assert tenant.allowed("orders", "receive") and not tenant.allowed("orders", "send")
    assert tenant.inner("orders") == "$vhost/tenant-a.example/orders"
    assert tenant.outer("$vhost/tenant-a.example/orders") == "orders"
    assert tenant.inner("dynamic.77") == "dynamic.77"
    assert tenant.inner("$management") == "$management"
    with pytest.raises(AmqpError):
        tenant.relay("orders")  # receive only
    assert tenant.relay("in") == "$vhost/tenant-a.example/in"
    with pytest.raises(AmqpError) as caught:
        access.open("bob", "127.0.0.1", "tenant-a.example")
    assert caught.value.condition == Condition.UNAUTHORIZED_ACCESS
    for hostname in (None, "elsewhere.example"):
        default = access.open("bob", "127.0.0.1", hostname)
        assert default.vhost == "$default" and default.inner("orders") == "orders"


def test_unknown_hostnames_refused_without_a_default() -> None:
    access = _access(default_vhost="", vhosts=[{"hostname": "a"}])
    with pytest.raises(AmqpError) as caught:
        access.open("bob", "127.0.0.1", "b")
    assert caught.value.condition == Condition.NOT_FOUND
    assert "'b'" in caught.value.description
    assert access.open("bob", "127.0.0.1", "a").vhost == "a"


def test_connection_limits_per_user_per_host_and_together() -> None:
    access = _access(
        limits=[
            {"max_connections_per_user": 2},
            {"hosts": ["10.1.0.0/16"], "max_connections_per_host": 1},
            {"who": ["@bulk"], "max_connections": 3},
        ],
        groups=[{"name": "bulk", "members": ["b1", "b2", "b3", "b4"]}],
    )
    first = access.open("alice", "127.0.0.1", None)
    access.open("alice", "127.0.0.2", None)
    with pytest.raises(AmqpError) as caught:
        access.open("alice", "127.0.0.3", None)
    assert caught.value.condition == Condition.RESOURCE_LIMIT_EXCEEDED
    first.release()
    access.open("alice", "127.0.0.3", None)  # room again
    access.open("bob", "10.1.2.3", None)
    with pytest.raises(AmqpError):
        access.open("carol", "10.1.2.3", None)  # the host's one connection is taken
    access.open("carol", "10.2.0.1", None)
    for user in ("b1", "b2", "b3"):
        access.open(user, "127.0.0.1", None)
    with pytest.raises(AmqpError):
        access.open("b4", "127.0.0.1", None)


def test_the_smallest_limit_wins() -> None:
    access = _access(
        limits=[
            {"max_sessions": 5, "max_links": 10, "max_message_size": 4096},
            {"who": ["alice"], "max_sessions": 2, "max_unsettled": 7},
            {"hosts": ["192.0.2.0/24"], "max_message_size": 1000},
        ]
    )
    alice = access.open("alice", "192.0.2.1", None)
    assert (alice.max_sessions, alice.max_links, alice.max_message_size, alice.max_unsettled) == (
        2,
        10,
        1000,
        7,
    )
    bob = access.open("bob", "127.0.0.1", None)
    assert (bob.max_sessions, bob.max_message_size, bob.max_unsettled) == (5, 4096, None)


@pytest.mark.parametrize(
    ("toml", "complaint"),
    [
        ("[access]\ndefault_vhost = 'nowhere'", "default_vhost 'nowhere'"),
        ("[[access.vhosts]]\nhostname = '$default'", "go in [access] itself"),
        ("[[access.vhosts]]\nhostname = 'a'\n[[access.vhosts]]\nhostname = 'A'", "declared twice"),
        ("[[access.rules]]\naddresses = ['x']\nrights = ['fly']", "rights"),
        ("[[access.rules]]\naddresses = ['']\nrights = ['send']", "never empty"),
        ("[[access.limits]]\nhosts = ['not-an-ip']", "not an IP address"),
        ("[access]\nrulez = []", "unknown setting"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path: object, toml: str, complaint: str) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "petrel.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        read_settings(ServerSettings, path)
    assert complaint in str(caught.value)


def test_no_access_table_means_no_access() -> None:
    assert ServerSettings().access is None
