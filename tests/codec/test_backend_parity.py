"""The compiled build and the pure-Python build answer every input the same way.

Both run the same source (mypyc compiles the modules ``petrel._accel`` lists), but a
compiled build checks annotations at run time, binds calls early and keeps its own
integer and string paths, so this is checked, not assumed: ``tests/codec/parity_probe.py``
runs once with ``PETREL_PURE_PYTHON=1`` and once without, over the golden vectors, the
Proton oracle values, the fuzz corpus and 2,000 mutations of it, and the two outputs
must match byte for byte.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from petrel._accel import PURE_PYTHON_VARIABLE, compiled_available

ROOT = Path(__file__).resolve().parents[2]


def _probe(pure: bool) -> tuple[list[str], str]:
    env = {k: v for k, v in os.environ.items() if k != PURE_PYTHON_VARIABLE}
    if pure:
        env[PURE_PYTHON_VARIABLE] = "1"
    run = subprocess.run(
        [sys.executable, "-m", "tests.codec.parity_probe", "--fuzz", "2000"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return run.stdout.splitlines(), run.stderr.strip().splitlines()[-1]


def test_the_compiled_build_answers_as_the_pure_python_one() -> None:
    if not compiled_available():
        pytest.skip("no compiled build here (`make accel` makes one; CI always has it)")
    pure, pure_backend = _probe(pure=True)
    compiled, compiled_backend = _probe(pure=False)
    assert pure_backend.endswith('"python"]') and compiled_backend.endswith('"mypyc"]')
    assert len(pure) > 1000
    differences = [(p, c) for p, c in zip(pure, compiled, strict=True) if p != c]
    assert not differences, f"{len(differences)} inputs differ; the first: {differences[0]}"
