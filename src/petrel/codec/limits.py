"""Limits the decoder enforces on untrusted input, checked before anything is allocated.

A peer controls every byte we decode, so nothing it sends may make the decoder
recurse without bound, loop for long or allocate much more than it sent.

- ``MAX_NESTING_DEPTH``: lists, maps, arrays and described values nested
  deeper than this are refused.  Each level costs a couple of Python stack
  frames; 64 stays far below the interpreter's recursion limit while leaving
  room for any real message (the AMQP frames themselves nest at most 4 deep).
  Azure's pure-Python codec and Proton's C codec settle on similar bounds.
- ``MAX_ZERO_WIDTH_COUNT``: an array whose element constructor has no body
  (null, true, false, uint0, ulong0, list0) costs no bytes per element, so its
  count is not bounded by its size.  One decode (one ``decode`` or
  ``decode_from`` call) may produce at most this many such elements in all
  of its arrays together: a per-array limit alone would let a list of many
  ten-byte arrays of nulls multiply it.  Every other count is bounded by the
  bytes that are actually present, since each element takes at least one
  byte.  The encoder uses a zero-width element constructor only for arrays
  within this limit.
"""

from __future__ import annotations

MAX_NESTING_DEPTH = 64
MAX_ZERO_WIDTH_COUNT = 65536
