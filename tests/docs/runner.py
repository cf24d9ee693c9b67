"""Running a guide's ``python`` blocks against a real broker.

The blocks of one page run in order in one namespace, as a reader would type
them into ``python -m asyncio``: a block may use what an earlier one defined
(``sender``, ``receiver``).  A block with a top-level ``await`` runs on the
test's event loop; one without (a whole program ending in ``asyncio.run()``,
the blocking API, Proton's blocking client) runs in a worker thread.

Before each block the page's *givens* are put (back) in the namespace:
``petrel``, ``asyncio`` and ``conn``, an open connection to the page's broker, and
whatever names the page's setup adds.  Every AMQP or WebSocket URL in a string
literal of the block is pointed at that broker (host and port; user and path
stay), so ``amqp://localhost`` and ``amqp://broker.example`` both reach it.
"""

from __future__ import annotations

import ast
import asyncio
import gc
import inspect
import re
from collections.abc import Mapping
from typing import Any

import petrel

from .blocks import Block

#: How long one block may take before it fails (none of them needs more than a second).
BLOCK_TIMEOUT = 30.0

_URL = re.compile(
    r"(?P<scheme>amqps?|wss?)://(?P<user>[^@/\s\"']*@)?(?P<host>[A-Za-z0-9.\-]+)(?::\d+)?"
)


def point_urls(source: str, amqp_port: int, http_port: int | None) -> str:
    """``source`` with every amqp:// and ws:// URL aimed at 127.0.0.1 and the test's ports."""

    def replace(match: re.Match[str]) -> str:
        scheme = match["scheme"]
        if scheme in ("amqps", "wss"):
            raise AssertionError(
                f"{match[0]!r}: the suite's brokers have no TLS; show TLS URLs in the text"
            )
        port = amqp_port if scheme == "amqp" else http_port
        if port is None:
            raise AssertionError(f"{match[0]!r}: this page's setup serves no HTTP (ws://)")
        return f"{scheme}://{match['user'] or ''}127.0.0.1:{port}"

    return _URL.sub(replace, source)


async def run_block(block: Block, source: str, namespace: dict[str, Any]) -> None:
    """Run one block's ``source`` in ``namespace``; fails naming the block."""
    try:
        code = compile(
            source, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
        )
    except SyntaxError as exc:
        raise AssertionError(f"{block.where}: not valid Python: {exc}") from None
    if code.co_flags & inspect.CO_COROUTINE:
        async with asyncio.timeout(BLOCK_TIMEOUT):
            await eval(code, namespace)
    else:
        await asyncio.wait_for(asyncio.to_thread(exec, code, namespace), BLOCK_TIMEOUT)


async def run_page(
    page_blocks: list[Block],
    *,
    amqp_port: int,
    http_port: int | None = None,
    givens: Mapping[str, Any] = {},
) -> None:
    """Run the ``python`` blocks of one page in order (see the module docstring)."""
    before = _open_connections()
    async with await petrel.connect(f"amqp://127.0.0.1:{amqp_port}") as conn:
        namespace: dict[str, Any] = {"__name__": "__docs__"}
        try:
            for block in page_blocks:
                namespace.update(petrel=petrel, asyncio=asyncio, conn=conn, **givens)
                source = point_urls(block.text, amqp_port, http_port)
                try:
                    await run_block(block, source, namespace)
                except AssertionError:
                    raise
                except BaseException as exc:
                    raise AssertionError(f"{block.where}: {type(exc).__name__}: {exc}") from exc
        finally:
            namespace.clear()
            # A guide's fragment need not close what it opened; the suite must not leak.
            for left_open in _open_connections() - before:
                await left_open.close()


def _open_connections() -> set[petrel.Connection]:
    """The client connections of this process that are not closed."""
    return {
        obj for obj in gc.get_objects() if isinstance(obj, petrel.Connection) and not obj.is_closed
    }
