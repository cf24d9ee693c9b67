"""``petrel stat``: a broker's state at a glance, in the manner of Qpid Dispatch's qdstat.

One section per run: the broker in general (the default), its connections,
links, addresses or queues, read over AMQP Management (QUERY, paged, so
thousands of queues are fine).  Tables are for people: the columns that
matter, abbreviated, fitted to the terminal's width (``COLUMNS``; 80 when
the output is not a terminal).  ``--json`` and ``--csv`` are for scripts:
every attribute of every row, nothing cut.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import click

import petrel
from petrel.management import ManagementClient

from ._connect import Peer, Rows, connection_options, query_rows, run_management
from .manage import echo_json, jsonable

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["stat"]

#: How a column's values are shown: as text, right-aligned counts, yes/no, or the time
#: since an epoch-seconds instant.
Style = Literal["text", "count", "flag", "age"]


@dataclass(frozen=True, slots=True)
class Column:
    """One table column: the attribute it shows, its (short) header, how to show it."""

    attribute: str
    header: str
    style: Style = "text"


@dataclass(frozen=True, slots=True)
class Section:
    """What ``petrel stat`` can show: an entity type, and its table's columns.

    A column whose attribute the type does not have is left out.
    """

    title: str
    entity_type: str
    columns: tuple[Column, ...] = ()


GENERAL = Section("Broker", "petrel.broker")
SECTIONS = {
    "general": GENERAL,
    "connections": Section(
        "Connections",
        "petrel.connection",
        (
            Column("identity", "id"),
            Column("host", "host"),
            Column("container", "container"),
            Column("user", "user"),
            Column("sasl", "sasl"),
            Column("tls", "tls", "flag"),
            Column("sessions", "sess", "count"),
            Column("links", "links", "count"),
            Column("opened", "age", "age"),
        ),
    ),
    "links": Section(
        "Links",
        "petrel.link",
        (
            Column("identity", "id"),
            Column("connection", "conn"),
            Column("direction", "dir"),
            Column("address", "address"),
            Column("credit", "credit", "count"),
            Column("unsettled", "unsettled", "count"),
            Column("delivered", "delivered", "count"),
        ),
    ),
    "addresses": Section(
        "Addresses",
        "petrel.address",
        (
            Column("name", "address"),
            Column("routing", "routing"),
            Column("declared", "declared", "flag"),
            Column("queues", "queues", "count"),
            Column("consumers", "cons", "count"),
            Column("depth", "depth", "count"),
        ),
    ),
    "queues": Section(
        "Queues",
        "petrel.queue",
        (
            Column("name", "queue"),
            Column("depth", "depth", "count"),
            Column("unacknowledged", "unack", "count"),
            Column("consumers", "cons", "count"),
            Column("enqueued", "enq", "count"),
            Column("acknowledged", "acked", "count"),
            Column("expired", "exp", "count"),
            Column("dead_lettered", "dead", "count"),
        ),
    ),
}


# --- showing values -----------------------------------------------------------------------


def duration(seconds: float) -> str:
    """``45s``, ``12m05s``, ``3h07m``, ``2d04h``: a span of time, coarser as it grows."""
    total = max(int(seconds), 0)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _epoch_seconds(value: Any) -> float | None:
    if isinstance(value, petrel.Timestamp):
        return int(value) / 1000.0  # an AMQP timestamp counts milliseconds
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def show(value: Any, style: Style = "text", now: float | None = None) -> str:
    """A value as a table cell shows it."""
    if value is None:
        return ""
    if style == "age":
        instant = _epoch_seconds(value)
        if instant is not None:
            return duration((time.time() if now is None else now) - instant)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict | list | tuple):
        return json.dumps(jsonable(value))
    return str(jsonable(value))


def _general_value(key: str, value: Any) -> str:
    if key == "uptime" and isinstance(value, int | float) and not isinstance(value, bool):
        return duration(value)
    return show(value)


# --- output -------------------------------------------------------------------------------


def general_table(entity: dict[str, Any]) -> Table:
    """The broker entity as label/value lines (``dead lettered  3``)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=GENERAL.title, title_justify="left", box=None, show_header=False)
    table.add_column("attribute", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key, value in entity.items():
        if key in ("identity", "type"):
            continue
        table.add_row(Text(key.replace("_", " ")), Text(_general_value(key, value)))
    return table


def section_table(section: Section, found: Rows, limit: int | None) -> Table:
    """The rows as a table of the section's columns that the type has."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    columns = [c for c in section.columns if c.attribute in found.names]
    caption = f"the first {limit} shown (--limit)" if found.more else None
    table = Table(
        title=section.title,
        title_justify="left",
        caption=caption,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for column in columns:
        if column.style == "text":
            # Text columns give up width first; a value too long is cut with an ellipsis.
            table.add_column(column.header, overflow="ellipsis", min_width=4)
        else:
            table.add_column(column.header, justify="right", no_wrap=True)
    now = time.time()
    for row in found.rows:
        cells = [Text(show(row.get(c.attribute), c.style, now)) for c in columns]
        table.add_row(*cells)
    return table


def _print_table(table: Table) -> None:
    # rich is imported only to print a table: --json and --csv start faster without it.
    from rich.console import Console

    Console(highlight=False).print(table)


def write_csv(names: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """A header line of attribute names, then one line per row; compound values as JSON."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow([_csv_value(row.get(name)) for name in names])


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list | tuple):
        return json.dumps(jsonable(value))
    return jsonable(value)


# --- the command --------------------------------------------------------------------------


@click.command()
@click.option("-g", "--general", is_flag=True, help="The broker as a whole (the default).")
@click.option("-c", "--connections", is_flag=True, help="Client connections.")
@click.option("-l", "--links", is_flag=True, help="Links, with credit and unsettled counts.")
@click.option("-a", "--addresses", is_flag=True, help="Addresses and their routing.")
@click.option("-q", "--queues", is_flag=True, help="Queues: depth and message counters.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with every attribute, for scripts.")
@click.option("--json", "as_json", is_flag=True, help="JSON with every attribute, for scripts.")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many rows.")
@click.option(
    "--timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds allowed for connecting and for each request.",
)
@connection_options
def stat(
    general: bool,
    connections: bool,
    links: bool,
    addresses: bool,
    queues: bool,
    as_csv: bool,
    as_json: bool,
    limit: int | None,
    timeout: float,
    peer: Peer,
) -> None:
    """Show a broker's state: one section, as a table, CSV or JSON.

    --json prints an object for -g and a list of objects for the others.
    Exit status: 0 on success; 1 when the broker cannot be reached or
    refuses (one line on stderr, with the management status code); 2 on bad
    usage.
    """
    chosen = [
        name
        for name, flag in (
            ("general", general),
            ("connections", connections),
            ("links", links),
            ("addresses", addresses),
            ("queues", queues),
        )
        if flag
    ]
    if len(chosen) > 1:
        raise click.UsageError("choose one of -g, -c, -l, -a and -q")
    if as_csv and as_json:
        raise click.UsageError("choose one of --csv and --json")
    section = SECTIONS[chosen[0] if chosen else "general"]

    async def work(client: ManagementClient) -> Rows:
        return await query_rows(
            client, section.entity_type, limit=1 if section is GENERAL else limit
        )

    found = run_management("stat", peer, timeout, work)
    if section is GENERAL:
        if not found.rows:
            click.echo(f"petrel stat: the peer has no {GENERAL.entity_type} entity", err=True)
            sys.exit(1)
        entity = found.rows[0]
        if as_json:
            echo_json(entity)
        elif as_csv:
            write_csv(found.names, [entity])
        else:
            _print_table(general_table(entity))
        return
    if as_json:
        echo_json(found.rows)
    elif as_csv:
        write_csv(found.names, found.rows)
    else:
        _print_table(section_table(section, found, limit))
