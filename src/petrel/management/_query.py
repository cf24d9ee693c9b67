"""QUERY: the rows of many entity types in a stable order, paged, in bounded memory.

Private to :mod:`petrel.management`; the agent calls :func:`run_query`.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeAlias

from ..types import Int
from .errors import BadRequest
from .protocol import ATTRIBUTE_NAMES, RESULTS, ManagementReply, ManagementRequest
from .schema import EntityType

__all__ = ["Entity", "run_query"]

#: An entity as the provider reports it: attribute name to value.
Entity: TypeAlias = Mapping[str, Any]
#: A row and the key that orders it: (type, name, identity).
_Row: TypeAlias = tuple[tuple[str, str, str], list[Any]]


async def run_query(
    fetch: Callable[[str], Awaitable[Iterable[Entity]]],
    types: Sequence[EntityType],
    request: ManagementRequest,
    max_count: int,
) -> ManagementReply:
    """The QUERY reply for the entities of ``types``, each type's fetched with ``fetch``.

    Rows are ordered by type, then name, then identity, so that the same
    query gives the same order and pages line up.  ``offset`` and ``count``
    (application-properties) pick the page; ``count`` is capped at
    ``max_count``, and a reply the cap cut short says so in its description.
    The reply's ``count`` property is the number of rows it carries.
    Raises :class:`~petrel.management.errors.BadRequest` for a bad
    ``offset``, ``count`` or ``attributeNames``.
    """
    offset = _whole_number(request.properties, "offset") or 0
    wanted = _whole_number(request.properties, "count")
    count = max_count if wanted is None else min(wanted, max_count)
    names = _names(request.body, types)
    positions = {name: index for index, name in enumerate(names)}
    # Only offset + count + 1 rows are ever kept (the one extra says whether the cap cut the
    # result short): memory stays bounded by the page asked for, whatever the entity count.
    keep = offset + count + 1
    ordered: list[_Row] = []
    for entity_type in types:
        entities = await fetch(entity_type.name)
        candidates = _rows(entity_type, entities, names, positions)
        ordered = heapq.nsmallest(keep, itertools.chain(ordered, candidates), key=_order)
    page = [row for _, row in ordered[offset : offset + count]]
    description = None
    if len(ordered) > offset + count and (wanted is None or wanted > count):
        description = (
            f"OK: the first {count} results from offset {offset}; "
            f"at most {max_count} per request, page with offset and count"
        )
    return ManagementReply(
        200,
        description,
        {ATTRIBUTE_NAMES: names, RESULTS: page},
        properties={"count": Int(len(page))},
    )


def _order(row: _Row) -> tuple[str, str, str]:
    return row[0]


def _names(body: Any, types: Sequence[EntityType]) -> list[str]:
    """The attribute names asked for; all of the types' (secrets aside) when none are."""
    known: dict[str, None] = {}
    for entity_type in types:
        known.update((a.name, None) for a in entity_type.attributes if not a.secret)
    if body is None:
        return list(known)
    if not isinstance(body, dict):
        raise BadRequest(f"QUERY takes a map body with {ATTRIBUTE_NAMES!r}")
    asked = body.get(ATTRIBUTE_NAMES)
    if asked is None or (isinstance(asked, list) and not asked):
        return list(known)
    if not isinstance(asked, list) or not all(isinstance(n, str) for n in asked):
        raise BadRequest(f"{ATTRIBUTE_NAMES!r} must be a list of strings")
    # No duplicates and no unknown names: a row is never wider than the types' attributes.
    if len(set(asked)) != len(asked):
        raise BadRequest(f"{ATTRIBUTE_NAMES!r} names an attribute twice")
    every = {a.name for t in types for a in t.attributes}
    unknown = [name for name in asked if name not in every]
    if unknown:
        where = types[0].name if len(types) == 1 else "the types queried"
        raise BadRequest(f"unknown attribute {unknown[0]!r} for {where}")
    return [str(name) for name in asked]


def _rows(
    entity_type: EntityType,
    entities: Iterable[Entity],
    names: list[str],
    positions: Mapping[str, int],
) -> Iterator[_Row]:
    """Each entity as a row of ``names`` (null where the type lacks one, or it is secret)."""
    shown = [
        name
        for name in names
        if (attribute := entity_type.attribute(name)) is not None and not attribute.secret
    ]
    type_position = positions.get("type")
    for entity in entities:
        row: list[Any] = [None] * len(names)
        for name in shown:
            row[positions[name]] = entity.get(name)
        if type_position is not None:
            row[type_position] = entity_type.name
        key = (entity_type.name, str(entity.get("name")), str(entity.get("identity")))
        yield key, row


def _whole_number(properties: Mapping[str, Any], key: str) -> int | None:
    value = properties.get(key)
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequest(f"{key} must be a whole number, not {value!r}")
    return int(value)
