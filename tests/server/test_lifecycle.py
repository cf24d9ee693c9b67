"""``serve``: a server that is up tunes the cyclic collector for a long life."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from collections.abc import Iterator

import pytest

from petrel.server import lifecycle
from petrel.server.lifecycle import GC_YOUNG_THRESHOLD, ExitCode, serve


@pytest.fixture
def collector() -> Iterator[None]:
    """Put the test process's collector back as it was."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


class _Server:
    """The least a server is: it starts, it is bound somewhere, it stops."""

    bound = [("127.0.0.1", 1)]
    failure = None

    def __init__(self) -> None:
        self.failed = asyncio.Event()

    async def start(self) -> None:
        return None

    async def stop(self, timeout: float | None = None) -> None:
        return None

    def reload(self) -> None:
        return None


async def test_a_server_that_is_up_freezes_its_start_and_collects_young_objects_less_often(
    collector: None,
) -> None:
    assert gc.get_threshold()[0] != GC_YOUNG_THRESHOLD
    seen: list[tuple[int, int]] = []

    def stop_soon() -> None:
        seen.append((gc.get_threshold()[0], gc.get_freeze_count()))
        os.kill(os.getpid(), signal.SIGTERM)

    asyncio.get_running_loop().call_later(0.2, stop_soon)
    assert await serve(_Server(), "test", say=lambda line: None) == ExitCode.OK
    [(young, frozen)] = seen
    assert young == GC_YOUNG_THRESHOLD
    assert frozen > 0


def test_the_older_generations_keep_their_thresholds(collector: None) -> None:
    _, middle, old = gc.get_threshold()
    lifecycle.tune_collector()
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, middle, old)
