"""What Petrel's codec, message view and engine make of a fixed set of inputs, one JSON
line per input, for comparing the compiled build with the pure-Python one.

Run as ``python -m tests.codec.parity_probe [--fuzz N]`` (from the repository root);
``tests/codec/test_backend_parity.py`` runs it once with ``PETREL_PURE_PYTHON=1`` and
once without, and compares the lines byte for byte.  The inputs:

- the golden vectors (``tests/codec/test_golden.py``): encoded, and decoded back;
- the values of the Proton oracle cases (``tests/interop/test_codec_proton.py``):
  encoded, decoded, and every offset of the encoding skipped and read as a list field;
- the fuzz corpus (``tests/fuzz/corpus``) and ``N`` mutations of it: each fed to a fresh
  engine (the fuzz harness's digest of events and output, the end condition), and
  every transfer's payload read through :class:`~petrel.message.MessageView`.

Every answer is the value's ``repr`` or the exception's type and text, so an error
message that differs between the builds is a difference too.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable
from typing import Any

from petrel import codec
from petrel._accel import backend
from petrel.message import MessageView
from petrel.spec.framing import FRAME_HEADER
from tests.codec.test_golden import CANONICAL, WIDE, h
from tests.fuzz.engine_fuzz import load_corpus, make_input, run_input, split_frames
from tests.interop.test_codec_proton import SAMPLES


def _answer(call: Callable[[], Any]) -> str:
    try:
        return repr(call())
    except Exception as exc:  # the point: the same error, type and text, both ways
        return f"{type(exc).__name__}: {exc}"


def _emit(kind: str, name: str, answer: Any) -> None:
    print(json.dumps([kind, name, answer], default=repr))


def _wire(name: str, data: bytes) -> None:
    """Every offset of ``data`` skipped, described and read as a list's fields."""
    answers = []
    for at in range(len(data)):
        answers.append(_answer(lambda at=at: codec.skip_value(data, at)))
        answers.append(_answer(lambda at=at: codec.descriptor_at(data, at)))
        answers.append(_answer(lambda at=at: codec.list_field(data, at, 2)))
        answers.append(_answer(lambda at=at: codec.read_simple_list(data, at, len(data), 6)))
        answers.append(_answer(lambda at=at: _read_fields(data, at)))
    _emit("wire", name, answers)


# A disposition's kinds: role, first, last, settled, state (an outcome), batchable.
_KINDS = bytes(
    (
        codec.FIELD_BOOLEAN,
        codec.FIELD_UINT,
        codec.FIELD_UINT,
        codec.FIELD_BOOLEAN,
        codec.FIELD_DESCRIBED,
        codec.FIELD_NULL,
    )
)


def _read_fields(data: bytes, at: int) -> Any:
    defaults = [None, None, None, False, None, False]
    return codec.read_fields(data, at, len(data), _KINDS, defaults, {0x24: "accepted"})


def _view(name: str, payload: bytes) -> None:
    def read() -> list[str]:
        view = MessageView(payload)
        fields = ("header", "properties", "application_properties", "to", "group_id")
        return [_answer(lambda f=f: getattr(view, f)) for f in fields]

    _emit("view", name, _answer(read))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fuzz", type=int, default=300, help="mutated inputs to run")
    args = parser.parse_args()
    for name, value, encoded in CANONICAL:
        _emit("encode", name, _answer(lambda v=value: codec.encode(v).hex()))
        _emit("decode", name, _answer(lambda e=encoded: codec.decode(h(e))))
    for name, encoded, _ in WIDE:
        _emit("decode-wide", name, _answer(lambda e=encoded: codec.decode(h(e))))
    for index, value in enumerate(SAMPLES):
        name = f"sample-{index}"
        encoded = _answer(lambda v=value: codec.encode(v))
        _emit("encode", name, encoded)
        try:
            data = codec.encode(value)
        except Exception:
            continue
        _emit("decode", name, _answer(lambda d=data: codec.decode(d)))
        _wire(name, data)
    corpus = load_corpus()
    for seed in corpus:
        for number, frame in enumerate(split_frames(seed.data)):
            if len(frame) < 8:
                continue
            doff = FRAME_HEADER.unpack_from(frame, 0)[1] * 4
            body = frame[doff:]
            if not body.startswith(b"\x00\x53\x14"):
                _wire(f"{seed.name}/{number}", body[:64])
                continue
            try:
                end = codec.skip_value(body, 0)
            except Exception:
                continue
            _wire(f"{seed.name}/{number}", body[:end])
            _view(f"{seed.name}/{number}", body[end:])
    for index in range(len(corpus) + args.fuzz):
        if index < len(corpus):
            seed, data, rnd = corpus[index], corpus[index].data, random.Random(index)
        else:
            seed, data, rnd = make_input(corpus, 2026, index)
        outcome = run_input(seed, data, rnd)
        _emit(
            "engine",
            f"{seed.name}#{index}",
            [outcome.digest, outcome.condition, outcome.description, outcome.state],
        )
    print(json.dumps(["backend", backend()]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
