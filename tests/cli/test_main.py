"""``petrel``'s list of commands: every command, each summary its own, and none imported
to list them (``petrel --help`` took 1.3 s when it imported the broker's web server and
settings models for their one-line summaries)."""

from __future__ import annotations

import json
import subprocess
import sys

import click
from click.testing import CliRunner

from petrel.cli.main import COMMANDS, cli

_LIST_IN_A_FRESH_PROCESS = """
import json, sys
from click.testing import CliRunner
from petrel.cli.main import cli
result = CliRunner().invoke(cli, ["--help"], terminal_width=100)
loaded = sorted(name for name in sys.modules if name.startswith(("petrel.cli.", "aiohttp",
                "petrel.broker", "petrel.router", "petrel.server", "pydantic")))
print(json.dumps({"code": result.exit_code, "output": result.output, "loaded": loaded}))
"""


def _listed_in_a_fresh_process() -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _LIST_IN_A_FRESH_PROCESS],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    listed: dict[str, object] = json.loads(done.stdout)
    return listed


def test_the_list_of_commands_imports_none_of_them() -> None:
    listed = _listed_in_a_fresh_process()
    assert listed["code"] == 0
    assert listed["loaded"] == ["petrel.cli.main"]
    commands = str(listed["output"]).split("Commands:")[1]
    for name in COMMANDS:
        assert f"\n  {name} " in commands, name


def test_each_summary_is_its_commands_own() -> None:
    ctx = click.Context(cli)
    for name, (_module, summary) in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None, name
        assert command.get_short_help_str(limit=10_000) == summary, name


def test_the_list_reads_as_the_commands_themselves_would_make_it() -> None:
    ctx = click.Context(cli)
    for name in COMMANDS:  # loaded here: the list is made from the commands now
        cli.get_command(ctx, name)
    loaded = CliRunner().invoke(cli, ["--help"], terminal_width=100)
    assert loaded.exit_code == 0
    assert _listed_in_a_fresh_process()["output"] == loaded.output
