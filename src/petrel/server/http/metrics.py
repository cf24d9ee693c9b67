"""``/metrics``: the server's own counters in the Prometheus text format.

Nothing here counts.  On each request :func:`take_snapshot` reads the
server's management entities (the same ones ``petrel stat`` shows: queues,
addresses, the router, its nodes and addresses, and on request connections
and links) and the store's commit figures; :class:`PetrelCollector` turns
that snapshot into metric families for ``prometheus_client`` to format.  So
there is no second set of counters to keep in step, and the hot path pays
nothing for a scrape it does not get.

Each series is declared once below (:class:`Series`): its metric name, the
entity attribute it reads, whether it is a counter, and its help text.
docs/http.md lists them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from ...management import ManagementAgent
from ...store import CommitStats

__all__ = [
    "ADDRESS_SERIES",
    "QUEUE_SERIES",
    "ROUTER_ADDRESS_SERIES",
    "ROUTER_NODE_SERIES",
    "ROUTER_SERIES",
    "PetrelCollector",
    "Series",
    "Snapshot",
    "take_snapshot",
]

PREFIX = "petrel_"

#: One labelled sample source: the label values, and the entity (or sums) to read.
Row = tuple[tuple[str, ...], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Series:
    """One metric read from one attribute of an entity type."""

    name: str
    """The metric name after ``petrel_`` (a counter gets ``_total`` when written)."""
    attribute: str
    """The entity attribute it reads; a list counts its items."""
    help: str
    counter: bool = False


def _counter(name: str, attribute: str, help: str) -> Series:
    return Series(name, attribute, help, counter=True)


def _gauge(name: str, attribute: str, help: str) -> Series:
    return Series(name, attribute, help)


#: Per queue (and per topic subscription); labels ``queue``, ``address`` and ``kind``
#: (``queue`` or ``subscription``).
QUEUE_SERIES = [
    _counter("queue_messages_in", "enqueued", "Messages that entered the queue."),
    _counter("queue_messages_out", "delivered", "Messages sent to consumers, redeliveries too."),
    _counter("queue_messages_acknowledged", "acknowledged", "Messages consumers accepted."),
    _counter("queue_messages_rejected", "rejected", "Messages consumers rejected."),
    _counter("queue_messages_released", "released", "Messages consumers released."),
    _counter("queue_messages_modified", "modified", "Messages consumers settled as modified."),
    _counter("queue_messages_expired", "expired", "Messages that expired in the queue."),
    _counter(
        "queue_messages_dead_lettered", "dead_lettered", "Messages rejected or out of attempts."
    ),
    _counter(
        "queue_credit_stalls",
        "credit_stalls",
        "Times a producer was left without credit because the queue was full.",
    ),
    _gauge("queue_depth_messages", "depth", "Messages in the queue, unsettled ones too."),
    _gauge("queue_depth_bytes", "bytes", "Bytes of the messages in the queue."),
    _gauge("queue_consumers", "consumers", "Consumers and browsers attached."),
    _gauge(
        "queue_unsettled_deliveries", "unacknowledged", "Messages delivered and not settled yet."
    ),
    _gauge(
        "queue_unsettled_deliveries_over_10s",
        "unsettled_10s",
        "Messages delivered over 10 s ago and not settled yet.",
    ),
]

#: Per address: the sums of :data:`QUEUE_SERIES` over the address's queue (anycast) or
#: subscriptions (multicast, where each copy counts); label ``address`` and ``routing``.
ADDRESS_SERIES = [
    Series("address_" + s.name.removeprefix("queue_"), s.attribute, s.help, s.counter)
    for s in QUEUE_SERIES
]

#: The router itself (no labels).
ROUTER_SERIES = [
    _counter("router_deliveries_in", "deliveries_in", "Messages that came into the router."),
    _counter(
        "router_deliveries_out", "deliveries_out", "Messages handed to receivers on this router."
    ),
    _counter("router_deliveries_released", "deliveries_released", "Deliveries settled RELEASED."),
    _counter(
        "router_deliveries_modified",
        "deliveries_modified",
        "Deliveries settled MODIFIED: their path broke after they left.",
    ),
    _counter("router_deliveries_looped", "deliveries_looped", "Messages dropped for coming back."),
    _counter("router_deliveries_resent", "deliveries_resent", "Released deliveries sent again."),
    _counter(
        "router_deliveries_delayed_1s", "deliveries_delayed_1s", "Outcomes that took over 1 s."
    ),
    _counter(
        "router_deliveries_delayed_10s",
        "deliveries_delayed_10s",
        "Outcomes that took over 10 s.",
    ),
    _counter(
        "router_topology_changes",
        "topology_changes",
        "Convergence events: how often the least-cost paths changed.",
    ),
    _gauge("router_deliveries_unsettled", "deliveries_unsettled", "Copies sent, not settled."),
    _gauge(
        "router_deliveries_unsettled_over_10s",
        "deliveries_stuck",
        "Copies sent over 10 s ago and not settled.",
    ),
    _gauge("router_deliveries_waiting", "deliveries_waiting", "Copies waiting for credit."),
    _gauge(
        "router_links_blocked", "links_blocked", "Links without credit for over 10 s, copies held."
    ),
    _gauge("router_nodes_reachable", "nodes", "Other routers reachable now."),
    _gauge("router_neighbours", "neighbours", "Routers connected directly."),
    _gauge("router_addresses", "addresses", "Addresses in the table."),
    _gauge("router_links", "links", "Attached links."),
]

#: Per router of the network as this one sees it; label ``node``.
ROUTER_NODE_SERIES = [
    _gauge("router_node_reachable", "reachable", "1 when there is a path to the router now."),
    _gauge("router_node_cost", "cost", "The cost of the least-cost path to it."),
    _gauge("router_node_addresses", "addresses", "Mobile addresses it has receivers for."),
    _gauge("router_node_neighbours", "neighbours", "The routers it is connected to."),
    _gauge(
        "router_node_last_topology_change_seconds",
        "last_topology_change",
        "When this router's paths to it last changed (epoch seconds).",
    ),
]

#: Per address in the router's table; labels ``address`` and ``distribution``.
ROUTER_ADDRESS_SERIES = [
    _counter("router_address_delivered_in", "delivered_in", "Messages to it that came in here."),
    _counter(
        "router_address_delivered_out",
        "delivered_out",
        "Messages to it handed to local receivers.",
    ),
    _gauge("router_address_local_receivers", "local_receivers", "Receiving links here."),
    _gauge("router_address_local_senders", "local_senders", "Sending links here."),
    _gauge("router_address_remote_routers", "remote_routers", "Other routers with receivers."),
]

#: Per connection (``[http] connection_metrics = true``); labels ``connection``,
#: ``container``, ``user``, ``listener``.
CONNECTION_SERIES = [
    _gauge("connection_sessions", "sessions", "Its sessions."),
    _gauge("connection_links", "links", "Its attached links."),
]

#: Per link (likewise); labels ``connection``, ``link``, ``address``, ``direction``.
LINK_SERIES = [
    _counter("link_messages", "delivered", "Messages carried on the link."),
    _gauge("link_credit", "credit", "Credit the sender holds."),
    _gauge("link_unsettled_deliveries", "unsettled", "Deliveries not settled yet."),
]

#: The server (no labels), from ``petrel.broker`` or ``petrel.router``.
SERVER_SERIES = [
    _gauge("connections", "connections", "Live connections."),
    _counter("connections_accepted", "connections_total", "Connections accepted."),
    _gauge("uptime_seconds", "uptime", "Seconds since the server started."),
]

_BROKER = "petrel.broker"
_ROUTER = "petrel.router"
_QUEUE = "petrel.queue"
_SUBSCRIPTION = "petrel.subscription"
_ADDRESS = "petrel.address"
_NODE = "petrel.router.node"
_ROUTER_ADDRESS = "petrel.router.address"
_CONNECTION = "petrel.connection"
_LINK = "petrel.link"
_ALWAYS = (_BROKER, _ROUTER, _QUEUE, _SUBSCRIPTION, _ADDRESS, _NODE, _ROUTER_ADDRESS)
_ON_REQUEST = (_CONNECTION, _LINK)


@dataclass(frozen=True, slots=True)
class _PerEntity:
    """The series of one entity type: one sample per entity, labelled by its attributes."""

    type: str
    series: Sequence[Series]
    labels: dict[str, str]
    """Label name: the attribute whose value it shows (``""`` when missing)."""


#: The entity types whose series come last on the page, in the order they are written.
_PER_ENTITY = [
    _PerEntity(_ROUTER, ROUTER_SERIES, {}),
    _PerEntity(_NODE, ROUTER_NODE_SERIES, {"node": "name"}),
    _PerEntity(
        _ROUTER_ADDRESS, ROUTER_ADDRESS_SERIES, {"address": "name", "distribution": "distribution"}
    ),
    _PerEntity(
        _CONNECTION,
        CONNECTION_SERIES,
        {"connection": "name", "container": "container", "user": "user", "listener": "listener"},
    ),
    _PerEntity(
        _LINK,
        LINK_SERIES,
        {
            "connection": "connection",
            "link": "name",
            "address": "address",
            "direction": "direction",
        },
    ),
]


@dataclass(slots=True)
class Snapshot:
    """The entities and store figures one scrape reads, taken at one moment."""

    kind: str
    """``broker`` or ``router``."""
    entities: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """By entity type name: every entity of the type."""
    commits: CommitStats | None = None
    """The store's commit figures (a copy), if it has a durable store."""
    version: str = ""


async def take_snapshot(
    kind: str,
    agent: ManagementAgent,
    *,
    commit_stats: CommitStats | None = None,
    connection_metrics: bool = False,
    version: str = "",
) -> Snapshot:
    """Read what the metrics need from ``agent``'s entities (see the module docstring)."""
    wanted = _ALWAYS + (_ON_REQUEST if connection_metrics else ())
    snapshot = Snapshot(kind, version=version)
    for name in wanted:
        if name in agent.types:
            snapshot.entities[name] = [dict(e) for e in await agent.provider.query(name)]
    snapshot.commits = commit_stats.copy() if commit_stats is not None else None
    return snapshot


class PetrelCollector:
    """A ``prometheus_client`` collector over one :class:`Snapshot`."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        snapshot = self.snapshot
        entities = snapshot.entities
        rows: list[Row]
        info = GaugeMetricFamily(
            PREFIX + "server_info",
            "The server: its kind and Petrel's version.",
            labels=["kind", "id", "version"],
        )
        server = (entities.get(_BROKER) or entities.get(_ROUTER) or [{}])[0]
        info.add_metric([snapshot.kind, str(server.get("name", "")), snapshot.version], 1)
        yield info
        if server:
            yield from _families(SERVER_SERIES, [((), server)], ())
        queues = [*entities.get(_QUEUE, ()), *entities.get(_SUBSCRIPTION, ())]
        if _QUEUE in entities:
            rows = [((q["name"], str(q.get("address") or ""), _kind(q)), q) for q in queues]
            yield from _families(QUEUE_SERIES, rows, ("queue", "address", "kind"))
        if _ADDRESS in entities:
            yield from _families(
                ADDRESS_SERIES, _address_rows(entities[_ADDRESS], queues), ("address", "routing")
            )
        if snapshot.commits is not None:
            yield from _commit_families(snapshot.commits)
        for per in _PER_ENTITY:
            if per.type in entities:
                rows = _rows(entities[per.type], per.labels)
                yield from _families(per.series, rows, list(per.labels))


def _rows(entities: Iterable[dict[str, Any]], labels: dict[str, str]) -> list[Row]:
    """Each entity with the values of the attributes ``labels`` names, as label values."""
    return [(tuple(str(e.get(a) or "") for a in labels.values()), e) for e in entities]


def _kind(queue: dict[str, Any]) -> str:
    return "subscription" if queue.get("type") == _SUBSCRIPTION else "queue"


def _address_rows(
    addresses: Iterable[dict[str, Any]], queues: Sequence[dict[str, Any]]
) -> list[Row]:
    """Each address with its queues' figures summed (see :data:`ADDRESS_SERIES`)."""
    by_address: dict[str, list[dict[str, Any]]] = {}
    for queue in queues:
        by_address.setdefault(str(queue.get("address") or ""), []).append(queue)
    rows: list[Row] = []
    attributes = {s.attribute for s in ADDRESS_SERIES}
    for address in addresses:
        name = str(address["name"])
        mine = by_address.get(name, [])
        sums: dict[str, Any] = {a: sum(_number(q.get(a)) for q in mine) for a in attributes}
        rows.append(((name, str(address.get("routing") or "")), sums))
    return rows


def _number(value: Any) -> float:
    """An attribute as a sample value: numbers as they are, booleans 0/1, lists their
    length, anything missing 0."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, (list, tuple, set, dict)):
        return float(len(value))
    return 0.0


def _families(
    series: Sequence[Series],
    rows: Sequence[Row],
    labels: Sequence[str],
) -> Iterator[Metric]:
    for s in series:
        make: Callable[..., Any] = CounterMetricFamily if s.counter else GaugeMetricFamily
        family = make(PREFIX + s.name, s.help, labels=list(labels))
        for values, entity in rows:
            family.add_metric(list(values), _number(entity.get(s.attribute)))
        yield family


def _commit_families(stats: CommitStats) -> Iterator[Metric]:
    yield _histogram(
        "store_commit_seconds",
        "How long the store took to write one batch (one transaction, its fsync included).",
        stats.latency_bounds,
        stats.latency_counts,
        stats.latency_sum,
    )
    yield _histogram(
        "store_commit_batch_operations",
        "Operations written in one batch (group commit: the busier, the more per batch).",
        stats.batch_bounds,
        stats.batch_counts,
        stats.batch_sum,
    )


def _histogram(
    name: str, help: str, bounds: Sequence[float], counts: Sequence[int], total: float
) -> Metric:
    family = HistogramMetricFamily(PREFIX + name, help)
    cumulative = 0
    buckets = []
    for bound, count in zip(bounds, counts, strict=False):
        cumulative += count
        buckets.append((_le(bound), cumulative))
    cumulative += counts[-1]  # the +Inf bucket
    buckets.append(("+Inf", cumulative))
    family.add_metric([], buckets, total)
    return family


def _le(bound: float) -> str:
    """A bucket bound as Prometheus's own clients write it (``0.005``, ``1.0``)."""
    return repr(float(bound))
