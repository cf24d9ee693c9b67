"""``petrel send``: send messages to an address."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

import petrel

from ._common import fail, parse_property
from ._connect import Peer, connection_options


@click.command()
@click.argument("address")
@click.option("--count", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--body", default="hello", show_default=True, help="The message body (a string).")
@click.option(
    "--file",
    "body_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Send this file's bytes as the body instead.",
)
@click.option(
    "--property",
    "properties",
    multiple=True,
    metavar="KEY=VALUE",
    help="An application property (repeatable); numbers and true/false keep their type.",
)
@click.option("--subject", help="The message subject.")
@click.option("--durable", is_flag=True, help="Ask the broker to keep the messages on disk.")
@click.option("--priority", type=click.IntRange(0, 9), help="Message priority, 0-9.")
@click.option("--ttl", type=float, help="Seconds the message may live.")
@click.option(
    "--at-most-once", is_flag=True, help="Send pre-settled: do not wait for acknowledgements."
)
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to allow.")
@connection_options
def send(
    address: str,
    count: int,
    body: str,
    body_file: Path | None,
    properties: tuple[str, ...],
    subject: str | None,
    durable: bool,
    priority: int | None,
    ttl: float | None,
    at_most_once: bool,
    timeout: float,
    peer: Peer,
) -> None:
    """Send COUNT messages to ADDRESS and wait until the peer has accepted them."""
    payload: Any = body_file.read_bytes() if body_file is not None else body
    app_properties = dict(parse_property(p) for p in properties) or None
    options: dict[str, Any] = {"durable": durable}
    if priority is not None:
        options["priority"] = priority
    if ttl is not None:
        options["ttl"] = ttl
    message = petrel.Message(
        payload, subject=subject, application_properties=app_properties, **options
    )
    try:
        asyncio.run(_send(peer, address, message, count, at_most_once, timeout))
    except (petrel.AmqpError, OSError, TimeoutError) as exc:
        fail("send", exc)
    click.echo(f"sent {count} message{'s' if count != 1 else ''} to {address}")


async def _send(
    peer: Peer,
    address: str,
    message: petrel.Message,
    count: int,
    at_most_once: bool,
    timeout: float,
) -> None:
    async with asyncio.timeout(timeout):
        conn = await peer.connect(timeout)
        try:
            sender = await conn.open_sender(address, at_most_once=at_most_once)
            pending = [await sender.send(message, wait=False) for _ in range(count)]
            await asyncio.gather(*pending)
            await sender.close()
        finally:
            await conn.close()
