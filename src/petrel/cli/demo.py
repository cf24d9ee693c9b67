"""``petrel demo``: show the codec at work until the broker is the main job."""

from __future__ import annotations

import click

from petrel import Symbol, UInt, codec, spec


@click.command()
def demo() -> None:
    """Encode a few AMQP values and a performative, decode them back and print both."""
    samples = [
        ("uint", UInt(5)),
        ("symbol", Symbol("amqp:accepted:list")),
        ("map", {Symbol("x-opt-priority"): 4, "key": [1, "two", None]}),
        ("open", spec.Open(container_id="petrel-demo", max_frame_size=65536)),
    ]
    for name, value in samples:
        data = codec.encode(value)
        click.echo(f"{name:8} {data.hex(' ')}")
        click.echo(f"{'':8} -> {spec.decode(data)!r}")
