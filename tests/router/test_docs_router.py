"""docs/router.md documents every attribute of the router's own management types, with its
type, and names the protocol's messages and keys as the routing core speaks them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from petrel.management import EntityType
from petrel.router.entities import ADDRESS, NODE, ROUTER
from petrel.router.routing.messages import PROTOCOL_VERSION

DOC = (Path(__file__).resolve().parents[2] / "docs" / "router.md").read_text()


def section(name: str) -> str:
    match = re.search(rf"^#### `{re.escape(name)}`\n(.*?)(?=^#|\Z)", DOC, re.M | re.S)
    assert match, f"docs/router.md has no section for {name}"
    return match.group(1)


@pytest.mark.parametrize("entity_type", [ROUTER, NODE, ADDRESS], ids=lambda t: t.name)
def test_every_attribute_is_documented_with_its_type(entity_type: EntityType) -> None:
    documented = {
        row[0].strip("` "): row[1].strip()
        for row in (
            line.strip("|").split("|")
            for line in section(entity_type.name).splitlines()
            if line.startswith("| `")
        )
    }
    served = {a.name: a.type for a in entity_type.attributes}
    served = {k: v for k, v in served.items() if k not in ("name", "identity", "type")}
    assert documented == served


def test_the_protocol_messages_are_specified() -> None:
    for op in ("HELLO", "RA", "LSU", "LSR", "MAU", "MAR"):
        assert re.search(rf"^#### {op}\b|^#### .*\b{op}\b", DOC, re.M), op
    assert f"`{PROTOCOL_VERSION}`" in DOC
