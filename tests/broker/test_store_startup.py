"""``petrel broker`` on a database it cannot use: one clear line naming the file, a non-zero
exit, and the file left byte for byte as it was."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from petrel.store import QueueRecord, SqliteStore, StoredMessage
from tests.helpers.servers import free_port

PETREL = str(Path(sys.executable).with_name("petrel"))


async def _make_store(data_dir: Path) -> Path:
    store = SqliteStore(data_dir)
    await store.open()
    store.save_queue(QueueRecord("q", "q", "anycast"))
    for seq in range(1, 400):
        store.add(StoredMessage("q", seq, 4, None, 0, b"x" * 1000, 1000))
    await store.commit()
    await store.close()
    return data_dir / "petrel.db"


def _start(data_dir: Path) -> subprocess.CompletedProcess[str]:
    args = [PETREL, "broker", "--store", "sqlite", "--data-dir", str(data_dir)]
    args += ["--listen", f"amqp://127.0.0.1:{free_port()}"]
    return subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize("damage", ["truncated", "corrupt", "not-sqlite"])
async def test_a_damaged_database_stops_the_broker_and_is_left_alone(
    tmp_path: Path, damage: str
) -> None:
    db = await _make_store(tmp_path)
    data = db.read_bytes()
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "corrupt":
        # Garble pages past the header (the b-tree pages of the tables).
        data = data[:8192] + bytes(b ^ 0x5A for b in data[8192:16384]) + data[16384:]
    else:
        data = b"this is not a database at all\n" * 300
    db.write_bytes(data)
    for extra in tmp_path.glob("petrel.db-*"):  # no WAL left behind to repair from
        extra.unlink()

    result = await asyncio.to_thread(_start, tmp_path)

    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("petrel broker: ")
    assert str(db) in lines[0]
    assert db.read_bytes() == data
