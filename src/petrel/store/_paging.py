"""Paging: bodies of non-durable messages kept on disk to bound the broker's memory.

A :class:`Pager` owns one throwaway SQLite file and one thread. The file holds
nothing that must survive: it is written without a journal and without
``fsync`` (paging never waits for the disk to flush) and deleted at close; a
file left behind by a crash is deleted by the next start. Both stores use it,
started on the first :meth:`Pager.put` so that a broker that never pages never
creates a file.

If the paging file cannot be written (disk full, say), bodies stay in memory:
nothing is lost, the memory bound is. The store's backlog then grows, which
tells the broker to stop granting credit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

from ._writer import Batch, GroupCommitter
from .base import StoreError

log = logging.getLogger("petrel.store")

Key = tuple[str, int]

#: At most this many ``?`` in one ``IN (...)``: SQLite before 3.32 allows 999 variables.
IN_CHUNK = 500

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS petrel_pages ("
    "queue TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (queue, seq))"
)


class _PageBatch(Batch):
    __slots__ = ("deleted_queues", "deletes", "pages")

    def __init__(self) -> None:
        super().__init__()
        self.deleted_queues: list[str] = []
        self.deletes: list[Key] = []
        self.pages: dict[Key, tuple[str, int, bytes]] = {}

    def ops(self) -> int:
        return len(self.deleted_queues) + len(self.deletes) + len(self.pages)


def _in_chunks(seqs: Sequence[int]) -> list[Sequence[int]]:
    return [seqs[i : i + IN_CHUNK] for i in range(0, len(seqs), IN_CHUNK)]


class Pager:
    """Paged-out bodies, keyed by ``(queue, seq)``; see the module docstring.

    Either ``path`` (a fixed file, replaced if it exists: the caller owns the
    directory) or ``directory`` (a new unique file in it) must be given.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        path: Path | None = None,
        directory: Path | None = None,
        trace: Callable[[str], None] | None = None,
    ) -> None:
        self._loop = loop
        self._path = path
        self._directory = directory
        self._trace = trace
        self._con: sqlite3.Connection | None = None
        self._keys: set[Key] = set()
        self._memory: dict[Key, bytes] = {}
        self._memory_bytes = 0
        self._open_error: BaseException | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="petrel-pager")
        self._committer = GroupCommitter(
            loop,
            self._executor,
            _PageBatch,
            self._write,
            on_failure=self._keep_in_memory,
            what="paging file",
        )
        self._executor.submit(self._open)

    # -- loop side ---------------------------------------------------------------------

    def __contains__(self, key: Key) -> bool:
        return key in self._keys

    @property
    def backlog_ops(self) -> int:
        return self._committer.backlog_ops

    @property
    def backlog_bytes(self) -> int:
        return self._committer.backlog_bytes + self._memory_bytes

    def put(self, queue: str, seq: int, data: bytes) -> None:
        key = (queue, seq)
        if key in self._keys:
            return
        self._keys.add(key)
        if self._committer.failed is not None:
            self._remember(key, data)
            return
        batch = self._committer.pending
        batch.pages[key] = (queue, seq, data)
        batch.nbytes += len(data)
        self._committer.changed()

    def discard(self, queue: str, seq: int) -> bool:
        """Forget a paged body; False if it was not paged out."""
        key = (queue, seq)
        if key not in self._keys:
            return False
        self._keys.discard(key)
        if self._forget(key):
            return True
        batch = self._committer.pending
        page = batch.pages.pop(key, None)
        if page is not None:
            batch.nbytes -= len(page[2])
        else:
            batch.deletes.append(key)
            self._committer.changed()
        return True

    def discard_queue(self, queue: str) -> None:
        keys = [key for key in self._keys if key[0] == queue]
        if not keys:
            return
        batch = self._committer.pending
        for key in keys:
            self._keys.discard(key)
            self._forget(key)
            page = batch.pages.pop(key, None)
            if page is not None:
                batch.nbytes -= len(page[2])
        batch.deleted_queues.append(queue)
        self._committer.changed()

    async def get(self, queue: str, seqs: Sequence[int]) -> dict[int, bytes]:
        """The paged bodies among ``seqs``; others are left out."""
        found: dict[int, bytes] = {}
        on_disk: list[int] = []
        batches = [self._committer.pending, *reversed(self._committer.inflight)]
        for seq in seqs:
            key = (queue, seq)
            if key not in self._keys:
                continue
            data = self._memory.get(key)
            if data is None:
                for batch in batches:
                    page = batch.pages.get(key)
                    if page is not None:
                        data = page[2]
                        break
            if data is None:
                on_disk.append(seq)
            else:
                found[seq] = data
        if on_disk:
            found.update(
                await self._loop.run_in_executor(self._executor, self._read, queue, on_disk)
            )
        return found

    async def close(self) -> None:
        """Wait for the write in flight, then close and delete the file."""
        with suppress(StoreError):
            await self._committer.drain(flush=False)
        self._committer.close()
        try:
            await self._loop.run_in_executor(self._executor, self._close)
        finally:
            self._executor.shutdown(wait=False)
            self._keys.clear()
            self._memory.clear()
            self._memory_bytes = 0

    def _remember(self, key: Key, data: bytes) -> None:
        self._memory[key] = data
        self._memory_bytes += len(data)

    def _forget(self, key: Key) -> bool:
        data = self._memory.pop(key, None)
        if data is None:
            return False
        self._memory_bytes -= len(data)
        return True

    def _keep_in_memory(self, batch: _PageBatch) -> None:
        log.warning("paging to disk failed: keeping paged-out bodies in memory")
        for key, (_, _, data) in batch.pages.items():
            if key in self._keys:
                self._remember(key, data)
        pending = self._committer.pending
        for key, (_, _, data) in pending.pages.items():
            self._remember(key, data)
        pending.pages.clear()
        pending.nbytes = 0

    # -- pager thread ------------------------------------------------------------------

    def _open(self) -> None:
        try:
            self._connect()
        except BaseException as error:
            self._open_error = error
            raise

    def _connect(self) -> None:
        if self._path is None:
            fd, name = tempfile.mkstemp(prefix="petrel-paging-", suffix=".db", dir=self._directory)
            os.close(fd)
            self._path = Path(name)
        else:
            self._path.unlink(missing_ok=True)
        con = sqlite3.connect(self._path, isolation_level=None)
        try:
            if self._trace is not None:
                con.set_trace_callback(self._trace)
            # Throwaway data: no journal, no fsync, nobody else may open the file.
            for pragma in ("journal_mode = OFF", "synchronous = OFF", "locking_mode = EXCLUSIVE"):
                con.execute(f"PRAGMA {pragma}")
            con.execute(_SCHEMA)
        except BaseException:
            con.close()
            raise
        self._con = con

    def _connection(self) -> sqlite3.Connection:
        if self._con is None:
            raise StoreError(f"the paging file could not be opened: {self._open_error}")
        return self._con

    def _write(self, batch: _PageBatch) -> None:
        con = self._connection()
        con.execute("BEGIN")
        try:
            for queue in batch.deleted_queues:
                con.execute("DELETE FROM petrel_pages WHERE queue = ?", (queue,))
            if batch.deletes:
                con.executemany(
                    "DELETE FROM petrel_pages WHERE queue = ? AND seq = ?", batch.deletes
                )
            if batch.pages:
                con.executemany(
                    "INSERT INTO petrel_pages (queue, seq, data) VALUES (?, ?, ?)",
                    batch.pages.values(),
                )
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                with suppress(sqlite3.Error):
                    con.execute("ROLLBACK")
            raise

    def _read(self, queue: str, seqs: Sequence[int]) -> dict[int, bytes]:
        con = self._connection()
        found: dict[int, bytes] = {}
        try:
            for chunk in _in_chunks(seqs):
                marks = ", ".join("?" * len(chunk))
                cursor = con.execute(
                    f"SELECT seq, data FROM petrel_pages WHERE queue = ? AND seq IN ({marks})",
                    (queue, *chunk),
                )
                found.update(cursor.fetchall())
        except sqlite3.Error as error:
            raise StoreError(f"reading the paging file failed: {error}") from error
        return found

    def _close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
        if self._path is not None:
            self._path.unlink(missing_ok=True)
