"""Property tests: every value survives a round trip with its AMQP types intact.

- ``decode(encode(v))`` is ``v``, wrapper types and float bit patterns included;
- ``encode(decode(b)) == b`` for the bytes the encoder writes (they are canonical);
- any *other* legal encoding of ``v`` (wide, narrow or mixed, written by the
  independent encoder in :mod:`.amqp_values`) decodes to ``v`` too, and is
  never shorter than Petrel's.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from petrel.codec import decode, decode_from, encode, encode_into

from .amqp_values import SCALARS, any_encoding, assert_same, narrowest, scalar_arrays, values, wide

# Modest budgets: the whole file runs in a few seconds.
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NESTED = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _round_trip(value: Any) -> None:
    data = encode(value)
    decoded = decode(data)
    assert_same(decoded, value)
    assert encode(decoded) == data


@FAST
@given(st.sampled_from(list(SCALARS)).flatmap(lambda t: SCALARS[t]))
def test_scalar_round_trip(value: Any) -> None:
    _round_trip(value)


@FAST
@given(scalar_arrays(max_size=20))
def test_array_round_trip(value: Any) -> None:
    _round_trip(value)


@NESTED
@given(values())
def test_nested_round_trip(value: Any) -> None:
    _round_trip(value)


@NESTED
@given(values(), st.randoms(use_true_random=False))
def test_any_legal_encoding_decodes_to_the_same_value(value: Any, rnd: random.Random) -> None:
    canonical = encode(value)
    for pick in (wide, narrowest, rnd.choice):
        data = any_encoding(value, pick)
        assert_same(decode(data), value)
        assert encode(decode(data)) == canonical
        assert len(canonical) <= len(data)
    # The narrowest choice at every node is exactly what Petrel writes.
    assert any_encoding(value, narrowest) == canonical


@FAST
@given(st.lists(values(max_leaves=5), max_size=8), st.binary(max_size=4))
def test_stream_of_values(items: list[Any], prefix: bytes) -> None:
    out = bytearray(prefix)
    for item in items:
        encode_into(out, item)
    offset = len(prefix)
    for item in items:
        value, offset = decode_from(out, offset)
        assert_same(value, item)
    assert offset == len(out)


@FAST
@given(values(max_leaves=8))
def test_buffer_types_decode_alike(value: Any) -> None:
    data = encode(value)
    for buffer in (bytearray(data), memoryview(data)):
        assert_same(decode(buffer), value)
