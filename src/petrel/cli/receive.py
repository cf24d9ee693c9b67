"""``petrel receive``: receive (and accept) messages from an address."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click

import petrel

from ._common import fail
from ._connect import Peer, connection_options

#: The exit status when fewer messages arrived than asked for (none, without --count).
EXIT_TOO_FEW = 3


@click.command()
@click.argument("address")
@click.option(
    "--count", default=0, show_default=True, type=click.IntRange(min=0), help="0: until --timeout."
)
@click.option("--selector", help="Only messages matching this JMS selector.")
@click.option("--browse", is_flag=True, help="Look at the messages without taking them.")
@click.option(
    "--timeout",
    default=5.0,
    show_default=True,
    help="Stop after this many seconds without a message.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per message.")
@click.option("--verbose", "-v", is_flag=True, help="Print properties as well as bodies.")
@connection_options
def receive(
    address: str,
    count: int,
    selector: str | None,
    browse: bool,
    timeout: float,
    as_json: bool,
    verbose: bool,
    peer: Peer,
) -> None:
    """Receive messages from ADDRESS, print them and accept them.

    Exit status: 0 when messages arrived (all --count of them, if given); 3 when
    --timeout passed first with none arrived, or fewer than --count; 1 on an error
    (the broker unreachable, the address refused); 2 on bad usage.
    """
    try:
        got = asyncio.run(
            _receive(peer, address, count, selector, browse, timeout, as_json, verbose)
        )
    except (petrel.AmqpError, OSError) as exc:
        fail("receive", exc)
    if count and got < count:
        click.echo(
            f"petrel receive: only {got} of {count} messages from {address} (none for {timeout} s)",
            err=True,
        )
        raise SystemExit(EXIT_TOO_FEW)
    if not got:
        click.echo(f"petrel receive: no message arrived from {address} in {timeout} s", err=True)
        raise SystemExit(EXIT_TOO_FEW)


async def _receive(
    peer: Peer,
    address: str,
    count: int,
    selector: str | None,
    browse: bool,
    timeout: float,
    as_json: bool,
    verbose: bool,
) -> int:
    got = 0
    conn = await peer.connect(max(timeout, 5.0))
    try:
        credit = min(count, 100) if count else 100
        receiver = await conn.open_receiver(
            address, credit=credit, selector=selector, browse=browse
        )
        while not count or got < count:
            try:
                delivery = await receiver.receive(timeout=timeout)
            except petrel.Timeout:
                break
            _print(delivery.message, as_json, verbose)
            await delivery.accept()
            got += 1
        await receiver.close()
    finally:
        await conn.close()
    return got


def _print(message: petrel.Message, as_json: bool, verbose: bool) -> None:
    body = message.body
    if as_json:
        record: dict[str, Any] = {"body": _jsonable(body)}
        if message.application_properties:
            record["properties"] = _jsonable(message.application_properties)
        for name in ("message_id", "subject", "priority", "durable", "correlation_id"):
            value = getattr(message, name)
            if value is not None:
                record[name] = _jsonable(value)
        click.echo(json.dumps(record))
        return
    if isinstance(body, bytes):
        try:
            body = body.decode()
        except UnicodeDecodeError:
            body = body.hex()
    if verbose and message.application_properties:
        click.echo(f"{message.application_properties} {body}")
    else:
        click.echo(body)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value.hex()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
