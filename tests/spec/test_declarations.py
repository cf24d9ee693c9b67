"""Petrel's spec declarations against the specification's own XML.

Every composite type and every restricted type with a descriptor in
transport.xml, messaging.xml, security.xml and transactions.xml must have a
Petrel class with the same descriptor (code and name), the same fields in the
same order, and for each field the same type, ``requires``, ``mandatory``,
``multiple`` and default.  Defaults given as choice names (``mixed``,
``first``, ``session-end``, ``none``) are resolved through the restricted
type's choices.  Conversely every Petrel class must come from the XML.

``amqp-1.0/*.xml`` are the OASIS AMQP 1.0 XML type definitions (documentation
stripped, copyright notices kept).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from petrel import spec
from petrel.spec import _base
from petrel.types import Symbol

# The specification's XML (with its copyright notice), kept next to this test.
SPEC_DIR = Path(__file__).parent / "amqp-1.0"
NS = {"amqp": "http://www.amqp.org/schema/amqp.xsd"}
PARTS = ("transport", "messaging", "security", "transactions")


def _load() -> dict[str, ET.Element]:
    types: dict[str, ET.Element] = {}
    for part in (*PARTS, "types"):
        root = ET.parse(SPEC_DIR / f"{part}.xml").getroot()
        for node in root.iterfind(".//amqp:type", NS):
            types[node.get("name", "")] = node
    return types


ALL_XML: dict[str, ET.Element] = _load()


def _described_xml() -> list[ET.Element]:
    found = []
    for part in PARTS:
        nodes = ET.parse(SPEC_DIR / f"{part}.xml").getroot().iterfind(".//amqp:type", NS)
        found.extend(n for n in nodes if n.find("amqp:descriptor", NS) is not None)
    return found


DESCRIBED = _described_xml()
BY_CODE: dict[int, type] = {cls.DESCRIPTOR: cls for cls in spec.ALL_TYPES}


def _code(node: ET.Element) -> int:
    desc = node.find("amqp:descriptor", NS)
    assert desc is not None
    high, low = desc.get("code", "").split(":")
    return (int(high, 16) << 32) | int(low, 16)


def _primitive(type_name: str) -> str:
    """Follow restricted types down to the primitive they are sent as."""
    seen = set()
    while type_name in ALL_XML and ALL_XML[type_name].get("class") == "restricted":
        assert type_name not in seen
        seen.add(type_name)
        type_name = ALL_XML[type_name].get("source", "")
    return type_name


def _resolve_default(type_name: str, text: str) -> Any:
    """The Python value of a field default as the XML spells it."""
    node = ALL_XML.get(type_name)
    if node is not None:
        for choice in node.iterfind("amqp:choice", NS):
            if choice.get("name") == text:
                text = choice.get("value", "")
                break
    prim = _primitive(type_name)
    if prim == "boolean":
        assert text in ("true", "false"), text
        return text == "true"
    if prim in ("ubyte", "ushort", "uint", "ulong", "byte", "short", "int", "long"):
        return int(text, 0)
    if prim == "symbol":
        return Symbol(text)
    if prim == "string":
        return text
    raise AssertionError(f"no rule for a default of type {type_name} ({prim})")


def _ids(nodes: list[ET.Element]) -> list[str]:
    return [n.get("name", "") for n in nodes]


def test_the_xml_was_found() -> None:
    # A guard against the parametrised tests silently running on nothing.
    assert len(DESCRIBED) >= 40


@pytest.mark.parametrize("node", DESCRIBED, ids=_ids(DESCRIBED))
def test_class_matches_xml(node: ET.Element) -> None:
    code = _code(node)
    cls = BY_CODE.get(code)
    assert cls is not None, f"no Petrel class for {node.get('name')} (0x{code:x})"
    desc = node.find("amqp:descriptor", NS)
    assert desc is not None
    assert desc.get("name") == cls.NAME
    assert cls in spec.ALL_TYPES
    assert spec.REGISTRY[code] is spec.REGISTRY[Symbol(cls.NAME)]

    if node.get("class") == "restricted":
        assert issubclass(cls, spec.Restricted)
        assert node.get("source") == cls.SOURCE
        return

    assert node.get("class") == "composite"
    assert node.get("source") == "list"
    assert issubclass(cls, spec.Composite)
    xml_fields = node.findall("amqp:field", NS)
    assert [f.get("name") for f in xml_fields] == [f.spec_name for f in cls.FIELDS]
    for xf, pf in zip(xml_fields, cls.FIELDS, strict=True):
        where = f"{cls.NAME}.{pf.spec_name}"
        assert pf.type == xf.get("type"), where
        assert pf.requires == xf.get("requires"), where
        assert pf.mandatory == (xf.get("mandatory") == "true"), where
        assert pf.multiple == (xf.get("multiple") == "true"), where
        text = xf.get("default")
        if text is None:
            assert pf.default is None, where
        else:
            expected = _resolve_default(pf.type, text)
            assert pf.default == expected, where
            # The exact Python type matters: True is not 1, a Symbol is not a str.
            if isinstance(expected, bool) or type(expected) is Symbol:
                assert type(pf.default) is type(expected), where
            else:
                assert isinstance(pf.default, int) and not isinstance(pf.default, bool), where


def test_every_class_comes_from_the_xml() -> None:
    codes = {_code(n) for n in DESCRIBED}
    for cls in spec.ALL_TYPES:
        assert cls.DESCRIPTOR in codes, cls
    assert len(spec.ALL_TYPES) == len(DESCRIBED)


def _restricted_xml() -> list[ET.Element]:
    return [
        n
        for n in ALL_XML.values()
        if n.get("class") == "restricted" and n.find("amqp:descriptor", NS) is None
    ]


@pytest.mark.parametrize("name", sorted(_base.PRIMITIVE_OF))
def test_restricted_primitives_match_xml(name: str) -> None:
    """``PRIMITIVE_OF`` (how a restricted field goes on the wire) follows the XML."""
    if name not in ALL_XML:
        # Archetype names (``txn-id``) are not types; they name what a type provides.
        provided = {
            p.strip() for n in ALL_XML.values() for p in (n.get("provides") or "").split(",")
        }
        assert name in provided, name
        return
    ours = _base.PRIMITIVE_OF[name]
    # ``fields``/``annotations`` are maps whose str keys Petrel sends as symbols.
    ours = "map" if ours in ("fields", "annotations") else ours
    assert _primitive(name) == ours


def test_every_restricted_field_type_is_known() -> None:
    """Each field type is a primitive, a restricted type Petrel maps, a composite or ``*``."""
    for cls in spec.ALL_TYPES:
        for f in getattr(cls, "FIELDS", ()):
            node = ALL_XML.get(f.type)
            if f.type == "*" or (node is not None and node.get("class") == "composite"):
                continue
            assert node is not None, f.type
            if node.get("class") == "restricted":
                assert f.type in _base.PRIMITIVE_OF, f"{cls.NAME}.{f.spec_name}: {f.type}"


def test_choice_enums_match_xml() -> None:
    """The Python constants for the spec's choices carry the XML's values."""
    cases: list[tuple[str, Any]] = [
        ("role", spec.Role),
        ("sender-settle-mode", spec.SenderSettleMode),
        ("receiver-settle-mode", spec.ReceiverSettleMode),
        ("terminus-durability", spec.TerminusDurability),
        ("terminus-expiry-policy", spec.ExpiryPolicy),
        ("std-dist-mode", spec.DistributionMode),
        ("sasl-code", spec.SaslCode),
        ("txn-capability", spec.TransactionCapability),
    ]
    for type_name, holder in cases:
        for choice in ALL_XML[type_name].iterfind("amqp:choice", NS):
            attr = choice.get("name", "").replace("-", "_").upper()
            value = getattr(holder, attr)
            assert value == _resolve_default(type_name, choice.get("name", "")), (type_name, attr)


def test_error_conditions_match_xml() -> None:
    """``petrel.errors.Condition`` names every error condition the XML defines."""
    from petrel.errors import Condition

    ours = {v for k, v in vars(Condition).items() if k.isupper()}
    theirs = {
        choice.get("value")
        for node in ALL_XML.values()
        if "error-condition" in (node.get("provides") or "")
        for choice in node.iterfind("amqp:choice", NS)
    }
    assert len(theirs) == 28
    assert ours == theirs
