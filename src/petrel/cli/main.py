"""``petrel``: one command, one subcommand per tool."""

from __future__ import annotations

import importlib
import platform

import click

from petrel import __version__

#: Each subcommand and the module that defines it (as a function of the same name).
#: A module is imported only when its command runs (or help lists it): ``petrel stat``
#: need not load the broker.
COMMANDS = {
    "bench": ".bench",
    "broker": ".broker",
    "demo": ".demo",
    "manage": ".manage",
    "receive": ".receive",
    "router": ".router",
    "send": ".send",
    "stat": ".stat",
    "user": ".user",
}


class _Tools(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in COMMANDS:
            module = importlib.import_module(COMMANDS[cmd_name], __package__)
            command = getattr(module, cmd_name)
            assert isinstance(command, click.Command)
            self.add_command(command, cmd_name)
        return command


@click.group(
    cls=_Tools,
    context_settings={"auto_envvar_prefix": "PETREL", "help_option_names": ["-h", "--help"]},
)
@click.version_option(
    __version__,
    message=(
        f"petrel %(version)s ({platform.python_implementation()} "
        f"{platform.python_version()} on {platform.system()})"
    ),
)
def cli() -> None:
    """Petrel: AMQP 1.0 messaging: broker, router, client tools."""


def main() -> None:
    cli()
