"""The users file, its reload, ``petrel user`` (a subprocess), the ``petrel.user`` management
entity, the mechanisms each listener offers, and the log of failed authentications.

Servers here are real brokers on 127.0.0.1:0 in this process; clients are Petrel's."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import petrel
from petrel.broker import Broker
from petrel.client.errors import Unauthorized
from petrel.engine.scram import ScramClientExchange, ScramServerExchange
from petrel.management import BadRequest, ManagementClient
from petrel.server import (
    BrokerSettings,
    ConfigError,
    ConnectionPolicy,
    UserDirectory,
    UsersFileError,
    edit_users_file,
    make_user,
    read_settings,
    read_users_file,
)
from petrel.server.config import ListenerSettings, UserSettings

PETREL = str(Path(sys.executable).with_name("petrel"))


def add_user(path: Path, name: str, password: str, **kw: Any) -> None:
    with edit_users_file(path, create=True) as content:
        content.users[name] = make_user(name, password, iterations=4096, **kw)


# --- the file -----------------------------------------------------------------------------


def test_file_round_trip_keeps_no_password(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    add_user(path, "alice", "wonder,land=1", groups=["ops", "dev"], admin=True)
    add_user(path, 'b"ob', "builder")
    text = path.read_text()
    assert "wonder" not in text and "builder" not in text
    assert os.stat(path).st_mode & 0o777 == 0o600
    content = read_users_file(path)
    assert sorted(content.users) == ["alice", 'b"ob']
    alice = content.users["alice"]
    assert alice.admin and alice.groups == {"ops", "dev"}
    # The stored credential answers a real SCRAM exchange with the password, both hashes.
    for mechanism, credential in alice.credentials.items():
        client = ScramClientExchange(mechanism, "alice", "wonder,land=1")
        server = ScramServerExchange(mechanism)
        assert server.first(client.first()) == "alice"
        client.verify(server.final(client.final(server.challenge(credential))))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("version = 2\n", "this Petrel reads version 1"),
        ("colour = 1\n", "unknown setting 'colour'"),
        ('[[users]]\nname = "a"\n', "users[0] ('a'): no scram_sha_256 credential"),
        (
            '[[users]]\nname = "a"\nscram_sha_256 = "x"\nscram_sha_512 = "y"\n',
            "scram_sha_256: not MECHANISM$ITERATIONS",
        ),
        ('[[users]]\nname = "a"\npassword = "x"\n', "unknown setting 'password'"),
        ("[[users]\n", "not valid TOML"),
    ],
)
def test_broken_file_is_named(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "users.toml"
    path.write_text(text)
    with pytest.raises(UsersFileError, match=re.escape(problem)):
        read_users_file(path)


def test_wrong_hash_and_short_iterations_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    add_user(path, "a", "pw")
    text = path.read_text()
    swapped = text.replace('scram_sha_256 = "SCRAM-SHA-256', 'scram_sha_256 = "SCRAM-SHA-512')
    path.write_text(swapped)
    with pytest.raises(UsersFileError, match="a SCRAM-SHA-512 credential where SCRAM-SHA-256"):
        read_users_file(path)
    path.write_text(text.replace("$4096:", "$1000:", 1))
    with pytest.raises(UsersFileError, match="iterations must be in"):
        read_users_file(path)


def test_directory_checks_plain_against_credentials(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    add_user(path, "alice", "wonderland", groups=["ops"])
    inline = [UserSettings(name="boss", password="s3cret", admin=True, groups=["root"])]
    users = UserDirectory(inline, path)
    assert users.check_password("alice", "wonderland")
    assert not users.check_password("alice", "Wonderland")
    assert not users.check_password("nobody", "wonderland")
    assert users.check_password("boss", "s3cret")
    assert users.groups_of("alice") == {"ops"} and users.groups_of("boss") == {"root"}
    assert users.groups_of("nobody") == frozenset()
    assert users.is_admin("boss") and not users.is_admin("alice")
    assert users.users["boss"].source == "config"
    add_user(path, "boss", "x")
    with pytest.raises(UsersFileError, match="'boss' is also in the config's"):
        UserDirectory(inline, path)


def test_refresh_reloads_and_a_broken_file_keeps_the_old_users(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "users.toml"
    add_user(path, "alice", "one")
    users = UserDirectory((), path)
    assert not users.refresh()
    add_user(path, "bob", "two")
    assert users.refresh() and users.check_password("bob", "two")
    good = path.read_text()
    path.write_text(good + "[[users]\n")
    with caplog.at_level(logging.ERROR, "petrel.server"):
        assert not users.refresh()
        assert not users.refresh()  # logged once per change of the file, not per call
    assert [r.getMessage() for r in caplog.records if "keeping" in r.getMessage()] == [
        f"keeping the 2 users loaded before: {path}: not valid TOML: "
        + caplog.records[0].getMessage().split("not valid TOML: ", 1)[1]
    ]
    assert users.check_password("bob", "two")
    path.write_text(good)
    assert users.reload() and users.check_password("alice", "one")


# --- listeners and mechanisms ---------------------------------------------------------------


def _policy(tmp_path: Path, **listener: Any) -> tuple[ConnectionPolicy, ListenerSettings]:
    path = tmp_path / "users.toml"
    add_user(path, "alice", "pw")
    settings = BrokerSettings(store="memory", users_file=str(path))
    return ConnectionPolicy(settings), ListenerSettings(**listener)


@pytest.mark.parametrize(
    ("listener", "offered"),
    [
        (
            {"url": "amqp://127.0.0.1:5672"},
            ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN", "ANONYMOUS"],
        ),
        # Not loopback, not TLS: no PLAIN, no ANONYMOUS.
        ({"url": "amqp://0.0.0.0:5672"}, ["SCRAM-SHA-512", "SCRAM-SHA-256"]),
        (
            {"url": "amqp://192.0.2.1:5672", "allow_plain_without_tls": True},
            ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"],
        ),
        (
            {"url": "amqps://0.0.0.0:5671", "tls": {"cert_file": "x.pem"}},
            ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"],
        ),
        (
            {"url": "amqp://127.0.0.1:5672", "sasl_mechanisms": ["scram-sha-256", "ANONYMOUS"]},
            ["SCRAM-SHA-256", "ANONYMOUS"],
        ),
    ],
)
def test_mechanisms_per_listener(
    tmp_path: Path, listener: dict[str, Any], offered: list[str]
) -> None:
    policy, settings = _policy(tmp_path, **listener)
    assert policy.mechanisms_for(settings) == offered
    config = policy.connection_config(settings)
    assert config.sasl is not None and list(config.sasl.mechanisms) == offered


def test_external_offered_only_with_a_transport_identity(tmp_path: Path) -> None:
    policy, settings = _policy(tmp_path, url="amqp://0.0.0.0:5672")
    config = policy.connection_config(settings, external_identity="CN=alice")
    assert config.sasl is not None
    assert list(config.sasl.mechanisms) == ["SCRAM-SHA-512", "SCRAM-SHA-256", "EXTERNAL"]
    assert config.sasl.external_identity == "CN=alice"


def test_unknown_mechanism_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError,
        match="unknown SASL mechanism 'CRAM-MD5'; the allowed ones are SCRAM-SHA-512, "
        "SCRAM-SHA-256, PLAIN, EXTERNAL, ANONYMOUS",
    ):
        read_settings(BrokerSettings, None, listeners=[{"sasl_mechanisms": ["PLAIN", "CRAM-MD5"]}])


# --- a running broker -----------------------------------------------------------------------


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    path = tmp_path / "users.toml"
    add_user(path, "alice", "wonderland", groups=["ops"], admin=True)
    settings = BrokerSettings(
        store="memory",
        data_dir=str(tmp_path / "data"),
        users_file=str(path),
        users=[UserSettings(name="inline", password="pw")],
        listeners=[
            ListenerSettings(url="amqp://127.0.0.1:0", allow_anonymous=False),
            ListenerSettings(
                url="amqp://127.0.0.1:0", allow_anonymous=False, sasl_mechanisms=["SCRAM-SHA-256"]
            ),
        ],
    )
    server = Broker(settings)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def url(broker: Broker, index: int = 0) -> str:
    return f"amqp://127.0.0.1:{broker.bound[index][1]}"


async def connect(broker: Broker, index: int = 0, **kw: Any) -> petrel.Connection:
    return await petrel.connect(url(broker, index), reconnect=False, timeout=10, **kw)


async def test_client_prefers_scram_sha_512(broker: Broker) -> None:
    async with await connect(broker, username="alice", password="wonderland"):
        (conn,) = broker.state.connections.values()
        assert (conn.identity, conn.mechanism) == ("alice", "SCRAM-SHA-512")


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN"])
async def test_other_mechanisms(broker: Broker, mechanism: str) -> None:
    async with await connect(broker, username="inline", password="pw", sasl_mechanisms=[mechanism]):
        (conn,) = broker.state.connections.values()
        assert (conn.identity, conn.mechanism) == ("inline", mechanism)


@pytest.mark.parametrize(
    ("user", "password", "mechanism"),
    [
        ("alice", "Guess-42", "SCRAM-SHA-512"),
        ("nobody", "wonderland", "SCRAM-SHA-256"),
        ("alice", "Guess-42", "PLAIN"),
    ],
)
async def test_refusals_are_clear_and_logged_once(
    broker: Broker, user: str, password: str, mechanism: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with await connect(broker, username="alice", password="wonderland") as bystander:
        with (
            caplog.at_level(logging.INFO, "petrel.server.access"),
            pytest.raises(
                Unauthorized, match=f"SASL authentication failed .auth. with {mechanism}"
            ),
        ):
            await connect(broker, username=user, password=password, sasl_mechanisms=[mechanism])
        failures = [
            r.getMessage() for r in caplog.records if "authentication failed" in r.getMessage()
        ]
        assert len(failures) == 1
        assert f"user {user!r}, mechanism {mechanism}, auth" in failures[0]
        assert failures[0].startswith("127.0.0.1:")
        assert password not in caplog.text
        # The other connection carries on.
        async with await bystander.open_sender("q") as sender:
            await sender.send(petrel.Message("still here"))


async def test_mechanism_not_offered(broker: Broker, caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.INFO, "petrel.server.access"),
        pytest.raises(Unauthorized) as caught,
    ):
        await connect(broker, 1, username="alice", password="wonderland", sasl_mechanisms=["PLAIN"])
    assert "the server offers SCRAM-SHA-256; we allow PLAIN" in str(caught.value)
    assert "left during SASL without authenticating (offered: SCRAM-SHA-256)" in caplog.text


async def test_a_new_user_in_the_file_logs_in_without_a_restart(
    broker: Broker, tmp_path: Path
) -> None:
    with pytest.raises(Unauthorized):
        await connect(broker, username="carol", password="c")
    add_user(tmp_path / "users.toml", "carol", "c")
    async with await connect(broker, username="carol", password="c"):
        pass


async def test_management_edits_the_users_file(broker: Broker, tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    async with await connect(broker, username="alice", password="wonderland") as conn:
        manager = ManagementClient(conn, timeout=10)
        created = await manager.create("petrel.user", "dave", password="d1", groups=["dev"])
        assert created == {
            "name": "dave",
            "identity": "user/dave",
            "type": "petrel.user",
            "groups": ["dev"],
            "admin": False,
            "source": "file",
            "mechanisms": ["SCRAM-SHA-256", "SCRAM-SHA-512"],
        }
        assert "dave" in read_users_file(path).users
        async with await connect(broker, username="dave", password="d1"):
            pass
        await manager.update("petrel.user", "dave", password="d2", groups=["dev", "ops"])
        with pytest.raises(Unauthorized):
            await connect(broker, username="dave", password="d1")
        async with await connect(broker, username="dave", password="d2"):
            pass
        read = await manager.read("petrel.user", "dave")
        assert read["groups"] == ["dev", "ops"] and "password" not in read
        rows = (await manager.query_all("petrel.user", ["name", "source"])).as_dicts()
        assert sorted((r["name"], r["source"]) for r in rows) == [
            ("alice", "file"),
            ("dave", "file"),
            ("inline", "config"),
        ]
        with pytest.raises(BadRequest, match="in the config file's \\[\\[users\\]\\]"):
            await manager.update("petrel.user", "inline", password="x")
        with pytest.raises(BadRequest, match="missing required attribute 'password'"):
            await manager.create("petrel.user", "eve")
        await manager.delete("petrel.user", "dave")
        assert "dave" not in read_users_file(path).users
        with pytest.raises(Unauthorized):
            await connect(broker, username="dave", password="d2")


async def test_management_needs_the_manage_right(broker: Broker) -> None:
    from petrel.management import Forbidden

    async with await connect(broker, username="inline", password="pw") as conn:
        with pytest.raises(Forbidden):
            await ManagementClient(conn, timeout=10).create("petrel.user", "x", password="y")


# --- petrel user ------------------------------------------------------------------------------


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PETREL, "user", *args], input=stdin, capture_output=True, text=True, timeout=60
    )


def test_cli(tmp_path: Path) -> None:
    path = str(tmp_path / "users.toml")
    added = run_cli(
        "add",
        "--file",
        path,
        "alice",
        "--group",
        "ops",
        "--admin",
        "--password-stdin",
        stdin="pw1\n",
    )
    assert added.returncode == 0, added.stderr
    assert run_cli("add", "--file", path, "bob", "--password-stdin", stdin="pw2\n").returncode == 0
    listed = run_cli("list", "--file", path)
    assert listed.stdout.split("\n")[:3] == [
        "NAME   ADMIN  GROUPS  ITERATIONS",
        "alice  yes    ops     16384",
        "bob    no     -       16384",
    ]
    again = run_cli("add", "--file", path, "bob", "--password-stdin", stdin="x\n")
    assert (
        again.returncode == 1
        and again.stderr == "petrel user: user 'bob' exists (change it with passwd)\n"
    )
    users = UserDirectory((), path)
    assert users.check_password("bob", "pw2")
    assert (
        run_cli("passwd", "--file", path, "bob", "--password-stdin", stdin="pw3\n").returncode == 0
    )
    users.refresh()
    assert users.check_password("bob", "pw3") and not users.check_password("bob", "pw2")
    changed = run_cli(
        "passwd", "--file", path, "bob", "--keep-password", "--group", "dev", "--admin"
    )
    assert changed.returncode == 0, changed.stderr
    users.refresh()
    assert users.check_password("bob", "pw3") and users.groups_of("bob") == {"dev"}
    assert users.is_admin("bob")
    assert run_cli("delete", "--file", path, "bob").returncode == 0
    gone = run_cli("delete", "--file", path, "bob")
    assert gone.returncode == 1 and f"no user 'bob' in {path}" in gone.stderr
    empty = run_cli("add", "--file", path, "carol", "--password-stdin", stdin="\n")
    assert empty.returncode != 0 and "the password is empty" in empty.stderr
    # No option takes a password on the command line.
    assert "--password " not in run_cli("add", "--help").stdout
