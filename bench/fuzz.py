"""The long engine fuzz run: mutated real traffic into fresh engines, in both roles.

    python bench/fuzz.py --inputs 1000000 --seed S [--memory-every 50] [--report-every 50000]
                         [--failures DIR]

Runs the harness of ``tests/fuzz/engine_fuzz.py`` (corpus recorded by
``bench/fuzz_record.py``; the rules checked are listed there) over inputs
``0 .. --inputs`` of the run seeded with ``--seed``.  Prints a JSON line every
``--report-every`` inputs and a final one:

- ``inputs``, ``inputs_per_s`` (all inputs, memory-measured ones included),
- ``conditions``: how often each error condition ended a connection
  (``closed``: closed cleanly; ``open``: still in the handshake, which the
  server's open deadline ends), and ``session:``/``link:`` conditions of the
  sessions and links the inputs broke; ``distinct_conditions`` counts them,
- ``peak_memory``: the largest tracemalloc peak of one input (every
  ``--memory-every``-th input is measured; tracemalloc slows a run about 3x),
- ``failures``: inputs that broke a rule.  Each is listed on stderr with the
  command that replays it, and with ``--failures DIR`` saved there as bytes.

The exit status is 1 when any input failed.  Benchmarks are not tests: the
figures are reported, not asserted.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository's tests

from tests.fuzz.engine_fuzz import Report, fuzz, load_corpus


def _line(report: Report, elapsed: float, seed: int) -> dict[str, object]:
    return {
        "name": "engine-fuzz",
        "seed": seed,
        "inputs": report.inputs,
        "inputs_per_s": round(report.inputs / elapsed) if elapsed else None,
        "distinct_conditions": len(report.conditions),
        "conditions": dict(sorted(report.conditions.items())),
        "peak_memory": report.peak_memory,
        "failures": len(report.failures),
        "digest": report.digest,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=int, default=0, help="first input index")
    parser.add_argument("--memory-every", type=int, default=50)
    parser.add_argument("--report-every", type=int, default=50_000)
    parser.add_argument("--failures", type=Path, default=None)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # the engine logs every violation it answers

    corpus = load_corpus()
    report = Report()
    started = time.perf_counter()
    done = 0
    reported = 0
    while done < args.inputs:
        count = min(args.report_every, args.inputs - done)
        fuzz(
            count,
            args.seed,
            corpus=corpus,
            memory_every=args.memory_every,
            start=args.start + done,
            report=report,
        )
        done += count
        print(json.dumps(_line(report, time.perf_counter() - started, args.seed)), flush=True)
        for failure in report.failures[reported:]:
            print(
                f"input {failure.index} ({failure.seed}): {'; '.join(failure.problems)}\n"
                f"  replay: python -c 'from tests.fuzz.engine_fuzz import replay; "
                f"print(replay({args.seed}, {failure.index}))'",
                file=sys.stderr,
            )
            if args.failures is not None:
                args.failures.mkdir(parents=True, exist_ok=True)
                name = f"seed{args.seed}-input{failure.index}-{failure.seed}"
                (args.failures / name).write_bytes(failure.data)
        reported = len(report.failures)
    sys.exit(1 if report.failures else 0)


if __name__ == "__main__":
    main()
