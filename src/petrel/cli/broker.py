"""``petrel broker``: run the broker until SIGINT or SIGTERM."""

from __future__ import annotations

import sys

import click

from petrel.broker import Broker
from petrel.driver import run
from petrel.server import ConfigError, ExitCode, configure_logging, load_settings, serve
from petrel.server.http import apply_http_options, http_listeners


@click.command()
@click.option(
    "--listen",
    "listen",
    multiple=True,
    metavar="URL",
    help="Accept connections here (repeatable).  [default: amqp://127.0.0.1:5672]",
)
@click.option(
    "--http",
    "http_url",
    metavar="URL",
    help="Serve /metrics and AMQP over WebSockets here (http:// or https://).  "
    "[default: http://127.0.0.1:8672 when that port is free]",
)
@click.option("--no-http", is_flag=True, help="Serve no HTTP at all.")
@click.option(
    "--config", "config_file", type=click.Path(dir_okay=False), help="A TOML config file."
)
@click.option("--data-dir", help="Where the store keeps its files.  [default: ./petrel-data]")
@click.option(
    "--store",
    type=click.Choice(["memory", "sqlite", "postgresql"]),
    help="Where messages are kept.  [default: sqlite]",
)
@click.option("--store-url", help="PostgreSQL URL for --store postgresql.")
@click.option(
    "--auto-create/--no-auto-create",
    default=None,
    help="Create queues on first use.  [default: on]",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug", "trace"]),
    help="How much to log.  [default: info]",
)
def broker(
    listen: tuple[str, ...],
    http_url: str | None,
    no_http: bool,
    config_file: str | None,
    data_dir: str | None,
    store: str | None,
    store_url: str | None,
    auto_create: bool | None,
    log_level: str | None,
) -> None:
    """Run the Petrel broker.

    With no options it serves AMQP on 127.0.0.1:5672 and HTTP (/metrics, AMQP over
    WebSockets) on 127.0.0.1:8672 when that port is free, creates queues on first
    use and keeps durable messages in ./petrel-data.  Every option can also be
    set from the environment (PETREL_BROKER_LISTEN, PETREL_BROKER_DATA_DIR,
    ...).
    """
    try:
        listeners = None
        if listen:
            # --listen replaces the file's AMQP listeners; its HTTP one stays.
            http = http_listeners(load_settings(config_file)) if config_file else []
            listeners = [{"url": url} for url in listen] + [
                entry.model_dump(exclude_unset=True) for entry in http
            ]
        settings = load_settings(
            config_file,
            listeners=listeners,
            data_dir=data_dir,
            store=store,
            store_url=store_url,
            auto_create=auto_create,
            log_level=log_level,
        )
        settings = apply_http_options(settings, url=http_url, enabled=not no_http)
    except ConfigError as exc:
        click.echo(f"petrel broker: {exc}", err=True)
        sys.exit(ExitCode.CONFIG)
    configure_logging(settings.log_level)
    try:
        server = Broker(settings)
    except ConfigError as exc:  # the users file is unreadable
        click.echo(f"petrel broker: {exc}", err=True)
        sys.exit(ExitCode.CONFIG)
    sys.exit(run(serve(server, "petrel broker")))
