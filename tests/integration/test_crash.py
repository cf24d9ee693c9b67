"""The crash harness, short: durable messages through a broker killed with SIGKILL repeatedly.

``bench/crash.py`` is the long version (more rounds, more messages); this runs
the same harness briefly and asserts its accounting: every message whose send
the broker accepted was received at least once.

Three timeouts nest, each well inside the next, so that a slow run ends with
the harness's own report rather than a bare kill: the harness's ``--timeout``
(after its last kill), then :data:`HARNESS_LIMIT` for the whole subprocess,
then pytest's timeout for the test.  The harness runs in a process group of
its own, with the brokers it starts, and the group is killed whatever happens,
so no broker outlives the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "bench" / "crash.py"
#: The harness's own deadline after its last kill (its --timeout), in seconds.
RUN_TIMEOUT = 90
#: The whole harness run: the kill rounds, RUN_TIMEOUT and the brokers' shutdown.
HARNESS_LIMIT = RUN_TIMEOUT + 60
#: pytest's limit for each test here (above HARNESS_LIMIT, so the harness reports first).
PYTEST_LIMIT = HARNESS_LIMIT + 30


def run_harness(*args: str) -> dict[str, Any]:
    """Run ``bench/crash.py`` with ``args``; its report (the last JSON line)."""
    command = [sys.executable, str(HARNESS), "--timeout", str(RUN_TIMEOUT), *args]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the harness and its brokers
    )
    try:
        stdout, stderr = proc.communicate(timeout=HARNESS_LIMIT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"the harness overran {HARNESS_LIMIT} s:\n{stdout}\n{stderr}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # any broker left behind
        proc.wait()
    assert stdout, stderr
    report: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    assert report["timed_out"] is False, report
    # The whole report on failure (pytest shortens a dict): which check failed, and samples.
    assert proc.returncode == 0, f"{json.dumps(report, indent=1)}\n{stderr}"
    return report


@pytest.mark.slow
@pytest.mark.timeout(PYTEST_LIMIT)
def test_no_accepted_message_is_lost_across_kill_9() -> None:
    report = run_harness(
        "--rounds", "6", "--count", "400", "--producers", "2", "--consumers", "2",
        "--min-interval", "0.1", "--max-interval", "0.4", "--seed", "7",
    )  # fmt: skip
    assert report["kills"] == 6
    assert report["broker_starts"] == 7
    assert report["sent_accepted"] == 800, report
    assert report["lost"] == 0, report
    assert report["received_unique"] == 800


@pytest.mark.slow
@pytest.mark.timeout(PYTEST_LIMIT)
def test_a_kill_during_a_commit_leaves_all_of_the_transaction_or_none() -> None:
    """Transactions of 10 sends and of up to 10 accepts, committed while the broker is
    killed: each transaction took effect whole or not at all, and none whose commit was
    answered is lost.  (With store.atomic() splitting a commit into one SQL transaction
    per write, this run reports partial transactions.)"""
    report = run_harness(
        "--transactions", "10", "--rounds", "6", "--count", "400", "--producers", "2",
        "--consumers", "2", "--min-interval", "0.1", "--max-interval", "0.4", "--seed", "7",
    )  # fmt: skip
    assert report["kills"] == 6
    assert report["transactions_committed"] == 80, report
    assert report["transactions"] >= 80
    assert report["accept_transactions"] > 0
    assert report["lost"] == 0, report
    assert report["partial_sends"] == 0, report
    assert report["partial_accepts"] == 0, report
    assert report["accepts_undone"] == 0, report


@pytest.mark.slow
@pytest.mark.timeout(PYTEST_LIMIT)
def test_a_kill_during_a_commit_on_postgresql(postgres_url: str) -> None:
    """The same on the PostgreSQL store: a commit is one SQL transaction there too."""
    from tests.helpers.postgres import fresh_schema

    with fresh_schema(postgres_url) as url:
        report = run_harness(
            "--store", "postgresql", "--store-url", url, "--transactions", "10",
            "--rounds", "4", "--count", "200", "--min-interval", "0.2", "--max-interval", "0.5",
        )  # fmt: skip
    assert report["kills"] == 4
    assert report["transactions_committed"] == 40, report
    assert report["lost"] == 0, report
    assert report["partial_sends"] == 0, report
    assert report["partial_accepts"] == 0, report
    assert report["accepts_undone"] == 0, report


@pytest.mark.slow
@pytest.mark.timeout(PYTEST_LIMIT)
def test_no_accepted_message_is_lost_when_the_live_broker_of_a_pair_is_killed(
    postgres_url: str,
) -> None:
    from tests.helpers.postgres import fresh_schema

    with fresh_schema(postgres_url) as url:
        report = run_harness(
            "--store", "postgresql", "--store-url", url, "--failover", "--rounds", "3",
            "--count", "300", "--min-interval", "0.5", "--max-interval", "1.0",
        )  # fmt: skip
    assert report["failover"] is True
    assert report["kills"] == 3
    assert report["sent_accepted"] == 600, report
    assert report["lost"] == 0, report
