"""Waiting on futures with a timeout, without cancelling anything."""

from __future__ import annotations

import asyncio
from typing import Any

from .errors import Timeout

__all__ = ["wait_future"]


async def wait_future(fut: asyncio.Future[Any], timeout: float | None, what: str) -> Any:
    """Await ``fut``; after ``timeout`` seconds fail it with :class:`Timeout`.

    Unlike ``asyncio.wait_for`` this never cancels anything: a result that
    arrives together with the timeout is kept.
    """
    if timeout is None:
        return await fut
    handle = asyncio.get_running_loop().call_later(timeout, _expire, fut, what, timeout)
    try:
        return await fut
    finally:
        handle.cancel()


def _expire(fut: asyncio.Future[Any], what: str, timeout: float) -> None:
    if not fut.done():
        fut.set_exception(Timeout(f"{what} took longer than {timeout:g} s"))
