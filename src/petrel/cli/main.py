"""``petrel``: one command, one subcommand per tool."""

from __future__ import annotations

import importlib
import platform

import click

from petrel import __version__

#: Each subcommand: the module that defines it (as a function of the same name), and its
#: one-line summary for ``petrel --help``.  A module is imported only when its command
#: runs or its own help is asked for: ``petrel stat`` need not load the broker, and the
#: list of commands needs none of them (a test checks each summary against its command).
COMMANDS: dict[str, tuple[str, str]] = {
    "bench": (
        ".bench",
        "Measure message throughput and latency through an AMQP peer (or peer to peer).",
    ),
    "broker": (".broker", "Run the Petrel broker."),
    "demo": (
        ".demo",
        "Encode a few AMQP values and a performative, decode them back and print both.",
    ),
    "manage": (
        ".manage",
        "Manage a broker's or a router's entities over AMQP Management; every reply is "
        "printed as JSON.",
    ),
    "receive": (".receive", "Receive messages from ADDRESS, print them and accept them."),
    "router": (".router", "Run a Petrel router: an interior or edge router of a router network."),
    "send": (".send", "Send COUNT messages to ADDRESS and wait until the peer has accepted them."),
    "stat": (
        ".stat",
        "Show a broker's or a router's state: one section, as a table, CSV or JSON.",
    ),
    "user": (".user", "Add, change, delete and list the users of a users file."),
}


class _Tools(click.Group):
    """A group whose subcommands are imported on first use."""

    #: While the list of commands is written: stand-ins with :data:`COMMANDS`' summaries
    #: for the commands not imported yet (importing them all for their help took a
    #: second: the broker's web server and settings models among them).
    _listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in COMMANDS:
            module_name, summary = COMMANDS[cmd_name]
            if self._listing:
                return click.Command(cmd_name, help=summary)
            module = importlib.import_module(module_name, __package__)
            command = getattr(module, cmd_name)
            assert isinstance(command, click.Command)
            self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False


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
