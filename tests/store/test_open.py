"""Opening a database the store cannot use fails clearly and leaves the file as it was."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from petrel.store import SqliteStore, StoreError
from petrel.store.sqlite import SCHEMA_VERSION

from .helpers import msg, queue


async def make_store(path: Path, count: int = 2000) -> Path:
    """A closed store with ``count`` messages; returns its database file."""
    store = SqliteStore(path)
    await store.open()
    store.save_queue(queue("q"))
    for seq in range(1, count + 1):
        store.add(msg("q", seq, os.urandom(200)))
    await store.close()
    return store.path


async def refused(path: Path, match: str, *, verify: bool = False) -> None:
    """Opening ``path`` raises StoreError matching ``match``; the file is unchanged."""
    before = path.read_bytes()
    with pytest.raises(StoreError, match=match):
        await SqliteStore(path, verify=verify).open()
    assert path.read_bytes() == before
    # The failed open released everything: it can be tried again.
    with pytest.raises(StoreError, match=match):
        await SqliteStore(path, verify=verify).open()


async def test_garbage_file(tmp_path: Path) -> None:
    db = tmp_path / "petrel.db"
    db.write_bytes(random.Random(1).randbytes(64 * 1024))
    await refused(db, "not an SQLite database")


async def test_short_garbage_file(tmp_path: Path) -> None:
    db = tmp_path / "petrel.db"
    db.write_bytes(b"hello")
    await refused(db, "not an SQLite database")


async def test_truncated_file(tmp_path: Path) -> None:
    db = await make_store(tmp_path)
    size = db.stat().st_size
    with db.open("r+b") as file:
        file.truncate(size // 2)
    await refused(db, "truncated")


async def test_truncated_inside_a_page(tmp_path: Path) -> None:
    db = await make_store(tmp_path)
    with db.open("r+b") as file:
        file.truncate(5000)
    await refused(db, "truncated")


async def test_truncated_header(tmp_path: Path) -> None:
    db = await make_store(tmp_path)
    with db.open("r+b") as file:
        file.truncate(50)
    await refused(db, "not an SQLite database")


async def test_corrupt_page_found_by_verify(tmp_path: Path) -> None:
    db = await make_store(tmp_path)
    with db.open("r+b") as file:
        file.seek(4096 * 3)
        file.write(random.Random(2).randbytes(4096))
    await refused(db, "corrupt|malformed", verify=True)


async def test_newer_schema(tmp_path: Path) -> None:
    db = await make_store(tmp_path, count=10)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE petrel_schema SET version = ?", (SCHEMA_VERSION + 1,))
    con.close()
    await refused(db, "newer Petrel")


async def test_another_applications_database(tmp_path: Path) -> None:
    db = tmp_path / "petrel.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER)")
    con.execute("INSERT INTO accounts VALUES (1, 100)")
    con.commit()
    con.close()
    await refused(db, "not a Petrel store")


async def test_database_path_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "petrel.db").mkdir()
    with pytest.raises(StoreError, match="not a regular file"):
        await SqliteStore(tmp_path).open()


#: Opens the store named on the command line; prints the StoreError, if any.
_OPEN_STORE = """
import asyncio, sys
from petrel.store import SqliteStore, StoreError
try:
    asyncio.run(SqliteStore(sys.argv[1]).open())
except StoreError as exc:
    print(exc)
"""


async def test_unreadable_file(tmp_path: Path) -> None:
    db = await make_store(tmp_path, count=10)
    before = db.read_bytes()
    db.chmod(0)
    command = [sys.executable, "-c", _OPEN_STORE, str(db)]
    if os.geteuid() == 0:
        # Root reads any file through CAP_DAC_OVERRIDE: the store is opened by a root
        # without it (setpriv, from util-linux), to whom a mode-000 file is unreadable.
        setpriv = shutil.which("setpriv")
        assert setpriv is not None, "setpriv (util-linux) is needed to run this as root"
        command = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *command]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    finally:
        db.chmod(0o644)
    assert result.returncode == 0, result.stderr
    assert "cannot open" in result.stdout, result.stdout + result.stderr
    assert db.read_bytes() == before


async def test_path_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StoreError, match="cannot open"):
        await SqliteStore(tmp_path / "file" / "petrel.db").open()


async def test_empty_file_is_an_empty_store(tmp_path: Path) -> None:
    (tmp_path / "petrel.db").touch()
    store = SqliteStore(tmp_path)
    await store.open()
    store.add(msg("q", 1))
    await store.close()
    again = SqliteStore(tmp_path)
    await again.open()
    assert await again.max_seq("q") == 1
    await again.close()
