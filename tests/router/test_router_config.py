"""A router's settings: the ``[router]`` table, connectors, address distribution rules, and
the listener roles a broker refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from petrel.router.config import (
    AddressPolicy,
    RouterSettings,
    distribution_for,
    load_router_settings,
)
from petrel.server import ConfigError, load_settings
from petrel.server.config import ConnectorSettings, ListenerSettings

ROUTER = {"router": {"id": "A"}}


def problem(**data: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        load_router_settings(**data)
    return str(caught.value)


# --- [router] -----------------------------------------------------------------------------


def test_the_id_is_required_and_names_the_container() -> None:
    assert problem().startswith("command line: router.id: required")
    assert problem(router={"mode": "interior"}).startswith("command line: router.id: required")
    settings = load_router_settings(**ROUTER)
    assert (settings.router.id, settings.router.mode, settings.container_id) == (
        "A",
        "interior",
        "A",
    )
    assert load_router_settings(container_id="c", **ROUTER).container_id == "c"
    # Defaults of the server settings: one normal listener on loopback.
    assert [(lis.url, lis.role) for lis in settings.listeners] == [
        ("amqp://127.0.0.1:5672", "normal")
    ]
    assert settings.connectors == [] and settings.addresses == []


@pytest.mark.parametrize("router_id", ["A", "router-1", "eu.west_2:b", "x" * 255])
def test_good_ids(router_id: str) -> None:
    assert load_router_settings(router={"id": router_id}).router.id == router_id


@pytest.mark.parametrize("router_id", ["", "a/b", "a b", "é", "x" * 256])
def test_bad_ids(router_id: str) -> None:
    assert "router.id: " in problem(router={"id": router_id})


def test_unknown_keys_are_errors() -> None:
    assert problem(router={"id": "A", "edge": True}) == "command line: router.edge: unknown setting"
    assert problem(router={"id": "A", "mode": "leaf"}).startswith("command line: router.mode:")
    assert problem(queues=[], **ROUTER) == "command line: queues: unknown setting"


def test_a_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text('[router]\nid = "A"\n[[addresses]]\npattern = "a.*"\n')
    assert load_router_settings(path).addresses == [AddressPolicy(pattern="a.*")]
    path.write_text("[router]\n")
    assert str(path) in problem(path=path)


# --- listeners and connectors -------------------------------------------------------------


def test_listener_roles_and_costs() -> None:
    inter = ListenerSettings(url="amqp://127.0.0.1:5673", role="inter-router", cost=2**24)
    assert (inter.role, inter.cost) == ("inter-router", 2**24)
    assert ListenerSettings(role="inter-router").cost == 1
    with pytest.raises(ValueError, match="less than or equal to 16777216"):
        ListenerSettings(role="inter-router", cost=2**24 + 1)
    with pytest.raises(ValueError, match='cost applies to role = "inter-router" listeners only'):
        ListenerSettings(cost=3)
    with pytest.raises(ValueError, match="has no \\?query part"):
        ListenerSettings(url="amqp://127.0.0.1:1?cost=3")


def test_a_broker_refuses_an_inter_router_listener(tmp_path: Path) -> None:
    path = tmp_path / "broker.toml"
    path.write_text('[[listeners]]\nurl = "amqp://127.0.0.1:5673"\nrole = "inter-router"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value) == (
        f"{path}: listener amqp://127.0.0.1:5673: role = 'inter-router' is for routers; "
        'a broker\'s listeners are role = "normal" or "http"'
    )


def test_connectors() -> None:
    connector = ConnectorSettings(url="amqp://peer:5673")
    assert (connector.name, connector.role, connector.cost, connector.tls) == (
        None,
        "inter-router",
        1,
        None,
    )
    settings = load_router_settings(
        connectors=[
            {"url": "amqp://b:1"},
            {"url": "amqp://c:1", "name": "to-c", "cost": 7},
            {"url": "amqps://d:1", "username": "u", "password": "p", "tls": {"ca_file": "ca.pem"}},
        ],
        **ROUTER,
    )
    assert [(c.name, c.cost) for c in settings.connectors] == [
        ("connector-1", 1),
        ("to-c", 7),
        ("connector-3", 1),
    ]
    tls = settings.connectors[2].tls
    assert tls is not None and (tls.ca_file, tls.verify_hostname) == ("ca.pem", True)


@pytest.mark.parametrize(
    ("connector", "expected"),
    [
        ({"url": "http://b:1"}, "a connector URL starts with amqp:// or amqps://"),
        ({"url": "amqp://:1"}, "a connector URL names the host to dial"),
        ({"url": "amqp://u:p@b:1"}, "put the user name and password in username and password"),
        ({"url": "amqps://b:1"}, "connector amqps://b:1 is amqps:// but has no [tls] settings"),
        ({"url": "amqp://b:1", "tls": {}}, "has [tls] settings but is not amqps://"),
        ({"url": "amqp://b:1", "password": "p"}, "password needs username"),
        ({"url": "amqp://b:1", "cost": 0}, "connectors.0.cost: Input should be greater"),
        ({"url": "amqp://b:1", "role": "broker"}, "connectors.0.role: Input should be"),
        ({"url": "amqp://b:1", "colour": 1}, "connectors.0.colour: unknown setting"),
        (
            {"url": "amqps://b:1", "tls": {"key_file": "k.pem"}},
            "tls.key_file needs tls.cert_file",
        ),
    ],
)
def test_bad_connectors(connector: dict[str, Any], expected: str) -> None:
    assert expected in problem(connectors=[connector], **ROUTER)


def test_endpoints_and_names_are_unique() -> None:
    twice = problem(listeners=[{"url": "amqp://127.0.0.1:1"}, {"url": "127.0.0.1:1"}], **ROUTER)
    assert twice == "command line: listener amqp://127.0.0.1:1 is listed twice"
    connectors = [{"url": "amqp://b:1"}, {"url": "amqp://b:1", "cost": 3}]
    assert "connector amqp://b:1 is listed twice" in problem(connectors=connectors, **ROUTER)
    named = [{"url": "amqp://b:1", "name": "x"}, {"url": "amqp://c:1", "name": "x"}]
    assert "connector name x is listed twice" in problem(connectors=named, **ROUTER)
    # A default name taken by hand is a clash too, said as such.
    clash = [{"url": "amqp://b:1", "name": "connector-2"}, {"url": "amqp://c:1"}]
    assert "connector name connector-2 is listed twice" in problem(connectors=clash, **ROUTER)


# --- address distribution -----------------------------------------------------------------


def test_an_address_policy_has_exactly_one_of_prefix_and_pattern() -> None:
    both = {"prefix": "a.", "pattern": "a.#"}
    assert "exactly one of prefix and pattern" in problem(addresses=[both], **ROUTER)
    assert "exactly one of prefix and pattern" in problem(addresses=[{}], **ROUTER)
    mixed = problem(addresses=[{"pattern": "a.b#"}], **ROUTER)
    assert "* and # stand for whole segments ('b#' mixes them with text)" in mixed
    bad = problem(addresses=[{"prefix": "a", "distribution": "anycast"}], **ROUTER)
    assert "addresses.0.distribution:" in bad


@pytest.mark.parametrize(
    ("pattern", "address", "matches"),
    [
        ("a.b", "a.b", True),
        ("a.b", "a/b", True),
        ("a/b", "a.b", True),
        ("a.b", "a.b.c", False),
        ("a.*", "a.b", True),
        ("a.*", "a", False),
        ("a.*", "a.b.c", False),
        ("*.*", "a.b", True),
        ("a.#", "a", True),
        ("a.#", "a.b.c.d", True),
        ("a.#", "ab.c", False),
        ("#", "", True),
        ("#", "anything/at.all", True),
        ("#.z", "z", True),
        ("#.z", "a.b.z", True),
        ("#.z", "a.b.zz", False),
        ("a.#.z", "a.z", True),
        ("a.#.z", "a.b.c.z", True),
        ("a.#.z", "a.b.c", False),
        ("a.*.#.z", "a.z", False),
        ("a.*.#.z", "a.b.z", True),
        ("#.#", "a.b", True),
    ],
)
def test_patterns(pattern: str, address: str, matches: bool) -> None:
    assert (AddressPolicy(pattern=pattern).strength(address) is not None) is matches


def test_the_most_literal_match_wins() -> None:
    policies = [
        AddressPolicy(prefix="orders.", distribution="closest"),
        AddressPolicy(pattern="orders.*.audit", distribution="multicast"),
        AddressPolicy(pattern="#", distribution="closest"),
        AddressPolicy(prefix="orders.eu.", distribution="balanced"),
        AddressPolicy(pattern="news.#", distribution="multicast"),
        AddressPolicy(prefix="news.", distribution="closest"),
    ]
    assert distribution_for(policies, "orders.us.new") == "closest"  # "orders." (7)
    assert distribution_for(policies, "orders.us.audit") == "multicast"  # the pattern (13)
    assert distribution_for(policies, "orders.eu.new") == "balanced"  # "orders.eu." (10)
    assert distribution_for(policies, "orders.eu.audit") == "multicast"  # 13 > 10
    assert distribution_for(policies, "anything") == "closest"  # "#" (0)
    # news.# and news. both count 5: the prefix wins the tie.
    assert distribution_for(policies, "news.today") == "closest"
    assert distribution_for([], "x") == "balanced"
    # Equal entries: the first listed.
    same = [AddressPolicy(prefix="a", distribution="closest"), AddressPolicy(prefix="a")]
    assert distribution_for(same, "ab") == "closest"


def test_distribution_for_settings() -> None:
    settings = load_router_settings(
        addresses=[{"prefix": "multicast.", "distribution": "multicast"}], **ROUTER
    )
    assert isinstance(settings, RouterSettings)
    assert distribution_for(settings, "multicast.news") == "multicast"
    assert distribution_for(settings, "queue.a") == "balanced"
