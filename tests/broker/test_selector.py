"""JMS message selectors: the language, its three-valued logic, errors and bounds."""

from __future__ import annotations

import re
import uuid
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from petrel.broker.selector import (
    JMS_HEADER_IDENTIFIERS,
    MAX_SELECTOR_DEPTH,
    MAX_SELECTOR_LENGTH,
    Selector,
    SelectorError,
    compile_selector,
    jms_correlation_id,
    jms_message_id,
    make_lookup,
)
from petrel.types import Char, Float, Int, Long, Symbol, Timestamp, UByte, UInt, ULong

T, F, U = True, False, None  # TRUE, FALSE, unknown

# (selector, application properties, three-valued result)
CASES: list[tuple[str, dict[str, Any], bool | None]] = [
    # -- literals
    ("s = 'abc'", {"s": "abc"}, T),
    ("s = 'it''s'", {"s": "it's"}, T),
    ("s = ''''", {"s": "'"}, T),
    ("s = ''", {"s": ""}, T),
    ("s = 'a b\tc\nd'", {"s": "a b\tc\nd"}, T),
    ("s = 'café ☃'", {"s": "café ☃"}, T),
    ("s = 'ABC'", {"s": "abc"}, F),
    ("n = 57", {"n": 57}, T),
    ("n = -957", {"n": -957}, T),
    ("n = +62", {"n": 62}, T),
    ("n = 57L", {"n": 57}, T),
    ("n = 57l", {"n": 57}, T),
    ("n = 0", {"n": 0}, T),
    ("n = 0x1F", {"n": 31}, T),
    ("n = 0X1fL", {"n": 31}, T),
    ("n = 017", {"n": 15}, T),
    ("n = 9223372036854775807", {"n": 2**63 - 1}, T),
    ("n = -9223372036854775808", {"n": -(2**63)}, T),
    ("n = 18446744073709551615", {"n": 2**64 - 1}, T),
    ("n = 0xFFFFFFFFFFFFFFFF", {"n": 2**64 - 1}, T),
    ("n = 7E3", {"n": 7000}, T),
    ("n = 7e3", {"n": 7000.0}, T),
    ("n = -57.9E2", {"n": -5790}, T),
    ("n = 7.", {"n": 7}, T),
    ("n = .5", {"n": 0.5}, T),
    ("n = 1.5F", {"n": 1.5}, T),
    ("n = 1.5d", {"n": 1.5}, T),
    ("n = 5f", {"n": 5}, T),
    ("n = 2.5E-1", {"n": 0.25}, T),
    ("n = 1E+2", {"n": 100}, T),
    ("b = TRUE", {"b": True}, T),
    ("b = true", {"b": True}, T),
    ("b = False", {"b": False}, T),
    ("TRUE", {}, T),
    ("FALSE", {}, F),
    ("NOT FALSE", {}, T),
    # -- identifiers: case-sensitive Java identifiers; keywords only as whole words
    ("Color = 'red'", {"color": "red"}, U),
    ("color = 'red'", {"color": "red", "Color": "blue"}, T),
    ("$x = 1", {"$x": 1}, T),
    ("_x1 = 1", {"_x1": 1}, T),
    ("café = 1", {"café": 1}, T),
    ("ANDY = 1", {"ANDY": 1}, T),
    ("Index = 1 AND notable = 2 AND nullable = 3", {"Index": 1, "notable": 2, "nullable": 3}, T),
    ("isTrue AND orange", {"isTrue": True, "orange": True}, T),
    # -- bare identifiers as conditions
    ("flag", {"flag": True}, T),
    ("flag", {"flag": False}, F),
    ("flag", {}, U),
    ("flag", {"flag": 1}, U),
    ("flag", {"flag": "true"}, U),
    ("NOT flag", {"flag": False}, T),
    ("(flag)", {"flag": True}, T),
    # -- numeric comparisons and promotion
    ("n = 1", {"n": 1.0}, T),
    ("n = 1.0", {"n": 1}, T),
    ("n <> 1", {"n": 2}, T),
    ("n <> 1", {"n": 1}, F),
    ("n < 2", {"n": 1}, T),
    ("n < 2", {"n": 2}, F),
    ("n <= 2", {"n": 2}, T),
    ("n > 2.5", {"n": 3}, T),
    ("n > 2.5", {"n": 2}, F),
    ("n >= 2.5", {"n": 2.5}, T),
    ("2 < n", {"n": 3}, T),
    ("2 >= n", {"n": 3}, F),
    ("n = m", {"n": 3, "m": 3.0}, T),
    ("n < m", {"n": 2, "m": 3}, T),
    ("n > m", {"n": 2, "m": 3}, F),
    ("1 < 2", {}, T),
    ("2.5 = 2.5", {}, T),
    # -- petrel.types wrappers count as their base types
    ("n = 5", {"n": UInt(5)}, T),
    ("n > 4", {"n": UByte(5)}, T),
    ("n = 5", {"n": Long(5)}, T),
    ("n < 0", {"n": Int(-1)}, T),
    ("n = 18446744073709551615", {"n": ULong(2**64 - 1)}, T),
    ("n = 1.5", {"n": Float(1.5)}, T),
    ("t > 1000", {"t": Timestamp(2000)}, T),
    ("s = 'red'", {"s": Symbol("red")}, T),
    ("s <> 'red'", {"s": Symbol("blue")}, T),
    ("s IN ('red')", {"s": Symbol("red")}, T),
    ("s LIKE 'r%'", {"s": Symbol("red")}, T),
    ("s = 'x'", {"s": Char("x")}, T),
    ("s = t", {"s": Symbol("a"), "t": "a"}, T),
    ("n = m", {"n": UInt(2), "m": Float(2.0)}, T),
    ("n + 1 = 6", {"n": UInt(5)}, T),
    # -- strings and booleans compare with = and <> only
    ("s = t", {"s": "a", "t": "a"}, T),
    ("s <> t", {"s": "a", "t": "b"}, T),
    ("s < t", {"s": "a", "t": "b"}, F),
    ("b = c", {"b": True, "c": True}, T),
    ("b <> c", {"b": True, "c": False}, T),
    ("b > c", {"b": True, "c": False}, F),
    ("b = TRUE", {"b": False}, F),
    ("b <> TRUE", {"b": False}, T),
    ("(n > 1) = TRUE", {"n": 2}, T),
    ("(n > 1) = (m > 1)", {"n": 2, "m": 0}, F),
    ("(n > 1) = TRUE", {}, U),
    # -- unlike types: = is FALSE, <> TRUE, orderings FALSE
    ("n = 'a'", {"n": 1}, F),
    ("n <> 'a'", {"n": 1}, T),
    ("s = 1", {"s": "1"}, F),
    ("s <> 1", {"s": "1"}, T),
    ("s > 1", {"s": "2"}, F),
    ("s <= 1", {"s": "0"}, F),
    ("b = 1", {"b": True}, F),
    ("b = 0", {"b": False}, F),
    ("b <> 1", {"b": True}, T),
    ("n = TRUE", {"n": 1}, F),
    ("b > 0", {"b": True}, F),
    ("NOT (s > 1)", {"s": "2"}, T),
    # -- values a selector cannot compare: unknown
    ("x = 1", {"x": b"\x01"}, U),
    ("x <> 1", {"x": b"\x01"}, U),
    ("x = 'a'", {"x": [1]}, U),
    ("x <> 'a'", {"x": {"a": 1}}, U),
    ("x > 1", {"x": uuid.UUID(int=1)}, U),
    ("x IS NULL", {"x": b""}, F),
    ("x IS NOT NULL", {"x": b""}, T),
    ("x IN ('a')", {"x": b"a"}, U),
    ("x LIKE 'a'", {"x": b"a"}, U),
    ("x + 1 > 0", {"x": b"a"}, U),
    # -- comparisons with NULL (missing properties) are unknown
    ("n = 1", {}, U),
    ("n <> 1", {}, U),
    ("n > 1", {}, U),
    ("NOT (n > 1)", {}, U),
    ("NOT n > 1", {}, U),
    ("s = 'a'", {"s": None}, U),
    ("n = m", {"n": 1}, U),
    ("n = m", {}, U),
    ("n > 1 OR TRUE", {}, T),
    ("n > 1 AND FALSE", {}, F),
    # -- arithmetic
    ("n + 1 = 3", {"n": 2}, T),
    ("n - 1 = 1", {"n": 2}, T),
    ("n * 2 = 4", {"n": 2}, T),
    ("n / 2 = 2", {"n": 4}, T),
    ("n / 2 = 1", {"n": 3}, T),
    ("n / 2 = 1.5", {"n": 3.0}, T),
    ("n / 2.0 = 1.5", {"n": 3}, T),
    ("-7 / 2 = -3", {}, T),
    ("7 / -2 = -3", {}, T),
    ("-7 / -2 = 3", {}, T),
    ("n / 0 = 1", {"n": 1}, U),
    ("n / 0.0 = 1", {"n": 1}, U),
    ("NOT (n / 0 = 1)", {"n": 1}, U),
    ("n / m > 0", {"n": 1, "m": 0}, U),
    ("1 / 0 = 1", {}, U),
    ("1 / 0 IS NULL", {}, T),
    ("n + 1 = 1", {}, U),
    ("n + m = 1", {"n": 1}, U),
    ("n + 1 = 1", {"n": "0"}, U),
    ("n + 1 = 1", {"n": False}, U),
    ("-n = -2", {"n": 2}, T),
    ("-n = 2", {"n": -2.0}, T),
    ("+n = 2", {"n": 2}, T),
    ("- -n = 2", {"n": 2}, T),
    ("-n IS NULL", {}, T),
    ("+n IS NULL", {"n": "a"}, T),
    ("n * 2 + 1 = 7", {"n": 3}, T),
    ("n * n * n * n * n > 0", {"n": 2**32}, U),  # integer overflow is unknown
    ("n * 1.5 > 0", {"n": 2**63}, T),
    ("n + m + 1 = 6", {"n": 2, "m": 3}, T),
    ("n - m - 1 = 0", {"n": 5, "m": 4}, T),
    ("n / m / 2 = 2", {"n": 16, "m": 4}, T),
    ("n + m = 2.5", {"n": 1, "m": 1.5}, T),
    ("n + m + k = 1", {"n": 1, "m": 1}, U),
    # -- precedence: * / over + -, arithmetic over comparison, NOT over AND over OR
    ("1 + 2 * 3 = 7", {}, T),
    ("(1 + 2) * 3 = 9", {}, T),
    ("10 - 4 - 3 = 3", {}, T),
    ("10 - (4 - 3) = 9", {}, T),
    ("12 / 2 / 3 = 2", {}, T),
    ("2 * 3 - 1 > 4", {}, T),
    ("-2 * 3 = -6", {}, T),
    ("-(2 + 3) = -5", {}, T),
    ("2 - -3 = 5", {}, T),
    ("n = 1 OR n = 2 AND m = 3", {"n": 1, "m": 0}, T),
    ("(n = 1 OR n = 2) AND m = 3", {"n": 1, "m": 0}, F),
    ("NOT n = 1 AND m = 2", {"n": 0, "m": 2}, T),
    ("NOT (n = 1 AND m = 2)", {"n": 1, "m": 0}, T),
    ("NOT n = 1 OR TRUE", {"n": 1}, T),
    ("NOT NOT flag", {"flag": True}, T),
    ("NOT x IS NULL", {"x": 1}, T),
    ("NOT x BETWEEN 1 AND 3", {"x": 5}, T),
    ("NOT x IN ('a')", {"x": "b"}, T),
    ("NOT x LIKE 'a%'", {"x": "ba"}, T),
    ("x BETWEEN 1 AND 3 AND y", {"x": 2, "y": True}, T),
    ("x BETWEEN 1 AND 3 AND y", {"x": 2, "y": False}, F),
    ("x BETWEEN 1 + 1 AND 2 * 2", {"x": 3}, T),
    ("x * 2 BETWEEN 1 AND 3", {"x": 1}, T),
    ("a OR b AND c", {"a": True, "b": False, "c": False}, T),
    ("(a OR b) AND c", {"a": True, "b": False, "c": False}, F),
    ("a AND b OR c", {"a": False, "b": True, "c": True}, T),
    ("a AND (b OR c)", {"a": False, "b": True, "c": True}, F),
    ("((((n = 1))))", {"n": 1}, T),
    # -- BETWEEN and NOT BETWEEN
    ("age BETWEEN 15 AND 19", {"age": 15}, T),
    ("age BETWEEN 15 AND 19", {"age": 19}, T),
    ("age BETWEEN 15 AND 19", {"age": 17.5}, T),
    ("age BETWEEN 15 AND 19", {"age": 14}, F),
    ("age BETWEEN 15 AND 19", {"age": 20}, F),
    ("age BETWEEN 19 AND 15", {"age": 17}, F),
    ("age BETWEEN 15 AND 19", {}, U),
    ("age BETWEEN 15 AND 19", {"age": "17"}, F),
    ("age BETWEEN 15 AND 19", {"age": True}, F),
    ("age BETWEEN 15 AND 19", {"age": b"x"}, U),
    ("age BETWEEN 15 AND 19", {"age": UInt(16)}, T),
    ("age NOT BETWEEN 15 AND 19", {"age": 14}, T),
    ("age NOT BETWEEN 15 AND 19", {"age": 20}, T),
    ("age NOT BETWEEN 15 AND 19", {"age": 15}, F),
    ("age NOT BETWEEN 15 AND 19", {"age": 19}, F),
    ("age NOT BETWEEN 15 AND 19", {}, U),
    ("age NOT BETWEEN 15 AND 19", {"age": "17"}, F),
    ("age BETWEEN lo AND hi", {"age": 5, "lo": 1, "hi": 9}, T),
    ("age BETWEEN lo AND hi", {"age": 5, "lo": 1}, U),
    ("age BETWEEN lo AND hi", {"age": 0, "lo": 1}, F),  # FALSE AND unknown
    ("age NOT BETWEEN lo AND hi", {"age": 0, "lo": 1}, T),  # TRUE OR unknown
    ("age NOT BETWEEN lo AND hi", {"age": 5, "lo": 1}, U),
    ("age BETWEEN 1 AND 1 / 0", {"age": 1}, U),
    ("age BETWEEN -5 AND -1", {"age": -3}, T),
    ("age between 1 and 2", {"age": 1}, T),
    ("5 BETWEEN 1 AND 10", {}, T),
    # -- IN and NOT IN
    ("c IN ('UK', 'US', 'France')", {"c": "UK"}, T),
    ("c IN ('UK', 'US', 'France')", {"c": "Peru"}, F),
    ("c NOT IN ('UK', 'US', 'France')", {"c": "UK"}, F),
    ("c NOT IN ('UK', 'US', 'France')", {"c": "Peru"}, T),
    ("c IN ('UK')", {}, U),
    ("c NOT IN ('UK')", {}, U),
    ("c IN ('UK')", {"c": None}, U),
    ("c IN ('1')", {"c": 1}, F),
    ("c NOT IN ('1')", {"c": 1}, T),
    ("c IN ('a')", {"c": True}, F),
    ("c NOT IN ('a')", {"c": True}, T),
    ("c IN ('it''s')", {"c": "it's"}, T),
    ("c IN (1, 2, 3)", {"c": 2}, T),
    ("c IN (1, 2, 3)", {"c": 2.0}, T),
    ("c IN (1.5, -2)", {"c": -2}, T),
    ("c IN (1, 2, 3)", {"c": True}, F),
    ("c IN (1, 'a')", {"c": "a"}, T),
    ("c IN (1, 'a')", {"c": "1"}, F),
    ("c IN (0x10)", {"c": 16}, T),
    ("c in ('a')", {"c": "a"}, T),
    ("'a' IN ('a', 'b')", {}, T),
    ("c + 1 IN (3)", {"c": 2}, T),
    # -- LIKE and NOT LIKE
    ("p LIKE '12%3'", {"p": "123"}, T),
    ("p LIKE '12%3'", {"p": "12993"}, T),
    ("p LIKE '12%3'", {"p": "1234"}, F),
    ("w LIKE 'l_se'", {"w": "lose"}, T),
    ("w LIKE 'l_se'", {"w": "loose"}, F),
    ("u LIKE '\\_%' ESCAPE '\\'", {"u": "_foo"}, T),
    ("u LIKE '\\_%' ESCAPE '\\'", {"u": "bar"}, F),
    ("p NOT LIKE '12%3'", {"p": "123"}, F),
    ("p NOT LIKE '12%3'", {"p": "1234"}, T),
    ("p LIKE 'a%'", {}, U),
    ("p NOT LIKE 'a%'", {}, U),
    ("p LIKE '1%'", {"p": 1}, F),
    ("p NOT LIKE '1%'", {"p": 1}, T),
    ("p LIKE 'abc'", {"p": "abc"}, T),
    ("p LIKE 'abc'", {"p": "abcd"}, F),
    ("p LIKE ''", {"p": ""}, T),
    ("p LIKE ''", {"p": "a"}, F),
    ("p LIKE '%'", {"p": ""}, T),
    ("p LIKE '%%'", {"p": "x"}, T),
    ("p LIKE '_'", {"p": ""}, F),
    ("p LIKE '_'", {"p": "\n"}, T),
    ("p LIKE 'a%'", {"p": "a\nb"}, T),
    ("p LIKE '%b'", {"p": "a\nb"}, T),
    ("p LIKE '%b%'", {"p": "abc"}, T),
    ("p LIKE '%x%'", {"p": "abc"}, F),
    ("p LIKE 'a%c%e'", {"p": "abcde"}, T),
    ("p LIKE 'a%c%e'", {"p": "ace"}, T),
    ("p LIKE 'a%c%e'", {"p": "ae"}, F),
    ("p LIKE 'a%c%c'", {"p": "ac"}, F),
    ("p LIKE 'ab%ba'", {"p": "aba"}, F),  # head and tail must not overlap
    ("p LIKE 'ab%ba'", {"p": "abba"}, T),
    ("p LIKE '%a_c%'", {"p": "xxabcxx"}, T),
    ("p LIKE '%a_c%'", {"p": "xxacxx"}, F),
    ("p LIKE '_%_'", {"p": "a"}, F),
    ("p LIKE '_%_'", {"p": "ab"}, T),
    ("p LIKE 'x%a_c%y'", {"p": "xaacacy"}, T),
    ("p LIKE 'x%a_c%_y'", {"p": "xabcy"}, F),
    ("p LIKE 'a_%_b'", {"p": "a12b"}, T),
    ("p LIKE 'a.b'", {"p": "a.b"}, T),
    ("p LIKE 'a.b'", {"p": "axb"}, F),
    ("p LIKE '[x]'", {"p": "[x]"}, T),
    ("p LIKE '[x]'", {"p": "x"}, F),
    ("p LIKE '^a$'", {"p": "^a$"}, T),
    ("p LIKE '(a|b)*'", {"p": "(a|b)*"}, T),
    ("p LIKE '(a|b)*'", {"p": "a"}, F),
    ("p LIKE 'a\\d'", {"p": "a\\d"}, T),
    ("p LIKE 'a\\d'", {"p": "a1"}, F),
    ("p LIKE '%.%'", {"p": "x.y"}, T),
    ("p LIKE '%.%'", {"p": "xy"}, F),
    ("p LIKE 'a+?{2}'", {"p": "a+?{2}"}, T),
    ("p LIKE '100!%' ESCAPE '!'", {"p": "100%"}, T),
    ("p LIKE '100!%' ESCAPE '!'", {"p": "1000"}, F),
    ("p LIKE '!!%' ESCAPE '!'", {"p": "!x"}, T),
    ("p LIKE 'a!b' ESCAPE '!'", {"p": "ab"}, T),  # an escaped ordinary character is itself
    ("p LIKE '%!_%' ESCAPE '!'", {"p": "a_b"}, T),
    ("p LIKE '%!_%' ESCAPE '!'", {"p": "ab"}, F),
    ("p LIKE '%%a' ESCAPE '%'", {"p": "%a"}, T),  # the escape wins over the wildcard
    ("p LIKE '%%a' ESCAPE '%'", {"p": "xa"}, F),
    ("p LIKE 'it''s%'", {"p": "it's here"}, T),
    ("p LIKE '%a%a%a%a%a%a%a%a%a%a%b'", {"p": "a" * 5000}, F),
    ("p like 'a%' escape '!'", {"p": "ab"}, T),
    ("'abc' LIKE 'a%'", {}, T),
    # -- IS NULL and IS NOT NULL
    ("x IS NULL", {}, T),
    ("x IS NULL", {"x": None}, T),
    ("x IS NULL", {"x": 0}, F),
    ("x IS NULL", {"x": ""}, F),
    ("x IS NULL", {"x": False}, F),
    ("x IS NOT NULL", {}, F),
    ("x IS NOT NULL", {"x": 0}, T),
    ("x + 1 IS NULL", {}, T),
    ("(x > 1) IS NULL", {}, T),
    ("(x > 1) IS NOT NULL", {"x": 0}, T),
    ("'a' IS NULL", {}, F),
    ("x is not null", {"x": 1}, T),
    # -- whitespace: space, tab, form feed, line terminators
    ("\t n\r\n=\f1 \n", {"n": 1}, T),
    ("n=1AND m=2", {"n": 1, "m": 2}, T),  # tokens need no space between them
    ("n=1 AND(m=2)", {"n": 1, "m": 2}, T),
    ("(n=1)AND(m=2)", {"n": 1, "m": 2}, T),
    # -- case-insensitive keywords
    ("n = 1 and m = 2 Or k = 3", {"n": 1, "m": 2}, T),
    ("not n = 1", {"n": 2}, T),
    ("n bEtWeEn 1 AnD 3", {"n": 2}, T),
    ("n Not Between 1 and 3", {"n": 4}, T),
    ("s not in ('a')", {"s": "b"}, T),
    ("s not like 'a%' Escape '!'", {"s": "b"}, T),
    ("s iS nOt NuLl", {"s": "b"}, T),
    ("b = tRuE", {"b": True}, T),
    # -- empty selectors match everything
    ("", {}, T),
    ("   \n\t", {}, T),
]


@pytest.mark.parametrize(("text", "properties", "expected"), CASES)
def test_selector(text: str, properties: dict[str, Any], expected: bool | None) -> None:
    selector = compile_selector(text)
    lookup = make_lookup(properties)
    assert selector.evaluate(lookup) is expected
    assert selector.matches(lookup) is (expected is True)
    assert selector.matches(properties.get) is (expected is True)


# SQL's three-valued truth tables, with TRUE, FALSE and unknown from properties.
TRUTH = [True, False, None]


@pytest.mark.parametrize("a", TRUTH)
@pytest.mark.parametrize("b", TRUTH)
def test_and_or_truth_tables(a: bool | None, b: bool | None) -> None:
    lookup = make_lookup({"a": a, "b": b})
    expected_and = False if F in (a, b) else (None if U in (a, b) else True)
    expected_or = True if T in (a, b) else (None if U in (a, b) else False)
    assert compile_selector("a AND b").evaluate(lookup) is expected_and
    assert compile_selector("a OR b").evaluate(lookup) is expected_or
    assert compile_selector("a AND b AND a").evaluate(lookup) is expected_and
    assert compile_selector("a OR b OR a").evaluate(lookup) is expected_or
    assert compile_selector("a AND b").matches(lookup) is (expected_and is True)
    assert compile_selector("a OR b").matches(lookup) is (expected_or is True)
    assert compile_selector("a AND b AND a").matches(lookup) is (expected_and is True)
    assert compile_selector("a OR b OR a").matches(lookup) is (expected_or is True)
    # the same through comparisons, whose unknown comes from a missing property
    values = {name: v for name, v in (("x", a), ("y", b)) if v is not None}
    lookup = make_lookup({k: int(v) for k, v in values.items()})
    assert compile_selector("x = 1 AND y = 1").evaluate(lookup) is expected_and
    assert compile_selector("x = 1 OR y = 1").evaluate(lookup) is expected_or


@pytest.mark.parametrize("a", TRUTH)
def test_not_truth_table(a: bool | None) -> None:
    lookup = make_lookup({"a": a})
    expected = None if a is None else not a
    assert compile_selector("NOT a").evaluate(lookup) is expected
    assert compile_selector("NOT a").matches(lookup) is (expected is True)
    assert compile_selector("NOT NOT a").evaluate(lookup) is a


def test_or_short_cuts_on_true_and_and_on_false() -> None:
    calls: list[str] = []

    def lookup(name: str) -> Any:
        calls.append(name)
        return {"t": True, "f": False}.get(name)

    assert compile_selector("t OR x").evaluate(lookup) is True
    assert compile_selector("f AND x").evaluate(lookup) is False
    assert compile_selector("t OR x OR y").evaluate(lookup) is True
    assert "x" not in calls and "y" not in calls


# -- JMS header identifiers


def test_jms_header_identifiers() -> None:
    lookup = make_lookup(
        {"JMSPriority": 9, "color": "red"},
        durable=True,
        priority=7,
        message_id="ID:abc",
        correlation_id="order-1",
        creation_time=1_700_000_000_000,
        absolute_expiry_time=1_700_000_060_000,
        subject="subject",
        jms_type="type",
        delivery_count=2,
        group_id="g",
        group_sequence=3,
        user_id=b"alice",
    )
    expected = {
        "JMSDeliveryMode": "PERSISTENT",
        "JMSPriority": 7,
        "JMSMessageID": "ID:abc",
        "JMSCorrelationID": "order-1",
        "JMSTimestamp": 1_700_000_000_000,
        "JMSExpiration": 1_700_000_060_000,
        "JMSType": "type",
        "JMSRedelivered": True,
        "JMSXDeliveryCount": 3,
        "JMSXGroupID": "g",
        "JMSXGroupSeq": 3,
        "JMSXUserID": "alice",
    }
    assert set(expected) == set(JMS_HEADER_IDENTIFIERS)
    for name, value in expected.items():
        assert lookup(name) == value, name
    assert lookup("color") == "red"
    assert lookup("JMSOther") is None
    assert lookup("missing") is None


def test_jms_header_defaults() -> None:
    lookup = make_lookup(None, subject="subject")
    expected = {
        "JMSDeliveryMode": "NON_PERSISTENT",
        "JMSPriority": 4,
        "JMSMessageID": None,
        "JMSCorrelationID": None,
        "JMSTimestamp": 0,
        "JMSExpiration": 0,
        "JMSType": "subject",
        "JMSRedelivered": False,
        "JMSXDeliveryCount": 1,
        "JMSXGroupID": None,
        "JMSXGroupSeq": None,
        "JMSXUserID": None,
    }
    for name, value in expected.items():
        assert lookup(name) == value, name
    assert make_lookup()("JMSType") is None


@pytest.mark.parametrize(
    ("text", "fields", "expected"),
    [
        ("JMSDeliveryMode = 'PERSISTENT'", {"durable": True}, T),
        ("JMSDeliveryMode = 'PERSISTENT'", {}, F),
        ("JMSDeliveryMode = 'NON_PERSISTENT'", {}, T),
        ("JMSPriority > 4", {"priority": 9}, T),
        ("JMSPriority > 4", {}, F),
        ("JMSPriority BETWEEN 0 AND 4", {}, T),
        ("JMSMessageID = 'ID:1'", {"message_id": "ID:1"}, T),
        ("JMSMessageID = 'ID:AMQP_NO_PREFIX:1'", {"message_id": "1"}, T),
        ("JMSMessageID = 'ID:AMQP_ULONG:7'", {"message_id": ULong(7)}, T),
        ("JMSMessageID IS NULL", {}, T),
        ("JMSCorrelationID = 'abc'", {"correlation_id": "abc"}, T),
        ("JMSCorrelationID LIKE 'ab%'", {"correlation_id": Symbol("abc")}, T),
        ("JMSTimestamp > 1000", {"creation_time": Timestamp(2000)}, T),
        ("JMSExpiration = 0", {}, T),
        ("JMSType = 'car'", {"jms_type": "car", "subject": "boat"}, T),
        ("JMSType = 'boat'", {"subject": "boat"}, T),
        ("JMSType IS NULL", {}, T),
        ("JMSRedelivered", {"delivery_count": 1}, T),
        ("JMSRedelivered = FALSE", {}, T),
        ("JMSXDeliveryCount > 1", {"delivery_count": 1}, T),
        ("JMSXGroupID = 'g' AND JMSXGroupSeq = 2", {"group_id": "g", "group_sequence": 2}, T),
    ],
)
def test_selectors_on_jms_headers(text: str, fields: dict[str, Any], expected: bool | None) -> None:
    assert compile_selector(text).evaluate(make_lookup({}, **fields)) is expected


def test_jms_message_id_strings() -> None:
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert jms_message_id(None) is None
    assert jms_message_id("ID:abc") == "ID:abc"
    assert jms_message_id(Symbol("ID:abc")) == "ID:abc"
    assert jms_message_id("abc") == "ID:AMQP_NO_PREFIX:abc"
    assert jms_message_id("ID:AMQP_UUID:x") == "ID:AMQP_STRING:ID:AMQP_UUID:x"
    assert jms_message_id(ULong(42)) == "ID:AMQP_ULONG:42"
    assert jms_message_id(u) == "ID:AMQP_UUID:12345678-1234-5678-1234-567812345678"
    assert jms_message_id(b"\x01\xab") == "ID:AMQP_BINARY:01AB"
    assert jms_message_id(True) is None
    assert jms_message_id(1.5) is None
    assert jms_correlation_id(None) is None
    assert jms_correlation_id("abc") == "abc"
    assert jms_correlation_id("ID:abc") == "ID:abc"
    assert jms_correlation_id("ID:AMQP_NO_PREFIX:x") == "ID:AMQP_STRING:ID:AMQP_NO_PREFIX:x"
    assert jms_correlation_id("AMQP_UUID:x") == "AMQP_UUID:x"
    assert jms_correlation_id(ULong(42)) == "ID:AMQP_ULONG:42"
    assert jms_correlation_id(bytearray(b"\xff")) == "ID:AMQP_BINARY:FF"


# -- the compiled object


def test_compiled_selector_is_cached_and_described() -> None:
    text = "color = 'red' AND weight > 2.5"
    selector = compile_selector(text)
    assert isinstance(selector, Selector)
    assert compile_selector(text) is selector
    assert compile_selector(Symbol(text)) is selector
    assert selector.text == text
    assert repr(selector) == f"Selector({text!r})"
    assert selector.identifiers == {"color", "weight"}
    assert compile_selector("TRUE").identifiers == frozenset()
    assert compile_selector(text.encode()).text == text


def test_long_flat_chains_compile_and_evaluate() -> None:
    ors = " OR ".join(f"n = {i}" for i in range(2000))
    assert compile_selector(ors).matches(make_lookup({"n": 1999}))
    assert not compile_selector(ors).matches(make_lookup({"n": 2000}))
    ands = " AND ".join(f"n <> {i}" for i in range(2000))
    assert compile_selector(ands).matches(make_lookup({"n": 2000}))
    sums = "n" + " + 1" * 2000 + " = 2000"
    assert compile_selector(sums).matches(make_lookup({"n": 0}))
    items = ", ".join(f"'{i}'" for i in range(2000))
    assert compile_selector(f"s IN ({items})").matches(make_lookup({"s": "1999"}))
    parens = "(" * 5000 + "n = 1" + ")" * 5000
    assert compile_selector(parens).matches(make_lookup({"n": 1}))


# -- errors

BAD: list[tuple[str, str, int]] = [
    # (selector, part of the message, column)
    ("a =", "unexpected end of selector", 4),
    ("a = )", "unexpected ')'", 5),
    ("(a = 1", "expected ')'", 7),
    ("a = 1)", "unexpected ')'", 6),
    ("'abc", "unterminated string", 1),
    ("a = 'it''s", "unterminated string", 9),  # 'it' is a string, then 's is open
    ("a ! b", "unexpected character '!'", 3),
    ("a != 1", "unexpected character '!'", 3),
    ("a == 1", "unexpected '='", 4),
    ("a = 1 = 2", "unexpected '='", 7),
    ("a < > 1", "unexpected '>'", 5),
    ("a = 1 AND", "unexpected end of selector", 10),
    ("AND a = 1", "unexpected keyword AND", 1),
    ("a = NULL", "unexpected keyword NULL", 5),
    ("NULL IS NULL", "unexpected keyword NULL", 1),
    ("a IS 5", "unexpected number 5", 6),
    ("a IS NOT", "unexpected end of selector", 9),
    ("a IN ()", "unexpected ')'", 7),
    ("a IN ('x', )", "unexpected ')'", 12),
    ("a IN (b)", "unexpected identifier 'b'", 7),
    ("a IN 'x'", "unexpected string 'x'", 6),
    ("a LIKE b", "unexpected identifier 'b'", 8),
    ("a LIKE 5", "unexpected number 5", 8),
    ("a LIKE 'x' ESCAPE b", "unexpected identifier 'b'", 19),
    ("a BETWEEN 1", "unexpected end of selector", 12),
    ("a BETWEEN 1 OR 2", "unexpected keyword OR", 13),
    ("a NOT = 1", "unexpected '='", 7),
    ("x = 12abc", "unexpected identifier 'abc'", 7),
    ("x = 1.5.5", "unexpected number .5", 8),
    ("x = 1e5L", "unexpected identifier 'L'", 8),
    ("x = 'a' 'b'", "unexpected string 'b'", 9),
    ("x = \u00a01", "unexpected character '\\xa0'", 5),
    ("a = 1\nAND )", "unexpected ')'", 5),
    ("-- comment\na = 1", "unexpected identifier 'a'", 1),  # no comments: - - comment a
    ("`a` = 1", "unexpected character '`'", 1),
    ('"a" = 1', "unexpected character '\"'", 1),
    ("a = 1 % 2", "unexpected character '%'", 7),
    ("x LIKE 'a' ESCAPE ''", "ESCAPE needs a single character, not ''", 19),
    ("x LIKE 'a' ESCAPE 'ab'", "ESCAPE needs a single character, not 'ab'", 19),
    ("x LIKE 'a!' ESCAPE '!'", "the ESCAPE character ends the LIKE pattern", 8),
    ("5", "the selector must be a condition, not a number", 1),
    ("'a'", "the selector must be a condition, not a string", 1),
    ("x + 1", "the selector must be a condition, not a number", 1),
    ("-x", "the selector must be a condition, not a number", 1),
    ("(1)", "the selector must be a condition, not a number", 2),
    ("'a' + 1", "'+' needs numbers, not a string", 1),
    ("1 + 'a'", "'+' needs numbers, not a string", 5),
    ("x * 'a' > 1", "'*' needs numbers, not a string", 5),
    ("TRUE * 2 > 1", "'*' needs numbers, not a boolean", 1),
    ("-'a' = 1", "unary '-' needs numbers, not a string", 2),
    ("(x > 1) + 1 = 2", "'+' needs numbers, not a boolean", 2),
    ("'a' < 'b'", "'<' needs numbers, not a string (only = and <> apply)", 1),
    ("x > 'a'", "'>' needs numbers, not a string", 5),
    ("TRUE >= x", "'>=' needs numbers, not a boolean", 1),
    ("(x = 1) < 2", "'<' needs numbers, not a boolean", 2),
    ("1 = 'a'", "cannot compare a number with a string", 3),
    ("TRUE <> 'a'", "cannot compare a boolean with a string", 6),
    ("(a = 1) = 1", "cannot compare a boolean with a number", 9),
    ("x + 1 = 'a'", "cannot compare a number with a string", 7),
    ("NOT 5", "NOT needs a condition, not a number", 5),
    ("a AND 'x'", "AND needs a condition, not a string", 7),
    ("1 OR a", "OR needs a condition, not a number", 1),
    ("a OR b AND x + 1", "AND needs a condition, not a number", 12),
    ("5 LIKE 'x'", "LIKE needs a string, not a number", 1),
    ("(a = 1) LIKE 'x'", "LIKE needs a string, not a boolean", 2),
    ("TRUE IN ('a')", "IN needs a string or a number, not a boolean", 1),
    ("x BETWEEN 'a' AND 'c'", "BETWEEN needs numbers, not a string", 11),
    ("x BETWEEN 1 AND TRUE", "BETWEEN needs numbers, not a boolean", 17),
    ("'x' BETWEEN 1 AND 2", "BETWEEN needs numbers, not a string", 1),
    ("x = 09", "invalid octal literal 09", 5),
    ("x = 0778", "invalid octal literal 0778", 5),
    ("x = 1e400", "floating-point literal 1e400 out of range", 5),
    ("x = 18446744073709551616", "integer literal 18446744073709551616 out of range", 5),
    ("x = 0x10000000000000000", "out of range", 5),
    ("x IN (1, 99999999999999999999999)", "out of range", 10),
    ("x = 1" + "0" * 5000, "out of range", 5),
]


@pytest.mark.parametrize(("text", "message", "column"), BAD)
def test_bad_selector(text: str, message: str, column: int) -> None:
    with pytest.raises(SelectorError) as caught:
        compile_selector(text)
    assert message in str(caught.value)
    assert caught.value.column == column
    assert f"column {column}" in str(caught.value)


def test_error_names_line_and_what_was_expected() -> None:
    with pytest.raises(SelectorError) as caught:
        compile_selector("a = 1\nAND )")
    error = caught.value
    assert isinstance(error, ValueError)
    assert (error.line, error.column) == (2, 5)
    assert str(error).startswith("unexpected ')' at line 2, column 5; expected ")
    assert "an identifier" in str(error)
    with pytest.raises(SelectorError, match=r"^unexpected end of selector at column 7; expected"):
        compile_selector("(a = 1")


@pytest.mark.parametrize("value", [5, None, 1.5, ["a = 1"], {"a": 1}])
def test_selector_that_is_not_a_string(value: Any) -> None:
    with pytest.raises(SelectorError, match="a selector is a string, not"):
        compile_selector(value)


def test_selector_bytes() -> None:
    assert compile_selector(b"n = 1").matches(make_lookup({"n": 1}))
    assert compile_selector(bytearray(b"n = 1")).matches(make_lookup({"n": 1}))
    with pytest.raises(SelectorError, match="not valid UTF-8"):
        compile_selector(b"n = '\xff'")


def test_length_is_bounded() -> None:
    longest = "a = '" + "x" * (MAX_SELECTOR_LENGTH - 6) + "'"
    assert len(longest) == MAX_SELECTOR_LENGTH
    assert compile_selector(longest).matches(make_lookup({"a": "x" * (MAX_SELECTOR_LENGTH - 6)}))
    with pytest.raises(SelectorError, match=f"longer than {MAX_SELECTOR_LENGTH}"):
        compile_selector(longest + " ")
    with pytest.raises(SelectorError, match=f"longer than {MAX_SELECTOR_LENGTH}"):
        compile_selector(b" " * (4 * MAX_SELECTOR_LENGTH + 1))


@pytest.mark.parametrize(
    ("template", "seed", "suffix"),
    [
        ("NOT {}", "x", ""),  # conditions nest through NOT
        ("({} = TRUE)", "x", ""),  # and through parenthesised comparisons
        ("-{}", "x", " IS NULL"),  # numbers through unary signs
        ("({} + 1)", "x", " IS NULL"),  # and through parenthesised arithmetic
    ],
)
def test_depth_is_bounded(template: str, seed: str, suffix: str) -> None:
    def nest(levels: int) -> str:
        text = seed
        for _ in range(levels):
            text = template.format(text)
        return text + suffix

    compile_selector(nest(MAX_SELECTOR_DEPTH // 2))
    widest = (MAX_SELECTOR_LENGTH - 16) // len(template.format(""))
    for levels in (MAX_SELECTOR_DEPTH + 1, widest):
        with pytest.raises(SelectorError, match=f"nested deeper than {MAX_SELECTOR_DEPTH}"):
            compile_selector(nest(levels))


# -- property tests

TOKENS = [
    "a", "b", "JMSPriority", "x1", "'s'", "'it''s'", "''", "1", "-", "+", "*", "/", "2.5",
    "0x1F", "017", "1e3", "7.", ".5", "5L", "TRUE", "FALSE", "NULL", "NOT", "AND", "OR",
    "BETWEEN", "LIKE", "IN", "IS", "ESCAPE", "(", ")", ",", "=", "<>", "<", ">", "<=", ">=",
    "'%'", "'_'", "'!'", "'a%b_c'", "!", "'",
]  # fmt: skip

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.binary(max_size=4),
    st.builds(UInt, st.integers(0, 2**32 - 1)),
    st.builds(Symbol, st.text(max_size=4)),
    st.lists(st.integers(), max_size=2),
)
ENVIRONMENTS = st.dictionaries(st.sampled_from(["a", "b", "x1", "JMSPriority"]), VALUES)


def _compile_or_none(text: str | bytes) -> Selector | None:
    try:
        return compile_selector(text)
    except SelectorError:
        return None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_random_text_raises_only_selector_error(text: str) -> None:
    _compile_or_none(text)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60))
def test_random_bytes_raise_only_selector_error(data: bytes) -> None:
    _compile_or_none(data)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=14), ENVIRONMENTS)
def test_token_soup_raises_only_selector_error(tokens: list[str], env: dict[str, Any]) -> None:
    selector = _compile_or_none(" ".join(tokens))
    if selector is not None:
        result = selector.evaluate(make_lookup(env))
        assert result in (True, False, None)
        assert selector.matches(make_lookup(env)) is (result is True)


# A reference interpreter over a small expression tree, written from the JMS rules
# independently of the compiler, checked against selectors rendered from the same tree
# with as few parentheses as precedence allows.

NAMES = ["a", "b", "s", "missing"]
COMPARISONS = ["=", "<>", "<", "<=", ">", ">="]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else "other"


def _ref_compare(op: str, a: Any, b: Any) -> bool | None:
    ka, kb = _kind(a), _kind(b)
    if {ka, kb} & {"null", "other"}:
        return None
    if ka != kb:
        return op == "<>"
    if op in ("=", "<>"):
        return (a == b) == (op == "=")
    if ka != "number":
        return False
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def _ref_number(value: Any) -> Any:
    return value if _kind(value) == "number" else None


def _ref_arithmetic(op: str, a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    if op == "/":
        if b == 0:
            return None
        if isinstance(a, int) and isinstance(b, int):
            q = Fraction(a, b)
            return int(q)  # int() of a Fraction truncates toward zero, like Java
        return a / b
    return {"+": a + b, "-": a - b, "*": a * b}[op]


def _ref_and(a: bool | None, b: bool | None) -> bool | None:
    return False if F in (a, b) else (None if U in (a, b) else True)


def _ref_or(a: bool | None, b: bool | None) -> bool | None:
    return True if T in (a, b) else (None if U in (a, b) else False)


def _ref_not(a: bool | None) -> bool | None:
    return None if a is None else not a


def _like_regex(pieces: list[tuple[str, str]]) -> str:
    parts = {"%": ".*", "_": "."}
    return "".join(parts.get(kind, re.escape(char)) for kind, char in pieces)


def ref(node: tuple[Any, ...], env: dict[str, Any]) -> Any:
    tag = node[0]
    if tag == "lit":
        return node[1]
    if tag == "id":
        return env.get(node[1])
    if tag == "neg":
        v = _ref_number(ref(node[1], env))
        return None if v is None else -v
    if tag == "arith":
        return _ref_arithmetic(
            node[1], _ref_number(ref(node[2], env)), _ref_number(ref(node[3], env))
        )
    if tag == "cond_id":
        v = env.get(node[1])
        return v if isinstance(v, bool) else None
    if tag == "cmp":  # an identifier compared is a value, not a condition
        left, right = (env.get(n[1]) if n[0] == "cond_id" else ref(n, env) for n in node[2:])
        return _ref_compare(node[1], left, right)
    if tag == "not":
        return _ref_not(ref(node[1], env))
    if tag == "and":
        return _ref_and(ref(node[1], env), ref(node[2], env))
    if tag == "or":
        return _ref_or(ref(node[1], env), ref(node[2], env))
    if tag == "between":
        v, lo, hi = (ref(n, env) for n in node[2:])
        if node[1]:
            return _ref_or(_ref_compare("<", v, lo), _ref_compare(">", v, hi))
        return _ref_and(_ref_compare(">=", v, lo), _ref_compare("<=", v, hi))
    if tag == "in":
        v = ref(node[2], env)
        result: bool | None = False
        for item in node[3]:
            result = _ref_or(result, _ref_compare("=", v, item))
        return _ref_not(result) if node[1] else result
    if tag == "like":
        v = ref(node[2], env)
        if _kind(v) in ("null", "other"):
            return None
        found = _kind(v) == "string" and re.fullmatch(_like_regex(node[3]), v, re.DOTALL)
        return (not found) if node[1] else bool(found)
    if tag == "isnull":
        return (ref(node[2], env) is None) != node[1]
    raise AssertionError(node)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return _quote(value)
    return repr(value)


# Precedence levels: OR 1, AND 2, NOT 3, predicates 4, + - 5, * / 6, unary 7, primary 8.
def render(node: tuple[Any, ...]) -> tuple[str, int]:
    def at(child: tuple[Any, ...], level: int) -> str:
        text, own = render(child)
        return text if own >= level else f"({text})"

    tag = node[0]
    if tag == "lit":
        return _literal(node[1]), 8
    if tag in ("id", "cond_id"):
        return node[1], 8
    if tag == "neg":
        return f"- {at(node[1], 7)}", 7
    if tag == "arith":
        level = 5 if node[1] in "+-" else 6
        return f"{at(node[2], level)} {node[1]} {at(node[3], level + 1)}", level
    if tag == "cmp":
        return f"{at(node[2], 5)} {node[1]} {at(node[3], 5)}", 4
    if tag == "not":
        return f"NOT {at(node[1], 3)}", 3
    if tag in ("and", "or"):
        level = 2 if tag == "and" else 1
        return f"{at(node[1], level)} {tag.upper()} {at(node[2], level + 1)}", level
    negate = "NOT " if node[1] else ""
    if tag == "between":
        low, high = at(node[3], 5), at(node[4], 5)
        return f"{at(node[2], 5)} {negate}BETWEEN {low} AND {high}", 4
    if tag == "in":
        return f"{at(node[2], 5)} {negate}IN ({', '.join(map(_literal, node[3]))})", 4
    if tag == "like":
        pattern = "".join("!" + c if kind == "esc" else c for kind, c in node[3])  # ESCAPE '!'
        return f"{at(node[2], 5)} {negate}LIKE {_quote(pattern)} ESCAPE '!'", 4
    if tag == "isnull":
        return f"{at(node[2], 5)} IS {negate}NULL", 4
    raise AssertionError(node)


NUMBER_LITERALS = st.one_of(  # mostly small, so that values meet bounds and divisors
    st.integers(0, 3),
    st.sampled_from([0.5, 1.0, 2.5]),
    st.integers(0, 2**63),
    st.floats(0, 1e6, allow_nan=False),
)
STRING_LITERALS = st.text(alphabet="ab'%", max_size=3)
num_expr = st.deferred(
    lambda: st.one_of(
        st.tuples(st.just("lit"), NUMBER_LITERALS),
        st.tuples(st.just("id"), st.sampled_from(NAMES)),
        st.tuples(st.just("neg"), num_expr),
        st.tuples(st.just("arith"), st.sampled_from("+-*/"), num_expr, num_expr),
    )
)
str_expr = st.one_of(
    st.tuples(st.just("lit"), STRING_LITERALS),
    st.tuples(st.just("id"), st.sampled_from(NAMES)),
)
like_pattern = st.lists(
    st.one_of(
        st.tuples(st.just("lit"), st.sampled_from("ab'")),
        st.tuples(st.just("esc"), st.sampled_from("ab'%_!")),
        st.sampled_from([("%", "%"), ("_", "_")]),
    ),
    max_size=5,
)
cond = st.deferred(
    lambda: st.one_of(
        st.tuples(st.just("lit"), st.booleans()),
        st.tuples(st.just("cond_id"), st.sampled_from(NAMES)),
        st.tuples(st.just("cmp"), st.sampled_from(COMPARISONS), num_expr, num_expr),
        st.tuples(st.just("cmp"), st.sampled_from(["=", "<>"]), str_expr, str_expr),
        st.tuples(st.just("cmp"), st.sampled_from(["=", "<>"]), cond, cond),
        st.tuples(st.just("between"), st.booleans(), num_expr, num_expr, num_expr),
        st.tuples(
            st.just("in"),
            st.booleans(),
            st.one_of(str_expr, num_expr),
            st.lists(st.one_of(STRING_LITERALS, st.integers(0, 5)), min_size=1, max_size=3),
        ),
        st.tuples(st.just("like"), st.booleans(), str_expr, like_pattern),
        st.tuples(st.just("isnull"), st.booleans(), st.one_of(num_expr, str_expr)),
        st.tuples(st.just("not"), cond),
        st.tuples(st.just("and"), cond, cond),
        st.tuples(st.just("or"), cond, cond),
    )
)
ENV_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(-3, 3, allow_nan=False),
    st.text(alphabet="ab'%_!", max_size=3),
    st.just(b"ab"),
)


def _fits(node: Any) -> bool:
    """Whether the literal integers stay clear of the overflow rule (the reference has none)."""
    if isinstance(node, tuple):
        return all(_fits(child) for child in node)
    if isinstance(node, list):
        return all(_fits(child) for child in node)
    return not isinstance(node, int) or isinstance(node, bool) or abs(node) < 2**20


@settings(max_examples=800, deadline=None)
@given(cond, st.fixed_dictionaries({name: ENV_VALUES for name in NAMES[:-1]}))
def test_against_reference_interpreter(node: tuple[Any, ...], env: dict[str, Any]) -> None:
    text, _ = render(node)
    selector = compile_selector(text)
    lookup = make_lookup(env)
    if not _fits(node):  # products may leave the 64-bit range, which the reference ignores
        assert selector.evaluate(lookup) in (True, False, None)
        return
    expected = ref(node, env)
    assert selector.evaluate(lookup) is expected, text
    assert selector.matches(lookup) is (expected is True), text
