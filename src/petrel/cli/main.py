"""``petrel``: one command, one subcommand per tool."""

from __future__ import annotations

import platform

import click

from petrel import __version__


@click.group(
    context_settings={"auto_envvar_prefix": "PETREL", "help_option_names": ["-h", "--help"]}
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


def _register() -> None:
    from .bench import bench
    from .broker import broker
    from .demo import demo
    from .manage import manage
    from .receive import receive
    from .send import send
    from .stat import stat

    for command in (bench, broker, demo, manage, receive, send, stat):
        cli.add_command(command)


def main() -> None:
    _register()
    cli()
