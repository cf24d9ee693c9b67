"""kill -9 at a random moment loses no message whose commit had resolved.

On PostgreSQL each round's writer also takes the live lock that the killed one
held: the lock must lapse with the process.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .crash_writer import body
from .helpers import StoreFactory

WRITER = Path(__file__).with_name("crash_writer.py")
ROUNDS = 5


def run_and_kill(factory: StoreFactory, first: int, delay: float) -> tuple[set[int], set[int], str]:
    """Start the writer, SIGKILL it ``delay`` s after its first acknowledged message;
    return the seqs it acknowledged as added and as removed, and its stderr."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        [sys.executable, str(WRITER), factory.kind, factory.where, str(first)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    lines: list[bytes] = []
    started = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            started.set()
        started.set()  # EOF: the writer died

    reader = threading.Thread(target=read)
    reader.start()
    try:
        started.wait(60)
        time.sleep(delay)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        reader.join()
        stderr = process.stderr.read().decode(errors="replace")
        process.stdout.close()
        process.stderr.close()
    added: set[int] = set()
    removed: set[int] = set()
    for line in lines:
        if not line.endswith(b"\n"):
            continue  # cut off by the kill: not a complete acknowledgement
        kind, seq = line.split()
        (added if kind == b"A" else removed).add(int(seq))
    return added, removed, stderr


async def stored(factory: StoreFactory) -> dict[int, bytes | None]:
    store = factory.new()
    await store.open()
    try:
        return {m.seq: m.data async for m in store.iter_messages("crash")}
    finally:
        await store.close()


def test_kill_minus_nine_loses_no_committed_message(store_factory: StoreFactory) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    acknowledged: set[int] = set()
    accepted: set[int] = set()
    for round_ in range(ROUNDS):
        first = round_ * 10_000_000
        added, removed, stderr = run_and_kill(store_factory, first, rng.uniform(0.0, 0.4))
        assert added, f"the writer acknowledged nothing (seed {seed}):\n{stderr}"
        acknowledged |= added
        accepted |= removed
        on_disk = asyncio.run(stored(store_factory))
        # A removal whose commit was in flight at the kill may or may not have happened.
        being_removed = {seq for seq in acknowledged if seq % 3 == 0} - accepted
        lost = acknowledged - accepted - being_removed - on_disk.keys()
        assert not lost, f"round {round_}: lost {len(lost)} committed messages (seed {seed})"
        resurrected = accepted & on_disk.keys()
        assert not resurrected, f"round {round_}: removed messages came back (seed {seed})"
        for seq, data in on_disk.items():
            assert data == body(seq), f"message {seq} is damaged (seed {seed})"
