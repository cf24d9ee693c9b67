"""The crash harness, short: durable messages through a broker killed with SIGKILL repeatedly.

``bench/crash.py`` is the long version (more rounds, more messages); this runs
the same harness briefly and asserts its accounting: every message whose send
the broker accepted was received at least once.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "bench" / "crash.py"


@pytest.mark.slow
def test_no_accepted_message_is_lost_across_kill_9() -> None:
    result = subprocess.run(
        [
            sys.executable, str(HARNESS),
            "--rounds", "6", "--count", "400", "--producers", "2", "--consumers", "2",
            "--min-interval", "0.1", "--max-interval", "0.4", "--timeout", "90", "--seed", "7",
        ],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.stdout, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["kills"] == 6
    assert report["broker_starts"] == 7
    assert report["sent_accepted"] == 800, report
    assert report["lost"] == 0, report
    assert report["received_unique"] == 800
    assert result.returncode == 0


@pytest.mark.slow
def test_no_accepted_message_is_lost_when_the_live_broker_of_a_pair_is_killed(
    postgres_url: str,
) -> None:
    from tests.helpers.postgres import fresh_schema

    with fresh_schema(postgres_url) as url:
        result = subprocess.run(
            [
                sys.executable, str(HARNESS), "--store", "postgresql", "--store-url", url,
                "--failover", "--rounds", "3", "--count", "300",
                "--min-interval", "0.5", "--max-interval", "1.0", "--timeout", "90",
            ],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
    assert result.stdout, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["failover"] is True
    assert report["kills"] == 3
    assert report["sent_accepted"] == 600, report
    assert report["lost"] == 0, report
    assert result.returncode == 0
