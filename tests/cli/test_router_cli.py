"""``petrel router``: its help, its configuration errors, and the settings its flags and
config file make together, all without starting a router.

The error cases run the real command (a subprocess: what the user sees, one
line and exit status 2); how flags combine with the file is checked on
:func:`petrel.cli.router.router_settings`, the step the command takes before
it starts anything.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from petrel.cli.router import router_settings, split_cost
from petrel.server import ConfigError

PETREL = str(Path(sys.executable).with_name("petrel"))

CONFIG = """
[router]
id = "A"

[[listeners]]
url = "amqp://127.0.0.1:5672"

[[listeners]]
url = "amqp://127.0.0.1:5673"
role = "inter-router"
cost = 10

[[connectors]]
url = "amqp://127.0.0.1:6673"
role = "inter-router"
cost = 5

[[addresses]]
prefix = "multicast."
distribution = "multicast"
"""


def petrel_router(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PETREL, "router", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=dict(os.environ, **(env or {})),
    )


def config_error(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a configuration error gives (exit status 2, nothing on stdout)."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("petrel router: ")
    return lines[0]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "router.toml"
    path.write_text(CONFIG)
    return path


# --- the command --------------------------------------------------------------------------


def test_help_names_every_option() -> None:
    result = petrel_router("--help")
    assert result.returncode == 0, result.stderr
    for option in (
        "--id ID",
        "--listen URL",
        "--inter-router-listen URL",
        "--connect-router URL",
        "--config FILE",
        "--log-level",
        "URL?cost=N",
        "PETREL_ROUTER_ID",
    ):
        assert option in result.stdout, option
    listed = subprocess.run([PETREL, "--help"], capture_output=True, text=True, check=False)
    assert "router" in listed.stdout.split("Commands:")[1]


@pytest.mark.parametrize(
    ("content", "args", "expected"),
    [
        pytest.param("", (), "router.id: required", id="missing-id"),
        pytest.param('[router]\nmode = "interior"\n', (), "router.id: required", id="no-id"),
        pytest.param('[router]\nid = "a/b"\n', (), "router.id: 'a/b' is not a router id", id="id"),
        pytest.param(
            '[router]\nid = "A"\n[[listeners]]\nurl = "amqp://127.0.0.1:5673"\n'
            'role = "inter-router"\ncost = 0\n',
            (),
            "listeners.0.cost: Input should be greater than or equal to 1",
            id="bad-cost",
        ),
        pytest.param(
            '[router]\nid = "A"\n[[connectors]]\nurl = "amqp://127.0.0.1:6673"\ncost = "x"\n',
            (),
            "connectors.0.cost:",
            id="bad-connector-cost",
        ),
        pytest.param(
            '[router]\nid = "A"\ncolour = "red"\n', (), "router.colour: unknown setting", id="key"
        ),
        pytest.param(
            '[router]\nid = "A"\n[[listeners]]\nurl = "http://127.0.0.1:1"\n',
            (),
            "a listener URL starts with amqp:// or amqps://",
            id="bad-url",
        ),
        pytest.param(
            '[router]\nid = "A"\n[[connectors]]\nurl = "amqp://127.0.0.1:99999"\n',
            (),
            "bad port",
            id="bad-port",
        ),
        pytest.param(
            '[router]\nid = "A"\n[[addresses]]\nprefix = "a."\npattern = "a.#"\n',
            (),
            "addresses.0: an [[addresses]] entry has exactly one of prefix and pattern",
            id="prefix-and-pattern",
        ),
        pytest.param(
            '[router]\nid = "A"\n[[listeners]]\nurl = "amqp://127.0.0.1:1"\n'
            '[[listeners]]\nurl = "127.0.0.1:1"\nrole = "inter-router"\n',
            (),
            "listener amqp://127.0.0.1:1 is listed twice",
            id="same-listener-twice",
        ),
        pytest.param(
            '[router]\nid = "A"\n',
            ("--connect-router", "amqp://h:1?cost=0"),
            "cost must be",
            id="flag-cost",
        ),
        pytest.param(
            '[router]\nid = "A"\n',
            ("--listen", "amqp://127.0.0.1:1?cost=2"),
            "?cost= is for --inter-router-listen and --connect-router",
            id="cost-on-listen",
        ),
    ],
)
def test_a_bad_configuration_is_one_line_and_exit_2(
    tmp_path: Path, content: str, args: tuple[str, ...], expected: str
) -> None:
    path = tmp_path / "router.toml"
    path.write_text(content)
    line = config_error(petrel_router("--config", str(path), *args))
    assert expected in line
    if not args:
        assert str(path) in line


def test_without_a_file_the_id_is_required_on_the_command_line(tmp_path: Path) -> None:
    line = config_error(petrel_router("--listen", "amqp://127.0.0.1:1"))
    assert line.startswith("petrel router: command line: router.id: required")
    missing = config_error(petrel_router("--config", str(tmp_path / "nowhere.toml")))
    assert missing == f"petrel router: {tmp_path / 'nowhere.toml'}: no such config file"


def test_environment_variables_set_the_flags() -> None:
    env = {
        "PETREL_ROUTER_ID": "A",
        "PETREL_ROUTER_CONNECT_ROUTER": "amqp://127.0.0.1:1 amqp://127.0.0.1:2?cost=nope",
    }
    line = config_error(petrel_router(env=env))
    assert "--connect-router amqp://127.0.0.1:2?cost=nope: cost must be" in line


# --- ?cost= -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("amqp://h:1", ("amqp://h:1", None)),
        ("amqp://h:1?cost=7", ("amqp://h:1", 7)),
        ("amqps://h:1/vhost?cost=1", ("amqps://h:1/vhost", 1)),
        ("h:1?cost=16777216", ("h:1", 16777216)),
    ],
)
def test_split_cost(text: str, expected: tuple[str, int | None]) -> None:
    assert split_cost(text, "--connect-router") == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("amqp://h:1?cost=0", "cost must be a whole number from 1 to 16777216"),
        ("amqp://h:1?cost=16777217", "cost must be"),
        ("amqp://h:1?cost=-1", "cost must be"),
        ("amqp://h:1?cost=2.5", "cost must be"),
        ("amqp://h:1?cost=", "cost must be"),
        ("amqp://h:1?cost=1&cost=2", "the only query is ?cost=N"),
        ("amqp://h:1?weight=1", "the only query is ?cost=N"),
        ("amqp://h:1?", "the only query is ?cost=N"),
        ("amqp://h:1?cost", "the only query is ?cost=N"),
    ],
)
def test_split_cost_refuses(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        split_cost(text, "--inter-router-listen")
    assert str(caught.value).startswith(f"--inter-router-listen {text}: ")
    assert problem in str(caught.value)


def test_a_password_in_a_flag_is_not_repeated_in_the_error() -> None:
    with pytest.raises(ConfigError) as caught:
        split_cost("amqp://me:secret@h:1?cost=0", "--connect-router")
    assert "secret" not in str(caught.value)
    assert "amqp://me:***@h:1" in str(caught.value)


# --- flags and file -----------------------------------------------------------------------


def test_flags_alone() -> None:
    settings = router_settings(
        router_id="R1",
        inter_router_listen=["amqp://127.0.0.1:5673?cost=3"],
        connect_router=["amqp://127.0.0.1:6673", "amqp://127.0.0.1:7673?cost=9"],
        log_level="debug",
    )
    assert settings.router.id == "R1"
    assert settings.container_id == "R1"
    assert settings.log_level == "debug"
    # No normal listener was asked for: clients are served on the default one.
    assert [(lis.url, lis.role, lis.cost) for lis in settings.listeners] == [
        ("amqp://127.0.0.1:5672", "normal", 1),
        ("amqp://127.0.0.1:5673", "inter-router", 3),
    ]
    assert [(c.name, c.url, c.role, c.cost) for c in settings.connectors] == [
        ("connector-1", "amqp://127.0.0.1:6673", "inter-router", 1),
        ("connector-2", "amqp://127.0.0.1:7673", "inter-router", 9),
    ]


def test_the_file_alone(config: Path) -> None:
    settings = router_settings(str(config))
    assert (settings.router.id, settings.router.mode, settings.container_id) == (
        "A",
        "interior",
        "A",
    )
    assert [(lis.url, lis.role, lis.cost) for lis in settings.listeners] == [
        ("amqp://127.0.0.1:5672", "normal", 1),
        ("amqp://127.0.0.1:5673", "inter-router", 10),
    ]
    assert [(c.name, c.url, c.cost) for c in settings.connectors] == [
        ("connector-1", "amqp://127.0.0.1:6673", 5)
    ]
    assert [(a.prefix, a.distribution) for a in settings.addresses] == [("multicast.", "multicast")]


def test_each_flag_replaces_its_kind_from_the_file(config: Path) -> None:
    listen = router_settings(str(config), router_id="B", listen=["amqp://127.0.0.1:7000"])
    assert listen.router.id == "B"
    assert [(lis.url, lis.role) for lis in listen.listeners] == [
        ("amqp://127.0.0.1:7000", "normal"),
        ("amqp://127.0.0.1:5673", "inter-router"),  # kept: no --inter-router-listen
    ]
    assert [c.url for c in listen.connectors] == ["amqp://127.0.0.1:6673"]

    inter = router_settings(str(config), inter_router_listen=["amqp://127.0.0.1:7001"])
    assert [(lis.url, lis.role, lis.cost) for lis in inter.listeners] == [
        ("amqp://127.0.0.1:5672", "normal", 1),
        ("amqp://127.0.0.1:7001", "inter-router", 1),
    ]

    connect = router_settings(str(config), connect_router=["amqp://127.0.0.1:7002?cost=2"])
    assert [(c.url, c.cost) for c in connect.connectors] == [("amqp://127.0.0.1:7002", 2)]
    assert len(connect.listeners) == 2
    assert connect.addresses == listen.addresses  # what no flag touches comes from the file


def test_a_file_without_a_normal_listener_gets_the_default_one(tmp_path: Path) -> None:
    path = tmp_path / "router.toml"
    path.write_text(
        '[router]\nid = "A"\n[[listeners]]\nurl = "amqp://127.0.0.1:5673"\nrole = "inter-router"\n'
    )
    settings = router_settings(str(path))
    assert [(lis.url, lis.role) for lis in settings.listeners] == [
        ("amqp://127.0.0.1:5672", "normal"),
        ("amqp://127.0.0.1:5673", "inter-router"),
    ]


def test_the_id_flag_keeps_the_rest_of_the_router_table(tmp_path: Path) -> None:
    path = tmp_path / "router.toml"
    path.write_text('container_id = "box"\n[router]\nid = "A"\nmode = "interior"\n')
    settings = router_settings(str(path), router_id="Z")
    assert (settings.router.id, settings.router.mode, settings.container_id) == (
        "Z",
        "interior",
        "box",
    )


def test_an_amqps_connect_flag_trusts_the_system_cas() -> None:
    settings = router_settings(router_id="A", connect_router=["amqps://peer.example:5671"])
    [connector] = settings.connectors
    assert connector.tls is not None
    assert (connector.tls.ca_file, connector.tls.verify_hostname) == (None, True)


def test_credentials_in_a_connect_url_leave_the_url() -> None:
    settings = router_settings(
        router_id="A", connect_router=["route%40r:p%3Ass@peer.example:1?cost=4"]
    )
    [connector] = settings.connectors
    assert (connector.url, connector.username, connector.password, connector.cost) == (
        "amqp://peer.example:1",
        "route@r",
        "p:ss",
        4,
    )


def test_a_bad_flag_value_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="a listener URL starts with amqp://"):
        router_settings(router_id="A", listen=["http://127.0.0.1:1"])
    with pytest.raises(ConfigError, match=r"listener amqp://127\.0\.0\.1:1 is listed twice"):
        router_settings(
            router_id="A",
            listen=["amqp://127.0.0.1:1"],
            inter_router_listen=["amqp://127.0.0.1:1"],
        )
