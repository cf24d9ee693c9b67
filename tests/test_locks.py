"""tests/helpers/locks.py: the suite's one-off builds run one process at a time, as
pytest-xdist's workers need (two of them may want the Cyrus build or rhea at once)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]

#: Each process holds the lock while it writes "enter", waits a little and writes "leave":
#: under the lock the lines pair up; without it they interleave.
WORKER = """
import sys, time
from tests.helpers.locks import exclusive
log, name = sys.argv[1], sys.argv[2]
for _ in range(3):
    with exclusive("test-locks"):
        with open(log, "a") as out:
            out.write(f"enter {name}\\n")
        time.sleep(0.05)
        with open(log, "a") as out:
            out.write(f"leave {name}\\n")
"""


def test_one_process_at_a_time_through_exclusive(tmp_path: Path) -> None:
    log = tmp_path / "log"
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(log), name], cwd=ROOT)
        for name in ("a", "b", "c")
    ]
    assert [worker.wait(timeout=60) for worker in workers] == [0, 0, 0]
    lines = log.read_text().splitlines()
    assert len(lines) == 18
    for enter, leave in zip(lines[::2], lines[1::2], strict=True):
        assert enter.startswith("enter ") and leave == "leave " + enter.removeprefix("enter ")
