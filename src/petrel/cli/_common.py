"""What the client tools share: parsing ``key=value`` properties, error reporting."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click


def parse_property(text: str) -> tuple[str, Any]:
    """``key=value`` -> (key, value); values that look like ints, floats or booleans become them."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"expected key=value, got {text!r}", param_hint="--property")
    value: Any = raw
    lowered = raw.lower()
    if lowered in ("true", "false"):
        value = lowered == "true"
    else:
        for kind in (int, float):
            try:
                value = kind(raw)
                break
            except ValueError:
                continue
    return key, value


def fail(tool: str, error: BaseException) -> NoReturn:
    """Print one line naming the problem and exit 1."""
    click.echo(f"petrel {tool}: {error}", err=True)
    sys.exit(1)
