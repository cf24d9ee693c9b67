"""Engine fuzzing: recorded real traffic, mutated, never breaks a fresh engine in either role.

The short run of :mod:`tests.fuzz.engine_fuzz` (the rules it checks are listed
there); ``bench/fuzz.py --inputs 1000000 --seed S`` runs the long one.  A
failure names the seed and input index: ``engine_fuzz.replay(seed, index)``
runs that input alone.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator

import pytest

from petrel.engine import session as session_module
from petrel.errors import Condition

from . import engine_fuzz
from .engine_fuzz import Hang, Seed, check_input, fuzz, load_corpus, watchdog

SEED = 0x5EED_E161
INPUTS = 5000
PEERS = ("proton-python", "proton-native", "rhea", "petrel")


@pytest.fixture(scope="module")
def corpus() -> list[Seed]:
    return load_corpus()


@pytest.fixture(autouse=True)
def quiet_engine() -> Iterator[None]:
    """The engine logs every violation it answers; thousands of them are noise here."""
    logger = logging.getLogger("petrel")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


def _failures(report: engine_fuzz.Report) -> str:
    return "\n".join(
        f"input {f.index} ({f.seed}, {len(f.data)} bytes): {'; '.join(f.problems)}"
        for f in report.failures[:10]
    )


def test_the_corpus_is_real_traffic_from_every_peer_in_both_directions(
    corpus: list[Seed],
) -> None:
    names = {seed.name for seed in corpus}
    for peer in PEERS:
        assert any(n.startswith(peer) and n.endswith(".c2s") for n in names), peer
        assert any(n.startswith(peer) and n.endswith(".s2c") for n in names), peer
    assert any(seed.sasl for seed in corpus) and not all(seed.sasl for seed in corpus)
    # Played as recorded, every stream goes through a fresh engine without an error:
    # the clients' streams end with their close, the broker's with its answer to it.
    for seed in corpus:
        outcome = check_input(seed, seed.data, random.Random(0), memory=True, chunking="frames")
        assert not outcome.problems, (seed.name, outcome.problems)
        assert outcome.closed and outcome.condition is None, (seed.name, outcome.description)
        assert not outcome.endpoint_errors, (seed.name, outcome.endpoint_errors)
        assert outcome.events > 3


def test_mutated_traffic(corpus: list[Seed]) -> None:
    report = fuzz(INPUTS, SEED, corpus=corpus, memory_every=1)
    assert not report.failures, _failures(report)
    assert report.inputs == INPUTS
    # The mutants reach the handshake, framing, the codec, sessions and links.
    for condition in (
        Condition.DECODE_ERROR,
        Condition.FRAMING_ERROR,
        Condition.NOT_IMPLEMENTED,
        Condition.NOT_ALLOWED,
        Condition.ILLEGAL_STATE,
        Condition.UNAUTHORIZED_ACCESS,
        Condition.RESOURCE_LIMIT_EXCEEDED,
        f"session:{Condition.UNATTACHED_HANDLE}",
        f"link:{Condition.TRANSFER_LIMIT_EXCEEDED}",
    ):
        assert report.conditions.get(condition), (condition, report.conditions)
    assert report.conditions.get("closed"), "some mutants still close cleanly"
    assert 0 < report.peak_memory < engine_fuzz.memory_bound(0)


def test_a_seed_decides_the_run(corpus: list[Seed]) -> None:
    first = fuzz(300, SEED, corpus=corpus, memory_every=0)
    again = fuzz(300, SEED, corpus=corpus, memory_every=0)
    other = fuzz(300, SEED + 1, corpus=corpus, memory_every=0)
    assert first.digest == again.digest
    assert first.conditions == again.conditions
    assert other.digest != first.digest
    # One input replays alone, as it ran in the whole run.
    target, data, rnd = engine_fuzz.make_input(corpus, SEED, 123)
    alone = check_input(target, data, rnd, memory=False)
    target, data, rnd = engine_fuzz.make_input(corpus, SEED, 123)
    assert check_input(target, data, rnd, memory=False).digest == alone.digest


# --- the checks themselves fail when the engine breaks -------------------------------------------
#
# Each breaks the engine by patching a method, which a compiled build's classes do not allow
# (calls between compiled modules are bound early): under one they run in a pure-Python
# subprocess.


@pytest.mark.pure_python
def test_an_exception_inside_the_engine_is_caught(
    corpus: list[Seed], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: object, frame: object) -> None:
        raise IndexError("a bug")

    monkeypatch.setattr(session_module.Session, "_on_flow", broken)
    report = fuzz(200, SEED, corpus=corpus, memory_every=0)
    assert any("failed inside" in p for f in report.failures for p in f.problems)


@pytest.mark.pure_python
def test_memory_that_follows_a_claimed_size_is_caught(
    corpus: list[Seed], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = session_module.Session._on_flow

    def greedy(self: session_module.Session, frame: object) -> None:
        # Trusting the peer's window: what the bound is there to catch.
        self._hoard = bytearray(min(int(frame.incoming_window or 0), 64 << 20))  # type: ignore[attr-defined]
        original(self, frame)  # type: ignore[arg-type]

    monkeypatch.setattr(session_module.Session, "_on_flow", greedy)
    seed = next(s for s in corpus if s.name == "proton-python-1.c2s")
    outcome = check_input(seed, seed.data, random.Random(0), memory=True)
    assert any("peak memory" in p for p in outcome.problems), outcome.peak_memory


@pytest.mark.pure_python
def test_a_loop_that_does_not_end_is_caught(
    corpus: list[Seed], monkeypatch: pytest.MonkeyPatch
) -> None:
    def forever(self: object, frame: object) -> None:
        while True:
            pass

    monkeypatch.setattr(session_module.Session, "_on_flow", forever)
    seed = next(s for s in corpus if s.name == "proton-python-1.c2s")
    with pytest.raises(Hang), watchdog(0.5):
        check_input(seed, seed.data, random.Random(0), memory=False)
