"""``petrel broker``: run the broker until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

import click

from petrel.broker import Broker
from petrel.driver import run
from petrel.errors import AmqpError
from petrel.server import ConfigError, ExitCode, capture_signals, configure_logging, load_settings

log = logging.getLogger("petrel.broker")


@click.command()
@click.option(
    "--listen",
    "listen",
    multiple=True,
    metavar="URL",
    help="Accept connections here (repeatable).  [default: amqp://127.0.0.1:5672]",
)
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
    config_file: str | None,
    data_dir: str | None,
    store: str | None,
    store_url: str | None,
    auto_create: bool | None,
    log_level: str | None,
) -> None:
    """Run the Petrel broker.

    With no options it serves AMQP on 127.0.0.1:5672, creates queues on first
    use and keeps durable messages in ./petrel-data.  Every option can also be
    set from the environment (PETREL_BROKER_LISTEN, PETREL_BROKER_DATA_DIR,
    ...).
    """
    try:
        settings = load_settings(
            config_file,
            listeners=[{"url": url} for url in listen] or None,
            data_dir=data_dir,
            store=store,
            store_url=store_url,
            auto_create=auto_create,
            log_level=log_level,
        )
    except ConfigError as exc:
        click.echo(f"petrel broker: {exc}", err=True)
        sys.exit(ExitCode.CONFIG)
    configure_logging(settings.log_level)
    sys.exit(run(_serve(Broker(settings))))


async def _serve(server: Broker) -> int:
    stop = asyncio.Event()
    with capture_signals(stop) as received:
        # A backup waits in start() until it is live: a signal must stop it there too.
        starting = asyncio.ensure_future(server.start())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await starting
            log.info("stopping on %s before becoming live", received[0].name)
            return ExitCode.OK
        try:
            starting.result()
        except OSError as exc:
            stopping.cancel()
            # The listener's message names the address; str(exc) would prefix "[Errno 98]".
            click.echo(f"petrel broker: {exc.strerror or exc}", err=True)
            return ExitCode.STARTUP
        except AmqpError as exc:
            stopping.cancel()
            click.echo(f"petrel broker: cannot start: {exc.description}", err=True)
            return ExitCode.STARTUP
        except Exception as exc:
            stopping.cancel()
            click.echo(f"petrel broker: cannot start: {exc}", err=True)
            return ExitCode.STARTUP
        addresses = ", ".join(f"{host}:{port}" for host, port in server.bound)
        log.info("petrel broker ready on %s", addresses)
        failing = asyncio.ensure_future(server.failed.wait())
        await asyncio.wait({stopping, failing}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        failing.cancel()
    if server.failure is not None:
        click.echo(f"petrel broker: {server.failure}", err=True)
        await server.stop(timeout=1.0)
        return ExitCode.FAILURE
    log.info("stopping on %s", received[0].name if received else "request")
    await server.stop()
    return ExitCode.OK
