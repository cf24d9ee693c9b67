"""docs/management.md documents every entity type, attribute and operation the broker
serves, and the limits it enforces, exactly: a type, attribute, operation or argument
added, removed or changed in the code and not in the guide fails here.

The broker's test (tests/broker/test_management.py) checks over the wire that the node
serves these same types, attributes and operations.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from petrel.broker.entities import CLOSE_TIMEOUT, MAX_BATCH, TYPES
from petrel.management import (
    MAX_QUERY_COUNT,
    Attribute,
    BadRequest,
    Conflict,
    EntityNotFound,
    EntityType,
    Forbidden,
    InternalError,
    OperationNotImplemented,
    Unauthenticated,
)
from petrel.management.protocol import ENTITY_OPERATIONS, NODE_OPERATIONS
from petrel.server.management import MAX_HELD_REPLIES, MAX_IN_FLIGHT, WINDOW

DOC = Path(__file__).resolve().parents[1] / "docs" / "management.md"
TEXT = DOC.read_text()
BY_NAME = {entity_type.name: entity_type for entity_type in TYPES}


def chapter(title: str) -> str:
    """The text of the ``## title`` chapter, up to the next one."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", TEXT, re.M | re.S)
    assert match, f"docs/management.md has no chapter {title!r}"
    return match.group(1)


def type_sections() -> dict[str, str]:
    """Each ``### `petrel.x``` section of the entity types chapter, by type name."""
    parts = re.split(r"^### `([^`]+)`\n", chapter("Entity types"), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def rows(text: str, header: str) -> list[list[str]]:
    """The body rows of the table whose header row starts with ``| header |``."""
    found: list[list[str]] = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if not line.startswith(f"| {header} |"):
            continue
        for row in lines[index + 2 :]:
            if not row.startswith("|"):
                break
            found.append([cell.strip() for cell in row.strip().strip("|").split(" | ")])
    return found


def unquote(cell: str) -> str:
    return cell.strip("`")


def access(entity_type: EntityType, attribute: Attribute) -> str:
    """What the guide's *access* column must say: which requests may set the attribute."""
    if attribute.secret:
        return "hidden"
    parts = []
    if "CREATE" in entity_type.allows and attribute.create:
        parts.append("CREATE")
    if "UPDATE" in entity_type.allows and attribute.writable and attribute.name != "name":
        parts.append("UPDATE")
    if not parts:
        return "read"
    required = attribute.required and "CREATE" in parts
    return ", ".join(parts) + (" (required)" if required else "")


def literal(value: Any) -> str:
    """A value as the guide writes it in backquotes."""
    return value if isinstance(value, str) else json.dumps(value)


def test_every_type_has_a_section() -> None:
    assert list(type_sections()) == [entity_type.name for entity_type in TYPES]


@pytest.mark.parametrize("entity_type", TYPES, ids=lambda t: t.name)
def test_every_attribute_is_documented_as_it_is(entity_type: EntityType) -> None:
    section = type_sections()[entity_type.name]
    table = rows(section, "attribute")
    assert [unquote(row[0]) for row in table] == entity_type.attribute_names
    for row in table:
        attribute = entity_type.attribute(unquote(row[0]))
        assert attribute is not None
        _, kind, how, meaning = row
        assert kind == attribute.type, f"{entity_type.name}.{attribute.name}: type"
        assert how == access(entity_type, attribute), f"{entity_type.name}.{attribute.name}"
        assert meaning, f"{entity_type.name}.{attribute.name} says nothing"
        if how not in ("read", "hidden"):
            # What a request may set: its choices and its default are in the guide.
            for choice in attribute.choices:
                assert f"`{choice}`" in meaning, f"{entity_type.name}.{attribute.name}: {choice}"
            if attribute.default is not None:
                assert f"`{literal(attribute.default)}`" in meaning, (
                    f"{entity_type.name}.{attribute.name}: default {attribute.default!r}"
                )


@pytest.mark.parametrize("entity_type", TYPES, ids=lambda t: t.name)
def test_every_operation_is_documented(entity_type: EntityType) -> None:
    section = type_sections()[entity_type.name]
    listed = re.search(r"^Operations: (.*)\.$", section, re.M)
    assert listed, f"{entity_type.name}: no 'Operations:' line"
    assert re.findall(r"`([A-Z-]+)`", listed.group(1)) == entity_type.operation_names
    # A type's own operations have a row (in its section, or the one it refers to) that
    # names each argument, the required ones marked.
    documented = {unquote(row[0]): row for row in rows(chapter("Entity types"), "operation")}
    for operation in entity_type.operations:
        assert operation.name in documented, f"{entity_type.name}: {operation.name}"
        arguments = documented[operation.name][1]
        mentioned = re.findall(r"`([a-z_]+)`( \(required\))?", arguments)
        assert {name for name, _ in mentioned} == set(operation.argument_names)
        required = {name for name, mark in mentioned if mark}
        assert required == {a.name for a in operation.arguments if a.required}


def test_every_standard_and_node_operation_is_documented() -> None:
    table = rows(chapter("Operations"), "operation")
    assert [unquote(row[0]) for row in table] == [*ENTITY_OPERATIONS, *NODE_OPERATIONS]


def test_every_status_code_is_documented() -> None:
    codes = [int(row[0].split()[0]) for row in rows(chapter("Requests and replies"), "status")]
    errors = [
        BadRequest,
        Unauthenticated,
        Forbidden,
        EntityNotFound,
        Conflict,
        InternalError,
        OperationNotImplemented,
    ]
    assert codes == sorted([200, 201, 204, *(error.STATUS for error in errors)])


def test_the_request_and_reply_properties_are_documented() -> None:
    text = chapter("Requests and replies")
    keys = [name for row in rows(text, "property") for name in re.findall(r"`(\w+)`", row[0])]
    assert keys == [
        *("operation", "type", "name", "identity", "entityType", "offset", "count", "locales"),
        *("statusCode", "statusDescription", "count"),  # the reply's
    ]


def test_the_limits_are_the_code_s() -> None:
    limits = chapter("Limits")
    assert f"at most {MAX_QUERY_COUNT:,} rows" in limits
    assert f"at most {MAX_QUERY_COUNT:,} rows" in chapter("Operations")
    assert f"at most {MAX_BATCH:,} messages" in limits
    assert f"gets {WINDOW} credits" in limits
    assert f"answers {MAX_IN_FLIGHT} at once" in limits
    assert f"up to {MAX_HELD_REPLIES} replies" in limits
    assert f"waits {CLOSE_TIMEOUT:g} seconds" in limits
    assert f"after {CLOSE_TIMEOUT:g} seconds" in type_sections()["petrel.connection"]
