"""``petrel stat``: a broker's or a router's state at a glance, in the manner of Qpid
Dispatch's qdstat.

One section per run: the server in general (the default), its connections,
links, addresses, a broker's queues or a router's nodes (the other routers of
its network), read over AMQP Management (QUERY, paged, so thousands of queues
are fine).  The general and address sections differ between a broker and a
router, and queues and nodes exist on one of them only: for those ``petrel
stat`` first asks the node which entity types it has (GET-TYPES: a router has
``petrel.router``), one small request.  ``--router ID`` reads router ID's
management node anywhere in the network of the router connected to.

Tables are for people: the columns that matter, abbreviated, fitted to the
terminal's width (``COLUMNS``; 80 when the output is not a terminal).
``--json`` and ``--csv`` are for scripts: every attribute of every row,
nothing cut.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import click

import petrel
from petrel.management import ManagementClient

from ._connect import Peer, Rows, management_options, query_rows, run_management
from .manage import echo_json, jsonable

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["stat"]

#: What answers: a broker or a router.
Kind = Literal["broker", "router"]

#: How a column's values are shown: as text, right-aligned counts, yes/no, the time
#: since an epoch-seconds instant, or a list as its items separated by commas.
Style = Literal["text", "count", "flag", "age", "list"]


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


_CONNECTIONS = Section(
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
)
_LINKS = Section(
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
)

#: Each kind's sections by name (the ``-g``, ``-c``, ... flags' long names).
SECTIONS: dict[Kind, dict[str, Section]] = {
    "broker": {
        "general": Section("Broker", "petrel.broker"),
        "connections": _CONNECTIONS,
        "links": _LINKS,
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
    },
    "router": {
        "general": Section("Router", "petrel.router"),
        "connections": _CONNECTIONS,
        "links": _LINKS,
        "addresses": Section(
            "Addresses",
            "petrel.router.address",
            (
                Column("address", "address"),
                Column("distribution", "distrib"),
                Column("local_receivers", "local", "count"),
                Column("local_senders", "senders", "count"),
                Column("remote_routers", "remote", "list"),
                Column("delivered_in", "in", "count"),
                Column("delivered_out", "out", "count"),
            ),
        ),
        "nodes": Section(
            "Routers",
            "petrel.router.node",
            (
                Column("id", "router id"),
                Column("next_hop", "next hop"),
                Column("cost", "cost", "count"),
                Column("neighbours", "neighbours", "list"),
                Column("valid_origins", "valid origins", "list"),
                Column("last_topology_change", "last change", "age"),
                Column("reachable", "reachable", "flag"),
            ),
        ),
    },
}

#: The sections every kind shows the same way: no need to ask what the peer is.
SAME_FOR_ALL = frozenset(
    name for name, section in SECTIONS["broker"].items() if SECTIONS["router"].get(name) is section
)

#: The flag of each section, for messages.
FLAGS = {
    "general": "-g",
    "connections": "-c",
    "links": "-l",
    "addresses": "-a",
    "queues": "-q",
    "nodes": "-n",
}

#: The entity type only a router has.
ROUTER_TYPE = "petrel.router"


def peer_kind(types: Mapping[str, Any]) -> Kind:
    """What the management node is, from its GET-TYPES answer (type -> types it extends)."""
    return "router" if ROUTER_TYPE in types else "broker"


def section_for(name: str, kind: Kind) -> Section | None:
    """The section called ``name`` on a ``kind``; ``None`` when that kind has none."""
    return SECTIONS[kind].get(name)


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
    if style == "list" and isinstance(value, list | tuple):
        return ", ".join(show(item) for item in value)
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


def general_table(entity: dict[str, Any], title: str = "Broker") -> Table:
    """The broker or router entity as label/value lines (``dead lettered  3``)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", box=None, show_header=False)
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
        if column.style in ("text", "list"):
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


async def read_section(
    client: ManagementClient, name: str, limit: int | None
) -> tuple[Kind | None, Section | None, Rows]:
    """Read section ``name``: ask what the peer is first when the section depends on it.

    Returns the peer's kind (``None`` when it was not asked), the section
    (``None`` when that kind has none: nothing was read) and the rows.
    """
    kind: Kind | None = None
    if name in SAME_FOR_ALL:
        section = SECTIONS["broker"][name]
    else:
        kind = peer_kind(await client.get_types())
        found = section_for(name, kind)
        if found is None:
            return kind, None, Rows([])
        section = found
    general = name == "general"
    rows = await query_rows(client, section.entity_type, limit=1 if general else limit)
    return kind, section, rows


@click.command()
@click.option(
    "-g", "--general", is_flag=True, help="The broker or router as a whole (the default)."
)
@click.option("-c", "--connections", is_flag=True, help="Connections.")
@click.option("-l", "--links", is_flag=True, help="Links, with credit and unsettled counts.")
@click.option("-a", "--addresses", is_flag=True, help="Addresses and their routing.")
@click.option("-q", "--queues", is_flag=True, help="A broker's queues: depth and counters.")
@click.option(
    "-n", "--nodes", is_flag=True, help="A router's network: each router, its next hop and cost."
)
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
@management_options
def stat(
    general: bool,
    connections: bool,
    links: bool,
    addresses: bool,
    queues: bool,
    nodes: bool,
    as_csv: bool,
    as_json: bool,
    limit: int | None,
    timeout: float,
    peer: Peer,
) -> None:
    """Show a broker's or a router's state: one section, as a table, CSV or JSON.

    --json prints an object for -g and a list of objects for the others.
    --router ID shows router ID of the network the router at --url belongs to.
    Exit status: 0 on success; 1 when the peer cannot be reached or refuses
    (one line on stderr, with the management status code), or has no such
    section (-q on a router, -n on a broker); 2 on bad usage.
    """
    chosen = [
        name
        for name, flag in (
            ("general", general),
            ("connections", connections),
            ("links", links),
            ("addresses", addresses),
            ("queues", queues),
            ("nodes", nodes),
        )
        if flag
    ]
    if len(chosen) > 1:
        raise click.UsageError("choose one of -g, -c, -l, -a and -q (or -n, a router's nodes)")
    if as_csv and as_json:
        raise click.UsageError("choose one of --csv and --json")
    name = chosen[0] if chosen else "general"

    async def work(client: ManagementClient) -> tuple[Kind | None, Section | None, Rows]:
        return await read_section(client, name, limit)

    kind, section, found = run_management("stat", peer, timeout, work)
    if section is None:
        click.echo(f"petrel stat: the peer is a {kind}: it has no {FLAGS[name]} section", err=True)
        sys.exit(1)
    if name == "general":
        if not found.rows:
            click.echo(f"petrel stat: the peer has no {section.entity_type} entity", err=True)
            sys.exit(1)
        entity = found.rows[0]
        if as_json:
            echo_json(entity)
        elif as_csv:
            write_csv(found.names, [entity])
        else:
            _print_table(general_table(entity, section.title))
        return
    if as_json:
        echo_json(found.rows)
    elif as_csv:
        write_csv(found.names, found.rows)
    else:
        _print_table(section_table(section, found, limit))
